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

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use preconfirmation_types::{
    raw_tx_list_hash, Address, ChainLimits, ChainSpec, RawTxListGossip, SignedCommitment,
    TypesError, WireMessage, B256, U256,
};

use crate::config::BlockRules;
use crate::lookahead::Lookahead;

/// Why a commitment or tx list was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RejectReason {
    /// Not valid SSZ, or over the cap (§3).
    #[error("malformed: {0}")]
    Malformed(TypesError),
    /// The signature is malleable, has a bad recovery id or does not recover (§4.1).
    #[error("bad signature: {0}")]
    BadSignature(TypesError),
    /// The recovered signer is not the preconfer elected for the slot (§4.2 item 1).
    #[error("signer {actual} is not the elected preconfer {expected}")]
    WrongSigner {
        /// Elected preconfer.
        expected: Address,
        /// Recovered signer.
        actual: Address,
    },
    /// `slasherAddress` is not the chain's slasher (§4.2 item 2).
    #[error("slasher {0} is not the chain's slasher")]
    WrongSlasher(Address),
    /// `submissionWindowEnd` is not the window end of the block's slot (§4.2 item 3).
    #[error("submissionWindowEnd {actual} is not the slot's window end {expected}")]
    WrongWindowEnd {
        /// Window end per schedule.
        expected: U256,
        /// Window end in the commitment.
        actual: U256,
    },
    /// `submissionWindowEnd` is not after the schedule's genesis, so no slot contains it
    /// (§4.2 items 1 and 3).
    #[error("submissionWindowEnd {0} is outside the schedule")]
    WindowEndOutOfRange(U256),
    /// The block's timestamp is not inside its `submissionWindowEnd`'s window, nor in the
    /// window before it after that window's EOP hand-off (§4.2 item 5, §5).
    #[error("timestamp {timestamp} is outside the window ending at {window_end}")]
    TimestampOutsideWindow {
        /// Block timestamp.
        timestamp: u64,
        /// The window's end.
        window_end: U256,
    },
    /// The coinbase is not the one the schedule names for the window (§4.2 item 5).
    #[error("coinbase {actual} is not the scheduled {expected}")]
    WrongCoinbase {
        /// Per schedule.
        expected: Address,
        /// In the commitment.
        actual: Address,
    },
    /// `proverAuth` is not the prover the schedule names for the window (§4.2 item 5).
    #[error("prover {actual} is not the scheduled {expected}")]
    WrongProver {
        /// Per schedule.
        expected: Address,
        /// In the commitment.
        actual: Address,
    },
    /// `parentPreconfirmationHash` is not the hash of the local head (§4.2 item 4).
    #[error("parent hash does not match the local head")]
    BadParent,
    /// `blockNumber` does not fit in 64 bits.
    #[error("block number out of range")]
    BlockNumberOutOfRange,
    /// The timestamp is before the schedule's genesis or out of range.
    #[error("timestamp outside the schedule")]
    TimestampOutOfRange,
    /// The timestamp is further in the future than the allowed drift (§4.2 item 5).
    #[error("timestamp {timestamp} is ahead of the local clock ({now})")]
    TimestampInFuture {
        /// Block timestamp.
        timestamp: u64,
        /// Local clock.
        now: u64,
    },
    /// Its window ended more than `rules.window_end_grace` ago (§4.2: a commitment is
    /// published before `submissionWindowEnd`): a replay or a very late relay, refused on
    /// gossip and local publish (not penalised; catch-up takes history as it is).
    #[error("its window ended at {window_end}, before now ({now}) minus the grace")]
    WindowEnded {
        /// `submissionWindowEnd`.
        window_end: U256,
        /// Local clock.
        now: u64,
    },
    /// The timestamp is below the parent's (§4.2 item 5).
    #[error("timestamp is below the parent's")]
    TimestampBeforeParent,
    /// The gas limit is zero or above the chain's maximum (§4.2 item 5).
    #[error("gas limit {0} is outside the chain's bounds")]
    GasLimit(U256),
    /// A non-EOP commitment with a zero tx-list hash (nothing to execute, §5).
    #[error("non-EOP commitment without a tx list")]
    MissingTxList,
    /// The signer already sent an EOP for this window (§5); evidence of misbehaviour.
    #[error("commitment after the signer's EOP for the same window")]
    CommitAfterEop {
        /// The EOP commitment that handed the window off.
        eop: Box<SignedCommitment>,
    },
    /// Another valid commitment by the same signer for the same slot or block number exists.
    #[error("equivocation ({kind:?})")]
    Equivocation {
        /// Same slot or same block number.
        kind: EquivocationKind,
        /// The commitment seen first.
        first: Box<SignedCommitment>,
    },
    /// Seen before (same message, or the same block and tx list from the same signer).
    #[error("duplicate")]
    Duplicate,
    /// Our own message came back.
    #[error("own message")]
    Own,
    /// At or below the local head and not an equivocation: nothing to do.
    #[error("stale: block {number} is not above the head {head}")]
    Stale {
        /// Block number of the commitment.
        number: u64,
        /// Local head.
        head: u64,
    },
    /// Too far above the head to buffer; catch-up fetches the range instead.
    #[error("block {number} is too far above the head {head} to buffer")]
    TooFarAhead {
        /// Block number of the commitment.
        number: u64,
        /// Local head.
        head: u64,
    },
    /// A tx list whose bytes do not hash to its `rawTxListHash` (§3.4).
    #[error("tx list hash mismatch")]
    TxListHashMismatch,
    /// A tx list above the chain's `MAX_TXLIST_BYTES` (§3.4).
    #[error("tx list of {len} bytes exceeds the {cap}-byte cap")]
    TxListTooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        cap: usize,
    },
}

