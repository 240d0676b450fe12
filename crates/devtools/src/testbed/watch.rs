//! The controller's view of the nodes: their JSON-RPC clients, the `commitments` and
//! `rawTxListHashes` subscriptions that time each acceptance ([`Observations`]), peer counts,
//! catch-up and the bytes their links carried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::core::client::{ClientT, Subscription, SubscriptionClientT};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use parking_lot::Mutex;
use preconf_node_core::rpc;
use preconfirmation_types::B256;
use serde_json::Value;
use tracing::warn;

use super::fleet::{self, Fleet};
use super::netns;
use crate::error::ToolError;

/// Connection attempts of the controller's WebSocket to one node, 500 ms apart.
const WS_CONNECT_ATTEMPTS: u32 = 10;

/// When each node accepted each commitment and tx list (by hash).
#[derive(Debug, Default)]
pub(super) struct Observations {
    pub(super) commitments: HashMap<B256, HashMap<usize, Instant>>,
    pub(super) txlists: HashMap<B256, HashMap<usize, Instant>>,
    /// Commitment hash → its tx list's hash, filled before each publish: a commitment that
    /// arrives by catch-up with its tx list stored alongside announces the tx list only as
    /// `txlist_available` (no `rawTxListHashes` notification).
    pub(super) txlist_of: HashMap<B256, B256>,
}

impl Observations {
    /// When `node` accepted commitment `hash`.
    pub(super) fn commitment_at(&self, hash: &B256, node: usize) -> Option<Instant> {
        self.commitments.get(hash)?.get(&node).copied()
    }

    /// When `node` stored tx list `hash`.
    pub(super) fn txlist_at(&self, hash: &B256, node: usize) -> Option<Instant> {
        self.txlists.get(hash)?.get(&node).copied()
    }
}

pub(super) type Shared = Arc<Mutex<Observations>>;

/// What node `index`'s data link has counted (its uplink: `tx`, `tx_packets`); zero when it
/// cannot be read.
pub(super) fn uplink(fleet: &Fleet, index: usize) -> netns::LinkBytes {
    fleet
        .nodes
        .iter()
        .find(|n| n.index == index)
        .and_then(|n| netns::link_bytes(n.pid(), "eth0"))
        .unwrap_or_default()
}

/// Bytes all nodes but `except` received on the data network.
pub(super) fn data_rx_bytes(fleet: &Fleet, except: Option<usize>) -> u64 {
    fleet
        .nodes
        .iter()
        .filter(|n| Some(n.index) != except)
        .filter_map(|n| netns::link_bytes(n.pid(), "eth0"))
        .map(|b| b.rx)
        .sum()
}

/// An HTTP JSON-RPC client of `node`, once its RPC answers (bounded by `timeout`); an error
/// at once, with the end of its log, if the process exits first (e.g. a bad `--set`).
pub(super) async fn rpc_client(
    node: &mut fleet::NodeProcess,
    timeout: Duration,
) -> Result<HttpClient, ToolError> {
    let url = format!("http://{}", node.rpc_addr());
    let client = HttpClientBuilder::default()
        .max_request_size(16 << 20)
        .request_timeout(Duration::from_secs(10))
        .build(&url)
        .map_err(|e| ToolError::Testbed(format!("rpc client {url}: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        match client.request::<Value, _>(rpc::HEAD, rpc_params![]).await {
            Ok(_) => return Ok(client),
            Err(e) if Instant::now() >= deadline => {
                return Err(ToolError::Testbed(format!(
                    "node {} RPC did not answer within {timeout:?}: {e}",
                    node.index
                )))
            }
            Err(_) => {
                if let Some(reason) = node.exited() {
                    return Err(ToolError::Testbed(reason));
                }
                tokio::time::sleep(Duration::from_millis(50)).await
            }
        }
    }
}

/// Subscribes to `node`'s commitments and tx-list hashes; each arrival is recorded with the
/// time it reached the controller. The client lives as long as the returned value.
pub(super) async fn subscribe(
    node: &fleet::NodeProcess,
    observations: Shared,
) -> Result<WsClient, ToolError> {
    let url = format!("ws://{}", node.rpc_addr());
    // Bounded retries: with many namespaces starting at once, a first connection can fail
    // before the neighbour entry settles.
    let mut attempt = 0;
    let client = loop {
        match WsClientBuilder::default().build(&url).await {
            Ok(client) => break client,
            Err(e) if attempt >= WS_CONNECT_ATTEMPTS => {
                return Err(ToolError::Testbed(format!("websocket {url}: {e}")))
            }
            Err(e) => {
                attempt += 1;
                warn!(%url, error = %e, attempt, "websocket connect failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let index = node.index;
    for (kind, is_txlist) in [("commitments", false), ("rawTxListHashes", true)] {
        let mut sub: Subscription<Value> = client
            .subscribe(rpc::SUBSCRIBE, rpc_params![kind], rpc::UNSUBSCRIBE)
            .await
            .map_err(|e| ToolError::Testbed(format!("subscribe {kind} on node {index}: {e}")))?;
        let observations = observations.clone();
        tokio::spawn(async move {
            while let Some(Ok(note)) = sub.next().await {
                let at = Instant::now();
                let Some(hash) = note["hash"].as_str().and_then(|h| h.parse::<B256>().ok()) else {
                    continue;
                };
                let mut obs = observations.lock();
                if is_txlist {
                    obs.txlists
                        .entry(hash)
                        .or_default()
                        .entry(index)
                        .or_insert(at);
                    continue;
                }
                obs.commitments
                    .entry(hash)
                    .or_default()
                    .entry(index)
                    .or_insert(at);
                if note["txlist_available"] == Value::Bool(true) {
                    if let Some(txlist) = obs.txlist_of.get(&hash).copied() {
                        obs.txlists
                            .entry(txlist)
                            .or_default()
                            .entry(index)
                            .or_insert(at);
                    }
                }
            }
        });
    }
    Ok(client)
}

/// Waits until every node has at least `want` peers; returns the fewest any node has then.
pub(super) async fn wait_for_peers(
    clients: &[HttpClient],
    want: usize,
    timeout: Duration,
    fleet: &mut Fleet,
) -> Result<usize, ToolError> {
    let deadline = Instant::now() + timeout;
    loop {
        fleet.check_alive()?;
        let mut fewest = usize::MAX;
        for client in clients {
            let status: Value = client
                .request(rpc::STATUS, rpc_params![])
                .await
                .map_err(|e| ToolError::Testbed(format!("status: {e}")))?;
            fewest = fewest.min(status["peers"]["count"].as_u64().unwrap_or(0) as usize);
        }
        if fewest >= want {
            return Ok(fewest);
        }
        if Instant::now() >= deadline {
            return Err(ToolError::Testbed(format!(
                "discovery: a node still has {fewest} peers after {timeout:?} (want {want})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Whether the late joiner reaches head `number` with `txlists` tx lists and none owed before
/// `deadline`.
pub(super) async fn wait_caught_up(
    client: &HttpClient,
    number: u64,
    txlists: u64,
    deadline: Instant,
) -> bool {
    loop {
        if let Ok(status) = client.request::<Value, _>(rpc::STATUS, rpc_params![]).await {
            let head = status["head"]["block_number"].as_u64().unwrap_or(0);
            let stored = status["storage"]["txlists"].as_u64().unwrap_or(0);
            let owed = status["pending"]["missing_txlists"].as_u64().unwrap_or(1);
            if head >= number && stored >= txlists && owed == 0 {
                return true;
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
