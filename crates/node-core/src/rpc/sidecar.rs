//! The four methods of Taiko's preconfirmation driver (`/work/shared/SIDECAR-RPC.md`), so a
//! preconfer sidecar written against that API works against this node unchanged:
//! `preconf_publishBlock`, `preconf_getStatus`, `preconf_tip` and
//! `preconf_getPreconfSlotInfo`. Their objects are camelCase, `U256` a `0x` hex quantity,
//! byte strings `0x` hex, and their errors the driver's codes -32000..-32006 (see
//! [`super::errors`]), each with `data.reason`, a stable label of the node's finer reason.
//!
//! The slot info of a timestamp is the configured schedule's answer ([`Lookahead::schedule_at`]),
//! whichever source the node runs (`lookahead.source`).
//!
//! A P2P-only node has no view of the L1 inbox, so `preconf_getStatus` reports its own state:
//! `isSyncedWithInbox` is true when catch-up is live (caught up with the peers, following
//! gossip) and the schedule knows the current time, `eventSyncTip` is always `null`,
//! `preconfTip` the head block number. The stale check of `preconf_publishBlock` likewise
//! compares with the node's head instead of the inbox's confirmed tip.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use p2p::{HeadSyncStatus, Lookahead, P2pSdkError, RejectReason, SlotSchedule};
use preconfirmation_net::NetError;
use preconfirmation_types::reexports::alloy_primitives::keccak256;
use preconfirmation_types::{
    recover_signer, Address, SignedCommitment, WireMessage, B256, SIGNED_COMMITMENT_SSZ_LEN, U256,
};
use serde::{Deserialize, Serialize};
use tracing::info;

use crate::context::NodeContext;

use super::errors::*;
use super::txlist;

/// The parameter of `preconf_publishBlock`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublishBlockRequest {
    /// SSZ hex of the `SignedCommitment`, signed by the sidecar.
    commitment: String,
    /// `keccak256(txList)`.
    tx_list_hash: String,
    /// zlib-compressed RLP list of transactions (any bytes for an EOP-only commitment,
    /// usually empty).
    tx_list: String,
}

/// Result of `preconf_publishBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublishedBlock {
    /// `keccak256` of the commitment bytes as given.
    pub commitment_hash: B256,
    /// `keccak256` of the tx list bytes as given.
    pub tx_list_hash: B256,
}

/// Result of `preconf_getStatus`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverStatus {
    /// Catch-up is live and the schedule knows the current time (this node has no L1 inbox
    /// view; see the module docs).
    pub is_synced_with_inbox: bool,
    /// Always `null`: this node does not follow the L1 inbox.
    pub event_sync_tip: Option<U256>,
    /// The head block number.
    pub preconf_tip: U256,
    /// Connected peers.
    pub peer_count: u64,
    /// This node's libp2p peer id (base58).
    pub peer_id: String,
}

/// Result of `preconf_getPreconfSlotInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreconfSlotInfo {
    /// The preconfer who may sign a block at that timestamp.
    pub signer: Address,
    /// The `submissionWindowEnd` such a block carries.
    pub submission_window_end: U256,
}

/// A refusal with one of the driver's codes: `data` is `{"reason": label}`.
fn refuse(code: i32, reason: &'static str, message: impl Into<String>) -> ErrorObjectOwned {
    error(code, message, Some(Reason { reason }))
}

