//! The request/response methods: publish a commitment or a tx list, read commitments and
//! tx lists from the store.

use jsonrpsee::types::{ErrorObjectOwned, Params};
use preconfirmation_types::{
    preconfirmation_hash, recover_signer, sign, Address, PreconfCommitment, SignedCommitment,
    WireMessage, B256, PRECONF_COMMITMENT_SSZ_LEN, SIGNED_COMMITMENT_SSZ_LEN,
};
use serde::Serialize;
use tracing::debug;

use crate::http;
use crate::node::NodeContext;

use super::errors::*;

/// Result of `preconf_publishCommitment` (and `data` of its [`NO_PEERS`] error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
        block_number: http::u256_to_u64(signed.preconf().block_number),
        signer,
        commitment: to_hex(&signed.to_ssz()),
    };
    match node.sdk.publish(signed, txlist).await {
        Ok(_) => {
            debug!(block = receipt.block_number, hash = %receipt.hash, "published");
            Ok(receipt)
        }
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
        serde_json::Value::String(s) => {
            let hash = parse_hash("hash", &s)?;
            blocking(move || storage.commitment_by_hash(&hash)).await?
        }
        _ => {
            return Err(invalid(
                "expected a block number or a 0x-prefixed 32-byte preconfirmation hash",
            ))
        }
    };
    Ok(found.map(|c| to_hex(&c.to_ssz())))
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
