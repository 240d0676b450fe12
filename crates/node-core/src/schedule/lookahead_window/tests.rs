//! The window rules against the worked examples of L1-LOOKAHEAD.md §7 (`testdata/lookahead`)
//! and against generated lists.

use super::vectors::*;
use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

fn entry(committer: u8, timestamp: u64) -> LookaheadEntry {
    LookaheadEntry {
        committer: Address::with_last_byte(committer),
        timestamp: U256::from(timestamp),
        registration_root: B256::with_last_byte(committer),
        validator_leaf_index: U256::ZERO,
    }
}

fn list(epoch: u64, entries: &[LookaheadEntry]) -> EpochLookahead {
    EpochLookahead::new(epoch, entries).expect("a valid list")
}

/// Who signs at `t`, whether as the fallback, and the end of `t`'s window.
fn resolved(known: &KnownEpochs, t: u64) -> (Address, bool, u64) {
    let r = known.resolve(t).expect("resolved");
    (r.signer, r.is_fallback, r.window.end)
}

/// Why `window_at` finds no window at `time`.
fn unresolved(time: u64, curr: &EpochLookahead, next: Option<&EpochLookahead>) -> Unresolved {
    window_at(time, curr, next).expect_err("no window")
}

#[test]
fn the_hashes_buckets_and_storage_words_of_the_worked_examples() {
    let v = vectors();
    assert_eq!(beacon_genesis(v.l1_chain_id), v.beacon_genesis);
    for h in &v.hashes {
        let list = entries(&v.lists[&h.epoch]);
        assert_eq!(
            lookahead_hash(h.epoch, &list),
            h.hash,
            "hash of epoch {}",
            h.epoch
        );
        assert_eq!(h.epoch % LOOKAHEAD_BUFFER_SIZE, h.bucket);
        if let Some(slot) = h.storage_slot {
            assert_eq!(lookahead_storage_slot(h.epoch), slot);
        }
        if let Some(word) = h.storage_word {
            assert_eq!(decode_storage_word(word), (h.epoch, h.hash));
        }
    }
}

#[test]
fn every_worked_example_resolves_to_its_window_and_signer() {
    let v = vectors();
    let clock = EpochClock::new(v.beacon_genesis);
    let lists: BTreeMap<u64, EpochLookahead> = v
        .lists
        .iter()
        .map(|(epoch, l)| (*epoch, list(*epoch, &entries(l))))
        .collect();
    assert!(!v.cases.is_empty());
    for case in &v.cases {
        let epoch = clock.epoch_of(case.t).expect("after genesis");
        let next = clock.next(epoch).and_then(|n| lists.get(&n));
        let window = window_at(case.t, &lists[&epoch], next).expect(&case.note);
        assert_eq!(
            (window.start, window.end),
            (case.start, case.end),
            "{}",
            case.note
        );
        let blacklisted = window
            .proposer
            .registration_root()
            .is_some_and(|root| case.blacklisted.contains(&root));
        let (signer, is_fallback) = window
            .proposer
            .signer(blacklisted, Some(v.fallback[&window.epoch]))
            .expect("the fallback is known");
        assert_eq!(
            (signer, is_fallback),
            (case.signer, case.is_fallback),
            "{}",
            case.note
        );
    }
}

#[test]
fn epochs_count_from_the_chains_beacon_genesis() {
    // L1-LOOKAHEAD.md §1's mainnet example.
    let mainnet = EpochClock::new(beacon_genesis(1));
    assert_eq!(mainnet.epoch_of(1_760_000_000), Some(1_759_999_703));
    assert_eq!(mainnet.epoch_of(1_759_999_703), Some(1_759_999_703));
    assert_eq!(mainnet.epoch_of(1_759_999_702), Some(1_759_999_703 - 384));
    assert_eq!(mainnet.epoch_of(1_606_824_022), None, "before genesis");
    assert_eq!(mainnet.genesis(), 1_606_824_023);
    assert_eq!(beacon_genesis(17_000), 1_695_902_400);
    assert_eq!(beacon_genesis(7_014_190_335), 1_718_967_660);
    assert_eq!(beacon_genesis(560_048), 1_742_213_400);
    assert_eq!(beacon_genesis(11_155_111), 0, "Sepolia counts from 0");
    assert_eq!(EpochClock::new(0).next(384), Some(768));
    assert_eq!(EpochClock::new(0).next(u64::MAX), None);
    assert_eq!(
        EpochClock::new(0).epoch_of(u64::MAX),
        Some(u64::MAX / 384 * 384)
    );
}

