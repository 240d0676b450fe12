//! `bench catchup`: a fresh node (the storage stack `preconf-node run` uses: redb wrapped in
//! storage health tracking; default catch-up settings) catches up on a chain of N
//! commitments, each with a tx list, from 3 serving peers on 127.0.0.1; against the rate at
//! which this machine can ecrecover on every core, measured in the same run (before and after
//! the catch-up; `limit_per_s` is their mean, `limit_before_per_s` and `limit_after_per_s`
//! are printed too).
//!
//! Serving peers hold the chain in memory. By default they run with their per-peer request
//! rate limits raised ([`SERVER_RATE_BURST`] per second, and the catching-up node is told so),
//! which measures the catching-up node itself. With `--defaults` every node runs the default
//! limits, as on a real network: the run then measures what the default limits allow, and
//! reports how many serving peers penalised the catching-up node (must be 0).
//!
//! Bytes, against a bare TCP copy in the same run:
//! - `txlist_mib_per_s`: tx-list payload bytes caught up per second (MiB/s);
//! - `tcp_copy_mib_per_s`: the same total number of bytes (every commitment's SSZ plus every
//!   tx list) copied over one plain tokio `TcpStream` on 127.0.0.1 in [`TCP_CHUNK`]-byte
//!   writes, from connect to the last byte read (run after the servers stopped);
//! - `tcp_ratio` = `txlist_mib_per_s` / `tcp_copy_mib_per_s`.
//!
//! The serving side, measured per serving peer during the catch-up (from the catching-up
//! node's start until it holds everything):
//! - CPU: each serving peer runs on a tokio runtime of its own (1 worker, built on a
//!   dedicated thread; every thread of it, blocking pool included, is named `srv<i>`); its CPU
//!   is the utime + stime of those threads from `/proc/self/task/<tid>/stat`, as a fraction of
//!   one core over the catch-up (`server_cpu_share`: the busiest server);
//! - MiB/s out: each server's storage is wrapped in a counter of the SSZ bytes read for
//!   serving (`commitments_from` results and tx lists; a tx list read but left out of a full
//!   `get_raw_txlists` answer still counts), per second of catch-up (`server_mib_per_s_out`:
//!   the busiest server). Counted here, not by the network layer.
//!
//! `servers` lists each server's `cpu_share` and `mib_per_s_out`.

use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use libp2p::multiaddr::Protocol;
use p2p::testkit::ChainBuilder;
use p2p::{
    MemoryStorage, MemoryStorageLimits, P2pSdk, P2pSdkConfig, RotatingLookahead, SdkStorage,
};
use preconf_node_core::storage::{
    open_node_storage, Layered, NodeStorage, RedbStore, Served, StorageHooks,
};
use preconfirmation_net::{Multiaddr, RateLimitConfig};
use preconfirmation_types::reexports::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use preconfirmation_types::reexports::secp256k1::Message;
use preconfirmation_types::reexports::ssz::Encode;
use preconfirmation_types::{raw_tx_list_hash, ChainSpec};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use super::util::{
    check_chain_args, par_map, recover_inputs, round, round_sig, signed_chain, threads_cpu_s,
    GeneratedBlock, MIB,
};
use super::validate::{bench_chain, PRECONFERS};
use super::{failed, Report};
use crate::error::ToolError;
use crate::loopback;

/// Serving peers.
pub const SERVING_PEERS: usize = 3;
/// Requests per second each serving peer allows per protocol and peer.
pub const SERVER_RATE_BURST: u32 = 1_000_000;
/// Commitments written to a serving peer's storage per call while filling it.
pub const FILL_CHUNK: usize = 4096;
/// How often the catch-up progress is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Longest wait for a node to see a peer.
pub const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes per write of the bare TCP copy.
pub const TCP_CHUNK: usize = 64 * 1024;
/// How long a serving runtime keeps an idle blocking thread: longer than any run, so no
/// thread (and the CPU time it used) goes away during the catch-up.
const BLOCKING_KEEP_ALIVE: Duration = Duration::from_secs(24 * 3600);
/// Longest wait for a serving runtime's tasks when it stops.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

