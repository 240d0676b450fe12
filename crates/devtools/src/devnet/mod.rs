//! `preconf-node devnet`: a whole local network in one process, the README's first command.
//!
//! `--nodes` real [`Node`]s on 127.0.0.1 (real libp2p over TCP, each with its own redb dir under
//! a temp dir unless `--data-dir`), a round-robin lookahead over `--preconfers` deterministic
//! keys, and a driver: every `--block-time-ms` the elected preconfer publishes a random tx list
//! of `--txlist-bytes` and its signed commitment through "its" node, with an EOP on the last
//! slot of each window. `--late-joiners` nodes start after a third of the blocks and must catch
//! up on their own. At the end every node must hold every block and tx list ("converged").
//!
//! Gossip latency is publish → `SdkEvent::Commitment` from gossip at each other node, measured
//! in this process with one clock. With `--json` the last stdout line is one JSON object
//! ([`DevnetReport`]); the exit code is non-zero when the network did not converge.

mod lookahead;
mod ui;

pub use lookahead::DevnetWindow;

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use metrics_exporter_prometheus::PrometheusHandle;
use p2p::testkit::{Block, ChainBuilder};
use p2p::{CommitmentSource, Lookahead, SdkEvent, SdkEvents};
use parking_lot::Mutex;
use preconf_node_core::config::{NodeConfig, ScheduleSource};
use preconf_node_core::node::Node;
use preconfirmation_net::Multiaddr;
use preconfirmation_types::{
    preconfirmation_hash, secret_key_to_address, Address, ChainSpec, B256,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::Serialize;
use tracing::{info, warn};

use crate::error::ToolError;
use crate::l1_dev::{locate_anvil, Anvil, WhitelistStub};
use crate::loopback;

/// Chain id of devnets (not a public Taiko chain id).
pub const DEVNET_CHAIN_ID: u64 = 167_999;

/// Flags of `preconf-node devnet`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevnetArgs {
    /// Nodes in all, late joiners included.
    #[arg(long, default_value_t = 6)]
    pub nodes: usize,
    /// Preconfer keys in the rotation.
    #[arg(long, default_value_t = 3)]
    pub preconfers: u32,
    /// Blocks to publish.
    #[arg(long, default_value_t = 60)]
    pub blocks: u64,
    /// Time between blocks in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub block_time_ms: u64,
    /// Nodes that start after a third of the blocks and must catch up.
    #[arg(long, default_value_t = 1)]
    pub late_joiners: usize,
    /// Bytes of each random tx list.
    #[arg(long, default_value_t = 16_384)]
    pub txlist_bytes: usize,
    /// Slots each preconfer owns in a row (EOP on the last one).
    #[arg(long, default_value_t = 4)]
    pub slots_per_window: u64,
    /// Seed of the tx list bytes (random when absent).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Keep node data here instead of a temp dir that is removed at the end.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// How long to wait for convergence after the last block, in seconds.
    #[arg(long, default_value_t = 30)]
    pub converge_timeout_secs: u64,
    /// Print one JSON object as the last stdout line.
    #[arg(long)]
    pub json: bool,
    /// Give every node an HTTP server (`/metrics`, `/health`, `/ready`, `/status`, `/`) on a free port.
    #[arg(long)]
    pub http: bool,
    /// Serve one live page for the whole devnet (heads over time, preconfer rotation, latency
    /// histogram) on `--ui-addr`.
    #[arg(long)]
    pub ui: bool,
    /// Address of the devnet page; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:9470")]
    pub ui_addr: std::net::SocketAddr,
    /// With `--ui`, keep the page up this many seconds after the run (Ctrl-C ends it sooner).
    #[arg(long, default_value_t = 600)]
    pub ui_linger_secs: u64,
    /// Log at info level (default: warnings only).
    #[arg(long)]
    pub verbose: bool,
    /// Take the schedule from a local L1 instead of the static list: start anvil (see
    /// `scripts/install-anvil`), deploy the test whitelist contract, make each epoch's
    /// operator the preconfer the rotation elects, and run every node with
    /// `lookahead.source = "l1_whitelist"`. One L1 epoch is one window of 1 s slots; blocks
    /// follow the wall clock (one per slot, `--block-time-ms` is ignored).
    #[arg(long)]
    pub l1: bool,
    /// With `--l1`: Taiko's permissionless schedule instead of the whitelist. The local L1 gets
    /// the test `LookaheadStore`; each epoch a sparse list of the preconfers (every fourth
    /// epoch none: the whitelist's fallback signs it), posted during the epoch before; every
    /// node runs `lookahead.source = "l1_lookahead"`; a block every 2 s slot, signed by the
    /// owner of its window. The report lists each window, its owner and its blocks.
    #[arg(long, requires = "l1")]
    pub lookahead: bool,
}

