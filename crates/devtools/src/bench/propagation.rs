//! `bench propagation`: publish → accepted at every other node, N SDK nodes on 127.0.0.1 over
//! real TCP (noise, yamux, gossipsub), against N bare rust-libp2p gossipsub swarms with the
//! same mesh parameters, topology and payload sizes, in the same run.
//!
//! SDK nodes run `P2pSdk` on the node's own redb storage, one database per node in a temp dir
//! (all on this machine's one disk). A sample is (node, message): the time from the
//! publisher's `publish` call to that node's `SdkEvent::Commitment` (commitment rounds) or
//! `SdkEvent::RawTxList` (tx list rounds) — events come once the write is durable, so each
//! sample includes that node's fsync. The baseline sample is the time to gossipsub's
//! `Event::Message` at each bare swarm; bare swarms forward at once (no application
//! validation) and score nobody. Both networks run side by side and the rounds interleave
//! (an SDK round, then the same round on the bare network), so load and noise hit both alike.
//!
//! The process runs the node's metrics recorder, so the SDK does its metrics work as in a
//! node, and the report says where an SDK delivery's extra time went, from the SDK's own
//! metrics over the commitment rounds: `commitment_write_mean_ms` (a write queued by the
//! core until durable; every node's database shares this machine's disk), of which
//! `commitment_transaction_mean_ms` is the transaction itself (pages and fsync), and
//! `gossip_queue_mean_ms` (a gossiped commitment's wait between the driver and the manager).
//! What a commitment round costs the machine is reported too: the process's CPU time over the
//! round (publish → the last node has it), median over the rounds, for each network
//! (`round_cpu_ms`, `baseline_round_cpu_ms`, their `round_cpu_ratio`), and that CPU time over
//! the round's wall time (`round_busy_cores`, `baseline_round_busy_cores`): near the machine's
//! core count, the nodes queue for CPU at every hop and latency grows with the CPU a round
//! needs. After the rounds it probes what the shared disk adds: `fsync_single_ms`, one lone 4 KiB
//! write made durable, and `fsync_burst_ms`, the time until the last of N − 1 such writes
//! started together (one file each, in the same temp dir) is durable — what a round's
//! commits meet when the message reaches every node at about the same time.
//!
//! Topology (both networks): node `i` dials nodes `i − 1, i − 2, i − 4, i − 8, i − 16`, a
//! connected graph with diameter O(log N).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, SwarmBuilder};
use p2p::testkit::ChainBuilder;
use p2p::{P2pSdk, P2pSdkConfig, SdkEvent};
use parking_lot::Mutex;
use preconf_node_core::RedbStore;
use preconfirmation_net::{GossipConfig, Keypair};
use preconfirmation_types::{ChainSpec, GossipTopicKind, RawTxListGossip, WireMessage, B256};
use tokio::sync::mpsc;

use super::util::{
    fsync_burst, median, percentile, process_cpu_s, round, signed_chain, GeneratedBlock,
};
use super::validate::{bench_chain, PRECONFERS};
use super::{failed, Report};
use crate::error::ToolError;
use crate::loopback;

/// Longest wait for one message to reach every node.
pub const ROUND_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for a node to see gossip peers at start-up.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Time given to the meshes to settle after every node has peers (heartbeats graft).
pub const MESH_SETTLE: Duration = Duration::from_secs(3);
/// Pause between rounds so rounds never overlap.
pub const ROUND_GAP: Duration = Duration::from_millis(100);
/// Repetitions of the disk probe (`fsync_single_ms`, `fsync_burst_ms`).
pub const FSYNC_PROBE_REPEATS: usize = 10;
/// Most nodes a run may start.
pub const MAX_NODES: usize = 128;
/// Dial offsets: node `i` dials `i − d` for each `d`.
pub const DIAL_OFFSETS: [usize; 5] = [1, 2, 4, 8, 16];

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
}

/// Latencies in ms of the commitment and tx list samples, and samples missing at timeout.
#[derive(Debug, Default)]
struct Samples {
    commitment_ms: Vec<f64>,
    txlist_ms: Vec<f64>,
    missing: usize,
    /// What each commitment round cost the process.
    commitment_rounds: Vec<RoundCost>,
}

/// The process's CPU time and the wall-clock time over one round, from the publish until the
/// last node had the message (the other network idles meanwhile, its heartbeats included).
#[derive(Debug, Clone, Copy)]
struct RoundCost {
    cpu_s: f64,
    wall_s: f64,
}

