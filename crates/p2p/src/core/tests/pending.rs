//! The pending buffer and the schedule: ageing, floods, a schedule every peer disagrees with,
//! commitments waiting for their schedule, a local commitment for a stored block.

use super::*;

/// An entry's age counts from its first arrival, not from its latest recheck (the schedule
/// retry puts schedule-unknown entries back every second): rechecked after it arrived, it is
/// still swept `max_age` after arrival.
#[test]
fn an_entry_rechecked_past_max_age_is_swept() {
    let mut h = harness_knowing(|_| {}, |b| b.lookahead_known_to(3));
    let mut beyond = beyond_the_horizon(&h);
    let commitment = beyond.next_block(None).commitment;
    let arrived = Instant::now();
    assert_eq!(
        h.core
            .on_gossip_commitment(peer(), gossip_id(1), &commitment.to_ssz()),
        None
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    h.core.retry_schedule_pending();
    assert_eq!(h.core.status().pending_schedule, 1, "still waiting");
    // 50 ms past max_age from its arrival, 50 ms short of it from the recheck.
    let max_age = h.core.config().pending.max_age;
    let head = h.core.head();
    let swept = h.core.state.pending_mut().sweep(
        head,
        arrived + max_age + std::time::Duration::from_millis(50),
    );
    assert_eq!(swept, 1);
    assert_eq!(h.core.status().pending_schedule, 0);
}

#[test]
fn unknown_parent_flood_stays_under_the_pending_caps() {
    let mut h = harness();
    let mut builder = ChainBuilder::in_the_past(*h.builder.chain(), 2, 4, 200);
    // Valid, signed commitments far ahead of the head (parent unknown), many more than the
    // cap; each distinct.
    builder.skip_slot();
    let _ = builder.blocks(2, 8);
    let caps = P2pSdkConfig::default().pending;
    let base = builder.next_unsigned(Some(b"x"));
    let key = *builder.key_for_slot(builder.next_slot()).unwrap();
    for i in 0..(caps.max_count as u64 + 500) {
        let mut c = base.clone();
        c.preconf.proposal_id = U256::from(i);
        c.preconf.block_number = U256::from(3 + i % 60);
        let signed = builder.sign_with(&key, c);
        h.core
            .on_gossip_commitment(peer(), gossip_id(i as usize), &signed.to_ssz());
        let status = h.core.status();
        assert!(status.pending_parent <= caps.max_count);
    }
    assert_eq!(h.core.status().pending_parent, caps.max_count);
}

/// With a wrong local schedule every peer's commitments fail the signer check.
/// Once every connected peer that delivered one disagrees (here the only one), the core
/// stops penalising them for it: gossip gets `Ignore` instead of `Reject`, a catch-up page
/// is marked as the schedule's disagreement. A peer among others that agree is penalised.
#[test]
fn every_peer_disagreeing_with_the_schedule_is_not_penalised() {
    // The local schedule names three keys that sign nothing of the builder's chain.
    let wrong = |b: &ChainBuilder| -> Arc<dyn crate::Lookahead> {
        let others = (100..103)
            .map(|i| {
                preconfirmation_types::secret_key_to_address(&crate::testkit::preconfer_key(i))
            })
            .collect();
        let l = b.lookahead();
        Arc::new(
            crate::RotatingLookahead::new(
                others,
                l.slots_per_window(),
                l.genesis(),
                l.slot_duration(),
            )
            .expect("schedule"),
        )
    };
    let mut h = harness_knowing(|_| {}, wrong);
    let blocks = h.builder.blocks(3, 8);
    let (only, liar, honest) = (peer(), peer(), peer());
    h.core.peer_connected(only);
    let verdict = h
        .core
        .on_gossip_commitment(only, gossip_id(1), &blocks[0].commitment.to_ssz());
    assert_eq!(
        verdict,
        Some(GossipVerdict::Ignore),
        "the lone peer is not penalised"
    );
    assert!(h.core.schedule_disagreement().lock().is_some());
    let items = blocks[1..]
        .iter()
        .map(|b| {
            (
                b.commitment.clone(),
                h.core.validator().recover_signer(&b.commitment),
            )
        })
        .collect();
    let (result, write) = h.core.on_catchup_page(only, items, HashMap::new());
    assert!(write.is_none());
    assert!(matches!(
        result.failure,
        Some(RejectReason::WrongSigner { .. })
    ));
    assert!(
        result.schedule_disagreement,
        "the page's failure is not the peer's"
    );

    // With the correct schedule, a peer that agreed outvotes one that does not.
    let mut h = harness();
    let good = h.builder.next_block(Some(vec![0; 8])).commitment;
    // The next block, signed by a key the schedule does not elect.
    let bad = h.builder.sign_with(
        &crate::testkit::preconfer_key(100),
        h.builder.next_unsigned(Some(&[1; 8])),
    );
    h.core.peer_connected(liar);
    h.core.peer_connected(honest);
    assert_eq!(
        h.core
            .on_gossip_commitment(honest, gossip_id(2), &good.to_ssz()),
        Some(GossipVerdict::Accept)
    );
    assert_eq!(
        h.core
            .on_gossip_commitment(liar, gossip_id(3), &bad.to_ssz()),
        Some(GossipVerdict::Reject)
    );
    assert!(h.core.schedule_disagreement().lock().is_none());
}

/// After a restart memory no longer holds the blocks below the head, but the disk does. A
/// commitment this node's key signs for a stored block with other content is the
/// equivocation it would be, refused without penalty; the stored one again, or anything
/// another key signed for that block, is just stale.
#[test]
fn a_local_commitment_for_a_stored_block_signed_again_is_an_equivocation() {
    let mut h = harness();
    let blocks = h.builder.blocks(3, 16);
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(
            h.core
                .on_gossip_commitment(peer(), gossip_id(i), &b.commitment.to_ssz()),
            Some(GossipVerdict::Accept)
        );
    }
    flush_writes(&mut h);
    assert_eq!(h.storage.stats().unwrap().commitments, 3);
    let core = restarted(&h);
    assert_eq!(core.head(), 3);

    let stored = &blocks[1].commitment;
    let ours = core.validator().recover_signer(stored).unwrap();
    let our_key = *h
        .builder
        .keys()
        .iter()
        .find(|k| preconfirmation_types::secret_key_to_address(k) == ours)
        .expect("block 2's key");
    let other_key = *h
        .builder
        .keys()
        .iter()
        .find(|k| preconfirmation_types::secret_key_to_address(k) != ours)
        .expect("a second key");
    let mut changed = stored.commitment.clone();
    changed.preconf.gas_limit = U256::from(29_000_000u64);
    let check = |signed: &SignedCommitment| {
        core.check_local(signed, core.validator().recover_signer(signed))
    };

    let twice = h.builder.sign_with(&our_key, changed.clone());
    match check(&twice) {
        ValidationOutcome::Reject {
            reason:
                RejectReason::Equivocation {
                    kind: crate::validation::EquivocationKind::SameBlockNumber,
                    first,
                },
            penalise: false,
        } => assert_eq!(*first, *stored, "the stored commitment is the first"),
        other => panic!("our key signing block 2 again: {other:?}"),
    }
    let stale = |outcome: ValidationOutcome| {
        matches!(
            outcome,
            ValidationOutcome::Reject {
                reason: RejectReason::Stale { number: 2, head: 3 },
                ..
            }
        )
    };
    assert!(stale(check(stored)), "the stored commitment itself");
    let same_content = h.builder.sign_with(&other_key, stored.commitment.clone());
    assert!(
        stale(check(&same_content)),
        "block 2's content, another key"
    );
    let other_content = h.builder.sign_with(&other_key, changed);
    assert!(stale(check(&other_content)), "other content, another key");
}

