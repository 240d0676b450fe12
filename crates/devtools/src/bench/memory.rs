//! `bench memory`: peak RSS of this process while a node (redb storage, default caps) first
//! catches up on a chain from 3 peers, then takes a flood of validly signed commitments whose
//! parents it does not know, against the memory its configuration allows.
//!
//! Everything the phases need (chain, flood messages, serving peers) is built before the
//! phase's starting RSS is taken, so a phase's growth is the node's. The allowance of a phase
//! is its starting RSS plus [`budget_bytes`]: the configured caps of every buffer a peer can
//! fill (pending buffer, orphan tx lists, dedupe memories) and redb's page cache, plus gossipsub's caches for one
//! heartbeat history of maximum-size commitment traffic, each at a documented per-entry
//! overhead. `within_caps` is whether both phases' peaks stayed within their allowance.

use std::time::{Duration, Instant};

use clap::Args;
use p2p::testkit::ChainBuilder;
use p2p::P2pSdkConfig;
use preconf_node_core::RedbStore;
use preconfirmation_types::{GossipTopicKind, SignedCommitment, WireMessage, B256, U256};

use super::catchup::{addr_of, catch_up, start_servers};
use super::util::{check_chain_args, par_map, round, signed_chain, RssSampler, MIB};
use super::validate::{bench_chain, PRECONFERS};
use super::{failed, Report};
use crate::error::ToolError;
use crate::loopback;

/// Memory a buffered (pending) commitment costs beyond its SSZ bytes: the decoded struct,
/// the entry's bookkeeping and the index maps.
pub const PENDING_ENTRY_OVERHEAD: usize = 1024;
/// Memory per remembered message id (hash set entry + FIFO order).
pub const SEEN_ENTRY_BYTES: usize = 96;
/// Memory per remembered accepted commitment (recent, slot-signer and EOP maps, and its
/// missing tx list, indexed by hash and by block number).
pub const ACCEPTED_ENTRY_BYTES: usize = 3 * 1024;
/// Gossipsub's duplicate cache and message cache allowance: message ids of the duplicate
/// window plus full messages of the history window, at the flood's peak rate.
pub const GOSSIP_CACHE_ALLOWANCE: usize = 64 * 1024 * 1024;
/// Allocator and runtime slack (arena growth, task and channel buffers).
pub const SLACK: usize = 32 * 1024 * 1024;
/// Longest the flood's messages take to be processed after the last publish.
pub const FLOOD_DRAIN: Duration = Duration::from_secs(3);
/// Longest the flood may take; what was not published by then is not sent.
pub const FLOOD_TIMEOUT: Duration = Duration::from_secs(120);
/// Flood messages published back to back before a [`FLOOD_PAUSE`].
pub const FLOOD_BURST: usize = 256;
/// Pause after each burst (caps the flood near 25 000 messages per second).
pub const FLOOD_PAUSE: Duration = Duration::from_millis(10);
/// Blocks above the head the flood spreads over (within `max_blocks_ahead`).
pub const FLOOD_SPREAD: u64 = 1000;

/// Arguments of `bench memory`.
#[derive(Debug, Clone, Args)]
pub struct MemoryArgs {
    /// Unknown-parent commitments in the flood.
    #[arg(long, default_value_t = 100_000)]
    pub messages: usize,
    /// Commitments (each with a tx list) in the catch-up phase.
    #[arg(long, default_value_t = 20_000)]
    pub commitments: usize,
    /// Bytes of each tx list in the catch-up phase.
    #[arg(long, default_value_t = 256)]
    pub txlist_bytes: usize,
}