/// Which rule an equivocation broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum EquivocationKind {
    /// Two commitments for the same slot by the same signer.
    SameSlot,
    /// Two commitments for the same block number by the same signer.
    SameBlockNumber,
}

impl RejectReason {
    /// Stable metric label.
    pub fn label(&self) -> &'static str {
        match self {
            RejectReason::Malformed(_) => "malformed",
            RejectReason::BadSignature(_) => "bad_signature",
            RejectReason::WrongSigner { .. } => "wrong_signer",
            RejectReason::WrongSlasher(_) => "wrong_slasher",
            RejectReason::WrongWindowEnd { .. } => "wrong_window_end",
            RejectReason::WindowEndOutOfRange(_) => "window_end_out_of_range",
            RejectReason::TimestampOutsideWindow { .. } => "timestamp_outside_window",
            RejectReason::WrongCoinbase { .. } => "wrong_coinbase",
            RejectReason::WrongProver { .. } => "wrong_prover",
            RejectReason::BadParent => "bad_parent",
            RejectReason::BlockNumberOutOfRange => "block_number_out_of_range",
            RejectReason::TimestampOutOfRange => "timestamp_out_of_range",
            RejectReason::TimestampInFuture { .. } => "timestamp_in_future",
            RejectReason::WindowEnded { .. } => "window_ended",
            RejectReason::TimestampBeforeParent => "timestamp_before_parent",
            RejectReason::GasLimit(_) => "gas_limit",
            RejectReason::MissingTxList => "missing_txlist",
            RejectReason::CommitAfterEop { .. } => "commit_after_eop",
            RejectReason::Equivocation { .. } => "equivocation",
            RejectReason::Duplicate => "duplicate",
            RejectReason::Own => "own",
            RejectReason::Stale { .. } => "stale",
            RejectReason::TooFarAhead { .. } => "too_far_ahead",
            RejectReason::TxListHashMismatch => "txlist_hash_mismatch",
            RejectReason::TxListTooLarge { .. } => "txlist_too_large",
        }
    }

    /// Whether the peer that sent it should be penalised (§7.1). Honest peers may forward
    /// duplicates, stale blocks and equivocations, and a commitment after its signer's EOP
    /// when the EOP had not reached them yet: the signer misbehaved, not the peer (the
    /// evidence event names the signer).
    pub fn penalises_sender(&self) -> bool {
        !matches!(
            self,
            RejectReason::Equivocation { .. }
                | RejectReason::CommitAfterEop { .. }
                | RejectReason::Duplicate
                | RejectReason::Own
                | RejectReason::Stale { .. }
                | RejectReason::TooFarAhead { .. }
                | RejectReason::WindowEnded { .. }
        )
    }
}

