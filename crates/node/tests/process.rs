//! The `preconf-node` binary as a real process: config precedence and errors, the data-dir
//! lock, restart with the same identity and data, and SIGKILL during gossip ingest followed by a
//! restart that loses nothing acknowledged and catches up.
//!
//! The publisher is an in-process node; the node under test is the release/debug binary Cargo
//! built for this test (`CARGO_BIN_EXE_preconf-node`), logging JSON to stderr.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

mod common;

use common::process::{run_to_end, write_config, Proc, WAIT};
use common::{chain, node_config};
use p2p::testkit::ChainBuilder;
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_net::Multiaddr;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");

fn builder(blocks: u64) -> ChainBuilder {
    ChainBuilder::in_the_past(chain(), 3, 4, blocks)
}

/// An in-process publisher node with no servers.
async fn publisher(dir: &Path, builder: &ChainBuilder) -> (Node, Multiaddr) {
    let mut c = node_config(dir, builder, Vec::new());
    c.http.enabled = false;
    c.rpc.enabled = false;
    let node = Node::start(c, None).await.expect("publisher starts");
    let addr = node.sdk().listen_addrs().await.expect("addrs")[0]
        .clone()
        .with(libp2p::multiaddr::Protocol::P2p(node.sdk().local_peer_id()));
    (node, addr)
}

async fn publish(node: &Node, builder: &mut ChainBuilder, count: usize) {
    for block in builder.blocks(count, 256) {
        let txlist = block.txlist.map(|t| t.txlist.to_vec());
        // With no peers the SDK stores and reports `NoPeers`; that is fine here.
        let _ = node.sdk().publish(block.commitment, txlist).await;
    }
}

#[test]
fn print_default_is_valid_toml() {
    let out = Command::new(BIN)
        .args(["config", "--print-default"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf8");
    let parsed: NodeConfig = toml::from_str(&text).expect("default TOML parses");
    assert_eq!(parsed, NodeConfig::default());
    assert!(
        text.contains("# Most connected peers."),
        "keys carry their doc comments"
    );
}

#[test]
fn bad_config_is_one_line_naming_the_key_and_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, "[sdk.network]\nmax_peers = \"many\"\n").expect("write");
    let out = run_to_end(&path);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("sdk.network.max_peers"), "{stderr}");

    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .env("PRECONF__SDK__NETWORK__MAX_PEERS", "12")
        .output()
        .expect("run");
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    assert_eq!(
        out.status.code(),
        Some(2),
        "env fixes max_peers, preconfers still missing"
    );
    assert!(stderr.contains("lookahead.preconfers"), "{stderr}");
}

/// A file that leaves `[sdk.chain]` out, `--chain-id` and one generic variable for another key
/// of the same table: each sets its key alone, the rest of the table keeps its defaults.
#[tokio::test]
async fn lone_chain_keys_from_flag_and_env_start_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    let text = format!(
        "data_dir = {:?}\n\
         [http]\naddr = \"127.0.0.1:0\"\n\
         [rpc]\nenabled = false\n\
         [lookahead]\npreconfers = [\"0x0000000000000000000000000000000000000011\"]\n\
         [sdk.network]\ndiscovery_enabled = false\nlisten_addr = \"/ip4/127.0.0.1/tcp/0\"\n",
        dir.path().join("data").display().to_string()
    );
    std::fs::write(&path, text).expect("write config");
    let node = Proc::spawn(
        &path,
        &["--chain-id", "5"],
        &[(
            "PRECONF__SDK__CHAIN__SLASHER_ADDRESS",
            "0x0000000000000000000000000000000000000051",
        )],
    );
    assert!(node.status().await["peer_id"].is_string());
}

