//! Writes in flight: what the core applied in memory and handed the durable writer, the head
//! storage holds meanwhile (the one the status reports), and what a stored or failed write
//! changes.

use std::collections::HashSet;
use std::time::Instant;

use bytes::Bytes;
use preconfirmation_types::{SignedCommitment, B256, U256};
use tracing::warn;

use super::{Core, Effect};
use crate::memory::ChainState;
use crate::messages::PageWrite;
use crate::metrics;
use crate::storage::StorageError;
use crate::types::{head_of, CommitmentSource, SdkEvent};
use crate::validation::{AcceptedCommitment, ChainView};

/// A write applied in memory that is not durable yet.
#[derive(Debug)]
pub(super) struct UnstoredWrite {
    id: u64,
    /// When it was queued (`p2p_durable_write_seconds`).
    queued_at: Instant,
    accepted: Vec<(SignedCommitment, AcceptedCommitment, CommitmentSource)>,
    /// Hashes of the tx lists written with it.
    stored_txlists: HashSet<B256>,
    /// Awaited tx lists written without their commitment (announced once durable).
    late_txlists: Vec<(B256, u64)>,
    /// The head once this write is durable.
    head_after: DurableHead,
}

/// The head as storage holds it, while catch-up pages are applied in memory but not durable.
#[derive(Debug, Clone, Copy)]
pub(super) struct DurableHead {
    pub(super) block_number: u64,
    pub(super) hash: Option<B256>,
    pub(super) window_end: U256,
}

impl Core {
    /// The head of the in-memory chain (ahead of storage while catch-up pages are written).
    pub(super) fn memory_head(&self) -> DurableHead {
        let head = self.state.head();
        DurableHead {
            block_number: head.block_number,
            hash: head.preconfirmation_hash,
            window_end: self.state.preconf_head().submission_window_end,
        }
    }

    /// Records a write applied in memory (`before`: the head before it): the writer gets it
    /// through the outbox ([`Self::take_writes`]), catch-up pages go to the writer directly.
    pub(super) fn make_write(
        &mut self,
        accepted: Vec<(SignedCommitment, AcceptedCommitment, CommitmentSource)>,
        txlists: Vec<(B256, u64, Bytes)>,
        unresolved: Vec<(B256, u64)>,
        late_txlists: Vec<(B256, u64)>,
        before: DurableHead,
    ) -> PageWrite {
        if self.unstored.is_empty() {
            self.durable_head = Some(before);
        }
        let id = self.next_write_id;
        self.next_write_id = self.next_write_id.wrapping_add(1);
        let write = PageWrite {
            id,
            commitments: accepted.iter().map(|(c, _, _)| c.clone()).collect(),
            txlists,
            unresolved,
        };
        self.unstored.push_back(UnstoredWrite {
            id,
            queued_at: Instant::now(),
            accepted,
            stored_txlists: write.txlists.iter().map(|(h, _, _)| *h).collect(),
            late_txlists,
            head_after: self.memory_head(),
        });
        write
    }

    /// Writes made since the last call, in order, for the durable writer (with the core's
    /// current [`Self::epoch`]).
    pub(crate) fn take_writes(&mut self) -> Vec<PageWrite> {
        std::mem::take(&mut self.outbox)
    }

    /// The current write epoch (see [`crate::writer`]).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id of the last write made, if any is not durable yet.
    pub(crate) fn last_unstored_write(&self) -> Option<u64> {
        self.unstored.back().map(|w| w.id)
    }

    /// Emits the head change and publishes the status.
    pub(super) fn announce_head(&mut self) {
        let head = self.status();
        if let Some(hash) = head.head_hash {
            self.emit(SdkEvent::HeadChanged {
                head: head_of(&head),
                hash,
            });
        }
        self.publish_status();
    }

    pub(super) fn reload_from_storage(&mut self) {
        self.unstored.clear();
        self.outbox.clear();
        self.epoch = self.epoch.wrapping_add(1);
        self.durable_head = None;
        let mut state = ChainState::new(&self.config);
        if let Ok(Some(head)) = self.storage.head() {
            state.set_head_from(&head);
        }
        // Tx lists still owed to stored blocks stay owed (fetched and stored when they come);
        // those of blocks the failed writes dropped go with them.
        let stored_head = state.preconf_head().block_number;
        for (hash, number) in self.state.awaited() {
            if U256::from(number) <= stored_head {
                state.await_txlist(hash, number);
            }
        }
        self.state = state;
    }

    /// The durable writer stored write `id` (`Ok`: the hashes of its unresolved tx lists that
    /// storage already held) or failed. On success the write is announced and its head
    /// becomes the durable one; on failure every write not yet durable is dropped and the
    /// chain is rebuilt from storage (catch-up fetches what is missing again).
    pub(crate) fn on_stored(
        &mut self,
        id: u64,
        outcome: std::result::Result<HashSet<B256>, StorageError>,
    ) {
        let write = match (self.unstored.front(), &outcome) {
            (Some(front), Ok(_)) if front.id == id => self.unstored.pop_front(),
            // A report for a write dropped by an earlier failure.
            (None, Ok(_)) => return,
            (Some(front), Ok(_)) if id < front.id => return,
            _ => None,
        };
        let (Some(write), Ok(present)) = (write, outcome.as_ref()) else {
            match &outcome {
                Err(e) => warn!(error = %e, "a durable write failed"),
                Ok(_) => warn!(id, "a write was reported out of order"),
            }
            self.reload_from_storage();
            self.effects.push(Effect::WriteFailed);
            self.publish_status();
            return;
        };
        metrics::durable_write(write.queued_at.elapsed());
        for (commitment, accepted, source) in write.accepted {
            let hash = commitment.preconf().raw_tx_list_hash;
            if present.contains(&hash) {
                // Storage had it already: no longer owed.
                self.state.take_awaiting(&hash);
            }
            let stored_with_it = write.stored_txlists.contains(&hash);
            if stored_with_it && !matches!(source, CommitmentSource::CatchUp(_)) {
                self.emit(SdkEvent::RawTxList {
                    hash,
                    block_number: accepted.block_number,
                });
            }
            let available = hash == B256::ZERO || stored_with_it || present.contains(&hash);
            self.announce(commitment, accepted, source, available);
        }
        for (hash, block_number) in write.late_txlists {
            self.emit(SdkEvent::RawTxList { hash, block_number });
        }
        self.durable_head = if self.unstored.is_empty() {
            None
        } else {
            Some(write.head_after)
        };
        self.effects.push(Effect::Durable { id });
        self.announce_head();
    }

    /// What the durable writer does, at once on this thread: writes everything queued in one
    /// transaction and reports each write stored (for the gossip path of benches and tools,
    /// and unit tests). Returns the commitments written.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn write_queued_now(&mut self) -> Result<usize, StorageError> {
        let writes = self.take_writes();
        let ids: Vec<u64> = writes.iter().map(|w| w.id).collect();
        let commitments = writes.iter().map(|w| w.commitments.len()).sum();
        let outcomes = crate::writer::write_group(self.storage.as_ref(), writes)?;
        for (id, (present, _owed)) in ids.into_iter().zip(outcomes) {
            self.on_stored(id, Ok(present));
        }
        Ok(commitments)
    }
}
