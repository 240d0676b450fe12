//! Health that tells the truth: `/health` is alive, `/ready` names every condition
//! that keeps the node from being useful; `/status` shows the chain, the schedule, whether this
//! node is the preconfer now, the head's age and the peers by chain; a wrong
//! `lookahead.preconfers` list is reported once instead of banning the static peer, and a peer
//! on another chain (a `--chain-id` typo) is counted and named once.
//!
//! Real nodes on 127.0.0.1 with real HTTP; the misconfigured nodes are the real binary, whose
//! JSON logs are read.

use preconf_devtools::testing::adversary;
mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::process::{write_config, Proc};
use common::{chain, http_get, node_config, p2p_addr, start, write_key_file, WAIT};
use p2p::testkit::{preconfer_key, ChainBuilder};
use preconf_node_core::Node;
use preconfirmation_types::{secret_key_to_address, Address};
use serde_json::{json, Value};

async fn get_json(addr: SocketAddr, path: &str) -> (u16, Value) {
    let r = http_get(addr, path).await;
    let json = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.body));
    (r.status, json)
}

/// Polls `path` until `pred(status, json)`; returns the last answer.
async fn wait_json(
    addr: SocketAddr,
    path: &str,
    what: &str,
    mut pred: impl FnMut(u16, &Value) -> bool,
) -> (u16, Value) {
    let mut last = None;
    let waited = tokio::time::timeout(WAIT, async {
        loop {
            let (status, json) = get_json(addr, path).await;
            if pred(status, &json) {
                return (status, json);
            }
            last = Some((status, json));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    waited.unwrap_or_else(|_| panic!("{what}: never; last {path}: {last:?}"))
}

/// The conditions `/ready` names as failing, with their reasons.
fn failing(ready: &Value) -> Vec<(String, String)> {
    ready["failing"]
        .as_array()
        .expect("failing is a list")
        .iter()
        .map(|f| {
            (
                f["condition"].as_str().expect("condition").to_string(),
                f["reason"].as_str().expect("reason").to_string(),
            )
        })
        .collect()
}

fn names(ready: &Value, condition: &str) -> bool {
    failing(ready).iter().any(|(c, _)| c == condition)
}

fn reason(ready: &Value, condition: &str) -> String {
    failing(ready)
        .into_iter()
        .find(|(c, _)| c == condition)
        .map(|(_, r)| r)
        .unwrap_or_else(|| panic!("{condition} is not failing: {ready}"))
}

async fn publish(node: &Node, builder: &mut ChainBuilder, count: usize) {
    for block in builder.blocks(count, 64) {
        let txlist = block.txlist.map(|t| t.txlist.to_vec());
        // Alone, the SDK stores and reports `NoPeers`; that is fine here.
        let _ = node.sdk().publish(block.commitment, txlist).await;
    }
}

fn http(node: &Node) -> SocketAddr {
    node.http_addr().expect("HTTP on")
}

/// A lone node is alive (`/health` 200) but not ready: `/ready` answers 503 naming `peers`.
/// A second node that joins it and catches up on 20 blocks answers 200 — with
/// `ready_max_blocks_behind = 0`, only once its head is the first node's — and so does the
/// first node once it has a peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_node_is_alive_not_ready_and_ready_once_peered_and_synced() {
    let mut builder = common::builder();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start(node_config(&dir.path().join("a"), &builder, Vec::new())).await;
    let health = http_get(http(&a), "/health").await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let (status, ready) = get_json(http(&a), "/ready").await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(ready["ready"], json!(false));
    assert!(
        reason(&ready, "peers").starts_with("0 of 1 required peers"),
        "{ready}"
    );
    publish(&a, &mut builder, 20).await;
    // Still alone after its catch-up gave up finding peers: still 503 for `peers` only.
    let (_, ready) = wait_json(http(&a), "/ready", "A's catch-up round ends", |_, r| {
        !names(r, "head")
    })
    .await;
    assert_eq!(failing(&ready).len(), 1, "{ready}");
    assert!(names(&ready, "peers"));

    let mut config = node_config(&dir.path().join("b"), &builder, vec![p2p_addr(&a).await]);
    config.http.ready_max_blocks_behind = 0;
    let b = start(config).await;
    let (status, ready) = wait_json(http(&b), "/ready", "B ready", |s, _| s == 200).await;
    assert_eq!(ready, json!({"ready": true, "failing": []}));
    assert_eq!(status, 200);
    assert_eq!(
        b.sdk().status().head_block_number,
        20,
        "ready only once level with the peer"
    );
    let (_, status_doc) = get_json(http(&b), "/status").await;
    assert_eq!(
        status_doc["ready"], ready,
        "/status shows the same readiness"
    );
    assert_eq!(status_doc["best_peer_head"]["block_number"], json!(20));
    assert_eq!(status_doc["best_peer_head"]["blocks_behind"], json!(0));
    wait_json(http(&a), "/ready", "A ready with B", |s, _| s == 200).await;
    a.shutdown().await;
    b.shutdown().await;
}

/// With the schedule unknown (read from an L1 whitelist whose RPC nobody answers), `/ready`
/// names `schedule`; the same lone node with the static schedule is ready, since
/// `ready_min_peers = 0` (the first node of a new network).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_an_unknown_schedule_and_a_first_node_may_be_ready_alone() {
    let builder = common::builder();
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let mut config = node_config(&dir.path().join("l1"), &builder, Vec::new());
    config.http.ready_min_peers = 0;
    config.lookahead.source = preconf_node_core::config::ScheduleSource::L1Whitelist;
    config.l1.rpc_url = format!("http://{closed}");
    config.l1.whitelist_address = Address::repeat_byte(0x77);
    config.l1.request_timeout = Duration::from_millis(200);
    let node = start(config).await;
    let (status, ready) = wait_json(http(&node), "/ready", "catch-up round ends", |_, r| {
        !names(r, "head")
    })
    .await;
    assert_eq!(status, 503);
    let schedule = reason(&ready, "schedule");
    assert!(
        schedule.contains("no preconfer known for the current window")
            && schedule.contains("l1_whitelist"),
        "{schedule}"
    );
    assert!(!names(&ready, "peers"), "no peer is required: {ready}");
    let (_, doc) = get_json(http(&node), "/status").await;
    assert_eq!(doc["schedule"]["source"], json!("l1_whitelist"));
    assert_eq!(doc["schedule"]["current_preconfer"], Value::Null);
    node.shutdown().await;

    let mut config = node_config(&dir.path().join("static"), &builder, Vec::new());
    config.http.ready_min_peers = 0;
    let node = start(config).await;
    let (_, ready) = wait_json(http(&node), "/ready", "a lone first node ready", |s, _| {
        s == 200
    })
    .await;
    assert_eq!(ready["ready"], json!(true));
    node.shutdown().await;
}

/// `/status` and `preconf_status`: the chain id, the schedule's source and current and next
/// preconfer, whether this node's key is the preconfer now, the head's timestamp and age, and
/// the peers by chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_chain_schedule_preconfer_head_age_and_peers_by_chain() {
    // One preconfer: it is the current and the next one at every moment.
    let mut builder = ChainBuilder::in_the_past(chain(), 1, 4, 50);
    let elected = secret_key_to_address(&builder.keys()[0]);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = node_config(&dir.path().join("p"), &builder, Vec::new());
    config.preconfer_key_file = Some(write_key_file(dir.path(), &builder.keys()[0]));
    let p = start(config).await;
    let other_dir = dir.path().join("f");
    std::fs::create_dir_all(&other_dir).expect("dir");
    let mut config = node_config(&other_dir, &builder, vec![p2p_addr(&p).await]);
    let stranger = preconfer_key(7);
    config.preconfer_key_file = Some(write_key_file(&other_dir, &stranger));
    let f = start(config).await;

    let (_, doc) = get_json(http(&p), "/status").await;
    assert_eq!(doc["chain_id"], json!(167_001));
    assert_eq!(doc["schedule"]["source"], json!("static"));
    assert_eq!(doc["schedule"]["current_preconfer"], json!(elected));
    assert_eq!(doc["schedule"]["next_preconfer"], json!(elected));
    assert_eq!(doc["preconfer"], json!(elected));
    assert_eq!(doc["is_preconfer_now"], json!(true));
    assert_eq!(doc["head_timestamp"], Value::Null, "no head yet");
    assert_eq!(doc["head_age_s"], Value::Null);

    p.sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("F in P's mesh");
    publish(&p, &mut builder, 2).await;
    let (_, doc) = wait_json(
        http(&f),
        "/status",
        "F holds block 2, P identified",
        |_, d| {
            d["head"]["block_number"] == json!(2) && d["peers"]["by_chain"]["167001"] == json!(1)
        },
    )
    .await;
    let head = f
        .sdk()
        .commitment_by_number(2)
        .expect("read")
        .expect("block 2");
    let timestamp = u64::try_from(head.preconf().timestamp).expect("u64");
    assert_eq!(doc["head_timestamp"], json!(timestamp));
    assert_eq!(doc["preconfer"], json!(secret_key_to_address(&stranger)));
    assert_eq!(
        doc["is_preconfer_now"],
        json!(false),
        "a key the schedule does not elect"
    );
    assert_eq!(doc["peers"]["by_chain"], json!({"167001": 1}));
    assert_eq!(doc["peers"]["other_chain"], json!(0));
    assert_eq!(doc["peers"]["on_chain_topics"], json!(1));
    assert_eq!(doc["peers"]["list"][0]["chain_ids"], json!([167_001]));
    assert_eq!(doc["schedule_disagreement"], Value::Null);

    // The head's age, bracketed by the clock before and after the request.
    let before = unix_now();
    let (_, doc) = get_json(http(&f), "/status").await;
    let after = unix_now();
    let age = doc["head_age_s"].as_u64().expect("head_age_s");
    assert!(
        (before - timestamp..=after - timestamp).contains(&age),
        "age {age}, block at {timestamp}, asked between {before} and {after}"
    );

    // The RPC answers the same fields.
    use jsonrpsee::core::client::ClientT;
    let rpc: Value = jsonrpsee::http_client::HttpClientBuilder::default()
        .build(format!("http://{}", p.rpc_addr().expect("rpc")))
        .expect("client")
        .request(preconf_node_core::rpc::STATUS, jsonrpsee::rpc_params![])
        .await
        .expect("preconf_status");
    assert_eq!(rpc["chain_id"], json!(167_001));
    assert_eq!(rpc["is_preconfer_now"], json!(true));
    assert_eq!(rpc["peers"]["by_chain"], json!({"167001": 1}));
    assert!(rpc["head_age_s"].is_u64());
    p.shutdown().await;
    f.shutdown().await;
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// An in-process node with HTTP and RPC off.
async fn publisher(dir: &Path, builder: &ChainBuilder) -> Node {
    let mut c = node_config(dir, builder, Vec::new());
    c.http.enabled = false;
    c.rpc.enabled = false;
    start(c).await
}

fn warnings<'a>(logs: &'a [Value], needle: &str) -> Vec<&'a Value> {
    logs.iter()
        .filter(|l| {
            l["level"] == "WARN"
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(needle))
        })
        .collect()
}

