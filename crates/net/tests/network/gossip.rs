//! Gossip end to end: both topics across three nodes, a peer whose gossip the SDK rejects
//! is banned, and a tx-list flood over the per-peer byte limit reaches the SDK only as far as
//! the limit lets it.

use std::time::Duration;

use preconfirmation_net::{ByteRateLimit, GossipVerdict, NetworkEvent};
use preconfirmation_types::{GossipTopicKind, RawTxListGossip, WireMessage};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_three_nodes_both_topics() {
    let (a, a_events) = start(test_config()).await;
    let (b, mut b_events) = start(test_config()).await;
    let (c, mut c_events) = start(test_config()).await;
    // Line topology B — A — C: C only gets B's messages if A forwards them after Accept.
    connect(&b, &mut b_events, &a).await;
    connect(&c, &mut c_events, &a).await;
    let mut a_rx = spawn_sdk(a.clone(), a_events, GossipVerdict::Accept);
    let _b_rx = spawn_sdk(b.clone(), b_events, GossipVerdict::Accept);
    let mut c_rx = spawn_sdk(c.clone(), c_events, GossipVerdict::Accept);
    wait_gossip_peers(&a, &[b.local_peer_id(), c.local_peer_id()]).await;
    wait_gossip_peers(&b, &[a.local_peer_id()]).await;
    wait_gossip_peers(&c, &[a.local_peer_id()]).await;

    let signed = commitment(5).to_ssz();
    let txlist = RawTxListGossip::new(vec![1, 2, 3, 4])
        .expect("txlist")
        .to_ssz();
    b.publish(GossipTopicKind::Commitments, signed.clone())
        .await
        .expect("publish commitment");
    b.publish(GossipTopicKind::RawTxLists, txlist.clone())
        .await
        .expect("publish txlist");

    for rx in [&mut a_rx, &mut c_rx] {
        let mut got = Vec::new();
        while got.len() < 2 {
            let msg = timeout(WAIT, rx.recv())
                .await
                .expect("gossip in time")
                .expect("open");
            got.push(msg);
        }
        got.sort_by_key(|(k, _)| *k);
        assert_eq!(got[0], (GossipTopicKind::Commitments, signed.clone()));
        assert_eq!(got[1], (GossipTopicKind::RawTxLists, txlist.clone()));
    }
    // Over-cap payloads are refused locally.
    assert!(b
        .publish(GossipTopicKind::Commitments, vec![0; 383])
        .await
        .is_err());
    for s in [a, b, c] {
        s.shutdown().await.expect("shutdown");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gossip_peer_is_banned() {
    let mut receiver_cfg = test_config();
    receiver_cfg.ban_period = Duration::from_secs(60);
    let (receiver, receiver_events) = start(receiver_cfg).await;
    let (bad, _bad_events) = start_connected_to(&receiver).await;
    let bad_id = bad.local_peer_id();
    // The receiver's SDK rejects everything; forward its events to the test as well.
    let (ev_tx, mut ev_rx) = mpsc::channel(256);
    {
        let receiver = receiver.clone();
        let mut events = receiver_events;
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let NetworkEvent::Gossip {
                    peer, message_id, ..
                } = &ev
                {
                    let _ = receiver.report_validation(
                        message_id.clone(),
                        *peer,
                        GossipVerdict::Reject,
                    );
                }
                let _ = ev_tx.try_send(ev);
            }
        });
    }
    wait_gossip_peers(&bad, &[receiver.local_peer_id()]).await;
    let publisher = {
        let bad = bad.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for n in 0u64.. {
                tick.tick().await;
                let _ = bad
                    .publish(GossipTopicKind::Commitments, commitment(n).to_ssz())
                    .await;
            }
        })
    };
    let banned = timeout(WAIT, async {
        while let Some(ev) = ev_rx.recv().await {
            if let NetworkEvent::PeerBanned { peer, .. } = ev {
                if peer == bad_id {
                    return true;
                }
            }
        }
        false
    })
    .await
    .expect("banned within the bound");
    assert!(banned);
    publisher.abort();
    // Disconnected, and refused when it dials again during the ban.
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if !receiver
                .connected_peers()
                .await
                .expect("peers")
                .contains(&bad_id)
            {
                return;
            }
        }
    })
    .await
    .expect("banned peer disconnected");
    let _ = bad.dial(addr(&receiver).await).await;
    let reconnected = timeout(Duration::from_secs(2), async {
        while let Some(ev) = ev_rx.recv().await {
            if matches!(ev, NetworkEvent::PeerConnected { peer, .. } if peer == bad_id) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(!reconnected, "a banned peer must not reconnect");
    assert!(!receiver
        .connected_peers()
        .await
        .expect("peers")
        .contains(&bad_id));
}

/// §7 attack: a peer floods valid-looking tx lists far over its per-peer byte limit of the
/// topic. The SDK gets no more than the limit lets through (burst + refill over the elapsed
/// time, whatever was sent), the rest is ignored, and the sustained excess costs the peer
/// score (§7.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_byte_flood() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const MSG: usize = 16 * 1024;
    let limit = ByteRateLimit::new(2 * MSG as u64 + 100, Duration::from_secs(10));
    let mut victim_cfg = test_config();
    victim_cfg.gossip_rate_limit.raw_txlists.bytes = limit;
    let (victim, victim_events) = start(victim_cfg).await;
    let (flooder, mut flooder_events) = start(test_config()).await;
    let flooder_id = flooder.local_peer_id();
    connect(&flooder, &mut flooder_events, &victim).await;
    let mut sdk = spawn_sdk(victim.clone(), victim_events, GossipVerdict::Accept);
    // Count every byte the SDK gets (draining the stand-in's channel so none is dropped).
    let delivered = Arc::new(AtomicU64::new(0));
    {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Some((_, data)) = sdk.recv().await {
                delivered.fetch_add(data.len() as u64, Ordering::SeqCst);
            }
        });
    }
    wait_gossip_peers(&flooder, &[victim.local_peer_id()]).await;

    let start_at = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (flooder, sent) = (flooder.clone(), sent.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for n in 0u64..4_000 {
                tick.tick().await;
                let mut body = vec![0u8; MSG];
                body[..8].copy_from_slice(&n.to_le_bytes());
                let msg = RawTxListGossip::new(body).expect("txlist").to_ssz();
                let len = msg.len() as u64;
                if flooder
                    .publish(GossipTopicKind::RawTxLists, msg)
                    .await
                    .is_ok()
                {
                    sent.fetch_add(len, Ordering::SeqCst);
                }
            }
        })
    };
    let penalised = wait_peer(&victim, flooder_id, |p| p.score < 0.0).await;
    assert!(
        penalised.is_some(),
        "a peer sustaining a flood over its gossip byte limit is penalised"
    );
    // Keep flooding until far more than the limit was sent (bounded).
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while sent.load(Ordering::SeqCst) < 64 * MSG as u64 {
            tick.tick().await;
        }
    })
    .await
    .expect("the flood goes out");
    publisher.abort();
    // What the SDK got is bounded by the limit over the time elapsed, not by what was sent.
    let got = delivered.load(Ordering::SeqCst);
    let elapsed = start_at.elapsed().as_secs_f64();
    let bound =
        limit.burst_bytes as f64 + limit.burst_bytes as f64 / limit.period.as_secs_f64() * elapsed;
    let sent = sent.load(Ordering::SeqCst);
    assert!(got >= MSG as u64, "the burst is delivered ({got} bytes)");
    assert!(
        (got as f64) <= bound,
        "delivered {got} bytes in {elapsed:.1} s, over the limit's {bound:.0} (sent {sent})"
    );
    assert!(
        sent > 4 * got,
        "the flood was far over the limit (sent {sent}, got {got})"
    );
}
