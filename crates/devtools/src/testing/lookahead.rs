//! The permissionless schedule's test L1: anvil with the test `LookaheadStore` and whitelist,
//! and the worked examples of `testdata/lookahead/windows.json` read untyped (node-core's unit
//! tests read them typed).

use std::collections::BTreeMap;
use std::path::Path;

use alloy::primitives::{Address, FixedBytes, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolValue;
use preconf_node_core::schedule::l1_lookahead::L1LookaheadSource;
use preconf_node_core::schedule::L1Config;

use crate::l1_dev::LOOKAHEAD_STORE_STUB_BIN;
use crate::l1_dev::{deploy, provider, Anvil, LookaheadStoreStub, WhitelistStub};

const VECTORS: &str = include_str!("../../../../testdata/lookahead/windows.json");

/// The vectors, untyped.
pub fn vectors() -> serde_json::Value {
    serde_json::from_str(VECTORS).expect("testdata/lookahead/windows.json parses")
}

/// A JSON number as `u64`.
pub fn u64_of(v: &serde_json::Value) -> u64 {
    v.as_u64().expect("a number")
}

/// A JSON string parsed as `T` (an address, a hash).
pub fn parsed<T: std::str::FromStr>(v: &serde_json::Value) -> T
where
    T::Err: std::fmt::Debug,
{
    v.as_str().expect("a string").parse().expect("parses")
}

/// One store entry.
pub fn slot(committer: Address, timestamp: u64, root: B256) -> LookaheadStoreStub::LookaheadSlot {
    LookaheadStoreStub::LookaheadSlot {
        committer,
        timestamp: U256::from(timestamp),
        registrationRoot: root,
        validatorLeafIndex: U256::ZERO,
    }
}

/// The vectors' list of `epoch`, as the store takes it.
pub fn vector_list(v: &serde_json::Value, epoch: u64) -> Vec<LookaheadStoreStub::LookaheadSlot> {
    v["lists"][epoch.to_string()]
        .as_array()
        .expect("a list")
        .iter()
        .map(|e| LookaheadStoreStub::LookaheadSlot {
            committer: parsed(&e["committer"]),
            timestamp: U256::from(u64_of(&e["timestamp"])),
            registrationRoot: parsed(&e["registration_root"]),
            validatorLeafIndex: U256::from(u64_of(&e["validator_leaf_index"])),
        })
        .collect()
}

/// The vectors' whitelist picks, by epoch (its first second).
pub fn vector_fallbacks(v: &serde_json::Value) -> BTreeMap<u64, Address> {
    v["fallback"]
        .as_object()
        .expect("fallbacks")
        .iter()
        .map(|(e, a)| (e.parse().expect("an epoch"), parsed(a)))
        .collect()
}

/// Anvil with the test store and whitelist (epochs of 384 s from 0, as on any chain without a
/// known beacon genesis), driven by its owner.
pub struct LookaheadL1 {
    /// The chain.
    pub anvil: Anvil,
    /// The store's address.
    pub store: Address,
}

impl LookaheadL1 {
    /// Starts anvil at unix second `genesis` (mining per transaction), deploys the whitelist
    /// with `picks` (epoch's first second, operator) and the store naming it.
    pub async fn start(bin: &Path, genesis: u64, picks: &[(u64, Address)]) -> Self {
        let anvil = Anvil::start_at(bin, genesis).await.expect("anvil starts");
        let whitelist = WhitelistStub::deploy(&anvil, 0, 384)
            .await
            .expect("whitelist");
        let operators: Vec<(Address, Address)> = picks.iter().map(|(_, f)| (*f, *f)).collect();
        let epochs: Vec<(u64, Address)> = picks.iter().map(|(e, f)| (e / 384, *f)).collect();
        whitelist
            .setup(&operators, &epochs)
            .await
            .expect("whitelist setup");
        let store = deploy(
            &anvil,
            LOOKAHEAD_STORE_STUB_BIN,
            &whitelist.address.abi_encode(),
        )
        .await
        .expect("store deploys");
        Self { anvil, store }
    }

    fn contract(&self) -> LookaheadStoreStub::LookaheadStoreStubInstance<impl Provider> {
        LookaheadStoreStub::new(self.store, provider(&self.anvil.url).expect("provider"))
    }

    /// Posts `list` as `epoch`'s, as `Inbox.propose` would, and waits until it is mined.
    pub async fn post(&self, epoch: u64, list: Vec<LookaheadStoreStub::LookaheadSlot>) {
        self.contract()
            .postLookahead(U256::from(epoch), list)
            .from(self.anvil.owner)
            .send()
            .await
            .expect("post")
            .watch()
            .await
            .expect("mined");
    }

    /// Blacklists (`on`) or unblacklists the operator `root`, and waits until it is mined.
    pub async fn blacklist(&self, root: B256, on: bool) {
        let contract = self.contract();
        let pending = if on {
            contract
                .blacklistOperator(root)
                .from(self.anvil.owner)
                .send()
                .await
        } else {
            contract
                .unblacklistOperator(root)
                .from(self.anvil.owner)
                .send()
                .await
        };
        pending.expect("blacklist").watch().await.expect("mined");
    }

    /// Stores `hash` as `epoch`'s without a `LookaheadPosted` log.
    pub async fn set_hash(&self, epoch: u64, hash: FixedBytes<26>) {
        self.contract()
            .setLookaheadHash(U256::from(epoch), hash)
            .from(self.anvil.owner)
            .send()
            .await
            .expect("setLookaheadHash")
            .watch()
            .await
            .expect("mined");
    }

    /// The `[l1]` settings of a node on this chain: the store, its whitelist and the beacon
    /// genesis from the chain id (31337: 0).
    pub fn l1_config(&self) -> L1Config {
        L1Config {
            rpc_url: self.anvil.url.clone(),
            lookahead_store_address: self.store,
            whitelist_address: Address::ZERO,
            beacon_genesis_timestamp: None,
            ..L1Config::default()
        }
    }

    /// An `l1_lookahead` source on this chain, 2 s L2 slots.
    pub fn source(&self) -> L1LookaheadSource {
        L1LookaheadSource::new(&self.l1_config(), 2).expect("a valid source")
    }
}
