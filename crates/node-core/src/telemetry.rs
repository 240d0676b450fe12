//! The process's Prometheus recorder, the node's metric conventions, and the status line a
//! node logs every `log_status_interval` ([`StatusCounts`]).
//!
//! Every metric the node exports starts with `preconf_` (the network layer's with
//! `preconf_net_`) and has a `# HELP` and a `# TYPE` line: [`install_prometheus`] registers
//! the descriptions of every crate's metrics ([`describe`]) with the recorder it installs.
//! Beside the protocol's own metrics it exports:
//!
//! - [`BUILD_INFO`]`{version,commit}` = 1: the running build (the commit comes from
//!   `build.rs`, `unknown` outside git);
//! - the process's CPU, memory, file descriptors, threads and start time
//!   (`preconf_process_*`, from `metrics-process`), refreshed at every upkeep;
//! - the JSON-RPC server's calls, errors and latency by method ([`crate::rpc::metrics`]);
//! - the L1 schedule's calls ([`crate::schedule`]).
//!
//! Histograms whose name ends in `_seconds` (e.g. `preconf_reqresp_latency_seconds`) are
//! exported as real Prometheus histograms with [`LATENCY_BUCKETS_SECONDS`], so dashboards can
//! use `histogram_quantile` across nodes; other histograms are exported as summaries.
//!
//! The recorder keeps every recorded histogram sample until upkeep folds it into its buckets
//! or summary; a scrape does that too, but a node nobody scrapes would keep every sample. So
//! [`install_prometheus`] runs upkeep every [`UPKEEP_INTERVAL`] on a thread of its own.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use p2p::metrics::{describe_all, MetricKind};

use p2p::{CommitmentSource, P2pSdkError, SdkEvent};
use preconfirmation_types::GossipTopicKind;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::clock::unix_now;
use crate::context::NodeContext;
use crate::schedule::{METRIC_L1_CALL_ERRORS, METRIC_L1_CALL_SECONDS, METRIC_L1_SCHEDULE_HEAD};

/// The one prefix of every metric the node exports.
pub const METRIC_PREFIX: &str = "preconf_";

/// `preconf_build_info{version,commit}`: always 1; its labels name the running build.
pub const BUILD_INFO: &str = "preconf_build_info";

/// The commit this binary was built from (`build.rs`; `unknown` outside a git checkout).
pub const GIT_COMMIT: &str = env!("PRECONF_GIT_COMMIT");

/// The UTC date this binary was built (`YYYY-MM-DD`; `SOURCE_DATE_EPOCH` when set).
pub const BUILD_DATE: &str = env!("PRECONF_BUILD_DATE");

/// `preconf-node --version`: the version, the commit built and the build date.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PRECONF_GIT_COMMIT"),
    ", built ",
    env!("PRECONF_BUILD_DATE"),
    ")"
);

/// The node's own metrics (beyond the SDK's and the network layer's): (name, kind, help).
pub const DESCRIPTIONS: &[(&str, MetricKind, &str)] = &[
    (
        BUILD_INFO,
        MetricKind::Gauge,
        "Always 1; the labels name the running build (version, commit).",
    ),
    (
        METRIC_L1_CALL_SECONDS,
        MetricKind::Histogram,
        "Latency of the L1 JSON-RPC calls that read the schedule, by call.",
    ),
    (
        METRIC_L1_CALL_ERRORS,
        MetricKind::Counter,
        "Failed L1 JSON-RPC calls, by call and error (timeout, rpc).",
    ),
    (
        METRIC_L1_SCHEDULE_HEAD,
        MetricKind::Gauge,
        "The L1 block number the schedule was last read at.",
    ),
    (
        crate::rpc::metrics::CALLS,
        MetricKind::Counter,
        "JSON-RPC calls, by method (unknown methods as \"other\").",
    ),
    (
        crate::rpc::metrics::ERRORS,
        MetricKind::Counter,
        "JSON-RPC calls answered with an error, by method and JSON-RPC error code.",
    ),
    (
        crate::rpc::metrics::CALL_SECONDS,
        MetricKind::Histogram,
        "Time to answer a JSON-RPC call, by method.",
    ),
    (
        crate::rpc::auth::METRIC_AUTH_FAILURES,
        MetricKind::Counter,
        "Requests refused for their JWT (HTTP 401, or -32015 on a WebSocket), by reason.",
    ),
];

/// Registers the description of every metric of the node, the SDK and the network layer
/// with the installed recorder, and sets [`BUILD_INFO`].
pub fn describe() {
    p2p::metrics::describe();
    describe_all(DESCRIPTIONS);
    metrics::gauge!(
        BUILD_INFO,
        "version" => env!("CARGO_PKG_VERSION"),
        "commit" => GIT_COMMIT,
    )
    .set(1.0);
}

/// How often the recorder's upkeep runs: 5 s, the exporter's own default `upkeep_timeout`.
/// Histogram samples recorded between two runs are held in memory until the next one.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Bucket bounds of latency histograms, in seconds (100 µs … 10 s: a gossip message's wait
/// for the SDK is tens of µs, a durable write ~1 ms, a request times out at 10 s).
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Installs the global recorder, registers every metric's description ([`describe`]), sets
/// [`BUILD_INFO`] and starts the upkeep ([`UPKEEP_INTERVAL`]), which also refreshes the process
/// metrics; `None` if this process already has a recorder.
pub fn install_prometheus() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_SECONDS)
        .ok()?
        // `install_recorder` starts no upkeep of its own (`upkeep_timeout` only configures
        // the exporter that `install` starts): ours runs below.
        .install_recorder()
        .ok()?;
    describe();
    let process = metrics_process::Collector::new(METRIC_PREFIX);
    process.describe();
    process.collect();
    let upkeep = handle.clone();
    spawn_upkeep(UPKEEP_INTERVAL, move || {
        process.collect();
        upkeep.run_upkeep();
        true
    });
    Some(handle)
}

