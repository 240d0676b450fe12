//! `bench propagation`: what delivering a message to one node costs, in CPU time and in
//! latency, for N SDK nodes on 127.0.0.1 over real TCP (noise, yamux, gossipsub), against N
//! bare rust-libp2p gossipsub swarms with the same meshes, topology and payload sizes, in the
//! same run.
//!
//! **CPU per delivered message (the headline).** Every part of each network runs on threads
//! named for it, and the bench reads each thread's CPU clock ([`super::cpu`]) at the start and
//! end of the commitment rounds and of the tx-list rounds. The SDK's CPU splits into
//! gossipsub and transport (the network thread of each node, [`NET_THREAD`]: the swarm, every
//! connection's noise, yamux, gossipsub and req/resp, identify, ping), the SDK itself (its
//! tasks on the runtime the SDK nodes are started on, [`SDK_THREAD`], and the rayon pool,
//! [`RAYON_THREAD`]: validation, state, events) and the durable writer ([`WRITER_THREAD`]);
//! the baseline's is its swarms' threads ([`BARE_THREAD`]). Divided by the deliveries (one
//! per node but the publisher, per message), that is `cpu_us_per_commitment` and
//! `baseline_cpu_us_per_commitment` with their splits, and, over the tx-list rounds and their
//! MiB delivered, `cpu_us_per_mib_txlist`. Both networks are measured over the same stretch
//! of time (the rounds interleave), so each counts its idle work (heartbeats, pings) alike.
//! What runs on neither network's threads (the bench's own tasks) is reported apart
//! (`harness_cpu_share`).
//!
//! **Latency.** A sample is (node, message): the time from the publisher's `publish` call to
//! that node's `SdkEvent::Commitment` (commitment rounds) or `SdkEvent::RawTxList` (tx list
//! rounds) — events come once the write is durable, so each sample includes that node's
//! fsync. The baseline sample is the time to gossipsub's `Event::Message` at each bare swarm.
//! The rounds interleave (an SDK round, then the same round on the bare network), so load and
//! noise hit both alike. With 32 nodes on a 2-core machine every hop queues for CPU
//! (`round_busy_cores`: process CPU time over a round's wall time), so the latency ratio
//! follows the CPU ratio: it is reported, labelled CPU-bound.
//!
//! SDK nodes run `P2pSdk` with default settings on the node's own redb storage, one database
//! per node in a temp dir (all on this machine's one disk). The process runs the node's
//! metrics recorder, so the SDK does its metrics work as in a node, and the report says where
//! an SDK delivery's extra time went, from the SDK's own metrics over the commitment rounds:
//! `commitment_write_mean_ms` (a write queued by the core until durable), of which
//! `commitment_transaction_mean_ms` is the transaction itself (pages and fsync), and
//! `gossip_queue_mean_ms` (a gossiped commitment's wait between the driver and the manager).
//! After the rounds it probes what the shared disk adds: `fsync_single_ms`, one lone 4 KiB
//! write made durable, and `fsync_burst_ms`, the time until the last of N − 1 such writes
//! started together (one file each, in the same temp dir) is durable.
//!
//! Topology (both networks): node `i` dials nodes `i − 1, i − 2, i − 4, i − 8, i − 16`, a
//! connected graph with diameter O(log N).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use p2p::testkit::ChainBuilder;
use p2p::{P2pSdk, SdkEvent, WRITER_THREAD};
use preconf_node_core::RedbStore;
use preconfirmation_net::{Multiaddr, NET_THREAD};
use preconfirmation_types::{ChainSpec, GossipTopicKind};
use serde_json::{Map, Value};

use super::bare::{BareNetwork, BARE_THREAD};
use super::cpu::{CpuDelta, CpuSnapshot, ThreadGroup};
use super::deliveries::{dial_targets, Seen, Sent, PEER_TIMEOUT};
use super::util::{
    fsync_burst, median, percentile, process_cpu_s, round, signed_chain, GeneratedBlock, MIB,
};
use super::validate::{bench_chain, PRECONFERS};
use super::{failed, Report};
use crate::error::ToolError;
use crate::loopback;

