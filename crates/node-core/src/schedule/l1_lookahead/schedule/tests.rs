//! The SDK's questions answered from verified epochs: the worked examples by time and by
//! window end, a block timed at its window's end accepted by the real validator, and what is
//! wanted when an epoch is unknown.

use std::collections::BTreeSet;
use std::sync::Arc;

use alloy::primitives::{Address, FixedBytes, B256};
use p2p::validation::{ChainView, LocalHead, ValidationOutcome, Validator};
use p2p::P2pSdkConfig;
use preconfirmation_types::{
    secret_key_from_bytes, secret_key_to_address, sign, PreconfCommitment, Preconfirmation,
    SignedCommitment, U256,
};

use super::*;
use crate::schedule::lookahead_window::vectors::{entries, vectors, Vectors};
use crate::schedule::lookahead_window::{EpochLookahead, LookaheadEntry};

/// A schedule of 2 s L2 slots that verified every list of the vectors, with `blacklisted`.
fn vector_schedule(v: &Vectors, blacklisted: &[B256]) -> LookaheadSchedule {
    let schedule = LookaheadSchedule::new(2, 8, Some(v.beacon_genesis));
    for (epoch, list) in &v.lists {
        let entries = entries(list);
        let learned = schedule.learn(EpochKnowledge {
            list: EpochLookahead::new(*epoch, &entries).expect("a vector list is valid"),
            hash: FixedBytes::ZERO,
            fallback: Some(v.fallback[epoch]),
            blacklisted: blacklisted.iter().copied().collect(),
        });
        assert_eq!(learned, Learned::Updated);
    }
    schedule
}

#[test]
fn the_worked_examples_answer_by_time_and_by_their_window_end() {
    let v = vectors();
    for case in &v.cases {
        let schedule = vector_schedule(&v, &case.blacklisted);
        let at = schedule.schedule_at(case.t).expect(&case.note);
        assert_eq!(
            (at.signer, at.window_end),
            (case.signer, U256::from(case.end)),
            "{}",
            case.note
        );
        let by_end = schedule
            .schedule_for_window_end(U256::from(case.end))
            .expect("in range")
            .expect(&case.note);
        assert_eq!(
            (by_end.signer, by_end.window_end),
            (case.signer, U256::from(case.end)),
            "resolving W itself gives the same window (L1-LOOKAHEAD.md §6): {}",
            case.note
        );
    }
}

#[test]
fn a_window_end_past_u64_is_out_of_range_and_an_unknown_one_is_not() {
    let schedule = LookaheadSchedule::new(2, 8, Some(0));
    assert_eq!(
        schedule.schedule_for_window_end(U256::MAX),
        Err(WindowEndOutOfRange)
    );
    assert_eq!(
        schedule.schedule_for_window_end(U256::from(3_840_036u64)),
        Ok(None)
    );
    let late = LookaheadSchedule::new(2, 8, Some(1_000));
    assert_eq!(
        late.schedule_for_window_end(U256::from(999u64)),
        Err(WindowEndOutOfRange),
        "before the beacon genesis"
    );
    assert_eq!(
        late.schedule_for_window_end(U256::from(1_000u64)),
        Ok(None),
        "the genesis itself is a time: unknown, not out of range"
    );
}

#[test]
fn slots_count_from_the_genesis_and_a_slot_answers_for_its_last_second() {
    let v = vectors();
    let schedule = vector_schedule(&v, &[]);
    // Slot [3_840_034, 3_840_036) ends inside A1's window; [3_840_036, 3_840_038) mostly in A2's.
    assert_eq!(schedule.slot_at(U256::from(3_840_035u64)), Some(1_920_017));
    let a1 = schedule.schedule_for_slot(1_920_017).expect("known");
    assert_eq!(a1.window_end, U256::from(3_840_036u64));
    let a2 = schedule.schedule_for_slot(1_920_018).expect("known");
    assert_eq!(a2.window_end, U256::from(3_840_120u64));
    assert_eq!(
        a1.next_window_first_slot, 1_920_018,
        "the hand-off slot is the one after the window's end"
    );
    let offset = LookaheadSchedule::new(2, 8, Some(1_001));
    assert_eq!(offset.slot_at(U256::from(1_004u64)), Some(1));
    assert_eq!(offset.slot_at(U256::from(1_000u64)), None);
}

#[test]
fn nothing_resolves_before_the_genesis_is_known() {
    let schedule = LookaheadSchedule::new(2, 8, None);
    assert!(schedule.clock().is_none());
    assert!(schedule.schedule_at(3_840_000).is_none());
    assert_eq!(schedule.learn(knowledge(3_840_000, &[])), Learned::TooOld);
    schedule.set_genesis(0);
    schedule.set_genesis(5);
    assert_eq!(schedule.clock().map(|c| c.genesis()), Some(0), "set once");
}

fn knowledge(epoch: u64, entries: &[LookaheadEntry]) -> EpochKnowledge {
    EpochKnowledge {
        list: EpochLookahead::new(epoch, entries).expect("valid"),
        hash: FixedBytes::ZERO,
        fallback: Some(Address::with_last_byte(0xfa)),
        blacklisted: BTreeSet::new(),
    }
}

