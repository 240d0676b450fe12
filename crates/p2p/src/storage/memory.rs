//! In-memory [`SdkStorage`] with count and byte caps.
//!
//! Commitments are evicted lowest block first (the chain's oldest end) once there are more than
//! `max_commitments`; tx lists are evicted least recently used once either cap is exceeded.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;

use bytes::Bytes;
use lru::LruCache;
use parking_lot::RwLock;
use preconfirmation_types::{preconfirmation_hash, SignedCommitment, B256};
use serde::{Deserialize, Serialize};

use super::{block_number_u64, SdkStorage, StorageError, StorageStats};

/// Caps of a [`MemoryStorage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryStorageLimits {
    /// Most commitments kept. Default 100 000 (≈ 38 MB).
    pub max_commitments: usize,
    /// Most tx lists kept. Default 10 000.
    pub max_txlists: usize,
    /// Most tx list bytes kept. Default 512 MiB.
    pub max_txlist_bytes: usize,
}

impl Default for MemoryStorageLimits {
    fn default() -> Self {
        Self {
            max_commitments: 100_000,
            max_txlists: 10_000,
            max_txlist_bytes: 512 * 1024 * 1024,
        }
    }
}

#[derive(Debug)]
struct Inner {
    by_number: BTreeMap<u64, SignedCommitment>,
    number_by_hash: HashMap<B256, u64>,
    txlists: LruCache<B256, (u64, Bytes)>,
    txlist_bytes: usize,
}

/// RAM-only storage under [`MemoryStorageLimits`].
#[derive(Debug)]
pub struct MemoryStorage {
    limits: MemoryStorageLimits,
    inner: RwLock<Inner>,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new(MemoryStorageLimits::default())
    }
}

impl MemoryStorage {
    /// An empty store with `limits` (a zero cap is treated as 1).
    pub fn new(limits: MemoryStorageLimits) -> Self {
        Self {
            limits,
            inner: RwLock::new(Inner {
                by_number: BTreeMap::new(),
                number_by_hash: HashMap::new(),
                txlists: LruCache::unbounded(),
                txlist_bytes: 0,
            }),
        }
    }

    fn max_txlists(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.limits.max_txlists).unwrap_or(NonZeroUsize::MIN)
    }
}

impl Inner {
    fn remove_commitment(&mut self, number: u64) {
        if let Some(c) = self.by_number.remove(&number) {
            self.number_by_hash
                .remove(&preconfirmation_hash(c.preconf()));
        }
    }

    fn pop_lru_txlist(&mut self) -> bool {
        match self.txlists.pop_lru() {
            Some((_, (_, bytes))) => {
                self.txlist_bytes -= bytes.len();
                true
            }
            None => false,
        }
    }
}

