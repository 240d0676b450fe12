//! The durable writer: the one task that writes what the core accepted, so the manager never
//! waits for a disk.
//!
//! The core validates a commitment (gossip, local publish, catch-up page, a tx list that an
//! accepted commitment awaited), applies it to its in-memory chain, hands gossipsub its verdict
//! at once, and queues a [`PageWrite`] here. The writer stores writes in the order the core
//! made them, each group in one durable transaction ([`SdkStorage::put_page`]) on the blocking
//! pool: whatever queued up while one transaction ran goes into the next (group commit), so
//! one fsync serves every write that arrived during the previous one. Then it reports each
//! write to the manager ([`Internal::Stored`]); only then does the core announce it to the
//! sidecar, acknowledge a local publish and move the head it reports — nothing announced can
//! be lost by a crash.
//!
//! A failed write stops everything queued behind it from reaching storage (it would leave a
//! hole): the core rebuilds its chain from storage and starts a new *epoch*; the writer drops
//! every job of the failed epoch still queued.

use std::collections::HashSet;
use std::sync::Weak;

use bytes::Bytes;
use preconfirmation_types::{SignedCommitment, B256};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tracing::{debug, warn};

use crate::error::StorageError;
use crate::handlers::PageWrite;
use crate::metrics;
use crate::sdk::Internal;
use crate::storage::SdkStorage;

/// What the write of one page found: its unresolved tx lists that storage holds, and those
/// still owed (`(hash, block number)`).
pub(crate) type PageOutcome = (HashSet<B256>, Vec<(B256, u64)>);

/// One write for the writer.
#[derive(Debug)]
pub(crate) struct WriteJob {
    /// What to store.
    pub write: PageWrite,
    /// The core's epoch when it made the write ([`crate::handlers::Core`] starts a new one
    /// when it rebuilds from storage after a failed write).
    pub epoch: u64,
    /// Room in catch-up's write queue (pages and bytes), held until the write is done.
    pub permits: Vec<OwnedSemaphorePermit>,
    /// Who also wants the outcome (catch-up: the tx lists still owed).
    pub done: Option<oneshot::Sender<Result<PageOutcome, StorageError>>>,
}

/// Handle to the writer task; cheap to clone. The task ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<WriteJob>,
}

impl Writer {
    /// Starts the writer on `storage` (weak: a task winding down never keeps the store open),
    /// reporting to the manager on `internal`.
    pub(crate) fn spawn(storage: Weak<dyn SdkStorage>, internal: mpsc::Sender<Internal>) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(storage, queue, internal));
        Self { jobs }
    }

    /// Queues `job`. The queue is unbounded in count but not in what it can hold: the core
    /// queues only writes that extend its chain (bounded by the block rate over one
    /// transaction), catch-up pages wait for their byte budget first. False once the writer
    /// stopped (the SDK is shutting down).
    pub(crate) fn submit(&self, job: WriteJob) -> bool {
        self.jobs.send(job).is_ok()
    }
}

async fn run(
    storage: Weak<dyn SdkStorage>,
    mut queue: mpsc::UnboundedReceiver<WriteJob>,
    internal: mpsc::Sender<Internal>,
) {
    // Writes of this epoch and earlier are not written: one of them failed.
    let mut failed_epoch: Option<u64> = None;
    while let Some(first) = queue.recv().await {
        let mut group = vec![first];
        while let Ok(next) = queue.try_recv() {
            group.push(next);
        }
        let (live, dropped): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|job| failed_epoch.is_none_or(|failed| job.epoch > failed));
        for job in dropped {
            if let Some(done) = job.done {
                let _ = done.send(Err(StorageError::Backend(
                    "dropped after an earlier write failed".into(),
                )));
            }
        }
        if live.is_empty() {
            continue;
        }
        let Some(storage) = storage.upgrade() else {
            return; // the SDK stopped: nothing more is written
        };
        let epoch = live.iter().map(|j| j.epoch).max().unwrap_or_default();
        let mut ids = Vec::with_capacity(live.len());
        let mut writes = Vec::with_capacity(live.len());
        let mut dones = Vec::with_capacity(live.len());
        let mut permits = Vec::with_capacity(live.len());
        for job in live {
            ids.push(job.write.id);
            writes.push(job.write);
            dones.push(job.done);
            permits.push(job.permits);
        }
        metrics::write_group(writes.len());
        let written = tokio::task::spawn_blocking(move || write_group(storage.as_ref(), writes))
            .await
            .unwrap_or_else(|e| Err(StorageError::Backend(format!("write task failed: {e}"))));
        // The pages' bytes are gone (moved into the write and dropped): room for more.
        drop(permits);
        match written {
            Ok(outcomes) => {
                for ((id, done), (present, owed)) in ids.into_iter().zip(dones).zip(outcomes) {
                    if let Some(done) = done {
                        let _ = done.send(Ok((present.clone(), owed)));
                    }
                    let stored = Internal::Stored {
                        id,
                        outcome: Ok(present),
                    };
                    if internal.send(stored).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, writes = ids.len(), "durable write failed");
                failed_epoch = Some(epoch);
                for done in dones.into_iter().flatten() {
                    let _ = done.send(Err(StorageError::Backend(e.to_string())));
                }
                let failed = Internal::Stored {
                    id: ids.first().copied().unwrap_or_default(),
                    outcome: Err(e),
                };
                if internal.send(failed).await.is_err() {
                    return;
                }
            }
        }
    }
    debug!("writer stopped");
}

/// What the writer task does, at once on this thread: writes everything `core` queued in one
/// transaction and reports each write stored (for [`crate::gossip_path`] and unit tests).
/// Returns the commitments written.
pub(crate) fn write_queued_now(
    core: &mut crate::handlers::Core,
    storage: &dyn SdkStorage,
) -> Result<usize, StorageError> {
    let writes = core.take_writes();
    let ids: Vec<u64> = writes.iter().map(|w| w.id).collect();
    let commitments = writes.iter().map(|w| w.commitments.len()).sum();
    let outcomes = write_group(storage, writes)?;
    for (id, (present, _owed)) in ids.into_iter().zip(outcomes) {
        core.on_stored(id, Ok(present));
    }
    Ok(commitments)
}

/// Writes `group` (in order) in one transaction, then sorts each write's unresolved tx lists
/// into held and owed.
fn write_group(
    storage: &dyn SdkStorage,
    group: Vec<PageWrite>,
) -> Result<Vec<PageOutcome>, StorageError> {
    // The writes are moved into one transaction, not copied.
    let mut commitments: Vec<SignedCommitment> = Vec::new();
    let mut txlists: Vec<(B256, u64, Bytes)> = Vec::new();
    let mut unresolved = Vec::with_capacity(group.len());
    for write in group {
        commitments.extend(write.commitments);
        txlists.extend(write.txlists);
        unresolved.push(write.unresolved);
    }
    storage.put_page(&commitments, &txlists)?;
    let mut outcomes = Vec::with_capacity(unresolved.len());
    for page in unresolved {
        let mut present = HashSet::new();
        let mut missing = Vec::new();
        for (hash, number) in page {
            if storage.txlist(&hash)?.is_some() {
                present.insert(hash);
            } else {
                missing.push((hash, number));
            }
        }
        outcomes.push((present, missing));
    }
    Ok(outcomes)
}
