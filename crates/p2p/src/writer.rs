//! The durable writer: the one thread that writes what the core accepted, so the manager never
//! waits for a disk.
//!
//! The core validates a commitment (gossip, local publish, catch-up page, a tx list that an
//! accepted commitment awaited), applies it to its in-memory chain, hands gossipsub its verdict
//! at once, and queues a [`PageWrite`] here. The writer stores writes in the order the core
//! made them, each group in one durable transaction ([`SdkStorage::put_page`]): whatever
//! queued up while one transaction ran goes into the next (group commit), so one fsync serves
//! every write that arrived during the previous one. Then it reports each write to the manager
//! ([`Internal::Stored`]); only then does the core announce it to the sidecar, acknowledge a
//! local publish and move the head it reports — nothing announced can be lost by a crash.
//!
//! The writer has a thread of its own, with a one-thread tokio runtime for its queue and the
//! catch-up linger, and runs each transaction right there. A job therefore wakes a thread that
//! waits for nothing else, instead of queueing behind the node's network tasks on the shared
//! runtime twice (once to start the writer's task, once more to resume it after the blocking
//! pool's fsync); only the report back to the manager still takes that queue.
//!
//! A failed write stops everything queued behind it from reaching storage (it would leave a
//! hole): the core rebuilds its chain from storage and starts a new *epoch*; the writer drops
//! every job of the failed epoch still queued.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use bytes::Bytes;
use preconfirmation_types::{SignedCommitment, B256};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tracing::{debug, warn};

use crate::messages::{Internal, PageOutcome, PageWrite};
use crate::metrics;
use crate::storage::SdkStorage;
use crate::storage::StorageError;

/// One write for the writer.
#[derive(Debug)]
pub(crate) struct WriteJob {
    /// What to store.
    pub write: PageWrite,
    /// The core's epoch when it made the write (the core starts a new one
    /// when it rebuilds from storage after a failed write).
    pub epoch: u64,
    /// Room in catch-up's write queue (pages and bytes), held until the write is done.
    pub permits: Vec<OwnedSemaphorePermit>,
    /// Who also wants the outcome (catch-up: the tx lists still owed).
    pub done: Option<oneshot::Sender<Result<PageOutcome, StorageError>>>,
}

impl WriteJob {
    /// Whether this is a catch-up page (those hold room in catch-up's write queue).
    fn is_catchup(&self) -> bool {
        !self.permits.is_empty()
    }
}

/// How the writer groups catch-up pages into transactions (`catchup.write_group_pages`,
/// `catchup.write_group_linger`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct GroupPolicy {
    /// Catch-up pages a transaction waits to gather.
    pub pages: usize,
    /// How long it waits for them at most.
    pub linger: Duration,
}

impl GroupPolicy {
    /// The policy `config` sets.
    pub(crate) fn from_config(config: &crate::config::CatchUpConfig) -> Self {
        Self {
            pages: config
                .write_group_pages
                .min(config.write_queue_pages)
                .max(1),
            linger: config.write_group_linger,
        }
    }
}

/// Name of the writer's thread.
pub const WRITER_THREAD: &str = "p2p-writer";

/// Handle to the writer; cheap to clone. The writer's thread ends when every handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    jobs: mpsc::UnboundedSender<WriteJob>,
}