/// Issue 34: a node whose `lookahead.preconfers` is wrong rejected every commitment of its
/// only static peer and banned it for an hour. Now it says once, at WARN, that every peer
/// disagrees with its schedule ("is lookahead.preconfers right?"), keeps the peer connected
/// and unbanned while 30 more blocks arrive (with `ban_sustain` 500 ms), and `/ready` and
/// `/status` name the disagreement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_preconfers_list_warns_once_and_keeps_its_static_peer() {
    let mut builder = common::builder();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = publisher(&dir.path().join("a"), &builder).await;
    publish(&a, &mut builder, 5).await;
    let a_id = a.sdk().local_peer_id().to_string();

    let c_dir = dir.path().join("c");
    std::fs::create_dir_all(&c_dir).expect("dir");
    let mut config = node_config(&c_dir, &builder, vec![p2p_addr(&a).await]);
    let wrong: Vec<Address> = (100..103)
        .map(|i| secret_key_to_address(&preconfer_key(i)))
        .collect();
    config.lookahead.preconfers = wrong.clone();
    config.sdk.network.ban_sustain = Duration::from_millis(500);
    config.http.ready_max_blocks_behind = 2;
    let path = c_dir.join("node.toml");
    write_config(&path, &config);
    let c = Proc::spawn(&path, &[], &[]);
    let mut logs = Vec::new();

    let (_, doc) = wait_json(c.http, "/status", "C concludes", |_, d| {
        !d["schedule_disagreement"].is_null()
    })
    .await;
    assert_eq!(doc["schedule_disagreement"]["peers"], json!([a_id]));
    assert_eq!(doc["schedule_disagreement"]["rule"], json!("wrong_signer"));
    let expected: Address =
        serde_json::from_value(doc["schedule_disagreement"]["expected_signer"].clone())
            .expect("an address");
    assert!(
        wrong.contains(&expected),
        "the signer the local schedule elects"
    );

    // 30 more blocks over ~3 s, six times the ban sustain: each reaches C and fails there.
    a.sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("C in A's mesh");
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for _ in 0..30 {
        tick.tick().await;
        publish(&a, &mut builder, 1).await;
        logs.extend(c.drain_logs());
    }
    let (status, ready) = wait_json(c.http, "/ready", "C not ready", |s, _| s == 503).await;
    assert_eq!(status, 503);
    assert!(
        reason(&ready, "schedule").contains("is lookahead.preconfers right?"),
        "{ready}"
    );
    assert!(names(&ready, "head"), "5 or more blocks behind A: {ready}");
    let (_, doc) = get_json(c.http, "/status").await;
    assert_eq!(doc["peers"]["count"], json!(1), "{doc}");
    assert_eq!(doc["peers"]["list"][0]["peer_id"], json!(a_id));
    logs.extend(c.drain_logs());

    let warned = warnings(&logs, "is lookahead.preconfers right?");
    assert_eq!(warned.len(), 1, "said once: {warned:?}");
    assert!(
        warnings(&logs, "banning peer").is_empty(),
        "the static peer was banned"
    );
    let disconnects = logs
        .iter()
        .filter(|l| l["fields"]["message"] == "peer disconnected")
        .count();
    assert_eq!(disconnects, 0, "A stayed connected");
    drop(c);
    a.shutdown().await;
}