/// Calls `upkeep` every `interval` on a thread of its own (named `metrics-upkeep`) until it
/// returns false; the recorder's lives as long as the process. `None` if the thread could not
/// be started (upkeep then happens at scrapes only).
pub fn spawn_upkeep(
    interval: Duration,
    upkeep: impl Fn() -> bool + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            if !upkeep() {
                return;
            }
        })
        .ok()
}

// ---- the status line -------------------------------------------------------------------------

/// What happened between two status lines, from the SDK's events.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StatusCounts {
    /// Commitments this node published (accepted locally).
    pub published: u64,
    /// Commitments accepted from peers (gossip and catch-up).
    pub received: u64,
    /// Events this counter missed (it fell behind the SDK's event channel).
    pub missed: u64,
}

impl StatusCounts {
    /// Counts `event`.
    pub fn count(&mut self, event: &SdkEvent) {
        if let SdkEvent::Commitment { source, .. } = event {
            match source {
                CommitmentSource::Local => self.published += 1,
                CommitmentSource::Gossip(_) | CommitmentSource::CatchUp(_) => self.received += 1,
            }
        }
    }
}

/// `name=size` of each topic's gossip mesh, space-separated.
fn mesh_text(sizes: &[(GossipTopicKind, usize)]) -> String {
    sizes
        .iter()
        .map(|(kind, n)| format!("{}={n}", kind.label()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seconds from the head block's timestamp to `now` (Unix seconds), 0 for a block in the
/// future; `None` at the anchor (no head commitment yet).
fn head_age_secs(head_timestamp: Option<u64>, now: u64) -> Option<u64> {
    head_timestamp.map(|t| now.saturating_sub(t))
}

/// Logs one INFO line every `interval` until `shutdown`: head (number, age of its block),
/// connected peers, each topic's gossip mesh size, and the commitments published and
/// received since the previous line. The node spawns it when `log_status_interval` is not 0.
pub(crate) async fn status_lines(
    context: NodeContext,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut events = context.sdk.subscribe();
    let mut events_open = true;
    let mut counts = StatusCounts::default();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            event = events.recv(), if events_open => match event {
                Ok(event) => counts.count(&event),
                Err(P2pSdkError::Lagged { missed }) => counts.missed += missed,
                Err(_) => events_open = false,
            },
            _ = tick.tick() => {
                log_status(&context, std::mem::take(&mut counts)).await;
            }
        }
    }
}

async fn log_status(context: &NodeContext, counts: StatusCounts) {
    let status = context.sdk.status();
    let head_timestamp = match status.head_hash {
        Some(hash) => {
            let sdk = context.sdk.clone();
            tokio::task::spawn_blocking(move || sdk.commitment_by_hash(&hash))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten()
                .map(|c| u64::try_from(c.preconf().timestamp).unwrap_or(u64::MAX))
        }
        None => None,
    };
    let now = unix_now();
    let head_age =
        head_age_secs(head_timestamp, now).map_or_else(|| "none".to_string(), |s| format!("{s}s"));
    let peers = context.sdk.peers().await.map_or(0, |p| p.len());
    let mesh = context
        .sdk
        .network()
        .mesh_sizes()
        .await
        .map_or_else(|_| "unknown".to_string(), |m| mesh_text(&m));
    info!(
        head = status.head_block_number,
        head_age = %head_age,
        sync = ?status.sync,
        peers,
        mesh = %mesh,
        published = counts.published,
        received = counts.received,
        missed_events = counts.missed,
        "status"
    );
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    use super::*;

    #[test]
    fn upkeep_runs_on_its_timer_until_told_to_stop() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        let counted = runs.clone();
        let thread = spawn_upkeep(Duration::from_millis(10), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                let _ = done_tx.send(());
            }
            n < 3
        })
        .expect("thread");
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("upkeep ran three times");
        thread
            .join()
            .expect("the thread ends when upkeep returns false");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn status_counts_split_local_from_peers() {
        use p2p::testkit::ChainBuilder;
        use preconfirmation_types::{Address, ChainSpec};
        let mut builder = ChainBuilder::in_the_past(ChainSpec::new(1, Address::ZERO), 1, 1, 4);
        let commitment = builder.blocks(1, 8).remove(0).commitment;
        let event = |source| SdkEvent::Commitment {
            commitment: commitment.clone(),
            signer: Address::ZERO,
            source,
            txlist_available: true,
        };
        let peer = libp2p::PeerId::random();
        let mut counts = StatusCounts::default();
        counts.count(&event(CommitmentSource::Local));
        counts.count(&event(CommitmentSource::Gossip(peer)));
        counts.count(&event(CommitmentSource::CatchUp(peer)));
        counts.count(&SdkEvent::PeerConnected(peer));
        assert_eq!(
            counts,
            StatusCounts {
                published: 1,
                received: 2,
                missed: 0
            }
        );
    }

    #[test]
    fn status_fields_read_as_written() {
        assert_eq!(
            mesh_text(&[
                (GossipTopicKind::Commitments, 3),
                (GossipTopicKind::RawTxLists, 0)
            ]),
            "commitments=3 raw_txlists=0"
        );
        assert_eq!(head_age_secs(None, 100), None);
        assert_eq!(head_age_secs(Some(90), 100), Some(10));
        assert_eq!(
            head_age_secs(Some(110), 100),
            Some(0),
            "a block ahead of our clock"
        );
    }

    #[test]
    fn the_exporter_default_upkeep_is_kept() {
        assert_eq!(UPKEEP_INTERVAL, Duration::from_secs(5));
    }
}
