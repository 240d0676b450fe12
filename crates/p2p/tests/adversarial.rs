//! Misbehaving publishers over real TCP on 127.0.0.1: equivocation evidence, and a peer that
//! keeps publishing invalid commitments is penalised and banned while honest traffic continues.

mod common;

use std::time::Duration;

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
    connect_raw(&b.sdk, &x).await;
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
    let saw_equivocation = events_until_quiet(&mut c.events, Duration::from_millis(200))
        .await
        .iter()
        .any(|e| matches!(e, SdkEvent::Equivocation { .. }));
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
    connect_raw(&b.sdk, &x).await;
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
            publish_block(&a.sdk, &block).await;
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
        publish_block(&a.sdk, &block).await;
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

/// A schedule-unknown flood: while the victim does not know the schedule of the next slots,
/// four peer ids flood validly signed commitments (any key recovers) for those slots, 600
/// each, against a pending buffer of 1 024 entries. The honest publisher's four pending blocks
/// survive (per-peer quota, heaviest source evicted first); once the schedule is known they
/// are accepted, and the flood is dropped. Catch-up is off on the victim so only the buffer
/// can deliver those blocks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_unknown_flood() {
    const ATTACKERS: usize = 4;
    const PER_ATTACKER: u64 = 600;
    let mut builder = ChainBuilder::in_the_past(chain(), 3, 4, 400);
    // The victim knows slots 0..=7 (blocks 1..=8) only.
    let horizon = builder.lookahead_known_to(7);
    let mut victim_config = sdk_config();
    victim_config.catchup.enabled = false;
    victim_config.pending.max_count = 1_024;
    let (victim, _victim_events) = p2p::P2pSdk::start(
        victim_config,
        std::sync::Arc::new(p2p::MemoryStorage::default()) as std::sync::Arc<dyn p2p::SdkStorage>,
        horizon.clone(),
        None,
    )
    .await
    .expect("victim starts");
    let publisher = start_node(sdk_config(), &builder).await;
    connect(&publisher.sdk, &victim).await;
    let mut attackers = Vec::new();
    for _ in 0..ATTACKERS {
        let (x, _events) = raw_node().await;
        x.dial(victim.listen_addrs().await.unwrap()[0].clone())
            .await
            .expect("attacker dials");
        attackers.push((x, _events));
    }
    victim
        .wait_for_gossip_peers(1 + ATTACKERS, WAIT)
        .await
        .expect("mesh");
    wait_live(&victim).await;

    let blocks = builder.blocks(12, 32);
    let publish = |blocks: &[p2p::testkit::Block]| {
        let (sdk, blocks) = (publisher.sdk.clone(), blocks.to_vec());
        async move {
            for b in &blocks {
                publish_block(&sdk, b).await;
            }
        }
    };
    publish(&blocks[..8]).await;
    wait_head(&victim, 8).await;
    // Blocks 9..=12 lie beyond the victim's schedule: pending.
    publish(&blocks[8..]).await;
    wait_status(&victim, |s| s.pending_schedule == 4).await;

    // The flood: any key's signature recovers while the schedule is unknown.
    let rogue = preconfirmation_types::secret_key_from_bytes([9u8; 32]).expect("key");
    let template = builder.next_unsigned(Some(b"flood"));
    let mut sent = 0u64;
    for (a, (x, _)) in attackers.iter().enumerate() {
        for i in 0..PER_ATTACKER {
            let mut c = template.clone();
            c.preconf.block_number = U256::from(14 + i % 500);
            c.preconf.proposal_id = U256::from(1_000_000 * (a as u64 + 1) + i);
            let bytes = builder.sign_with(&rogue, c).to_ssz();
            if x.publish(GossipTopicKind::Commitments, bytes).await.is_ok() {
                sent += 1;
            }
        }
    }
    assert!(
        sent >= ATTACKERS as u64 * PER_ATTACKER / 2,
        "the flood was sent: {sent}"
    );
    // The flood reached the buffer (it is full), the honest entries are still there.
    let flooded = wait_status(&victim, |s| s.pending_schedule >= 1_000).await;
    assert!(
        flooded.pending_schedule <= 1_024,
        "over the cap: {}",
        flooded.pending_schedule
    );

    // The schedule becomes known: the honest blocks are accepted from the buffer.
    horizon.extend_horizon(1_000);
    victim.schedule_updated().expect("schedule update");
    let status = wait_head(&victim, 12).await;
    assert_eq!(status.head_hash, publisher.sdk.status().head_hash);
    for b in &blocks[8..] {
        let n = u64::try_from(b.commitment.preconf().block_number).unwrap();
        assert_eq!(
            victim.commitment_by_number(n).unwrap().as_ref(),
            Some(&b.commitment)
        );
    }
    println!(
        "RELIABILITY family=schedule_unknown_flood sent={sent} pending_peak={} honest_pending_survived=4",
        flooded.pending_schedule
    );
    victim.shutdown().await.unwrap();
    publisher.sdk.shutdown().await.unwrap();
}

