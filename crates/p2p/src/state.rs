//! [`ChainState`]: what the SDK remembers about the chain between messages — the head, recent
//! accepted commitments (for equivocation checks), EOP hand-offs, seen message ids, the pending
//! buffer and tx lists waiting for their commitment. All of it is bounded.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;
use preconfirmation_types::{
    preconfirmation_hash, Address, PreconfHead, SignedCommitment, B256, U256,
};

use crate::config::{Anchor, P2pSdkConfig};
use crate::dedupe::{BoundedMap, BoundedSet};
use crate::pending::PendingBuffer;
use crate::types::MessageId;
use crate::validation::{AcceptedCommitment, ChainView, LocalHead};

/// Tx lists seen before any accepted commitment referenced them, under count and byte caps
/// (least recently used evicted first).
#[derive(Debug)]
pub struct OrphanTxLists {
    cache: LruCache<B256, Bytes>,
    bytes: usize,
    max_count: NonZeroUsize,
    max_bytes: usize,
}

impl OrphanTxLists {
    /// An empty cache.
    pub fn new(max_count: usize, max_bytes: usize) -> Self {
        Self {
            cache: LruCache::unbounded(),
            bytes: 0,
            max_count: NonZeroUsize::new(max_count).unwrap_or(NonZeroUsize::MIN),
            max_bytes,
        }
    }

    /// Caches `txlist` under `hash` (larger than the byte cap: not cached).
    pub fn insert(&mut self, hash: B256, txlist: Bytes) {
        if txlist.len() > self.max_bytes {
            return;
        }
        self.bytes += txlist.len();
        if let Some(old) = self.cache.put(hash, txlist) {
            self.bytes -= old.len();
        }
        while self.cache.len() > self.max_count.get() || self.bytes > self.max_bytes {
            match self.cache.pop_lru() {
                Some((_, old)) => self.bytes -= old.len(),
                None => break,
            }
        }
    }

    /// Removes and returns the tx list for `hash`.
    pub fn take(&mut self, hash: &B256) -> Option<Bytes> {
        let txlist = self.cache.pop(hash)?;
        self.bytes -= txlist.len();
        Some(txlist)
    }

    /// Whether `hash` is cached.
    pub fn contains(&self, hash: &B256) -> bool {
        self.cache.contains(hash)
    }

    /// The cached tx list for `hash`, without removing it.
    pub fn get(&self, hash: &B256) -> Option<Bytes> {
        self.cache.peek(hash).cloned()
    }

    /// Number of cached lists.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Cached bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

/// The SDK's in-memory view of the chain.
#[derive(Debug)]
pub struct ChainState {
    head: LocalHead,
    head_window_end: U256,
    recent: BTreeMap<u64, (SignedCommitment, Address)>,
    recent_cap: usize,
    slot_signers: BoundedMap<(u64, Address), SignedCommitment>,
    eops: BoundedMap<U256, SignedCommitment>,
    /// Message ids seen (received or published).
    pub seen: BoundedSet<MessageId>,
    /// Commitments waiting for their parent or schedule.
    pub pending: PendingBuffer,
    /// Tx lists waiting for a commitment.
    pub orphans: OrphanTxLists,
    /// Accepted commitments whose tx list is missing: hash → block number.
    awaiting_txlists: HashMap<B256, u64>,
    awaiting_cap: usize,
}

impl ChainState {
    /// State at the anchor (empty storage).
    pub fn new(config: &P2pSdkConfig) -> Self {
        let Anchor {
            block_number,
            preconfirmation_hash,
        } = config.anchor;
        Self {
            head: LocalHead {
                block_number,
                preconfirmation_hash,
                timestamp: None,
            },
            head_window_end: U256::ZERO,
            recent: BTreeMap::new(),
            recent_cap: config.dedupe.slot_signers.max(1),
            slot_signers: BoundedMap::new(config.dedupe.slot_signers),
            eops: BoundedMap::new(config.dedupe.slot_signers),
            seen: BoundedSet::new(config.dedupe.seen_messages),
            pending: PendingBuffer::new(config.pending.clone()),
            orphans: OrphanTxLists::new(
                config.orphan_txlists.max_count,
                config.orphan_txlists.max_bytes,
            ),
            awaiting_txlists: HashMap::new(),
            awaiting_cap: config.dedupe.slot_signers.max(1),
        }
    }