#[test]
fn an_unknown_epoch_and_its_next_are_wanted_up_to_the_epoch_after_the_clocks() {
    let schedule = LookaheadSchedule::new(2, 4, Some(0));
    let now = 3_840_100; // epoch 3_840_000
    schedule.want_around(schedule.clock().unwrap(), 3_839_700, now);
    assert_eq!(schedule.take_wanted(8), vec![3_839_616, 3_840_000]);
    // The epoch after the clock's is decided on L1; the one after that is not.
    schedule.want_around(schedule.clock().unwrap(), 3_840_400, now);
    assert_eq!(schedule.take_wanted(8), vec![3_840_384]);
    // Known epochs are not wanted; learning one takes it off the list.
    assert_eq!(schedule.learn(knowledge(3_839_616, &[])), Learned::Updated);
    schedule.want_around(schedule.clock().unwrap(), 3_839_700, now);
    assert_eq!(schedule.take_wanted(8), vec![3_840_000]);
    schedule.want(3_000_000);
    assert_eq!(schedule.learn(knowledge(3_000_000, &[])), Learned::Updated);
    assert!(schedule.take_wanted(8).is_empty(), "learned: not wanted");
    // At most `capacity` are wanted, the lowest; taken lowest first.
    for k in 0..10 {
        schedule.want(1_000 * 384 + k * 384);
    }
    assert_eq!(schedule.take_wanted(2), vec![384_000, 384_384]);
    assert_eq!(schedule.take_wanted(8).len(), 2);
}

#[test]
fn lookups_want_at_most_the_capacity_the_lowest_epochs() {
    let schedule = LookaheadSchedule::new(2, 2, Some(0));
    let clock = schedule.clock().unwrap();
    let now = 3_840_100;
    schedule.want_around(clock, 3_000_000, now);
    schedule.want_around(clock, 2_000_000, now);
    assert_eq!(
        schedule.take_wanted(8),
        vec![1_999_872, 2_000_256],
        "two epochs of the lower lookup; the two higher dropped"
    );
}

#[test]
fn what_the_reader_verified_is_what_it_reads_back() {
    let schedule = LookaheadSchedule::new(2, 8, Some(0));
    assert_eq!(schedule.epoch(3_840_000), None);
    let learned = knowledge(3_840_000, &[]);
    schedule.learn(learned.clone());
    assert_eq!(schedule.epoch(3_840_000), Some(learned));
    assert!(schedule.forget(3_840_000));
    assert_eq!(schedule.epoch(3_840_000), None);
}

#[test]
fn a_lookup_that_fails_wants_its_epoch() {
    let schedule = LookaheadSchedule::new(2, 4, Some(0));
    assert!(schedule.schedule_at(3_840_100).is_none());
    assert_eq!(schedule.take_wanted(8), vec![3_840_000, 3_840_384]);
}

/// The validator's view of a chain with nothing stored yet.
struct EmptyChain;

impl ChainView for EmptyChain {
    fn head(&self) -> LocalHead {
        LocalHead::default()
    }
    fn accepted_at(&self, _: u64) -> Option<(SignedCommitment, Address)> {
        None
    }
    fn accepted_in_slot(&self, _: u64, _: Address) -> Option<SignedCommitment> {
        None
    }
    fn eop_for_window(&self, _: U256) -> Option<SignedCommitment> {
        None
    }
}

#[test]
fn the_validator_accepts_a_block_timed_at_its_windows_inclusive_end_only() {
    let key = secret_key_from_bytes([7; 32]).expect("a valid key");
    let committer = secret_key_to_address(&key);
    let other = Address::with_last_byte(0xb1);
    let entry = |committer, timestamp: u64| LookaheadEntry {
        committer,
        timestamp: U256::from(timestamp),
        registration_root: B256::with_last_byte(timestamp as u8),
        validator_leaf_index: U256::ZERO,
    };
    let schedule = Arc::new(LookaheadSchedule::new(2, 8, Some(0)));
    schedule.learn(knowledge(
        3_840_000,
        &[entry(committer, 3_840_036), entry(other, 3_840_120)],
    ));
    let config = P2pSdkConfig::default();
    let validator = Validator::from_config(&config, schedule);
    let commit = |timestamp: u64, window_end: u64| {
        let unsigned = PreconfCommitment {
            preconf: Preconfirmation {
                eop: false,
                block_number: U256::from(1u64),
                timestamp: U256::from(timestamp),
                gas_limit: U256::from(30_000_000u64),
                coinbase: committer,
                anchor_block_number: U256::ZERO,
                raw_tx_list_hash: B256::repeat_byte(1),
                parent_preconfirmation_hash: B256::ZERO,
                submission_window_end: U256::from(window_end),
                prover_auth: Address::ZERO,
                proposal_id: U256::ZERO,
            },
            slasher_address: config.chain.slasher_address,
        };
        let signed = sign(&key, &config.chain.domain, unsigned);
        let signer = validator.recover_signer(&signed);
        validator.validate_commitment(&signed, signer, &EmptyChain, timestamp)
    };
    assert!(
        matches!(commit(3_840_036, 3_840_036), ValidationOutcome::Accept(_)),
        "a block at the window's end is the window's (end inclusive)"
    );
    assert!(matches!(
        commit(3_840_000, 3_840_036),
        ValidationOutcome::Accept(_)
    ));
    assert!(
        matches!(
            commit(3_840_038, 3_840_036),
            ValidationOutcome::Reject { penalise: true, .. }
        ),
        "2 s after the end the block is in the next window"
    );
}
