//! Our node against peers that behave as the deployed Taiko reference (PROTOCOL.md "Reference
//! strictness"): the strict-peer double of the adversary harness bans a peer on its first
//! malformed, over-limit or failed exchange. A fresh node must catch up from such peers without
//! ever being banned by one, and still fetch every tx list.
//!
//! `cargo test -p preconf-node --test strict_peers -- --nocapture`

use preconf_devtools::testing::adversary;
mod common;

use std::time::{Duration, Instant};

use adversary::strict::StrictPeer;
use adversary::*;
use common::process::{head_of, write_config, Proc};
use p2p::testkit::{Block, ChainBuilder};
use preconfirmation_net::RateLimitConfig;
use preconfirmation_types::SignedCommitment;

const BLOCKS: usize = 200;

/// What a strict peer serves of a chain: its commitments and tx lists.
struct Served {
    commitments: Vec<SignedCommitment>,
    txlists: Vec<Vec<u8>>,
}

impl Served {
    /// A strict peer serving it.
    async fn spawn(&self) -> StrictPeer {
        StrictPeer::spawn(
            common::chain().chain_id,
            self.commitments.clone(),
            self.txlists.clone(),
        )
        .await
    }
}

/// A chain of `count` blocks in the past with tx lists of `txlist_bytes`, and what a strict peer
/// serves of it.
fn strict_chain(count: usize, txlist_bytes: usize) -> (ChainBuilder, Vec<Block>, Served) {
    let mut builder = ChainBuilder::in_the_past(common::chain(), 3, 4, count as u64 + 100);
    let blocks = builder.blocks(count, txlist_bytes);
    let commitments = blocks.iter().map(|b| b.commitment.clone()).collect();
    let txlists = blocks
        .iter()
        .filter_map(|b| b.txlist.as_ref().map(|t| t.txlist.to_vec()))
        .collect();
    let served = Served {
        commitments,
        txlists,
    };
    (builder, blocks, served)
}

/// Waits up to `bound` until `node` holds `count` blocks and owes no tx list.
async fn caught_up(
    node: &preconf_node_core::Node,
    count: usize,
    bound: Duration,
) -> Result<(), tokio::time::error::Elapsed> {
    let mut status = node.sdk().watch_status();
    tokio::time::timeout(bound, async {
        status
            .wait_for(|s| s.head_block_number >= count as u64 && s.missing_txlists == 0)
            .await
            .map(|_| ())
            .expect("status")
    })
    .await
}

/// A fresh node catches up 200 blocks from two strict peers plus one peer of ours (default
/// limits). Its catch-up pages are small (4 commitments) so that about 50 page requests are
/// spread over the three peers: without pacing, each strict peer would see more than 8 in
/// 10 s and ban the node. Checks: the node reaches the head with every commitment and every tx
/// list, no strict peer banned it or saw a malformed request (`get_head` in the 4-byte form),
/// each strict peer was actually asked for heads and pages, and the node is still connected to
/// both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_from_strict_peers_is_never_refused() {
    let (builder, blocks, served) = strict_chain(BLOCKS, 512);
    assert_eq!(served.txlists.len(), BLOCKS);

    let (ours, _ours_events, ours_addr) =
        common::serving_peer(&builder, &blocks, RateLimitConfig::default()).await;
    let strict_a = served.spawn().await;
    let strict_b = served.spawn().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = attack_config(
        dir.path(),
        &builder,
        vec![ours_addr, strict_a.addr.clone(), strict_b.addr.clone()],
    );
    config.sdk.catchup.page_size = 4;
    config.sdk.catchup.head_peers = 3;
    let started = Instant::now();
    let node = common::start(config).await;

    // Every commitment and every tx list, within a bound that leaves room for two strict
    // windows of pacing.
    caught_up(&node, BLOCKS, Duration::from_secs(120))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "caught up with every tx list; status {:?}, bans {:?} {:?}",
                *node.sdk().watch_status().borrow(),
                strict_a.bans(),
                strict_b.bans()
            )
        });
    let elapsed = started.elapsed();
    for block in &blocks {
        let number = u64::try_from(block.commitment.preconf().block_number).expect("u64");
        assert_eq!(
            node.sdk()
                .commitment_by_number(number)
                .expect("read")
                .as_ref(),
            Some(&block.commitment)
        );
        let txlist = block.txlist.as_ref().expect("tx list");
        assert_eq!(
            node.sdk()
                .raw_txlist(&txlist.raw_tx_list_hash)
                .expect("read")
                .as_deref(),
            Some(&txlist.txlist[..]),
            "tx list of block {number}"
        );
    }

    let peers = node.sdk().peers().await.expect("peers");
    for (name, strict) in [("a", &strict_a), ("b", &strict_b)] {
        assert_eq!(strict.bans(), Vec::new(), "strict peer {name} banned us");
        assert!(
            strict.served("get_head") >= 1,
            "strict peer {name} was asked for its head"
        );
        assert!(
            strict.served("get_commitments_by_number") >= 1,
            "strict peer {name} served pages"
        );
        assert!(
            peers.iter().any(|p| p.peer_id == strict.peer_id),
            "still connected to strict peer {name}"
        );
        println!(
            "RELIABILITY strict_peer {name}: get_head {} pages {} tx lists {} bans 0",
            strict.served("get_head"),
            strict.served("get_commitments_by_number"),
            strict.served("get_raw_txlist")
        );
    }
    println!(
        "RELIABILITY strict_peers: {BLOCKS} blocks and tx lists from 2 strict + 1 of ours in {:.1} s",
        elapsed.as_secs_f64()
    );
    // The tx lists came from our peer in batches (`get_raw_txlists`), none one by one.
    let metrics = common::prometheus().render();
    let outbound = |protocol: &str, outcome: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("preconf_net_reqresp_requests_total{")
                    && l.contains(&format!("protocol=\"{protocol}\""))
                    && l.contains("direction=\"outbound\"")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert!(
        outbound("get_raw_txlists", "ok") >= 1.0,
        "batched fetch used"
    );
    assert_eq!(
        outbound("get_raw_txlist", "ok"),
        0.0,
        "no single fetch needed"
    );
    // /status tells the strict peers from ours (identify's protocol list).
    let status = common::http_get(node.http_addr().expect("HTTP enabled"), "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status.body).expect("status JSON");
    let profile_of = |peer: libp2p::PeerId| {
        status["peers"]["list"]
            .as_array()
            .expect("peer list")
            .iter()
            .find(|p| p["peer_id"] == peer.to_string())
            .map(|p| p["profile"].clone())
    };
    assert_eq!(profile_of(ours.local_peer_id()), Some("extended".into()));
    assert_eq!(profile_of(strict_a.peer_id), Some("strict".into()));
    assert_eq!(profile_of(strict_b.peer_id), Some("strict".into()));
    node.shutdown().await;
    ours.shutdown().await.ok();
}

