//! Tx-list checks (§3.4, §11): the chain's cap and `keccak256(txlist) == rawTxListHash`, for
//! gossip, fetches and local publish alike.

use preconfirmation_types::{raw_tx_list_hash, ChainLimits, RawTxListGossip, WireMessage, B256};

use super::outcome::RejectReason;

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
pub(crate) fn check_txlist(
    hash: &B256,
    txlist: &[u8],
    limits: &ChainLimits,
) -> Result<(), RejectReason> {
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