/// Why a commitment cannot be decided yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PendingReason {
    /// Its parent is not the local head yet (it is further ahead).
    ParentUnknown,
    /// The schedule of its slot is not known yet.
    ScheduleUnknown,
}

impl PendingReason {
    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            PendingReason::ParentUnknown => "parent_unknown",
            PendingReason::ScheduleUnknown => "schedule_unknown",
        }
    }
}

/// What validation decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValidationOutcome {
    /// Valid and extends the head.
    Accept(AcceptedCommitment),
    /// Invalid or not wanted.
    Reject {
        /// Why.
        reason: RejectReason,
        /// Whether the sender is penalised.
        penalise: bool,
    },
    /// Undecidable for now.
    Pending(PendingReason),
}

impl ValidationOutcome {
    fn reject(reason: RejectReason) -> Self {
        let penalise = reason.penalises_sender();
        ValidationOutcome::Reject { reason, penalise }
    }

    /// Metric label of the outcome: `accept`, `pending` or the reject reason.
    pub fn label(&self) -> &'static str {
        match self {
            ValidationOutcome::Accept(_) => "accept",
            ValidationOutcome::Reject { reason, .. } => reason.label(),
            ValidationOutcome::Pending(_) => "pending",
        }
    }
}

/// Facts established about an accepted commitment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptedCommitment {
    /// Recovered signer.
    pub signer: Address,
    /// Block number.
    pub block_number: u64,
    /// Slot of its timestamp.
    pub slot: u64,
    /// Block timestamp.
    pub timestamp: u64,
}

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

/// Seconds since the unix epoch on the local clock.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

