//! A first block without writing a sidecar: `preconf-node publish`.
//!
//! Two halves, one on each side of the JSON-RPC:
//! - in the node, [`draft_commitment`] (`preconf_draftCommitment`) fills the unsigned
//!   commitment for the current slot from the node's own schedule and head: block number and
//!   parent hash from the head, timestamp now, `submissionWindowEnd`, coinbase and prover from
//!   the schedule, the chain's slasher;
//! - on the operator's side, [`run`] reads a tx list from a file, asks the node for that draft,
//!   and has the node sign and publish it (`preconf_publishCommitment` with the unsigned
//!   commitment, under a JWT minted from the node's secret), then prints the block number and
//!   hash.
//!
//! The node signs with its `preconfer_key_file`, so publishing works only on a node whose key is
//! the preconfer of the current slot; anything else is refused by the node's own validation
//! with the rule that failed (e.g. `wrong_signer`).

use std::path::PathBuf;
use std::time::Duration;

use alloy_rpc_types_engine::{Claims, JwtSecret};
use clap::Args;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClientBuilder};
use jsonrpsee::rpc_params;
use p2p::Lookahead;
use preconfirmation_types::{
    preconfirmation_hash, raw_tx_list_hash, Address, PreconfCommitment, Preconfirmation,
    WireMessage, B256, U256,
};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;
use crate::node::NodeContext;
use crate::rpc::{PublishedCommitment, DRAFT_COMMITMENT, NO_PEERS, PUBLISH_COMMITMENT};

/// Gas limit of a drafted block when the caller names none: Taiko's usual L2 block gas limit.
pub const DEFAULT_DRAFT_GAS_LIMIT: u64 = 30_000_000;

/// How often [`run`] drafts again when the current slot already has a block (then it waits for
/// the next slot, at most one slot each time).
const MAX_DRAFT_ATTEMPTS: u32 = 3;

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
        .schedule_for_slot(slot)
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

/// `preconf-node publish`: publish one block with a tx list through a running node.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The node's JSON-RPC URL.
    #[arg(long, default_value = "http://127.0.0.1:8552")]
    pub rpc: String,
    /// The node's JWT secret (`rpc.jwt_secret_file`, default `<data_dir>/jwt.hex`).
    #[arg(long)]
    pub jwt_secret: PathBuf,
    /// File with the block's raw tx list: its bytes, or `0x`-prefixed hex text.
    #[arg(long)]
    pub txlist: PathBuf,
    /// The block's gas limit.
    #[arg(long, default_value_t = DEFAULT_DRAFT_GAS_LIMIT)]
    pub gas_limit: u64,
}

/// Why `publish` failed, in words an operator acts on.
fn failed(what: &str, reason: impl std::fmt::Display) -> NodeError {
    NodeError::Publish(format!("{what}: {reason}"))
}