/// Arguments of `bench catchup`.
#[derive(Debug, Clone, Args)]
pub struct CatchupArgs {
    /// Commitments to catch up on.
    #[arg(long, default_value_t = 100_000)]
    pub commitments: usize,
    /// Bytes of each block's tx list.
    #[arg(long, default_value_t = 256)]
    pub txlist_bytes: usize,
    /// Longest the catch-up may take, seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_s: u64,
    /// Requests in flight per peer (the catching-up node's `catchup.max_requests_per_peer`
    /// and the servers' `max_concurrent_inbound_per_protocol`); the defaults (2) when absent.
    #[arg(long)]
    pub requests_per_peer: Option<usize>,
    /// Every node on default settings (rate limits, concurrency, pacing) instead of serving
    /// peers with raised limits.
    #[arg(long)]
    pub defaults: bool,
}

/// What a catch-up run measured.
#[derive(Debug)]
pub(crate) struct CatchUpOutcome {
    /// Seconds from start until every commitment and tx list was stored.
    pub(crate) elapsed_s: f64,
    /// The catching-up node's store.
    pub(crate) store: Arc<RedbStore>,
    /// Serving peers whose score of the catching-up node was below 0 at the end.
    pub(crate) penalties: usize,
    /// What each serving peer spent during the catch-up.
    pub(crate) servers: Vec<ServerLoad>,
}

/// What a serving peer spent during a catch-up.
#[derive(Debug, Clone)]
pub(crate) struct ServerLoad {
    /// Its threads' name.
    pub(crate) name: String,
    /// CPU seconds (user + system) of its threads.
    pub(crate) cpu_s: f64,
    /// SSZ bytes read from its storage for serving.
    pub(crate) bytes_out: u64,
}

/// Runs the bench.
pub async fn run(args: CatchupArgs) -> Result<Report, ToolError> {
    check_chain_args("bench.catchup", args.commitments, args.txlist_bytes)?;
    let chain = bench_chain();
    let n = args.commitments;
    let (builder, blocks) = tokio::task::spawn_blocking(move || {
        let mut builder = ChainBuilder::in_the_past(chain, PRECONFERS, 1, n as u64 + 1);
        let blocks = signed_chain(&mut builder, n, args.txlist_bytes);
        (builder, blocks)
    })
    .await
    .map_err(|e| failed("catchup", e))?;
    // The limit is measured before and after the catch-up and averaged: on a shared VM one
    // 2-second measurement varies by a fifth from run to run.
    let limit_before_per_s = ecrecover_limit(chain, &blocks).await?;

    let servers = start_servers(
        chain,
        &builder,
        &blocks,
        args.requests_per_peer,
        args.defaults,
    )
    .await?;
    let data_dir = tempfile::Builder::new()
        .prefix("preconf-bench-catchup-")
        .tempdir()
        .map_err(|e| ToolError::io(&std::env::temp_dir(), e))?;
    let outcome = catch_up(
        chain,
        &builder,
        &servers,
        data_dir.path(),
        n,
        args.timeout_s,
        args.requests_per_peer,
        args.defaults,
    )
    .await;
    for s in &servers {
        let _ = s.shutdown().await;
    }
    let CatchUpOutcome {
        elapsed_s: elapsed,
        penalties,
        servers: loads,
        ..
    } = outcome?;
    let limit_after_per_s = ecrecover_limit(chain, &blocks).await?;
    let limit_per_s = (limit_before_per_s + limit_after_per_s) / 2.0;
    let txlist_bytes: u64 = blocks
        .iter()
        .filter_map(|b| b.txlist.as_ref())
        .map(|t| t.len() as u64)
        .sum();
    let commitment_bytes: u64 = blocks
        .iter()
        .map(|b| b.commitment.ssz_bytes_len() as u64)
        .sum();
    drop(blocks);
    let tcp_copy_mib_per_s = tcp_copy_mib_per_s(txlist_bytes + commitment_bytes).await?;
    let per_s = n as f64 / elapsed;
    let ratio = per_s / limit_per_s;
    let txlist_mib_per_s = txlist_bytes as f64 / MIB / elapsed;
    let server_figures: Vec<(String, f64, f64)> = loads
        .iter()
        .map(|l| {
            (
                l.name.clone(),
                l.cpu_s / elapsed,
                l.bytes_out as f64 / MIB / elapsed,
            )
        })
        .collect();
    let server_cpu_share = server_figures.iter().map(|s| s.1).fold(0.0, f64::max);
    let server_mib_per_s_out = server_figures.iter().map(|s| s.2).fold(0.0, f64::max);
    let mut report = Report::default();
    report.figure("per_s", "commitments caught up per second", round(per_s, 0));
    report.figure(
        "limit_per_s",
        "ecrecover per second on every core (mean of before and after)",
        round(limit_per_s, 0),
    );
    report.extra("limit_before_per_s", round(limit_before_per_s, 0));
    report.extra("limit_after_per_s", round(limit_after_per_s, 0));
    report.figure("ratio", "ratio (target >= 0.5)", round(ratio, 3));
    report.figure("elapsed_s", "catch-up seconds", round(elapsed, 3));
    report.figure("commitments", "commitments (each with a tx list)", n);
    report.extra("txlist_bytes", args.txlist_bytes);
    report.extra("peers", SERVING_PEERS);
    report.extra("requests_per_peer", args.requests_per_peer.unwrap_or(2));
    report.figure(
        "penalties",
        "serving peers that penalised the catching-up node (must be 0)",
        penalties,
    );
    report.extra("defaults", args.defaults);
    report.extra("target_met", ratio >= 0.5);
    report.figure(
        "txlist_mib_per_s",
        "tx-list MiB caught up per second",
        round_sig(txlist_mib_per_s, 4),
    );
    report.figure(
        "tcp_copy_mib_per_s",
        "bare TCP copy of the same bytes, MiB/s",
        round_sig(tcp_copy_mib_per_s, 4),
    );
    report.figure(
        "tcp_ratio",
        "tx-list MiB/s over bare TCP MiB/s",
        round_sig(txlist_mib_per_s / tcp_copy_mib_per_s, 4),
    );
    report.figure(
        "server_cpu_share",
        "busiest serving peer's CPU (fraction of one core)",
        round_sig(server_cpu_share, 4),
    );
    report.figure(
        "server_mib_per_s_out",
        "busiest serving peer's MiB/s out (storage reads)",
        round_sig(server_mib_per_s_out, 4),
    );
    report.extra(
        "servers",
        server_figures
            .iter()
            .map(|(name, cpu, mib)| {
                json!({
                    "name": name,
                    "cpu_share": round_sig(*cpu, 4),
                    "mib_per_s_out": round_sig(*mib, 4),
                })
            })
            .collect::<Vec<_>>(),
    );
    Ok(report)
}

