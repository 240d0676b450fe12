//! What the SDK does with each input: gossip, locally published messages, catch-up batches,
//! fetched tx lists ([`Core`]). Inbound requests are answered from storage by
//! [`crate::serve`], off this single writer.
//!
//! [`Core`] is synchronous and owns the [`ChainState`]; the SDK's manager task is its only
//! caller, so there is exactly one writer. Work that needs the network (fetching a tx list,
//! filling a gap) comes back as [`Effect`]s for the manager to run.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use libp2p::PeerId;
use preconfirmation_net::{GossipVerdict, MessageId as GossipMessageId};
use preconfirmation_types::{Address, GossipTopicKind, SignedCommitment, TypesError, B256, U256};
use tokio::sync::{broadcast, watch};
use tracing::{debug, debug_span, info, trace, warn};

use crate::config::P2pSdkConfig;
use crate::error::{P2pSdkError, Result};
use crate::memory::{ChainState, HeldVerdict, PendingEntry};
use crate::messages::{BatchResult, PageWrite};
use crate::metrics;
use crate::peer_view::ScheduleAgreement;
use crate::storage::SdkStorage;
use crate::types::{
    head_of, CommitmentSource, EvidenceKind, HeadSyncStatus, MessageId, SdkEvent, SdkStatus,
};
use crate::validation::{
    unix_now, validate_raw_txlist, AcceptedCommitment, ChainView, PendingReason, RejectReason,
    ValidationOutcome, Validator,
};

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

/// A write applied in memory that is not durable yet.
#[derive(Debug)]
struct UnstoredWrite {
    id: u64,
    /// When it was queued (`p2p_durable_write_seconds`).
    queued_at: Instant,
    accepted: Vec<(SignedCommitment, AcceptedCommitment, CommitmentSource)>,
    /// Hashes of the tx lists written with it.
    stored_txlists: std::collections::HashSet<B256>,
    /// Awaited tx lists written without their commitment (announced once durable).
    late_txlists: Vec<(B256, u64)>,
    /// The head once this write is durable.
    head_after: DurableHead,
}

