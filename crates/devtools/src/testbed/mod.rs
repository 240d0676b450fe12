//! `preconf-node testbed`: the real binary as many processes on a shaped private network.
//!
//! Every other multi-node figure comes from nodes in one process on 127.0.0.1 with unlimited
//! bandwidth. Here each node is its own `preconf-node run` process in its own network namespace
//! ([`netns`]), its uplink shaped with `tc tbf`, finding the others through discv5 from one
//! bootnode. The controller — this process, from inside the switch namespace — acts as the
//! preconfers' sidecars: every slot it signs the next block and publishes it through the
//! elected preconfer's JSON-RPC, and it watches every node's `commitments` and
//! `rawTxListHashes` subscriptions to time when each node accepted each message (all
//! processes share one clock). One node joins late and must catch up.
//!
//! Each latency percentile is printed beside its floor: what the links alone impose given the
//! copies the publisher sent and the hops the message took ([`hops`]), so a reader sees how far
//! each figure is from physics.
//!
//! Output: a progress bar, a table, and as the last line the JSON [`TestbedReport`].
//!
//! Needs root (namespaces, veths, qdiscs) and iproute2. Everything it creates is named
//! `pctb<pid>-…` and removed on exit, on Ctrl-C and on error; leftovers of a run that was
//! killed are removed at the next start.

mod figures;
pub mod fleet;
mod hops;
pub mod netns;
mod report;
mod watch;

pub use report::{ClassReport, TestbedReport};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use p2p::testkit::{deterministic_txlist, ChainBuilder};
use preconf_node_core::rpc;
use preconfirmation_types::{
    gossip_message_id, preconfirmation_hash, raw_tx_list_hash, secret_key_to_address, Address,
    ChainSpec, RawTxListGossip, WireMessage, B256,
};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::error::ToolError;
use fleet::Fleet;
use hops::Deliveries;
use netns::LinkBytes;
use netns::Network;
use report::{round2, table};
use watch::{
    data_rx_bytes, rpc_client, subscribe, uplink, wait_caught_up, wait_for_peers, Observations,
    Shared,
};

/// Most (node, block) pairs still missing at the end that the report lists.
const MISSING_REPORTED: usize = 10;

/// Bytes of headers around each TCP segment on a data link: Ethernet (14), IPv4 (20) and TCP
/// with the timestamp option Linux sets (32). The nodes speak IPv4 there.
pub const FRAME_HEADER_BYTES: u64 = 66;

/// Chain id of the testbed's L2.
pub const TESTBED_CHAIN_ID: u64 = 167_100;

/// Flags of `preconf-node testbed`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestbedArgs {
    /// Node processes, 3 to 64 (one bootnode, the preconfers, the others, one late joiner).
    /// 12 is what two cores host with CPU to spare (BENCHMARKS.md); 24 and 64 are stress runs.
    #[arg(long, default_value_t = 12)]
    pub nodes: usize,
    /// Uplink of every node, Mbit/s (tbf on its egress).
    #[arg(long, default_value_t = 50)]
    pub uplink_mbit: u32,
    /// A mix of uplinks instead, `MBIT:PERCENT,…` (e.g. `10:20,50:60,1000:20`), assigned to
    /// nodes in a shuffled order (`--seed`).
    #[arg(long)]
    pub uplink_mix: Option<String>,
    /// Bytes of every block's tx list.
    #[arg(long, default_value_t = 1 << 20)]
    pub txlist_bytes: usize,
    /// Blocks published, one per slot.
    #[arg(long, default_value_t = 30)]
    pub blocks: u64,
    /// L2 slot length in seconds.
    #[arg(long, default_value_t = 2)]
    pub slot_secs: u64,
    /// Preconfers in rotation (nodes 1..=P publish).
    #[arg(long, default_value_t = 4)]
    pub preconfers: u32,
    /// Slots per preconfer window.
    #[arg(long, default_value_t = 4)]
    pub slots_per_window: u64,
    /// Start the last node after a third of the blocks; it must catch up.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub late_joiner: bool,
    /// Bound, in seconds, of the mesh-forming wait and of the final convergence wait.
    #[arg(long, default_value_t = 120)]
    pub timeout_secs: u64,
    /// Parent of the nodes' data dirs (default: a temporary dir in /dev/shm, removed at exit:
    /// 24 nodes fsyncing on one shared disk would measure the disk, not the network).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Node config for every node, `KEY=VALUE` as `run --set` (repeatable); the figures in
    /// BENCHMARKS.md use none.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Seed of the link assignment.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// Fail on purpose once every node runs (tests of the cleanup on error).
    #[arg(long, hide = true)]
    pub fail_after_start: bool,
    /// Every node listens on `0.0.0.0` and `::` at the default port, as a production node
    /// does, with no address of its own in its config (no listen address, no `--nat`), and
    /// knows only the bootnode's ENR: each must find the address its ENR advertises (the
    /// source of its route out of its namespace) for discovery to form the mesh. The report's
    /// `enrs` show what each advertised.
    #[arg(long)]
    pub listen_any: bool,
}

