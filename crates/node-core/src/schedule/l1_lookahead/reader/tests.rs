//! What a replaced list reports: the stored blocks it no longer allows, and nothing else.

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{Address, FixedBytes, B256, U256};
use preconfirmation_types::{
    secret_key_from_bytes, secret_key_to_address, sign, PreconfCommitment, Preconfirmation,
    SignedCommitment,
};

use super::misfits;
use crate::schedule::l1_lookahead::LookaheadSchedule;
use crate::schedule::lookahead_window::{EpochKnowledge, EpochLookahead, LookaheadEntry};

const E: u64 = 3_840_000;

/// The address of test key `byte`.
fn addr(byte: u8) -> Address {
    secret_key_to_address(&secret_key_from_bytes([byte; 32]).expect("a valid key"))
}

fn entry(committer: Address, timestamp: u64) -> LookaheadEntry {
    LookaheadEntry {
        committer,
        timestamp: U256::from(timestamp),
        registration_root: B256::with_last_byte(timestamp as u8),
        validator_leaf_index: U256::ZERO,
    }
}

fn learn(schedule: &LookaheadSchedule, epoch: u64, entries: &[LookaheadEntry]) {
    schedule.learn(EpochKnowledge {
        list: EpochLookahead::new(epoch, entries).expect("valid"),
        hash: FixedBytes::ZERO,
        fallback: Some(Address::with_last_byte(0xfa)),
        blacklisted: BTreeSet::new(),
    });
}

/// Block `number` signed by test key `byte`.
fn block(byte: u8, number: u64, timestamp: u64, window_end: u64) -> SignedCommitment {
    let key = secret_key_from_bytes([byte; 32]).expect("a valid key");
    let unsigned = PreconfCommitment {
        preconf: Preconfirmation {
            block_number: U256::from(number),
            timestamp: U256::from(timestamp),
            submission_window_end: U256::from(window_end),
            ..Preconfirmation::default()
        },
        slasher_address: Address::ZERO,
    };
    sign(&key, &B256::ZERO, unsigned)
}

#[test]
fn a_replaced_list_reports_only_the_blocks_it_no_longer_allows() {
    let (a1, a2, a3) = (addr(1), addr(2), addr(3));
    let schedule = LookaheadSchedule::new(2, 8, Some(0));
    learn(&schedule, E - 384, &[entry(a3, E - 384 + 36)]);
    learn(&schedule, E, &[entry(a1, E + 36), entry(a2, E + 120)]);
    learn(&schedule, E + 384, &[]);
    let stored: BTreeMap<u64, SignedCommitment> = [
        (10, block(3, 10, E - 390, E - 384 + 372)), // before the list's reach: ends the walk
        (11, block(1, 11, E - 2, E + 36)),          // the tail before E belongs to a1
        (12, block(1, 12, E + 30, E + 36)),
        (13, block(2, 13, E + 100, E + 120)),
        (14, block(3, 14, E + 400, E + 756)), // the next epoch: not this list's
        (15, block(1, 15, E + 384, E + 999)), // the next epoch's first second: not this list's
    ]
    .into_iter()
    .collect();
    let lookup = |n: u64| stored.get(&n).cloned();
    assert!(
        misfits(&schedule, E, 15, &B256::ZERO, 64, lookup).is_empty(),
        "every block fits the list it was accepted under"
    );

    // A reorg gives a3 the second window.
    learn(&schedule, E, &[entry(a1, E + 36), entry(a3, E + 120)]);
    let found: Vec<u64> = misfits(&schedule, E, 15, &B256::ZERO, 64, lookup)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    assert_eq!(found, vec![13]);

    // A window end moved: the first entry now ends later.
    learn(&schedule, E, &[entry(a1, E + 48), entry(a2, E + 120)]);
    let found: Vec<u64> = misfits(&schedule, E, 15, &B256::ZERO, 64, lookup)
        .into_iter()
        .map(|(n, _, _)| n)
        .collect();
    assert_eq!(found, vec![12, 11]);

    // Gone: nothing of the epoch can be judged any more, and the walk is bounded.
    assert!(schedule.forget(E));
    assert_eq!(
        misfits(&schedule, E, 15, &B256::ZERO, 64, lookup).len(),
        3,
        "blocks 13, 12 and 11"
    );
    assert_eq!(
        misfits(&schedule, E, 15, &B256::ZERO, 3, lookup).len(),
        1,
        "three blocks read: 15, 14 and 13"
    );
}
