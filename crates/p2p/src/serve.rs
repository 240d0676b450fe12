//! The req/resp server: answers peers' inbound requests (§10–§11, PROTOCOL-EXT.md) from the
//! storage the SDK writes, so a node serves what it accepted and published. The manager runs
//! each answer on the blocking pool, so a slow disk never stalls the SDK's single writer
//! (the core) or the network driver.

use libp2p::PeerId;
use preconfirmation_net::InboundRequest;
use preconfirmation_types::{
    ChainLimits, GetCommitmentsByNumberResponse, GetRawTxListResponse, GetRawTxListsResponse,
    PreconfHead, ReqRespKind, B256, MAX_RAW_TXLISTS_RESPONSE_BYTES,
};
use tracing::{trace, warn};

use crate::metrics;
use crate::storage::SdkStorage;

/// Answers an inbound request from `storage` (§10–§11); `head` is the local head. Runs on its
/// own task so a slow disk never stalls the SDK or the network driver.
pub(crate) fn serve_inbound(
    request: InboundRequest,
    storage: &dyn SdkStorage,
    head: PreconfHead,
    limits: &ChainLimits,
) {
    match request {
        InboundRequest::GetHead { responder, .. } => {
            metrics::answer(ReqRespKind::GetHead, "inbound", "served");
            responder.respond(head);
        }
        InboundRequest::GetCommitmentsByNumber {
            peer,
            request,
            responder,
        } => {
            let kind = ReqRespKind::GetCommitmentsByNumber;
            let max = (request.max_count as usize).min(limits.max_commitments_per_response);
            let commitments = match u64::try_from(request.start_block_number) {
                Ok(start) => storage.commitments_from(start, max).unwrap_or_else(|e| {
                    warn!(%peer, error = %e, "reading commitments failed");
                    Vec::new()
                }),
                Err(_) => Vec::new(),
            };
            let outcome = if commitments.is_empty() {
                "empty"
            } else {
                "served"
            };
            metrics::answer(kind, "inbound", outcome);
            match GetCommitmentsByNumberResponse::new(commitments) {
                Ok(response) => responder.respond(response),
                Err(e) => warn!(%peer, error = %e, "response above the cap"),
            }
        }
        InboundRequest::GetRawTxList {
            peer,
            request,
            responder,
        } => {
            let kind = ReqRespKind::GetRawTxList;
            let hash = request.raw_tx_list_hash;
            let response = stored_txlist(storage, &peer, hash);
            let outcome = if response.txlist.is_empty() {
                "not_found"
            } else {
                "served"
            };
            metrics::answer(kind, "inbound", outcome);
            responder.respond(response);
        }
        InboundRequest::GetRawTxLists {
            peer,
            request,
            responder,
        } => {
            // PROTOCOL-EXT.md: answers in request order, stopping before the body would
            // exceed the byte cap; a hash we do not have is echoed with an empty tx list.
            let kind = ReqRespKind::GetRawTxLists;
            let mut answers = Vec::new();
            let mut body_len = GetRawTxListsResponse::encoded_len_with([]);
            for hash in request.raw_tx_list_hashes.iter() {
                let answer = stored_txlist(storage, &peer, *hash);
                let entry_len = GetRawTxListsResponse::encoded_len_with([answer.txlist.len()])
                    - GetRawTxListsResponse::encoded_len_with([]);
                if body_len + entry_len > MAX_RAW_TXLISTS_RESPONSE_BYTES {
                    break;
                }
                body_len += entry_len;
                answers.push(answer);
            }
            metrics::answer(kind, "inbound", "served");
            match GetRawTxListsResponse::new(answers) {
                Ok(response) => responder.respond(response),
                Err(e) => warn!(%peer, error = %e, "response above the cap"),
            }
        }
    }
}

/// The stored tx list `hash` as a §11.2 answer; not found is the hash echoed with an empty tx
/// list, as the reference answers. Not re-hashed: every path into storage checked the bytes
/// against their hash before writing them (gossip, fetches, catch-up, local publish), and
/// redb checksums the pages they sit in, so serving costs a read and a copy, not a keccak of
/// up to 2 MiB per request (§11 "verify before serving" is done once, at store time).
fn stored_txlist(storage: &dyn SdkStorage, peer: &PeerId, hash: B256) -> GetRawTxListResponse {
    storage
        .txlist(&hash)
        .ok()
        .flatten()
        .and_then(|bytes| GetRawTxListResponse::from_verified(hash, bytes.to_vec()).ok())
        .unwrap_or_else(|| {
            trace!(%peer, %hash, "tx list not found");
            GetRawTxListResponse {
                raw_tx_list_hash: hash,
                ..Default::default()
            }
        })
}