/// Parses `MBIT:PERCENT,…` into one rate per node (`nodes` in all, shuffled with `seed`).
pub fn uplinks(args: &TestbedArgs) -> Result<Vec<u32>, ToolError> {
    let bad = |reason: String| ToolError::config("testbed.uplink_mix", reason);
    let Some(mix) = &args.uplink_mix else {
        if args.uplink_mbit == 0 {
            return Err(ToolError::config("testbed.uplink_mbit", "must be positive"));
        }
        return Ok(vec![args.uplink_mbit; args.nodes]);
    };
    let mut classes = Vec::new();
    for part in mix.split(',') {
        let (mbit, percent) = part
            .split_once(':')
            .ok_or_else(|| bad(format!("{part:?} is not MBIT:PERCENT")))?;
        let mbit: u32 = mbit
            .trim()
            .parse()
            .map_err(|_| bad(format!("rate {mbit:?}")))?;
        let percent: u32 = percent
            .trim()
            .parse()
            .map_err(|_| bad(format!("percent {percent:?}")))?;
        if mbit == 0 {
            return Err(bad("rates must be positive".into()));
        }
        classes.push((mbit, percent));
    }
    if classes.iter().map(|c| c.1).sum::<u32>() != 100 {
        return Err(bad("percentages must add up to 100".into()));
    }
    // Largest remainders: counts that add up to `nodes`.
    let n = args.nodes as u32;
    let mut counts: Vec<(usize, u32, u32)> = classes
        .iter()
        .enumerate()
        .map(|(i, &(_, p))| (i, p * n / 100, p * n % 100))
        .collect();
    let mut left = n - counts.iter().map(|c| c.1).sum::<u32>();
    counts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    for c in counts.iter_mut() {
        if left == 0 {
            break;
        }
        c.1 += 1;
        left -= 1;
    }
    counts.sort_by_key(|c| c.0);
    let mut rates: Vec<u32> = counts
        .iter()
        .flat_map(|&(i, count, _)| std::iter::repeat_n(classes[i].0, count as usize))
        .collect();
    rates.shuffle(&mut StdRng::seed_from_u64(args.seed));
    Ok(rates)
}

/// Runs the testbed: the network, the nodes, the blocks; prints the table and the JSON.
pub async fn run(args: TestbedArgs) -> Result<(), ToolError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ToolError::Testbed(
            "needs root: it creates network namespaces, veth links and tc qdiscs (run it with \
             sudo)"
                .into(),
        ));
    }
    // Leftovers of a run that was killed go first, whatever this run's flags.
    let stale = netns::clean_stale();
    if stale > 0 {
        info!(stale, "removed leftovers of an earlier testbed run");
    }
    let late = usize::from(args.late_joiner);
    if args.nodes > netns::MAX_NODES || args.nodes < args.preconfers as usize + 2 + late {
        return Err(ToolError::config(
            "testbed.nodes",
            format!(
                "{} nodes: need the bootnode, {} preconfers, one more{} and at most {}",
                args.nodes,
                args.preconfers,
                if late > 0 { " and the late joiner" } else { "" },
                netns::MAX_NODES
            ),
        ));
    }
    if args.blocks == 0 || args.preconfers == 0 || args.slots_per_window == 0 {
        return Err(ToolError::config(
            "testbed",
            "blocks, preconfers and slots-per-window must be positive",
        ));
    }
    if args.slot_secs == 0 || args.txlist_bytes == 0 {
        return Err(ToolError::config(
            "testbed",
            "slot-secs and txlist-bytes must be positive",
        ));
    }
    let rates = uplinks(&args)?;
    let cancel = CancellationToken::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread_cancel = cancel.clone();
    // The controller runs on its own thread: it moves into the switch namespace, which only
    // affects that thread (and the runtime it builds there).
    std::thread::Builder::new()
        .name("testbed".into())
        .spawn(move || {
            let result = controller_thread(args, rates, thread_cancel);
            let _ = done_tx.send(result);
        })
        .map_err(|e| ToolError::Testbed(format!("controller thread: {e}")))?;
    let mut done_rx = done_rx;
    let result = tokio::select! {
        r = &mut done_rx => r,
        () = preconf_node_core::wait_for_signal() => {
            eprintln!("interrupted; removing the testbed");
            cancel.cancel();
            done_rx.await
        }
    };
    let report = result.map_err(|_| ToolError::Testbed("controller thread died".into()))??;
    println!("{}", table(&report));
    println!(
        "{}",
        serde_json::to_string(&report).map_err(|e| ToolError::Testbed(e.to_string()))?
    );
    Ok(())
}