    /// Moves the head to a stored commitment (start-up from storage). Recent-commitment
    /// memory starts empty.
    pub fn set_head_from(&mut self, head: &SignedCommitment) -> bool {
        let Ok(number) = u64::try_from(head.preconf().block_number) else {
            return false;
        };
        self.head = LocalHead {
            block_number: number,
            preconfirmation_hash: Some(preconfirmation_hash(head.preconf())),
            timestamp: u64::try_from(head.preconf().timestamp).ok(),
        };
        self.head_window_end = head.preconf().submission_window_end;
        true
    }

    /// Records an accepted commitment: it becomes the head.
    pub fn apply(&mut self, commitment: &SignedCommitment, accepted: &AcceptedCommitment) {
        let preconf = commitment.preconf();
        self.head = LocalHead {
            block_number: accepted.block_number,
            preconfirmation_hash: Some(preconfirmation_hash(preconf)),
            timestamp: Some(accepted.timestamp),
        };
        self.head_window_end = preconf.submission_window_end;
        self.recent
            .insert(accepted.block_number, (commitment.clone(), accepted.signer));
        while self.recent.len() > self.recent_cap {
            self.recent.pop_first();
        }
        self.slot_signers
            .insert_if_absent((accepted.slot, accepted.signer), commitment.clone());
        if preconf.eop {
            self.eops
                .insert_if_absent(preconf.submission_window_end, commitment.clone());
        }
    }

    /// The head as a `PreconfHead` (§10.2).
    pub fn preconf_head(&self) -> PreconfHead {
        PreconfHead {
            block_number: U256::from(self.head.block_number),
            submission_window_end: self.head_window_end,
        }
    }

    /// Notes that the tx list `hash` of block `number` is missing; `false` if that many are
    /// already missing (the oldest is then forgotten).
    pub fn await_txlist(&mut self, hash: B256, number: u64) {
        if self.awaiting_txlists.len() >= self.awaiting_cap {
            if let Some(oldest) = self
                .awaiting_txlists
                .iter()
                .min_by_key(|(_, n)| **n)
                .map(|(h, _)| *h)
            {
                self.awaiting_txlists.remove(&oldest);
            }
        }
        self.awaiting_txlists.insert(hash, number);
    }

    /// The block waiting for tx list `hash`, removing the note.
    pub fn take_awaiting(&mut self, hash: &B256) -> Option<u64> {
        self.awaiting_txlists.remove(hash)
    }

    /// Whether tx list `hash` is awaited.
    pub fn is_awaited(&self, hash: &B256) -> bool {
        self.awaiting_txlists.contains_key(hash)
    }

    /// Missing tx lists: (hash, block number).
    pub fn awaited(&self) -> Vec<(B256, u64)> {
        self.awaiting_txlists
            .iter()
            .map(|(h, n)| (*h, *n))
            .collect()
    }

    /// Number of missing tx lists.
    pub fn awaited_len(&self) -> usize {
        self.awaiting_txlists.len()
    }
}

impl ChainView for ChainState {
    fn head(&self) -> LocalHead {
        self.head
    }

    fn accepted_at(&self, block_number: u64) -> Option<(SignedCommitment, Address)> {
        self.recent.get(&block_number).cloned()
    }

    fn accepted_in_slot(&self, slot: u64, signer: Address) -> Option<SignedCommitment> {
        self.slot_signers.get(&(slot, signer)).cloned()
    }

    fn eop_for_window(&self, window_end: U256) -> Option<SignedCommitment> {
        self.eops.get(&window_end).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orphan_cache_respects_count_and_bytes() {
        let mut cache = OrphanTxLists::new(2, 150);
        cache.insert(B256::repeat_byte(1), Bytes::from(vec![0; 100]));
        cache.insert(B256::repeat_byte(2), Bytes::from(vec![0; 40]));
        cache.insert(B256::repeat_byte(3), Bytes::from(vec![0; 40]));
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains(&B256::repeat_byte(1)));
        cache.insert(B256::repeat_byte(4), Bytes::from(vec![0; 151]));
        assert!(!cache.contains(&B256::repeat_byte(4)));
        assert!(cache.bytes() <= 150);
        assert_eq!(cache.take(&B256::repeat_byte(2)).map(|b| b.len()), Some(40));
        assert_eq!(cache.bytes(), 40);
    }
}
