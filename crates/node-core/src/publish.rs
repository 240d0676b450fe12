//! The node's half of `preconf-node publish` (a first block without writing a sidecar):
//! [`draft_commitment`] (`preconf_draftCommitment`) fills the unsigned commitment for the
//! current slot from the node's own schedule and head: block number and parent hash from the
//! head, timestamp now, `submissionWindowEnd`, coinbase and prover from the schedule, the
//! chain's slasher. The operator's half, in the binary, reads a tx list from a file, asks the
//! node for that draft and has the node sign and publish it.
//!
//! The node signs with its `preconfer_key_file`, so publishing works only on a node whose key is
//! the preconfer of the current slot; anything else is refused by the node's own validation
//! with the rule that failed (e.g. `wrong_signer`).

use p2p::Lookahead;
use preconfirmation_types::{
    preconfirmation_hash, Address, PreconfCommitment, Preconfirmation, WireMessage, B256, U256,
};
use serde::{Deserialize, Serialize};

use crate::context::NodeContext;

/// Gas limit of a drafted block when the caller names none: Taiko's usual L2 block gas limit.
pub const DEFAULT_DRAFT_GAS_LIMIT: u64 = 30_000_000;

/// What `preconf_draftCommitment` answers: the unsigned commitment and its main fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    /// SSZ hex of the unsigned `PreconfCommitment` (317 bytes).
    pub commitment: String,
    /// Its block number: the head's plus one.
    pub block_number: u64,
    /// The L2 slot its timestamp falls in.
    pub slot: u64,
    /// Its timestamp (unix seconds).
    pub timestamp: u64,
    /// Its `submissionWindowEnd` (unix seconds).
    pub submission_window_end: u64,
    /// The preconfer the schedule names for the slot: the key that must sign it.
    pub preconfer: Address,
}

/// Why no draft could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DraftError {
    /// The schedule of the current slot is not known (yet): nobody may be named to sign.
    #[error("the schedule of slot {slot} is not known (yet); see /status `schedule`")]
    ScheduleUnknown {
        /// The current slot.
        slot: u64,
    },
    /// The clock is before the schedule's genesis.
    #[error("now is before the schedule's genesis")]
    BeforeGenesis,
    /// The head block already sits in the current slot: one block per slot.
    #[error("slot {slot} already has block {head}; the next slot starts in {wait_ms} ms")]
    SlotTaken {
        /// The current slot.
        slot: u64,
        /// The head block's number.
        head: u64,
        /// Milliseconds until the next slot (a bound, from the slot length).
        wait_ms: u64,
    },
}

/// The unsigned commitment for block `head + 1` in the slot containing `now`, committing to a
/// tx list with `raw_tx_list_hash` and `gas_limit`.
pub fn draft_commitment(
    context: &NodeContext,
    raw_tx_list_hash: B256,
    gas_limit: u64,
    now: u64,
) -> Result<Draft, DraftError> {
    let lookahead = context.schedule.lookahead();
    let sdk_status = context.sdk.status();
    let head = sdk_status.head_block_number;
    let head_commitment = context
        .sdk
        .storage()
        .commitment_by_number(head)
        .ok()
        .flatten();
    // Never before the parent (monotonic timestamps), even if the parent's clock ran ahead.
    let head_timestamp = head_commitment
        .as_ref()
        .and_then(|c| u64::try_from(c.preconf().timestamp).ok())
        .unwrap_or(0);
    let timestamp = now.max(head_timestamp);
    let slot = lookahead
        .slot_at(U256::from(timestamp))
        .ok_or(DraftError::BeforeGenesis)?;
    if head_commitment.is_some() && lookahead.slot_at(U256::from(head_timestamp)) == Some(slot) {
        let slot_secs = context.config.lookahead.slot_duration_secs;
        return Err(DraftError::SlotTaken {
            slot,
            head,
            wait_ms: slot_secs.saturating_mul(1_000),
        });
    }
    let schedule = lookahead
        .schedule_at(timestamp)
        .ok_or(DraftError::ScheduleUnknown { slot })?;
    let parent = head_commitment
        .map(|c| preconfirmation_hash(c.preconf()))
        .or(context.config.sdk.anchor.preconfirmation_hash)
        .unwrap_or(B256::ZERO);
    let chain = context.sdk.config().chain;
    let unsigned = PreconfCommitment {
        preconf: Preconfirmation {
            eop: false,
            block_number: U256::from(head.saturating_add(1)),
            timestamp: U256::from(timestamp),
            gas_limit: U256::from(gas_limit),
            coinbase: schedule.coinbase.unwrap_or(schedule.signer),
            anchor_block_number: U256::ZERO,
            raw_tx_list_hash,
            parent_preconfirmation_hash: parent,
            submission_window_end: schedule.window_end,
            prover_auth: schedule.prover.unwrap_or(Address::ZERO),
            proposal_id: U256::ZERO,
        },
        slasher_address: chain.slasher_address,
    };
    Ok(Draft {
        commitment: format!("0x{}", hex::encode(unsigned.to_ssz())),
        block_number: head.saturating_add(1),
        slot,
        timestamp,
        submission_window_end: u64::try_from(schedule.window_end).unwrap_or(u64::MAX),
        preconfer: schedule.signer,
    })
}