/// Copies `total` bytes over one plain TCP connection on 127.0.0.1 (one writer task writing
/// [`TCP_CHUNK`]-byte chunks, a reader reading to the end); MiB/s from connect to the last
/// byte read.
pub(crate) async fn tcp_copy_mib_per_s(total: u64) -> Result<f64, ToolError> {
    let io = |e: std::io::Error| failed("catchup", format!("tcp copy: {e}"));
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(io)?;
    let addr = listener.local_addr().map_err(io)?;
    let reader = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await?;
        let mut buf = vec![0u8; TCP_CHUNK];
        let mut read = 0u64;
        loop {
            let got = socket.read(&mut buf).await?;
            if got == 0 {
                break;
            }
            read += got as u64;
        }
        Ok::<_, std::io::Error>((read, Instant::now()))
    });
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.map_err(io)?;
    let writer = tokio::spawn(async move {
        let chunk = vec![0xa5u8; TCP_CHUNK];
        let mut left = total;
        while left > 0 {
            let len = left.min(TCP_CHUNK as u64) as usize;
            stream.write_all(&chunk[..len]).await?;
            left -= len as u64;
        }
        stream.shutdown().await
    });
    writer
        .await
        .map_err(|e| failed("catchup", e))?
        .map_err(io)?;
    let (read, ended) = reader
        .await
        .map_err(|e| failed("catchup", e))?
        .map_err(io)?;
    if read != total {
        return Err(failed(
            "catchup",
            format!("tcp copy: read {read} of {total} bytes"),
        ));
    }
    let elapsed = ended.duration_since(started).as_secs_f64().max(1e-9);
    Ok(total as f64 / MIB / elapsed)
}

/// Bare ecrecover of every commitment on every core, per second.
pub(crate) async fn ecrecover_limit(
    chain: ChainSpec,
    blocks: &[GeneratedBlock],
) -> Result<f64, ToolError> {
    let inputs = recover_inputs(&chain, blocks);
    let count = inputs.len();
    let elapsed = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let ok = par_map(inputs, |(digest, sig)| {
            let id = if sig[64] == 0 {
                RecoveryId::Zero
            } else {
                RecoveryId::One
            };
            RecoverableSignature::from_compact(&sig[..64], id)
                .and_then(|s| s.recover_ecdsa(Message::from_digest(digest.0)))
                .is_ok()
        });
        (started.elapsed().as_secs_f64(), ok.iter().all(|ok| *ok))
    })
    .await
    .map_err(|e| failed("catchup", e))?;
    if !elapsed.1 {
        return Err(failed("catchup", "baseline recovery failed"));
    }
    Ok(count as f64 / elapsed.0.max(1e-9))
}

