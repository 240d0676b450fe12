//! SIGKILL during start-up catch-up, with the real `preconf-node` binary
//! (`CARGO_BIN_EXE_preconf-node`, JSON logs on stderr, `/status` over HTTP).
//!
//! A fresh node catches up a long chain (every block with a small tx list) from an in-process
//! serving peer; it is SIGKILLed while `/status` reports it syncing with a head strictly between
//! its start and the target (past the first third of the chain). Restarted alone, its head is
//! at least the last head it reported before the kill, and that head is the serving peer's
//! commitment (nothing acknowledged lost or altered); restarted connected, it finishes catching
//! up to the serving peer's head. Prints a
//! `RELIABILITY` line (run with `--nocapture`).
//!
//! `cargo test -p preconf-node --test process_catchup -- --nocapture` (short, 3 000 blocks);
//! `cargo test -p preconf-node --test process_catchup -- --ignored --nocapture` (20 000 blocks).

use std::time::{Duration, Instant};

mod common;

use common::process::{head_of, write_config, Proc, WAIT};
use common::{chain, node_config, put_txlist, serving_peer};
use p2p::testkit::ChainBuilder;
use preconfirmation_net::{RateLimit, RateLimitConfig};
use preconfirmation_types::preconfirmation_hash;

/// Bytes of each block's tx list (small: the test is about commitments and crash safety).
const TXLIST_BYTES: usize = 64;

/// Commitment pages the serving peer answers per second. The catch-up is paced by the peer's
/// limit (which the node is told, so it never exceeds it), not by how fast this machine is: a
/// 3 000-block chain is 12 pages of 256, several seconds at this rate, so the node is seen
/// mid-way however fast it validates (a faster build once caught up within 80 polls).
const PAGES_PER_SECOND: u32 = 2;

/// The serving peer's inbound limits: commitment pages at [`PAGES_PER_SECOND`], everything
/// else out of the way.
fn paced_limits() -> RateLimitConfig {
    let mut limits = RateLimitConfig::uniform(1_000_000, Duration::from_secs(1));
    limits.get_commitments_by_number = RateLimit::new(PAGES_PER_SECOND, Duration::from_secs(1));
    limits
}

/// The hash of the commitment `server` holds at `number`, as `/status` spells it.
fn served_hash(server: &p2p::P2pSdk, number: u64) -> String {
    let commitment = server
        .commitment_by_number(number)
        .expect("server storage")
        .expect("server holds the block");
    preconfirmation_hash(commitment.preconf()).to_string()
}

