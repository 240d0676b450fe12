//! Builders for valid (and deliberately invalid) commitment chains under a
//! [`RotatingLookahead`], for tests, devnets and benchmarks.
//!
//! A [`ChainBuilder`] owns `P` deterministic preconfer keys and produces one block per slot: the
//! elected preconfer signs it, and the last slot of each window carries an EOP with its tx list
//! (§5 "hand-off with a tx list").

use std::sync::Arc;

use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::{
    preconfirmation_hash, raw_tx_list_hash, secret_key_from_bytes, secret_key_to_address, sign,
    Address, ChainSpec, PreconfCommitment, Preconfirmation, RawTxListGossip, SignedCommitment,
    B256, U256,
};

use crate::lookahead::{Lookahead, RotatingLookahead};

/// A block as a preconfer publishes it: the tx list (absent for a pure EOP) and the commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The signed commitment.
    pub commitment: SignedCommitment,
    /// The tx list gossip message, if the block has one.
    pub txlist: Option<RawTxListGossip>,
}

/// Deterministic preconfer secret key number `index` (keccak of a fixed label).
pub fn preconfer_key(index: u32) -> SecretKey {
    let mut seed = b"preconf-p2p test preconfer key ".to_vec();
    seed.extend_from_slice(&index.to_be_bytes());
    let mut bytes = preconfirmation_types::reexports::alloy_primitives::keccak256(&seed).0;
    loop {
        if let Ok(key) = secret_key_from_bytes(bytes) {
            return key;
        }
        bytes = preconfirmation_types::reexports::alloy_primitives::keccak256(bytes).0;
    }
}

/// `rules.window_end_grace` for setups that replay a chain built in the past
/// ([`ChainBuilder::in_the_past`]) over gossip or local publish — tests, benches, the
/// devnet: 30 days, so the lower time bound never refuses their old windows.
pub const REPLAY_WINDOW_END_GRACE: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

/// Produces a valid chain of signed commitments.
#[derive(Debug, Clone)]
pub struct ChainBuilder {
    chain: ChainSpec,
    keys: Vec<SecretKey>,
    lookahead: Arc<RotatingLookahead>,
    next_number: u64,
    next_slot: u64,
    parent_hash: B256,
}

impl ChainBuilder {
    /// `preconfers` keys rotating every `slots_per_window` slots of `slot_duration` seconds from
    /// `genesis`; the first block is number 1 in slot 0 with a zero parent hash.
    pub fn new(
        chain: ChainSpec,
        preconfers: u32,
        slots_per_window: u64,
        genesis: u64,
        slot_duration: u64,
    ) -> Self {
        let keys: Vec<SecretKey> = (0..preconfers.max(1)).map(preconfer_key).collect();
        let signers = keys.iter().map(secret_key_to_address).collect();
        let lookahead = RotatingLookahead::new(
            signers,
            slots_per_window.max(1),
            genesis,
            slot_duration.max(1),
        )
        .map(Arc::new)
        .expect("signers are non-empty and lengths positive");
        Self {
            chain,
            keys,
            lookahead,
            next_number: 1,
            next_slot: 0,
            parent_hash: B256::ZERO,
        }
    }

    /// A builder whose genesis lies `blocks · slot_duration` seconds in the past, so that
    /// `blocks` blocks all have timestamps before now.
    pub fn in_the_past(
        chain: ChainSpec,
        preconfers: u32,
        slots_per_window: u64,
        blocks: u64,
    ) -> Self {
        let genesis = crate::lookahead::unix_now().saturating_sub(blocks + 1);
        Self::new(chain, preconfers, slots_per_window, genesis, 1)
    }

    /// The schedule the chain follows; give it to the SDK.
    pub fn lookahead(&self) -> Arc<RotatingLookahead> {
        self.lookahead.clone()
    }

    /// The same schedule known only up to slot `last_known` (inclusive), as a source that has
    /// not learned the rest yet: later slots have no schedule (commitments for them wait).
    pub fn lookahead_known_to(&self, last_known: u64) -> Arc<RotatingLookahead> {
        let signers = self.keys.iter().map(secret_key_to_address).collect();
        let full = &self.lookahead;
        let partial = RotatingLookahead::new(
            signers,
            full.slots_per_window(),
            full.genesis(),
            full.slot_duration(),
        )
        .expect("the builder's own parameters")
        .with_horizon(last_known);
        Arc::new(partial)
    }

    /// The chain.
    pub fn chain(&self) -> &ChainSpec {
        &self.chain
    }

    /// The preconfer secret keys.
    pub fn keys(&self) -> &[SecretKey] {
        &self.keys
    }

    /// Number of the next block.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// Slot of the next block.
    pub fn next_slot(&self) -> u64 {
        self.next_slot
    }

    /// The key of the preconfer elected for `slot`.
    pub fn key_for_slot(&self, slot: u64) -> Option<&SecretKey> {
        let signer = self.lookahead.signer_for_slot(slot)?;
        self.keys
            .iter()
            .find(|k| secret_key_to_address(k) == signer)
    }

