//! The operator page: `GET /` serves one self-contained HTML page (embedded in the binary, no
//! CDN, no build step) that follows the node live over Server-Sent Events.
//!
//! | path | answer |
//! |---|---|
//! | `GET /` | the page |
//! | `GET /ui/snapshot` | one [`UiSnapshot`] as JSON |
//! | `GET /ui/events` | `text/event-stream`: a `snapshot` event every [`UI_REFRESH`] |
//!
//! A snapshot holds the `/status` document, peers with score and connection direction, every
//! `preconf_*` counter and gauge this process exports (the page turns counters into rates per
//! topic, req/resp outcomes and rejections by reason), and the most recent equivocations and
//! bans, which a collector task records from the SDK's events.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::unix_ms;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use p2p::SdkEvent;
use parking_lot::Mutex;
use preconfirmation_types::{preconfirmation_hash, Address, B256};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::context::NodeContext;
use crate::status::{status_json, NodeStatus};

/// How often the live feed sends a snapshot.
pub const UI_REFRESH: Duration = Duration::from_secs(1);
/// Most recent equivocations and bans kept for the page.
pub const UI_RECENT_EVENTS: usize = 32;

const INDEX_HTML: &str = include_str!("ui/index.html");

/// One slashing-evidence event, for the page.
#[derive(Debug, Clone, Serialize)]
pub struct UiEquivocation {
    /// Unix milliseconds when it was seen.
    pub at_ms: u64,
    /// Rule broken (`same_slot`, `same_block_number`, `commit_after_eop`).
    pub kind: &'static str,
    /// The signer.
    pub signer: Address,
    /// Block number of the second commitment.
    pub block_number: String,
    /// `preconfirmation_hash` of the second commitment.
    pub hash: B256,
}

/// One ban, for the page.
#[derive(Debug, Clone, Serialize)]
pub struct UiBan {
    /// Unix milliseconds when it happened.
    pub at_ms: u64,
    /// The banned peer.
    pub peer_id: String,
    /// Seconds the ban lasts from `at_ms`.
    pub for_s: u64,
}

/// A connected peer with its direction.
#[derive(Debug, Clone, Serialize)]
pub struct UiPeer {
    /// Peer id.
    pub peer_id: String,
    /// Gossipsub score.
    pub score: f64,
    /// `inbound` or `outbound`.
    pub direction: &'static str,
    /// Remote address.
    pub addr: String,
    /// The chains its identify protocols name (`/taiko/<chain id>/…`); empty until identified.
    pub chain_ids: Vec<u64>,
}

/// Everything the page shows, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct UiSnapshot {
    /// Unix milliseconds of the snapshot.
    pub time_ms: u64,
    /// The `/status` document.
    pub status: NodeStatus,
    /// Peers with direction and address.
    pub peers: Vec<UiPeer>,
    /// `preconf_*` series (`name{labels}`) → value, from this process's Prometheus recorder.
    pub metrics: BTreeMap<String, f64>,
    /// Most recent equivocations, newest last.
    pub equivocations: Vec<UiEquivocation>,
    /// Most recent bans, newest last.
    pub bans: Vec<UiBan>,
}

#[derive(Default)]
struct Recent {
    equivocations: VecDeque<UiEquivocation>,
    bans: VecDeque<UiBan>,
}

#[derive(Clone)]
struct UiState {
    context: NodeContext,
    recent: Arc<Mutex<Recent>>,
    shutdown: CancellationToken,
}

fn push_bounded<T>(queue: &mut VecDeque<T>, item: T) {
    if queue.len() >= UI_RECENT_EVENTS {
        queue.pop_front();
    }
    queue.push_back(item);
}

