//! The binary's p2p addresses: a p2p TCP or discv5 UDP port already in use stops `run` with
//! one line naming the address (libp2p shares TCP ports silently otherwise: SO_REUSEPORT), and
//! `--nat extip:IP` is what the ENR in `/status` advertises. Every node listens on 127.0.0.1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::process::{write_config, Proc};
use common::{chain, node_config};
use p2p::testkit::ChainBuilder;
use preconfirmation_net::Enr;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");
/// Bound of a start that must fail.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A config of a node with discovery on 127.0.0.1 at `listen` (TCP; discv5 takes the same
/// port number unless `discv5_port`), written to `dir/name.toml`.
fn config(dir: &Path, name: &str, listen: u16, discv5_port: Option<u16>) -> std::path::PathBuf {
    let builder = ChainBuilder::in_the_past(chain(), 3, 4, 1);
    let mut c = node_config(&dir.join(name), &builder, Vec::new());
    c.rpc.enabled = false;
    c.sdk.network.listen_addr = format!("/ip4/127.0.0.1/tcp/{listen}")
        .parse()
        .expect("addr");
    c.sdk.network.discovery_enabled = true;
    c.sdk.network.discv5_port = discv5_port;
    let path = dir.join(format!("{name}.toml"));
    write_config(&path, &c);
    path
}

/// `run` with `config` must fail at start (within [`START_LIMIT`]): its stderr.
fn failing_start(config: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(["run", "--config"])
        .arg(config)
        // The node's own logs aside, the failure is one line.
        .args(["--log-filter", "error"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    let deadline = Instant::now() + START_LIMIT;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the second node started on a taken port");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8(out.stderr).expect("utf8");
    assert!(!out.status.success(), "{stderr}");
    stderr
}

/// A port free for both TCP and UDP on 127.0.0.1, as the kernel picks it.
fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn status_enr(node: &Proc) -> Enr {
    let status = node.status().await;
    status["enr"]
        .as_str()
        .expect("enr in /status")
        .parse()
        .expect("a valid ENR")
}

#[tokio::test]
async fn a_second_node_on_a_taken_p2p_port_exits_with_one_line_naming_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let first = Proc::spawn(&config(dir.path(), "first", port, None), &[], &[]);
    let enr = status_enr(&first).await;
    assert_eq!((enr.tcp4(), enr.udp4()), (Some(port), Some(port)));

    // The same TCP port (its own, free, UDP port).
    let stderr = failing_start(&config(dir.path(), "tcp", port, Some(0)));
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("p2p TCP address 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("already in use"), "{stderr}");

    // The same UDP port (a free TCP port).
    let stderr = failing_start(&config(dir.path(), "udp", 0, Some(port)));
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains(&format!("discv5 UDP address 127.0.0.1:{port}")),
        "{stderr}"
    );
    drop(first);
}

#[tokio::test]
async fn nat_extip_is_the_address_the_enr_advertises() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Proc::spawn(
        &config(dir.path(), "node", 0, None),
        &["--nat", "extip:203.0.113.7"],
        &[],
    );
    let enr = status_enr(&node).await;
    assert_eq!(enr.ip4(), Some([203, 0, 113, 7].into()), "{enr}");
    assert!(enr.tcp4().is_some_and(|p| p != 0), "{enr}");
}
