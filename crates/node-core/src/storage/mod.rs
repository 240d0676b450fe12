//! The node's storage stack: the crash-safe [`RedbStore`] in the data dir, an optional layer
//! around it (fault injection in tests), and [`StorageHealth`] tracking on top; what the SDK
//! writes and inbound req/resp reads.
//!
//! ```text
//!  P2pSdk ── Layered<StorageHealth> ── [StorageLayer] ── RedbStore (preconf.redb)
//! ```
//!
//! [`Layered`] is the one way to put a layer over a store: it forwards every [`SdkStorage`]
//! call and shows each to its [`StorageHooks`].

mod health;
mod layer;
pub mod redb_store;

pub use health::StorageHealth;
pub use layer::{Layered, Served, StorageHooks, Write};
pub use redb_store::RedbStore;

use std::path::Path;
use std::sync::Arc;

use p2p::{SdkStorage, StorageError};
use preconfirmation_types::ChainLimits;

use crate::error::NodeError;

/// Wraps the store before the SDK gets it (see [`crate::Node::start_with_storage_layer`]).
pub type StorageLayer = Box<dyn FnOnce(Arc<dyn SdkStorage>) -> Arc<dyn SdkStorage> + Send>;

/// A node's storage stack, as [`open_node_storage`] builds it.
pub struct NodeStorage {
    /// The redb store itself (its stats, status pages).
    pub store: Arc<RedbStore>,
    /// What the SDK gets: `store`, the optional layer, then health tracking on top.
    pub storage: Arc<dyn SdkStorage>,
    /// Whether writes succeed (fed by `storage`).
    pub health: Arc<StorageHealth>,
}

/// Opens the storage stack a node runs on: the redb store in `data_dir`, `layer` (if any)
/// around it, and [`StorageHealth`] tracking on top. [`crate::Node::start`] and the benches
/// both build their storage here, so a bench runs what a node runs.
pub fn open_node_storage(
    data_dir: &Path,
    limits: ChainLimits,
    layer: Option<StorageLayer>,
) -> Result<NodeStorage, NodeError> {
    let store = Arc::new(RedbStore::open(data_dir, limits)?);
    let mut storage: Arc<dyn SdkStorage> = store.clone();
    if let Some(layer) = layer {
        storage = layer(storage);
    }
    let health = Arc::new(StorageHealth::default());
    let storage: Arc<dyn SdkStorage> = Arc::new(Layered::new(storage, health.clone()));
    Ok(NodeStorage {
        store,
        storage,
        health,
    })
}