/// The head as storage holds it, while catch-up pages are applied in memory but not durable.
#[derive(Debug, Clone, Copy)]
struct DurableHead {
    block_number: u64,
    hash: Option<B256>,
    window_end: U256,
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
                return Err(P2pSdkError::Storage(crate::StorageError::Corrupt(
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
    ) -> Arc<parking_lot::Mutex<Option<crate::peer_view::ScheduleDisagreement>>> {
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

    /// The head of the in-memory chain (ahead of storage while catch-up pages are written).
    fn memory_head(&self) -> DurableHead {
        let head = self.state.head();
        DurableHead {
            block_number: head.block_number,
            hash: head.preconfirmation_hash,
            window_end: self.state.preconf_head().submission_window_end,
        }
    }

    /// Validates a commitment this node wants to publish, without side effects.
    pub(crate) fn check_local(
        &self,
        signed: &SignedCommitment,
        signer: std::result::Result<Address, TypesError>,
    ) -> ValidationOutcome {
        let now = unix_now();
        if let Err(reason) = self.validator.check_window_not_ended(signed, now) {
            return ValidationOutcome::Reject {
                reason,
                penalise: false,
            };
        }
        let outcome = self
            .validator
            .validate_commitment(signed, signer.clone(), &self.state, now);
        match outcome {
            // Below the head, memory knows only what this process accepted; our own disk
            // knows what we signed before a restart. Another commitment by the same signer
            // for a stored block is ours twice: refused as the equivocation it would be.
            ValidationOutcome::Reject {
                reason: RejectReason::Stale { number, head },
                penalise,
            } => match (self.storage.commitment_by_number(number), signer) {
                (Ok(Some(first)), Ok(signer))
                    if &first != signed
                        && first.preconf() != signed.preconf()
                        && self.validator.recover_signer(&first).ok() == Some(signer) =>
                {
                    ValidationOutcome::Reject {
                        reason: RejectReason::Equivocation {
                            kind: crate::validation::EquivocationKind::SameBlockNumber,
                            first: Box::new(first),
                        },
                        penalise: false,
                    }
                }
                _ => ValidationOutcome::Reject {
                    reason: RejectReason::Stale { number, head },
                    penalise,
                },
            },
            other => other,
        }
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
            metrics::pending_verdict_released(verdict);
            self.effects.push(Effect::PendingVerdict {
                message_id,
                peer,
                verdict,
            });
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

    // ---------------------------------------------------------------- gossip

    /// A gossiped `SignedCommitment` from `peer` (§4, §5). `None`: it waits in the pending
    /// buffer (unknown parent or schedule) with its verdict held; the verdict comes later as
    /// an [`Effect::PendingVerdict`] — `Accept` if it validates in time, so an out-of-order
    /// commitment is still forwarded once its parent arrives.
    pub(crate) fn on_gossip_commitment(
        &mut self,
        peer: PeerId,
        message_id: GossipMessageId,
        data: &[u8],
    ) -> Option<GossipVerdict> {
        let staged = self.stage_gossip_commitment(peer, message_id, data, unix_now());
        self.finish_gossip_commitment(staged)
    }

    /// Records a gossiped commitment's message id as seen: `true` if it is new.
    pub(crate) fn see_gossip_commitment(
        &mut self,
        message_id: &GossipMessageId,
        data: &[u8],
    ) -> bool {
        !self.see(MessageId::from_gossip(
            GossipTopicKind::Commitments,
            &message_id.0,
            data,
        ))
    }

    /// The validator, for work off the manager's thread.
    pub(crate) fn shared_validator(&self) -> Arc<Validator> {
        self.validator.clone()
    }

    /// One gossiped commitment's first stage, on this thread: the dedupe look-up, then
    /// [`stateless_stage`].
    fn stage_gossip_commitment(
        &mut self,
        peer: PeerId,
        message_id: GossipMessageId,
        data: &[u8],
        now: u64,
    ) -> StagedCommitment {
        let fresh = self.see_gossip_commitment(&message_id, data);
        StagedCommitment::new(&self.validator, peer, message_id, data, fresh, now)
    }

    /// The second stage of a gossiped commitment, against the chain state, in arrival order:
    /// the verdict for gossipsub, `None` while it is held pending (see
    /// [`Self::on_gossip_commitment`]).
    pub(crate) fn finish_gossip_commitment(
        &mut self,
        staged: StagedCommitment,
    ) -> Option<GossipVerdict> {
        let topic = GossipTopicKind::Commitments;
        let StagedCommitment {
            peer,
            message_id,
            stage,
        } = staged;
        let (signed, signer) = match stage {
            Ok(recovered) => recovered,
            Err(reason) => {
                self.counters.gossip_received(topic, reason.label());
                if matches!(reason, RejectReason::Malformed(_)) {
                    metrics::validation_failure(reason.label());
                    return Some(GossipVerdict::Reject);
                }
                // A duplicate, or a window that already ended: no penalty.
                return Some(GossipVerdict::Ignore);
            }
        };
        let held = HeldVerdict {
            message_id,
            peer,
            since: Instant::now(),
        };
        let outcome =
            self.process_commitment(signed, signer, CommitmentSource::Gossip(peer), Some(held));
        self.counters.gossip_received(topic, outcome.label());
        match outcome {
            ValidationOutcome::Pending(_) => None,
            resolved => Some(verdict(&resolved)),
        }
    }

    /// Reports `held`'s verdict (a pending commitment's) as now due.
    fn release_pending(&mut self, held: Option<HeldVerdict>, verdict: GossipVerdict) {
        if let Some(h) = held {
            metrics::pending_verdict_released(verdict);
            self.effects.push(Effect::PendingVerdict {
                message_id: h.message_id,
                peer: h.peer,
                verdict,
            });
        }
    }

    /// A gossiped `RawTxListGossip` from `peer` (§3.4). A tx list is forwarded only once a
    /// commitment references it: `Accept` when an accepted or pending commitment does;
    /// otherwise it goes to the holding area with its verdict held (`None`), released later as
    /// `Accept` when its commitment arrives or `Ignore` when it waited too long or was evicted.
    pub(crate) fn on_gossip_txlist(
        &mut self,
        peer: PeerId,
        message_id: GossipMessageId,
        data: &[u8],
    ) -> Option<GossipVerdict> {
        let topic = GossipTopicKind::RawTxLists;
        let msg = match validate_raw_txlist(data, &self.config.chain.limits) {
            Ok(msg) => msg,
            Err(reason) => {
                self.counters.gossip_received(topic, reason.label());
                metrics::validation_failure(reason.label());
                return Some(if reason.penalises_sender() {
                    GossipVerdict::Reject
                } else {
                    GossipVerdict::Ignore
                });
            }
        };
        let hash = msg.raw_tx_list_hash;
        // Per message, so debug: at a node's default `info` filter an info span formats its
        // fields for every message (a peer id in base58), a sizeable share of the SDK's work.
        let _span = debug_span!("txlist", %peer, %hash).entered();
        if self.have_txlist(&hash) {
            self.counters
                .gossip_received(topic, RejectReason::Duplicate.label());
            return Some(GossipVerdict::Ignore);
        }
        let txlist = Bytes::from(Vec::<u8>::from(msg.txlist));
        if self.state.is_awaited(&hash) {
            self.add_txlist(hash, txlist);
            self.counters.gossip_received(topic, "accept");
            return Some(GossipVerdict::Accept);
        }
        if self.state.pending().references_txlist(&hash) {
            // Its commitment waits for a parent or the schedule: forward now, keep the bytes.
            self.state
                .orphans_mut()
                .insert(hash, txlist, Some(peer), None);
            self.counters.gossip_received(topic, "accept");
            return Some(GossipVerdict::Accept);
        }
        let held = HeldVerdict {
            message_id,
            peer,
            since: Instant::now(),
        };
        self.state
            .orphans_mut()
            .insert(hash, txlist, Some(peer), Some(held));
        self.counters.gossip_received(topic, "held");
        None
    }

    fn have_txlist(&mut self, hash: &B256) -> bool {
        let cached = self.state.orphans().contains(hash);
        self.counters.cache("txlist_orphan", cached);
        // By key: reading the list would copy up to `max_txlist_bytes` on this task.
        cached || matches!(self.storage.has_txlist(hash), Ok(true))
    }

    /// Takes a verified tx list: if an accepted commitment awaits it, it goes to the durable
    /// writer (announced as [`SdkEvent::RawTxList`] once stored); else into the holding area
    /// (local publishes and fetches, counted against no peer; stored with their commitment).
    pub(crate) fn add_txlist(&mut self, hash: B256, txlist: Bytes) {
        match self.state.take_awaiting(&hash) {
            Some(number) => {
                let before = self.memory_head();
                let write = self.make_write(
                    Vec::new(),
                    vec![(hash, number, txlist)],
                    Vec::new(),
                    vec![(hash, number)],
                    before,
                );
                self.outbox.push(write);
            }
            None => self.state.orphans_mut().insert(hash, txlist, None, None),
        }
        self.publish_status();
    }

    /// Tx lists a background task fetched, verified and stored durably (off the manager task):
    /// `(hash, block number)`, each referenced by a stored commitment. No longer owed;
    /// announced to the sidecar.
    pub(crate) fn on_txlists_stored(&mut self, txlists: Vec<(B256, u64)>) {
        for (hash, number) in txlists {
            self.state.take_awaiting(&hash);
            self.emit(SdkEvent::RawTxList {
                hash,
                block_number: number,
            });
        }
        self.publish_status();
    }

    /// Whether tx list `hash` is still wanted by an accepted commitment.
    pub(crate) fn is_awaited(&self, hash: &B256) -> bool {
        self.state.is_awaited(hash)
    }

    /// Missing tx lists (hash, block number).
    pub(crate) fn awaited(&self) -> Vec<(B256, u64)> {
        self.state.awaited()
    }

    // ---------------------------------------------------------------- commitments

    /// Validates `signed` and acts on the outcome: apply and queue the write on accept
    /// (draining pending children), buffer on pending (with `held`, its gossip verdict, if
    /// any: released as `Ignore` if it cannot be buffered), report evidence on equivocation.
    /// `held` is used only when the outcome is pending: otherwise the caller reports it.
    pub(crate) fn process_commitment(
        &mut self,
        signed: SignedCommitment,
        signer: std::result::Result<Address, TypesError>,
        source: CommitmentSource,
        held: Option<HeldVerdict>,
    ) -> ValidationOutcome {
        self.process_commitment_since(signed, signer, source, held, Instant::now())
    }

    /// [`Self::process_commitment`] of a commitment that first arrived at `arrived` (a
    /// recheck of a pending entry keeps its first arrival, so `max_age` still sweeps it).
    fn process_commitment_since(
        &mut self,
        signed: SignedCommitment,
        signer: std::result::Result<Address, TypesError>,
        source: CommitmentSource,
        held: Option<HeldVerdict>,
        arrived: Instant,
    ) -> ValidationOutcome {
        let number = signed.preconf().block_number;
        // Per message, so debug (see `on_gossip_txlist`).
        let _span = debug_span!("commitment", ?source, block = %number).entered();
        let outcome =
            self.validator
                .validate_commitment(&signed, signer.clone(), &self.state, unix_now());
        let outcome = self.weigh_verdict(source, outcome);
        trace!(outcome = outcome.label(), "validated");
        match &outcome {
            ValidationOutcome::Accept(accepted) => {
                self.accept_chain(vec![(signed, *accepted, source)]);
            }
            ValidationOutcome::Reject { reason, .. } => {
                self.on_reject(&signed, signer.ok(), reason);
            }
            ValidationOutcome::Pending(reason) => {
                if *reason == PendingReason::ParentUnknown {
                    // Its signer is the schedule's: a held tx list it references may be
                    // forwarded now. Not so while the schedule is unknown: any key can sign
                    // such a commitment, so its list waits until the commitment is accepted.
                    self.state
                        .orphans_mut()
                        .claim(&signed.preconf().raw_tx_list_hash);
                }
                if let (Ok(signer), Ok(number)) = (signer, u64::try_from(number)) {
                    let peer = match source {
                        CommitmentSource::Gossip(p) | CommitmentSource::CatchUp(p) => Some(p),
                        CommitmentSource::Local => None,
                    };
                    let mut entry = PendingEntry::new(signed, signer, number, peer, *reason)
                        .arrived_at(arrived);
                    entry.held = held;
                    let evicted = self.state.pending_mut().insert(entry);
                    metrics::pending_evicted(evicted);
                    if *reason == PendingReason::ParentUnknown {
                        self.effects.push(Effect::Gap { peer });
                    }
                    self.publish_status();
                } else {
                    self.release_pending(held, GossipVerdict::Ignore);
                }
            }
        }
        outcome
    }

    fn on_reject(
        &mut self,
        second: &SignedCommitment,
        signer: Option<Address>,
        reason: &RejectReason,
    ) {
        metrics::validation_failure(reason.label());
        debug!(reason = %reason, "commitment rejected");
        let (kind, first) = match reason {
            RejectReason::Equivocation { kind, first } => (
                match kind {
                    crate::validation::EquivocationKind::SameSlot => EvidenceKind::SameSlot,
                    crate::validation::EquivocationKind::SameBlockNumber => {
                        EvidenceKind::SameBlockNumber
                    }
                },
                first,
            ),
            RejectReason::CommitAfterEop { eop } => (EvidenceKind::CommitAfterEop, eop),
            _ => return,
        };
        let Some(signer) = signer else { return };
        metrics::equivocation(kind.label());
        warn!(
            kind = kind.label(),
            %signer,
            block = %second.preconf().block_number,
            "slashing evidence"
        );
        self.emit(SdkEvent::Equivocation {
            kind,
            signer,
            first: first.clone(),
            second: Box::new(second.clone()),
        });
    }

    /// Applies accepted commitments (and any pending children they unlock) to the state and
    /// queues them for the durable writer with the tx lists the holding area has for them;
    /// they are announced once the write is durable ([`Self::on_stored`]).
    fn accept_chain(
        &mut self,
        mut accepted: Vec<(SignedCommitment, AcceptedCommitment, CommitmentSource)>,
    ) {
        let before = self.memory_head();
        for (c, a, _) in &accepted {
            self.state.apply(c, a);
        }
        self.drain_pending(&mut accepted);
        let mut txlists = Vec::new();
        let mut unresolved = Vec::new();
        self.collect_txlists(
            &accepted,
            &mut HashMap::new(),
            &mut txlists,
            &mut unresolved,
        );
        let write = self.make_write(accepted, txlists, unresolved, Vec::new(), before);
        self.outbox.push(write);
    }

    /// Sorts the tx lists `accepted` references into those at hand (`fetched`, else the
    /// holding area — which releases a held gossip verdict as `Accept`) and the unresolved
    /// ones, which are awaited from now on: one that arrives before the write is durable goes
    /// straight to the writer.
    fn collect_txlists(
        &mut self,
        accepted: &[(SignedCommitment, AcceptedCommitment, CommitmentSource)],
        fetched: &mut HashMap<B256, Bytes>,
        txlists: &mut Vec<(B256, u64, Bytes)>,
        unresolved: &mut Vec<(B256, u64)>,
    ) {
        for (c, a, _) in accepted {
            let hash = c.preconf().raw_tx_list_hash;
            if hash == B256::ZERO {
                continue;
            }
            match fetched
                .remove(&hash)
                .or_else(|| self.state.orphans_mut().take(&hash))
            {
                Some(bytes) => {
                    self.counters.cache("txlist_orphan", true);
                    txlists.push((hash, a.block_number, bytes));
                }
                None => {
                    self.state.await_txlist(hash, a.block_number);
                    unresolved.push((hash, a.block_number));
                }
            }
        }
    }

    /// Records a write applied in memory (`before`: the head before it): the writer gets it
    /// through the outbox ([`Self::take_writes`]), catch-up pages go to the writer directly.
    fn make_write(
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
    fn announce_head(&mut self) {
        let head = self.status();
        if let Some(hash) = head.head_hash {
            self.emit(SdkEvent::HeadChanged {
                head: head_of(&head),
                hash,
            });
        }
        self.publish_status();
    }

    fn drain_pending(
        &mut self,
        accepted: &mut Vec<(SignedCommitment, AcceptedCommitment, CommitmentSource)>,
    ) {
        loop {
            let next = self.head() + 1;
            let entries = self.state.pending_mut().take_number(next);
            if entries.is_empty() {
                return;
            }
            let mut progressed = false;
            for entry in entries {
                let outcome = self.validator.validate_commitment(
                    &entry.commitment,
                    Ok(entry.signer),
                    &self.state,
                    unix_now(),
                );
                let source = entry
                    .source
                    .map(CommitmentSource::Gossip)
                    .unwrap_or(CommitmentSource::Local);
                match self.weigh_verdict(source, outcome) {
                    ValidationOutcome::Accept(a) => {
                        self.state.apply(&entry.commitment, &a);
                        self.release_pending(entry.held, GossipVerdict::Accept);
                        accepted.push((entry.commitment, a, source));
                        progressed = true;
                    }
                    ValidationOutcome::Reject { reason, penalise } => {
                        self.on_reject(&entry.commitment, Some(entry.signer), &reason);
                        let verdict = if penalise {
                            GossipVerdict::Reject
                        } else {
                            GossipVerdict::Ignore
                        };
                        self.release_pending(entry.held, verdict);
                    }
                    ValidationOutcome::Pending(reason) => {
                        let mut entry = entry;
                        entry.reason = reason;
                        self.state.pending_mut().insert(entry);
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Tells the sidecar about a durable commitment. A missing tx list is awaited since the
    /// commitment was accepted; it is fetched (after a grace period for gossip) unless
    /// catch-up fetches it.
    fn announce(
        &mut self,
        commitment: SignedCommitment,
        accepted: AcceptedCommitment,
        source: CommitmentSource,
        available: bool,
    ) {
        let hash = commitment.preconf().raw_tx_list_hash;
        let number = accepted.block_number;
        if !available
            && self.state.is_awaited(&hash)
            && !matches!(source, CommitmentSource::CatchUp(_))
        {
            let hint = match source {
                CommitmentSource::Gossip(p) | CommitmentSource::CatchUp(p) => Some(p),
                CommitmentSource::Local => None,
            };
            self.effects.push(Effect::FetchTxList {
                hash,
                block_number: number,
                hint,
            });
        }
        self.emit(SdkEvent::Commitment {
            commitment,
            signer: accepted.signer,
            source,
            txlist_available: available,
        });
    }

    fn reload_from_storage(&mut self) {
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

    /// Validates a catch-up page from `peer` (commitments in ascending order with their
    /// recovered signers; `fetched`: verified tx lists by hash) and applies it to the
    /// in-memory chain, stopping at the first invalid one. Nothing is written here: the
    /// returned [`PageWrite`] goes to the catch-up write stage, and the page is announced once
    /// [`Self::on_stored`] reports it durable. So the manager never waits for a disk
    /// while catch-up runs.
    pub(crate) fn on_catchup_page(
        &mut self,
        peer: PeerId,
        items: Vec<(SignedCommitment, std::result::Result<Address, TypesError>)>,
        mut fetched: HashMap<B256, Bytes>,
    ) -> (BatchResult, Option<PageWrite>) {
        let mut result = BatchResult::default();
        let mut accepted = Vec::new();
        let before = self.memory_head();
        let source = CommitmentSource::CatchUp(peer);
        let mut items = items.into_iter();
        while let Some((signed, signer)) = items.next() {
            let outcome = self.validator.validate_commitment(
                &signed,
                signer.clone(),
                &self.state,
                unix_now(),
            );
            match outcome {
                ValidationOutcome::Accept(a) => {
                    if accepted.is_empty() {
                        // One vote per page: the peer served history the schedule accepts.
                        self.agreement.agreed(peer);
                    }
                    self.state.apply(&signed, &a);
                    accepted.push((signed, a, source));
                }
                // Already have it (e.g. also arrived on gossip): fine, keep going.
                ValidationOutcome::Reject {
                    reason: RejectReason::Duplicate | RejectReason::Stale { .. },
                    ..
                } => {}
                ValidationOutcome::Reject { reason, .. } => {
                    self.on_reject(&signed, signer.ok(), &reason);
                    result.schedule_disagreement = !self.agreement.disagreed(peer, &reason);
                    result.failure = Some(reason);
                    break;
                }
                ValidationOutcome::Pending(PendingReason::ParentUnknown) => {
                    result.gap = true;
                    break;
                }
                ValidationOutcome::Pending(PendingReason::ScheduleUnknown) => {
                    // §4.2: what the schedule cannot judge yet waits, unscored. The rest of
                    // the page lies further on and waits with it (the buffer's caps and the
                    // peer's quota bound it), with the tx lists fetched for it, so the page
                    // is applied without a second download once the schedule is known.
                    for (signed, signer) in std::iter::once((signed, signer)).chain(items) {
                        let (Ok(signer), Ok(number)) =
                            (signer, u64::try_from(signed.preconf().block_number))
                        else {
                            break;
                        };
                        let hash = signed.preconf().raw_tx_list_hash;
                        if let Some(txlist) = fetched.remove(&hash) {
                            self.state.orphans_mut().insert(hash, txlist, None, None);
                        }
                        let evicted = self.state.pending_mut().insert(PendingEntry::new(
                            signed,
                            signer,
                            number,
                            Some(peer),
                            PendingReason::ScheduleUnknown,
                        ));
                        metrics::pending_evicted(evicted);
                    }
                    result.schedule_unknown = true;
                    break;
                }
            }
        }
        if accepted.is_empty() {
            return (result, None);
        }
        self.drain_pending(&mut accepted);
        result.applied = accepted.len();
        metrics::catchup_commitments(accepted.len());
        let mut txlists = Vec::new();
        let mut unresolved = Vec::new();
        self.collect_txlists(&accepted, &mut fetched, &mut txlists, &mut unresolved);
        let write = self.make_write(accepted, txlists, unresolved, Vec::new(), before);
        (result, Some(write))
    }

    /// The durable writer stored write `id` (`Ok`: the hashes of its unresolved tx lists that
    /// storage already held) or failed. On success the write is announced and its head
    /// becomes the durable one; on failure every write not yet durable is dropped and the
    /// chain is rebuilt from storage (catch-up fetches what is missing again).
    pub(crate) fn on_stored(
        &mut self,
        id: u64,
        outcome: std::result::Result<std::collections::HashSet<B256>, crate::StorageError>,
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

    /// Re-validates every commitment waiting for its schedule (call after the lookahead
    /// learned more).
    pub(crate) fn retry_schedule_pending(&mut self) {
        let entries = self
            .state
            .pending_mut()
            .take_reason(PendingReason::ScheduleUnknown);
        let mut accepted = false;
        for entry in entries {
            let source = entry
                .source
                .map(CommitmentSource::Gossip)
                .unwrap_or(CommitmentSource::Local);
            let held = entry.held.clone();
            let arrived = entry.arrived();
            let outcome = self.process_commitment_since(
                entry.commitment,
                Ok(entry.signer),
                source,
                entry.held,
                arrived,
            );
            accepted |= matches!(outcome, ValidationOutcome::Accept(_));
            if !matches!(outcome, ValidationOutcome::Pending(_)) {
                self.release_pending(held, verdict(&outcome));
            }
        }
        if accepted {
            // A catch-up that stopped where the schedule was unknown resumes from here.
            self.effects.push(Effect::Gap { peer: None });
        }
    }

    /// Periodic upkeep: sweep the pending buffer.
    pub(crate) fn tick(&mut self) {
        let now = Instant::now();
        let expired = self
            .state
            .orphans_mut()
            .expire(now, self.config.orphan_txlists.hold_verdict_for);
        if expired > 0 {
            debug!(expired, "held tx-list verdicts expired (ignored)");
        }
        let expired = self
            .state
            .pending_mut()
            .expire_held(now, self.config.pending.hold_verdict_for);
        if expired > 0 {
            debug!(
                expired,
                "held pending-commitment verdicts expired (ignored)"
            );
        }
        let head = self.head();
        let swept = self.state.pending_mut().sweep(head, now);
        if swept > 0 {
            debug!(swept, "pending commitments swept");
        }
        self.publish_status();
    }
}

fn verdict(outcome: &ValidationOutcome) -> GossipVerdict {
    match outcome {
        ValidationOutcome::Accept(_) => GossipVerdict::Accept,
        ValidationOutcome::Reject { penalise: true, .. } => GossipVerdict::Reject,
        _ => GossipVerdict::Ignore,
    }
}

/// A gossiped commitment after the first stage (the dedupe look-up and [`stateless_stage`]):
/// decoded with its signer recovered, or why it stopped (a duplicate, malformed bytes, a
/// window that already ended).
pub(crate) struct StagedCommitment {
    pub(crate) peer: PeerId,
    pub(crate) message_id: GossipMessageId,
    stage: std::result::Result<
        (SignedCommitment, std::result::Result<Address, TypesError>),
        RejectReason,
    >,
}

impl StagedCommitment {
    /// `data`'s first stage; a message already seen (`fresh` false) is not decoded.
    pub(crate) fn new(
        validator: &Validator,
        peer: PeerId,
        message_id: GossipMessageId,
        data: &[u8],
        fresh: bool,
        now: u64,
    ) -> Self {
        let stage = if fresh {
            stateless_stage(validator, data, now)
        } else {
            Err(RejectReason::Duplicate)
        };
        Self {
            peer,
            message_id,
            stage,
        }
    }
}

/// The work on a gossiped commitment that needs no chain state: capped decode, the lower time
/// bound (checked before the costly recovery), signer recovery.
fn stateless_stage(
    validator: &Validator,
    data: &[u8],
    now: u64,
) -> std::result::Result<(SignedCommitment, std::result::Result<Address, TypesError>), RejectReason>
{
    let signed = validator.decode_commitment(data)?;
    validator.check_window_not_ended(&signed, now)?;
    let signer = validator.recover_signer(&signed);
    Ok((signed, signer))
}

#[cfg(test)]
mod tests {
    use preconfirmation_types::{Address, ChainSpec, WireMessage};

    use super::*;
    use crate::storage::MemoryStorage;
    use crate::testkit::ChainBuilder;

    struct Harness {
        core: Core,
        builder: ChainBuilder,
        events: broadcast::Receiver<SdkEvent>,
        storage: Arc<MemoryStorage>,
    }

    fn harness() -> Harness {
        harness_with(|_| {})
    }

    fn harness_with(configure: impl FnOnce(&mut P2pSdkConfig)) -> Harness {
        harness_knowing(configure, |builder| builder.lookahead())
    }

    /// A harness whose core validates with the schedule `lookahead` makes of the builder's.
    fn harness_knowing(
        configure: impl FnOnce(&mut P2pSdkConfig),
        lookahead: impl FnOnce(&ChainBuilder) -> Arc<dyn crate::Lookahead>,
    ) -> Harness {
        let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
        let builder = ChainBuilder::in_the_past(chain, 2, 4, 200);
        let mut config = P2pSdkConfig::new(chain);
        config.rules.window_end_grace = crate::testkit::REPLAY_WINDOW_END_GRACE;
        configure(&mut config);
        let config = Arc::new(config);
        let validator = Validator::new(chain, config.rules.clone(), lookahead(&builder), 64);
        let storage = Arc::new(MemoryStorage::default());
        let (events_tx, events) = broadcast::channel(1024);
        let (status, _) = watch::channel(SdkStatus {
            head_block_number: 0,
            head_hash: None,
            head_window_end: U256::ZERO,
            sync: HeadSyncStatus::Idle,
            pending_parent: 0,
            pending_schedule: 0,
            orphan_txlists: 0,
            missing_txlists: 0,
        });
        let core = Core::new(config, validator, storage.clone(), events_tx, status).unwrap();
        Harness {
            core,
            builder,
            events,
            storage,
        }
    }

    fn peer() -> PeerId {
        PeerId::random()
    }

    /// Does what the durable writer does, at once: writes everything the core queued and
    /// reports each write stored.
    fn flush_writes(h: &mut Harness) {
        crate::writer::write_queued_now(&mut h.core, h.storage.as_ref())
            .expect("memory storage writes");
    }

    /// A batch as the manager takes it: ids as gossipsub computes them, staged by
    /// [`crate::gossip_batch::GossipBatch`] (signers of full chunks recovered on the pool),
    /// finished in order. Each message gets the verdict it would get alone, in arrival order:
    /// an out-of-order child waits for its parent inside the batch, a duplicate in the batch
    /// and malformed bytes are caught, and the later chunks see the earlier chunks' heads.
    #[test]
    fn a_batch_keeps_arrival_order_and_each_message_s_verdict() {
        let mut h = harness();
        let blocks: Vec<Vec<u8>> = (0..40)
            .map(|i| h.builder.next_block(Some(vec![i; 8])).commitment.to_ssz())
            .collect();
        let mut batch: Vec<Vec<u8>> = vec![blocks[1].clone(), blocks[0].clone()];
        batch.push(blocks[0].clone()); // the same message again
        batch.push(vec![0xde, 0xad]); // malformed
        batch.extend(blocks[2..].iter().cloned());
        let p = peer();
        let messages = batch
            .iter()
            .map(|b| (p, preconfirmation_net::message_id(b), b.clone()))
            .collect();
        let mut staged = crate::gossip_batch::GossipBatch::start(&mut h.core, messages);
        let mut verdicts = Vec::new();
        let mut released = Vec::new();
        while let Some(commitment) = futures::executor::block_on(staged.next()) {
            verdicts.push(h.core.finish_gossip_commitment(commitment));
            released.extend(h.core.take_effects().into_iter().filter_map(|e| match e {
                Effect::PendingVerdict { verdict, .. } => Some(verdict),
                _ => None,
            }));
        }
        assert!(
            staged.parallel_chunks() >= 2,
            "the full chunks were recovered on the pool"
        );
        let mut expected = vec![
            None,                        // block 2: parent unknown, held
            Some(GossipVerdict::Accept), // block 1
            Some(GossipVerdict::Ignore), // block 1 again
            Some(GossipVerdict::Reject), // malformed
        ];
        expected.extend(std::iter::repeat_n(Some(GossipVerdict::Accept), 38));
        assert_eq!(verdicts, expected);
        assert_eq!(released, vec![GossipVerdict::Accept], "block 2 forwarded");
        assert_eq!(h.core.head(), 40);
    }

    /// Spans opened while a tx list and then its commitment are gossiped to a fresh core, under
    /// a subscriber that lets `level` through.
    fn spans_per_gossip_message(level: tracing::Level) -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tracing_subscriber::layer::SubscriberExt;

        struct CountSpans(Arc<AtomicUsize>);
        impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountSpans {
            fn on_new_span(
                &self,
                _: &tracing::span::Attributes<'_>,
                _: &tracing::span::Id,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }

        let mut h = harness();
        let block = h.builder.next_block(Some(vec![0xab; 64]));
        let txlist = block.txlist.expect("a block with a tx list");
        let opened = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::filter::LevelFilter::from_level(level))
            .with(CountSpans(opened.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let txlist_verdict = h
                .core
                .on_gossip_txlist(peer(), gossip_id(1), &txlist.to_ssz());
            assert_eq!(txlist_verdict, None, "held until its commitment comes");
            let verdict =
                h.core
                    .on_gossip_commitment(peer(), gossip_id(2), &block.commitment.to_ssz());
            assert_eq!(verdict, Some(GossipVerdict::Accept));
        });
        opened.load(Ordering::SeqCst)
    }

    /// Set in the child process that [`per_message_spans_cost_nothing_at_a_nodes_default_level`]
    /// starts for itself.
    const SPANS_CHILD_ENV: &str = "P2P_SPANS_TEST_CHILD";

    #[test]
    fn per_message_spans_cost_nothing_at_a_nodes_default_level() {
        // tracing caches each callsite's interest process-wide, from whichever subscribers
        // were alive when it was first hit, so other tests' subscribers in this process would
        // decide what this one sees. It counts in a process of its own: this test binary,
        // started again with only this test.
        if std::env::var_os(SPANS_CHILD_ENV).is_none() {
            let exe = std::env::current_exe().expect("the test binary's path");
            let output = std::process::Command::new(exe)
                .args([
                    "handlers::tests::per_message_spans_cost_nothing_at_a_nodes_default_level",
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(SPANS_CHILD_ENV, "1")
                .output()
                .expect("the test binary starts");
            let stdout = String::from_utf8_lossy(&output.stdout);
            assert!(
                output.status.success() && stdout.contains("1 passed"),
                "the span count in its own process failed:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return;
        }
        assert_eq!(
            spans_per_gossip_message(tracing::Level::INFO),
            0,
            "at `info` (a node's default) no span is opened per gossip message"
        );
        assert!(
            spans_per_gossip_message(tracing::Level::DEBUG) >= 2,
            "at `debug` each message has its span (peer, block, hash)"
        );
    }

    #[test]
    fn same_gossip_twice_is_ignored_the_second_time() {
        let mut h = harness();
        let block = h.builder.next_block(None);
        let bytes = block.commitment.to_ssz();
        let p = peer();
        assert_eq!(
            h.core.on_gossip_commitment(p, gossip_id(100), &bytes),
            Some(GossipVerdict::Accept)
        );
        assert_eq!(
            h.core.on_gossip_commitment(p, gossip_id(101), &bytes),
            Some(GossipVerdict::Ignore)
        );
        assert_eq!(h.core.head(), 1);
    }

    #[test]
    fn gossip_for_a_window_that_ended_is_ignored_and_local_publish_refused() {
        // Default grace (12 s); the harness chain's first windows ended ~200 s ago.
        let mut h = harness_with(|c| c.rules = crate::config::BlockRules::default());
        let block = h.builder.next_block(None);
        let bytes = block.commitment.to_ssz();
        assert_eq!(
            h.core.on_gossip_commitment(peer(), gossip_id(100), &bytes),
            Some(GossipVerdict::Ignore),
            "not forwarded, and Ignore: not penalised"
        );
        assert_eq!(h.core.head(), 0, "not accepted");
        assert!(h.core.state.pending().is_empty(), "not buffered either");
        let signer = h.core.validator().recover_signer(&block.commitment);
        assert!(matches!(
            h.core.check_local(&block.commitment, signer),
            ValidationOutcome::Reject {
                reason: RejectReason::WindowEnded { .. },
                penalise: false
            }
        ));
    }

    #[test]
    fn own_published_message_coming_back_is_ignored() {
        let mut h = harness();
        let block = h.builder.next_block(None);
        let bytes = block.commitment.to_ssz();
        // What the manager does when publishing.
        h.core
            .see(MessageId::new(GossipTopicKind::Commitments, &bytes));
        assert_eq!(
            h.core.on_gossip_commitment(peer(), gossip_id(100), &bytes),
            Some(GossipVerdict::Ignore)
        );
        assert_eq!(h.core.head(), 0, "not processed again");
    }

    #[test]
    fn children_before_parent_are_buffered_then_drained_in_order() {
        let mut h = harness();
        let blocks = h.builder.blocks(5, 32);
        let p = peer();
        // Tx lists first (as §6 publishes them): held, no commitment references them yet.
        for (i, b) in blocks.iter().enumerate() {
            let t = b.txlist.as_ref().unwrap();
            assert_eq!(h.core.on_gossip_txlist(p, gossip_id(i), &t.to_ssz()), None);
        }
        assert!(verdict_effects(&mut h).is_empty());
        // Then blocks 5, 4, 3, 2 before 1.
        for (i, b) in blocks.iter().enumerate().skip(1).rev() {
            let verdict =
                h.core
                    .on_gossip_commitment(p, gossip_id(100 + i), &b.commitment.to_ssz());
            assert_eq!(verdict, None, "pending: verdict held");
        }
        assert_eq!(h.core.status().pending_parent, 4);
        // Pending commitments reference lists 2..5: those are forwarded now.
        let mut effects = h.core.take_effects();
        let released: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Verdict {
                    message_id,
                    verdict,
                    ..
                } => Some((message_id.clone(), *verdict)),
                _ => None,
            })
            .collect();
        assert_eq!(
            released,
            (1..5)
                .rev()
                .map(|i| (gossip_id(i), GossipVerdict::Accept))
                .collect::<Vec<_>>()
        );
        effects.retain(|e| !matches!(e, Effect::Verdict { .. }));
        assert!(effects.iter().all(|e| matches!(e, Effect::Gap { .. })));
        assert_eq!(
            h.core
                .on_gossip_commitment(p, gossip_id(100), &blocks[0].commitment.to_ssz()),
            Some(GossipVerdict::Accept)
        );
        // The children validated with it: their held verdicts are released as Accept, in
        // block order, so they are forwarded after their parent.
        let children: Vec<_> = h
            .core
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::PendingVerdict {
                    message_id,
                    verdict,
                    ..
                } => Some((message_id, verdict)),
                Effect::Verdict { message_id, .. } => {
                    assert_eq!(message_id, gossip_id(0), "block 1's tx list");
                    None
                }
                _ => None,
            })
            .collect();
        assert_eq!(
            children,
            (2..=5)
                .map(|i| (gossip_id(100 + i - 1), GossipVerdict::Accept))
                .collect::<Vec<_>>()
        );
        assert_eq!(h.core.head(), 5);
        assert_eq!(h.core.status().pending_parent, 0);
        assert_eq!(h.storage.stats().unwrap().txlists, 0, "not durable yet");
        flush_writes(&mut h);
        assert_eq!(
            h.storage.stats().unwrap().txlists,
            5,
            "orphans moved to storage"
        );
        assert_eq!(
            commitment_events(&mut h),
            (1..=5).map(|n| (n, true)).collect::<Vec<_>>()
        );
    }

    type RecoveredPage = Vec<(SignedCommitment, std::result::Result<Address, TypesError>)>;
    type TxListsByHash = std::collections::HashMap<B256, Bytes>;

    /// A catch-up page with recovered signers, and the tx lists fetched for it by hash.
    fn catchup_page(
        h: &Harness,
        blocks: &[crate::testkit::Block],
    ) -> (RecoveredPage, TxListsByHash) {
        let items = blocks
            .iter()
            .map(|b| {
                let signer = h.core.validator().recover_signer(&b.commitment);
                (b.commitment.clone(), signer)
            })
            .collect();
        let txlists = blocks
            .iter()
            .filter_map(|b| b.txlist.as_ref())
            .map(|t| (t.raw_tx_list_hash, Bytes::from(t.txlist.to_vec())))
            .collect();
        (items, txlists)
    }

    fn commitment_events(h: &mut Harness) -> Vec<(u64, bool)> {
        let mut seen = Vec::new();
        while let Ok(event) = h.events.try_recv() {
            if let SdkEvent::Commitment {
                commitment,
                txlist_available,
                ..
            } = event
            {
                let n = u64::try_from(commitment.preconf().block_number).unwrap();
                seen.push((n, txlist_available));
            }
        }
        seen
    }

    #[test]
    fn catchup_page_is_announced_only_once_durable() {
        let mut h = harness();
        let blocks = h.builder.blocks(4, 32);
        let (items, mut fetched) = catchup_page(&h, &blocks[..3]);
        // Block 2's tx list was not fetched: it stays owed.
        let owed = blocks[1].txlist.as_ref().unwrap().raw_tx_list_hash;
        fetched.remove(&owed);
        let (result, write) = h.core.on_catchup_page(peer(), items, fetched);
        let write = write.expect("a page to write");
        assert_eq!((result.applied, result.gap), (3, false));
        assert_eq!(write.commitments.len(), 3);
        assert_eq!(
            write.txlists.len(),
            2,
            "fetched tx lists go in the same write"
        );
        assert_eq!(write.unresolved, vec![(owed, 2)]);
        // Applied in memory, not written, not announced; the status shows the durable head.
        assert_eq!(h.core.head(), 3);
        assert_eq!(h.core.status().head_block_number, 0);
        assert_eq!(h.storage.stats().unwrap().commitments, 0);
        assert!(commitment_events(&mut h).is_empty());
        // Gossip extending the in-memory head is accepted (the verdict does not wait) but its
        // write waits for the page below it.
        assert_eq!(
            h.core
                .on_gossip_commitment(peer(), gossip_id(100), &blocks[3].commitment.to_ssz()),
            Some(GossipVerdict::Accept)
        );
        assert_eq!(h.storage.stats().unwrap().commitments, 0);
        assert!(commitment_events(&mut h).is_empty());
        // The write stage stores the page, then reports it.
        h.storage
            .put_page(&write.commitments, &write.txlists)
            .unwrap();
        let gossip_write = h.core.take_writes();
        assert_eq!(gossip_write.len(), 1);
        assert!(gossip_write[0].id > write.id, "queued behind the page");
        h.core
            .on_stored(write.id, Ok(std::collections::HashSet::new()));
        assert_eq!(
            commitment_events(&mut h),
            vec![(1, true), (2, false), (3, true)]
        );
        assert_eq!(h.core.status().head_block_number, 3, "durable head");
        // Then the writer stores block 4.
        h.storage
            .put_page(&gossip_write[0].commitments, &gossip_write[0].txlists)
            .unwrap();
        h.core
            .on_stored(gossip_write[0].id, Ok(std::collections::HashSet::new()));
        assert_eq!(commitment_events(&mut h), vec![(4, false)]);
        assert_eq!(h.storage.stats().unwrap().commitments, 4);
        let status = h.core.status();
        assert_eq!(status.head_block_number, 4);
        assert_eq!(
            status.missing_txlists, 2,
            "blocks 2 and 4 owe their tx lists"
        );
    }

    #[test]
    fn failed_catchup_write_falls_back_to_storage() {
        let mut h = harness();
        let blocks = h.builder.blocks(6, 32);
        let (first, txlists) = catchup_page(&h, &blocks[..3]);
        let (_, write) = h.core.on_catchup_page(peer(), first, txlists);
        let first = write.expect("page");
        h.storage
            .put_page(&first.commitments, &first.txlists)
            .unwrap();
        h.core
            .on_stored(first.id, Ok(std::collections::HashSet::new()));
        assert_eq!(h.core.status().head_block_number, 3);
        commitment_events(&mut h);
        // The next page is validated, but its write fails.
        let (second, txlists) = catchup_page(&h, &blocks[3..]);
        let (_, write) = h.core.on_catchup_page(peer(), second, txlists);
        let second = write.expect("page");
        assert_eq!(h.core.head(), 6);
        h.core.on_stored(
            second.id,
            Err(crate::StorageError::Backend("disk full".into())),
        );
        assert_eq!(h.core.head(), 3, "memory rebuilt from storage");
        assert_eq!(h.core.status().head_block_number, 3);
        assert!(commitment_events(&mut h).is_empty(), "nothing announced");
        // A stale report for a page the core no longer holds changes nothing durable.
        h.core
            .on_stored(second.id, Ok(std::collections::HashSet::new()));
        assert_eq!(h.core.head(), 3);
        assert!(commitment_events(&mut h).is_empty());
    }

    /// Finding: a failed write rebuilt the chain from storage and forgot every owed tx list
    /// until a restart. Lists owed to stored blocks stay owed; those of dropped blocks go.
    #[test]
    fn owed_txlists_survive_a_failed_write() {
        let mut h = harness();
        let blocks = h.builder.blocks(6, 32);
        // Blocks 1-3 stored without their tx lists: owed.
        let (first, _) = catchup_page(&h, &blocks[..3]);
        let (_, write) = h.core.on_catchup_page(peer(), first, HashMap::new());
        let first = write.expect("page");
        h.storage.put_page(&first.commitments, &[]).unwrap();
        h.core
            .on_stored(first.id, Ok(std::collections::HashSet::new()));
        let owed_before: std::collections::BTreeSet<_> = h.core.awaited().into_iter().collect();
        assert_eq!(owed_before.len(), 3);
        // Blocks 4-6, also without lists, fail to write.
        let (second, _) = catchup_page(&h, &blocks[3..]);
        let (_, write) = h.core.on_catchup_page(peer(), second, HashMap::new());
        let second = write.expect("page");
        assert_eq!(h.core.awaited().len(), 6);
        h.core.on_stored(
            second.id,
            Err(crate::StorageError::Backend("disk full".into())),
        );
        let owed_after: std::collections::BTreeSet<_> = h.core.awaited().into_iter().collect();
        assert_eq!(
            owed_after, owed_before,
            "still owed: blocks 1-3's lists, not 4-6's"
        );
        // One arrives: stored and announced, as before the failure.
        let t = blocks[0].txlist.as_ref().unwrap();
        h.core
            .add_txlist(t.raw_tx_list_hash, Bytes::from(t.txlist.to_vec()));
        flush_writes(&mut h);
        assert!(h.storage.txlist(&t.raw_tx_list_hash).unwrap().is_some());
        assert_eq!(h.core.awaited().len(), 2);
    }

    #[test]
    fn missing_txlist_is_awaited_then_stored_when_it_arrives() {
        let mut h = harness();
        let block = h.builder.blocks(1, 64).remove(0);
        let p = peer();
        h.core
            .on_gossip_commitment(p, gossip_id(100), &block.commitment.to_ssz());
        let hash = block.commitment.preconf().raw_tx_list_hash;
        assert!(h.core.is_awaited(&hash));
        flush_writes(&mut h);
        assert!(h.core.take_effects().contains(&Effect::FetchTxList {
            hash,
            block_number: 1,
            hint: Some(p)
        }));
        let t = block.txlist.unwrap();
        assert_eq!(
            h.core.on_gossip_txlist(p, gossip_id(0), &t.to_ssz()),
            Some(GossipVerdict::Accept),
            "awaited: forwarded at once"
        );
        assert!(!h.core.is_awaited(&hash));
        assert!(
            h.storage.txlist(&hash).unwrap().is_none(),
            "not durable yet"
        );
        flush_writes(&mut h);
        assert!(h.storage.txlist(&hash).unwrap().is_some());
        assert!(
            std::iter::from_fn(|| h.events.try_recv().ok()).any(|e| matches!(
                e,
                SdkEvent::RawTxList { hash: announced, block_number: 1 } if announced == hash
            )),
            "announced once durable"
        );
    }

    #[test]
    fn wrong_txlist_hash_is_rejected_with_penalty() {
        let mut h = harness();
        let mut t = preconfirmation_types::RawTxListGossip::new(b"abc".to_vec()).unwrap();
        t.raw_tx_list_hash = B256::repeat_byte(1);
        assert_eq!(
            h.core.on_gossip_txlist(peer(), gossip_id(0), &t.to_ssz()),
            Some(GossipVerdict::Reject)
        );
    }

    fn gossip_id(i: usize) -> GossipMessageId {
        GossipMessageId::new(&i.to_be_bytes())
    }

    /// The held verdicts released so far, (message id, verdict).
    fn verdict_effects(h: &mut Harness) -> Vec<(GossipMessageId, GossipVerdict)> {
        h.core
            .take_effects()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Verdict {
                    message_id,
                    verdict,
                    ..
                } => Some((message_id, verdict)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn unreferenced_txlist_is_held_then_ignored_never_announced() {
        let mut h = harness_with(|c| c.orphan_txlists.hold_verdict_for = std::time::Duration::ZERO);
        let junk = preconfirmation_types::RawTxListGossip::new(vec![7u8; 1000]).unwrap();
        let p = peer();
        assert_eq!(
            h.core.on_gossip_txlist(p, gossip_id(1), &junk.to_ssz()),
            None,
            "held: neither forwarded nor dropped yet"
        );
        assert!(verdict_effects(&mut h).is_empty());
        assert_eq!(h.core.status().orphan_txlists, 1);
        // The same bytes again (another message id): a duplicate.
        assert_eq!(
            h.core.on_gossip_txlist(p, gossip_id(2), &junk.to_ssz()),
            Some(GossipVerdict::Ignore)
        );
        h.core.tick();
        assert_eq!(
            verdict_effects(&mut h),
            vec![(gossip_id(1), GossipVerdict::Ignore)],
            "no commitment came: ignored, without penalty"
        );
        h.core.tick();
        assert!(verdict_effects(&mut h).is_empty(), "released once");
        assert!(
            !std::iter::from_fn(|| h.events.try_recv().ok())
                .any(|e| matches!(e, SdkEvent::RawTxList { .. })),
            "an unreferenced tx list is never announced to the sidecar"
        );
        assert_eq!(h.storage.stats().unwrap().txlists, 0);
    }

    #[test]
    fn held_txlist_is_forwarded_when_its_commitment_is_accepted() {
        let mut h = harness();
        let block = h.builder.blocks(1, 64).remove(0);
        let t = block.txlist.as_ref().unwrap();
        let p = peer();
        assert_eq!(h.core.on_gossip_txlist(p, gossip_id(3), &t.to_ssz()), None);
        assert_eq!(
            h.core
                .on_gossip_commitment(p, gossip_id(100), &block.commitment.to_ssz()),
            Some(GossipVerdict::Accept)
        );
        assert_eq!(
            verdict_effects(&mut h),
            vec![(gossip_id(3), GossipVerdict::Accept)]
        );
        flush_writes(&mut h);
        assert!(h.storage.txlist(&t.raw_tx_list_hash).unwrap().is_some());
        assert!(
            std::iter::from_fn(|| h.events.try_recv().ok()).any(|e| matches!(
                e,
                SdkEvent::RawTxList { hash, block_number: 1 } if hash == t.raw_tx_list_hash
            )),
            "announced once stored with its commitment"
        );
        h.core.tick();
        assert!(verdict_effects(&mut h).is_empty(), "not expired later");
    }

    /// Finding: a commitment for a window beyond the known schedule waits as pending (any key
    /// may have signed it), yet the tx list it references was released as `Accept` and so
    /// forwarded. A tx list is forwarded only on an *accepted* commitment's word (or one
    /// waiting for its parent: its signer was checked), whichever comes first.
    #[test]
    fn a_commitment_waiting_for_its_schedule_does_not_release_its_txlist() {
        let mut h = harness_knowing(|_| {}, |b| b.lookahead_known_to(3));
        let mut beyond = ChainBuilder::in_the_past(*h.builder.chain(), 2, 4, 200);
        for _ in 0..8 {
            beyond.skip_slot();
        }
        // Block 1 in slot 8, beyond the horizon, signed by a key nobody elected.
        let txlist = b"junk riding on a far-future commitment".to_vec();
        let unsigned = beyond.next_unsigned(Some(&txlist));
        let stranger = crate::testkit::preconfer_key(99);
        let commitment = beyond.sign_with(&stranger, unsigned);
        let gossip = preconfirmation_types::RawTxListGossip::new(txlist.clone()).unwrap();
        let p = peer();
        // List first (held), then the commitment: it waits for the schedule.
        assert_eq!(
            h.core.on_gossip_txlist(p, gossip_id(1), &gossip.to_ssz()),
            None
        );
        assert_eq!(
            h.core
                .on_gossip_commitment(p, gossip_id(2), &commitment.to_ssz()),
            None,
            "held while its schedule is unknown"
        );
        assert_eq!(h.core.status().pending_schedule, 1);
        assert!(
            verdict_effects(&mut h).is_empty(),
            "the held tx list is not released"
        );
        // Commitment first, then the list: held too, not accepted.
        let txlist2 = b"more junk".to_vec();
        let commitment2 = beyond.sign_with(&stranger, beyond.next_unsigned(Some(&txlist2)));
        let gossip2 = preconfirmation_types::RawTxListGossip::new(txlist2).unwrap();
        assert_eq!(
            h.core
                .on_gossip_commitment(p, gossip_id(3), &commitment2.to_ssz()),
            None
        );
        assert_eq!(
            h.core.on_gossip_txlist(p, gossip_id(4), &gossip2.to_ssz()),
            None,
            "held, not forwarded"
        );
        assert!(verdict_effects(&mut h).is_empty(), "still held");
        // Once held too long, the lists are ignored, never accepted.
        let hold = h.core.config().orphan_txlists.hold_verdict_for;
        h.core
            .state
            .orphans_mut()
            .expire(Instant::now() + hold, hold);
        let released = verdict_effects(&mut h);
        assert_eq!(released.len(), 2, "{released:?}");
        for id in [gossip_id(1), gossip_id(4)] {
            assert!(
                released.contains(&(id, GossipVerdict::Ignore)),
                "{released:?}"
            );
        }
    }

    /// Finding: the 1 s recheck of schedule-unknown entries put each back with a fresh
    /// timestamp, so none ever reached `max_age`. An entry's age counts from its first
    /// arrival: rechecked after it arrived, it is still swept `max_age` after arrival.
    #[test]
    fn an_entry_rechecked_past_max_age_is_swept() {
        let mut h = harness_knowing(|_| {}, |b| b.lookahead_known_to(3));
        let mut beyond = ChainBuilder::in_the_past(*h.builder.chain(), 2, 4, 200);
        for _ in 0..8 {
            beyond.skip_slot();
        }
        let commitment = beyond.next_block(None).commitment;
        let arrived = Instant::now();
        assert_eq!(
            h.core
                .on_gossip_commitment(peer(), gossip_id(1), &commitment.to_ssz()),
            None
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        h.core.retry_schedule_pending();
        assert_eq!(h.core.status().pending_schedule, 1, "still waiting");
        // 50 ms past max_age from its arrival, 50 ms short of it from the recheck.
        let max_age = h.core.config().pending.max_age;
        let head = h.core.head();
        let swept = h.core.state.pending_mut().sweep(
            head,
            arrived + max_age + std::time::Duration::from_millis(50),
        );
        assert_eq!(swept, 1);
        assert_eq!(h.core.status().pending_schedule, 0);
    }

    #[test]
    fn unknown_parent_flood_stays_under_the_pending_caps() {
        let mut h = harness();
        let mut builder = ChainBuilder::in_the_past(*h.builder.chain(), 2, 4, 200);
        // Valid, signed commitments far ahead of the head (parent unknown), many more than the
        // cap; each distinct.
        builder.skip_slot();
        let _ = builder.blocks(2, 8);
        let caps = P2pSdkConfig::default().pending;
        let base = builder.next_unsigned(Some(b"x"));
        let key = *builder.key_for_slot(builder.next_slot()).unwrap();
        for i in 0..(caps.max_count as u64 + 500) {
            let mut c = base.clone();
            c.preconf.proposal_id = U256::from(i);
            c.preconf.block_number = U256::from(3 + i % 60);
            let signed = builder.sign_with(&key, c);
            h.core
                .on_gossip_commitment(peer(), gossip_id(i as usize), &signed.to_ssz());
            let status = h.core.status();
            assert!(status.pending_parent <= caps.max_count);
        }
        assert_eq!(h.core.status().pending_parent, caps.max_count);
    }

    /// Issue 34: with a wrong local schedule every peer's commitments fail the signer check.
    /// Once every connected peer that delivered one disagrees (here the only one), the core
    /// stops penalising them for it: gossip gets `Ignore` instead of `Reject`, a catch-up page
    /// is marked as the schedule's disagreement. A peer among others that agree is penalised.
    #[test]
    fn every_peer_disagreeing_with_the_schedule_is_not_penalised() {
        // The local schedule names three keys that sign nothing of the builder's chain.
        let wrong = |b: &ChainBuilder| -> Arc<dyn crate::Lookahead> {
            let others = (100..103)
                .map(|i| {
                    preconfirmation_types::secret_key_to_address(&crate::testkit::preconfer_key(i))
                })
                .collect();
            let l = b.lookahead();
            Arc::new(
                crate::RotatingLookahead::new(
                    others,
                    l.slots_per_window(),
                    l.genesis(),
                    l.slot_duration(),
                )
                .expect("schedule"),
            )
        };
        let mut h = harness_knowing(|_| {}, wrong);
        let blocks = h.builder.blocks(3, 8);
        let (only, liar, honest) = (peer(), peer(), peer());
        h.core.peer_connected(only);
        let verdict =
            h.core
                .on_gossip_commitment(only, gossip_id(1), &blocks[0].commitment.to_ssz());
        assert_eq!(
            verdict,
            Some(GossipVerdict::Ignore),
            "the lone peer is not penalised"
        );
        assert!(h.core.schedule_disagreement().lock().is_some());
        let items = blocks[1..]
            .iter()
            .map(|b| {
                (
                    b.commitment.clone(),
                    h.core.validator().recover_signer(&b.commitment),
                )
            })
            .collect();
        let (result, write) = h.core.on_catchup_page(only, items, HashMap::new());
        assert!(write.is_none());
        assert!(matches!(
            result.failure,
            Some(RejectReason::WrongSigner { .. })
        ));
        assert!(
            result.schedule_disagreement,
            "the page's failure is not the peer's"
        );

        // With the correct schedule, a peer that agreed outvotes one that does not.
        let mut h = harness();
        let good = h.builder.next_block(Some(vec![0; 8])).commitment;
        // The next block, signed by a key the schedule does not elect.
        let bad = h.builder.sign_with(
            &crate::testkit::preconfer_key(100),
            h.builder.next_unsigned(Some(&[1; 8])),
        );
        h.core.peer_connected(liar);
        h.core.peer_connected(honest);
        assert_eq!(
            h.core
                .on_gossip_commitment(honest, gossip_id(2), &good.to_ssz()),
            Some(GossipVerdict::Accept)
        );
        assert_eq!(
            h.core
                .on_gossip_commitment(liar, gossip_id(3), &bad.to_ssz()),
            Some(GossipVerdict::Reject)
        );
        assert!(h.core.schedule_disagreement().lock().is_none());
    }

    /// The core of a node restarted over `h`'s storage: it knows the stored head, and none of
    /// the commitments below it in memory.
    fn restarted(h: &Harness) -> Core {
        let config = Arc::new(h.core.config().clone());
        let validator = Validator::new(
            *h.builder.chain(),
            config.rules.clone(),
            h.builder.lookahead(),
            64,
        );
        let (events, _) = broadcast::channel(16);
        let (status, _) = watch::channel(h.core.status());
        Core::new(config, validator, h.storage.clone(), events, status).unwrap()
    }

    /// Finding 4 (the publish side): after a restart memory no longer holds the blocks below
    /// the head, but the disk does. A commitment this node's key signs for a stored block with
    /// other content is the equivocation it would be, refused without penalty; the stored one
    /// again, or anything another key signed for that block, is just stale.
    #[test]
    fn a_local_commitment_for_a_stored_block_signed_again_is_an_equivocation() {
        let mut h = harness();
        let blocks = h.builder.blocks(3, 16);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(
                h.core
                    .on_gossip_commitment(peer(), gossip_id(i), &b.commitment.to_ssz()),
                Some(GossipVerdict::Accept)
            );
        }
        flush_writes(&mut h);
        assert_eq!(h.storage.stats().unwrap().commitments, 3);
        let core = restarted(&h);
        assert_eq!(core.head(), 3);

        let stored = &blocks[1].commitment;
        let ours = core.validator().recover_signer(stored).unwrap();
        let our_key = *h
            .builder
            .keys()
            .iter()
            .find(|k| preconfirmation_types::secret_key_to_address(k) == ours)
            .expect("block 2's key");
        let other_key = *h
            .builder
            .keys()
            .iter()
            .find(|k| preconfirmation_types::secret_key_to_address(k) != ours)
            .expect("a second key");
        let mut changed = stored.commitment.clone();
        changed.preconf.gas_limit = U256::from(29_000_000u64);
        let check = |signed: &SignedCommitment| {
            core.check_local(signed, core.validator().recover_signer(signed))
        };

        let twice = h.builder.sign_with(&our_key, changed.clone());
        match check(&twice) {
            ValidationOutcome::Reject {
                reason:
                    RejectReason::Equivocation {
                        kind: crate::validation::EquivocationKind::SameBlockNumber,
                        first,
                    },
                penalise: false,
            } => assert_eq!(*first, *stored, "the stored commitment is the first"),
            other => panic!("our key signing block 2 again: {other:?}"),
        }
        let stale = |outcome: ValidationOutcome| {
            matches!(
                outcome,
                ValidationOutcome::Reject {
                    reason: RejectReason::Stale { number: 2, head: 3 },
                    ..
                }
            )
        };
        assert!(stale(check(stored)), "the stored commitment itself");
        let same_content = h.builder.sign_with(&other_key, stored.commitment.clone());
        assert!(
            stale(check(&same_content)),
            "block 2's content, another key"
        );
        let other_content = h.builder.sign_with(&other_key, changed);
        assert!(stale(check(&other_content)), "other content, another key");
    }

    /// Commitments waiting for their schedule are validated again when the schedule learns
    /// more: accepted, their held verdicts released as `Accept`, and catch-up told to resume
    /// (`Gap` without a peer). Until then a recheck changes nothing.
    #[test]
    fn schedule_pending_commitments_are_accepted_once_the_schedule_is_known() {
        let mut partial = None;
        let mut h = harness_knowing(
            |_| {},
            |b| {
                let lookahead = b.lookahead_known_to(3);
                partial = Some(lookahead.clone());
                lookahead
            },
        );
        let partial = partial.expect("the harness's lookahead");
        // Blocks 1-6 in slots 0-5: the schedule is known for slots 0-3 only.
        let blocks = h.builder.blocks(6, 16);
        let p = peer();
        for (i, b) in blocks.iter().enumerate() {
            let verdict = h
                .core
                .on_gossip_commitment(p, gossip_id(i), &b.commitment.to_ssz());
            let expected = (i < 4).then_some(GossipVerdict::Accept);
            assert_eq!(verdict, expected, "block {}", i + 1);
        }
        assert_eq!((h.core.head(), h.core.status().pending_schedule), (4, 2));
        h.core.take_effects();

        h.core.retry_schedule_pending();
        assert_eq!((h.core.head(), h.core.status().pending_schedule), (4, 2));
        assert!(
            h.core
                .take_effects()
                .iter()
                .all(|e| !matches!(e, Effect::Gap { .. } | Effect::PendingVerdict { .. })),
            "nothing learned, nothing changes"
        );

        partial.extend_horizon(7);
        h.core.retry_schedule_pending();
        assert_eq!((h.core.head(), h.core.status().pending_schedule), (6, 0));
        let effects = h.core.take_effects();
        let released: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::PendingVerdict {
                    message_id,
                    verdict,
                    ..
                } => Some((message_id.clone(), *verdict)),
                _ => None,
            })
            .collect();
        assert_eq!(
            released,
            vec![
                (gossip_id(4), GossipVerdict::Accept),
                (gossip_id(5), GossipVerdict::Accept)
            ]
        );
        assert!(
            effects.contains(&Effect::Gap { peer: None }),
            "catch-up resumes: {effects:?}"
        );
    }
}
