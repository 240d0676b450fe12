//! `bench catchup`: a fresh node (redb storage, default catch-up settings) catches up on a
//! chain of N commitments, each with a tx list, from 3 serving peers on 127.0.0.1; against the
//! rate at which this machine can ecrecover on every core, measured in the same run.
//!
//! Serving peers hold the chain in memory. By default they run with their per-peer request
//! rate limits raised ([`SERVER_RATE_BURST`] per second, and the catching-up node is told so),
//! which measures the catching-up node itself. With `--defaults` every node runs the default
//! limits, as on a real network: the run then measures what the default limits allow, and
//! reports how many serving peers penalised the catching-up node (must be 0).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use libp2p::multiaddr::Protocol;
use p2p::testkit::ChainBuilder;
use p2p::{MemoryStorage, MemoryStorageLimits, P2pSdk, P2pSdkConfig, SdkStorage};
use preconfirmation_net::{Multiaddr, RateLimitConfig};
use preconfirmation_types::reexports::secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use preconfirmation_types::reexports::secp256k1::Message;
use preconfirmation_types::{raw_tx_list_hash, signing_hash, ChainSpec, B256};

use super::util::{par_map, round, signed_chain, GeneratedBlock};
use super::validate::{bench_chain, PRECONFERS};
use super::{failed, Report};
use crate::error::NodeError;
use crate::redb_store::RedbStore;

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
}

/// Runs the bench.
pub async fn run(args: CatchupArgs) -> Result<Report, NodeError> {
    if args.commitments == 0 || args.txlist_bytes == 0 {
        return Err(NodeError::Config {
            key: "bench.catchup".into(),
            reason: "commitments and txlist-bytes must be positive".into(),
        });
    }
    let chain = bench_chain();
    let n = args.commitments;
    let (builder, blocks) = tokio::task::spawn_blocking(move || {
        let mut builder = ChainBuilder::in_the_past(chain, PRECONFERS, 1, n as u64 + 1);
        let blocks = signed_chain(&mut builder, n, args.txlist_bytes);
        (builder, blocks)
    })
    .await
    .map_err(|e| failed("catchup", e))?;
    let limit_per_s = ecrecover_limit(chain, &blocks).await?;

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
        .map_err(|e| NodeError::io(&std::env::temp_dir(), e))?;
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
        ..
    } = outcome?;
    let per_s = n as f64 / elapsed;
    let ratio = per_s / limit_per_s;
    let mut report = Report::default();
    report.figure("per_s", "commitments caught up per second", round(per_s, 0));
    report.figure(
        "limit_per_s",
        "ecrecover per second on every core",
        round(limit_per_s, 0),
    );
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
    Ok(report)
}

/// Bare ecrecover of every commitment on every core, per second.
pub(crate) async fn ecrecover_limit(
    chain: ChainSpec,
    blocks: &[GeneratedBlock],
) -> Result<f64, NodeError> {
    let inputs: Vec<(B256, [u8; 65])> = blocks
        .iter()
        .map(|b| {
            (
                signing_hash(&chain.domain, &b.commitment.commitment),
                b.commitment.signature.0,
            )
        })
        .collect();
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

fn listen_addr() -> Multiaddr {
    "/ip4/127.0.0.1/tcp/0"
        .parse()
        .unwrap_or_else(|_| Multiaddr::empty())
}

/// Starts the serving peers, each holding the whole chain and its tx lists.
pub(crate) async fn start_servers(
    chain: ChainSpec,
    builder: &ChainBuilder,
    blocks: &[GeneratedBlock],
    requests_per_peer: Option<usize>,
    defaults: bool,
) -> Result<Vec<P2pSdk>, NodeError> {
    let mut servers = Vec::with_capacity(SERVING_PEERS);
    for _ in 0..SERVING_PEERS {
        let storage = Arc::new(MemoryStorage::new(MemoryStorageLimits {
            max_commitments: blocks.len() + 1,
            max_txlists: blocks.len() + 1,
            max_txlist_bytes: usize::MAX / 2,
        }));
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
        let mut config = P2pSdkConfig::new(chain);
        config.network.listen_addr = listen_addr();
        config.network.discovery_enabled = false;
        if !defaults {
            config.network.rate_limit =
                RateLimitConfig::uniform(SERVER_RATE_BURST, Duration::from_secs(1));
        }
        config.catchup.enabled = false;
        if let Some(n) = requests_per_peer {
            config.network.max_concurrent_inbound_per_protocol = n.max(1);
        }
        let (sdk, _events) = P2pSdk::start(config, storage, builder.lookahead(), None).await?;
        servers.push(sdk);
    }
    Ok(servers)
}

/// The dialable address of `sdk`.
pub(crate) async fn addr_of(sdk: &P2pSdk) -> Result<Multiaddr, NodeError> {
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
    servers: &[P2pSdk],
    data_dir: &std::path::Path,
    n: usize,
    timeout_s: u64,
    requests_per_peer: Option<usize>,
    defaults: bool,
) -> Result<CatchUpOutcome, NodeError> {
    let mut peers = Vec::with_capacity(servers.len());
    for s in servers {
        peers.push(addr_of(s).await?);
    }
    let store = Arc::new(RedbStore::open(data_dir, chain.limits)?);
    let mut config = P2pSdkConfig::new(chain);
    config.network.listen_addr = listen_addr();
    config.network.discovery_enabled = false;
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
    let started = Instant::now();
    let (sdk, _events) = P2pSdk::start(config, store.clone(), builder.lookahead(), None).await?;
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
    })
}
