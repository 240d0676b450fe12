//! Faults: a full disk under the redb store (injected write errors, and a real full tmpfs when
//! run as root), a 3 + 3 partition of a 6-node network that heals, and SIGKILL of the real
//! binary during catch-up. Each prints a `RELIABILITY` line (run with `--nocapture`) that
//! RELIABILITY.md copies.

mod adversary;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use adversary::*;
use p2p::testkit::FaultyDisk;
use p2p::SdkStorage;
use preconf_node_core::storage::StorageLayer;
use preconf_node_core::Node;
use preconfirmation_types::{GossipTopicKind, WireMessage};

/// Waits until `/ready` answers `status` — for 503, naming the `storage` condition (a store
/// that fails writes leaves the node alive: `/health` stays 200); returns `ok` when ready,
/// else the storage condition's reason.
async fn wait_ready(node: &Node, status: u16) -> String {
    let addr = node.http_addr().expect("http on");
    tokio::time::timeout(common::WAIT, async {
        loop {
            let r = common::http_get(addr, "/ready").await;
            let json: serde_json::Value = serde_json::from_str(&r.body).expect("/ready is JSON");
            let storage = json["failing"].as_array().and_then(|failing| {
                failing
                    .iter()
                    .find(|f| f["condition"] == "storage")
                    .and_then(|f| f["reason"].as_str())
                    .map(str::to_string)
            });
            match (r.status, storage) {
                (200, _) if status == 200 => return "ok".to_string(),
                (503, Some(reason)) if status == 503 => {
                    assert_eq!(common::http_get(addr, "/health").await.status, 200, "alive");
                    return reason;
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("/ready never answered {status}"))
}

/// The store of node B starts failing every write. B keeps running and serving what it has,
/// accepts nothing it cannot store, answers 503 on `/ready` and names the error on
/// `/status`; when the disk has room again the next block makes it catch up on what it
/// missed, and it is healthy again. Nothing acknowledged is lost.
/// Starts node B in `dir`, joined to A (with `layer` over its storage, if any), and waits
/// until A meshes with both its peers.
async fn start_b(honest: &Honest, dir: &std::path::Path, layer: Option<StorageLayer>) -> Node {
    let config = attack_config(
        dir,
        &honest.builder,
        vec![common::p2p_addr(honest.node(0)).await],
    );
    let b = Node::start_with_storage_layer(config, Some(common::prometheus()), layer)
        .await
        .expect("B starts");
    honest
        .node(0)
        .sdk()
        .wait_for_gossip_peers(2, common::WAIT)
        .await
        .expect("mesh");
    b
}

/// How many of the commitments honest acknowledged `b` does not hold.
fn missing_at(b: &Node, honest: &Honest) -> usize {
    honest
        .acknowledged
        .iter()
        .filter(|c| {
            let number = u64::try_from(c.preconf().block_number).expect("u64");
            b.sdk().commitment_by_number(number).expect("read").as_ref() != Some(*c)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_node_keeps_serving_reports_unhealthy_and_recovers() {
    let (_serial, rss) = serial_rss().await;
    let mut honest = Honest::start(2, builder(), |_, _| {}).await;
    let full = Arc::new(AtomicBool::new(false));
    // Node B, with the faulty volume, joins A.
    let dir = tempfile::tempdir().expect("tempdir");
    let layer: StorageLayer = {
        let full = full.clone();
        Box::new(move |inner| {
            let mut disk = FaultyDisk::over(inner);
            disk.full = full.clone();
            Arc::new(disk) as Arc<dyn SdkStorage>
        })
    };
    let b = start_b(&honest, dir.path(), Some(layer)).await;
    let mut latencies = Vec::new();
    for _ in 0..5 {
        latencies.push(honest.publish().await);
    }
    wait_head(&b, 5).await;
    assert_eq!(wait_ready(&b, 200).await, "ok");

    // The disk fills up; three blocks go by.
    full.store(true, Ordering::SeqCst);
    let fault_started = Instant::now();
    for _ in 0..3 {
        latencies.push(honest.publish().await);
    }
    let body = wait_ready(&b, 503).await;
    assert!(body.starts_with("storage failing"), "{body}");
    let status: serde_json::Value = serde_json::from_str(
        &common::http_get(b.http_addr().expect("http"), "/status")
            .await
            .body,
    )
    .expect("status JSON");
    assert!(status["storage_error"]
        .as_str()
        .is_some_and(|e| e.contains("No space")));
    assert_eq!(
        status["head"]["block_number"], 5,
        "nothing unstored is acknowledged"
    );
    // Still serving: A's get_head and get_commitments_by_number are answered from B's store.
    let b_id = b.sdk().local_peer_id();
    let head = honest
        .node(0)
        .sdk()
        .request_head(b_id)
        .await
        .expect("get_head served");
    assert_eq!(head.block_number, preconfirmation_types::U256::from(5u64));
    let page = honest
        .node(0)
        .sdk()
        .request_commitments(b_id, 1, 10)
        .await
        .expect("page served");
    assert_eq!(page.commitments.len(), 5);

    // Room again: the next block reveals the gap, B catches up and is healthy.
    full.store(false, Ordering::SeqCst);
    latencies.push(honest.publish().await);
    let n = honest.builder.next_number() - 1;
    wait_head(&b, n).await;
    assert_eq!(wait_ready(&b, 200).await, "ok");
    let recovered = fault_started.elapsed();
    let mut lost = honest.assert_nothing_lost().await + missing_at(&b, &honest);
    assert_eq!(lost, 0, "B lost a commitment");
    // And every tx list, those owed while the disk was full included (a failed write once
    // made B forget what it owed until a restart).
    let mut status = b.sdk().watch_status();
    tokio::time::timeout(common::WAIT, status.wait_for(|s| s.missing_txlists == 0))
        .await
        .unwrap_or_else(|_| panic!("B still owes tx lists: {:?}", b.sdk().status()))
        .expect("status");
    for c in &honest.acknowledged {
        let hash = c.preconf().raw_tx_list_hash;
        if hash != preconfirmation_types::B256::ZERO
            && !matches!(b.sdk().raw_txlist(&hash), Ok(Some(_)))
        {
            lost += 1;
        }
    }
    assert_eq!(lost, 0, "B lost a tx list");
    println!(
        "RELIABILITY disk_full unhealthy_to_recovered={:.1}s",
        recovered.as_secs_f64()
    );
    rss.report(
        "disk_full",
        "3 blocks while every write fails (ENOSPC injected under redb)",
        None,
        &latencies,
        lost,
    );
    b.shutdown().await;
    honest.shutdown().await;
}

/// A tmpfs mounted on a fresh temp dir; unmounted (lazily, so a file still open does not stop
/// it) when dropped, also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=…`); the error says why it could not.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("tempdir: {e}"))?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("running mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes `path` until the file system answers ENOSPC; the file is left in place.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("create the filler file");
    let chunk = vec![0xa5u8; 4096];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => panic!("filling the tmpfs: {e}"),
        }
    }
    let _ = file.sync_all();
}

/// A real full disk, not an injected error: node B's data dir is on a 4 MiB tmpfs, which a
/// filler file fills to ENOSPC. redb's next write fails and latches the database ("Previous
/// I/O error occurred. Please close and re-open the database"); B answers 503 on `/ready`
/// meanwhile. Once the filler is deleted, B reopens the database (bounded backoff) and within
/// 10 s stores new honest blocks again, with nothing acknowledged lost. Needs root (mount).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reopened_and_writes_resume() {
    if !nix::unistd::Uid::effective().is_root() {
        println!("skipped: needs root to mount a tmpfs");
        return;
    }
    let tmpfs = match Tmpfs::mount("4m") {
        Ok(tmpfs) => tmpfs,
        Err(e) => {
            println!("skipped: cannot mount a tmpfs: {e}");
            return;
        }
    };
    let _serial = serial().await;
    let mut honest = Honest::start(2, builder(), |_, _| {}).await;
    let b = start_b(&honest, &tmpfs.path().join("node-b"), None).await;
    for _ in 0..3 {
        honest.publish().await;
    }
    wait_head(&b, 3).await;
    assert_eq!(wait_ready(&b, 200).await, "ok");

    // The disk fills up; honest blocks go by until one of B's writes fails.
    let filler = tmpfs.path().join("filler");
    fill(&filler);
    let health = b.context().storage_health.clone();
    let mut failed = false;
    for _ in 0..500 {
        let number = honest.builder.next_number();
        honest.publish().await;
        let stored = tokio::time::timeout(common::WAIT, async {
            loop {
                if health.failure().is_some() {
                    return false;
                }
                if b.sdk().status().head_block_number >= number {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("B either stores the block or fails to");
        if !stored {
            failed = true;
            break;
        }
    }
    assert!(failed, "no write of B failed on the full tmpfs");
    let body = wait_ready(&b, 503).await;
    assert!(body.starts_with("storage failing"), "{body}");
    let error = health.failure().unwrap_or_default();
    assert!(
        error.contains("No space") || error.contains("Previous I/O"),
        "{error}"
    );
    let stored_head = b.sdk().status().head_block_number;
    // One more block while the disk is still full: B is still degraded.
    honest.publish().await;
    assert_eq!(
        wait_ready(&b, 503).await.split(':').next(),
        Some("storage failing")
    );

    // Room again: within 10 s B reopens its database and its head advances on new blocks.
    std::fs::remove_file(&filler).expect("delete the filler");
    let room = Instant::now();
    let deadline = room + Duration::from_secs(10);
    let mut resumed = false;
    while Instant::now() < deadline && !resumed {
        let number = honest.builder.next_number();
        honest.publish().await;
        let mut status = b.sdk().watch_status();
        let wait = Duration::from_secs(1).min(deadline.saturating_duration_since(Instant::now()));
        resumed = tokio::time::timeout(wait, status.wait_for(|s| s.head_block_number >= number))
            .await
            .is_ok_and(|r| r.is_ok());
    }
    let resumed_after = room.elapsed();
    assert!(
        resumed,
        "B's head stayed at {} (stored {stored_head} before the disk filled) 10 s after the \
         disk had room: {:?}",
        b.sdk().status().head_block_number,
        health.failure()
    );
    assert!(
        b.context().store.reopens() >= 1,
        "the database was reopened"
    );
    assert_eq!(wait_ready(&b, 200).await, "ok");
    // Nothing acknowledged is lost: what B stored before and everything honest since.
    let n = honest.builder.next_number() - 1;
    wait_head(&b, n).await;
    let lost = honest.assert_nothing_lost().await + missing_at(&b, &honest);
    assert_eq!(lost, 0, "B lost a commitment");
    println!(
        "RELIABILITY real_disk_full resumed_after={:.1}s reopens={}",
        resumed_after.as_secs_f64(),
        b.context().store.reopens()
    );
    b.shutdown().await;
    honest.shutdown().await;
    drop(tmpfs);
}

/// Six nodes in a full mesh split 3 + 3 (each side bans the other's peer ids for the
/// partition: connection gating). Side 1 advances 5 blocks; side 2 is handed only the 6th, which
/// it must buffer as pending (parent unknown) — divergent state. The bans expire, the static
/// peers redial, side 2 catches up, drains its pending commitment, and all six agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_3_plus_3_diverges_then_heals() {
    let (_serial, rss) = serial_rss().await;
    let mut honest = Honest::start(6, builder(), |_, _| {}).await;
    let mut latencies = vec![honest.publish().await];
    let ids: Vec<_> = honest
        .nodes
        .iter()
        .map(|n| n.sdk().local_peer_id())
        .collect();
    let partition = Duration::from_secs(6);
    let started = Instant::now();
    for (i, node) in honest.nodes.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if (i < 3) != (j < 3) {
                node.sdk().network().ban(*id, partition).expect("gate");
            }
        }
    }
    // Wait until the sides no longer see each other.
    for (i, node) in honest.nodes.iter().enumerate() {
        tokio::time::timeout(common::WAIT, async {
            loop {
                let peers = node.sdk().peers().await.expect("peers");
                if peers.iter().all(|p| {
                    let j = ids.iter().position(|id| *id == p.peer_id).unwrap_or(i);
                    (i < 3) == (j < 3)
                }) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("partition takes effect");
    }
    let before = honest.builder.next_number() - 1;
    for _ in 0..5 {
        latencies.push(honest.publish_from(0, &[0, 1, 2]).await);
    }
    // The sixth block reaches side 2 only, through a bridge peer.
    // (With a tx list: a pure EOP mid-window would end the preconfer's window.)
    let sixth_txlist = p2p::testkit::deterministic_txlist(before + 6, 256);
    let sixth = honest.builder.next_block(Some(sixth_txlist.clone()));
    let bridge = GossipPeer::start(&common::chain(), None).await;
    bridge.connect(honest.node(3)).await;
    assert!(bridge.publish_commitment(sixth.commitment.to_ssz()).await);
    tokio::time::timeout(common::WAIT, async {
        let mut status = honest.node(3).sdk().watch_status();
        status.wait_for(|s| s.pending_parent >= 1).await.map(|_| ())
    })
    .await
    .expect("side 2 buffers the orphan")
    .expect("status");
    for i in 3..6 {
        assert_eq!(
            honest.node(i).sdk().status().head_block_number,
            before,
            "side 2 stalled"
        );
    }
    drop(bridge);
    let _ = GossipTopicKind::Commitments;
    // Side 1 hears of the sixth block from node 0.
    honest
        .node(0)
        .sdk()
        .publish(sixth.commitment.clone(), Some(sixth_txlist))
        .await
        .ok();
    honest.acknowledged.push(sixth.commitment.clone());
    let target = before + 6;
    for i in 0..6 {
        wait_head(honest.node(i), target).await;
    }
    // The buffered copy of the sixth block goes at the next upkeep tick (1 s) once the head
    // has passed it.
    for i in 0..6 {
        let mut status = honest.node(i).sdk().watch_status();
        tokio::time::timeout(common::WAIT, status.wait_for(|s| s.pending_parent == 0))
            .await
            .unwrap_or_else(|_| panic!("node {i} keeps a pending commitment"))
            .expect("status");
    }
    // Healed: every node is back in a full mesh, and the next block reaches all six.
    for node in &honest.nodes {
        node.sdk()
            .wait_for_gossip_peers(5, common::WAIT)
            .await
            .expect("mesh re-forms");
    }
    let healed = started.elapsed();
    latencies.push(honest.publish().await);
    let lost = honest.assert_nothing_lost().await;
    println!(
        "RELIABILITY partition healed_after={:.1}s",
        healed.as_secs_f64()
    );
    rss.report(
        "partition",
        "6 nodes split 3+3 for 6 s; 5 blocks on one side, 1 orphan on the other",
        None,
        &latencies,
        lost,
    );
    honest.shutdown().await;
}