impl RoundCost {
    /// Medians over `rounds`: CPU ms per round, and cores busy (CPU time / wall time).
    fn medians(rounds: &[RoundCost]) -> (f64, f64) {
        (
            median(rounds.iter().map(|r| r.cpu_s * 1e3).collect()),
            median(
                rounds
                    .iter()
                    .map(|r| r.cpu_s / r.wall_s.max(1e-9))
                    .collect(),
            ),
        )
    }
}

/// The clocks at a round's start, read again at its end for its [`RoundCost`].
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

    fn stop(self) -> RoundCost {
        RoundCost {
            cpu_s: process_cpu_s() - self.cpu_s,
            wall_s: self.at.elapsed().as_secs_f64(),
        }
    }
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

/// Runs the bench.
pub async fn run(args: PropagationArgs) -> Result<Report, ToolError> {
    if args.nodes < 2 || args.nodes > MAX_NODES || args.rounds == 0 {
        return Err(ToolError::config(
            "bench.propagation.nodes",
            format!("nodes must be in 2..={MAX_NODES} and rounds positive"),
        ));
    }
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
        bare_net.start(&args, chain).await?;
        // Both meshes settle at once after every node has peers (heartbeats graft).
        tokio::time::sleep(MESH_SETTLE).await;
        let mut sdk = Samples::default();
        let mut base = Samples::default();
        let mut after_commitment_rounds = None;
        for (round, block) in blocks.iter().enumerate() {
            if round == args.rounds {
                // Every commitment round's writes were durable before its events: the SDK's
                // figures so far are the commitments' alone.
                after_commitment_rounds = recorder.as_ref().map(|r| r.render());
            }
            let publisher = round % args.nodes;
            let sdk_round = RoundClock::start();
            let sent = sdk_net.publish(publisher, block).await?;
            let txlist_round = block.txlist.is_some();
            sent.record(&sdk_net.seen, &mut sdk, args.nodes, publisher, txlist_round)
                .await;
            let sdk_round = sdk_round.stop();
            tokio::time::sleep(ROUND_GAP).await;
            let bare_round = RoundClock::start();
            let sent = bare_net.publish(publisher, block)?;
            sent.record(
                &bare_net.seen,
                &mut base,
                args.nodes,
                publisher,
                txlist_round,
            )
            .await;
            let bare_round = bare_round.stop();
            if round < args.rounds {
                sdk.commitment_rounds.push(sdk_round);
                base.commitment_rounds.push(bare_round);
            }
            tokio::time::sleep(ROUND_GAP).await;
        }
        let after_commitment_rounds =
            after_commitment_rounds.or_else(|| recorder.as_ref().map(|r| r.render()));
        Ok::<_, ToolError>((sdk, base, after_commitment_rounds))
    }
    .await;
    sdk_net.stop().await;
    bare_net.stop().await;
    let (sdk, base, after_commitment_rounds) = result?;
    // What the disk adds: every node but the publisher commits a round's message at about the
    // same time, each database on this machine's one disk (untimed, after the rounds).
    let (fsync_single_ms, fsync_burst_ms) =
        fsync_burst(data_dir.path(), args.nodes - 1, FSYNC_PROBE_REPEATS)
            .map_err(|e| ToolError::io(data_dir.path(), e))?;

    let mut c = sdk.commitment_ms;
    let mut t = sdk.txlist_ms;
    let mut b = base.commitment_ms;
    let mut bt = base.txlist_ms;
    for v in [&mut c, &mut t, &mut b, &mut bt] {
        v.sort_by(f64::total_cmp);
    }
    let p99 = percentile(&c, 99.0);
    let base_p99 = percentile(&b, 99.0);
    let mut report = Report::default();
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
        "p99 ratio SDK / bare (target <= 1.3)",
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
    // What a commitment round costs the machine: with every node in this process on this
    // machine's cores, a round that keeps them all busy waits for CPU at every hop.
    let (sdk_cpu_ms, sdk_busy) = RoundCost::medians(&sdk.commitment_rounds);
    let (base_cpu_ms, base_busy) = RoundCost::medians(&base.commitment_rounds);
    report.extra("round_cpu_ms", round(sdk_cpu_ms, 2));
    report.extra("baseline_round_cpu_ms", round(base_cpu_ms, 2));
    report.extra(
        "round_cpu_ratio",
        round(sdk_cpu_ms / base_cpu_ms.max(1e-3), 3),
    );
    report.extra("round_busy_cores", round(sdk_busy, 2));
    report.extra("baseline_round_busy_cores", round(base_busy, 2));
    report.extra("fsync_single_ms", round(fsync_single_ms, 3));
    report.extra("fsync_burst_ms", round(fsync_burst_ms, 3));
    report.extra("storage", "redb");
    report.extra("interleaved", true);
    report.extra("txlist_bytes", args.txlist_bytes);
    report.extra("samples", c.len());
    report.extra("txlist_samples", t.len());
    if let Some(text) = after_commitment_rounds {
        let mean_ms = |name: &str, labels: &str| {
            let sum = metric_value(&text, &format!("{name}_sum{labels}"))?;
            let count = metric_value(&text, &format!("{name}_count{labels}"))?;
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
    Ok(report)
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

type Seen = Arc<Mutex<HashMap<(usize, B256), Instant>>>;

fn dial_targets(index: usize) -> impl Iterator<Item = usize> {
    DIAL_OFFSETS
        .iter()
        .filter_map(move |d| index.checked_sub(*d))
}

/// Waits until `seen` holds `key` for every node but `publisher`; returns the latencies.
async fn wait_round(
    seen: &Seen,
    nodes: usize,
    publisher: usize,
    key: B256,
    t0: Instant,
) -> (Vec<f64>, usize) {
    let deadline = t0 + ROUND_TIMEOUT;
    loop {
        let (lat, missing) = {
            let seen = seen.lock();
            let mut lat = Vec::with_capacity(nodes);
            for i in (0..nodes).filter(|i| *i != publisher) {
                if let Some(at) = seen.get(&(i, key)) {
                    lat.push(at.saturating_duration_since(t0).as_secs_f64() * 1e3);
                }
            }
            let missing = nodes - 1 - lat.len();
            (lat, missing)
        };
        if missing == 0 || Instant::now() >= deadline {
            return (lat, missing);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One published message: the key whose arrival times are the round's latencies, a key that
/// must arrive too before the round ends, and when it was published.
struct Sent {
    key: B256,
    then: Option<B256>,
    t0: Instant,
}

impl Sent {
    /// Waits for the message at every node but `publisher` and records the latencies.
    async fn record(
        self,
        seen: &Seen,
        samples: &mut Samples,
        nodes: usize,
        publisher: usize,
        txlist_round: bool,
    ) {
        let (lat, missing) = wait_round(seen, nodes, publisher, self.key, self.t0).await;
        if let Some(then) = self.then {
            let _ = wait_round(seen, nodes, publisher, then, self.t0).await;
        }
        samples.record(txlist_round, lat, missing);
    }
}

/// The SDK network: its nodes and when each saw each message.
#[derive(Default)]
struct SdkNetwork {
    nodes: Vec<P2pSdk>,
    seen: Seen,
}

impl SdkNetwork {
    /// Starts `args.nodes` SDK nodes, each on its own redb store under `data_dir`, dialled
    /// in the bench topology; returns once each has a gossip peer.
    async fn start(
        &mut self,
        args: &PropagationArgs,
        chain: ChainSpec,
        builder: &ChainBuilder,
        data_dir: &std::path::Path,
    ) -> Result<(), ToolError> {
        let mut addrs: Vec<Multiaddr> = Vec::with_capacity(args.nodes);
        for index in 0..args.nodes {
            let mut config = loopback::sdk_config(chain);
            // Blocks of a chain built in the past: the lower time bound is lifted.
            config.rules.window_end_grace = p2p::testkit::REPLAY_WINDOW_END_GRACE;
            config.catchup.enabled = false;
            let storage = RedbStore::open(&data_dir.join(format!("node{index}")), chain.limits)?;
            let (sdk, mut events) =
                P2pSdk::start(config, Arc::new(storage), builder.lookahead(), None).await?;
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
                    seen.lock().entry((index, key)).or_insert_with(Instant::now);
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

    /// Publishes `block` from `publisher`; the keys every other node must announce.
    async fn publish(&self, publisher: usize, block: &GeneratedBlock) -> Result<Sent, ToolError> {
        let key = match &block.txlist {
            Some(t) => preconfirmation_types::raw_tx_list_hash(t),
            None => preconfirmation_types::preconfirmation_hash(block.commitment.preconf()),
        };
        let t0 = Instant::now();
        self.nodes[publisher]
            .publish(block.commitment.clone(), block.txlist.clone())
            .await?;
        // A tx list round counts once the commitment has arrived everywhere too.
        let then = block
            .txlist
            .is_some()
            .then(|| preconfirmation_types::preconfirmation_hash(block.commitment.preconf()));
        Ok(Sent { key, then, t0 })
    }

    async fn stop(&mut self) {
        for sdk in self.nodes.drain(..) {
            let _ = sdk.shutdown().await;
        }
    }
}

/// Commands to a bare swarm's task.
enum BareCommand {
    Publish(GossipTopicKind, Vec<u8>),
    Dial(Multiaddr),
}

/// The bare gossipsub config: the SDK's mesh parameters, signed messages, the same message
/// id and frame cap; no application validation, no scoring.
fn bare_gossipsub(
    g: &GossipConfig,
    max_transmit: usize,
    keypair: &Keypair,
) -> Result<gossipsub::Behaviour, ToolError> {
    let mut builder = preconfirmation_net::gossip::mesh_config_builder(g, max_transmit);
    builder.validation_mode(ValidationMode::Strict);
    let config = builder
        .build()
        .map_err(|e| failed("propagation", format!("gossipsub config: {e}")))?;
    gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), config)
        .map_err(|e| failed("propagation", format!("gossipsub: {e}")))
}

/// The bare gossipsub network: a command channel and task per swarm, and when each saw each
/// message.
#[derive(Default)]
struct BareNetwork {
    handles: Vec<mpsc::UnboundedSender<BareCommand>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    seen: Seen,
}

impl BareNetwork {
    /// Starts `args.nodes` bare swarms dialled in the bench topology.
    async fn start(&mut self, args: &PropagationArgs, chain: ChainSpec) -> Result<(), ToolError> {
        let net = P2pSdkConfig::new(chain).effective_network();
        let topics = [
            IdentTopic::new(GossipTopicKind::Commitments.topic(chain.chain_id)),
            IdentTopic::new(GossipTopicKind::RawTxLists.topic(chain.chain_id)),
        ];
        let mut addrs: Vec<Multiaddr> = Vec::with_capacity(args.nodes);
        for index in 0..args.nodes {
            let keypair = Keypair::generate_secp256k1();
            let mut behaviour =
                bare_gossipsub(&net.gossip, net.gossip.max_transmit_size, &keypair)?;
            for t in &topics {
                behaviour
                    .subscribe(t)
                    .map_err(|e| failed("propagation", format!("subscribe: {e}")))?;
            }
            let mut swarm = SwarmBuilder::with_existing_identity(keypair)
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .map_err(|e| failed("propagation", e))?
                .with_behaviour(|_| behaviour)
                .map_err(|e| failed("propagation", e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
            swarm
                .listen_on(loopback::listen_addr())
                .map_err(|e| failed("propagation", e))?;
            let addr = tokio::time::timeout(PEER_TIMEOUT, async {
                loop {
                    if let SwarmEvent::NewListenAddr { address, .. } =
                        swarm.select_next_some().await
                    {
                        return address;
                    }
                }
            })
            .await
            .map_err(|_| failed("propagation", "bare swarm did not listen"))?;
            let (tx, mut rx) = mpsc::unbounded_channel::<BareCommand>();
            let seen = self.seen.clone();
            let topics = topics.clone();
            self.tasks.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        command = rx.recv() => match command {
                            Some(BareCommand::Publish(kind, data)) => {
                                let topic =
                                    &topics[usize::from(kind == GossipTopicKind::RawTxLists)];
                                let _ = swarm.behaviour_mut().publish(topic.clone(), data);
                            }
                            Some(BareCommand::Dial(addr)) => {
                                let _ = swarm.dial(addr);
                            }
                            None => return,
                        },
                        event = swarm.select_next_some() => {
                            if let SwarmEvent::Behaviour(gossipsub::Event::Message {
                                message, ..
                            }) = event
                            {
                                let at = Instant::now();
                                let key = preconfirmation_types::reexports::alloy_primitives::keccak256(
                                    &message.data,
                                );
                                seen.lock().entry((index, key)).or_insert(at);
                            }
                        }
                    }
                }
            }));
            for target in dial_targets(index) {
                let _ = tx.send(BareCommand::Dial(addrs[target].clone()));
            }
            self.handles.push(tx);
            addrs.push(addr);
        }
        // The SDK nodes waited for gossip peers; bare swarms report none: give their dials
        // the same second.
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(())
    }

    /// Publishes `block`'s payload from `publisher`; the key every other swarm must get.
    fn publish(&self, publisher: usize, block: &GeneratedBlock) -> Result<Sent, ToolError> {
        let (kind, data) = match &block.txlist {
            Some(t) => (
                GossipTopicKind::RawTxLists,
                RawTxListGossip::new(t.clone())
                    .map_err(|e| failed("propagation", e))?
                    .to_ssz(),
            ),
            None => (GossipTopicKind::Commitments, block.commitment.to_ssz()),
        };
        let key = preconfirmation_types::reexports::alloy_primitives::keccak256(&data);
        let t0 = Instant::now();
        let _ = self.handles[publisher].send(BareCommand::Publish(kind, data));
        Ok(Sent {
            key,
            then: None,
            t0,
        })
    }

    async fn stop(&mut self) {
        self.handles.clear();
        for t in self.tasks.drain(..) {
            let _ = t.await;
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
