//! Misbehaving publishers over real TCP on 127.0.0.1: equivocation evidence, and a peer that
//! keeps publishing invalid commitments is penalised and banned while honest traffic continues.

mod common;

use common::*;
use p2p::testkit::ChainBuilder;
use p2p::{EvidenceKind, SdkEvent};
use preconfirmation_net::NetworkEvent;
use preconfirmation_types::{GossipTopicKind, WireMessage, U256};

/// X publishes block 2, then a different block 2 signed by the same preconfer, then block 3.
/// B reports the equivocation with both commitments and does not forward the second: C, which
/// hears only B, gets blocks 2 and 3 and never sees the conflicting one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equivocation_emits_event_with_both_commitments() {
    // One slot per window: every block is its window's pure EOP hand-off (no tx lists needed).
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 1, 50);
    let genesis = builder.next_block(None);

    let mut b = start_node(sdk_config(), &builder).await;
    let mut c = start_node(sdk_config(), &builder).await;
    let (x, _x_events) = raw_node().await;
    connect(&c.sdk, &b.sdk).await;
    b.sdk
        .dial(x.listen_addrs().await.unwrap()[0].clone())
        .await
        .unwrap();
    b.sdk.wait_for_gossip_peers(2, WAIT).await.expect("mesh");
    wait_live(&b.sdk).await;
    wait_live(&c.sdk).await;

    // Block 1, then the equivocating pair for block 2.
    let publish = |signed: &preconfirmation_types::SignedCommitment| {
        let x = x.clone();
        let bytes = signed.to_ssz();
        async move {
            x.publish(GossipTopicKind::Commitments, bytes)
                .await
                .expect("x publishes")
        }
    };
    publish(&genesis.commitment).await;
    wait_head(&c.sdk, 1).await;

    let unsigned = builder.next_unsigned(None);
    let first = builder.sign_next(unsigned.clone());
    let mut conflicting = unsigned;
    conflicting.preconf.gas_limit = U256::from(12_345u64);
    let second = builder.sign_next(conflicting);
    builder.advance(&first);
    let third = builder.next_block(None).commitment;

    publish(&first).await;
    wait_head(&b.sdk, 2).await;
    publish(&second).await;
    let (kind, ev_first, ev_second) = wait_event(&mut b.events, |e| match e {
        SdkEvent::Equivocation {
            kind,
            first,
            second,
            ..
        } => Some((*kind, (**first).clone(), (**second).clone())),
        _ => None,
    })
    .await;
    assert_eq!(kind, EvidenceKind::SameBlockNumber);
    assert_eq!(ev_first, first);
    assert_eq!(ev_second, second);
    assert_eq!(b.sdk.commitment_by_number(2).unwrap(), Some(first.clone()));

    publish(&third).await;
    wait_head(&c.sdk, 3).await;
    // C saw blocks 1..3 from B; had B forwarded the conflicting block 2, it would have arrived
    // before block 3 and C would have reported it too.
    let mut saw_equivocation = false;
    while let Ok(Ok(event)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), c.events.recv()).await
    {
        saw_equivocation |= matches!(event, SdkEvent::Equivocation { .. });
    }
    assert!(
        !saw_equivocation,
        "the conflicting commitment was forwarded"
    );
    assert_eq!(c.sdk.commitment_by_number(2).unwrap(), Some(first));
    b.sdk.shutdown().await.unwrap();
    c.sdk.shutdown().await.unwrap();
}

/// X floods B with commitments whose signatures do not recover. B rejects them, X's score
/// falls and B bans it; meanwhile A's valid blocks keep being accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_publisher_is_penalised_then_banned() {
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 8, 200);
    let a = start_node(sdk_config(), &builder).await;
    let mut b = start_node(sdk_config(), &builder).await;
    let (x, mut x_events) = raw_node().await;
    connect(&b.sdk, &a.sdk).await;
    b.sdk
        .dial(x.listen_addrs().await.unwrap()[0].clone())
        .await
        .unwrap();
    b.sdk.wait_for_gossip_peers(2, WAIT).await.expect("mesh");
    wait_live(&b.sdk).await;
    let x_id = x.local_peer_id();

    let flood = tokio::spawn({
        let x = x.clone();
        let template = builder.next_unsigned(Some(b"junk"));
        async move {
            for i in 0u64..400 {
                let mut signed = preconfirmation_types::SignedCommitment {
                    commitment: template.clone(),
                    ..Default::default()
                };
                // Distinct payloads, so gossipsub does not dedupe them; none recovers.
                signed.commitment.preconf.proposal_id = U256::from(i);
                signed.signature.0[64] = 7;
                if x.publish(GossipTopicKind::Commitments, signed.to_ssz())
                    .await
                    .is_err()
                {
                    break;
                }
                tokio::task::yield_now().await;
            }
        }
    });

    let mut published = 0u64;
    let banned = tokio::time::timeout(WAIT, async {
        loop {
            let block = builder.next_block(Some(vec![published as u8; 64]));
            let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
            a.sdk
                .publish(block.commitment, txlist)
                .await
                .expect("honest publish");
            published += 1;
            wait_head(&b.sdk, published).await;
            while let Ok(Ok(event)) =
                tokio::time::timeout(std::time::Duration::from_millis(100), b.events.recv()).await
            {
                if matches!(event, SdkEvent::PeerBanned { peer, .. } if peer == x_id) {
                    return published;
                }
            }
        }
    })
    .await
    .expect("X banned within the bound");
    flood.abort();
    assert!(banned >= 1);

    // X is disconnected and cannot come back during the ban.
    wait_net_event(
        &mut x_events,
        |e| matches!(e, NetworkEvent::PeerDisconnected { peer } if *peer == b.sdk.local_peer_id()),
    )
    .await;
    let _ = x.dial(b.sdk.listen_addrs().await.unwrap()[0].clone()).await;
    // Honest traffic continues after the ban; by then a re-dial from X has been refused.
    for i in 0..3u8 {
        let block = builder.next_block(Some(vec![0xa0 + i; 64]));
        let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
        a.sdk
            .publish(block.commitment, txlist)
            .await
            .expect("honest publish");
        published += 1;
        wait_head(&b.sdk, published).await;
    }
    let peers = b.sdk.peers().await.unwrap();
    assert!(
        peers.iter().all(|p| p.peer_id != x_id),
        "X reconnected during its ban"
    );
    a.sdk.shutdown().await.unwrap();
    b.sdk.shutdown().await.unwrap();
}