/// The `--chain-id` typo: a node on chain 167002 whose static peer is on 167001 counts it as
/// another chain's peer (`/status` `by_chain`, `other_chain`), `/ready` names it under `peers`,
/// and its log names it once at WARN — not again when it reconnects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_another_chain_is_counted_and_named_once() {
    let builder = common::builder();
    let dir = tempfile::tempdir().expect("tempdir");
    let a = publisher(&dir.path().join("a"), &builder).await;
    let a_id = a.sdk().local_peer_id().to_string();
    let d_dir = dir.path().join("d");
    std::fs::create_dir_all(&d_dir).expect("dir");
    let path = d_dir.join("node.toml");
    write_config(
        &path,
        &node_config(&d_dir, &builder, vec![p2p_addr(&a).await]),
    );
    let d = Proc::spawn(&path, &["--chain-id", "167002"], &[]);
    let mut logs = Vec::new();

    let (_, doc) = wait_json(d.http, "/status", "D identifies A", |_, d| {
        d["peers"]["other_chain"] == json!(1)
    })
    .await;
    assert_eq!(doc["chain_id"], json!(167_002));
    assert_eq!(doc["peers"]["by_chain"], json!({"167001": 1}));
    assert_eq!(doc["peers"]["on_chain_topics"], json!(0));
    let d_id: libp2p::PeerId = doc["peer_id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("peer id");
    let (status, ready) = get_json(d.http, "/ready").await;
    assert_eq!(status, 503);
    let peers = reason(&ready, "peers");
    assert!(
        peers.contains(&a_id) && peers.contains("another chain"),
        "{peers}"
    );

    // A drops D for a second; D redials its static peer, and identify runs again.
    a.sdk()
        .network()
        .ban(d_id, Duration::from_secs(1))
        .expect("ban");
    tokio::time::timeout(WAIT, async {
        loop {
            logs.extend(d.drain_logs());
            let connected = logs
                .iter()
                .filter(|l| l["fields"]["message"] == "peer connected")
                .count();
            if connected >= 2 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("D reconnects to A");
    wait_json(d.http, "/status", "A identified again", |_, d| {
        d["peers"]["other_chain"] == json!(1)
    })
    .await;
    logs.extend(d.drain_logs());
    let named = warnings(&logs, "peer is on another chain");
    assert_eq!(named.len(), 1, "named once: {named:?}");
    assert_eq!(named[0]["fields"]["peer"], json!(a_id));
    assert_eq!(named[0]["fields"]["our_chain"], json!(167_002));
    drop(d);
    a.shutdown().await;
}

/// Serves validly chained blocks whose signatures do not recover, claiming their head.
struct BadSignaturePages(Vec<preconfirmation_types::SignedCommitment>);

impl adversary::Liar for BadSignaturePages {
    fn head(&self) -> preconfirmation_types::PreconfHead {
        preconfirmation_types::PreconfHead {
            block_number: preconfirmation_types::U256::from(self.0.len()),
            submission_window_end: preconfirmation_types::U256::ZERO,
        }
    }

    fn page(&self, start: u64, max: u32) -> Vec<preconfirmation_types::SignedCommitment> {
        let from = (start.saturating_sub(1) as usize).min(self.0.len());
        let to = (from + max as usize).min(self.0.len());
        self.0[from..to]
            .iter()
            .cloned()
            .map(|mut c| {
                c.signature.0[64] = 9;
                c
            })
            .collect()
    }

    fn txlist(&self, _hash: preconfirmation_types::B256) -> Vec<u8> {
        Vec::new()
    }
}

/// A static peer is never banned for catch-up pages that fail validation here: each time it
/// serves one it is disconnected and redialled after a growing backoff (here three times in a
/// row, with a ban sustain of 500 ms), never banned. Before, it was penalised and, once its
/// score stayed low, banned for an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_peer_serving_invalid_pages_is_dropped_and_redialled_never_banned() {
    let mut builder = common::builder();
    let blocks = builder
        .blocks(10, 16)
        .into_iter()
        .map(|b| b.commitment)
        .collect();
    let liar = adversary::GossipPeer::start(
        &chain(),
        Some(std::sync::Arc::new(BadSignaturePages(blocks))),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = node_config(dir.path(), &builder, vec![liar.p2p_addr().await]);
    config.sdk.network.ban_sustain = Duration::from_millis(500);
    let mut v = start(config).await;
    let mut events = v.take_events().expect("events from the start");
    let (mut connected, mut dropped) = (0, 0);
    tokio::time::timeout(WAIT, async {
        while dropped < 3 {
            match events.recv().await {
                Ok(p2p::SdkEvent::PeerConnected(p)) if p == liar.peer_id => connected += 1,
                Ok(p2p::SdkEvent::PeerDisconnected(p)) if p == liar.peer_id => dropped += 1,
                Ok(p2p::SdkEvent::PeerBanned { peer, .. }) if peer == liar.peer_id => {
                    panic!("the static peer was banned")
                }
                Ok(_) | Err(p2p::P2pSdkError::Lagged { .. }) => {}
                Err(e) => panic!("events: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("dropped {dropped} times (connected {connected}) in time"));
    assert!(connected >= 3, "redialled after each drop: {connected}");
    assert_eq!(
        v.sdk().status().head_block_number,
        0,
        "nothing invalid accepted"
    );
    v.shutdown().await;
}
