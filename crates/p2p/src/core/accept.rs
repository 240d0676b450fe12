//! A commitment into the core: validate it, then apply it (with the pending children it
//! unlocks) and queue its durable write, buffer it while its parent or schedule is unknown, or
//! report the evidence it carries. Also the tx lists accepted commitments await, and the
//! upkeep of the buffers.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use preconfirmation_net::GossipVerdict;
use preconfirmation_types::{Address, SignedCommitment, TypesError, B256};
use tracing::{debug, debug_span, trace, warn};

use super::{verdict, Core, Effect};
use crate::memory::{HeldVerdict, PendingEntry};
use crate::metrics;
use crate::types::{CommitmentSource, EvidenceKind, SdkEvent};
use crate::validation::{
    unix_now, AcceptedCommitment, EquivocationKind, PendingReason, RejectReason, ValidationOutcome,
};

impl Core {
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
                            kind: EquivocationKind::SameBlockNumber,
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
        self.process_commitment_since(signed, signer, source, held, Instant::now(), unix_now())
    }

    /// [`Self::process_commitment`] of a commitment that first arrived at `arrived` (a
    /// recheck of a pending entry keeps its first arrival, so `max_age` still sweeps it),
    /// validated at `now` (unix seconds: a gossiped commitment's first stage read the clock
    /// moments ago, and one read serves both stages).
    pub(super) fn process_commitment_since(
        &mut self,
        signed: SignedCommitment,
        signer: std::result::Result<Address, TypesError>,
        source: CommitmentSource,
        held: Option<HeldVerdict>,
        arrived: Instant,
        now: u64,
    ) -> ValidationOutcome {
        let number = signed.preconf().block_number;
        // Per message, so debug (see `on_gossip_txlist`).
        let _span = debug_span!("commitment", ?source, block = %number).entered();
        let outcome = self
            .validator
            .validate_commitment(&signed, signer.clone(), &self.state, now);
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

    pub(super) fn on_reject(
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
                    EquivocationKind::SameSlot => EvidenceKind::SameSlot,
                    EquivocationKind::SameBlockNumber => EvidenceKind::SameBlockNumber,
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
    pub(super) fn accept_chain(
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
    pub(super) fn collect_txlists(
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

    pub(super) fn drain_pending(
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
    pub(super) fn announce(
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
                unix_now(),
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
