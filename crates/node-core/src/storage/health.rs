//! [`StorageHealth`]: whether the store the SDK writes takes writes, as `/ready` and `/status`
//! report it.

use std::sync::atomic::{AtomicU64, Ordering};

use p2p::StorageError;
use tracing::{info, warn};

use super::layer::{StorageHooks, Write};

/// Health of the store the SDK writes: the last write failure (a full disk, an I/O error),
/// cleared by the next write that succeeds.
///
/// While writes fail the node keeps running: it keeps serving what it stored (reads still
/// work), keeps answering `get_head`, and accepts nothing new — a commitment is acknowledged
/// only once it is durable, so memory never runs ahead of disk. `/ready` answers 503 naming
/// the storage condition (`/health` stays 200: the process is alive and heals itself) and
/// `/status` names the error. Once writes succeed again, the next commitment above the head
/// starts a catch-up that fetches what was missed, and `/ready` returns to 200.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failure: parking_lot::Mutex<Option<String>>,
    failures: AtomicU64,
}

impl StorageHealth {
    /// The last write error, if the last write failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Write failures since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn record(&self, outcome: Result<(), &StorageError>) {
        let mut failure = self.failure.lock();
        match outcome {
            Ok(()) => {
                if failure.take().is_some() {
                    info!("storage writes succeed again");
                }
            }
            Err(e) => {
                if failure.is_none() {
                    warn!(error = %e, "storage write failed: reporting unhealthy");
                }
                self.failures.fetch_add(1, Ordering::Relaxed);
                *failure = Some(e.to_string());
            }
        }
    }
}

/// Every write's outcome, pruning included, is recorded.
impl StorageHooks for StorageHealth {
    fn after_write(&self, _write: &Write<'_>, outcome: Result<(), &StorageError>) {
        self.record(outcome);
    }
}
