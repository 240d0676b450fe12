//! The single-writer core of the SDK ([`Core`]): what it does with each input — gossip,
//! locally published messages, catch-up pages, fetched tx lists — and when what it accepted is
//! durable. Inbound requests are answered from storage by [`crate::serve`], off this writer.
//!
//! [`Core`] is synchronous and owns the chain state ([`crate::memory`]); the manager task is
//! its only caller, so there is exactly one writer. Work that needs the network (fetching a tx
//! list, filling a gap, reporting a held verdict) comes back as [`Effect`]s for the manager to
//! run; what it accepted goes to the durable writer as [`PageWrite`]s ([`Core::take_writes`])
//! and is announced once [`Core::on_stored`] says it is durable.
//!
//! - [`gossip`]: gossiped commitments and tx lists, with [`batch`] for a burst of commitments
//!   whose signers are recovered on the rayon pool;
//! - [`accept`]: validating a commitment and applying it, the pending buffer, tx lists;
//! - [`pages`]: catch-up pages;
//! - [`durable`]: writes in flight, the durable head, a failed write.

mod accept;
mod batch;
mod durable;
mod gossip;
mod pages;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use libp2p::PeerId;
use preconfirmation_net::{GossipVerdict, MessageId as GossipMessageId};
use preconfirmation_types::B256;
use tokio::sync::{broadcast, watch};
use tracing::info;

pub(crate) use self::batch::{GossipBatch, GossipCommitment};
use self::durable::{DurableHead, UnstoredWrite};
use crate::config::P2pSdkConfig;
use crate::error::{P2pSdkError, Result};
use crate::memory::ChainState;
use crate::messages::PageWrite;
use crate::metrics;
use crate::peer_view::{ScheduleAgreement, ScheduleDisagreement};
use crate::storage::{SdkStorage, StorageError};
use crate::types::{CommitmentSource, HeadSyncStatus, MessageId, SdkEvent, SdkStatus};
use crate::validation::{ChainView, PendingReason, ValidationOutcome, Validator};

/// Network work the manager runs on [`Core`]'s behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// An accepted commitment's tx list is missing: fetch it (after a grace period for gossip).
    FetchTxList {
        hash: B256,
        block_number: u64,
        hint: Option<PeerId>,
    },
    /// A commitment arrived above `head + 1`: blocks in between are missing.
    Gap { peer: Option<PeerId> },
    /// Every write up to and including `id` is durable (acknowledge local publishes).
    Durable { id: u64 },
    /// A write failed: every write not yet durable is dropped (the core rebuilt its chain
    /// from storage).
    WriteFailed,
    /// The verdict of a gossiped commitment that waited in the pending buffer is now due
    /// (it validated, failed, or was evicted or held too long). Reported after the verdict of
    /// the message that released it, so a parent is forwarded ahead of its children.
    PendingVerdict {
        message_id: GossipMessageId,
        peer: PeerId,
        verdict: GossipVerdict,
    },
    /// A gossip verdict held back (a tx list waiting for its commitment) is now due.
    Verdict {
        message_id: GossipMessageId,
        peer: PeerId,
        verdict: GossipVerdict,
    },
}

/// The single-writer core of the SDK.
pub(crate) struct Core {
    config: Arc<P2pSdkConfig>,
    /// Shared with the batches that recover signers on the rayon pool.
    validator: Arc<Validator>,
    state: ChainState,
    storage: Arc<dyn SdkStorage>,
    events: broadcast::Sender<SdkEvent>,
    status: watch::Sender<SdkStatus>,
    sync: HeadSyncStatus,
    effects: Vec<Effect>,
    /// Writes applied in memory, oldest first, that the durable writer has not reported yet.
    unstored: std::collections::VecDeque<UnstoredWrite>,
    next_write_id: u64,
    /// Writes made since the manager last collected them ([`Self::take_writes`]).
    outbox: Vec<PageWrite>,
    /// Starts anew each time the chain is rebuilt from storage after a failed write; the
    /// writer drops queued writes of an older epoch.
    epoch: u64,
    /// What storage holds while `unstored` is not empty; the status reports it, so a head
    /// seen by a sidecar or served to a peer is always durable.
    durable_head: Option<DurableHead>,
    /// Per-message counters, their handles kept.
    counters: metrics::MessageCounters,
    /// Whether every peer disagrees with the local schedule ([`crate::peer_view`]).
    agreement: ScheduleAgreement,
}