/// Time given to the meshes to settle after every node has peers (heartbeats graft).
pub const MESH_SETTLE: Duration = Duration::from_secs(3);
/// Pause between rounds so rounds never overlap.
pub const ROUND_GAP: Duration = Duration::from_millis(100);
/// Repetitions of the disk probe (`fsync_single_ms`, `fsync_burst_ms`).
pub const FSYNC_PROBE_REPEATS: usize = 10;
/// Most nodes a run may start.
pub const MAX_NODES: usize = 128;
/// Name of the threads of the runtime the SDK nodes are started on (workers and blocking
/// pool): their tasks are the SDK's own.
pub const SDK_THREAD: &str = "p2p-sdk";
/// Name (before `-<index>`) of the rayon pool's threads, on which the SDK recovers the
/// signers of a burst of commitments.
pub const RAYON_THREAD: &str = "p2p-rayon";
/// How long an idle blocking thread of the SDK's runtime lives: longer than a run, so none
/// ends (and takes its CPU time out of the per-thread accounting) within the rounds.
pub const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(3600);
/// Target: the SDK's gossipsub + transport CPU per delivered commitment over the bare
/// network's.
pub const TARGET_GOSSIP_TRANSPORT_RATIO: f64 = 1.1;
/// Target: the SDK's whole CPU per delivered commitment over the bare network's.
pub const TARGET_CPU_RATIO: f64 = 1.3;

/// Where the SDK network's CPU goes, by thread name.
const SDK_GROUPS: [ThreadGroup; 3] = [
    ThreadGroup {
        key: "gossip_transport",
        names: &[NET_THREAD],
    },
    ThreadGroup {
        key: "sdk",
        names: &[SDK_THREAD, RAYON_THREAD],
    },
    ThreadGroup {
        key: "writer",
        names: &[WRITER_THREAD],
    },
];

/// Where the bare network's CPU goes, by thread name.
const BARE_GROUPS: [ThreadGroup; 1] = [ThreadGroup {
    key: "gossip_transport",
    names: &[BARE_THREAD],
}];

/// Arguments of `bench propagation`.
#[derive(Debug, Clone, Args)]
pub struct PropagationArgs {
    /// Nodes in each network.
    #[arg(long, default_value_t = 32)]
    pub nodes: usize,
    /// Commitment rounds (one commitment published per round, publishers rotate).
    #[arg(long, default_value_t = 20)]
    pub rounds: usize,
    /// Tx list rounds.
    #[arg(long, default_value_t = 5)]
    pub txlist_rounds: usize,
    /// Bytes of each tx list.
    #[arg(long, default_value_t = 1024 * 1024)]
    pub txlist_bytes: usize,
    /// Variant: each SDK node's network runs as tasks of the SDK's runtime
    /// (`network.own_thread` false) and the bare swarms share one runtime of as many threads:
    /// what the network's own threads cost. The SDK's network CPU then counts under `sdk`.
    #[arg(long)]
    pub net_on_sdk_runtime: bool,
}

/// Latencies in ms of the commitment and tx list samples, and samples missing at timeout.
#[derive(Debug, Default)]
struct Samples {
    commitment_ms: Vec<f64>,
    txlist_ms: Vec<f64>,
    missing: usize,
    /// Cores busy over each commitment round: process CPU time over the round's wall time.
    commitment_busy_cores: Vec<f64>,
}

impl Samples {
    /// One round's latencies (a tx list round or a commitment round) and missing deliveries.
    fn record(&mut self, txlist_round: bool, latencies: Vec<f64>, missing: usize) {
        if txlist_round {
            self.txlist_ms.extend(latencies);
        } else {
            self.commitment_ms.extend(latencies);
        }
        self.missing += missing;
    }
}

/// The process's CPU clock and the wall clock at a round's start, read again at its end for
/// the cores the round kept busy.
struct RoundClock {
    cpu_s: f64,
    at: Instant,
}

impl RoundClock {
    fn start() -> Self {
        Self {
            cpu_s: process_cpu_s(),
            at: Instant::now(),
        }
    }

    /// Cores busy since the start: process CPU time over wall time.
    fn busy_cores(self) -> f64 {
        (process_cpu_s() - self.cpu_s) / self.at.elapsed().as_secs_f64().max(1e-9)
    }
}

/// CPU time by thread group over the commitment rounds and over the tx-list rounds.
struct PhaseCpu {
    commitments: CpuDelta,
    txlists: CpuDelta,
}

/// Each group's CPU microseconds per `unit` (a delivery, or a MiB delivered), and their sum.
fn split_per(delta: &CpuDelta, groups: &[ThreadGroup], units: f64) -> (Map<String, Value>, f64) {
    let mut split = Map::new();
    let mut total = 0.0;
    for group in groups {
        let us = delta.group_s(group) * 1e6 / units.max(1e-9);
        total += us;
        split.insert(group.key.into(), round(us, 1).into());
    }
    (split, total)
}