/// Counts the SSZ bytes a serving peer's storage reads for serving (`commitments_from` results
/// and tx lists); lookups that serve nothing (`has_txlist`, the start-up scan) do not count.
#[derive(Debug, Default)]
pub(crate) struct ServedBytes(AtomicU64);

impl ServedBytes {
    /// SSZ bytes read for serving so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl StorageHooks for ServedBytes {
    fn served(&self, read: Served<'_>) {
        let bytes = match read {
            Served::Commitments(commitments) => commitments.iter().map(Encode::ssz_bytes_len).sum(),
            Served::Txlist(txlist) => txlist.len(),
        };
        self.0.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// A serving peer: a [`P2pSdk`] on a tokio runtime of its own (1 worker, every thread named
/// [`ServingPeer::name`]), owned by a dedicated thread that also drops it. Derefs to the SDK
/// handle, which works from any runtime.
pub(crate) struct ServingPeer {
    sdk: P2pSdk,
    name: String,
    served: Arc<ServedBytes>,
    /// Tells the owning thread to stop the SDK and drop the runtime (so does dropping it).
    stop: parking_lot::Mutex<Option<oneshot::Sender<()>>>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Deref for ServingPeer {
    type Target = P2pSdk;

    fn deref(&self) -> &P2pSdk {
        &self.sdk
    }
}

impl ServingPeer {
    /// Starts the SDK, serving `storage`, on a new runtime in a new thread, both named `name`.
    async fn start(
        name: String,
        config: P2pSdkConfig,
        storage: MemoryStorage,
        lookahead: Arc<RotatingLookahead>,
    ) -> Result<Self, ToolError> {
        let (started_tx, started_rx) = oneshot::channel::<Result<P2pSdk, ToolError>>();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let served = Arc::new(ServedBytes::default());
        let sdk_storage = Arc::new(Layered::new(Arc::new(storage), served.clone()));
        let runtime_name = name.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name(runtime_name)
                    .thread_keep_alive(BLOCKING_KEEP_ALIVE)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(failed("catchup", format!("runtime: {e}"))));
                        return;
                    }
                };
                let started = runtime.block_on(P2pSdk::start(config, sdk_storage, lookahead, None));
                match started {
                    Ok((sdk, _events)) => {
                        let _ = started_tx.send(Ok(sdk.clone()));
                        runtime.block_on(async move {
                            // Asked to stop, or the handle is gone.
                            let _ = stop_rx.await;
                            let _ = sdk.shutdown().await;
                        });
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e.into()));
                    }
                }
                runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
            })
            .map_err(|e| failed("catchup", format!("server thread: {e}")))?;
        let sdk = started_rx
            .await
            .map_err(|_| failed("catchup", "server thread ended"))??;
        Ok(Self {
            sdk,
            name,
            served,
            stop: parking_lot::Mutex::new(Some(stop_tx)),
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// The name of this server's threads.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// CPU seconds its threads used so far.
    pub(crate) fn cpu_s(&self) -> f64 {
        threads_cpu_s(&self.name)
    }

    /// SSZ bytes read from its storage for serving so far.
    pub(crate) fn served_bytes(&self) -> u64 {
        self.served.get()
    }

    /// Stops the SDK, then drops its runtime on the owning thread; waits for both.
    pub(crate) async fn shutdown(&self) -> Result<(), ToolError> {
        if let Some(stop) = self.stop.lock().take() {
            let _ = stop.send(());
        }
        let thread = self.thread.lock().take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| failed("catchup", e))?
                .map_err(|_| failed("catchup", format!("server thread {} panicked", self.name)))?;
        }
        Ok(())
    }
}

