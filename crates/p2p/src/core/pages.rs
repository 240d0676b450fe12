//! A catch-up page into the core: validated in order against the in-memory chain and applied
//! there; its write goes to the durable writer through the catch-up write stage.

use std::collections::HashMap;

use bytes::Bytes;
use libp2p::PeerId;
use preconfirmation_types::{Address, SignedCommitment, TypesError, B256};

use super::Core;
use crate::memory::PendingEntry;
use crate::messages::{BatchResult, PageWrite};
use crate::metrics;
use crate::types::CommitmentSource;
use crate::validation::{unix_now, PendingReason, RejectReason, ValidationOutcome};

impl Core {
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
}