/// The share of the process's CPU time in `delta` that ran on neither network's threads.
fn harness_share(delta: &CpuDelta) -> f64 {
    let networks: f64 = SDK_GROUPS
        .iter()
        .chain(BARE_GROUPS.iter())
        .map(|g| delta.group_s(g))
        .sum();
    let process = delta.process_s();
    if process <= 0.0 {
        return 0.0;
    }
    ((process - networks) / process).max(0.0)
}

/// Names the global rayon pool's threads [`RAYON_THREAD`]`-<i>` (as many as rayon's default)
/// so their CPU time counts as the SDK's; a pool built before keeps its names.
fn name_rayon_pool() {
    let _ = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("{RAYON_THREAD}-{i}"))
        .build_global();
}

/// Runs the bench.
pub async fn run(args: PropagationArgs) -> Result<Report, ToolError> {
    if args.nodes < 2 || args.nodes > MAX_NODES || args.rounds == 0 {
        return Err(ToolError::config(
            "bench.propagation.nodes",
            format!("nodes must be in 2..={MAX_NODES} and rounds positive"),
        ));
    }
    name_rayon_pool();
    let chain = bench_chain();
    let blocks_needed = (args.rounds + args.txlist_rounds) as u64 + 1;
    let mut builder = ChainBuilder::in_the_past(chain, PRECONFERS, 1, blocks_needed);
    let mut blocks = signed_chain(&mut builder, args.rounds, 0);
    blocks.extend(signed_chain(
        &mut builder,
        args.txlist_rounds,
        args.txlist_bytes,
    ));

    // The node's own recorder, as `run` installs it: the SDK then does its metrics work as in
    // a node, and the bench reads where an SDK delivery's time went (`None` if this process
    // already has a recorder: the attribution is then left out).
    let recorder = preconf_node_core::telemetry::install_prometheus();
    let data_dir = tempfile::Builder::new()
        .prefix("preconf-bench-propagation-")
        .tempdir()
        .map_err(|e| ToolError::io(&std::env::temp_dir(), e))?;
    let mut sdk_net = SdkNetwork::default();
    let mut bare_net = BareNetwork::default();
    let result = async {
        sdk_net
            .start(&args, chain, &builder, data_dir.path())
            .await?;
        bare_net
            .start(args.nodes, chain, args.net_on_sdk_runtime)
            .await?;
        // Both meshes settle at once after every node has peers (heartbeats graft).
        tokio::time::sleep(MESH_SETTLE).await;
        let mut sdk = Samples::default();
        let mut base = Samples::default();
        let mut after_commitment_rounds = None;
        let started = CpuSnapshot::take();
        let mut commitments_cpu = None;
        for (round, block) in blocks.iter().enumerate() {
            if round == args.rounds {
                // Every commitment round's writes were durable before its events: the SDK's
                // figures so far are the commitments' alone.
                after_commitment_rounds = recorder.as_ref().map(|r| r.render());
                commitments_cpu = Some(CpuSnapshot::take());
            }
            let publisher = round % args.nodes;
            let txlist_round = block.txlist.is_some();
            let clock = RoundClock::start();
            let sent = sdk_net.publish(publisher, block).await?;
            let (latencies, missing) = sent.delivered(&sdk_net.seen, args.nodes, publisher).await;
            sdk.record(txlist_round, latencies, missing);
            let sdk_busy = clock.busy_cores();
            tokio::time::sleep(ROUND_GAP).await;
            let clock = RoundClock::start();
            let sent = bare_net.publish(publisher, block)?;
            let (latencies, missing) = sent.delivered(&bare_net.seen, args.nodes, publisher).await;
            base.record(txlist_round, latencies, missing);
            if !txlist_round {
                sdk.commitment_busy_cores.push(sdk_busy);
                base.commitment_busy_cores.push(clock.busy_cores());
            }
            tokio::time::sleep(ROUND_GAP).await;
        }
        let ended = CpuSnapshot::take();
        let commitments_end = commitments_cpu.unwrap_or_else(|| ended.clone());
        let cpu = PhaseCpu {
            commitments: commitments_end.since(&started),
            txlists: ended.since(&commitments_end),
        };
        let after_commitment_rounds =
            after_commitment_rounds.or_else(|| recorder.as_ref().map(|r| r.render()));
        Ok::<_, ToolError>((sdk, base, cpu, after_commitment_rounds))
    }
    .await;
    sdk_net.stop().await;
    bare_net.stop().await;
    let (sdk, base, cpu, after_commitment_rounds) = result?;
    // What the disk adds: every node but the publisher commits a round's message at about the
    // same time, each database on this machine's one disk (untimed, after the rounds).
    let (fsync_single_ms, fsync_burst_ms) =
        fsync_burst(data_dir.path(), args.nodes - 1, FSYNC_PROBE_REPEATS)
            .map_err(|e| ToolError::io(data_dir.path(), e))?;

    let mut report = Report::default();
    report_cpu(&mut report, &args, &sdk, &base, &cpu);
    report_latency(&mut report, &args, sdk, base);
    report.extra("fsync_single_ms", round(fsync_single_ms, 3));
    report.extra("fsync_burst_ms", round(fsync_burst_ms, 3));
    report.extra("storage", "redb");
    report.extra("interleaved", true);
    report.extra("txlist_bytes", args.txlist_bytes);
    report.extra("net_own_thread", !args.net_on_sdk_runtime);
    if let Some(text) = after_commitment_rounds {
        report_sdk_metrics(&mut report, &text);
    }
    Ok(report)
}