impl Default for DevnetArgs {
    fn default() -> Self {
        Self {
            nodes: 6,
            preconfers: 3,
            blocks: 60,
            block_time_ms: 500,
            late_joiners: 1,
            txlist_bytes: 16_384,
            slots_per_window: 4,
            seed: None,
            data_dir: None,
            converge_timeout_secs: 30,
            json: false,
            http: false,
            ui: false,
            ui_addr: std::net::SocketAddr::from(([127, 0, 0, 1], 9470)),
            ui_linger_secs: 600,
            verbose: false,
            l1: false,
            lookahead: false,
        }
    }
}

/// Publish → accepted latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// The outcome of a devnet run; its JSON form is the `--json` line (field order as documented).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DevnetReport {
    /// Nodes run.
    pub nodes: usize,
    /// Blocks published.
    pub blocks: u64,
    /// Every node holds every block and tx list.
    pub converged: bool,
    /// Head block number per node (late joiners last).
    pub heads: Vec<u64>,
    /// Every late joiner reached the last block.
    pub late_joiner_caught_up: bool,
    /// Publish → accepted over gossip, over every (block, other node) pair.
    pub gossip_latency_ms: LatencyMs,
    /// Commitments accepted anywhere that no preconfer published (must be 0).
    pub invalid_accepted: u64,
    /// Wall time of the whole run in seconds.
    pub elapsed_s: f64,
    /// Where the nodes took the schedule from: `static`, `l1_whitelist` (`--l1`) or
    /// `l1_lookahead` (`--l1 --lookahead`).
    pub schedule: &'static str,
    /// `--lookahead`: every window blocks were published in, oldest first.
    pub windows: Vec<DevnetWindow>,
}

/// Most (block, preconfer) entries kept for the UI's rotation strip.
const ROTATION_KEPT: usize = 64;
/// Most latency samples kept (one per block and receiving node).
const LATENCY_SAMPLES_KEPT: usize = 1 << 20;

/// What the driver and the event collectors record; the UI reads it too.
#[derive(Default)]
pub(crate) struct Observed {
    /// Block number → (publish time, publishing node).
    pub(crate) publish_times: HashMap<u64, (Instant, usize)>,
    /// Publish → accepted over gossip, milliseconds, one per (block, other node).
    pub(crate) latencies_ms: Vec<f64>,
    /// Accepted commitments whose hash was never published.
    pub(crate) invalid_accepted: u64,
    /// (block number, preconfer index) of the most recent blocks, oldest first.
    pub(crate) rotation: std::collections::VecDeque<(u64, usize)>,
    /// Every started node: index, whether it is a late joiner, its SDK handle.
    pub(crate) nodes: Vec<(usize, bool, p2p::P2pSdk)>,
    /// Blocks published so far.
    pub(crate) published_blocks: u64,
}

/// A node of the devnet and its index.
struct DevnetNode {
    node: Node,
}