#[test]
fn an_entry_at_slot_0_owns_one_l1_slot_and_an_entry_at_the_last_slot_leaves_no_tail() {
    let e = 384 * 10;
    let curr = list(e, &[entry(1, e), entry(2, e + 372)]);
    let w = window_at(e, &curr, None).unwrap();
    assert_eq!((w.start, w.end), (e - 12, e));
    let w = window_at(e + 1, &curr, None).unwrap();
    assert_eq!((w.start, w.end), (e, e + 372));
    assert_eq!(
        w.proposer.signer(false, None),
        Some((Address::with_last_byte(2), false))
    );
    // An L2 time after the last L1 slot is in the tail: it needs the next list.
    assert_eq!(unresolved(e + 373, &curr, None), Unresolved::NeedsNextEpoch);
}

#[test]
fn the_tail_waits_for_the_next_epochs_list_and_never_takes_another_epochs() {
    let e = 384 * 10;
    let curr = list(e, &[entry(1, e + 36)]);
    assert_eq!(unresolved(e + 37, &curr, None), Unresolved::NeedsNextEpoch);
    let later = list(e + 768, &[entry(3, e + 768 + 12)]);
    assert_eq!(
        unresolved(e + 37, &curr, Some(&later)),
        Unresolved::NeedsNextEpoch
    );
    let next = list(e + 384, &[entry(2, e + 384 + 24)]);
    let w = window_at(e + 37, &curr, Some(&next)).unwrap();
    assert_eq!((w.start, w.end, w.epoch), (e + 36, e + 408, e));
    // Before the last entry the next list is not needed.
    assert_eq!(window_at(e + 36, &curr, None).unwrap().end, e + 36);
}

#[test]
fn a_time_outside_the_lists_epoch_has_no_window() {
    let e = 384 * 10;
    let curr = list(e, &[entry(1, e + 36)]);
    assert_eq!(unresolved(e - 1, &curr, None), Unresolved::WrongEpoch);
    assert_eq!(unresolved(e + 384, &curr, None), Unresolved::WrongEpoch);
    assert!(window_at(e + 383, &curr, Some(&list(e + 384, &[]))).is_ok());
    let empty = list(e, &[]);
    assert_eq!(unresolved(e + 384, &empty, None), Unresolved::WrongEpoch);
}

#[test]
fn the_last_epochs_of_u64_resolve_without_overflow() {
    let e = u64::MAX / 384 * 384;
    let empty = list(e, &[]);
    assert_eq!(window_at(e + 1, &empty, None).map(|w| w.end), Ok(u64::MAX));
    let curr = list(e, &[entry(1, e + 12)]);
    assert_eq!(
        window_at(e + 13, &curr, Some(&empty)),
        Err(Unresolved::NeedsNextEpoch)
    );
}

#[test]
fn a_list_the_store_could_not_hold_is_refused() {
    let e = 384 * 10;
    let too_long: Vec<_> = (0..33).map(|i| entry(1, e + i)).collect();
    assert_eq!(
        EpochLookahead::new(e, &too_long),
        Err(LookaheadListError::TooLong(33))
    );
    let full: Vec<_> = (0..32).map(|i| entry(1, e + 12 * i)).collect();
    assert_eq!(EpochLookahead::new(e, &full).unwrap().entries().count(), 32);
    assert_eq!(
        EpochLookahead::new(e, &[entry(1, e + 12), entry(2, e + 12)]),
        Err(LookaheadListError::NotIncreasing(1))
    );
    assert_eq!(
        EpochLookahead::new(e, &[entry(1, e + 24), entry(2, e + 12)]),
        Err(LookaheadListError::NotIncreasing(1))
    );
    assert_eq!(
        EpochLookahead::new(e, &[entry(1, e - 12)]),
        Err(LookaheadListError::OutsideEpoch(0))
    );
    assert_eq!(
        EpochLookahead::new(e, &[entry(1, e + 384)]),
        Err(LookaheadListError::OutsideEpoch(0))
    );
    let mut huge = entry(1, 0);
    huge.timestamp = U256::from(u64::MAX) + U256::from(1u8);
    assert_eq!(
        EpochLookahead::new(e, &[huge]),
        Err(LookaheadListError::OutsideEpoch(0))
    );
    // The store's unchecked alignment lets `E − 4` through (§4.2); so does the reader.
    let odd = EpochLookahead::new(e, &[entry(1, e - 4), entry(2, e + 383)]).unwrap();
    assert_eq!(odd.epoch(), e);
    assert!(!odd.is_empty());
    assert_eq!(window_at(e, &odd, None).unwrap().start, e - 4);
    assert_eq!(
        EpochLookahead::new(0, &[entry(1, 1)])
            .unwrap()
            .entries()
            .count(),
        1
    );
}