impl Core {
    /// A core starting from `storage`'s head, or from the configured anchor when it is empty.
    pub(crate) fn new(
        config: Arc<P2pSdkConfig>,
        validator: Validator,
        storage: Arc<dyn SdkStorage>,
        events: broadcast::Sender<SdkEvent>,
        status: watch::Sender<SdkStatus>,
    ) -> Result<Self> {
        let mut state = ChainState::new(&config);
        if let Some(head) = storage.head()? {
            if !state.set_head_from(&head) {
                return Err(P2pSdkError::Storage(StorageError::Corrupt(
                    "stored head block number above u64".into(),
                )));
            }
        }
        // Tx lists owed when the node last stopped are fetched again (SdkStorage::owed_txlists).
        let owed = storage.owed_txlists(config.catchup.owed_txlist_scan_blocks)?;
        if !owed.is_empty() {
            info!(owed = owed.len(), "tx lists owed from before the restart");
        }
        for (hash, number) in owed {
            state.await_txlist(hash, number);
        }
        let agreement = ScheduleAgreement::new(config.schedule_disagreement_min_peers);
        let core = Self {
            config,
            validator: Arc::new(validator),
            state,
            storage,
            events,
            status,
            sync: HeadSyncStatus::Idle,
            effects: Vec::new(),
            unstored: std::collections::VecDeque::new(),
            next_write_id: 0,
            outbox: Vec::new(),
            epoch: 0,
            durable_head: None,
            counters: metrics::MessageCounters::default(),
            agreement,
        };
        core.publish_status();
        Ok(core)
    }

    pub(crate) fn config(&self) -> &P2pSdkConfig {
        &self.config
    }

    /// Whether every peer disagrees with the local schedule, shared with the SDK handle.
    pub(crate) fn schedule_disagreement(
        &self,
    ) -> Arc<parking_lot::Mutex<Option<ScheduleDisagreement>>> {
        self.agreement.handle()
    }

    pub(crate) fn peer_connected(&mut self, peer: PeerId) {
        self.agreement.connected(peer);
    }

    pub(crate) fn peer_disconnected(&mut self, peer: &PeerId) {
        self.agreement.disconnected(peer);
    }

    /// The schedule's verdict on a commitment `source` delivered, for [`ScheduleAgreement`]:
    /// returns `outcome` with its penalty lifted when every peer disagrees with the local
    /// schedule.
    fn weigh_verdict(
        &mut self,
        source: CommitmentSource,
        outcome: ValidationOutcome,
    ) -> ValidationOutcome {
        let peer = match source {
            CommitmentSource::Gossip(p) | CommitmentSource::CatchUp(p) => p,
            CommitmentSource::Local => return outcome,
        };
        match outcome {
            ValidationOutcome::Accept(_) => {
                self.agreement.agreed(peer);
                outcome
            }
            ValidationOutcome::Reject {
                reason,
                penalise: true,
            } => {
                let penalise = self.agreement.disagreed(peer, &reason);
                ValidationOutcome::Reject { reason, penalise }
            }
            other => other,
        }
    }

    pub(crate) fn validator(&self) -> &Validator {
        &self.validator
    }

    pub(crate) fn head(&self) -> u64 {
        self.state.head().block_number
    }

    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        for (message_id, peer, verdict) in self.state.orphans_mut().take_released() {
            metrics::txlist_verdict_released(verdict);
            self.effects.push(Effect::Verdict {
                message_id,
                peer,
                verdict,
            });
        }
        for (message_id, peer, verdict) in self.state.pending_mut().take_released() {
            self.pending_verdict_due(message_id, peer, verdict);
        }
        std::mem::take(&mut self.effects)
    }

    pub(crate) fn emit(&self, event: SdkEvent) {
        // A send error only means nobody is subscribed.
        let _ = self.events.send(event);
    }

    pub(crate) fn set_sync(&mut self, sync: HeadSyncStatus) {
        if self.sync != sync {
            self.sync = sync;
            self.emit(SdkEvent::HeadSync(sync));
            self.publish_status();
        }
    }

    pub(crate) fn status(&self) -> SdkStatus {
        let head = self.durable_head.unwrap_or_else(|| self.memory_head());
        SdkStatus {
            head_block_number: head.block_number,
            head_hash: head.hash,
            head_window_end: head.window_end,
            sync: self.sync,
            pending_parent: self.state.pending().count(PendingReason::ParentUnknown),
            pending_schedule: self.state.pending().count(PendingReason::ScheduleUnknown),
            orphan_txlists: self.state.orphans().len(),
            missing_txlists: self.state.awaited_len(),
        }
    }

    pub(crate) fn publish_status(&self) {
        let status = self.status();
        metrics::pending(status.pending_parent, status.pending_schedule);
        metrics::head(status.head_block_number);
        self.status.send_replace(status);
    }

    /// Whether `id` was seen; records it either way.
    pub(crate) fn see(&mut self, id: MessageId) -> bool {
        let fresh = self.state.see(id);
        self.counters.cache("seen_message", !fresh);
        !fresh
    }

    /// The validator, for work off the manager's thread.
    pub(crate) fn shared_validator(&self) -> Arc<Validator> {
        self.validator.clone()
    }
}

fn verdict(outcome: &ValidationOutcome) -> GossipVerdict {
    match outcome {
        ValidationOutcome::Accept(_) => GossipVerdict::Accept,
        ValidationOutcome::Reject { penalise: true, .. } => GossipVerdict::Reject,
        _ => GossipVerdict::Ignore,
    }
}