/// Reads a tx list file: raw bytes, or hex text with a `0x` prefix. A file larger than the hex
/// form of a tx list at the cap is refused before it is read.
fn read_txlist(path: &PathBuf) -> Result<Vec<u8>, NodeError> {
    let cap = 2 + 2 * preconfirmation_types::MAX_TXLIST_BYTES as u64 + 1;
    let len = std::fs::metadata(path)
        .map_err(|e| NodeError::io(path, e))?
        .len();
    if len > cap {
        return Err(failed(
            &path.display().to_string(),
            format!("{len} bytes: larger than any tx list (cap {cap} as hex)"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| NodeError::io(path, e))?;
    match bytes.strip_prefix(b"0x") {
        Some(hex_text) => hex::decode(hex_text.trim_ascii())
            .map_err(|e| failed(&format!("{}", path.display()), format!("bad hex: {e}"))),
        None => Ok(bytes),
    }
}

/// Runs `preconf-node publish`: prints `block N hash 0x… signer 0x…` on success.
pub async fn run(args: PublishArgs) -> Result<(), NodeError> {
    let txlist = read_txlist(&args.txlist)?;
    let secret_text = std::fs::read_to_string(&args.jwt_secret)
        .map_err(|e| NodeError::io(&args.jwt_secret, e))?;
    let secret = JwtSecret::from_hex(secret_text.trim())
        .map_err(|e| failed(&args.jwt_secret.display().to_string(), e))?;
    let iat = crate::schedule::unix_now();
    let token = secret
        .encode(&Claims { iat, exp: None })
        .map_err(|e| failed("JWT", e))?;
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| failed("JWT", e))?;
    headers.insert("authorization", bearer);
    let client = HttpClientBuilder::default()
        .set_headers(headers)
        .request_timeout(Duration::from_secs(30))
        .max_request_size(u32::MAX)
        .build(&args.rpc)
        .map_err(|e| failed(&args.rpc, e))?;
    let hash = raw_tx_list_hash(&txlist);
    let mut attempt = 0;
    let draft = loop {
        attempt += 1;
        let answer: Result<Draft, _> = client
            .request(DRAFT_COMMITMENT, rpc_params![hash, args.gas_limit])
            .await;
        match answer {
            Ok(draft) => break draft,
            Err(jsonrpsee::core::ClientError::Call(e)) if attempt < MAX_DRAFT_ATTEMPTS => {
                // One block per slot: when the slot is taken, the next one is at most one slot
                // away.
                let wait = e
                    .data()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                    .and_then(|d| d["wait_ms"].as_u64());
                match wait {
                    Some(ms) => tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await,
                    None => return Err(failed(DRAFT_COMMITMENT, e.message())),
                }
            }
            Err(e) => return Err(failed(DRAFT_COMMITMENT, e)),
        }
    };
    let txlist_hex = format!("0x{}", hex::encode(&txlist));
    let answer: Result<PublishedCommitment, _> = client
        .request(
            PUBLISH_COMMITMENT,
            rpc_params![draft.commitment.clone(), txlist_hex],
        )
        .await;
    let (published, note) = match answer {
        Ok(published) => (published, ""),
        // Stored and announced to nobody yet: peers fetch it when they connect and catch up.
        Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == NO_PEERS => {
            let stored = e
                .data()
                .and_then(|d| serde_json::from_str::<PublishedCommitment>(d.get()).ok())
                .ok_or_else(|| failed(PUBLISH_COMMITMENT, e.message()))?;
            (
                stored,
                "; stored, no peer connected yet: peers fetch it when they connect",
            )
        }
        Err(e) => {
            return Err(match e {
                jsonrpsee::core::ClientError::Call(e) => failed(
                    PUBLISH_COMMITMENT,
                    format!(
                        "{} (slot {} belongs to preconfer {}; the node signs with its \
                     preconfer_key_file)",
                        e.message(),
                        draft.slot,
                        draft.preconfer
                    ),
                ),
                other => failed(PUBLISH_COMMITMENT, other),
            })
        }
    };
    println!(
        "published block {} hash {} signer {} ({} tx-list bytes){note}",
        published.block_number,
        published.hash,
        published.signer,
        txlist.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, bytes: &[u8]) -> PathBuf {
        let path = dir.path().join("txlist");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_txlist_file_is_bytes_or_0x_hex() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_txlist(&file(&dir, b"\x01\x02zz")).unwrap(),
            b"\x01\x02zz"
        );
        assert_eq!(
            read_txlist(&file(&dir, b"0x0102ff\n")).unwrap(),
            [1, 2, 0xff]
        );
        let err = read_txlist(&file(&dir, b"0x01zz")).unwrap_err().to_string();
        assert!(err.contains("bad hex"), "{err}");
    }

    #[test]
    fn a_file_beyond_the_cap_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge");
        let huge = std::fs::File::create(&path).unwrap();
        huge.set_len(2 * preconfirmation_types::MAX_TXLIST_BYTES as u64 + 4)
            .unwrap();
        let err = read_txlist(&path).unwrap_err().to_string();
        assert!(err.contains("larger than any tx list"), "{err}");
    }
}