fn controller_thread(
    args: TestbedArgs,
    rates: Vec<u32>,
    cancel: CancellationToken,
) -> Result<TestbedReport, ToolError> {
    let started = Instant::now();
    let mut network = Network::create(&rates)?;
    network.enter_switch()?;
    let data = DataDir::new(args.data_dir.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::Testbed(format!("runtime: {e}")))?;
    let mut fleet = Fleet::default();
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = drive(&args, &rates, &network, &data, &mut fleet, started) => r,
            () = cancel.cancelled() => Err(ToolError::Interrupted),
        }
    });
    // Nodes first (they live in the namespaces), then the namespaces, then the data.
    fleet.stop();
    drop(runtime);
    network.remove();
    drop(data);
    outcome
}

/// Parent of the node data dirs: the given one (kept), or a temporary one (removed).
struct DataDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl DataDir {
    fn new(given: Option<&std::path::Path>) -> Result<Self, ToolError> {
        let data = Self::create(given)?;
        // The nodes run unprivileged ([`fleet::NODE_UID`]) and must reach their own dirs
        // inside: let others traverse (not list) it.
        use std::os::unix::fs::PermissionsExt;
        let path = &data.path;
        let mode = std::fs::metadata(path)
            .map_err(|e| ToolError::io(path, e))?
            .permissions()
            .mode();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | 0o111))
            .map_err(|e| ToolError::io(path, e))?;
        Ok(data)
    }

    fn create(given: Option<&std::path::Path>) -> Result<Self, ToolError> {
        if let Some(path) = given {
            std::fs::create_dir_all(path).map_err(|e| ToolError::io(path, e))?;
            return Ok(Self {
                path: path.to_path_buf(),
                _temp: None,
            });
        }
        let shm = std::path::Path::new("/dev/shm");
        let parent = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let temp = tempfile::Builder::new()
            .prefix("preconf-testbed-")
            .tempdir_in(&parent)
            .map_err(|e| ToolError::io(&parent, e))?;
        Ok(Self {
            path: temp.path().to_path_buf(),
            _temp: Some(temp),
        })
    }
}

/// One block as published.
struct Published {
    number: u64,
    hash: B256,
    txlist_hash: B256,
    /// Gossip message ids (lowercase hex) of the commitment and of the tx list.
    commitment_id: String,
    txlist_id: String,
    publisher: usize,
    at: Instant,
    /// Nodes running when it was published.
    present: Vec<usize>,
    /// The publisher's uplink counters just before the publish, and at the next publish.
    sent_before: LinkBytes,
    sent_after: Option<LinkBytes>,
}

impl Published {
    /// What the publisher's uplink sent in the slot of this block: (bytes, TCP payload bytes).
    fn sent(&self) -> (u64, u64) {
        let after = self.sent_after.unwrap_or(self.sent_before);
        let bytes = after.tx.saturating_sub(self.sent_before.tx);
        let packets = after.tx_packets.saturating_sub(self.sent_before.tx_packets);
        (bytes, bytes.saturating_sub(packets * FRAME_HEADER_BYTES))
    }
}