#[test]
fn a_blacklisted_owner_or_an_empty_list_is_signed_by_the_fallback() {
    let fallback = Address::with_last_byte(0xff);
    let owner = Proposer::Entry {
        committer: Address::with_last_byte(1),
        registration_root: B256::with_last_byte(9),
    };
    assert_eq!(
        owner.signer(false, Some(fallback)),
        Some((Address::with_last_byte(1), false))
    );
    assert_eq!(owner.signer(true, Some(fallback)), Some((fallback, true)));
    assert_eq!(
        Proposer::Fallback.signer(false, Some(fallback)),
        Some((fallback, true))
    );
    // An unknown fallback leaves only its own windows unsigned.
    assert_eq!(
        owner.signer(false, None),
        Some((Address::with_last_byte(1), false))
    );
    assert_eq!(owner.signer(true, None), None);
    assert_eq!(Proposer::Fallback.signer(false, None), None);
    assert_eq!(owner.registration_root(), Some(B256::with_last_byte(9)));
    assert_eq!(Proposer::Fallback.registration_root(), None);
}

fn knowledge(epoch: u64, entries: &[LookaheadEntry], fallback: Option<u8>) -> EpochKnowledge {
    EpochKnowledge {
        list: list(epoch, entries),
        hash: lookahead_hash(epoch, entries),
        fallback: fallback.map(Address::with_last_byte),
        blacklisted: BTreeSet::new(),
    }
}

#[test]
fn known_epochs_resolve_only_what_they_know() {
    let e = 384 * 10;
    let mut known = KnownEpochs::new(EpochClock::new(0), 4);
    let fallback = Address::with_last_byte(0xf0);
    // Entry 1's list for epoch `e`, with the fallback preconfer known.
    let with_fallback = || knowledge(e, &[entry(1, e + 36)], Some(0xf0));
    assert!(known.is_empty());
    assert_eq!(known.resolve(e + 1), None, "nothing known");
    assert_eq!(
        known.learn(knowledge(e, &[entry(1, e + 36)], None)),
        Learned::Updated
    );
    assert_eq!(known.len(), 1);
    assert_eq!(
        resolved(&known, e + 30),
        (Address::with_last_byte(1), false, e + 36)
    );
    assert_eq!(known.resolve(e + 37), None, "the tail needs the next list");
    // The next epoch posted empty: the tail is the fallback's, and the fallback is not known.
    assert_eq!(known.learn(knowledge(e + 384, &[], None)), Learned::Updated);
    assert_eq!(known.resolve(e + 37), None, "the fallback is not known yet");
    assert_eq!(known.learn(with_fallback()), Learned::Updated);
    assert_eq!(resolved(&known, e + 37), (fallback, true, e + 372));
    assert_eq!(known.learn(with_fallback()), Learned::Unchanged);
    // Blacklisted now: the fallback signs the entry's window.
    let mut blacklisted = with_fallback();
    blacklisted.blacklisted.insert(B256::with_last_byte(1));
    assert_eq!(known.learn(blacklisted), Learned::Updated);
    assert_eq!(resolved(&known, e + 30), (fallback, true, e + 36));
    // A reorg replaced the list.
    assert_eq!(
        known.learn(knowledge(e, &[entry(2, e + 48)], Some(0xf0))),
        Learned::ListReplaced
    );
    assert_eq!(
        known.resolve(e + 40).unwrap().signer,
        Address::with_last_byte(2)
    );
    assert_eq!(known.get(e).map(|k| k.list.entries().count()), Some(1));
    assert!(known.forget(e));
    assert!(!known.forget(e));
    assert_eq!(known.resolve(e + 40), None);
    assert_eq!(known.clock(), EpochClock::new(0));
    assert_eq!(known.resolve(u64::MAX), None);
}

