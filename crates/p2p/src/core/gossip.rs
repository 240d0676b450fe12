//! Gossip into the core: a commitment in two stages (the stateless one — dedupe look-up,
//! capped decode, signer recovery — may run on the rayon pool, see `batch`; the one
//! against the chain runs here, in arrival order), and a tx list, forwarded only once a
//! commitment references it.

use std::time::Instant;

use bytes::Bytes;
use libp2p::PeerId;
use preconfirmation_net::{GossipVerdict, MessageId as GossipMessageId};
use preconfirmation_types::{Address, GossipTopicKind, SignedCommitment, TypesError, B256};
use tracing::debug_span;

use super::{verdict, Core, Effect};
use crate::memory::HeldVerdict;
use crate::metrics;
use crate::types::{CommitmentSource, MessageId};
use crate::validation::{
    unix_now, validate_raw_txlist, RejectReason, ValidationOutcome, Validator,
};

impl Core {
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

    /// One gossiped commitment's first stage, on this thread: the dedupe look-up, then
    /// [`stateless_stage`].
    pub(super) fn stage_gossip_commitment(
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
            now,
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
        // One read of each clock serves the held verdict, the arrival and the checks.
        let arrived = Instant::now();
        let held = HeldVerdict {
            message_id,
            peer,
            since: arrived,
        };
        let outcome = self.process_commitment_since(
            signed,
            signer,
            CommitmentSource::Gossip(peer),
            Some(held),
            arrived,
            now,
        );
        self.counters.gossip_received(topic, outcome.label());
        match outcome {
            ValidationOutcome::Pending(_) => None,
            resolved => Some(verdict(&resolved)),
        }
    }

    /// Reports `held`'s verdict (a pending commitment's) as now due.
    pub(super) fn release_pending(&mut self, held: Option<HeldVerdict>, verdict: GossipVerdict) {
        if let Some(h) = held {
            self.pending_verdict_due(h.message_id, h.peer, verdict);
        }
    }

    /// Queues the verdict of a gossiped commitment that waited in the pending buffer, now due,
    /// as an [`Effect::PendingVerdict`].
    pub(super) fn pending_verdict_due(
        &mut self,
        message_id: GossipMessageId,
        peer: PeerId,
        verdict: GossipVerdict,
    ) {
        metrics::pending_verdict_released(verdict);
        self.effects.push(Effect::PendingVerdict {
            message_id,
            peer,
            verdict,
        });
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

    pub(super) fn have_txlist(&mut self, hash: &B256) -> bool {
        let cached = self.state.orphans().contains(hash);
        self.counters.cache("txlist_orphan", cached);
        // By key: reading the list would copy up to `max_txlist_bytes` on this task.
        cached || matches!(self.storage.has_txlist(hash), Ok(true))
    }
}

/// A gossiped commitment after the first stage (the dedupe look-up and [`stateless_stage`]):
/// decoded with its signer recovered, or why it stopped (a duplicate, malformed bytes, a
/// window that already ended).
pub(crate) struct StagedCommitment {
    pub(crate) peer: PeerId,
    pub(crate) message_id: GossipMessageId,
    /// When the first stage ran (unix seconds); the second stage checks against it too.
    now: u64,
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
            now,
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