impl SdkStorage for MemoryStorage {
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        for c in commitments {
            let Some(number) = block_number_u64(c) else {
                return Err(StorageError::Backend("block number above u64".into()));
            };
            inner.remove_commitment(number);
            inner
                .number_by_hash
                .insert(preconfirmation_hash(c.preconf()), number);
            inner.by_number.insert(number, c.clone());
            // A stored list is filed under the highest block referencing it, so pruning keeps
            // the lists kept blocks need (a list repeated by a later block moves up with it).
            if let Some((filed, _)) = inner.txlists.peek_mut(&c.preconf().raw_tx_list_hash) {
                *filed = (*filed).max(number);
            }
        }
        let max = self.limits.max_commitments.max(1);
        while inner.by_number.len() > max {
            let Some(lowest) = inner.by_number.keys().next().copied() else {
                break;
            };
            inner.remove_commitment(lowest);
        }
        Ok(())
    }

    fn put_txlist(&self, hash: B256, block_number: u64, txlist: Bytes) -> Result<(), StorageError> {
        let mut inner = self.inner.write();
        let len = txlist.len();
        if len > self.limits.max_txlist_bytes {
            return Err(StorageError::Backend(format!(
                "tx list of {len} bytes exceeds the store's {}-byte cap",
                self.limits.max_txlist_bytes
            )));
        }
        let filed = inner
            .txlists
            .peek(&hash)
            .map_or(block_number, |(n, _)| block_number.max(*n));
        if let Some((_, old)) = inner.txlists.put(hash, (filed, txlist)) {
            inner.txlist_bytes -= old.len();
        }
        inner.txlist_bytes += len;
        while inner.txlists.len() > self.max_txlists().get()
            || inner.txlist_bytes > self.limits.max_txlist_bytes
        {
            if !inner.pop_lru_txlist() {
                break;
            }
        }
        Ok(())
    }

    fn commitment_by_number(
        &self,
        block_number: u64,
    ) -> Result<Option<SignedCommitment>, StorageError> {
        Ok(self.inner.read().by_number.get(&block_number).cloned())
    }

    fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>, StorageError> {
        let inner = self.inner.read();
        Ok(inner
            .number_by_hash
            .get(hash)
            .and_then(|n| inner.by_number.get(n))
            .cloned())
    }

    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, StorageError> {
        let inner = self.inner.read();
        let mut out = Vec::with_capacity(max.min(256));
        let mut expected = start;
        for (number, c) in inner.by_number.range(start..) {
            if *number != expected || out.len() >= max {
                break;
            }
            out.push(c.clone());
            expected = expected.saturating_add(1);
        }
        Ok(out)
    }

    fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        // `get` refreshes recency, which needs the write lock.
        Ok(self.inner.write().txlists.get(hash).map(|(_, b)| b.clone()))
    }

    /// A peek under the read lock: no copy, and the list's recency is left as it was.
    fn has_txlist(&self, hash: &B256) -> Result<bool, StorageError> {
        Ok(self.inner.read().txlists.contains(hash))
    }

    fn head(&self) -> Result<Option<SignedCommitment>, StorageError> {
        Ok(self
            .inner
            .read()
            .by_number
            .last_key_value()
            .map(|(_, c)| c.clone()))
    }

    fn prune_below(&self, block_number: u64) -> Result<u64, StorageError> {
        let mut inner = self.inner.write();
        let doomed: Vec<u64> = inner
            .by_number
            .range(..block_number)
            .map(|(n, _)| *n)
            .collect();
        for n in &doomed {
            inner.remove_commitment(*n);
        }
        let stale: Vec<B256> = inner
            .txlists
            .iter()
            .filter(|(_, (n, _))| *n < block_number)
            .map(|(h, _)| *h)
            .collect();
        for h in stale {
            if let Some((_, b)) = inner.txlists.pop(&h) {
                inner.txlist_bytes -= b.len();
            }
        }
        Ok(doomed.len() as u64)
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        let inner = self.inner.read();
        Ok(StorageStats {
            commitments: inner.by_number.len() as u64,
            txlists: inner.txlists.len() as u64,
            txlist_bytes: inner.txlist_bytes as u64,
            lowest_block: inner.by_number.keys().next().copied(),
            highest_block: inner.by_number.keys().next_back().copied(),
        })
    }
}

#[cfg(test)]
mod tests {
    use preconfirmation_types::{raw_tx_list_hash, U256};

    use super::*;

    fn commitment(n: u64) -> SignedCommitment {
        let mut c = SignedCommitment::default();
        c.commitment.preconf.block_number = U256::from(n);
        c
    }