/// Starts the serving peers, each holding the whole chain and its tx lists.
pub(crate) async fn start_servers(
    chain: ChainSpec,
    builder: &ChainBuilder,
    blocks: &[GeneratedBlock],
    requests_per_peer: Option<usize>,
    defaults: bool,
) -> Result<Vec<ServingPeer>, ToolError> {
    let mut servers = Vec::with_capacity(SERVING_PEERS);
    for i in 0..SERVING_PEERS {
        let storage = MemoryStorage::new(MemoryStorageLimits {
            max_commitments: blocks.len() + 1,
            max_txlists: blocks.len() + 1,
            max_txlist_bytes: usize::MAX / 2,
        });
        for chunk in blocks.chunks(FILL_CHUNK) {
            let commitments: Vec<_> = chunk.iter().map(|b| b.commitment.clone()).collect();
            storage
                .put_commitments(&commitments)
                .map_err(|e| failed("catchup", e))?;
        }
        for (i, b) in blocks.iter().enumerate() {
            if let Some(t) = &b.txlist {
                storage
                    .put_txlist(raw_tx_list_hash(t), i as u64 + 1, Bytes::from(t.clone()))
                    .map_err(|e| failed("catchup", e))?;
            }
        }
        let mut config = loopback::sdk_config(chain);
        if !defaults {
            config.network.rate_limit =
                RateLimitConfig::uniform(SERVER_RATE_BURST, Duration::from_secs(1));
        }
        config.catchup.enabled = false;
        if let Some(n) = requests_per_peer {
            config.network.max_concurrent_inbound_per_protocol = n.max(1);
        }
        servers.push(
            ServingPeer::start(format!("srv{i}"), config, storage, builder.lookahead()).await?,
        );
    }
    Ok(servers)
}

/// The dialable address of `sdk`.
pub(crate) async fn addr_of(sdk: &P2pSdk) -> Result<Multiaddr, ToolError> {
    Ok(sdk
        .listen_addrs()
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| failed("catchup", "server without listen address"))?
        .with(Protocol::P2p(sdk.local_peer_id())))
}

/// Starts a fresh node on `data_dir` peered with `servers`; waits until it holds all `n`
/// commitments and their tx lists.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn catch_up(
    chain: ChainSpec,
    builder: &ChainBuilder,
    servers: &[ServingPeer],
    data_dir: &std::path::Path,
    n: usize,
    timeout_s: u64,
    requests_per_peer: Option<usize>,
    defaults: bool,
) -> Result<CatchUpOutcome, ToolError> {
    let mut peers = Vec::with_capacity(servers.len());
    for s in servers {
        peers.push(addr_of(s).await?);
    }
    // The stack `preconf-node run` builds; the stats below come from its redb store.
    let NodeStorage { store, storage, .. } = open_node_storage(data_dir, chain.limits, None)?;
    let mut config = loopback::sdk_config(chain);
    config.network.static_peers = peers;
    if !defaults {
        // The servers' limits are raised (see `start_servers`); the catching-up node is told
        // so, or its outbound pacing would hold it to the defaults every other node runs.
        config.network.politeness.extended_rate_limit =
            RateLimitConfig::uniform(SERVER_RATE_BURST, Duration::from_secs(1));
    }
    if let Some(n) = requests_per_peer {
        config.catchup.max_requests_per_peer = n.max(1);
        config.catchup.parallel_txlists = n.max(1) * SERVING_PEERS + 2;
        config.network.politeness.extended_max_in_flight = n.max(1);
    }
    let before: Vec<(f64, u64)> = servers
        .iter()
        .map(|s| (s.cpu_s(), s.served_bytes()))
        .collect();
    let started = Instant::now();
    let (sdk, _events) = P2pSdk::start(config, storage, builder.lookahead(), None).await?;
    let deadline = started + Duration::from_secs(timeout_s);
    let result = loop {
        let stats = store.stats().map_err(|e| failed("catchup", e))?;
        if stats.commitments >= n as u64 && stats.txlists >= n as u64 {
            break Ok(started.elapsed().as_secs_f64());
        }
        if Instant::now() >= deadline {
            break Err(failed(
                "catchup",
                format!(
                    "timed out after {timeout_s} s with {} commitments and {} tx lists of {n}",
                    stats.commitments, stats.txlists
                ),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    let loads = servers
        .iter()
        .zip(before)
        .map(|(s, (cpu_s, served))| ServerLoad {
            name: s.name().to_string(),
            // A thread never gives back CPU time (the blocking threads are kept alive).
            cpu_s: (s.cpu_s() - cpu_s).max(0.0),
            bytes_out: s.served_bytes().saturating_sub(served),
        })
        .collect();
    let me = sdk.local_peer_id();
    let mut penalties = 0;
    for server in servers {
        let peers = server.peers().await.unwrap_or_default();
        if peers.iter().any(|p| p.peer_id == me && p.score < 0.0) {
            penalties += 1;
        }
    }
    let _ = sdk.shutdown().await;
    result.map(|elapsed_s| CatchUpOutcome {
        elapsed_s,
        store,
        penalties,
        servers: loads,
    })
}
