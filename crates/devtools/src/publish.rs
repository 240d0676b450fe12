//! `preconf-node publish`: the operator's half of a first block without writing a sidecar.
//!
//! [`run`] reads a tx list from a file, asks the node for the draft of the current slot's
//! commitment (`preconf_draftCommitment`, see [`preconf_node_core::publish`]), and has the node
//! sign and publish it (`preconf_publishCommitment` with the unsigned commitment, under a JWT
//! minted from the node's secret), then prints the block number and hash.

use std::path::PathBuf;
use std::time::Duration;

use alloy_rpc_types_engine::{Claims, JwtSecret};
use clap::Args;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClientBuilder};
use jsonrpsee::rpc_params;
use preconf_node_core::publish::{Draft, DEFAULT_DRAFT_GAS_LIMIT};
use preconf_node_core::rpc::{PublishedCommitment, DRAFT_COMMITMENT, NO_PEERS, PUBLISH_COMMITMENT};
use preconfirmation_types::raw_tx_list_hash;

use crate::error::ToolError;

/// How often [`run`] drafts again when the current slot already has a block (then it waits for
/// the next slot, at most one slot each time).
const MAX_DRAFT_ATTEMPTS: u32 = 3;

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
fn failed(what: &str, reason: impl std::fmt::Display) -> ToolError {
    ToolError::Publish(format!("{what}: {reason}"))
}

/// Reads a tx list file: raw bytes, or hex text with a `0x` prefix. A file larger than the hex
/// form of a tx list at the cap is refused before it is read.
fn read_txlist(path: &PathBuf) -> Result<Vec<u8>, ToolError> {
    let cap = 2 + 2 * preconfirmation_types::MAX_TXLIST_BYTES as u64 + 1;
    let len = std::fs::metadata(path)
        .map_err(|e| ToolError::io(path, e))?
        .len();
    if len > cap {
        return Err(failed(
            &path.display().to_string(),
            format!("{len} bytes: larger than any tx list (cap {cap} as hex)"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| ToolError::io(path, e))?;
    match bytes.strip_prefix(b"0x") {
        Some(hex_text) => hex::decode(hex_text.trim_ascii())
            .map_err(|e| failed(&format!("{}", path.display()), format!("bad hex: {e}"))),
        None => Ok(bytes),
    }
}

/// Runs `preconf-node publish`: prints `block N hash 0x… signer 0x…` on success.
pub async fn run(args: PublishArgs) -> Result<(), ToolError> {
    let txlist = read_txlist(&args.txlist)?;
    let secret_text = std::fs::read_to_string(&args.jwt_secret)
        .map_err(|e| ToolError::io(&args.jwt_secret, e))?;
    let secret = JwtSecret::from_hex(secret_text.trim())
        .map_err(|e| failed(&args.jwt_secret.display().to_string(), e))?;
    let iat = preconf_node_core::clock::unix_now();
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