/// The CPU figures: per delivered commitment and per MiB of tx list delivered, each network
/// and each group, and the ratios held to the targets.
fn report_cpu(
    report: &mut Report,
    args: &PropagationArgs,
    sdk: &Samples,
    base: &Samples,
    cpu: &PhaseCpu,
) {
    let deliveries = sdk.commitment_ms.len() as f64;
    let base_deliveries = base.commitment_ms.len() as f64;
    let (split, total) = split_per(&cpu.commitments, &SDK_GROUPS, deliveries);
    let (base_split, base_total) = split_per(&cpu.commitments, &BARE_GROUPS, base_deliveries);
    let gossip = split["gossip_transport"].as_f64().unwrap_or(0.0);
    let base_gossip = base_split["gossip_transport"].as_f64().unwrap_or(0.0);
    report.figure(
        "cpu_us_per_commitment",
        "SDK CPU µs per commitment delivered to one node",
        round(total, 1),
    );
    report.figure(
        "baseline_cpu_us_per_commitment",
        "bare gossipsub CPU µs per commitment delivered",
        round(base_total, 1),
    );
    report.figure(
        "cpu_ratio",
        &format!("CPU per commitment SDK / bare (target <= {TARGET_CPU_RATIO})"),
        round(total / base_total.max(1e-9), 3),
    );
    report.figure(
        "gossip_transport_cpu_ratio",
        &format!(
            "gossipsub + transport CPU per commitment SDK / bare (target <= \
             {TARGET_GOSSIP_TRANSPORT_RATIO})"
        ),
        round(gossip / base_gossip.max(1e-9), 3),
    );
    for (key, value) in &split {
        report
            .table
            .push((format!("  SDK {key} µs per commitment"), value.to_string()));
    }
    report.extra("cpu_split_us_per_commitment", Value::Object(split));
    report.extra(
        "baseline_cpu_split_us_per_commitment",
        Value::Object(base_split),
    );
    let mib = args.txlist_bytes as f64 / MIB;
    let txlist_units = sdk.txlist_ms.len() as f64 * mib;
    let base_txlist_units = base.txlist_ms.len() as f64 * mib;
    if txlist_units > 0.0 && base_txlist_units > 0.0 {
        let (split, total) = split_per(&cpu.txlists, &SDK_GROUPS, txlist_units);
        let (base_split, base_total) = split_per(&cpu.txlists, &BARE_GROUPS, base_txlist_units);
        report.figure(
            "cpu_us_per_mib_txlist",
            "SDK CPU µs per MiB of tx list delivered to one node",
            round(total, 1),
        );
        report.figure(
            "baseline_cpu_us_per_mib_txlist",
            "bare gossipsub CPU µs per MiB of tx list delivered",
            round(base_total, 1),
        );
        report.extra("cpu_split_us_per_mib_txlist", Value::Object(split));
        report.extra(
            "baseline_cpu_split_us_per_mib_txlist",
            Value::Object(base_split),
        );
    }
    report.extra(
        "harness_cpu_share",
        round(harness_share(&cpu.commitments), 3),
    );
}

