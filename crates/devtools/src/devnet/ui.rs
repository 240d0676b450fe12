//! `preconf-node devnet --ui`: one live page for the whole devnet.
//!
//! `GET /` is an embedded page; `GET /events` streams a [`DevnetSnapshot`] every
//! [`DEVNET_UI_REFRESH`] (Server-Sent Events); `GET /snapshot` answers one as JSON. The page
//! draws every node's head over time (who is behind, who caught up), the preconfer rotation of
//! the latest blocks and a histogram of publish → accept gossip latency.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use parking_lot::Mutex;
use preconf_node_core::error::NodeError;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::Observed;
use crate::error::ToolError;

/// How often the devnet page gets a snapshot.
pub(crate) const DEVNET_UI_REFRESH: Duration = Duration::from_millis(500);
/// Upper bounds (ms) of the latency histogram buckets; the last bucket is open-ended.
const LATENCY_BUCKETS_MS: [f64; 10] = [
    2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
];

const DEVNET_HTML: &str = include_str!("devnet.html");

/// One node in a snapshot.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DevnetNodeView {
    index: usize,
    late_joiner: bool,
    head: u64,
    sync: p2p::HeadSyncStatus,
    missing_txlists: usize,
}

/// One latency bucket: count of samples `≤ le_ms` and above the previous bound (`null` = +∞).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Bucket {
    le_ms: Option<f64>,
    count: u64,
}

/// Everything the devnet page shows at one moment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DevnetSnapshot {
    time_ms: u64,
    blocks_total: u64,
    blocks_published: u64,
    preconfers: u32,
    nodes: Vec<DevnetNodeView>,
    /// (block number, preconfer index), oldest first.
    rotation: Vec<(u64, usize)>,
    latency_histogram: Vec<Bucket>,
    latency_samples: usize,
}

#[derive(Clone)]
struct DevnetUiState {
    observed: Arc<Mutex<Observed>>,
    blocks_total: u64,
    preconfers: u32,
    shutdown: CancellationToken,
}

fn snapshot(state: &DevnetUiState) -> DevnetSnapshot {
    let observed = state.observed.lock();
    let mut histogram: Vec<Bucket> = LATENCY_BUCKETS_MS
        .iter()
        .map(|&le| Bucket {
            le_ms: Some(le),
            count: 0,
        })
        .chain(std::iter::once(Bucket {
            le_ms: None,
            count: 0,
        }))
        .collect();
    for &ms in &observed.latencies_ms {
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|&le| ms <= le)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        if let Some(bucket) = histogram.get_mut(i) {
            bucket.count += 1;
        }
    }
    let nodes = observed
        .nodes
        .iter()
        .map(|(index, late_joiner, sdk)| {
            let s = sdk.status();
            DevnetNodeView {
                index: *index,
                late_joiner: *late_joiner,
                head: s.head_block_number,
                sync: s.sync,
                missing_txlists: s.missing_txlists,
            }
        })
        .collect();
    DevnetSnapshot {
        time_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        blocks_total: state.blocks_total,
        blocks_published: observed.published_blocks,
        preconfers: state.preconfers,
        nodes,
        rotation: observed.rotation.iter().copied().collect(),
        latency_histogram: histogram,
        latency_samples: observed.latencies_ms.len(),
    }
}

async fn page() -> Response {
    Html(DEVNET_HTML).into_response()
}

async fn snapshot_json(State(state): State<DevnetUiState>) -> Response {
    Json(snapshot(&state)).into_response()
}

async fn events(
    State(state): State<DevnetUiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shutdown = state.shutdown.clone();
    let ticks = futures::stream::unfold(
        (state, tokio::time::interval(DEVNET_UI_REFRESH)),
        |(state, mut interval)| async move {
            interval.tick().await;
            let event = Event::default()
                .event("snapshot")
                .json_data(snapshot(&state))
                .unwrap_or_default();
            Some((Ok(event), (state, interval)))
        },
    );
    Sse::new(ticks.take_until(shutdown.cancelled_owned())).keep_alive(KeepAlive::default())
}

/// Serves the devnet page on `addr` until `shutdown`; returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    observed: Arc<Mutex<Observed>>,
    blocks_total: u64,
    preconfers: u32,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), ToolError> {
    let error = |e: std::io::Error| NodeError::Server {
        server: "devnet ui",
        addr,
        reason: e.to_string(),
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(error)?;
    let bound = listener.local_addr().map_err(error)?;
    let state = DevnetUiState {
        observed,
        blocks_total,
        preconfers,
        shutdown: shutdown.clone(),
    };
    let app = Router::new()
        .route("/", get(page))
        .route("/snapshot", get(snapshot_json))
        .route("/events", get(events))
        .with_state(state);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            warn!(error = %e, "devnet UI server failed");
        }
    });
    Ok((bound, task))
}