/// Decodes `0x` hex of at most `max_len` bytes; too long is `over` (`code`, `reason`), bad
/// hex is invalid params. The length is checked before anything is decoded.
fn capped_hex(
    name: &str,
    text: &str,
    max_len: usize,
    over: (i32, &'static str),
) -> Result<Vec<u8>, ErrorObjectOwned> {
    let (code, reason) = over;
    parse_hex_capped(name, text, max_len, |message| refuse(code, reason, message))
}

/// `preconf_publishBlock({commitment, txListHash, txList})`: checks in the order of Taiko's
/// driver, then publishes through the SDK (stored, then gossiped; the tx list only when the
/// commitment is not EOP-only). With no peer subscribed yet the block is stored and the call
/// succeeds all the same: peers fetch it on catch-up, and `peerCount` tells the sidecar.
pub(super) async fn publish_block(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<PublishedBlock, ErrorObjectOwned> {
    let request: PublishBlockRequest = params.one()?;
    let chain = node.sdk.config().chain;
    let cap = chain.limits.max_txlist_bytes;
    let claimed_hash = parse_hash("txListHash", &request.tx_list_hash)?;
    // 1. The commitment decodes.
    let commitment_bytes = capped_hex(
        "commitment",
        &request.commitment,
        SIGNED_COMMITMENT_SSZ_LEN,
        (INVALID_COMMITMENT, "malformed"),
    )?;
    let signed = SignedCommitment::decode_capped(&commitment_bytes, &chain.limits)
        .map_err(|e| refuse(INVALID_COMMITMENT, "malformed", format!("commitment: {e}")))?;
    // 2. The tx list is within the cap and hashes to `txListHash`.
    let tx_list = capped_hex(
        "txList",
        &request.tx_list,
        cap,
        (INVALID_TX_LIST, "txlist_too_large"),
    )?;
    let tx_list_hash = keccak256(&tx_list);
    if tx_list_hash != claimed_hash {
        return Err(refuse(
            INVALID_TX_LIST,
            "txlist_hash_mismatch",
            format!("txListHash {claimed_hash} is not keccak256(txList) {tx_list_hash}"),
        ));
    }
    // 3. The commitment commits to that list, unless it only hands the window off.
    let preconf = signed.preconf();
    let eop_only = preconf.eop && preconf.raw_tx_list_hash == B256::ZERO;
    if !eop_only && preconf.raw_tx_list_hash != tx_list_hash {
        return Err(refuse(
            INVALID_COMMITMENT,
            "raw_txlist_hash_mismatch",
            format!(
                "the commitment's rawTxListHash {} is not keccak256(txList) {tx_list_hash}",
                preconf.raw_tx_list_hash
            ),
        ));
    }
    // 4. Signed by the preconfer the schedule names for its timestamp, with that window's end.
    let signer = recover_signer(&chain.domain, &signed).map_err(|e| {
        refuse(
            INVALID_COMMITMENT,
            "bad_signature",
            format!("signature: {e}"),
        )
    })?;
    if signed.commitment.slasher_address != chain.slasher_address {
        return Err(refuse(
            INVALID_COMMITMENT,
            "wrong_slasher",
            format!(
                "slasherAddress {} is not the chain's {}",
                signed.commitment.slasher_address, chain.slasher_address
            ),
        ));
    }
    let timestamp = u64::try_from(preconf.timestamp).map_err(|_| {
        refuse(
            INVALID_COMMITMENT,
            "timestamp_out_of_range",
            format!("timestamp {} does not fit in 64 bits", preconf.timestamp),
        )
    })?;
    let schedule = schedule_at(node, timestamp)?;
    if signer != schedule.signer {
        return Err(refuse(
            INVALID_SIGNER,
            "wrong_signer",
            format!(
                "signer {signer} is not the preconfer {} the schedule names for timestamp \
                 {timestamp}",
                schedule.signer
            ),
        ));
    }
    if preconf.submission_window_end != schedule.window_end {
        return Err(refuse(
            INVALID_COMMITMENT,
            "wrong_window_end",
            format!(
                "submissionWindowEnd {} is not the window end {} the schedule names for \
                 timestamp {timestamp}",
                preconf.submission_window_end, schedule.window_end
            ),
        ));
    }
    // 5. Above the head, and its window still open.
    let number = u64::try_from(preconf.block_number).map_err(|_| {
        refuse(
            INVALID_COMMITMENT,
            "block_number_out_of_range",
            format!(
                "block number {} does not fit in 64 bits",
                preconf.block_number
            ),
        )
    })?;
    let head = node.sdk.status().head_block_number;
    if number <= head {
        return Err(refuse(
            NOT_SYNCED,
            "stale",
            format!("stale: block {number} is not above the head {head}"),
        ));
    }
    let now = crate::clock::unix_now();
    let grace = node.sdk.config().rules.window_end_grace.as_secs();
    if preconf.submission_window_end < U256::from(now.saturating_sub(grace)) {
        return Err(refuse(
            SUBMISSION_WINDOW_EXPIRED,
            "window_ended",
            format!(
                "its window ended at {}, before now ({now}) minus the {grace} s grace",
                preconf.submission_window_end
            ),
        ));
    }
    // 6. The tx list decodes as Taiko's client decodes it (inflating up to the cap: off the
    // async workers).
    let (decoded, tx_list) = if eop_only {
        (None, tx_list)
    } else {
        let (decoded, tx_list) = tokio::task::spawn_blocking(move || {
            let decoded = txlist::decode(&tx_list, cap);
            (decoded, tx_list)
        })
        .await
        .map_err(|e| refuse(INTERNAL, "internal", format!("tx list decoding task: {e}")))?;
        let decoded = decoded.map_err(|e| refuse(INVALID_TX_LIST, e.label(), e.to_string()))?;
        (Some(decoded), tx_list)
    };
    // 7. Stored, then gossiped.
    let published = PublishedBlock {
        commitment_hash: keccak256(&commitment_bytes),
        tx_list_hash,
    };
    let txlist_bytes = tx_list.len();
    let outcome = node
        .sdk
        .publish(signed, (!eop_only).then_some(tx_list))
        .await;
    let peers_heard = match outcome {
        Ok(_) => true,
        Err(P2pSdkError::Network(NetError::NoPeers)) => false,
        Err(e) => return Err(sdk_refusal(e)),
    };
    info!(
        block = number,
        %signer,
        txlist_bytes,
        transactions = decoded.map_or(0, |d| d.transactions),
        eop_only,
        peers_heard,
        "published block (preconf_publishBlock)"
    );
    Ok(published)
}

/// The configured schedule's window holding `timestamp`; unknown is the driver's
/// lookahead-unavailable error.
fn schedule_at(node: &NodeContext, timestamp: u64) -> Result<SlotSchedule, ErrorObjectOwned> {
    node.schedule
        .lookahead()
        .schedule_at(timestamp)
        .ok_or_else(|| {
            refuse(
                LOOKAHEAD_UNAVAILABLE,
                "schedule_unknown",
                format!("the schedule does not know who may sign at timestamp {timestamp} (yet)"),
            )
        })
}

/// Maps what the SDK refused, by kind, to the driver's codes.
fn sdk_refusal(e: P2pSdkError) -> ErrorObjectOwned {
    let message = e.to_string();
    match e {
        P2pSdkError::Validation(reason) => {
            let code = match reason {
                RejectReason::WrongSigner { .. } => INVALID_SIGNER,
                RejectReason::WindowEnded { .. } => SUBMISSION_WINDOW_EXPIRED,
                RejectReason::Stale { .. } | RejectReason::Duplicate | RejectReason::Own => {
                    NOT_SYNCED
                }
                RejectReason::TxListHashMismatch | RejectReason::TxListTooLarge { .. } => {
                    INVALID_TX_LIST
                }
                _ => INVALID_COMMITMENT,
            };
            refuse(code, reason.label(), message)
        }
        P2pSdkError::NotReady("schedule_unknown") => {
            refuse(LOOKAHEAD_UNAVAILABLE, "schedule_unknown", message)
        }
        P2pSdkError::NotReady(reason) => refuse(NOT_SYNCED, reason, message),
        P2pSdkError::Network(NetError::Duplicate) => refuse(NOT_SYNCED, "duplicate", message),
        P2pSdkError::Decode(_) | P2pSdkError::Network(NetError::Oversize { .. }) => {
            refuse(INVALID_TX_LIST, "txlist_too_large", message)
        }
        P2pSdkError::Backpressure { .. } | P2pSdkError::Network(NetError::Busy) => {
            refuse(INTERNAL, "backpressure", message)
        }
        _ => refuse(INTERNAL, "internal", message),
    }
}

/// `preconf_getStatus`.
pub(super) async fn get_status(node: &NodeContext) -> Result<DriverStatus, ErrorObjectOwned> {
    let sdk_status = node.sdk.status();
    let peers = node
        .sdk
        .network()
        .peers()
        .await
        .map_err(|e| refuse(INTERNAL, "internal", format!("peers: {e}")))?;
    let schedule_known = node
        .schedule
        .lookahead()
        .schedule_at(crate::clock::unix_now())
        .is_some();
    Ok(DriverStatus {
        is_synced_with_inbox: sdk_status.sync == HeadSyncStatus::Live && schedule_known,
        event_sync_tip: None,
        preconf_tip: U256::from(sdk_status.head_block_number),
        peer_count: u64::try_from(peers.len()).unwrap_or(u64::MAX),
        peer_id: node.sdk.local_peer_id().to_string(),
    })
}

/// `preconf_tip`: the head block number.
pub(super) fn tip(node: &NodeContext) -> U256 {
    U256::from(node.sdk.status().head_block_number)
}

/// `preconf_getPreconfSlotInfo(timestamp)`: who may sign a block at `timestamp` and the
/// window end it carries, from the configured schedule.
pub(super) fn get_preconf_slot_info(
    params: Params<'_>,
    node: &NodeContext,
) -> Result<PreconfSlotInfo, ErrorObjectOwned> {
    let timestamp: U256 = params.one()?;
    let timestamp = u64::try_from(timestamp).map_err(|_| {
        error(
            INVALID_PARAMS,
            format!("timestamp {timestamp} does not fit in 64 bits"),
            Some(Reason {
                reason: "timestamp_out_of_range",
            }),
        )
    })?;
    let schedule = schedule_at(node, timestamp)?;
    Ok(PreconfSlotInfo {
        signer: schedule.signer,
        submission_window_end: schedule.window_end,
    })
}