#[test]
fn known_epochs_keep_the_newest_and_refuse_older_ones_when_full() {
    let e = 384 * 10;
    let mut known = KnownEpochs::new(EpochClock::new(0), 2);
    for i in 1..=3 {
        assert_eq!(
            known.learn(knowledge(e + 384 * i, &[], Some(1))),
            Learned::Updated
        );
    }
    assert_eq!(known.len(), 2);
    assert!(known.get(e + 384).is_none(), "the oldest went");
    assert_eq!(known.learn(knowledge(e, &[], Some(1))), Learned::TooOld);
    assert!(known.get(e).is_none());
    // A newer epoch is kept, and the oldest goes.
    assert_eq!(
        known.learn(knowledge(e + 384 * 5, &[], Some(1))),
        Learned::Updated
    );
    assert!(known.get(e + 384 * 2).is_none());
    assert_eq!(KnownEpochs::new(EpochClock::new(0), 0).capacity, 2);
}

#[test]
fn known_epochs_count_what_they_remember() {
    let e = 384 * 10;
    let mut known = KnownEpochs::new(EpochClock::new(0), 4);
    assert!(known.is_empty());
    assert_eq!(known.len(), 0);
    known.learn(knowledge(e, &[], Some(1)));
    assert!(!known.is_empty(), "one epoch is remembered");
    assert_eq!(known.len(), 1);
    known.learn(knowledge(e + 384, &[entry(1, e + 384 + 12)], Some(1)));
    assert_eq!(known.len(), 2);
    assert!(known.forget(e));
    assert!(!known.is_empty(), "the other epoch is still remembered");
    assert!(known.forget(e + 384));
    assert!(known.is_empty(), "everything was forgotten");
    assert_eq!(known.len(), 0);
}

fn generated_list(epoch: u64) -> impl Strategy<Value = Vec<LookaheadEntry>> {
    proptest::collection::btree_set(0u64..32, 0..=32).prop_map(move |slots| {
        slots
            .into_iter()
            .map(|slot| entry(slot as u8 + 1, epoch + 12 * slot))
            .collect()
    })
}

proptest! {
    /// Over generated lists: every time of an epoch has exactly one window; windows tile the
    /// epoch without gaps or overlaps, each owned by the entry at its end, and `t` lies inside
    /// its window except where the rules say it does not (an empty epoch's slot 0, the L2 times
    /// after a fallback tail's end).
    #[test]
    fn windows_tile_the_epoch(
        curr in generated_list(384 * 100),
        next in generated_list(384 * 101),
    ) {
        let e = 384 * 100;
        let curr_list = list(e, &curr);
        let next_list = list(e + 384, &next);
        let mut previous: Option<Window> = None;
        for t in e..e + 384 {
            let w = window_at(t, &curr_list, Some(&next_list)).unwrap();
            let fallback_overrun = w.proposer == Proposer::Fallback && t > w.end;
            // Only a fallback tail after an entry at the epoch's last slot is empty (§4.2).
            prop_assert!(w.start < w.end || (fallback_overrun && w.start == w.end));
            let empty_slot_0 = curr.is_empty() && t == e;
            prop_assert!((w.start < t && t <= w.end) || fallback_overrun || empty_slot_0);
            if let Proposer::Entry { committer, .. } = w.proposer {
                let owner = curr.iter().chain(next.iter()).find(|x| x.timestamp == U256::from(w.end));
                prop_assert_eq!(owner.map(|x| x.committer), Some(committer));
            }
            if let Some(p) = previous {
                // The same window, or the next one starting where the last ended.
                prop_assert!(p == w || (w.start == p.end && p.end == t - 1));
            }
            previous = Some(w);
        }
    }
}