/// The latency figures (CPU-bound on a small machine: see the module docs).
fn report_latency(report: &mut Report, args: &PropagationArgs, sdk: Samples, base: Samples) {
    let mut c = sdk.commitment_ms;
    let mut t = sdk.txlist_ms;
    let mut b = base.commitment_ms;
    let mut bt = base.txlist_ms;
    for v in [&mut c, &mut t, &mut b, &mut bt] {
        v.sort_by(f64::total_cmp);
    }
    let p99 = percentile(&c, 99.0);
    let base_p99 = percentile(&b, 99.0);
    report.figure(
        "p50_ms",
        "commitment p50 ms",
        round(percentile(&c, 50.0), 2),
    );
    report.figure("p99_ms", "commitment p99 ms (target < 50)", round(p99, 2));
    report.figure(
        "max_ms",
        "commitment max ms",
        round(c.last().copied().unwrap_or(0.0), 2),
    );
    report.figure(
        "baseline_p99_ms",
        "bare gossipsub commitment p99 ms",
        round(base_p99, 2),
    );
    report.figure(
        "ratio_p99",
        "p99 ratio SDK / bare (CPU-bound: follows the CPU ratio)",
        round(p99 / base_p99.max(1e-3), 3),
    );
    report.figure(
        "txlist_p99_ms",
        "tx list to all p99 ms (target < 500)",
        round(percentile(&t, 99.0), 2),
    );
    report.figure(
        "baseline_txlist_p99_ms",
        "bare gossipsub tx list p99 ms",
        round(percentile(&bt, 99.0), 2),
    );
    report.figure("nodes", "nodes", args.nodes);
    report.figure(
        "missing",
        "samples missing at timeout (SDK + bare)",
        sdk.missing + base.missing,
    );
    report.extra("baseline_p50_ms", round(percentile(&b, 50.0), 2));
    // With every node in this process on this machine's cores, a round that keeps them all
    // busy waits for CPU at every hop.
    report.extra(
        "round_busy_cores",
        round(median(sdk.commitment_busy_cores), 2),
    );
    report.extra(
        "baseline_round_busy_cores",
        round(median(base.commitment_busy_cores), 2),
    );
    report.extra("samples", c.len());
    report.extra("txlist_samples", t.len());
}

/// Where an SDK delivery's time went, from the SDK's own metrics (Prometheus `text`).
fn report_sdk_metrics(report: &mut Report, text: &str) {
    let mean_ms = |name: &str, labels: &str| {
        let sum = metric_value(text, &format!("{name}_sum{labels}"))?;
        let count = metric_value(text, &format!("{name}_count{labels}"))?;
        (count > 0.0).then(|| round(sum / count * 1e3, 3))
    };
    // Every node's write of a commitment round: queued by the core → durable.
    if let Some(ms) = mean_ms(p2p::metrics::DURABLE_WRITE, "") {
        report.extra("commitment_write_mean_ms", ms);
    }
    // Of which the transaction itself (its pages and fsync).
    if let Some(ms) = mean_ms(p2p::metrics::DURABLE_TRANSACTION, "") {
        report.extra("commitment_transaction_mean_ms", ms);
    }
    // Driver → SDK manager, per gossiped commitment.
    let commitments = format!("{{topic=\"{}\"}}", GossipTopicKind::Commitments.label());
    if let Some(ms) = mean_ms(p2p::metrics::GOSSIP_QUEUE, &commitments) {
        report.extra("gossip_queue_mean_ms", ms);
    }
}