impl Validator {
    /// A validator for `chain` under `rules` and `lookahead`; commitments more than
    /// `max_blocks_ahead` above the head are not buffered.
    pub fn new(
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

    /// The validator a [`crate::P2pSdk`] with `config` runs: its chain, block rules and
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
    pub fn chain(&self) -> &ChainSpec {
        &self.chain
    }

    /// The schedule.
    pub fn lookahead(&self) -> &dyn Lookahead {
        self.lookahead.as_ref()
    }

    /// The lower time bound of gossip and local publish: `Err(WindowEnded)` when `signed`'s
    /// window ended more than `rules.window_end_grace` before `now` (unix seconds). Cheap
    /// (no signature recovery), so it runs first. Catch-up does not apply it.
    pub fn check_window_not_ended(
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

        // Signature, and the slots: the block's own (from its timestamp: per-slot dedupe,
        // hand-off) and its window's. §4.2 items 1 and 3 look the preconfer up for the slot
        // containing `submissionWindowEnd`. The window end is exclusive — the first second
        // after the window, as testdata/vectors.json has it — so that slot is the one
        // containing `submissionWindowEnd − 1`, the window's last; the schedule's window end
        // for it must then equal `submissionWindowEnd` exactly: lookup and check agree.
        let signer = signer.map_err(|e| O::reject(RejectReason::BadSignature(e)))?;
        let Some(slot) = self.lookahead.slot_at(preconf.timestamp) else {
            return reject(RejectReason::TimestampOutOfRange);
        };
        let window_slot = preconf
            .submission_window_end
            .checked_sub(U256::from(1))
            .and_then(|last_second| self.lookahead.slot_at(last_second));
        let Some(window_slot) = window_slot else {
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
        let schedules = self
            .lookahead
            .schedule_for_slot(window_slot)
            .zip(self.lookahead.schedule_for_slot(slot));
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

/// Decodes and checks a gossiped tx list (§3.4): cap on the encoded length before decoding,
/// cap on the list, and `keccak256(txlist) == rawTxListHash`.
pub fn validate_raw_txlist(
    bytes: &[u8],
    limits: &ChainLimits,
) -> Result<RawTxListGossip, RejectReason> {
    let msg = RawTxListGossip::decode_capped(bytes, limits).map_err(RejectReason::Malformed)?;
    check_txlist(&msg.raw_tx_list_hash, &msg.txlist, limits)?;
    Ok(msg)
}

/// Checks tx list bytes against their claimed hash and the chain's cap (§3.4, §11).
pub fn check_txlist(hash: &B256, txlist: &[u8], limits: &ChainLimits) -> Result<(), RejectReason> {
    if txlist.len() > limits.max_txlist_bytes {
        return Err(RejectReason::TxListTooLarge {
            len: txlist.len(),
            cap: limits.max_txlist_bytes,
        });
    }
    if raw_tx_list_hash(txlist) != *hash {
        return Err(RejectReason::TxListHashMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use preconfirmation_types::{
        preconfirmation_hash, secret_key_to_address, PreconfCommitment, SIGNATURE_LEN,
    };

    use super::*;
    use crate::testkit::{preconfer_key, ChainBuilder};

    const NOW_OFFSET: u64 = 1_000;

    #[derive(Default)]
    struct View {
        head: LocalHead,
        at: HashMap<u64, (SignedCommitment, Address)>,
        slots: HashMap<(u64, Address), SignedCommitment>,
        eops: HashMap<U256, SignedCommitment>,
    }

    impl ChainView for View {
        fn head(&self) -> LocalHead {
            self.head
        }
        fn accepted_at(&self, n: u64) -> Option<(SignedCommitment, Address)> {
            self.at.get(&n).cloned()
        }
        fn accepted_in_slot(&self, slot: u64, signer: Address) -> Option<SignedCommitment> {
            self.slots.get(&(slot, signer)).cloned()
        }
        fn eop_for_window(&self, end: U256) -> Option<SignedCommitment> {
            self.eops.get(&end).cloned()
        }
    }

    struct Fixture {
        builder: ChainBuilder,
        validator: Validator,
        view: View,
        now: u64,
        first: SignedCommitment,
    }

    /// Block 1 accepted as the head; the builder is ready for block 2 (slot 1, window 0:
    /// slots 0..4 owned by preconfer 0).
    fn fixture() -> Fixture {
        let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
        let now = unix_now();
        let mut builder = ChainBuilder::new(chain, 3, 4, now - NOW_OFFSET, 1);
        let validator = Validator::new(chain, BlockRules::default(), builder.lookahead(), 64);
        let first = builder.next_block(Some(vec![1])).commitment;
        let signer = secret_key_to_address(&preconfer_key(0));
        let mut view = View {
            head: LocalHead {
                block_number: 1,
                preconfirmation_hash: Some(preconfirmation_hash(first.preconf())),
                timestamp: Some(now - NOW_OFFSET),
            },
            ..Default::default()
        };
        view.at.insert(1, (first.clone(), signer));
        view.slots.insert((0, signer), first.clone());
        Fixture {
            builder,
            validator,
            view,
            now,
            first,
        }
    }

    impl Fixture {
        fn unsigned(&self) -> PreconfCommitment {
            self.builder.next_unsigned(Some(b"txs"))
        }
        fn check(&self, signed: &SignedCommitment) -> ValidationOutcome {
            let signer = self.validator.recover_signer(signed);
            self.validator
                .validate_commitment(signed, signer, &self.view, self.now)
        }
        fn check_mutated(&self, mutate: impl FnOnce(&mut PreconfCommitment)) -> ValidationOutcome {
            let mut c = self.unsigned();
            mutate(&mut c);
            self.check(&self.builder.sign_next(c))
        }
    }

    fn label(outcome: &ValidationOutcome) -> &'static str {
        outcome.label()
    }

    #[test]
    fn valid_next_block_is_accepted() {
        let f = fixture();
        let outcome = f.check(&f.builder.sign_next(f.unsigned()));
        let ValidationOutcome::Accept(a) = outcome else {
            panic!("expected accept, got {outcome:?}");
        };
        assert_eq!((a.block_number, a.slot), (2, 1));
        assert_eq!(a.signer, secret_key_to_address(&preconfer_key(0)));
    }

    /// One row per §4–§5 rejection reason: (name, mutation, expected label, penalised).
    #[test]
    fn every_rejection_reason() {
        type Mutation = Box<dyn Fn(&mut PreconfCommitment)>;
        let rows: Vec<(&str, Mutation, &str, bool)> = vec![
            (
                "slasher",
                Box::new(|c| c.slasher_address = Address::repeat_byte(9)),
                "wrong_slasher",
                true,
            ),
            (
                "zero gas",
                Box::new(|c| c.preconf.gas_limit = U256::ZERO),
                "gas_limit",
                true,
            ),
            (
                "gas above max",
                Box::new(|c| c.preconf.gas_limit = U256::from(240_000_001u64)),
                "gas_limit",
                true,
            ),
            (
                "future timestamp",
                Box::new(|c| c.preconf.timestamp = U256::from(unix_now() + 60)),
                "timestamp_in_future",
                true,
            ),
            (
                "timestamp before genesis",
                Box::new(|c| c.preconf.timestamp = U256::from(5u64)),
                "timestamp_out_of_range",
                true,
            ),
            (
                "block number above u64",
                Box::new(|c| c.preconf.block_number = U256::MAX),
                "block_number_out_of_range",
                true,
            ),
            (
                "non-EOP without tx list",
                Box::new(|c| c.preconf.raw_tx_list_hash = B256::ZERO),
                "missing_txlist",
                true,
            ),
            (
                "window end",
                Box::new(|c| c.preconf.submission_window_end += U256::from(1)),
                "wrong_window_end",
                true,
            ),
            (
                "window end before genesis",
                Box::new(|c| c.preconf.submission_window_end = U256::ZERO),
                "window_end_out_of_range",
                true,
            ),
            (
                "timestamp after its window",
                // Slot 5 is in window 1; the commitment claims window 0 (its own signer's).
                Box::new(|c| c.preconf.timestamp += U256::from(4)),
                "timestamp_outside_window",
                true,
            ),
            (
                "parent hash",
                Box::new(|c| c.preconf.parent_preconfirmation_hash = B256::repeat_byte(7)),
                "bad_parent",
                true,
            ),
            (
                "too far ahead",
                Box::new(|c| c.preconf.block_number = U256::from(1_000u64)),
                "too_far_ahead",
                false,
            ),
        ];
        let f = fixture();
        for (name, mutate, expected, penalised) in rows {
            let outcome = f.check_mutated(mutate);
            assert_eq!(label(&outcome), expected, "{name}: {outcome:?}");
            let ValidationOutcome::Reject { penalise, .. } = outcome else {
                panic!("{name}: not a reject");
            };
            assert_eq!(penalise, penalised, "{name}");
        }
    }

    /// A schedule source that names each window's coinbase and prover.
    struct Naming(Arc<crate::lookahead::RotatingLookahead>);

    impl Lookahead for Naming {
        fn slot_at(&self, timestamp: U256) -> Option<u64> {
            self.0.slot_at(timestamp)
        }
        fn schedule_for_slot(&self, slot: u64) -> Option<crate::lookahead::SlotSchedule> {
            self.0.schedule_for_slot(slot).map(|mut s| {
                s.coinbase = Some(s.signer);
                s.prover = Some(Address::repeat_byte(0xAB));
                s
            })
        }
    }

    /// §4.2 item 5: where the schedule names a coinbase and a prover, a commitment must carry
    /// them; a schedule that names none checks neither (the fixture's rows).
    #[test]
    fn coinbase_and_prover_are_checked_where_the_schedule_names_them() {
        let mut f = fixture();
        f.validator = Validator::new(
            *f.validator.chain(),
            BlockRules::default(),
            Arc::new(Naming(f.builder.lookahead())),
            64,
        );
        let prover = Address::repeat_byte(0xAB);
        let ok = f.check_mutated(|c| c.preconf.prover_auth = prover);
        assert!(matches!(ok, ValidationOutcome::Accept(_)), "{ok:?}");
        let coinbase = f.check_mutated(|c| {
            c.preconf.prover_auth = prover;
            c.preconf.coinbase = Address::repeat_byte(1);
        });
        assert_eq!(label(&coinbase), "wrong_coinbase");
        assert!(matches!(
            coinbase,
            ValidationOutcome::Reject { penalise: true, .. }
        ));
        let wrong_prover = f.check_mutated(|c| c.preconf.prover_auth = Address::repeat_byte(2));
        assert_eq!(label(&wrong_prover), "wrong_prover");
    }

    #[test]
    fn bad_signatures_are_rejected_with_penalty() {
        let f = fixture();
        let good = f.builder.sign_next(f.unsigned());
        let mut bad_v = good.clone();
        bad_v.signature.0[SIGNATURE_LEN - 1] = 5;
        let mut garbage = good.clone();
        garbage.signature.0 = [0; SIGNATURE_LEN];
        for signed in [bad_v, garbage] {
            let outcome = f.check(&signed);
            assert_eq!(label(&outcome), "bad_signature", "{outcome:?}");
            assert!(matches!(
                outcome,
                ValidationOutcome::Reject { penalise: true, .. }
            ));
        }
    }

    #[test]
    fn wrong_signer_is_rejected() {
        let f = fixture();
        let signed = f.builder.sign_with(&preconfer_key(1), f.unsigned());
        let outcome = f.check(&signed);
        assert!(
            matches!(
                &outcome,
                ValidationOutcome::Reject {
                    reason: RejectReason::WrongSigner { .. },
                    penalise: true
                }
            ),
            "{outcome:?}"
        );
    }

    #[test]
    fn timestamp_before_parent_is_rejected() {
        let mut f = fixture();
        f.view.head.timestamp = Some(f.now - 10);
        let outcome = f.check(&f.builder.sign_next(f.unsigned()));
        assert_eq!(label(&outcome), "timestamp_before_parent");
    }

    #[test]
    fn duplicates_stale_and_equivocation_at_or_below_head() {
        let f = fixture();
        // The very same commitment again.
        assert_eq!(label(&f.check(&f.first)), "duplicate");
        // Same signer, same number, different content: evidence, no penalty for the sender.
        let mut other = f.first.commitment.clone();
        other.preconf.gas_limit = U256::from(1_234u64);
        let second = f.builder.sign_with(&preconfer_key(0), other);
        let outcome = f.check(&second);
        match outcome {
            ValidationOutcome::Reject {
                reason: RejectReason::Equivocation { kind, first },
                penalise: false,
            } => {
                assert_eq!(kind, EquivocationKind::SameBlockNumber);
                assert_eq!(*first, f.first);
            }
            other => panic!("expected equivocation, got {other:?}"),
        }
        // Below the head with nothing remembered: stale.
        let mut f2 = fixture();
        f2.view.at.clear();
        f2.view.head.block_number = 5;
        assert_eq!(label(&f2.check(&f2.first)), "stale");
    }

    #[test]
    fn same_slot_equivocation() {
        let mut f = fixture();
        let signer = secret_key_to_address(&preconfer_key(0));
        // Someone else's block 2 in slot 1 was accepted; the signer sends another for slot 1.
        let mut earlier = f.unsigned();
        earlier.preconf.gas_limit = U256::from(7u64);
        let earlier = f.builder.sign_next(earlier);
        f.view.slots.insert((1, signer), earlier.clone());
        let outcome = f.check(&f.builder.sign_next(f.unsigned()));
        match outcome {
            ValidationOutcome::Reject {
                reason: RejectReason::Equivocation { kind, first },
                ..
            } => {
                assert_eq!(kind, EquivocationKind::SameSlot);
                assert_eq!(*first, earlier);
            }
            other => panic!("expected equivocation, got {other:?}"),
        }
    }

    #[test]
    fn window_ended_beyond_the_grace_is_refused_unpenalised() {
        let f = fixture();
        let grace = f.validator.rules.window_end_grace.as_secs();
        let signed = f.builder.sign_next(f.unsigned());
        let end = u64::try_from(signed.preconf().submission_window_end).unwrap();
        // Up to `grace` seconds after the window end: still taken.
        assert!(f.validator.check_window_not_ended(&signed, end).is_ok());
        assert!(f
            .validator
            .check_window_not_ended(&signed, end + grace)
            .is_ok());
        let refused = f
            .validator
            .check_window_not_ended(&signed, end + grace + 1)
            .unwrap_err();
        assert_eq!(refused.label(), "window_ended");
        assert!(!refused.penalises_sender(), "a late relay is not punished");
        let lenient = Validator::new(
            *f.validator.chain(),
            BlockRules {
                window_end_grace: Duration::from_secs(3600),
                ..BlockRules::default()
            },
            f.builder.lookahead(),
            64,
        );
        assert!(lenient
            .check_window_not_ended(&signed, end + grace + 1)
            .is_ok());
    }

    #[test]
    fn unknown_parent_is_pending_not_rejected() {
        let f = fixture();
        let outcome = f.check_mutated(|c| c.preconf.block_number = U256::from(5u64));
        assert_eq!(
            outcome,
            ValidationOutcome::Pending(PendingReason::ParentUnknown)
        );
    }

    #[test]
    fn unknown_schedule_is_pending_and_only_the_link_is_checked() {
        let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
        let now = unix_now();
        let mut builder = ChainBuilder::new(chain, 2, 4, now - NOW_OFFSET, 1);
        let lookahead = builder.lookahead();
        lookahead.extend_horizon(0);
        let hidden = Arc::new(
            crate::lookahead::RotatingLookahead::new(
                (0..2)
                    .map(|i| secret_key_to_address(&preconfer_key(i)))
                    .collect(),
                4,
                now - NOW_OFFSET,
                1,
            )
            .unwrap()
            .with_horizon(0),
        );
        let validator = Validator::new(chain, BlockRules::default(), hidden.clone(), 64);
        let first = builder.next_block(Some(vec![1])).commitment;
        let view = View {
            head: LocalHead {
                block_number: 1,
                preconfirmation_hash: Some(preconfirmation_hash(first.preconf())),
                timestamp: None,
            },
            ..Default::default()
        };
        let second = builder.next_block(Some(vec![2])).commitment;
        let check = |signed: &SignedCommitment| {
            validator.validate_commitment(signed, validator.recover_signer(signed), &view, now)
        };
        assert_eq!(
            check(&second),
            ValidationOutcome::Pending(PendingReason::ScheduleUnknown)
        );
        // A broken link is dropped without penalty while the schedule is unknown.
        let mut broken = second.commitment.clone();
        broken.preconf.parent_preconfirmation_hash = B256::repeat_byte(3);
        let broken = builder.sign_with(&preconfer_key(0), broken);
        assert!(matches!(
            check(&broken),
            ValidationOutcome::Reject {
                reason: RejectReason::BadParent,
                penalise: false
            }
        ));
        // Once the schedule is known, the same commitment is accepted.
        hidden.extend_horizon(100);
        assert!(matches!(check(&second), ValidationOutcome::Accept(_)));
    }

    #[test]
    fn eop_pure_hand_off_is_accepted() {
        let f = fixture();
        let mut c = f.builder.next_unsigned(None);
        assert!(c.preconf.eop && c.preconf.raw_tx_list_hash == B256::ZERO);
        c.preconf.eop = true;
        assert!(matches!(
            f.check(&f.builder.sign_next(c)),
            ValidationOutcome::Accept(_)
        ));
    }

    #[test]
    fn eop_hands_the_window_to_the_next_committer() {
        let mut f = fixture();
        let owner = secret_key_to_address(&preconfer_key(0));
        // Block 2 (slot 1) is the owner's EOP; record it as accepted.
        let eop = f.builder.next_block(None).commitment;
        let window_end = eop.preconf().submission_window_end;
        f.view.head = LocalHead {
            block_number: 2,
            preconfirmation_hash: Some(preconfirmation_hash(eop.preconf())),
            timestamp: Some(f.now - NOW_OFFSET + 1),
        };
        f.view.at.insert(2, (eop.clone(), owner));
        f.view.eops.insert(window_end, eop.clone());

        // Slot 2 is still in window 0, but the owner handed off: its commitment is evidence
        // against the signer; the relay that forwarded it may not have seen the EOP yet, so
        // it is not penalised.
        let after_eop = f.builder.sign_with(&preconfer_key(0), f.unsigned());
        match f.check(&after_eop) {
            ValidationOutcome::Reject {
                reason: RejectReason::CommitAfterEop { eop: first },
                penalise: false,
            } => assert_eq!(*first, eop),
            other => panic!("expected commit-after-EOP, got {other:?}"),
        }

        // The next committer (preconfer 1, window 1 ending at genesis + 8) takes over slot 2
        // with its own window end.
        let mut takeover = f.unsigned();
        takeover.preconf.submission_window_end = U256::from(f.now - NOW_OFFSET + 8);
        let takeover = f.builder.sign_with(&preconfer_key(1), takeover);
        let outcome = f.check(&takeover);
        assert!(
            matches!(outcome, ValidationOutcome::Accept(_)),
            "{outcome:?}"
        );
        // ...but not with the handed-off window's end: that window's elected signer is
        // preconfer 0.
        let wrong = f.builder.sign_with(&preconfer_key(1), f.unsigned());
        assert_eq!(label(&f.check(&wrong)), "wrong_signer");
        // Nor in window 2 (preconfer 2's), two windows ahead of its timestamp.
        let mut far = f.unsigned();
        far.preconf.submission_window_end = U256::from(f.now - NOW_OFFSET + 12);
        let far = f.builder.sign_with(&preconfer_key(2), far);
        assert_eq!(label(&f.check(&far)), "timestamp_outside_window");
    }

    #[test]
    fn eop_with_txlist_is_accepted() {
        let f = fixture();
        let mut c = f.unsigned();
        c.preconf.eop = true;
        assert!(matches!(
            f.check(&f.builder.sign_next(c)),
            ValidationOutcome::Accept(_)
        ));
    }

    #[test]
    fn raw_txlist_checks() {
        let limits = ChainLimits {
            max_txlist_bytes: 8,
            ..Default::default()
        };
        let ok = RawTxListGossip::new(vec![1, 2, 3]).unwrap();
        assert!(validate_raw_txlist(&ok.to_ssz(), &limits).is_ok());

        let mut wrong = ok.clone();
        wrong.raw_tx_list_hash = B256::repeat_byte(1);
        assert_eq!(
            validate_raw_txlist(&wrong.to_ssz(), &limits).unwrap_err(),
            RejectReason::TxListHashMismatch
        );
        let big = RawTxListGossip::new(vec![0; 9]).unwrap();
        let err = validate_raw_txlist(&big.to_ssz(), &limits).unwrap_err();
        assert_eq!(
            err.label(),
            "malformed",
            "over the encoded cap before decoding: {err:?}"
        );
        assert!(matches!(
            check_txlist(&big.raw_tx_list_hash, &big.txlist, &limits),
            Err(RejectReason::TxListTooLarge { len: 9, cap: 8 })
        ));
        assert_eq!(
            validate_raw_txlist(&[1, 2], &limits).unwrap_err().label(),
            "malformed"
        );
    }
}
