//! Gossiped tx lists: checked against their hash, held until a commitment references them,
//! released or ignored.

use super::*;

#[test]
fn wrong_txlist_hash_is_rejected_with_penalty() {
    let mut h = harness();
    let mut t = preconfirmation_types::RawTxListGossip::new(b"abc".to_vec()).unwrap();
    t.raw_tx_list_hash = B256::repeat_byte(1);
    assert_eq!(
        h.core.on_gossip_txlist(peer(), gossip_id(0), &t.to_ssz()),
        Some(GossipVerdict::Reject)
    );
}

#[test]
fn unreferenced_txlist_is_held_then_ignored_never_announced() {
    let mut h = harness_with(|c| c.orphan_txlists.hold_verdict_for = std::time::Duration::ZERO);
    let junk = preconfirmation_types::RawTxListGossip::new(vec![7u8; 1000]).unwrap();
    let p = peer();
    assert_eq!(
        h.core.on_gossip_txlist(p, gossip_id(1), &junk.to_ssz()),
        None,
        "held: neither forwarded nor dropped yet"
    );
    assert!(verdict_effects(&mut h).is_empty());
    assert_eq!(h.core.status().orphan_txlists, 1);
    // The same bytes again (another message id): a duplicate.
    assert_eq!(
        h.core.on_gossip_txlist(p, gossip_id(2), &junk.to_ssz()),
        Some(GossipVerdict::Ignore)
    );
    h.core.tick();
    assert_eq!(
        verdict_effects(&mut h),
        vec![(gossip_id(1), GossipVerdict::Ignore)],
        "no commitment came: ignored, without penalty"
    );
    h.core.tick();
    assert!(verdict_effects(&mut h).is_empty(), "released once");
    assert!(
        !std::iter::from_fn(|| h.events.try_recv().ok())
            .any(|e| matches!(e, SdkEvent::RawTxList { .. })),
        "an unreferenced tx list is never announced to the sidecar"
    );
    assert_eq!(h.storage.stats().unwrap().txlists, 0);
}

#[test]
fn held_txlist_is_forwarded_when_its_commitment_is_accepted() {
    let mut h = harness();
    let block = h.builder.blocks(1, 64).remove(0);
    let t = block.txlist.as_ref().unwrap();
    let p = peer();
    assert_eq!(h.core.on_gossip_txlist(p, gossip_id(3), &t.to_ssz()), None);
    assert_eq!(
        h.core
            .on_gossip_commitment(p, gossip_id(100), &block.commitment.to_ssz()),
        Some(GossipVerdict::Accept)
    );
    assert_eq!(
        verdict_effects(&mut h),
        vec![(gossip_id(3), GossipVerdict::Accept)]
    );
    flush_writes(&mut h);
    assert!(h.storage.txlist(&t.raw_tx_list_hash).unwrap().is_some());
    assert!(
        std::iter::from_fn(|| h.events.try_recv().ok()).any(|e| matches!(
            e,
            SdkEvent::RawTxList { hash, block_number: 1 } if hash == t.raw_tx_list_hash
        )),
        "announced once stored with its commitment"
    );
    h.core.tick();
    assert!(verdict_effects(&mut h).is_empty(), "not expired later");
}

/// A commitment for a window beyond the known schedule waits as pending (any key may have
/// signed it), so the tx list it references is not released: a tx list is forwarded only on
/// an *accepted* commitment's word (or one waiting for its parent: its signer was checked),
/// whichever comes first.
#[test]
fn a_commitment_waiting_for_its_schedule_does_not_release_its_txlist() {
    let mut h = harness_knowing(|_| {}, |b| b.lookahead_known_to(3));
    let beyond = beyond_the_horizon(&h);
    // Block 1 in slot 8, beyond the horizon, signed by a key nobody elected.
    let txlist = b"junk riding on a far-future commitment".to_vec();
    let unsigned = beyond.next_unsigned(Some(&txlist));
    let stranger = crate::testkit::preconfer_key(99);
    let commitment = beyond.sign_with(&stranger, unsigned);
    let gossip = preconfirmation_types::RawTxListGossip::new(txlist.clone()).unwrap();
    let p = peer();
    // List first (held), then the commitment: it waits for the schedule.
    assert_eq!(
        h.core.on_gossip_txlist(p, gossip_id(1), &gossip.to_ssz()),
        None
    );
    assert_eq!(
        h.core
            .on_gossip_commitment(p, gossip_id(2), &commitment.to_ssz()),
        None,
        "held while its schedule is unknown"
    );
    assert_eq!(h.core.status().pending_schedule, 1);
    assert!(
        verdict_effects(&mut h).is_empty(),
        "the held tx list is not released"
    );
    // Commitment first, then the list: held too, not accepted.
    let txlist2 = b"more junk".to_vec();
    let commitment2 = beyond.sign_with(&stranger, beyond.next_unsigned(Some(&txlist2)));
    let gossip2 = preconfirmation_types::RawTxListGossip::new(txlist2).unwrap();
    assert_eq!(
        h.core
            .on_gossip_commitment(p, gossip_id(3), &commitment2.to_ssz()),
        None
    );
    assert_eq!(
        h.core.on_gossip_txlist(p, gossip_id(4), &gossip2.to_ssz()),
        None,
        "held, not forwarded"
    );
    assert!(verdict_effects(&mut h).is_empty(), "still held");
    // Once held too long, the lists are ignored, never accepted.
    let hold = h.core.config().orphan_txlists.hold_verdict_for;
    h.core
        .state
        .orphans_mut()
        .expire(Instant::now() + hold, hold);
    let released = verdict_effects(&mut h);
    assert_eq!(released.len(), 2, "{released:?}");
    for id in [gossip_id(1), gossip_id(4)] {
        assert!(
            released.contains(&(id, GossipVerdict::Ignore)),
            "{released:?}"
        );
    }
}