/// Commitments waiting for their schedule are validated again when the schedule learns
/// more: accepted, their held verdicts released as `Accept`, and catch-up told to resume
/// (`Gap` without a peer). Until then a recheck changes nothing.
#[test]
fn schedule_pending_commitments_are_accepted_once_the_schedule_is_known() {
    let mut partial = None;
    let mut h = harness_knowing(
        |_| {},
        |b| {
            let lookahead = b.lookahead_known_to(3);
            partial = Some(lookahead.clone());
            lookahead
        },
    );
    let partial = partial.expect("the harness's lookahead");
    // Blocks 1-6 in slots 0-5: the schedule is known for slots 0-3 only.
    let blocks = h.builder.blocks(6, 16);
    let p = peer();
    for (i, b) in blocks.iter().enumerate() {
        let verdict = h
            .core
            .on_gossip_commitment(p, gossip_id(i), &b.commitment.to_ssz());
        let expected = (i < 4).then_some(GossipVerdict::Accept);
        assert_eq!(verdict, expected, "block {}", i + 1);
    }
    assert_eq!((h.core.head(), h.core.status().pending_schedule), (4, 2));
    h.core.take_effects();

    h.core.retry_schedule_pending();
    assert_eq!((h.core.head(), h.core.status().pending_schedule), (4, 2));
    assert!(
        h.core
            .take_effects()
            .iter()
            .all(|e| !matches!(e, Effect::Gap { .. } | Effect::PendingVerdict { .. })),
        "nothing learned, nothing changes"
    );

    partial.extend_horizon(7);
    h.core.retry_schedule_pending();
    assert_eq!((h.core.head(), h.core.status().pending_schedule), (6, 0));
    let effects = h.core.take_effects();
    assert_eq!(
        released(&effects, true),
        vec![
            (gossip_id(4), GossipVerdict::Accept),
            (gossip_id(5), GossipVerdict::Accept)
        ]
    );
    assert!(
        effects.contains(&Effect::Gap { peer: None }),
        "catch-up resumes: {effects:?}"
    );
}
