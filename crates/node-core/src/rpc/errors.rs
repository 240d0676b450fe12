//! JSON-RPC error codes and the helpers that build errors and parse parameters.

use jsonrpsee::types::{ErrorObject, ErrorObjectOwned};
use p2p::P2pSdkError;
use preconfirmation_net::NetError;
use preconfirmation_types::B256;
use serde::Serialize;

/// Invalid params: bad hex, wrong length, undecodable SSZ, unknown subscription kind.
pub const INVALID_PARAMS: i32 = -32602;
/// The commitment or tx list failed validation; `data.reason` is a stable label.
pub const VALIDATION_REJECTED: i32 = -32010;
/// The commitment cannot be validated yet (parent or schedule unknown); `data.reason`.
pub const PENDING: i32 = -32011;
/// Stored, but no peer is subscribed yet: nothing was sent (peers fetch it on catch-up).
pub const NO_PEERS: i32 = -32012;
/// A queue is full; retry later. Also closes a slow subscription.
pub const BACKPRESSURE: i32 = -32013;
/// An unsigned commitment was given but the node has no preconfer key.
pub const NO_PRECONFER_KEY: i32 = -32014;
/// Anything else: storage failure, shutdown, internal errors.
pub const INTERNAL: i32 = -32000;

/// `preconf_publishBlock`: the commitment does not decode, or fails a check that is not one
/// of the codes below (hash, window end, slasher, signature, other validation).
pub const INVALID_COMMITMENT: i32 = -32001;
/// `preconf_publishBlock`: the tx list is over the cap, does not hash to `txListHash`, or is
/// not a zlib-compressed RLP list of transactions.
pub const INVALID_TX_LIST: i32 = -32002;
/// `preconf_publishBlock`: stale (at or below the node's head) or not yet placeable (its
/// parent is unknown here).
pub const NOT_SYNCED: i32 = -32003;
/// `preconf_publishBlock`: the commitment's submission window has ended.
pub const SUBMISSION_WINDOW_EXPIRED: i32 = -32004;
/// `preconf_publishBlock`: the signer is not the one the schedule names for the timestamp.
pub const INVALID_SIGNER: i32 = -32005;
/// `preconf_publishBlock`, `preconf_getPreconfSlotInfo`: the schedule cannot answer for
/// that timestamp (not learned yet, or before the schedule's genesis).
pub const LOOKAHEAD_UNAVAILABLE: i32 = -32006;

pub(super) fn error(
    code: i32,
    message: impl Into<String>,
    data: Option<impl Serialize>,
) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), data)
}

pub(super) fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(INVALID_PARAMS, message, None::<()>)
}

#[derive(Serialize)]
pub(super) struct Reason {
    pub(super) reason: &'static str,
}

/// Maps an SDK failure to its documented code. `stored` is the `data` of [`NO_PEERS`].
pub(super) fn sdk_error(e: P2pSdkError, stored: Option<impl Serialize>) -> ErrorObjectOwned {
    let message = e.to_string();
    match e {
        P2pSdkError::Validation(reason) => error(
            VALIDATION_REJECTED,
            message,
            Some(Reason {
                reason: reason.label(),
            }),
        ),
        P2pSdkError::NotReady(reason) => error(PENDING, message, Some(Reason { reason })),
        P2pSdkError::Network(NetError::NoPeers) => error(NO_PEERS, message, stored),
        P2pSdkError::Network(NetError::Duplicate) => error(
            VALIDATION_REJECTED,
            message,
            Some(Reason {
                reason: "duplicate",
            }),
        ),
        P2pSdkError::Network(NetError::Oversize { .. }) | P2pSdkError::Decode(_) => {
            invalid(message)
        }
        P2pSdkError::Backpressure { .. } | P2pSdkError::Network(NetError::Busy) => {
            error(BACKPRESSURE, message, None::<()>)
        }
        _ => error(INTERNAL, message, None::<()>),
    }
}

pub(super) fn storage_error(e: impl std::fmt::Display) -> ErrorObjectOwned {
    error(INTERNAL, format!("storage: {e}"), None::<()>)
}

/// `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x`-prefixed hex of at most `max_len` bytes; the length is checked before decoding,
/// and too long is invalid params.
pub(super) fn parse_hex(
    name: &str,
    text: &str,
    max_len: usize,
) -> Result<Vec<u8>, ErrorObjectOwned> {
    parse_hex_capped(name, text, max_len, invalid)
}

/// [`parse_hex`] with the error for too long made by `too_long` from its message; bad hex is
/// invalid params.
pub(super) fn parse_hex_capped(
    name: &str,
    text: &str,
    max_len: usize,
    too_long: impl FnOnce(String) -> ErrorObjectOwned,
) -> Result<Vec<u8>, ErrorObjectOwned> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{name}: hex must start with 0x")))?;
    if digits.len() % 2 != 0 {
        return Err(invalid(format!("{name}: odd number of hex digits")));
    }
    let len = digits.len() / 2;
    if len > max_len {
        return Err(too_long(format!(
            "{name}: {len} bytes exceed the {max_len}-byte limit"
        )));
    }
    hex::decode(digits).map_err(|e| invalid(format!("{name}: {e}")))
}

pub(super) fn parse_hash(name: &str, text: &str) -> Result<B256, ErrorObjectOwned> {
    let bytes = parse_hex(name, text, 32)?;
    if bytes.len() != 32 {
        return Err(invalid(format!(
            "{name}: {} bytes, a hash has 32",
            bytes.len()
        )));
    }
    Ok(B256::from_slice(&bytes))
}

/// Runs a short storage read on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, p2p::StorageError> + Send + 'static,
) -> Result<T, ErrorObjectOwned> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(storage_error)?
        .map_err(storage_error)
}