/// The memory a node with `config` may use above its idle size, in bytes: the SDK's caps,
/// redb's page cache ([`preconf_node_core::storage::redb_store::CACHE_BYTES`]), gossipsub's caches and slack.
pub fn budget_bytes(config: &P2pSdkConfig) -> usize {
    let pending = config.pending.max_bytes + config.pending.max_count * PENDING_ENTRY_OVERHEAD;
    let orphans = config.orphan_txlists.max_bytes;
    let dedupe = config.dedupe.seen_messages * SEEN_ENTRY_BYTES
        + config.dedupe.slot_signers * ACCEPTED_ENTRY_BYTES;
    pending
        + orphans
        + dedupe
        + preconf_node_core::storage::redb_store::CACHE_BYTES
        + GOSSIP_CACHE_ALLOWANCE
        + SLACK
}

/// Runs the bench.
pub async fn run(args: MemoryArgs) -> Result<Report, ToolError> {
    check_chain_args("bench.memory", args.commitments, args.txlist_bytes)?;
    let chain = bench_chain();
    let n = args.commitments;
    let messages = args.messages;
    let (builder, blocks, flood) = tokio::task::spawn_blocking(move || {
        let mut builder = ChainBuilder::in_the_past(chain, PRECONFERS, 1, n as u64 + 2);
        let blocks = signed_chain(&mut builder, n, args.txlist_bytes);
        let flood = flood_messages(&builder, messages);
        (builder, blocks, flood)
    })
    .await
    .map_err(|e| failed("memory", e))?;
    let config = P2pSdkConfig::new(chain);
    let budget = budget_bytes(&config);

    let servers = start_servers(chain, &builder, &blocks, None, false).await?;
    drop(blocks);
    let data_dir = tempfile::Builder::new()
        .prefix("preconf-bench-memory-")
        .tempdir()
        .map_err(|e| ToolError::io(&std::env::temp_dir(), e))?;
    let sampler = RssSampler::start();
    let result = async {
        // Phase 1: catch-up.
        sampler.reset();
        let catchup_start = sampler.peak();
        let outcome = catch_up(
            chain,
            &builder,
            &servers,
            data_dir.path(),
            n,
            900,
            None,
            false,
        )
        .await?;
        let (catchup_s, store) = (outcome.elapsed_s, outcome.store);
        let catchup_peak = sampler.peak();
        drop(store);

        // Phase 2: the flood, into a node that holds the chain (restarted on its storage).
        let store = std::sync::Arc::new(RedbStore::open(data_dir.path(), chain.limits)?);
        // The flood measures the buffers' caps, not the per-peer gossip limit: the loopback
        // preset lifts it.
        let mut node_config = loopback::sdk_config(chain);
        node_config.catchup.enabled = false;
        let (victim, _events) =
            p2p::P2pSdk::start(node_config, store, builder.lookahead(), None).await?;
        let flooder = servers
            .first()
            .ok_or_else(|| failed("memory", "no serving peer"))?;
        victim.dial(addr_of(flooder).await?).await?;
        victim
            .wait_for_gossip_peers(1, Duration::from_secs(30))
            .await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        sampler.reset();
        let flood_start = sampler.peak();
        let started = Instant::now();
        let mut published = 0usize;
        let mut first_error = None;
        let deadline = started + FLOOD_TIMEOUT;
        for (i, data) in flood.into_iter().enumerate() {
            if Instant::now() >= deadline {
                break;
            }
            if i > 0 && i % FLOOD_BURST == 0 {
                // Pace the flood to what one connection carries, so gossipsub's send queue
                // to the node does not overflow (it drops the peer when it does).
                tokio::time::sleep(FLOOD_PAUSE).await;
            }
            match flooder
                .network()
                .publish(GossipTopicKind::Commitments, data)
                .await
            {
                Ok(_) => published += 1,
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let flood_s = started.elapsed().as_secs_f64();
        tokio::time::sleep(FLOOD_DRAIN).await;
        let flood_peak = sampler.peak();
        let status = victim.status();
        let _ = victim.shutdown().await;
        Ok::<_, ToolError>(Phases {
            catchup_start,
            catchup_peak,
            catchup_s,
            flood_start,
            flood_peak,
            flood_s,
            published,
            status,
            first_error,
        })
    }
    .await;
    for s in &servers {
        let _ = s.shutdown().await;
    }
    let m = result?;
    let catchup_cap = m.catchup_start as usize + budget;
    let flood_cap = m.flood_start as usize + budget;
    let within = (m.catchup_peak as usize) <= catchup_cap && (m.flood_peak as usize) <= flood_cap;
    let (peak, cap) =
        if m.flood_peak as f64 / flood_cap as f64 >= m.catchup_peak as f64 / catchup_cap as f64 {
            (m.flood_peak as usize, flood_cap)
        } else {
            (m.catchup_peak as usize, catchup_cap)
        };
    let mib = |b: usize| round(b as f64 / MIB, 1);
    let mut report = Report::default();
    report.figure(
        "peak_rss_mib",
        "peak RSS MiB (phase closest to its cap)",
        mib(peak),
    );
    report.figure(
        "cap_mib",
        "its allowance MiB (start + configured caps)",
        mib(cap),
    );
    report.figure("within_caps", "both phases within caps", within);
    let phases = [
        ("flood_peak_rss_mib", "flood: peak RSS MiB", m.flood_peak),
        (
            "flood_growth_mib",
            "flood: growth MiB",
            m.flood_peak.saturating_sub(m.flood_start),
        ),
        (
            "catchup_peak_rss_mib",
            "catch-up: peak RSS MiB",
            m.catchup_peak,
        ),
        (
            "catchup_growth_mib",
            "catch-up: growth MiB",
            m.catchup_peak.saturating_sub(m.catchup_start),
        ),
    ];
    for (key, label, bytes) in phases {
        report.figure(key, label, mib(bytes as usize));
    }
    report.figure("budget_mib", "configured caps MiB", mib(budget));
    report.figure("flood_messages", "flood messages published", m.published);
    report.figure(
        "pending_after_flood",
        "pending (parent unknown) after flood",
        m.status.pending_parent,
    );
    report.extra("flood_s", round(m.flood_s, 3));
    report.extra(
        "flood_first_publish_error",
        m.first_error.unwrap_or_default(),
    );
    report.extra("catchup_s", round(m.catchup_s, 3));
    report.extra("catchup_commitments", n);
    Ok(report)
}

/// What the two phases measured.
struct Phases {
    /// RSS bytes when the catch-up began, and its peak during it.
    catchup_start: u64,
    catchup_peak: u64,
    /// Seconds the catch-up took.
    catchup_s: f64,
    /// RSS bytes when the flood began, and its peak during it and the drain after.
    flood_start: u64,
    flood_peak: u64,
    /// Seconds the flood took to publish.
    flood_s: f64,
    /// Flood messages published.
    published: usize,
    /// The flooded node's status after the drain.
    status: p2p::SdkStatus,
    /// The first publish error of the flood.
    first_error: Option<String>,
}

/// `count` distinct, validly signed commitments for the slot after the chain's tip whose
/// parents nobody has: block numbers spread over [`FLOOD_SPREAD`] blocks above the tip, the
/// parent hash unique per message.
fn flood_messages(builder: &ChainBuilder, count: usize) -> Vec<Vec<u8>> {
    let base = builder.next_unsigned(Some(b"flood"));
    let key = builder
        .key_for_slot(builder.next_slot())
        .copied()
        .unwrap_or_else(|| p2p::testkit::preconfer_key(0));
    let domain = builder.chain().domain;
    // The tip's child would be checked against the tip (bad parent); start one above it.
    let first = builder.next_number() + 1;
    let unsigned: Vec<_> = (0..count as u64)
        .map(|i| {
            let mut c = base.clone();
            c.preconf.block_number = U256::from(first + i % FLOOD_SPREAD);
            let mut parent = [0u8; 32];
            parent[..8].copy_from_slice(&i.to_be_bytes());
            parent[8] = 0xf1;
            c.preconf.parent_preconfirmation_hash = B256::from(parent);
            c
        })
        .collect();
    par_map(unsigned, |c| {
        let signed: SignedCommitment = preconfirmation_types::sign(&key, &domain, c);
        signed.to_ssz()
    })
}