/// Node `index`'s config: the [`loopback`] preset with the devnet's own settings (HTTP only with
/// `--http`, no JSON-RPC, static peers and catch-up retried every 250 ms) and, with `--l1`, the
/// schedule read from the local L1.
fn node_config(
    args: &DevnetArgs,
    base: &std::path::Path,
    index: usize,
    builder: &ChainBuilder,
    peers: Vec<Multiaddr>,
    l1: Option<&DevnetL1>,
    lookahead_l1: Option<&lookahead::LookaheadL1>,
) -> NodeConfig {
    let lookahead = builder.lookahead();
    let mut config = loopback::node_config(&base.join(format!("node-{index}")), builder, peers);
    config.http.enabled = args.http;
    config.rpc.enabled = false;
    config.sdk.network.static_peer_backoff = Duration::from_millis(250);
    config.sdk.catchup.retry_backoff = Duration::from_millis(250);
    if let Some(l1) = l1 {
        config.lookahead.source = ScheduleSource::L1Whitelist;
        config.lookahead.preconfers = Vec::new();
        config.l1.rpc_url = l1.anvil.url.clone();
        config.l1.whitelist_address = l1.stub.address;
        config.l1.beacon_genesis_timestamp = Some(lookahead.genesis());
        config.l1.seconds_per_slot = lookahead.slot_duration();
        config.l1.slots_per_epoch = lookahead.slots_per_window();
        config.l1.poll_interval = Duration::from_millis(250);
        config.l1.request_timeout = Duration::from_secs(1);
        config.l1.max_backoff = Duration::from_secs(2);
        // Blocks follow the wall clock: no replay, the default window-end grace.
        config.sdk.rules.window_end_grace = NodeConfig::default().sdk.rules.window_end_grace;
    }
    if let Some(l1) = lookahead_l1 {
        lookahead::configure(&mut config, l1);
    }
    config
}

/// The local L1 of `devnet --l1`: anvil and the whitelist contract on it.
struct DevnetL1 {
    anvil: Anvil,
    stub: WhitelistStub,
}

impl DevnetL1 {
    /// Starts anvil, deploys the contract for `builder`'s windows (one L1 epoch each) and makes
    /// the operator of every epoch from now to `epochs` ahead the preconfer `builder` elects.
    async fn start(builder: &ChainBuilder, epochs: u64) -> Result<Self, ToolError> {
        let bin = locate_anvil().map_err(|reason| ToolError::config("devnet --l1", reason))?;
        let anvil = Anvil::start(&bin, 1).await?;
        let lookahead = builder.lookahead();
        let epoch_secs = lookahead.slots_per_window() * lookahead.slot_duration();
        let stub = WhitelistStub::deploy(&anvil, lookahead.genesis(), epoch_secs).await?;
        let proposer = |i: usize| {
            let mut bytes = [0xa0u8; 20];
            bytes[12..20].copy_from_slice(&(i as u64).to_be_bytes());
            Address::from(bytes)
        };
        let operators: Vec<(Address, Address)> = builder
            .keys()
            .iter()
            .enumerate()
            .map(|(i, k)| (proposer(i), secret_key_to_address(k)))
            .collect();
        let now = preconf_node_core::clock::unix_now();
        let first = now.saturating_sub(lookahead.genesis()) / epoch_secs;
        let assignments: Vec<(u64, Address)> = (first..=first + epochs)
            .filter_map(|epoch| {
                let signer = lookahead.signer_for_slot(epoch * lookahead.slots_per_window())?;
                let index = operators.iter().position(|(_, s)| *s == signer)?;
                Some((epoch, proposer(index)))
            })
            .collect();
        stub.setup(&operators, &assignments).await?;
        info!(url = %anvil.url, contract = %stub.address, epochs = assignments.len(), "devnet L1 ready");
        Ok(Self { anvil, stub })
    }
}

/// What every devnet node is started with.
struct Launcher<'a> {
    args: &'a DevnetArgs,
    l1: Option<&'a DevnetL1>,
    lookahead_l1: Option<&'a lookahead::LookaheadL1>,
    base: &'a std::path::Path,
    initial: usize,
    prometheus: Option<PrometheusHandle>,
    published: Arc<Mutex<HashSet<B256>>>,
    observed: Arc<Mutex<Observed>>,
}

impl Launcher<'_> {
    /// Starts node `index` dialling `peers`, with an event collector; returns it and its
    /// dialable address.
    async fn start(
        &self,
        index: usize,
        builder: &ChainBuilder,
        peers: Vec<Multiaddr>,
    ) -> Result<(DevnetNode, Multiaddr), ToolError> {
        let config = node_config(
            self.args,
            self.base,
            index,
            builder,
            peers,
            self.l1,
            self.lookahead_l1,
        );
        start_node(
            config,
            index,
            self.initial,
            self.prometheus.clone(),
            self.published.clone(),
            self.observed.clone(),
        )
        .await
    }
}

