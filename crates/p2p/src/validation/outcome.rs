//! What validation decides ([`ValidationOutcome`]) and why ([`RejectReason`], [`PendingReason`]),
//! each with a stable metric label.

use preconfirmation_types::{Address, SignedCommitment, TypesError, U256};

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
    pub(crate) fn penalises_sender(&self) -> bool {
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
    pub(crate) fn reject(reason: RejectReason) -> Self {
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
