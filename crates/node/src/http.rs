//! The HTTP server: `/metrics`, `/health`, `/status` and the operator page.
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text (`text/plain; version=0.0.4`); 503 when this process has no recorder |
//! | `GET /health` | 200 `ok` once the node listens; 503 `starting` before and while stopping, 503 `storage failing: …` while store writes fail |
//! | `GET /status` | [`NodeStatus`] as JSON (the same document as the `preconf_status` RPC) |
//! | `GET /`, `/ui/*` | the operator page and its live feed ([`crate::ui`]) |
//!
//! The server binds `http.addr` (port 0 picks a free port) and stops, finishing requests in
//! flight, when the node's shutdown token is cancelled.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use p2p::{HeadSyncStatus, SdkStorage, StorageStats};
use preconfirmation_types::{secret_key_to_address, Address, B256, U256};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, info, warn, Instrument};

use crate::error::NodeError;
use crate::node::NodeContext;
use crate::schedule::{unix_now, ScheduleStatus};

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Binds `context.config.http.addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    context: NodeContext,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let addr = context.config.http.addr;
    let server_error = |reason: String| NodeError::Server {
        server: "http",
        addr,
        reason,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| server_error(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| server_error(e.to_string()))?;
    let app = router(context, shutdown.clone());
    let task = tokio::spawn(
        async move {
            info!(addr = %bound, "HTTP server listening");
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                warn!(error = %e, "HTTP server failed");
            }
            info!("HTTP server stopped");
        }
        .instrument(tracing::info_span!("http", addr = %bound)),
    );
    Ok((bound, task))
}

/// The routes. New pages (an operator page at `GET /`, …) are added here.
fn router(context: NodeContext, shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/status", get(status))
        .with_state(context.clone())
        .merge(crate::ui::routes(context, shutdown))
}

async fn metrics(State(context): State<NodeContext>) -> Response {
    match &context.prometheus {
        Some(handle) => {
            let text = handle.render();
            ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

async fn health(State(context): State<NodeContext>) -> Response {
    if !context.ready.load(Ordering::Acquire) {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    }
    match context.storage_health.failure() {
        None => (StatusCode::OK, "ok").into_response(),
        Some(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("storage failing: {e}"),
        )
            .into_response(),
    }
}

async fn status(State(context): State<NodeContext>) -> Response {
    match status_json(&context)
        .instrument(debug_span!("http_status"))
        .await
    {
        Ok(status) => Json(status).into_response(),
        Err(e) => {
            warn!(error = %e, "status failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}

/// What `/status` and `preconf_status` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// This node's discv5 ENR (`enr:-…`, base64), to give other nodes as a bootnode; `null`
    /// when discovery is off.
    pub enr: Option<String>,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: PeersStatus,
    /// The local preconfirmation head.
    pub head: HeadStatus,
    /// Catch-up state: `{"state": "idle" | "live"}` or
    /// `{"state": "syncing", "local": n, "target": m}`.
    pub sync: HeadSyncStatus,
    /// Sizes of the SDK's buffers.
    pub pending: PendingStatus,
    /// Sizes of the store.
    pub storage: StorageStats,
    /// `null` while store writes succeed, else the last write error (the node is unhealthy).
    pub storage_error: Option<String>,
    /// Store write failures since start.
    pub storage_write_failures: u64,
    /// Version of `preconf-node`.
    pub version: &'static str,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Address of the configured preconfer key, if one is configured (never the key).
    pub preconfer: Option<Address>,
    /// The preconfer schedule: its source, the current and next window's preconfer and, read
    /// from L1, the L1 head it was read at.
    pub schedule: ScheduleStatus,
}

/// Connected peers, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeersStatus {
    /// How many.
    pub count: usize,
    /// Each with its score.
    pub list: Vec<PeerStatus>,
}

/// One connected peer, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerStatus {
    /// Peer id.
    pub peer_id: String,
    /// Gossipsub score (topic scores + application score).
    pub score: f64,
    /// `"extended"` when it advertises this project's extensions, else `"strict"`: requests
    /// to it are then paced as to the Taiko reference (8 per protocol per 10 s).
    pub profile: &'static str,
    /// Round-trip time of its last answered ping, in milliseconds.
    pub ping_rtt_ms: Option<f64>,
    /// Response bytes served to it on its current connection(s).
    pub served_bytes: u64,
}

/// The local head, for [`NodeStatus`] and `preconf_head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeadStatus {
    /// Highest preconfirmed block number (0 before the first commitment).
    pub block_number: u64,
    /// `preconfirmation_hash` of the head commitment, when there is one.
    pub hash: Option<B256>,
    /// `submissionWindowEnd` of the head commitment (0 at the anchor).
    pub window_end: u64,
}

/// Buffer sizes, for [`NodeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PendingStatus {
    /// Commitments waiting for their parent.
    pub pending_parent: usize,
    /// Commitments waiting for their schedule.
    pub pending_schedule: usize,
    /// Tx lists not yet referenced by an accepted commitment.
    pub orphan_txlists: usize,
    /// Accepted commitments whose tx list is still missing.
    pub missing_txlists: usize,
}

/// A `U256` that validation bounds to `u64` (window ends are schedule timestamps) as `u64`;
/// saturates rather than fails should that ever not hold.
pub(crate) fn u256_to_u64(value: U256) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The head as the SDK reports it now.
pub(crate) fn head_status(context: &NodeContext) -> HeadStatus {
    let status = context.sdk.status();
    HeadStatus {
        block_number: status.head_block_number,
        hash: status.head_hash,
        window_end: u256_to_u64(status.head_window_end),
    }
}

/// The node's status: identity, peers, head, sync, buffers, storage, version, uptime. Shared by
/// `GET /status` and the `preconf_status` RPC.
pub(crate) async fn status_json(context: &NodeContext) -> Result<NodeStatus, NodeError> {
    let sdk_status = context.sdk.status();
    let listen_addrs = context
        .sdk
        .listen_addrs()
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    let list: Vec<PeerStatus> = context
        .sdk
        .peers()
        .await?
        .into_iter()
        .map(|p| PeerStatus {
            peer_id: p.peer_id.to_string(),
            score: p.score,
            profile: if p.extended { "extended" } else { "strict" },
            ping_rtt_ms: p.ping_rtt.map(|d| d.as_secs_f64() * 1e3),
            served_bytes: p.served_bytes,
        })
        .collect();
    let store = context.store.clone();
    let storage = tokio::task::spawn_blocking(move || store.stats())
        .await
        .map_err(|e| NodeError::Storage(format!("stats task failed: {e}")))?
        .map_err(NodeError::storage)?;
    Ok(NodeStatus {
        peer_id: context.sdk.local_peer_id().to_string(),
        enr: context.sdk.network().local_enr().map(|e| e.to_base64()),
        listen_addrs,
        peers: PeersStatus {
            count: list.len(),
            list,
        },
        head: HeadStatus {
            block_number: sdk_status.head_block_number,
            hash: sdk_status.head_hash,
            window_end: u256_to_u64(sdk_status.head_window_end),
        },
        sync: sdk_status.sync,
        pending: PendingStatus {
            pending_parent: sdk_status.pending_parent,
            pending_schedule: sdk_status.pending_schedule,
            orphan_txlists: sdk_status.orphan_txlists,
            missing_txlists: sdk_status.missing_txlists,
        },
        storage,
        storage_error: context.storage_health.failure(),
        storage_write_failures: context.storage_health.failures(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: context.started.elapsed().as_secs(),
        preconfer: context.preconfer.as_deref().map(secret_key_to_address),
        schedule: context.schedule.status(unix_now()),
    })
}
