//! One store over another: [`Layered`] forwards every [`SdkStorage`] call to the store below
//! and shows each call to its [`StorageHooks`] on the way. A layer (the node's write-health
//! tracking, a bench's count of served bytes, a test's fault or counter) is the few hooks it
//! needs, not another forwarding of every method: group writes, catch-up pages and index
//! lookups reach the store below as the same single calls, so its one-transaction writes and
//! its own fast paths are kept.

use std::sync::Arc;

use bytes::Bytes;
use p2p::{SdkStorage, StorageError, StorageStats};
use preconfirmation_types::{SignedCommitment, B256};

/// A write on its way to the store below.
#[derive(Debug, Clone, Copy)]
pub enum Write<'a> {
    /// [`SdkStorage::put_commitments`].
    Commitments(&'a [SignedCommitment]),
    /// [`SdkStorage::put_txlist`]: one tx list.
    Txlist {
        /// Its hash.
        hash: B256,
        /// The block that references it.
        block_number: u64,
        /// Its bytes.
        txlist: &'a Bytes,
    },
    /// [`SdkStorage::put_txlists`]: a group of tx lists in one call.
    Txlists(&'a [(B256, u64, Bytes)]),
    /// [`SdkStorage::put_page`]: a catch-up page in one call.
    Page {
        /// The page's commitments.
        commitments: &'a [SignedCommitment],
        /// The tx lists they reference.
        txlists: &'a [(B256, u64, Bytes)],
    },
    /// [`SdkStorage::prune_below`] this block number.
    PruneBelow(u64),
}

/// What a read for serving returned from the store below.
#[derive(Debug, Clone, Copy)]
pub enum Served<'a> {
    /// The commitments of a [`SdkStorage::commitments_from`].
    Commitments(&'a [SignedCommitment]),
    /// The tx list of a [`SdkStorage::txlist`] that found one.
    Txlist(&'a Bytes),
}

/// What a [`Layered`] store does besides forwarding. Every hook's default does nothing.
pub trait StorageHooks: Send + Sync + 'static {
    /// Runs before `write` reaches the store below; an error is the write's outcome and the
    /// store below never sees the write.
    fn before_write(&self, _write: &Write<'_>) -> Result<(), StorageError> {
        Ok(())
    }

    /// Sees how `write` ended: the store's outcome, or the error [`Self::before_write`]
    /// returned.
    fn after_write(&self, _write: &Write<'_>, _outcome: Result<(), &StorageError>) {}

    /// Sees what a read for serving returned (`commitments_from`, and `txlist` when it found
    /// the list). Lookups that serve no bytes (`has_txlist`, the start-up `owed_txlists` scan,
    /// the head, the stats) are not shown.
    fn served(&self, _read: Served<'_>) {}
}

/// Shared hooks: the layer holds one handle, the owner another (to read what they counted).
impl<H: StorageHooks> StorageHooks for Arc<H> {
    fn before_write(&self, write: &Write<'_>) -> Result<(), StorageError> {
        H::before_write(self, write)
    }

    fn after_write(&self, write: &Write<'_>, outcome: Result<(), &StorageError>) {
        H::after_write(self, write, outcome)
    }

    fn served(&self, read: Served<'_>) {
        H::served(self, read)
    }
}

/// `inner` with `hooks` around every call (see the module docs).
pub struct Layered<H> {
    inner: Arc<dyn SdkStorage>,
    hooks: H,
}

impl<H: std::fmt::Debug> std::fmt::Debug for Layered<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layered")
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl<H: StorageHooks> Layered<H> {
    /// `hooks` around `inner`.
    pub fn new(inner: Arc<dyn SdkStorage>, hooks: H) -> Self {
        Self { inner, hooks }
    }

    /// The hooks.
    pub fn hooks(&self) -> &H {
        &self.hooks
    }

    /// The store below.
    pub fn inner(&self) -> &Arc<dyn SdkStorage> {
        &self.inner
    }

    fn write<T>(
        &self,
        write: Write<'_>,
        forward: impl FnOnce(&dyn SdkStorage) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let outcome = self
            .hooks
            .before_write(&write)
            .and_then(|()| forward(self.inner.as_ref()));
        self.hooks.after_write(&write, outcome.as_ref().map(|_| ()));
        outcome
    }
}

impl<H: StorageHooks> SdkStorage for Layered<H> {
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), StorageError> {
        self.write(Write::Commitments(commitments), |s| {
            s.put_commitments(commitments)
        })
    }

    fn put_txlist(&self, hash: B256, block_number: u64, txlist: Bytes) -> Result<(), StorageError> {
        let write = Write::Txlist {
            hash,
            block_number,
            txlist: &txlist,
        };
        self.write(write, |s| s.put_txlist(hash, block_number, txlist.clone()))
    }

    fn put_txlists(&self, txlists: &[(B256, u64, Bytes)]) -> Result<(), StorageError> {
        self.write(Write::Txlists(txlists), |s| s.put_txlists(txlists))
    }

    fn put_page(
        &self,
        commitments: &[SignedCommitment],
        txlists: &[(B256, u64, Bytes)],
    ) -> Result<(), StorageError> {
        let write = Write::Page {
            commitments,
            txlists,
        };
        self.write(write, |s| s.put_page(commitments, txlists))
    }

    fn commitment_by_number(
        &self,
        block_number: u64,
    ) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.commitment_by_number(block_number)
    }

    fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.commitment_by_hash(hash)
    }

    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, StorageError> {
        let commitments = self.inner.commitments_from(start, max)?;
        self.hooks.served(Served::Commitments(&commitments));
        Ok(commitments)
    }

    fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        let txlist = self.inner.txlist(hash)?;
        if let Some(txlist) = &txlist {
            self.hooks.served(Served::Txlist(txlist));
        }
        Ok(txlist)
    }

    fn has_txlist(&self, hash: &B256) -> Result<bool, StorageError> {
        self.inner.has_txlist(hash)
    }

    fn head(&self) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.head()
    }

    fn prune_below(&self, block_number: u64) -> Result<u64, StorageError> {
        self.write(Write::PruneBelow(block_number), |s| {
            s.prune_below(block_number)
        })
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        self.inner.stats()
    }

    fn owed_txlists(&self, scan_blocks: u64) -> Result<Vec<(B256, u64)>, StorageError> {
        self.inner.owed_txlists(scan_blocks)
    }
}