async fn drive(
    args: &TestbedArgs,
    rates: &[u32],
    network: &Network,
    data: &DataDir,
    fleet: &mut Fleet,
    started: Instant,
) -> Result<TestbedReport, ToolError> {
    let chain = ChainSpec::new(TESTBED_CHAIN_ID, Address::repeat_byte(0x51));
    let now = preconf_node_core::clock::unix_now();
    let window_secs = args.slots_per_window * args.slot_secs;
    let genesis = now.saturating_sub(now % window_secs + 2 * window_secs);
    let mut builder = ChainBuilder::new(
        chain,
        args.preconfers,
        args.slots_per_window,
        genesis,
        args.slot_secs,
    );
    let lookahead = builder.lookahead();
    let preconfers: Vec<Address> = builder.keys().iter().map(secret_key_to_address).collect();
    let config_of = |index: usize, bootnodes: Vec<String>| {
        fleet::node_config(
            data.path.join(format!("n{index}")),
            index,
            chain,
            &lookahead,
            preconfers.clone(),
            bootnodes,
            args.listen_any,
        )
    };
    let observations: Shared = Arc::default();
    let mut subscriptions = Vec::new();
    let timeout = Duration::from_secs(args.timeout_secs);

    // The bootnode, then everyone else but the late joiner, bootstrapping from its ENR.
    fleet.start(network, 0, &config_of(0, Vec::new()), &args.set)?;
    let boot = rpc_client(&mut fleet.nodes[0], timeout).await?;
    let status: Value = boot
        .request(rpc::STATUS, rpc_params![])
        .await
        .map_err(|e| ToolError::Testbed(format!("bootnode status: {e}")))?;
    let enr = status["enr"]
        .as_str()
        .ok_or_else(|| ToolError::Testbed("the bootnode has no ENR (discovery off?)".into()))?
        .to_string();
    let late_index = args.late_joiner.then_some(args.nodes - 1);
    let initial = args.nodes - usize::from(args.late_joiner);
    // Every other node knows only the bootnode's ENR.
    let start_peer = |fleet: &mut Fleet, index: usize| {
        fleet.start(
            network,
            index,
            &config_of(index, vec![enr.clone()]),
            &args.set,
        )
    };
    for index in 1..initial {
        start_peer(fleet, index)?;
    }
    let mut clients = vec![boot];
    for i in 1..initial {
        clients.push(rpc_client(&mut fleet.nodes[i], timeout).await?);
    }
    for i in 0..initial {
        subscriptions.push(subscribe(&fleet.nodes[i], observations.clone()).await?);
    }
    // Mesh: every node connected to enough peers found through discovery.
    let want = 6.min(initial - 1);
    let min_peers = wait_for_peers(&clients, want, timeout, fleet).await?;
    if args.fail_after_start {
        return Err(ToolError::Testbed(
            "failing on purpose after start (--fail-after-start)".into(),
        ));
    }

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(args.blocks), ProgressDrawTarget::stderr())
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} block {pos}/{len} [{bar:40}] {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let rx_start = data_rx_bytes(fleet, late_index);
    let mut published: Vec<Published> = Vec::new();
    let mut publish_errors = 0u64;
    let mut late_client = None;
    let slot_duration = Duration::from_secs(args.slot_secs);
    for b in 0..args.blocks {
        fleet.check_alive()?;
        // Wait for the next slot boundary, then build on the slot of now.
        let now_ms = preconf_node_core::clock::unix_ms();
        let slot_ms = args.slot_secs * 1000;
        let next = (now_ms / slot_ms + 1) * slot_ms;
        tokio::time::sleep(Duration::from_millis(next - now_ms)).await;
        let current = (next / 1000).saturating_sub(genesis) / args.slot_secs;
        while builder.next_slot() < current {
            builder.skip_slot();
        }
        if b == args.blocks / 3 {
            if let Some(index) = late_index {
                start_peer(fleet, index)?;
                late_client = Some(rpc_client(&mut fleet.nodes[index], timeout).await?);
                subscriptions.push(subscribe(&fleet.nodes[index], observations.clone()).await?);
                info!(node = index, "late joiner started");
            }
        }
        let key_index = builder
            .key_for_slot(builder.next_slot())
            .and_then(|k| builder.keys().iter().position(|x| x == k))
            .unwrap_or(0);
        let publisher = 1 + key_index;
        // A preconfer builds on its own head: wait (within the slot) until its node holds the
        // parent, as its sidecar would.
        if let Some(parent) = published.last().map(|p| p.hash) {
            let deadline = Instant::now() + slot_duration / 2;
            while observations
                .lock()
                .commitment_at(&parent, publisher)
                .is_none()
                && Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        let txlist = deterministic_txlist(builder.next_number(), args.txlist_bytes);
        let unsigned = builder.next_unsigned(Some(&txlist));
        let signed = builder.sign_next(unsigned);
        let hash = preconfirmation_hash(signed.preconf());
        let txlist_hash = raw_tx_list_hash(&txlist);
        let commitment_ssz = signed.to_ssz();
        // The ids the nodes' delivery lines name: of the payloads the publisher gossips.
        let commitment_id = hex::encode(gossip_message_id(&commitment_ssz));
        let txlist_id = RawTxListGossip::new(txlist.clone())
            .map(|g| hex::encode(gossip_message_id(&g.to_ssz())))
            .map_err(|e| ToolError::Testbed(format!("tx list gossip: {e}")))?;
        observations.lock().txlist_of.insert(hash, txlist_hash);
        let present: Vec<usize> = fleet.nodes.iter().map(|n| n.index).collect();
        let sent_before = uplink(fleet, publisher);
        let at = Instant::now();
        let result: Result<Value, _> = clients[publisher]
            .request(
                rpc::PUBLISH_COMMITMENT,
                rpc_params![rpc::to_hex(&commitment_ssz), rpc::to_hex(&txlist)],
            )
            .await;
        match result {
            Ok(_) => {
                builder.advance(&signed);
                if let Some(last) = published.last_mut() {
                    if last.sent_after.is_none() {
                        last.sent_after = Some(uplink(fleet, last.publisher));
                    }
                }
                published.push(Published {
                    number: builder.next_number() - 1,
                    hash,
                    txlist_hash,
                    commitment_id,
                    txlist_id,
                    publisher,
                    at,
                    present,
                    sent_before,
                    sent_after: None,
                });
            }
            Err(e) => {
                publish_errors += 1;
                warn!(node = publisher, error = %e, "publish refused; the slot stays empty");
            }
        }
        progress.inc(1);
    }
    // The last block's publisher bytes: until it reached everyone (below) or the next slot.
    tokio::time::sleep(slot_duration).await;
    if let Some(last) = published.last_mut() {
        last.sent_after = Some(uplink(fleet, last.publisher));
    }
    progress.finish_and_clear();

    // Convergence: every node that ran holds every commitment and tx list.
    let deadline = Instant::now() + timeout;
    let reached = |obs: &Observations, node: usize| {
        published.iter().all(|p| {
            obs.commitment_at(&p.hash, node).is_some()
                && obs.txlist_at(&p.txlist_hash, node).is_some()
        })
    };
    let regular: Vec<usize> = fleet
        .nodes
        .iter()
        .map(|n| n.index)
        .filter(|i| Some(*i) != late_index)
        .collect();
    while !regular.iter().all(|&i| reached(&observations.lock(), i)) && Instant::now() < deadline {
        fleet.check_alive()?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reached_all = regular.iter().all(|&i| reached(&observations.lock(), i));
    // What is still missing where, for the report (a few, so a failure can be followed up).
    let missing: Vec<String> = {
        let guard = observations.lock();
        let obs: &Observations = &guard;
        regular
            .iter()
            .flat_map(|&node| {
                published.iter().filter_map(move |p| {
                    let commitment = obs.commitment_at(&p.hash, node).is_some();
                    let txlist = obs.txlist_at(&p.txlist_hash, node).is_some();
                    match (commitment, txlist) {
                        (true, true) => None,
                        (false, true) => {
                            Some(format!("node {node} block {}: commitment", p.number))
                        }
                        (true, false) => Some(format!("node {node} block {}: tx list", p.number)),
                        (false, false) => Some(format!("node {node} block {}: both", p.number)),
                    }
                })
            })
            .take(MISSING_REPORTED)
            .collect()
    };
    let rx_end = data_rx_bytes(fleet, late_index);
    let late_joiner_caught_up = match (&late_client, published.last()) {
        (Some(client), Some(last)) => {
            Some(wait_caught_up(client, last.number, published.len() as u64, deadline).await)
        }
        (Some(_), None) => Some(true),
        (None, _) => None,
    };
    drop(subscriptions);
    // What each node advertises, and its peer id, from its status (the JSON of `/status`).
    let mut enrs = Vec::with_capacity(fleet.nodes.len());
    let mut node_of: HashMap<String, usize> = HashMap::new();
    let indexes = (0..initial).chain(late_index.filter(|_| late_client.is_some()));
    for (client, index) in clients.iter().chain(late_client.as_ref()).zip(indexes) {
        let status: Value = client
            .request(rpc::STATUS, rpc_params![])
            .await
            .map_err(|e| ToolError::Testbed(format!("status: {e}")))?;
        enrs.push(status["enr"].as_str().unwrap_or_default().to_string());
        if let Some(peer_id) = status["peer_id"].as_str() {
            node_of.insert(peer_id.to_string(), index);
        }
    }
    let deliveries = Deliveries::read(fleet.nodes.iter().map(|n| (n.index, n.log())));

    for p in &published {
        let (bytes, payload) = p.sent();
        debug!(
            block = p.number,
            publisher = p.publisher,
            bytes,
            payload,
            "publisher uplink in the slot of its block"
        );
    }
    // Figures.
    let figures = {
        let obs = observations.lock();
        figures::figures(&figures::Run {
            txlist_bytes: args.txlist_bytes,
            rates,
            published: &published,
            observations: &obs,
            deliveries: &deliveries,
            node_of: &node_of,
            late_index,
        })
    };
    let receivers = regular.len().saturating_sub(1).max(1) as f64;
    let payload = published.len() as f64 * args.txlist_bytes as f64;
    let duplicates_per_msg = if payload > 0.0 {
        (rx_end.saturating_sub(rx_start) as f64 / (receivers * payload) - 1.0).max(0.0)
    } else {
        0.0
    };
    Ok(TestbedReport {
        nodes: args.nodes,
        uplink: args
            .uplink_mix
            .clone()
            .unwrap_or_else(|| format!("{}mbit", args.uplink_mbit)),
        txlist_bytes: args.txlist_bytes,
        blocks: published.len() as u64,
        commitment_p50_ms: figures.commitment_p50_ms,
        commitment_p99_ms: figures.commitment_p99_ms,
        commitment_floor_ms: figures.commitment_floor_ms,
        txlist_p50_ms: figures.txlist_p50_ms,
        txlist_p99_ms: figures.txlist_p99_ms,
        txlist_floor_ms: figures.txlist_floor_ms,
        txlist_p99_over_floor: figures.txlist_p99_over_floor,
        txlist_depth_p50: figures.txlist_depth_p50,
        txlist_depth_p99: figures.txlist_depth_p99,
        txlist_depth_max: figures.txlist_depth_max,
        commitment_depth_p99: figures.commitment_depth_p99,
        depth_unknown: figures.depth_unknown,
        reached_all,
        missing,
        publisher_bytes_per_txlist: figures.publisher_bytes_per_txlist,
        publisher_copies: figures.publisher_copies,
        publisher_payload_copies: figures.publisher_payload_copies,
        duplicates_per_msg: round2(duplicates_per_msg),
        late_joiner_caught_up,
        publisher_mbit: rates[1..=args.preconfers as usize].to_vec(),
        min_peers,
        classes: figures.classes,
        publish_errors,
        enrs,
        elapsed_s: round2(started.elapsed().as_secs_f64()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: TestbedArgs,
    }

    fn args(extra: &[&str]) -> TestbedArgs {
        let mut argv = vec!["testbed"];
        argv.extend_from_slice(extra);
        Cli::parse_from(argv).args
    }

    #[test]
    fn a_mix_gives_every_node_a_rate_in_proportion() {
        let a = args(&["--nodes", "24", "--uplink-mix", "10:20,50:60,1000:20"]);
        let rates = uplinks(&a).expect("valid mix");
        assert_eq!(rates.len(), 24);
        let count = |r: u32| rates.iter().filter(|&&x| x == r).count();
        // 4.8, 14.4, 4.8 → largest remainders give the two .8s the spare nodes.
        assert_eq!((count(10), count(50), count(1000)), (5, 14, 5));
        // Same seed, same assignment; the mix is shuffled, not in class order.
        assert_eq!(uplinks(&a).expect("valid"), rates);
        assert_ne!(rates[..5], [10; 5]);
    }

    #[test]
    fn bad_mixes_name_the_key() {
        for mix in ["10:50,50:40", "10", "x:100", "0:100", "10:abc"] {
            let err = uplinks(&args(&["--uplink-mix", mix])).expect_err(mix);
            assert!(
                err.to_string().contains("testbed.uplink_mix"),
                "{mix}: {err}"
            );
        }
        assert_eq!(
            uplinks(&args(&["--nodes", "6", "--uplink-mbit", "25"])).expect("uniform"),
            vec![25; 6]
        );
    }
}
