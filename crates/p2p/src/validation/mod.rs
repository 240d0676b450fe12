//! Validation of commitments and tx lists (§4–§5, §3.4) — the only place that decides validity.
//!
//! [`Validator::validate_commitment`] returns a [`ValidationOutcome`]:
//!
//! - `Accept` — extends the local head; store it, forward it, reward the sender.
//! - `Reject { reason, penalise }` — drop it; when `penalise`, gossipsub counts an invalid
//!   delivery and the sender's application score drops (§7.1). Duplicates, stale blocks and
//!   equivocations are rejects *without* penalty: the forwarding peer did nothing wrong.
//! - `Pending(ParentUnknown | ScheduleUnknown)` — cannot be decided yet; buffer it and score
//!   nothing (§4.2 last paragraph).
//!
//! Every [`RejectReason`] has a stable [`RejectReason::label`] used as a metric label.
//!
//! ## Order of checks
//! Cheap field checks first (block number range, slasher, gas limit, timestamp), then the
//! signature (recovered by the caller so catch-up can do it in parallel), then duplicates and
//! equivocation against what this node already holds, then the schedule (signer and window
//! end, with EOP hand-off, §5), and last the parent link (§4.2 item 4). Checking the schedule
//! before the parent means a wrongly-signed commitment is rejected at once instead of sitting
//! in the unknown-parent buffer.
//!
//! ## EOP (§5)
//! Once the owner of a window has sent an EOP, the rest of that window belongs to the next
//! committer per schedule: its commitments in those slots carry *its own* window end. Any later
//! commitment by the owner for the handed-off window is [`RejectReason::CommitAfterEop`].

mod outcome;
mod txlist;

use preconfirmation_types::{
    Address, ChainSpec, SignedCommitment, TypesError, WireMessage, B256, U256,
};

pub use self::outcome::{
    AcceptedCommitment, EquivocationKind, PendingReason, RejectReason, ValidationOutcome,
};
pub(crate) use self::txlist::check_txlist;
pub use self::txlist::validate_raw_txlist;
use crate::config::BlockRules;
pub use crate::lookahead::unix_now;
use crate::lookahead::Lookahead;

/// The local head as validation sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalHead {
    /// Head block number (the anchor when nothing is stored).
    pub block_number: u64,
    /// `preconfirmation_hash` of the head, `None` when the anchor's hash is unknown.
    pub preconfirmation_hash: Option<B256>,
    /// Timestamp of the head, if known.
    pub timestamp: Option<u64>,
}

/// What validation needs to know about the local chain (implemented by the SDK's chain state;
/// doubles in tests).
pub trait ChainView {
    /// The local head.
    fn head(&self) -> LocalHead;
    /// The accepted commitment at `block_number` and its signer, if still remembered.
    fn accepted_at(&self, block_number: u64) -> Option<(SignedCommitment, Address)>;
    /// The accepted commitment of `signer` for `slot`, if remembered.
    fn accepted_in_slot(&self, slot: u64, signer: Address) -> Option<SignedCommitment>;
    /// The EOP that handed off the window ending at `window_end`, if any.
    fn eop_for_window(&self, window_end: U256) -> Option<SignedCommitment>;
}