/// Prunes everything below `below`, at most `chunk` blocks per call (one transaction each),
/// lowest first; returns the commitments removed.
pub fn prune_in_chunks(
    store: &dyn SdkStorage,
    below: u64,
    chunk: u64,
) -> Result<u64, StorageError> {
    let mut removed = 0;
    loop {
        let Some(lowest) = store.stats()?.lowest_block.filter(|l| *l < below) else {
            return Ok(removed);
        };
        let upto = below.min(lowest.saturating_add(chunk.max(1)));
        removed += store.prune_below(upto)?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use p2p::MemoryStorage;
    use preconfirmation_types::{SignedCommitment, B256};

    use super::*;

    /// Counts the writes reaching the store below, by kind, and the prune bounds.
    #[derive(Default)]
    struct Counting {
        groups: AtomicUsize,
        singles: AtomicUsize,
        pages: AtomicUsize,
        prunes: parking_lot::Mutex<Vec<u64>>,
    }

    impl StorageHooks for Counting {
        fn before_write(&self, write: &Write<'_>) -> Result<(), StorageError> {
            match write {
                Write::Txlist { .. } => self.singles.fetch_add(1, Ordering::Relaxed),
                Write::Txlists(_) => self.groups.fetch_add(1, Ordering::Relaxed),
                Write::Page { .. } => self.pages.fetch_add(1, Ordering::Relaxed),
                Write::PruneBelow(n) => {
                    self.prunes.lock().push(*n);
                    0
                }
                Write::Commitments(_) => 0,
            };
            Ok(())
        }
    }

    fn counting() -> (Arc<Counting>, Layered<Arc<Counting>>) {
        let hooks = Arc::new(Counting::default());
        let store = Layered::new(Arc::new(MemoryStorage::default()), hooks.clone());
        (hooks, store)
    }

    /// A large prune runs as one short transaction per chunk, lowest blocks first, and
    /// removes everything below the bound.
    #[test]
    fn pruning_runs_in_bounded_chunks() {
        let (counts, store) = counting();
        let chain = preconfirmation_types::ChainSpec::new(
            167_001,
            preconfirmation_types::Address::repeat_byte(0x51),
        );
        let mut builder = p2p::testkit::ChainBuilder::in_the_past(chain, 2, 4, 10_000);
        let blocks: Vec<SignedCommitment> = builder
            .blocks(2_500, 8)
            .into_iter()
            .map(|b| b.commitment)
            .collect();
        store.put_commitments(&blocks).expect("seed");
        assert_eq!(prune_in_chunks(&store, 2_101, 1_000).expect("prune"), 2_100);
        assert_eq!(*counts.prunes.lock(), vec![1_001, 2_001, 2_101]);
        assert_eq!(store.stats().expect("stats").lowest_block, Some(2_101));
        // Nothing below the bound: no transaction at all.
        counts.prunes.lock().clear();
        assert_eq!(prune_in_chunks(&store, 2_101, 1_000).expect("prune"), 0);
        assert!(counts.prunes.lock().is_empty());
    }

    #[test]
    fn health_checked_storage_keeps_group_writes_whole() {
        let (counts, inner) = counting();
        let checked = Layered::new(Arc::new(inner), Arc::new(StorageHealth::default()));
        let group: Vec<(B256, u64, Bytes)> = (1..=3u8)
            .map(|i| {
                let bytes = vec![i; 8];
                (
                    preconfirmation_types::raw_tx_list_hash(&bytes),
                    u64::from(i),
                    Bytes::from(bytes),
                )
            })
            .collect();
        checked.put_txlists(&group).expect("stored");
        assert_eq!(counts.groups.load(Ordering::Relaxed), 1);
        assert_eq!(counts.singles.load(Ordering::Relaxed), 0);
        for (hash, _, bytes) in &group {
            assert_eq!(checked.txlist(hash).expect("read"), Some(bytes.clone()));
        }
        // A catch-up page (commitments and tx lists) reaches the store as one page write.
        let mut builder = p2p::testkit::ChainBuilder::in_the_past(
            preconfirmation_types::ChainSpec::new(1, preconfirmation_types::Address::ZERO),
            1,
            1,
            4,
        );
        let blocks = builder.blocks(2, 16);
        let commitments: Vec<SignedCommitment> =
            blocks.iter().map(|b| b.commitment.clone()).collect();
        checked.put_page(&commitments, &group).expect("page stored");
        assert_eq!(counts.pages.load(Ordering::Relaxed), 1);
        assert_eq!(
            counts.groups.load(Ordering::Relaxed),
            1,
            "not split into groups"
        );
        assert_eq!(checked.stats().expect("stats").commitments, 2);
    }

    /// Fails every write while set.
    #[derive(Default)]
    struct Full(std::sync::atomic::AtomicBool);

    impl StorageHooks for Full {
        fn before_write(&self, _write: &Write<'_>) -> Result<(), StorageError> {
            if self.0.load(Ordering::SeqCst) {
                return Err(StorageError::Backend("No space left on device".into()));
            }
            Ok(())
        }
    }

    /// A failed write is recorded, and counted, until the next write succeeds; the store
    /// below never sees the failed one.
    #[test]
    fn health_follows_the_last_write() {
        let full = Arc::new(Full::default());
        let below = Layered::new(Arc::new(MemoryStorage::default()), full.clone());
        let health = Arc::new(StorageHealth::default());
        let store = Layered::new(Arc::new(below), health.clone());
        let mut builder = p2p::testkit::ChainBuilder::in_the_past(
            preconfirmation_types::ChainSpec::new(1, preconfirmation_types::Address::ZERO),
            1,
            1,
            4,
        );
        let blocks = builder.blocks(2, 16);
        full.0.store(true, Ordering::SeqCst);
        let err = store
            .put_commitments(std::slice::from_ref(&blocks[0].commitment))
            .expect_err("the disk is full");
        assert!(err.to_string().contains("No space"), "{err}");
        assert_eq!(health.failures(), 1);
        assert!(health.failure().is_some_and(|f| f.contains("No space")));
        assert_eq!(store.head().expect("reads still work"), None);
        full.0.store(false, Ordering::SeqCst);
        store
            .put_commitments(std::slice::from_ref(&blocks[0].commitment))
            .expect("stored once the disk has room");
        assert_eq!(health.failure(), None, "a write that succeeds clears it");
        assert_eq!(health.failures(), 1);
    }
}