/// The value of the sample `name` (with its labels, if any, as rendered) in Prometheus text.
fn metric_value(text: &str, name: &str) -> Option<f64> {
    let (base, labels) = match name.find('{') {
        Some(at) => name.split_at(at),
        None => (name, ""),
    };
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(base)?.strip_prefix(labels)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// The SDK network: the runtime its nodes run on, its nodes, and when each saw each message.
#[derive(Default)]
struct SdkNetwork {
    runtime: Option<tokio::runtime::Runtime>,
    nodes: Vec<P2pSdk>,
    seen: Seen,
}

impl SdkNetwork {
    /// Starts `args.nodes` SDK nodes with default settings (on loopback, catch-up off), each
    /// on its own redb store under `data_dir`, on a runtime of [`SDK_THREAD`] threads (as
    /// many as cores, as a node's), dialled in the bench topology; returns once each has a
    /// gossip peer.
    async fn start(
        &mut self,
        args: &PropagationArgs,
        chain: ChainSpec,
        builder: &ChainBuilder,
        data_dir: &std::path::Path,
    ) -> Result<(), ToolError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .thread_name(SDK_THREAD)
            .thread_keep_alive(BLOCKING_KEEP_ALIVE)
            .enable_all()
            .build()
            .map_err(|e| failed("propagation", format!("runtime: {e}")))?;
        let sdk_runtime = runtime.handle().clone();
        self.runtime = Some(runtime);
        let mut addrs: Vec<Multiaddr> = Vec::with_capacity(args.nodes);
        for index in 0..args.nodes {
            let mut config = loopback::sdk_config(chain);
            // Blocks of a chain built in the past: the lower time bound is lifted.
            config.rules.window_end_grace = p2p::testkit::REPLAY_WINDOW_END_GRACE;
            config.catchup.enabled = false;
            config.network.own_thread = !args.net_on_sdk_runtime;
            let storage = RedbStore::open(&data_dir.join(format!("node{index}")), chain.limits)?;
            let lookahead = builder.lookahead();
            let (sdk, mut events) = sdk_runtime
                .spawn(P2pSdk::start(config, Arc::new(storage), lookahead, None))
                .await
                .map_err(|e| failed("propagation", e))??;
            let addr = sdk
                .listen_addrs()
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| failed("propagation", "node without listen address"))?;
            for target in dial_targets(index) {
                sdk.dial(addrs[target].clone()).await?;
            }
            let seen = self.seen.clone();
            tokio::spawn(async move {
                loop {
                    let key = match events.recv().await {
                        Ok(SdkEvent::Commitment { commitment, .. }) => {
                            preconfirmation_types::preconfirmation_hash(commitment.preconf())
                        }
                        Ok(SdkEvent::RawTxList { hash, .. }) => hash,
                        Ok(_) | Err(p2p::P2pSdkError::Lagged { .. }) => continue,
                        Err(_) => return,
                    };
                    seen.record(index, key);
                }
            });
            self.nodes.push(sdk);
            addrs.push(addr);
        }
        for sdk in &self.nodes {
            sdk.wait_for_gossip_peers(1, PEER_TIMEOUT).await?;
        }
        Ok(())
    }

    /// Publishes `block` from `publisher` (on the SDK's runtime, as its sidecar would call
    /// it); the keys every other node must announce.
    async fn publish(&self, publisher: usize, block: &GeneratedBlock) -> Result<Sent, ToolError> {
        let key = match &block.txlist {
            Some(t) => preconfirmation_types::raw_tx_list_hash(t),
            None => preconfirmation_types::preconfirmation_hash(block.commitment.preconf()),
        };
        // A tx list round counts once the commitment has arrived everywhere too.
        let then = block
            .txlist
            .is_some()
            .then(|| preconfirmation_types::preconfirmation_hash(block.commitment.preconf()));
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| failed("propagation", "SDK network not started"))?;
        let sdk = self.nodes[publisher].clone();
        let (commitment, txlist) = (block.commitment.clone(), block.txlist.clone());
        let sent = Sent::now(key, then);
        runtime
            .spawn(async move { sdk.publish(commitment, txlist).await })
            .await
            .map_err(|e| failed("propagation", e))??;
        Ok(sent)
    }

    async fn stop(&mut self) {
        for sdk in self.nodes.drain(..) {
            let _ = sdk.shutdown().await;
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for SdkNetwork {
    fn drop(&mut self) {
        // A runtime may not be dropped on an async thread: it is let go in the background.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::metric_value;

    const TEXT: &str = "# TYPE p2p_x_seconds histogram\n\
        p2p_x_seconds_sum 0.5\n\
        p2p_x_seconds_count 4\n\
        p2p_y_seconds_sum{topic=\"commitments\"} 0.25\n\
        p2p_y_seconds_sum{topic=\"raw_txlists\"} 9\n";

    #[test]
    fn a_sample_is_found_by_its_name_and_labels() {
        assert_eq!(metric_value(TEXT, "p2p_x_seconds_sum"), Some(0.5));
        assert_eq!(metric_value(TEXT, "p2p_x_seconds_count"), Some(4.0));
        assert_eq!(
            metric_value(TEXT, "p2p_y_seconds_sum{topic=\"commitments\"}"),
            Some(0.25)
        );
        assert_eq!(
            metric_value(TEXT, "p2p_y_seconds_sum{topic=\"raw_txlists\"}"),
            Some(9.0)
        );
        // A prefix of another name, or the name without its labels, is not that sample.
        assert_eq!(metric_value(TEXT, "p2p_x_seconds"), None);
        assert_eq!(metric_value(TEXT, "p2p_y_seconds_sum"), None);
    }
}