/// Records equivocations and bans from the SDK's events until the SDK stops.
async fn collect(context: NodeContext, recent: Arc<Mutex<Recent>>, shutdown: CancellationToken) {
    let mut events = context.sdk.subscribe();
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(SdkEvent::Equivocation {
                kind,
                signer,
                second,
                ..
            }) => {
                let item = UiEquivocation {
                    at_ms: unix_ms(),
                    kind: kind.label(),
                    signer,
                    block_number: second.preconf().block_number.to_string(),
                    hash: preconfirmation_hash(second.preconf()),
                };
                push_bounded(&mut recent.lock().equivocations, item);
            }
            Ok(SdkEvent::PeerBanned { peer, until }) => {
                let item = UiBan {
                    at_ms: unix_ms(),
                    peer_id: peer.to_string(),
                    for_s: until
                        .saturating_duration_since(std::time::Instant::now())
                        .as_secs(),
                };
                push_bounded(&mut recent.lock().bans, item);
            }
            Ok(_) | Err(p2p::P2pSdkError::Lagged { .. }) => {}
            Err(_) => return,
        }
    }
}

/// The `preconf_*` series of a Prometheus text rendering (histogram buckets left out).
pub fn preconf_series(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| l.starts_with(crate::telemetry::METRIC_PREFIX))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            if series.contains("_bucket{") {
                return None;
            }
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

async fn snapshot(state: &UiState) -> Result<UiSnapshot, crate::NodeError> {
    let status = status_json(&state.context).await?;
    let peers = state
        .context
        .sdk
        .network()
        .peers()
        .await
        .map_err(p2p::P2pSdkError::from)?
        .into_iter()
        .map(|p| UiPeer {
            peer_id: p.peer_id.to_string(),
            score: p.score,
            direction: match p.direction {
                preconfirmation_net::Direction::Inbound => "inbound",
                preconfirmation_net::Direction::Outbound => "outbound",
            },
            addr: p.addr.to_string(),
            chain_ids: p.chain_ids,
        })
        .collect();
    let metrics = state
        .context
        .prometheus
        .as_ref()
        .map(|h| preconf_series(&h.render()))
        .unwrap_or_default();
    let recent = state.recent.lock();
    Ok(UiSnapshot {
        time_ms: unix_ms(),
        status,
        peers,
        metrics,
        equivocations: recent.equivocations.iter().cloned().collect(),
        bans: recent.bans.iter().cloned().collect(),
    })
}

async fn index() -> Response {
    ([(header::CACHE_CONTROL, "no-cache")], Html(INDEX_HTML)).into_response()
}

async fn snapshot_json(State(state): State<UiState>) -> Response {
    match snapshot(&state).await {
        Ok(s) => Json(s).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn events(
    State(state): State<UiState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let shutdown = state.shutdown.clone();
    let ticks = futures::stream::unfold(
        (state, tokio::time::interval(UI_REFRESH)),
        |(state, mut interval)| async move {
            interval.tick().await;
            let event = match snapshot(&state).await {
                Ok(s) => Event::default()
                    .event("snapshot")
                    .json_data(&s)
                    .unwrap_or_default(),
                Err(e) => Event::default().event("error").data(e.to_string()),
            };
            Some((Ok(event), (state, interval)))
        },
    );
    // End open feeds when the node stops, so graceful shutdown is not held up by browsers.
    Sse::new(ticks.take_until(shutdown.cancelled_owned())).keep_alive(KeepAlive::default())
}

/// The page's routes; starts the equivocation/ban collector.
pub(crate) fn routes(context: NodeContext, shutdown: CancellationToken) -> Router {
    let recent = Arc::new(Mutex::new(Recent::default()));
    tokio::spawn(collect(context.clone(), recent.clone(), shutdown.clone()));
    let state = UiState {
        context,
        recent,
        shutdown,
    };
    Router::new()
        .route("/", get(index))
        .route("/ui/snapshot", get(snapshot_json))
        .route("/ui/events", get(events))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_are_parsed_without_buckets() {
        let text = "# TYPE preconf_x counter\npreconf_x{topic=\"a\"} 3\n\
                    preconf_h_bucket{le=\"1\"} 2\npreconf_h_sum 1.5\nother 1\np2p_old 1\n";
        let series = preconf_series(text);
        assert_eq!(series.get("preconf_x{topic=\"a\"}"), Some(&3.0));
        assert_eq!(series.get("preconf_h_sum"), Some(&1.5));
        assert_eq!(series.len(), 2);
    }

    #[test]
    fn page_is_self_contained() {
        assert!(INDEX_HTML.contains("EventSource"));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
    }
}