async fn sigkill_during_catch_up(blocks: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = ChainBuilder::in_the_past(chain(), 3, 4, blocks as u64 + 100);
    let generated = builder.blocks(blocks, TXLIST_BYTES);
    let limits = paced_limits();
    let (server, _server_events, server_addr) = serving_peer(&builder, &generated, limits).await;
    let target = blocks as u64;
    assert_eq!(server.status().head_block_number, target);

    let data = dir.path().join("node");
    let connected = dir.path().join("connected.toml");
    let isolated = dir.path().join("isolated.toml");
    let mut c = node_config(&data, &builder, vec![server_addr]);
    c.rpc.enabled = false;
    // Tell the node the server's limits, or its pacing holds it to the defaults.
    c.sdk.network.politeness.extended_rate_limit = limits;
    write_config(&connected, &c);
    c.sdk.network.static_peers.clear();
    write_config(&isolated, &c);

    // 1. A fresh node catches up; SIGKILL once /status shows it syncing past a third of the way.
    let started = Instant::now();
    let node = Proc::spawn(&connected, &[], &[]);
    let mut peak_rss_kib = 0;
    let mut polls = 0u64;
    let (last_reported, sync_seen) = tokio::time::timeout(WAIT, async {
        loop {
            let status = node.status().await;
            polls += 1;
            peak_rss_kib = peak_rss_kib.max(node.rss_kib());
            let head = head_of(&status);
            let sync = &status["sync"];
            // Mid-chain (past the first third), so pages and tx list groups are in flight.
            if sync["state"] == "syncing" && head >= target / 3 && head < target {
                return (head, sync.clone());
            }
            assert!(
                head < target,
                "caught up to {head} before a mid-way status was seen ({polls} polls): \
                 use a longer chain"
            );
            // Poll pacing, not synchronisation: the loop waits on the status itself.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the node reports syncing mid-way within the bound");
    let killed_after = started.elapsed();
    node.sigkill();
    assert_eq!(sync_seen["target"].as_u64(), Some(target), "{sync_seen}");

    // 2. Restarted alone: at least the last reported head, and it is the served chain's.
    let node = Proc::spawn(&isolated, &[], &[]);
    let status = node.status().await;
    let head_after = head_of(&status);
    assert!(
        head_after >= last_reported,
        "reported head {last_reported} before SIGKILL, {head_after} after restart"
    );
    assert!(head_after <= target);
    assert_eq!(
        status["head"]["hash"].as_str(),
        Some(served_hash(&server, head_after).as_str()),
        "the restarted head is the served commitment"
    );
    peak_rss_kib = peak_rss_kib.max(node.rss_kib());
    drop(node);

    // 3. Restarted connected: finishes catching up to the serving peer's head.
    let resumed = Instant::now();
    let node = Proc::spawn(&connected, &[], &[]);
    let final_status = tokio::time::timeout(WAIT, async {
        loop {
            let status = node.status().await;
            peak_rss_kib = peak_rss_kib.max(node.rss_kib());
            // Every commitment *and* every tx list (each block has one).
            if head_of(&status) >= target && status["storage"]["txlists"] == target {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the restarted node catches up within the bound");
    let finish = resumed.elapsed();
    assert_eq!(head_of(&final_status), target);
    assert_eq!(
        final_status["head"]["hash"].as_str(),
        Some(served_hash(&server, target).as_str()),
    );
    assert_eq!(final_status["storage_error"], serde_json::Value::Null);
    assert_eq!(final_status["storage"]["commitments"], target);
    assert_eq!(final_status["storage"]["txlists"], target);
    assert_eq!(final_status["pending"]["missing_txlists"], 0);
    let rate = (target - head_after) as f64 / finish.as_secs_f64().max(1e-9);
    println!(
        "RELIABILITY family=sigkill_catch_up blocks={blocks} txlist_bytes={TXLIST_BYTES} \
         killed_after={:.1}s last_reported_head={last_reported} head_after_restart={head_after} \
         resumed_to_{target}_in={:.1}s resume_rate_per_s={rate:.0} child_peak_rss_mib={} \
         commitments={} txlists={}",
        killed_after.as_secs_f64(),
        finish.as_secs_f64(),
        peak_rss_kib / 1024,
        final_status["storage"]["commitments"],
        final_status["storage"]["txlists"],
    );
    drop(node);
    server.shutdown().await.expect("server shuts down");
}

/// 3 000 blocks: 12 pages, paced by the serving peer so the node is caught mid-way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_catch_up_loses_nothing_and_resumes() {
    sigkill_during_catch_up(3_000).await;
}

/// 20 000 blocks (long; run with `--ignored`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 20 000 blocks"]
async fn sigkill_during_catch_up_long_chain() {
    sigkill_during_catch_up(20_000).await;
}

/// Tx lists owed at a crash are fetched after the restart. A node catches up 50 commitments
/// from a peer that has none of their tx lists yet, so all 50 are owed (`/status`
/// `pending.missing_txlists`); it is SIGKILLed; the peer then gets the tx lists; the restarted
/// node fetches every one of them (counted in its store), although its head is already the
/// peer's and no new block arrives. Before owed tx lists were rebuilt from storage at start, the
/// restarted node forgot them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owed_txlists_survive_sigkill() {
    const BLOCKS: u64 = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = ChainBuilder::in_the_past(chain(), 3, 4, BLOCKS + 100);
    let generated = builder.blocks(BLOCKS as usize, TXLIST_BYTES);
    let bare: Vec<p2p::testkit::Block> = generated
        .iter()
        .map(|b| p2p::testkit::Block {
            commitment: b.commitment.clone(),
            txlist: None,
        })
        .collect();
    let (server, _server_events, server_addr) =
        serving_peer(&builder, &bare, RateLimitConfig::default()).await;
    let config = dir.path().join("node.toml");
    let mut c = node_config(&dir.path().join("node"), &builder, vec![server_addr]);
    c.rpc.enabled = false;
    write_config(&config, &c);

    let node = Proc::spawn(&config, &[], &[]);
    let owed = tokio::time::timeout(WAIT, async {
        loop {
            let status = node.status().await;
            if head_of(&status) == BLOCKS && status["pending"]["missing_txlists"] == BLOCKS {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the node stores the commitments and owes every tx list");
    assert_eq!(owed["storage"]["txlists"], 0);
    node.sigkill();

    // The tx lists become available; nothing else happens on the network.
    let storage = server.storage();
    for block in &generated {
        assert!(block.txlist.is_some(), "tx list");
        put_txlist(&*storage, block);
    }

    let started = Instant::now();
    let node = Proc::spawn(&config, &[], &[]);
    let done = tokio::time::timeout(WAIT, async {
        loop {
            let status = node.status().await;
            if status["storage"]["txlists"] == BLOCKS {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every owed tx list is fetched after the restart");
    assert_eq!(head_of(&done), BLOCKS);
    assert_eq!(done["storage"]["commitments"], BLOCKS);
    println!(
        "RELIABILITY family=owed_txlists_sigkill owed={BLOCKS} fetched_after_restart={} in={:.1}s",
        done["storage"]["txlists"],
        started.elapsed().as_secs_f64()
    );
    drop(node);
    server.shutdown().await.expect("server shuts down");
}