impl Writer {
    /// Starts the writer on its own thread on `storage` (weak: a writer winding down never
    /// keeps the store open), reporting to the manager on `internal`.
    pub(crate) fn spawn(
        storage: Weak<dyn SdkStorage>,
        internal: mpsc::Sender<Internal>,
        policy: GroupPolicy,
    ) -> Result<Self, StorageError> {
        let cannot_start =
            |e: std::io::Error| StorageError::Backend(format!("cannot start the writer: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(cannot_start)?;
        let (jobs, queue) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name(WRITER_THREAD.into())
            .spawn(move || runtime.block_on(run(storage, queue, internal, policy)))
            .map_err(cannot_start)?;
        Ok(Self { jobs })
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
    policy: GroupPolicy,
) {
    // Writes of this epoch and earlier are not written: one of them failed.
    let mut failed_epoch: Option<u64> = None;
    while let Some(first) = queue.recv().await {
        let group = gather(first, &mut queue, policy).await;
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
        // Blocking is this thread's job: nothing else runs on its runtime.
        let written = write_group(storage.as_ref(), writes);
        drop(storage);
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

/// The next group: `first` and whatever is queued behind it. A group of catch-up pages only
/// waits (up to `policy.linger`) until it holds `policy.pages`; any other write ends the wait,
/// as does the queue closing.
async fn gather(
    first: WriteJob,
    queue: &mut mpsc::UnboundedReceiver<WriteJob>,
    policy: GroupPolicy,
) -> Vec<WriteJob> {
    let mut group = vec![first];
    while let Ok(next) = queue.try_recv() {
        group.push(next);
    }
    if group.len() >= policy.pages || !group.iter().all(WriteJob::is_catchup) {
        return group;
    }
    let deadline = tokio::time::Instant::now() + policy.linger;
    while group.len() < policy.pages {
        match tokio::time::timeout_at(deadline, queue.recv()).await {
            Ok(Some(next)) => {
                let catchup = next.is_catchup();
                group.push(next);
                if !catchup {
                    break;
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
    group
}

/// Writes `group` (in order) in one transaction, then sorts each write's unresolved tx lists
/// into held and owed.
pub(crate) fn write_group(
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
    let started = std::time::Instant::now();
    storage.put_page(&commitments, &txlists)?;
    metrics::durable_transaction(started.elapsed());
    let mut outcomes = Vec::with_capacity(unresolved.len());
    for page in unresolved {
        let mut present = HashSet::new();
        let mut missing = Vec::new();
        for (hash, number) in page {
            // A look-up in the index: the list's bytes (up to 2 MiB) are neither read nor
            // copied.
            if storage.has_txlist(&hash)? {
                present.insert(hash);
            } else {
                missing.push((hash, number));
            }
        }
        outcomes.push((present, missing));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use tokio::sync::Semaphore;
    use tokio::time::Instant;

    use super::*;
    use crate::storage::MemoryStorage;
    use crate::testkit::FaultyDisk;

    /// A job with no content: a catch-up page (holding one permit) or another write.
    fn job(id: u64, catchup: bool) -> WriteJob {
        let permits = if catchup {
            let room = Arc::new(Semaphore::new(1));
            vec![room
                .try_acquire_owned()
                .expect("a fresh semaphore has room")]
        } else {
            Vec::new()
        };
        WriteJob {
            write: PageWrite {
                id,
                commitments: Vec::new(),
                txlists: Vec::new(),
                unresolved: Vec::new(),
            },
            epoch: 0,
            permits,
            done: None,
        }
    }

    fn ids(group: &[WriteJob]) -> Vec<u64> {
        group.iter().map(|j| j.write.id).collect()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    fn policy(pages: usize, linger: Duration) -> GroupPolicy {
        GroupPolicy { pages, linger }
    }

    /// Sends `jobs` one by one, `gap` apart, keeping the queue open until `hold` after.
    fn send_later(
        jobs: Vec<WriteJob>,
        gap: Duration,
        hold: Duration,
    ) -> mpsc::UnboundedReceiver<WriteJob> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            for job in jobs {
                tokio::time::sleep(gap).await;
                let _ = tx.send(job);
            }
            tokio::time::sleep(hold).await;
        });
        rx
    }

    #[tokio::test(start_paused = true)]
    async fn catchup_pages_wait_for_a_full_group() {
        let policy = policy(3, HOUR);
        let later = vec![job(2, true), job(3, true), job(4, true)];
        let mut queue = send_later(later, Duration::from_millis(10), HOUR * 2);
        let group = gather(job(1, true), &mut queue, policy).await;
        assert_eq!(
            ids(&group),
            vec![1, 2, 3],
            "one transaction for three pages"
        );
        let next = gather(queue.recv().await.unwrap(), &mut queue, policy).await;
        assert_eq!(ids(&next), vec![4], "the linger ran out for the last page");
    }

    #[tokio::test(start_paused = true)]
    async fn the_linger_bounds_the_wait() {
        let policy = policy(8, Duration::from_millis(100));
        let mut queue = send_later(vec![job(2, true)], HOUR, HOUR);
        let started = Instant::now();
        let group = gather(job(1, true), &mut queue, policy).await;
        assert_eq!(ids(&group), vec![1]);
        assert_eq!(
            started.elapsed(),
            policy.linger,
            "written when the linger ended"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_gossip_write_ends_the_wait() {
        let policy = policy(8, HOUR);
        let later = vec![job(2, true), job(3, false), job(4, true)];
        let mut queue = send_later(later, Duration::from_millis(10), HOUR * 2);
        let started = Instant::now();
        let group = gather(job(1, true), &mut queue, policy).await;
        assert_eq!(ids(&group), vec![1, 2, 3]);
        assert!(started.elapsed() < HOUR, "the gossip write did not wait");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gossip_write_never_waits() {
        let policy = policy(8, HOUR);
        let mut queue = send_later(vec![job(2, true)], Duration::from_millis(10), HOUR);
        let started = Instant::now();
        let group = gather(job(1, false), &mut queue, policy).await;
        assert_eq!(ids(&group), vec![1]);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn queued_writes_join_without_waiting() {
        let policy = policy(8, HOUR);
        let (tx, mut queue) = mpsc::unbounded_channel();
        tx.send(job(2, false)).unwrap();
        tx.send(job(3, true)).unwrap();
        let started = Instant::now();
        let group = gather(job(1, true), &mut queue, policy).await;
        assert_eq!(ids(&group), vec![1, 2, 3]);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_queue_ends_the_wait() {
        let policy = policy(8, HOUR);
        let mut queue = send_later(
            vec![job(2, true)],
            Duration::from_millis(10),
            Duration::ZERO,
        );
        let started = Instant::now();
        let group = gather(job(1, true), &mut queue, policy).await;
        assert_eq!(ids(&group), vec![1, 2]);
        assert!(started.elapsed() < HOUR);
    }

    #[tokio::test]
    async fn submit_says_when_the_writer_stopped() {
        let storage: Arc<dyn SdkStorage> = Arc::new(MemoryStorage::default());
        let (internal, _reports) = mpsc::channel(8);
        let policy = policy(1, Duration::ZERO);
        let writer = Writer::spawn(Arc::downgrade(&storage), internal, policy).unwrap();
        drop(storage); // the SDK stopped: the writer ends at its next job
        assert!(writer.submit(job(1, false)), "queued while the task runs");
        let stopped = tokio::time::timeout(Duration::from_secs(10), async {
            while writer.submit(job(2, false)) {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            stopped.is_ok(),
            "submit returns false once the writer ended"
        );
    }

    /// A job storing one tx list `hash` for block 1, in `epoch`, with its outcome wanted.
    fn txlist_job(
        id: u64,
        epoch: u64,
        hash: B256,
    ) -> (
        WriteJob,
        oneshot::Receiver<Result<PageOutcome, StorageError>>,
    ) {
        let (done, outcome) = oneshot::channel();
        let mut job = job(id, false);
        job.epoch = epoch;
        job.write.txlists = vec![(hash, 1, Bytes::from_static(b"txs"))];
        job.done = Some(done);
        (job, outcome)
    }

    async fn next_stored(reports: &mut mpsc::Receiver<Internal>) -> (u64, bool) {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match reports.recv().await {
                    Some(Internal::Stored { id, outcome }) => return (id, outcome.is_ok()),
                    Some(_) => continue,
                    None => panic!("the writer stopped"),
                }
            }
        });
        wait.await.expect("a Stored report within 10 s")
    }

    #[tokio::test]
    async fn a_failed_write_drops_its_epoch_and_later_epochs_are_written() {
        let full = Arc::new(AtomicBool::new(true));
        let mut disk = FaultyDisk::over(Arc::new(MemoryStorage::default()));
        disk.full = full.clone();
        let storage: Arc<dyn SdkStorage> = Arc::new(disk);
        let (internal, mut reports) = mpsc::channel(8);
        let policy = policy(1, Duration::ZERO);
        let writer = Writer::spawn(Arc::downgrade(&storage), internal, policy).unwrap();
        let (a, b, c) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );

        let (job_a, outcome_a) = txlist_job(1, 0, a);
        assert!(writer.submit(job_a));
        assert_eq!(
            next_stored(&mut reports).await,
            (1, false),
            "the failure is reported"
        );
        assert!(outcome_a.await.unwrap().is_err());
        full.store(false, Ordering::SeqCst);

        // Same epoch as the failed write: dropped, even though the disk is back.
        let (job_b, outcome_b) = txlist_job(2, 0, b);
        assert!(writer.submit(job_b));
        let dropped = tokio::time::timeout(Duration::from_secs(10), outcome_b).await;
        assert!(dropped.expect("an outcome within 10 s").unwrap().is_err());
        // The next epoch (the core rebuilt from storage): written and reported.
        let (job_c, outcome_c) = txlist_job(3, 1, c);
        assert!(writer.submit(job_c));
        assert_eq!(next_stored(&mut reports).await, (3, true));
        assert!(outcome_c.await.unwrap().is_ok());
        assert!(storage.txlist(&c).unwrap().is_some(), "epoch 1 stored");
        assert!(
            storage.txlist(&b).unwrap().is_none(),
            "epoch 0 after the failure dropped"
        );
        assert!(storage.txlist(&a).unwrap().is_none());
    }

    /// `wait` on a thread of its own, for at most 10 s.
    fn within_10_s<T: Send + 'static>(wait: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(wait()));
        rx.recv_timeout(Duration::from_secs(10))
            .expect("done within 10 s")
    }

    #[test]
    fn the_writer_needs_no_runtime_of_its_caller() {
        // No tokio runtime on this thread: a writer that ran as a task of its caller's runtime
        // could neither start nor write.
        let storage: Arc<dyn SdkStorage> = Arc::new(MemoryStorage::default());
        let (internal, mut reports) = mpsc::channel(8);
        let writer = Writer::spawn(
            Arc::downgrade(&storage),
            internal,
            policy(1, Duration::ZERO),
        )
        .unwrap();
        let hash = B256::repeat_byte(7);
        let (job, outcome) = txlist_job(1, 0, hash);
        assert!(writer.submit(job));
        assert!(within_10_s(move || outcome.blocking_recv())
            .unwrap()
            .is_ok());
        let report = within_10_s(move || reports.blocking_recv());
        assert!(
            matches!(
                report,
                Some(Internal::Stored {
                    id: 1,
                    outcome: Ok(_)
                })
            ),
            "the manager hears of the write"
        );
        assert!(storage.txlist(&hash).unwrap().is_some(), "stored");
    }

    #[test]
    fn the_group_is_at_most_the_write_queue() {
        let mut config = crate::config::CatchUpConfig {
            write_group_pages: 64,
            ..Default::default()
        };
        assert_eq!(
            GroupPolicy::from_config(&config).pages,
            config.write_queue_pages
        );
        config.write_group_pages = 0;
        assert_eq!(GroupPolicy::from_config(&config).pages, 1);
    }
}
