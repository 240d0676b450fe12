//! The lookahead window rules and list reading against a real EVM: anvil runs the test
//! `LookaheadStore` (`testdata/l1/LookaheadStoreStub.sol`, the store's reader-facing ABI), the
//! lists of L1-LOOKAHEAD.md §7 (`testdata/lookahead/windows.json`) are posted on it, and the
//! node's code must agree with the chain:
//! - the 26-byte hash the contract stores for each list, and the ring-buffer word at the
//!   storage slot the node computes (`eth_getStorageAt`);
//! - the `LookaheadPosted` logs fetched with the node's filter decode and verify;
//! - every worked example resolves to the window the contract's `getProposerContext`
//!   calculator returns for the same lists (a second implementation, in Solidity).
//!
//! Skipped, with one line saying so, only when anvil is absent and `CI` is unset.

use std::collections::BTreeMap;

use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolValue;
use preconf_devtools::l1_dev::{
    deploy, find_anvil, provider, Anvil, LookaheadStoreStub, WhitelistStub,
    LOOKAHEAD_STORE_STUB_BIN,
};
use preconf_node_core::schedule::lookahead_l1::{
    posted_filter, verify_posted_list, ILookaheadStore, PostedList, PostedLog,
};
use preconf_node_core::schedule::lookahead_window::{
    decode_storage_word, lookahead_hash, lookahead_storage_slot, window_at, EpochClock,
    EpochLookahead, LookaheadEntry, Proposer,
};
use serde::Deserialize;

const VECTORS: &str = include_str!("../../../testdata/lookahead/windows.json");

#[derive(Deserialize)]
struct Vectors {
    beacon_genesis: u64,
    lists: BTreeMap<u64, Vec<VectorEntry>>,
    hashes: Vec<VectorHash>,
    cases: Vec<VectorCase>,
}

#[derive(Deserialize)]
struct VectorEntry {
    committer: Address,
    timestamp: u64,
    registration_root: B256,
    validator_leaf_index: u64,
}

#[derive(Deserialize)]
struct VectorHash {
    epoch: u64,
    hash: FixedBytes<26>,
}

#[derive(Deserialize)]
struct VectorCase {
    t: u64,
    blacklisted: Vec<B256>,
    note: String,
}

fn entries(list: &[VectorEntry]) -> Vec<LookaheadEntry> {
    list.iter()
        .map(|e| LookaheadEntry {
            committer: e.committer,
            timestamp: U256::from(e.timestamp),
            registration_root: e.registration_root,
            validator_leaf_index: U256::from(e.validator_leaf_index),
        })
        .collect()
}