async fn start_node(
    config: NodeConfig,
    index: usize,
    initial: usize,
    prometheus: Option<PrometheusHandle>,
    published: Arc<Mutex<HashSet<B256>>>,
    observed: Arc<Mutex<Observed>>,
) -> Result<(DevnetNode, Multiaddr), ToolError> {
    let mut node = Node::start(config, prometheus).await?;
    let addr = node
        .sdk()
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ToolError::Devnet(format!("node {index} has no listen address")))?
        .with(libp2p::multiaddr::Protocol::P2p(node.sdk().local_peer_id()));
    if let Some(events) = node.take_events() {
        tokio::spawn(collect(index, events, published, observed.clone()));
    }
    let late = index >= initial;
    observed
        .lock()
        .nodes
        .push((index, late, node.sdk().clone()));
    Ok((DevnetNode { node }, addr))
}

/// Records what node `index` accepts.
async fn collect(
    index: usize,
    mut events: SdkEvents,
    published: Arc<Mutex<HashSet<B256>>>,
    observed: Arc<Mutex<Observed>>,
) {
    loop {
        match events.recv().await {
            Ok(SdkEvent::Commitment {
                commitment, source, ..
            }) => {
                let now = Instant::now();
                let hash = preconfirmation_hash(commitment.preconf());
                let known = published.lock().contains(&hash);
                let mut observed = observed.lock();
                if !known {
                    observed.invalid_accepted += 1;
                }
                if let (CommitmentSource::Gossip(_), Ok(number)) =
                    (source, u64::try_from(commitment.preconf().block_number))
                {
                    let published_at = observed.publish_times.get(&number).copied();
                    if let Some((at, publisher)) = published_at {
                        if publisher != index && observed.latencies_ms.len() < LATENCY_SAMPLES_KEPT
                        {
                            let ms = now.saturating_duration_since(at).as_secs_f64() * 1e3;
                            observed.latencies_ms.push(ms);
                        }
                    }
                }
            }
            Ok(_) => {}
            Err(p2p::P2pSdkError::Lagged { .. }) => warn!(node = index, "devnet collector lagged"),
            Err(_) => return,
        }
    }
}

/// The next block of the rotation (`--l1`: of the slot now, the chain following the wall
/// clock) and the index of the key that signs it.
fn rotation_block(
    args: &DevnetArgs,
    builder: &mut ChainBuilder,
    txlist: Vec<u8>,
) -> (Block, usize) {
    if args.l1 {
        let lookahead = builder.lookahead();
        let now = preconf_node_core::clock::unix_now();
        let current = now.saturating_sub(lookahead.genesis()) / lookahead.slot_duration();
        while builder.next_slot() < current {
            builder.skip_slot();
        }
    }
    let key_index = builder
        .key_for_slot(builder.next_slot())
        .and_then(|k| builder.keys().iter().position(|x| x == k))
        .unwrap_or(0);
    (builder.next_block(Some(txlist)), key_index)
}

/// Longest a publisher waits for the parent of the block it is about to publish.
const PARENT_WAIT: Duration = Duration::from_secs(5);