    #[test]
    fn owed_txlists_are_the_referenced_lists_not_stored() {
        let store = MemoryStorage::default();
        let with_txlist = |n: u64, byte: u8| {
            let mut c = commitment(n);
            c.commitment.preconf.raw_tx_list_hash = raw_tx_list_hash(&[byte; 4]);
            c
        };
        // 1..=600: even blocks reference a tx list, odd ones are EOP-only (zero hash).
        let chain: Vec<SignedCommitment> = (1..=600u64)
            .map(|n| {
                if n % 2 == 0 {
                    with_txlist(n, n as u8)
                } else {
                    commitment(n)
                }
            })
            .collect();
        store.put_commitments(&chain).unwrap();
        // Tx lists of blocks divisible by 4 are stored; those of the other even blocks are owed.
        for n in (4..=600u64).step_by(4) {
            store
                .put_txlist(
                    raw_tx_list_hash(&[n as u8; 4]),
                    n,
                    Bytes::from(vec![n as u8; 4]),
                )
                .unwrap();
        }
        let owed = store.owed_txlists(u64::MAX).unwrap();
        let numbers: Vec<u64> = owed.iter().map(|(_, n)| *n).collect();
        let expected: Vec<u64> = (1..=600u64).filter(|n| n % 4 == 2).collect();
        assert_eq!(numbers, expected, "over more than one scan page");
        assert!(owed
            .iter()
            .all(|(h, n)| *h == raw_tx_list_hash(&[*n as u8; 4])));
        // Only the last `scan_blocks` commitments are looked at.
        let recent = store.owed_txlists(10).unwrap();
        assert_eq!(
            recent.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
            vec![594, 598]
        );
        assert!(store.owed_txlists(0).unwrap().is_empty());
        // Pruned blocks are not scanned; an empty store owes nothing.
        store.prune_below(590).unwrap();
        assert_eq!(
            store
                .owed_txlists(u64::MAX)
                .unwrap()
                .iter()
                .map(|(_, n)| *n)
                .collect::<Vec<_>>(),
            vec![590, 594, 598]
        );
        assert!(MemoryStorage::default()
            .owed_txlists(100)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn commitments_evict_lowest_first() {
        let store = MemoryStorage::new(MemoryStorageLimits {
            max_commitments: 3,
            ..Default::default()
        });
        let batch: Vec<_> = (1..=5).map(commitment).collect();
        store.put_commitments(&batch).unwrap();
        let stats = store.stats().unwrap();
        assert_eq!(stats.commitments, 3);
        assert_eq!(stats.lowest_block, Some(3));
        assert!(store.commitment_by_number(2).unwrap().is_none());
        let by_hash = preconfirmation_hash(commitment(2).preconf());
        assert!(store.commitment_by_hash(&by_hash).unwrap().is_none());
        assert_eq!(store.head().unwrap(), Some(commitment(5)));
    }

    #[test]
    fn txlists_evict_by_count_and_bytes() {
        let store = MemoryStorage::new(MemoryStorageLimits {
            max_commitments: 10,
            max_txlists: 3,
            max_txlist_bytes: 250,
        });
        for i in 0..3u8 {
            store
                .put_txlist(B256::repeat_byte(i), i.into(), Bytes::from(vec![i; 100]))
                .unwrap();
        }
        // 300 bytes > 250: the least recently used (0) went.
        let stats = store.stats().unwrap();
        assert_eq!(stats.txlists, 2);
        assert!(stats.txlist_bytes <= 250);
        assert!(store.txlist(&B256::repeat_byte(0)).unwrap().is_none());
        // Touch 1, add 3: 2 is the least recently used now.
        assert!(store.txlist(&B256::repeat_byte(1)).unwrap().is_some());
        store
            .put_txlist(B256::repeat_byte(3), 3, Bytes::from(vec![3; 100]))
            .unwrap();
        assert!(store.txlist(&B256::repeat_byte(2)).unwrap().is_none());
        assert!(store.txlist(&B256::repeat_byte(1)).unwrap().is_some());
        // Larger than the whole cap: refused, nothing evicted.
        assert!(store
            .put_txlist(B256::repeat_byte(9), 9, Bytes::from(vec![0; 251]))
            .is_err());
        assert_eq!(store.stats().unwrap().txlists, 2);
    }

    /// `has_txlist` answers by key: it neither copies the list nor refreshes its recency, so
    /// a list that was only checked is still the first evicted.
    #[test]
    fn has_txlist_peeks_without_refreshing_recency() {
        let store = MemoryStorage::new(MemoryStorageLimits {
            max_txlists: 2,
            ..Default::default()
        });
        for i in 0..2u8 {
            store
                .put_txlist(B256::repeat_byte(i), i.into(), Bytes::from(vec![i; 10]))
                .unwrap();
        }
        assert!(store.has_txlist(&B256::repeat_byte(0)).unwrap());
        assert!(store.has_txlist(&B256::repeat_byte(1)).unwrap());
        assert!(!store.has_txlist(&B256::repeat_byte(9)).unwrap());
        // 0 was checked last, yet it is still the least recently used: adding 2 evicts it.
        assert!(store.has_txlist(&B256::repeat_byte(0)).unwrap());
        store
            .put_txlist(B256::repeat_byte(2), 2, Bytes::from(vec![2; 10]))
            .unwrap();
        assert!(!store.has_txlist(&B256::repeat_byte(0)).unwrap());
        assert!(store.has_txlist(&B256::repeat_byte(1)).unwrap());
        assert!(store.has_txlist(&B256::repeat_byte(2)).unwrap());
    }

    #[test]
    fn commitments_from_stops_at_gap_and_max() {
        let store = MemoryStorage::default();
        let batch: Vec<_> = [1, 2, 3, 5].into_iter().map(commitment).collect();
        store.put_commitments(&batch).unwrap();
        assert_eq!(store.commitments_from(1, 10).unwrap().len(), 3);
        assert_eq!(store.commitments_from(1, 2).unwrap().len(), 2);
        assert_eq!(store.commitments_from(4, 10).unwrap().len(), 0);
        assert_eq!(store.commitments_from(5, 10).unwrap().len(), 1);
    }

    #[test]
    fn prune_drops_commitments_and_txlists_below() {
        let store = MemoryStorage::default();
        let batch: Vec<_> = (1..=4).map(commitment).collect();
        store.put_commitments(&batch).unwrap();
        store
            .put_txlist(B256::repeat_byte(1), 1, Bytes::from_static(b"a"))
            .unwrap();
        store
            .put_txlist(B256::repeat_byte(4), 4, Bytes::from_static(b"b"))
            .unwrap();
        assert_eq!(store.prune_below(3).unwrap(), 2);
        let stats = store.stats().unwrap();
        assert_eq!((stats.commitments, stats.txlists), (2, 1));
    }

    /// The same list for blocks 1 and 5: pruning below 3 keeps it (block 5 needs it), in
    /// either order of list and commitment.
    #[test]
    fn prune_keeps_a_list_a_kept_block_repeats() {
        for list_first in [true, false] {
            let store = MemoryStorage::default();
            let hash = B256::repeat_byte(7);
            let mut blocks: Vec<_> = (1..=5).map(commitment).collect();
            for i in [0, 4] {
                blocks[i].commitment.preconf.raw_tx_list_hash = hash;
            }
            if list_first {
                store
                    .put_txlist(hash, 1, Bytes::from_static(b"repeated"))
                    .unwrap();
                store.put_commitments(&blocks).unwrap();
            } else {
                store.put_commitments(&blocks).unwrap();
                store
                    .put_txlist(hash, 5, Bytes::from_static(b"repeated"))
                    .unwrap();
                store
                    .put_txlist(hash, 1, Bytes::from_static(b"repeated"))
                    .unwrap();
            }
            store.prune_below(3).unwrap();
            assert_eq!(
                store.txlist(&hash).unwrap().as_deref(),
                Some(&b"repeated"[..]),
                "list_first={list_first}"
            );
            store.prune_below(6).unwrap();
            assert_eq!(
                store.txlist(&hash).unwrap(),
                None,
                "gone with its last block"
            );
        }
    }
}