fn abi_slots(list: &[LookaheadEntry]) -> Vec<LookaheadStoreStub::LookaheadSlot> {
    list.iter()
        .map(|e| LookaheadStoreStub::LookaheadSlot {
            committer: e.committer,
            timestamp: e.timestamp,
            registrationRoot: e.registration_root,
            validatorLeafIndex: e.validator_leaf_index,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_reads_and_resolves_lists_exactly_as_the_store_holds_them() {
    let Some(bin) = find_anvil() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but anvil is missing: run scripts/install-anvil (or set ANVIL_BIN)"
        );
        eprintln!("skipped: anvil not found (run scripts/install-anvil); CI unset");
        return;
    };
    let vectors: Vectors = serde_json::from_str(VECTORS).expect("vectors parse");
    let anvil = Anvil::start(&bin, 1).await.expect("anvil starts");
    let l1 = provider(&anvil.url).expect("provider");

    // The fallback: the whitelist's operator for the epoch of the block a call runs at.
    let fallback = Address::with_last_byte(0xf0);
    let whitelist = WhitelistStub::deploy(&anvil, 0, 384)
        .await
        .expect("whitelist");
    let now_epoch = whitelist.current_epoch().await.expect("epoch");
    whitelist
        .setup(
            &[(fallback, fallback)],
            &[(now_epoch, fallback), (now_epoch + 1, fallback)],
        )
        .await
        .expect("whitelist setup");
    let store = deploy(
        &anvil,
        LOOKAHEAD_STORE_STUB_BIN,
        &whitelist.address.abi_encode(),
    )
    .await
    .expect("store deploys");
    let contract = LookaheadStoreStub::new(store, &l1);
    let reader = ILookaheadStore::new(store, &l1);

    let lists: BTreeMap<u64, Vec<LookaheadEntry>> = vectors
        .lists
        .iter()
        .map(|(epoch, list)| (*epoch, entries(list)))
        .collect();
    for (epoch, list) in &lists {
        contract
            .postLookahead(U256::from(*epoch), abi_slots(list))
            .from(anvil.owner)
            .send()
            .await
            .expect("post")
            .watch()
            .await
            .expect("mined");
    }

    // The stored hashes, and the ring-buffer word where the node looks for it.
    for h in &vectors.hashes {
        let stored = reader
            .getLookaheadHash(U256::from(h.epoch))
            .call()
            .await
            .expect("getLookaheadHash");
        assert_eq!(stored, h.hash, "stored hash of epoch {}", h.epoch);
        assert_eq!(lookahead_hash(h.epoch, &lists[&h.epoch]), h.hash);
        let word = l1
            .get_storage_at(
                store,
                U256::from_be_bytes(lookahead_storage_slot(h.epoch).0),
            )
            .await
            .expect("eth_getStorageAt");
        assert_eq!(
            decode_storage_word(B256::from(word)),
            (h.epoch, h.hash),
            "ring-buffer word of epoch {}",
            h.epoch
        );
    }
    let never = reader
        .getLookaheadHash(U256::from(384u64 * 7))
        .call()
        .await
        .expect("getLookaheadHash");
    assert_eq!(never, FixedBytes::ZERO, "an epoch never posted has no hash");

    // The logs, fetched with the node's filter, decode and verify against the stored hash.
    let head = l1.get_block_number().await.expect("head");
    for (epoch, list) in &lists {
        let logs = l1
            .get_logs(&posted_filter(store, *epoch, 0, head))
            .await
            .expect("eth_getLogs");
        let posted: Vec<PostedLog> = logs.iter().filter_map(PostedLog::decode).collect();
        assert_eq!(posted.len(), 1, "one post for epoch {epoch}");
        let stored = lookahead_hash(*epoch, list);
        let verified = verify_posted_list(*epoch, stored, u64::MAX, &posted);
        assert_eq!(
            verified,
            Ok(PostedList::Verified(
                EpochLookahead::new(*epoch, list).unwrap()
            )),
            "epoch {epoch}"
        );
    }

    // Every worked example: the node's window against the contract's calculator.
    let clock = EpochClock::new(vectors.beacon_genesis);
    let checked: BTreeMap<u64, EpochLookahead> = lists
        .iter()
        .map(|(epoch, list)| (*epoch, EpochLookahead::new(*epoch, list).unwrap()))
        .collect();
    for case in &vectors.cases {
        for root in &case.blacklisted {
            contract
                .blacklistOperator(*root)
                .from(anvil.owner)
                .send()
                .await
                .expect("blacklist")
                .watch()
                .await
                .expect("mined");
        }
        let epoch = clock.epoch_of(case.t).expect("epoch");
        let next_epoch = epoch + 384;
        let ours = window_at(case.t, &checked[&epoch], checked.get(&next_epoch)).expect(&case.note);
        let slot_index = match ours.proposer {
            Proposer::Entry { .. } if ours.end < next_epoch => lists[&epoch]
                .iter()
                .position(|e| e.timestamp == U256::from(ours.end))
                .map_or(U256::MAX, U256::from),
            _ => U256::MAX,
        };
        let data = LookaheadStoreStub::LookaheadData {
            slotIndex: slot_index,
            registrationRoot: B256::ZERO,
            currLookahead: abi_slots(&lists[&epoch]),
            nextLookahead: abi_slots(lists.get(&next_epoch).map_or(&[][..], |l| &l[..])),
            commitmentSignature: Bytes::new(),
        };
        let theirs = contract
            .getProposerContext(data, U256::from(epoch))
            .call()
            .await
            .expect("getProposerContext");
        let (signer, is_fallback) = ours.proposer.signer(!case.blacklisted.is_empty(), fallback);
        assert_eq!(
            (
                theirs.submissionWindowStart,
                theirs.submissionWindowEnd,
                theirs.proposer,
                theirs.isFallback
            ),
            (
                U256::from(ours.start),
                U256::from(ours.end),
                signer,
                is_fallback
            ),
            "t = {}: {}",
            case.t,
            case.note
        );
        for root in &case.blacklisted {
            contract
                .unblacklistOperator(*root)
                .from(anvil.owner)
                .send()
                .await
                .expect("unblacklist")
                .watch()
                .await
                .expect("mined");
        }
    }
    anvil.stop().await;
}
