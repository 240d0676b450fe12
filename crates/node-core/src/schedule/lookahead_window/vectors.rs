//! The worked examples of L1-LOOKAHEAD.md §7 as `testdata/lookahead/windows.json` holds them,
//! typed, for the unit tests of the window rules and of the schedule built on them.

use std::collections::BTreeMap;

use alloy::primitives::{Address, FixedBytes, B256, U256};
use serde::Deserialize;

use super::LookaheadEntry;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/lookahead/windows.json"
));

/// The whole file.
#[derive(Deserialize)]
pub(crate) struct Vectors {
    pub(crate) l1_chain_id: u64,
    pub(crate) beacon_genesis: u64,
    pub(crate) lists: BTreeMap<u64, Vec<VectorEntry>>,
    pub(crate) fallback: BTreeMap<u64, Address>,
    pub(crate) hashes: Vec<VectorHash>,
    pub(crate) cases: Vec<VectorCase>,
}

/// One list entry.
#[derive(Deserialize)]
pub(crate) struct VectorEntry {
    pub(crate) committer: Address,
    pub(crate) timestamp: u64,
    pub(crate) registration_root: B256,
    pub(crate) validator_leaf_index: u64,
}

/// An epoch's stored hash, bucket and storage word.
#[derive(Deserialize)]
pub(crate) struct VectorHash {
    pub(crate) epoch: u64,
    pub(crate) hash: FixedBytes<26>,
    pub(crate) bucket: u64,
    pub(crate) storage_slot: Option<B256>,
    pub(crate) storage_word: Option<B256>,
}

/// A time, the roots blacklisted then, and its window and signer.
#[derive(Deserialize)]
pub(crate) struct VectorCase {
    pub(crate) t: u64,
    pub(crate) blacklisted: Vec<B256>,
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) signer: Address,
    pub(crate) is_fallback: bool,
    pub(crate) note: String,
}

/// The vectors, parsed.
pub(crate) fn vectors() -> Vectors {
    serde_json::from_str(VECTORS).expect("testdata/lookahead/windows.json parses")
}

/// A list of the vectors as the window rules take it.
pub(crate) fn entries(list: &[VectorEntry]) -> Vec<LookaheadEntry> {
    list.iter()
        .map(|e| LookaheadEntry {
            committer: e.committer,
            timestamp: U256::from(e.timestamp),
            registration_root: e.registration_root,
            validator_leaf_index: U256::from(e.validator_leaf_index),
        })
        .collect()
}