/// Waits until `sdk`'s head is at least `number`; false on timeout.
async fn wait_for_head(sdk: &p2p::P2pSdk, number: u64, limit: Duration) -> bool {
    let mut status = sdk.watch_status();
    let reached = status.wait_for(|s| s.head_block_number >= number);
    let reached = matches!(tokio::time::timeout(limit, reached).await, Ok(Ok(_)));
    reached
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs a devnet and returns its report (no printing besides the progress bar when `show`).
pub async fn run_devnet(
    args: &DevnetArgs,
    prometheus: Option<PrometheusHandle>,
    show_progress: bool,
) -> Result<DevnetReport, ToolError> {
    let started = Instant::now();
    if args.nodes < 2 || args.late_joiners >= args.nodes {
        return Err(ToolError::config(
            "devnet.nodes",
            "need at least 2 nodes and at least one that is not a late joiner",
        ));
    }
    if args.blocks == 0 || args.preconfers == 0 || args.slots_per_window == 0 {
        return Err(ToolError::config(
            "devnet",
            "blocks, preconfers and slots-per-window must be positive",
        ));
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let temp;
    let base = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("preconf-devnet-")
                .tempdir()
                .map_err(|e| ToolError::io(&std::env::temp_dir(), e))?;
            temp.path().to_path_buf()
        }
    };
    let chain = ChainSpec::new(DEVNET_CHAIN_ID, Address::repeat_byte(0x51));
    let mut builder = if args.lookahead {
        // Real time, 2 s slots; the keys sign by the L1 lookahead, not by this rotation.
        ChainBuilder::new(chain, args.preconfers, 1, 0, lookahead::SLOT_SECS)
    } else if args.l1 {
        // Real time: 1 s slots from a genesis a few windows ago, one block per slot.
        let now = preconf_node_core::clock::unix_now();
        let window = args.slots_per_window;
        let genesis = now.saturating_sub(now % window + 4 * window);
        ChainBuilder::new(chain, args.preconfers, window, genesis, 1)
    } else {
        ChainBuilder::in_the_past(
            chain,
            args.preconfers,
            args.slots_per_window,
            args.blocks + 1,
        )
    };
    let signers: Vec<Address> = builder.keys().iter().map(secret_key_to_address).collect();
    // Epochs for every block, the convergence wait and margin.
    let lookahead_epochs =
        (args.blocks * lookahead::SLOT_SECS + args.converge_timeout_secs) / 384 + 3;
    let lookahead_l1 = if args.lookahead {
        Some(lookahead::LookaheadL1::start(&signers, lookahead_epochs).await?)
    } else {
        None
    };
    let driver_schedule = lookahead_l1.as_ref().map(|_| {
        let now = preconf_node_core::clock::unix_now();
        lookahead::schedule(&signers, now - now % 384, lookahead_epochs)
    });
    let mut windows = std::collections::BTreeMap::new();
    let l1 = if args.l1 && !args.lookahead {
        // Epochs for every block, the convergence wait and margin.
        let epochs = (args.blocks + args.converge_timeout_secs) / args.slots_per_window + 4;
        Some(DevnetL1::start(&builder, epochs).await?)
    } else {
        None
    };
    let published = Arc::new(Mutex::new(HashSet::new()));
    let observed = Arc::new(Mutex::new(Observed::default()));
    let initial = args.nodes - args.late_joiners;
    info!(nodes = args.nodes, initial, seed, base = %base.display(), "devnet starting");
    let ui_shutdown = tokio_util::sync::CancellationToken::new();
    let ui = if args.ui {
        let (addr, task) = ui::serve(
            args.ui_addr,
            observed.clone(),
            args.blocks,
            args.preconfers,
            ui_shutdown.clone(),
        )
        .await?;
        // The one line a user needs to open the page (stderr keeps `--json` stdout clean).
        eprintln!("devnet UI: http://{addr}/");
        Some(task)
    } else {
        None
    };

    let launcher = Launcher {
        args,
        l1: l1.as_ref(),
        lookahead_l1: lookahead_l1.as_ref(),
        base: &base,
        initial,
        prometheus,
        published: published.clone(),
        observed: observed.clone(),
    };
    let mut nodes: Vec<DevnetNode> = Vec::with_capacity(args.nodes);
    let mut addrs: Vec<Multiaddr> = Vec::with_capacity(args.nodes);
    for index in 0..initial {
        // Each node dials up to three earlier nodes: a connected graph with redundancy.
        let peers = addrs[index.saturating_sub(3)..index].to_vec();
        let (node, addr) = launcher.start(index, &builder, peers).await?;
        nodes.push(node);
        addrs.push(addr);
    }
    for n in &nodes {
        n.node
            .sdk()
            .wait_for_gossip_peers(1, Duration::from_secs(10))
            .await?;
    }
    if args.l1 {
        // Every node has read the current epoch's operator from L1 before the first block.
        let deadline = Instant::now() + L1_READ_WAIT;
        while !nodes.iter().all(|n| {
            let now = preconf_node_core::clock::unix_now();
            n.node
                .context()
                .schedule
                .status(now)
                .current_preconfer
                .is_some()
        }) {
            if Instant::now() >= deadline {
                return Err(ToolError::Devnet(
                    "nodes did not read the schedule from L1 in time".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let progress = if show_progress {
        ProgressBar::with_draw_target(Some(args.blocks), ProgressDrawTarget::stderr())
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} block {pos}/{len} [{bar:40}] {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );

    let late_at = args.blocks / 3;
    let block_time = if args.lookahead {
        Duration::from_secs(lookahead::SLOT_SECS)
    } else if args.l1 {
        Duration::from_secs(builder.lookahead().slot_duration())
    } else {
        Duration::from_millis(args.block_time_ms.max(1))
    };
    let mut tick = tokio::time::interval(block_time);
    let mut last_number = 0;
    for b in 0..args.blocks {
        tick.tick().await;
        if b == late_at {
            for index in initial..args.nodes {
                let peers = addrs[..initial.min(3)].to_vec();
                let (node, addr) = launcher.start(index, &builder, peers).await?;
                info!(node = index, "late joiner started");
                nodes.push(node);
                addrs.push(addr);
            }
        }
        let mut txlist = vec![0u8; args.txlist_bytes];
        rng.fill_bytes(&mut txlist);
        let (block, key_index) = if let Some(schedule) = &driver_schedule {
            let now = preconf_node_core::clock::unix_now();
            let t = now - now % lookahead::SLOT_SECS;
            match lookahead::block_at(&mut builder, schedule, t, txlist.clone()) {
                Some((block, resolved, key_index)) => {
                    lookahead::record(&mut windows, &resolved);
                    (block, key_index)
                }
                None => {
                    warn!(
                        t,
                        "the devnet's schedule names no key for this slot; skipped"
                    );
                    continue;
                }
            }
        } else {
            rotation_block(args, &mut builder, txlist.clone())
        };
        let publisher = key_index % initial;
        let number = u64::try_from(block.commitment.preconf().block_number).unwrap_or_default();
        // A preconfer builds on its own head: wait (bounded) until the publishing node holds
        // the parent, as a real preconfer's sidecar would before it signs the next block.
        let publisher_sdk = nodes[publisher].node.sdk().clone();
        if !wait_for_head(&publisher_sdk, number.saturating_sub(1), PARENT_WAIT).await {
            warn!(
                block = number,
                node = publisher,
                "publisher does not hold the parent yet"
            );
        }
        published
            .lock()
            .insert(preconfirmation_hash(block.commitment.preconf()));
        {
            let mut o = observed.lock();
            o.publish_times.insert(number, (Instant::now(), publisher));
            if o.rotation.len() >= ROTATION_KEPT {
                o.rotation.pop_front();
            }
            o.rotation.push_back((number, key_index));
            o.published_blocks = b + 1;
        }
        if let Err(e) = nodes[publisher]
            .node
            .sdk()
            .publish(block.commitment, Some(txlist))
            .await
        {
            warn!(block = number, node = publisher, error = %e, "publish failed");
        }
        last_number = number;
        progress.set_position(b + 1);
        let heads: Vec<u64> = nodes
            .iter()
            .map(|n| n.node.sdk().status().head_block_number)
            .collect();
        let min = heads.iter().min().copied().unwrap_or(0);
        progress.set_message(format!(
            "heads min {min} max {}",
            heads.iter().max().copied().unwrap_or(0)
        ));
    }
    progress.finish_and_clear();

    // Wait for every node to hold the last block and all its tx lists.
    let deadline = Instant::now() + Duration::from_secs(args.converge_timeout_secs);
    let converged = loop {
        let done = nodes.iter().all(|n| {
            let s = n.node.sdk().status();
            s.head_block_number == last_number && s.missing_txlists == 0
        });
        if done || Instant::now() >= deadline {
            break done;
        }
        let mut watches: Vec<_> = nodes.iter().map(|n| n.node.sdk().watch_status()).collect();
        let changed =
            futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let _ = tokio::time::timeout(Duration::from_millis(200), changed).await;
    };
    let heads: Vec<u64> = nodes
        .iter()
        .map(|n| n.node.sdk().status().head_block_number)
        .collect();
    let late_joiner_caught_up = nodes[initial..]
        .iter()
        .all(|n| n.node.sdk().status().head_block_number == last_number);

    let (mut latencies, invalid_accepted) = {
        let observed = observed.lock();
        (observed.latencies_ms.clone(), observed.invalid_accepted)
    };
    latencies.sort_by(|a, b| a.total_cmp(b));
    let gossip_latency_ms = LatencyMs {
        p50: round2(percentile(&latencies, 50.0)),
        p99: round2(percentile(&latencies, 99.0)),
        max: round2(latencies.last().copied().unwrap_or(0.0)),
    };
    let report = DevnetReport {
        nodes: args.nodes,
        blocks: args.blocks,
        converged,
        heads,
        late_joiner_caught_up,
        gossip_latency_ms,
        invalid_accepted,
        elapsed_s: round2(started.elapsed().as_secs_f64()),
        schedule: if args.lookahead {
            "l1_lookahead"
        } else if args.l1 {
            "l1_whitelist"
        } else {
            "static"
        },
        windows: windows.into_values().collect(),
    };
    if let Some(task) = ui {
        if args.ui_linger_secs > 0 {
            eprint!("{}", summary_table(&report, initial));
            eprintln!(
                "devnet UI stays up {} s; Ctrl-C to end",
                args.ui_linger_secs
            );
            let linger = tokio::time::sleep(Duration::from_secs(args.ui_linger_secs));
            tokio::select! {
                _ = linger => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        ui_shutdown.cancel();
        let _ = task.await;
    }
    for n in nodes {
        n.node.shutdown().await;
    }
    if let Some(l1) = l1 {
        l1.anvil.stop().await;
    }
    if let Some(l1) = lookahead_l1 {
        l1.stop().await;
    }
    Ok(report)
}

/// Longest wait, with `--l1`, for every node's first schedule read.
const L1_READ_WAIT: Duration = Duration::from_secs(20);

/// `preconf-node devnet`: runs, prints a summary table (and the JSON line with `--json`), and
/// fails when the network did not converge.
pub async fn run(args: DevnetArgs, prometheus: Option<PrometheusHandle>) -> Result<(), ToolError> {
    let show = !args.json && std::io::stderr().is_terminal();
    if !args.json {
        println!(
            "devnet: {} nodes ({} late), {} preconfers, {} blocks every {} ms, {} B tx lists",
            args.nodes,
            args.late_joiners,
            args.preconfers,
            args.blocks,
            args.block_time_ms,
            args.txlist_bytes
        );
    }
    let report = run_devnet(&args, prometheus, show).await?;
    let table = summary_table(&report, args.nodes - args.late_joiners);
    if args.json {
        eprint!("{table}");
        let line = serde_json::to_string(&report).map_err(|e| ToolError::Devnet(e.to_string()))?;
        println!("{line}");
    } else {
        print!("{table}");
    }
    if report.converged && report.invalid_accepted == 0 {
        Ok(())
    } else {
        Err(ToolError::Devnet(format!(
            "not converged: heads {:?}, expected {} on every node",
            report.heads, report.blocks
        )))
    }
}

fn summary_table(report: &DevnetReport, initial: usize) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "{:<8} {:<12} {:>6}", "node", "role", "head");
    for (i, head) in report.heads.iter().enumerate() {
        let role = if i < initial {
            "initial"
        } else {
            "late joiner"
        };
        let _ = writeln!(out, "{:<8} {:<12} {:>6}", i, role, head);
    }
    let l = report.gossip_latency_ms;
    let _ = writeln!(
        out,
        "converged: {}  late joiner caught up: {}  invalid accepted: {}",
        report.converged, report.late_joiner_caught_up, report.invalid_accepted
    );
    let _ = writeln!(
        out,
        "gossip latency ms: p50 {:.2}  p99 {:.2}  max {:.2}  elapsed {:.1} s",
        l.p50, l.p99, l.max, report.elapsed_s
    );
    if !report.windows.is_empty() {
        let _ = writeln!(
            out,
            "{:<24} {:<44} {:>6}",
            "window (start, end]", "signer", "blocks"
        );
        for w in &report.windows {
            let owner = if w.fallback {
                format!("{} (fallback)", w.signer)
            } else {
                w.signer.to_string()
            };
            let _ = writeln!(
                out,
                "{:<24} {:<44} {:>6}",
                format!("({}, {}]", w.start, w.end),
                owner,
                w.blocks
            );
        }
    }
    out
}