/// Catch-up of 5 000 blocks, each with a tx list, from three peers that all run the default
/// limits: two nodes of ours and one that speaks only the single-hash tx-list protocol (the
/// strict-peer double, which also bans on the first over-limit request). The node completes
/// with every commitment and tx list, no peer penalised it (both of ours score it ≥ 0) and the
/// strict one never banned it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_5000_from_default_peers_is_never_penalised() {
    const N: usize = 5_000;
    let (builder, blocks, served) = strict_chain(N, 64);
    let (ours_a, _ea, addr_a) =
        common::serving_peer(&builder, &blocks, RateLimitConfig::default()).await;
    let (ours_b, _eb, addr_b) =
        common::serving_peer(&builder, &blocks, RateLimitConfig::default()).await;
    let single = served.spawn().await;

    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::node_config(
        dir.path(),
        &builder,
        vec![addr_a, addr_b, single.addr.clone()],
    );
    config.rpc.enabled = false;
    let started = Instant::now();
    let node = common::start(config).await;
    caught_up(&node, N, Duration::from_secs(180))
        .await
        .expect("caught up within the bound");
    let elapsed = started.elapsed();
    let stats = node.sdk().storage().stats().expect("stats");
    assert_eq!(stats.commitments, N as u64);
    assert_eq!(stats.txlists, N as u64, "every tx list");
    assert_eq!(
        single.bans(),
        Vec::new(),
        "the single-hash peer never banned us"
    );
    let me = node.sdk().local_peer_id();
    for (name, peer) in [("a", &ours_a), ("b", &ours_b)] {
        let score = peer
            .peers()
            .await
            .expect("peers")
            .into_iter()
            .find(|p| p.peer_id == me)
            .map(|p| p.score);
        assert!(
            score.is_some_and(|s| s >= 0.0),
            "peer {name} did not penalise the catching-up node: {score:?}"
        );
    }
    println!(
        "RELIABILITY catch_up_defaults: {N} blocks + tx lists from 2 default peers of ours and \
         1 single-hash peer in {:.1} s ({:.0} blocks/s); single-hash peer served {} pages, {} tx lists",
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64(),
        single.served("get_commitments_by_number"),
        single.served("get_raw_txlist"),
    );
    node.shutdown().await;
    ours_a.shutdown().await.ok();
    ours_b.shutdown().await.ok();
}

/// Against the strict reference (8 requests per protocol per 10 s; the 9th bans for the life of
/// its process), a node restarted within seconds of a full burst keeps to the budget its last
/// process spent, and its tx-list fetches ask for no list twice. The real binary
/// catches up 12 blocks from a strict peer alone, is SIGKILLed once the peer has answered
/// some tx lists, and restarts at once on the same data dir (same peer id): the peer never
/// bans it, it ends with every block and tx list, and no list was asked for twice except
/// the ones in flight at the kill (one on the wire, one arrived and not yet durable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_burst_is_never_banned_and_asks_for_each_tx_list_once() {
    const COUNT: usize = 12;
    let (builder, _, served) = strict_chain(COUNT, 256);
    let strict = served.spawn().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("node.toml");
    let mut c = common::node_config(
        &dir.path().join("data"),
        &builder,
        vec![strict.addr.clone()],
    );
    c.rpc.enabled = false;
    write_config(&config_path, &c);

    let first = Proc::spawn(&config_path, &[], &[]);
    let deadline = Instant::now() + common::WAIT;
    while strict.served("get_raw_txlist") < 3 {
        assert!(
            Instant::now() < deadline,
            "no tx list fetched: {:?}",
            strict.bans()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.sigkill();
    let before_restart = strict.served("get_raw_txlist");
    let second = Proc::spawn(&config_path, &[], &[]);
    // Two strict windows of pacing and the start-up window: well inside two minutes.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = second.status().await;
        if head_of(&status) >= COUNT as u64 && status["pending"]["missing_txlists"] == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not caught up: {status}, bans {:?}",
            strict.bans()
        );
        assert!(strict.bans().is_empty(), "banned: {:?}", strict.bans());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(strict.bans().is_empty(), "banned: {:?}", strict.bans());
    let served = strict.txlists_served();
    let repeated: usize = served.values().map(|n| n - 1).sum();
    println!(
        "RELIABILITY strict_restart txlists={COUNT} served_before_kill={before_restart} \
         served_total={} repeated={repeated}",
        strict.served("get_raw_txlist")
    );
    assert_eq!(served.len(), COUNT, "every list asked for");
    assert!(
        repeated <= 2,
        "lists asked for more than once (beyond those in flight at the kill): {served:?}"
    );
    drop(second);
}
