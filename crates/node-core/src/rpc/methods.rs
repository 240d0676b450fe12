//! The request/response methods: publish a commitment or a tx list, read commitments and
//! tx lists from the store.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use p2p::P2pSdkError;
use preconfirmation_net::NetError;
use preconfirmation_types::{
    preconfirmation_hash, recover_signer, sign, Address, PreconfCommitment, SignedCommitment,
    WireMessage, B256, PRECONF_COMMITMENT_SSZ_LEN, SIGNED_COMMITMENT_SSZ_LEN,
};
use serde::Serialize;
use tracing::info;

use crate::context::NodeContext;
use crate::status;

use super::errors::*;

/// Result of `preconf_publishCommitment` (and `data` of its [`NO_PEERS`] error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PublishedCommitment {
    /// `preconfirmation_hash` of the commitment.
    pub hash: B256,
    /// Its block number.
    pub block_number: u64,
    /// The recovered signer (the node's preconfer address when the node signed).
    pub signer: Address,
    /// SSZ hex of the `SignedCommitment` as published (with the node's signature when the
    /// node signed it).
    pub commitment: String,
}

pub(super) async fn publish_commitment(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<PublishedCommitment, ErrorObjectOwned> {
    let mut seq = params.sequence();
    let commitment_hex: String = seq.next()?;
    let txlist_hex: Option<String> = seq.optional_next()?;
    let chain = node.sdk.config().chain;
    let bytes = parse_hex("commitment", &commitment_hex, SIGNED_COMMITMENT_SSZ_LEN)?;
    let signed = match bytes.len() {
        SIGNED_COMMITMENT_SSZ_LEN => SignedCommitment::decode_capped(&bytes, &chain.limits)
            .map_err(|e| invalid(format!("commitment: {e}")))?,
        PRECONF_COMMITMENT_SSZ_LEN => {
            let key = node.preconfer.as_deref().ok_or_else(|| {
                error(
                    NO_PRECONFER_KEY,
                    "an unsigned commitment needs a preconfer key (preconfer_key_file)",
                    None::<()>,
                )
            })?;
            let unsigned = PreconfCommitment::decode_capped(&bytes, &chain.limits)
                .map_err(|e| invalid(format!("commitment: {e}")))?;
            sign(key, &chain.domain, unsigned)
        }
        other => {
            return Err(invalid(format!(
            "commitment: {other} bytes; expected {SIGNED_COMMITMENT_SSZ_LEN} (SignedCommitment) \
                 or {PRECONF_COMMITMENT_SSZ_LEN} (PreconfCommitment, signed by the node)"
        )))
        }
    };
    let txlist = txlist_hex
        .map(|h| parse_hex("txlist", &h, chain.limits.max_txlist_bytes))
        .transpose()?;
    // A signature that does not recover is refused by the SDK with the same reason; checking
    // here only spares the queue.
    let signer = recover_signer(&chain.domain, &signed).map_err(|e| {
        error(
            VALIDATION_REJECTED,
            format!("validation failed: bad signature: {e}"),
            Some(Reason {
                reason: "bad_signature",
            }),
        )
    })?;
    let receipt = PublishedCommitment {
        hash: preconfirmation_hash(signed.preconf()),
        block_number: status::u256_to_u64(signed.preconf().block_number),
        signer,
        commitment: to_hex(&signed.to_ssz()),
    };
    // 0 when the commitment comes without its tx list (an EOP, or a list published alone).
    let txlist_bytes = txlist.as_ref().map_or(0, Vec::len);
    let outcome = node.sdk.publish(signed, txlist).await;
    // `NoPeers`: stored, and peers fetch it on catch-up; the caller hears `NO_PEERS`.
    let stored_only = matches!(outcome, Err(P2pSdkError::Network(NetError::NoPeers)));
    if outcome.is_ok() || stored_only {
        let what = if stored_only {
            "published commitment (stored; no peer subscribed yet)"
        } else {
            "published commitment"
        };
        info!(
            block = receipt.block_number,
            hash = %receipt.hash,
            txlist_bytes,
            signer = %receipt.signer,
            "{what}"
        );
    }
    match outcome {
        Ok(_) => Ok(receipt),
        Err(e) => Err(sdk_error(e, Some(receipt))),
    }
}

pub(super) async fn publish_raw_txlist(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<B256, ErrorObjectOwned> {
    let txlist_hex: String = params.one()?;
    let limit = node.sdk.config().chain.limits.max_txlist_bytes;
    let txlist = parse_hex("txlist", &txlist_hex, limit)?;
    let hash = preconfirmation_types::raw_tx_list_hash(&txlist);
    match node.sdk.publish_raw_txlist(txlist).await {
        Ok(_) => Ok(hash),
        Err(e) => Err(sdk_error(e, Some(hash))),
    }
}

/// `preconf_draftCommitment(raw_tx_list_hash, gas_limit?)`: the unsigned commitment for the
/// current slot (see [`crate::publish`]).
pub(super) fn draft_commitment(
    params: Params<'_>,
    node: &NodeContext,
) -> Result<crate::publish::Draft, ErrorObjectOwned> {
    use crate::publish::DraftError;
    let mut seq = params.sequence();
    let hash_text: String = seq.next()?;
    let hash = parse_hash("raw_tx_list_hash", &hash_text)?;
    let gas_limit: Option<u64> = seq.optional_next()?;
    let gas_limit = gas_limit.unwrap_or(crate::publish::DEFAULT_DRAFT_GAS_LIMIT);
    let now = crate::clock::unix_now();
    crate::publish::draft_commitment(node, hash, gas_limit, now).map_err(|e| {
        let data = match &e {
            DraftError::SlotTaken { wait_ms, .. } => {
                serde_json::json!({"reason": "slot_taken", "wait_ms": wait_ms})
            }
            DraftError::ScheduleUnknown { .. } => serde_json::json!({"reason": "schedule_unknown"}),
            DraftError::BeforeGenesis => serde_json::json!({"reason": "before_genesis"}),
        };
        error(PENDING, e.to_string(), Some(data))
    })
}

pub(super) async fn get_commitment(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<Option<String>, ErrorObjectOwned> {
    let key: serde_json::Value = params.one()?;
    let storage = node.sdk.storage();
    let found = match key {
        serde_json::Value::Number(n) => {
            let number = n
                .as_u64()
                .ok_or_else(|| invalid("block number must be a non-negative integer"))?;
            blocking(move || storage.commitment_by_number(number)).await?
        }
        // 66 characters: a hash. Anything shorter is an Ethereum hex quantity ("0x1"), read as
        // a block number, never as a hash.
        serde_json::Value::String(s) if s.len() == 2 + 2 * 32 => {
            let hash = parse_hash("hash", &s)?;
            blocking(move || storage.commitment_by_hash(&hash)).await?
        }
        serde_json::Value::String(s) => {
            let number = parse_quantity(&s).ok_or_else(|| {
                invalid(format!(
                    "{s:?}: expected a block number (integer or 0x hex quantity) or a \
                     0x-prefixed 32-byte preconfirmation hash"
                ))
            })?;
            blocking(move || storage.commitment_by_number(number)).await?
        }
        _ => {
            return Err(invalid(
                "expected a block number or a 0x-prefixed 32-byte preconfirmation hash",
            ))
        }
    };
    Ok(found.map(|c| to_hex(&c.to_ssz())))
}

/// An Ethereum JSON-RPC hex quantity (`0x0`, `0x1f`): `0x` and 1–16 hex digits, no leading
/// zero but for `0x0` itself.
fn parse_quantity(text: &str) -> Option<u64> {
    let digits = text.strip_prefix("0x")?;
    if digits.is_empty() || digits.len() > 16 || (digits.len() > 1 && digits.starts_with('0')) {
        return None;
    }
    u64::from_str_radix(digits, 16).ok()
}

pub(super) async fn get_raw_txlist(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<Option<String>, ErrorObjectOwned> {
    let text: String = params.one()?;
    let hash = parse_hash("hash", &text)?;
    let storage = node.sdk.storage();
    let found = blocking(move || storage.txlist(&hash)).await?;
    Ok(found.map(|t| to_hex(&t)))
}

#[cfg(test)]
mod tests {
    use super::parse_quantity;

    #[test]
    fn quantities_are_hex_numbers() {
        assert_eq!(parse_quantity("0x0"), Some(0));
        assert_eq!(parse_quantity("0x1"), Some(1));
        assert_eq!(parse_quantity("0x1f"), Some(31));
        assert_eq!(parse_quantity("0xffffffffffffffff"), Some(u64::MAX));
        for bad in [
            "0x",
            "1",
            "0x01",
            "0xg",
            "0x10000000000000000",
            "-0x1",
            "0X1",
        ] {
            assert_eq!(parse_quantity(bad), None, "{bad}");
        }
    }
}