#[tokio::test]
async fn file_flag_env_precedence_in_the_real_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let builder = builder(10);
    let path = dir.path().join("node.toml");
    let mut c = node_config(&dir.path().join("data"), &builder, Vec::new());
    c.http.addr = "127.0.0.1:1".parse().expect("addr"); // privileged port: must be overridden
    c.rpc.enabled = false;
    write_config(&path, &c);
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let flag_addr = free.local_addr().expect("addr").to_string();
    drop(free);
    // clap's order: the flag beats its variable, which beats the file.
    let node = Proc::spawn(
        &path,
        &["--http-addr", flag_addr.as_str()],
        &[("PRECONF_HTTP_ADDR", "127.0.0.1:2")],
    );
    assert_eq!(
        node.http.to_string(),
        flag_addr,
        "flag beats env beats file"
    );
    assert!(node.status().await["peer_id"].is_string());
}

#[test]
fn second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let builder = builder(10);
    let path = dir.path().join("node.toml");
    let mut c = node_config(&dir.path().join("data"), &builder, Vec::new());
    c.rpc.enabled = false;
    write_config(&path, &c);
    let _first = Proc::spawn(&path, &[], &[]);
    let out = run_to_end(&path);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    assert!(stderr.contains("data dir locked"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_identity_and_data_and_sigkill_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut builder = builder(200);
    let (publisher, publisher_addr) = publisher(&dir.path().join("publisher"), &builder).await;
    let data = dir.path().join("node");
    let connected = dir.path().join("connected.toml");
    let isolated = dir.path().join("isolated.toml");
    let mut c = node_config(&data, &builder, vec![publisher_addr]);
    c.rpc.enabled = false;
    write_config(&connected, &c);
    c.sdk.network.static_peers.clear();
    write_config(&isolated, &c);

    // 1. Follow 20 blocks, then a graceful stop.
    let node = Proc::spawn(&connected, &[], &[]);
    let peer_id = node.status().await["peer_id"].clone();
    publisher
        .sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("node joins the mesh");
    publish(&publisher, &mut builder, 20).await;
    node.wait_head(20).await;
    assert!(node.sigterm().success(), "SIGTERM is a clean exit");

    // 2. Restart alone: same identity, same data.
    let node = Proc::spawn(&isolated, &[], &[]);
    assert_eq!(
        node.status().await["peer_id"],
        peer_id,
        "identity survives a restart"
    );
    assert_eq!(node.head().await, 20, "data survives a restart");
    drop(node);

    // 3. Follow again and SIGKILL in the middle of gossip ingest.
    let node = Proc::spawn(&connected, &[], &[]);
    let sdk = publisher.sdk().clone();
    sdk.wait_for_gossip_peers(1, WAIT)
        .await
        .expect("node rejoins the mesh");
    let mut feeder_builder = builder;
    let feeder = tokio::spawn(async move {
        for block in feeder_builder.blocks(60, 256) {
            let txlist = block.txlist.map(|t| t.txlist.to_vec());
            let _ = sdk.publish(block.commitment, txlist).await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        feeder_builder
    });
    let acknowledged = node.wait_head(30).await;
    node.sigkill();
    let mut builder = feeder.await.expect("feeder");
    assert_eq!(builder.next_number(), 81);

    // 4. Restart alone: everything acknowledged is there.
    let node = Proc::spawn(&isolated, &[], &[]);
    let head_after_crash = node.head().await;
    assert!(
        head_after_crash >= acknowledged,
        "acknowledged head {acknowledged}, after SIGKILL {head_after_crash}"
    );
    drop(node);

    // 5. Restart connected: catches up to the publisher's head, then follows.
    publish(&publisher, &mut builder, 5).await;
    let node = Proc::spawn(&connected, &[], &[]);
    node.wait_head(85).await;
    assert_eq!(node.head().await, 85);
    drop(node);
    publisher.shutdown().await;
}

/// A local publish reaches the disk before the wire, so a node that crashes in between still
/// knows it signed block N and never signs another (slashing evidence against its operator).
/// The real binary, holding the preconfer key, signs and publishes block 1 over
/// JSON-RPC (JWT) to an in-process peer, is SIGKILLed as soon as the call returns, and
/// restarts on the same data dir: a different commitment for block 1 is refused as an
/// equivocation, and the peer holds the first commitment only, never a second. (The ordering
/// itself, disk before wire, is pinned by `a_local_publish_reaches_the_disk_before_any_peer`
/// in the SDK's tests with a slow disk.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_signed_before_a_sigkill_is_never_signed_again() {
    use alloy_rpc_types_engine::{Claims, JwtSecret};
    use jsonrpsee::core::client::ClientT;
    use jsonrpsee::http_client::HttpClientBuilder;
    use jsonrpsee::rpc_params;
    use preconfirmation_types::{WireMessage, U256};

    let dir = tempfile::tempdir().expect("tempdir");
    let builder = builder(100);
    let (peer, peer_addr) = publisher(&dir.path().join("peer"), &builder).await;
    let mut peer_events = peer.sdk().subscribe();
    let key = *builder
        .key_for_slot(builder.next_slot())
        .expect("elected key");
    let data = dir.path().join("node");
    let mut c = node_config(&data, &builder, vec![peer_addr]);
    c.preconfer_key_file = Some(common::write_key_file(dir.path(), &key));
    let config = dir.path().join("node.toml");
    write_config(&config, &c);

    let publish = |rpc: std::net::SocketAddr, unsigned: Vec<u8>, txlist: Vec<u8>| {
        let secret_hex = std::fs::read_to_string(data.join("jwt.hex")).expect("jwt secret");
        async move {
            let secret = JwtSecret::from_hex(secret_hex.trim()).expect("secret");
            let token = secret.encode(&Claims::default()).expect("JWT");
            let mut headers = jsonrpsee::http_client::HeaderMap::new();
            headers.insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            let client = HttpClientBuilder::default()
                .request_timeout(WAIT)
                .set_headers(headers)
                .build(format!("http://{rpc}"))
                .expect("client");
            client
                .request::<serde_json::Value, _>(
                    "preconf_publishCommitment",
                    rpc_params![common::to_hex(&unsigned), common::to_hex(&txlist)],
                )
                .await
        }
    };

    let node = Proc::spawn(&config, &[], &[]);
    peer.sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("the node meshes with its peer");
    let txlist = b"signed once".to_vec();
    let unsigned = builder.next_unsigned(Some(&txlist));
    let receipt = publish(node.rpc.expect("rpc on"), unsigned.to_ssz(), txlist.clone())
        .await
        .expect("the first commitment is published");
    node.sigkill();

    let node = Proc::spawn(&config, &[], &[]);
    let mut other = unsigned.clone();
    other.preconf.gas_limit = U256::from(123_456u64);
    let refused = publish(node.rpc.expect("rpc on"), other.to_ssz(), txlist).await;
    let message = format!("{refused:?}");
    assert!(
        refused.is_err() && message.to_lowercase().contains("equivoc"),
        "a second commitment for block 1 is refused as an equivocation: {message}"
    );
    assert_eq!(
        node.head().await,
        1,
        "the first commitment survived the SIGKILL"
    );

    // The peer holds the first commitment (by gossip, or from the restarted node if the kill
    // came before it was sent), and never heard of another for block 1.
    let mut status = peer.sdk().watch_status();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.head_block_number >= 1))
        .await
        .expect("the peer gets block 1")
        .expect("status");
    let stored = peer
        .sdk()
        .commitment_by_number(1)
        .expect("read")
        .expect("the peer holds block 1");
    assert_eq!(
        serde_json::json!(common::to_hex(&stored.to_ssz())),
        receipt["commitment"]
    );
    let mut announced = 0;
    while let Ok(Ok(event)) =
        tokio::time::timeout(Duration::from_millis(500), peer_events.recv()).await
    {
        match event {
            p2p::SdkEvent::Commitment { commitment, .. }
                if commitment.preconf().block_number == U256::from(1u64) =>
            {
                announced += 1
            }
            p2p::SdkEvent::Equivocation { .. } => panic!("the peer saw two commitments"),
            _ => {}
        }
    }
    assert_eq!(announced, 1, "one commitment for block 1 reached the peer");
    drop(node);
    peer.shutdown().await;
}