    /// The unsigned commitment the next block would carry, with `txlist`'s hash (zero hash and
    /// EOP when `txlist` is `None`). EOP is set on the last slot of a window.
    pub fn next_unsigned(&self, txlist: Option<&[u8]>) -> PreconfCommitment {
        let slot = self.next_slot;
        let schedule = self.lookahead.schedule_for_slot(slot);
        let eop = txlist.is_none() || self.lookahead.is_last_slot_of_window(slot);
        PreconfCommitment {
            preconf: Preconfirmation {
                eop,
                block_number: U256::from(self.next_number),
                timestamp: U256::from(self.lookahead.slot_start(slot)),
                gas_limit: U256::from(30_000_000u64),
                coinbase: schedule.map(|s| s.signer).unwrap_or_default(),
                anchor_block_number: U256::from(1u64),
                raw_tx_list_hash: txlist.map(raw_tx_list_hash).unwrap_or_default(),
                parent_preconfirmation_hash: self.parent_hash,
                submission_window_end: schedule.map(|s| s.window_end).unwrap_or_default(),
                prover_auth: Address::ZERO,
                proposal_id: U256::from(self.next_number),
            },
            slasher_address: self.chain.slasher_address,
        }
    }

    /// Signs `commitment` with `key` under the chain's domain.
    pub fn sign_with(&self, key: &SecretKey, commitment: PreconfCommitment) -> SignedCommitment {
        sign(key, &self.chain.domain, commitment)
    }

    /// Signs with the key elected for the next slot.
    pub fn sign_next(&self, commitment: PreconfCommitment) -> SignedCommitment {
        let key = self
            .key_for_slot(self.next_slot)
            .or_else(|| self.keys.first())
            .copied()
            .unwrap_or_else(|| preconfer_key(0));
        self.sign_with(&key, commitment)
    }

    /// Records `commitment` as the new tip and moves to the next slot.
    pub fn advance(&mut self, commitment: &SignedCommitment) {
        self.parent_hash = preconfirmation_hash(commitment.preconf());
        self.next_number += 1;
        self.next_slot += 1;
    }

    /// Skips a slot without a block (the next block keeps the same parent).
    pub fn skip_slot(&mut self) {
        self.next_slot += 1;
    }

    /// The next valid block with `txlist` (or a pure EOP hand-off with `None`), and advance.
    pub fn next_block(&mut self, txlist: Option<Vec<u8>>) -> Block {
        let unsigned = self.next_unsigned(txlist.as_deref());
        let commitment = self.sign_next(unsigned);
        self.advance(&commitment);
        let txlist = txlist.and_then(|t| RawTxListGossip::new(t).ok());
        Block { commitment, txlist }
    }

    /// `count` valid blocks, each with a distinct `txlist_bytes`-byte tx list.
    pub fn blocks(&mut self, count: usize, txlist_bytes: usize) -> Vec<Block> {
        (0..count)
            .map(|_| {
                let txlist = deterministic_txlist(self.next_number, txlist_bytes);
                self.next_block(Some(txlist))
            })
            .collect()
    }
}

/// `len` pseudo-random bytes derived from `seed` (distinct per seed).
pub fn deterministic_txlist(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut state =
        preconfirmation_types::reexports::alloy_primitives::keccak256(seed.to_be_bytes()).0;
    while out.len() < len {
        let take = (len - out.len()).min(32);
        out.extend_from_slice(&state[..take]);
        state = preconfirmation_types::reexports::alloy_primitives::keccak256(state).0;
    }
    out
}

/// A store over `inner` with the faults of a real disk, for fault tests of the writer, the
/// SDK and the node: while `full` is set its writes (`put_*`, `prune_below`) fail as redb's do
/// on a full volume; each write first waits `write_delay_ms` (a slow disk's sync). Reads go
/// through.
pub struct FaultyDisk {
    /// The store underneath.
    pub inner: Arc<dyn crate::SdkStorage>,
    /// Set: every write fails with "No space left on device".
    pub full: Arc<std::sync::atomic::AtomicBool>,
    /// Milliseconds every write waits before it starts; 0: none.
    pub write_delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl FaultyDisk {
    /// A healthy, fast disk over `inner` (set `full` or `write_delay_ms` to fault it).
    pub fn over(inner: Arc<dyn crate::SdkStorage>) -> Self {
        Self {
            inner,
            full: Arc::default(),
            write_delay_ms: Arc::default(),
        }
    }

    fn check(&self) -> Result<(), crate::StorageError> {
        let delay = self
            .write_delay_ms
            .load(std::sync::atomic::Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::StorageError::Backend(
                "No space left on device (os error 28)".into(),
            ));
        }
        Ok(())
    }
}

impl crate::SdkStorage for FaultyDisk {
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), crate::StorageError> {
        self.check()?;
        self.inner.put_commitments(commitments)
    }
    fn put_txlist(
        &self,
        hash: B256,
        block_number: u64,
        txlist: bytes::Bytes,
    ) -> Result<(), crate::StorageError> {
        self.check()?;
        self.inner.put_txlist(hash, block_number, txlist)
    }
    fn commitment_by_number(
        &self,
        n: u64,
    ) -> Result<Option<SignedCommitment>, crate::StorageError> {
        self.inner.commitment_by_number(n)
    }
    fn commitment_by_hash(
        &self,
        hash: &B256,
    ) -> Result<Option<SignedCommitment>, crate::StorageError> {
        self.inner.commitment_by_hash(hash)
    }
    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, crate::StorageError> {
        self.inner.commitments_from(start, max)
    }
    fn txlist(&self, hash: &B256) -> Result<Option<bytes::Bytes>, crate::StorageError> {
        self.inner.txlist(hash)
    }
    fn head(&self) -> Result<Option<SignedCommitment>, crate::StorageError> {
        self.inner.head()
    }
    fn prune_below(&self, n: u64) -> Result<u64, crate::StorageError> {
        self.check()?;
        self.inner.prune_below(n)
    }
    fn stats(&self) -> Result<crate::StorageStats, crate::StorageError> {
        self.inner.stats()
    }
}