/// A commitment for a window beyond the known schedule waits as pending (any key may have
/// signed it), so its tx list is not released as `Accept` nor forwarded. Three nodes in a
/// line, X → V → W: V knows the schedule up to slot 7 only; X gossips a commitment for slot
/// 40, signed by a key nobody elected, and its tx list. V buffers the commitment; W receives
/// no tx-list message at all. An honest block's list still crosses the line afterwards (the
/// line works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_txlist_riding_on_a_commitment_beyond_the_schedule_is_not_forwarded() {
    use std::sync::Arc;
    let builder = ChainBuilder::in_the_past(chain(), 2, 4, 200);
    let (v, _v_events) = p2p::P2pSdk::start(
        sdk_config(),
        Arc::new(p2p::MemoryStorage::default()),
        builder.lookahead_known_to(7),
        None,
    )
    .await
    .expect("V starts");
    let (x, _x_events) = raw_node().await;
    let (w, mut w_events) = raw_node().await;
    connect_raw(&v, &x).await;
    connect_raw(&v, &w).await;
    v.wait_for_gossip_peers(2, WAIT).await.expect("mesh");
    wait_live(&v).await;

    let mut beyond = ChainBuilder::in_the_past(chain(), 2, 4, 200);
    for _ in 0..40 {
        beyond.skip_slot();
    }
    let txlist = b"junk riding on a far-future commitment".to_vec();
    let unsigned = beyond.next_unsigned(Some(&txlist));
    let stranger = p2p::testkit::preconfer_key(99);
    let commitment = beyond.sign_with(&stranger, unsigned);
    let gossip = preconfirmation_types::RawTxListGossip::new(txlist).unwrap();
    x.publish(GossipTopicKind::Commitments, commitment.to_ssz())
        .await
        .expect("x publishes the commitment");
    wait_status(&v, |s| s.pending_schedule == 1).await;
    x.publish(GossipTopicKind::RawTxLists, gossip.to_ssz())
        .await
        .expect("x publishes the tx list");
    wait_status(&v, |s| s.orphan_txlists == 1).await;

    // An honest block with its list, through V: W gets that list, and it is the only one.
    let mut honest = builder;
    let block = honest.next_block(Some(b"an honest list".to_vec()));
    let honest_list = block.txlist.clone().expect("list");
    x.publish(GossipTopicKind::RawTxLists, honest_list.to_ssz())
        .await
        .expect("x publishes the honest list");
    x.publish(GossipTopicKind::Commitments, block.commitment.to_ssz())
        .await
        .expect("x publishes the honest block");
    let NetworkEvent::Gossip { data, .. } = wait_net_event(&mut w_events, |e| {
        matches!(
            e,
            NetworkEvent::Gossip {
                topic: GossipTopicKind::RawTxLists,
                ..
            }
        )
    })
    .await
    else {
        unreachable!("matched a gossip event")
    };
    assert_eq!(
        data.as_slice(),
        honest_list.to_ssz().as_slice(),
        "the first tx list W receives is the honest one: the junk was not forwarded"
    );
    while let Some(e) = w_events.try_recv() {
        assert!(
            !matches!(
                e,
                NetworkEvent::Gossip {
                    topic: GossipTopicKind::RawTxLists,
                    ..
                }
            ),
            "W received a second tx list"
        );
    }
    v.shutdown().await.expect("V stops");
}
