//! [`SdkStorage`]: the one store the SDK writes and inbound req/resp reads (§10–§11), so a node
//! serves exactly what it published or accepted.
//!
//! Only validated data reaches storage: commitments that extend the local chain (ascending,
//! linked by parent hash) and tx lists that an accepted commitment references. The head is the
//! highest stored commitment. Calls are synchronous and must be short (an in-memory map or one
//! database transaction); the SDK calls them from its own task, never from the network driver.
//!
//! [`MemoryStorage`] keeps everything in RAM under count and byte caps; `preconf-node` ships a
//! crash-safe redb implementation.

mod memory;

pub use memory::{MemoryStorage, MemoryStorageLimits};

use bytes::Bytes;
use preconfirmation_types::{SignedCommitment, B256};

/// Errors a storage backend reports ([`SdkStorage`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The backend failed (I/O, database, lock).
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Stored bytes no longer decode; the store is corrupt.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Sizes of a store, for `/status` and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StorageStats {
    /// Stored commitments.
    pub commitments: u64,
    /// Stored tx lists.
    pub txlists: u64,
    /// Bytes of stored tx lists.
    pub txlist_bytes: u64,
    /// Lowest stored block number, if any.
    pub lowest_block: Option<u64>,
    /// Highest stored block number (the head), if any.
    pub highest_block: Option<u64>,
}

/// Storage of accepted commitments and tx lists.
pub trait SdkStorage: Send + Sync + 'static {
    /// Stores `commitments` (ascending by block number, each extending the previous one or the
    /// current head) in one atomic step. When this returns `Ok`, the data must survive a crash.
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), StorageError>;

    /// Stores a tx list whose hash an accepted commitment for `block_number` carries.
    fn put_txlist(&self, hash: B256, block_number: u64, txlist: Bytes) -> Result<(), StorageError>;

    /// Stores several tx lists as [`SdkStorage::put_txlist`] does, `(hash, block number,
    /// bytes)` each. When this returns `Ok`, all of them must survive a crash; a durable
    /// backend should write them in one transaction (catch-up stores a page's tx lists at
    /// once, and one sync per list would bound it by the disk's sync rate).
    fn put_txlists(&self, txlists: &[(B256, u64, Bytes)]) -> Result<(), StorageError> {
        for (hash, block_number, txlist) in txlists {
            self.put_txlist(*hash, *block_number, txlist.clone())?;
        }
        Ok(())
    }

    /// Stores a catch-up page: `commitments` as [`SdkStorage::put_commitments`] does and the
    /// tx lists they reference as [`SdkStorage::put_txlists`] does. When this returns `Ok`,
    /// all of it must survive a crash; a durable backend should write it in one transaction
    /// (one sync per page of up to 256 blocks). The default writes the tx lists first, then
    /// the commitments: a crash in between leaves tx lists whose commitment is not stored
    /// (harmless: fetched commitments find them), never commitments whose tx lists are lost.
    fn put_page(
        &self,
        commitments: &[SignedCommitment],
        txlists: &[(B256, u64, Bytes)],
    ) -> Result<(), StorageError> {
        self.put_txlists(txlists)?;
        self.put_commitments(commitments)
    }

    /// The commitment for `block_number`.
    fn commitment_by_number(
        &self,
        block_number: u64,
    ) -> Result<Option<SignedCommitment>, StorageError>;

    /// The commitment whose `preconfirmation_hash` is `hash`.
    fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>, StorageError>;

    /// Up to `max` consecutive commitments from `start`, stopping at the first missing number.
    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, StorageError>;

    /// The tx list with `keccak256 = hash`.
    fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError>;

    /// Whether the tx list with `keccak256 = hash` is stored. The SDK asks this on its
    /// manager task for every announced or fetched hash, so a store should answer from its
    /// index, without reading (or copying) the bytes and without counting it as a use (an LRU
    /// store keeps the list's recency). The default reads the list through
    /// [`SdkStorage::txlist`] and drops it.
    fn has_txlist(&self, hash: &B256) -> Result<bool, StorageError> {
        self.txlist(hash).map(|t| t.is_some())
    }

    /// The highest stored commitment.
    fn head(&self) -> Result<Option<SignedCommitment>, StorageError>;

    /// Deletes commitments (and their tx lists) below `block_number`; returns how many
    /// commitments went.
    fn prune_below(&self, block_number: u64) -> Result<u64, StorageError>;

    /// Current sizes.
    fn stats(&self) -> Result<StorageStats, StorageError>;

    /// The tx lists that stored commitments reference (non-zero `rawTxListHash`) but that are
    /// not stored: `(hash, block number)`, looking at the `scan_blocks` commitments below and
    /// at the head. The SDK calls it once at start, so tx lists owed when the node stopped (a
    /// crash, a storage failure, no peer had them) are fetched after a restart.
    ///
    /// The default reads the commitments in pages (256 at a time) and looks each hash up; a
    /// store with an index of its own may answer faster.
    fn owed_txlists(&self, scan_blocks: u64) -> Result<Vec<(B256, u64)>, StorageError> {
        let Some(head) = self.head()?.as_ref().and_then(block_number_u64) else {
            return Ok(Vec::new());
        };
        let lowest = self.stats()?.lowest_block.unwrap_or(head);
        let mut next = head
            .saturating_sub(scan_blocks.saturating_sub(1))
            .max(lowest);
        let mut owed = Vec::new();
        while scan_blocks > 0 && next <= head {
            let page = self.commitments_from(next, OWED_SCAN_PAGE)?;
            if page.is_empty() {
                break;
            }
            for commitment in &page {
                let hash = commitment.preconf().raw_tx_list_hash;
                if hash != B256::ZERO && !self.has_txlist(&hash)? {
                    if let Some(number) = block_number_u64(commitment) {
                        owed.push((hash, number));
                    }
                }
            }
            next = next.saturating_add(page.len() as u64);
        }
        Ok(owed)
    }
}

/// Commitments read per step by [`SdkStorage::owed_txlists`]'s default.
const OWED_SCAN_PAGE: usize = 256;

/// Block number of a commitment as `u64`; validation refuses anything larger.
pub(crate) fn block_number_u64(commitment: &SignedCommitment) -> Option<u64> {
    u64::try_from(commitment.preconf().block_number).ok()
}
