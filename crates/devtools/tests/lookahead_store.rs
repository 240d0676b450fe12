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
use preconf_devtools::testing::lookahead::{parsed, u64_of, vectors};
use preconf_node_core::schedule::lookahead_l1::{
    posted_filter, verify_posted_list, ILookaheadStore, PostedList, PostedLog, MAX_LOGS_PER_EPOCH,
};
use preconf_node_core::schedule::lookahead_window::{
    decode_storage_word, lookahead_hash, lookahead_storage_slot, window_at, EpochClock,
    EpochLookahead, LookaheadEntry, Proposer,
};

fn entries(list: &serde_json::Value) -> Vec<LookaheadEntry> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|e| LookaheadEntry {
            committer: parsed(&e["committer"]),
            timestamp: U256::from(u64_of(&e["timestamp"])),
            registration_root: parsed(&e["registration_root"]),
            validator_leaf_index: U256::from(u64_of(&e["validator_leaf_index"])),
        })
        .collect()
}

/// Sets or clears `roots` on the store's blacklist, and waits until it is mined.
async fn blacklist(
    contract: &LookaheadStoreStub::LookaheadStoreStubInstance<impl Provider>,
    owner: Address,
    roots: &[B256],
    on: bool,
) {
    for root in roots {
        let pending = if on {
            contract.blacklistOperator(*root).from(owner).send().await
        } else {
            contract.unblacklistOperator(*root).from(owner).send().await
        };
        pending.expect("blacklist").watch().await.expect("mined");
    }
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
    let vectors = vectors();
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

    let lists: BTreeMap<u64, Vec<LookaheadEntry>> = vectors["lists"]
        .as_object()
        .expect("lists")
        .iter()
        .map(|(epoch, list)| (epoch.parse().expect("an epoch"), entries(list)))
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
    for h in vectors["hashes"].as_array().expect("hashes") {
        let (epoch, hash) = (u64_of(&h["epoch"]), parsed::<FixedBytes<26>>(&h["hash"]));
        let stored = reader
            .getLookaheadHash(U256::from(epoch))
            .call()
            .await
            .expect("getLookaheadHash");
        assert_eq!(stored, hash, "stored hash of epoch {epoch}");
        assert_eq!(lookahead_hash(epoch, &lists[&epoch]), hash);
        let word = l1
            .get_storage_at(store, U256::from_be_bytes(lookahead_storage_slot(epoch).0))
            .await
            .expect("eth_getStorageAt");
        assert_eq!(
            decode_storage_word(B256::from(word)),
            (epoch, hash),
            "ring-buffer word of epoch {epoch}"
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
        let verified = verify_posted_list(*epoch, stored, u64::MAX, &posted, MAX_LOGS_PER_EPOCH);
        assert_eq!(
            verified,
            Ok(PostedList::Verified(
                EpochLookahead::new(*epoch, list).unwrap()
            )),
            "epoch {epoch}"
        );
    }

    // Every worked example: the node's window against the contract's calculator.
    let clock = EpochClock::new(u64_of(&vectors["beacon_genesis"]));
    let checked: BTreeMap<u64, EpochLookahead> = lists
        .iter()
        .map(|(epoch, list)| (*epoch, EpochLookahead::new(*epoch, list).unwrap()))
        .collect();
    for case in vectors["cases"].as_array().expect("cases") {
        let t = u64_of(&case["t"]);
        let note = case["note"].as_str().unwrap_or_default();
        let roots: Vec<B256> = case["blacklisted"]
            .as_array()
            .expect("blacklisted")
            .iter()
            .map(parsed)
            .collect();
        blacklist(&contract, anvil.owner, &roots, true).await;
        let epoch = clock.epoch_of(t).expect("epoch");
        let next_epoch = epoch + 384;
        let ours = window_at(t, &checked[&epoch], checked.get(&next_epoch)).expect(note);
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
        let (signer, is_fallback) = ours
            .proposer
            .signer(!roots.is_empty(), Some(fallback))
            .expect("the fallback is known");
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
            "t = {t}: {note}"
        );
        blacklist(&contract, anvil.owner, &roots, false).await;
    }
    anvil.stop().await;
}