/// Validates against a chain, its rules and a schedule.
pub struct Validator {
    chain: ChainSpec,
    rules: BlockRules,
    lookahead: std::sync::Arc<dyn Lookahead>,
    max_blocks_ahead: u64,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("chain", &self.chain)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Validator {
    /// A validator for `chain` under `rules` and `lookahead`; commitments more than
    /// `max_blocks_ahead` above the head are not buffered.
    pub(crate) fn new(
        chain: ChainSpec,
        rules: BlockRules,
        lookahead: std::sync::Arc<dyn Lookahead>,
        max_blocks_ahead: u64,
    ) -> Self {
        Self {
            chain,
            rules,
            lookahead,
            max_blocks_ahead,
        }
    }

    /// The validator a `P2pSdk` with `config` runs: its chain, block rules and
    /// pending horizon.
    pub fn from_config(
        config: &crate::P2pSdkConfig,
        lookahead: std::sync::Arc<dyn Lookahead>,
    ) -> Self {
        Self::new(
            config.chain,
            config.rules.clone(),
            lookahead,
            config.pending.max_blocks_ahead,
        )
    }

    /// The chain this validator checks against.
    #[cfg(test)]
    pub(crate) fn chain(&self) -> &ChainSpec {
        &self.chain
    }

    /// The lower time bound of gossip and local publish: `Err(WindowEnded)` when `signed`'s
    /// window ended more than `rules.window_end_grace` before `now` (unix seconds). Cheap
    /// (no signature recovery), so it runs first. Catch-up does not apply it.
    pub(crate) fn check_window_not_ended(
        &self,
        signed: &SignedCommitment,
        now: u64,
    ) -> Result<(), RejectReason> {
        let window_end = signed.preconf().submission_window_end;
        let limit = U256::from(now.saturating_sub(self.rules.window_end_grace.as_secs()));
        if window_end < limit {
            return Err(RejectReason::WindowEnded { window_end, now });
        }
        Ok(())
    }

    /// Recovers the signer of `signed` (§4.1); the expensive step (≈ 40 µs).
    pub fn recover_signer(&self, signed: &SignedCommitment) -> Result<Address, TypesError> {
        preconfirmation_types::recover_signer(&self.chain.domain, signed)
    }

    /// Decodes a gossiped commitment under the chain's caps.
    pub fn decode_commitment(&self, bytes: &[u8]) -> Result<SignedCommitment, RejectReason> {
        SignedCommitment::decode_capped(bytes, &self.chain.limits).map_err(RejectReason::Malformed)
    }

    /// Validates `signed`, whose signature recovered to `signer` (§4.2, §5), against `view`
    /// at local time `now` (unix seconds).
    pub fn validate_commitment(
        &self,
        signed: &SignedCommitment,
        signer: Result<Address, TypesError>,
        view: &dyn ChainView,
        now: u64,
    ) -> ValidationOutcome {
        match self.check(signed, signer, view, now) {
            Ok(outcome) | Err(outcome) => outcome,
        }
    }

    fn check(
        &self,
        signed: &SignedCommitment,
        signer: Result<Address, TypesError>,
        view: &dyn ChainView,
        now: u64,
    ) -> Result<ValidationOutcome, ValidationOutcome> {
        use ValidationOutcome as O;
        let preconf = signed.preconf();
        let reject = |r| Err(O::reject(r));

        // Field checks.
        let Ok(number) = u64::try_from(preconf.block_number) else {
            return reject(RejectReason::BlockNumberOutOfRange);
        };
        if signed.commitment.slasher_address != self.chain.slasher_address {
            return reject(RejectReason::WrongSlasher(
                signed.commitment.slasher_address,
            ));
        }
        let gas_ok = u64::try_from(preconf.gas_limit)
            .map(|g| g > 0 && g <= self.rules.max_gas_limit)
            .unwrap_or(false);
        if !gas_ok {
            return reject(RejectReason::GasLimit(preconf.gas_limit));
        }
        let Ok(timestamp) = u64::try_from(preconf.timestamp) else {
            return reject(RejectReason::TimestampOutOfRange);
        };
        if timestamp > now.saturating_add(self.rules.max_future_drift.as_secs()) {
            return reject(RejectReason::TimestampInFuture { timestamp, now });
        }
        if !preconf.eop && preconf.raw_tx_list_hash == B256::ZERO {
            return reject(RejectReason::MissingTxList);
        }

        // Signature, and the block's slot (from its timestamp: per-slot dedupe). §4.2 items 1
        // and 3 look the preconfer up by `submissionWindowEnd`; the schedule knows whether its
        // windows end exclusively (fixed windows: the window holding `end − 1`) or inclusively
        // (the L1 lookahead), and its window end for it must then equal `submissionWindowEnd`
        // exactly: lookup and check agree.
        let signer = signer.map_err(|e| O::reject(RejectReason::BadSignature(e)))?;
        let Some(slot) = self.lookahead.slot_at(preconf.timestamp) else {
            return reject(RejectReason::TimestampOutOfRange);
        };
        let Ok(window) = self
            .lookahead
            .schedule_for_window_end(preconf.submission_window_end)
        else {
            return reject(RejectReason::WindowEndOutOfRange(
                preconf.submission_window_end,
            ));
        };

        // What we already hold: duplicates, stale blocks, equivocation.
        let head = view.head();
        if number <= head.block_number {
            return match view.accepted_at(number) {
                Some((first, _)) if &first == signed => reject(RejectReason::Duplicate),
                Some((first, first_signer)) if first_signer == signer => {
                    if first.preconf().raw_tx_list_hash == preconf.raw_tx_list_hash
                        && first.preconf() == preconf
                    {
                        // Same content, another signature (ECDSA nonce): not evidence.
                        reject(RejectReason::Duplicate)
                    } else {
                        reject(RejectReason::Equivocation {
                            kind: EquivocationKind::SameBlockNumber,
                            first: Box::new(first),
                        })
                    }
                }
                _ => reject(RejectReason::Stale {
                    number,
                    head: head.block_number,
                }),
            };
        }
        if let Some(first) = view.accepted_in_slot(slot, signer) {
            if &first != signed {
                return reject(RejectReason::Equivocation {
                    kind: EquivocationKind::SameSlot,
                    first: Box::new(first),
                });
            }
        }

        // Schedule (§4.2 items 1, 3, 5) with EOP hand-off (§5).
        let schedules = window.zip(self.lookahead.schedule_at(timestamp));
        let Some((window, own)) = schedules else {
            if number == head.block_number + 1 && !links_to(&head, signed) {
                // §4.2: with the schedule unknown only the link is checked, and nothing is
                // scored until validation can pass or fail for certain.
                return Err(O::Reject {
                    reason: RejectReason::BadParent,
                    penalise: false,
                });
            }
            return Err(O::Pending(PendingReason::ScheduleUnknown));
        };
        if window.window_end != preconf.submission_window_end {
            return reject(RejectReason::WrongWindowEnd {
                expected: window.window_end,
                actual: preconf.submission_window_end,
            });
        }
        if signer != window.signer {
            return reject(RejectReason::WrongSigner {
                expected: window.signer,
                actual: signer,
            });
        }
        if let Some(eop) = view.eop_for_window(window.window_end) {
            // The elected signer handed this window off already.
            return reject(RejectReason::CommitAfterEop { eop: Box::new(eop) });
        }
        if own.window_end != window.window_end {
            // Timed before its window: only after the previous window's EOP, and only the
            // window right after it (§5 hand-off).
            let next_is_ours = self
                .lookahead
                .schedule_for_slot(own.next_window_first_slot)
                .is_some_and(|next| next.window_end == window.window_end);
            let handed_off = own.window_end < window.window_end
                && next_is_ours
                && view.eop_for_window(own.window_end).is_some();
            if !handed_off {
                return reject(RejectReason::TimestampOutsideWindow {
                    timestamp,
                    window_end: window.window_end,
                });
            }
        }
        if let Some(expected) = window.coinbase {
            if preconf.coinbase != expected {
                return reject(RejectReason::WrongCoinbase {
                    expected,
                    actual: preconf.coinbase,
                });
            }
        }
        if let Some(expected) = window.prover {
            if preconf.prover_auth != expected {
                return reject(RejectReason::WrongProver {
                    expected,
                    actual: preconf.prover_auth,
                });
            }
        }

        // Parent link (§4.2 item 4).
        if number > head.block_number + 1 {
            if number - head.block_number > self.max_blocks_ahead {
                return reject(RejectReason::TooFarAhead {
                    number,
                    head: head.block_number,
                });
            }
            return Err(O::Pending(PendingReason::ParentUnknown));
        }
        if !links_to(&head, signed) {
            return reject(RejectReason::BadParent);
        }
        if self.rules.monotonic_timestamps && head.timestamp.is_some_and(|t| timestamp < t) {
            return reject(RejectReason::TimestampBeforeParent);
        }
        Ok(O::Accept(AcceptedCommitment {
            signer,
            block_number: number,
            slot,
            timestamp,
        }))
    }
}

fn links_to(head: &LocalHead, signed: &SignedCommitment) -> bool {
    head.preconfirmation_hash
        .is_none_or(|h| h == signed.preconf().parent_preconfirmation_hash)
}

#[cfg(test)]
mod tests;
