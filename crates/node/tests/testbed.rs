//! `preconf-node testbed` as a user runs it: six node processes in their own network
//! namespaces on shaped links, discovery from one bootnode, a late joiner. These tests check
//! that it converges and that nothing it made outlives it — after a normal exit, after Ctrl-C,
//! after an error, and after a run killed outright (cleaned at the next start). Speed is
//! measured in BENCHMARKS.md, not here.
//!
//! They need root (CI runs as root). Without root they only check the refusal, unless `CI` is
//! set, where a missing root fails them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");
/// Bound of one testbed run.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// One testbed at a time: they share the machine's two cores.
static SERIAL: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The testbed lock where the root-only tests run here, `None` (the test skips) where they do
/// not; panics in CI without root.
fn serial_root(test: &str) -> Option<MutexGuard<'static, ()>> {
    if is_root() {
        return Some(SERIAL.lock().unwrap_or_else(|e| e.into_inner()));
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: CI must run the testbed tests as root"
    );
    eprintln!("{test}: skipped (needs root)");
    None
}

/// A small, quick testbed: 6 processes, 2 preconfers, 64 KiB tx lists.
fn testbed(data_dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args([
        "testbed",
        "--nodes",
        "6",
        "--preconfers",
        "2",
        "--txlist-bytes",
        "65536",
        "--timeout-secs",
        "90",
        "--quiet",
        "--data-dir",
    ])
    .arg(data_dir)
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    c
}

/// Waits for `child` within [`RUN_LIMIT`] (killing it past that) and returns its output.
fn finish(mut child: Child) -> Output {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        match child.try_wait().expect("wait") {
            Some(_) => return child.wait_with_output().expect("output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "testbed still running after {RUN_LIMIT:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Namespaces of the testbed process `pid`.
fn namespaces_of(pid: u32) -> Vec<String> {
    let prefix = format!("pctb{pid}-");
    std::fs::read_dir("/run/netns")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

/// Pids of processes whose command line mentions `dir` (the node processes of a testbed
/// started with `--data-dir dir`: their config files live there).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_left(pid: u32, dir: &Path) {
    assert_eq!(namespaces_of(pid), Vec::<String>::new(), "namespaces left");
    assert_eq!(
        processes_using(dir),
        Vec::<u32>::new(),
        "node processes left"
    );
}

fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| {
        panic!(
            "last line is not JSON ({e}): {line}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Creates namespaces named as a testbed whose process is gone would have left them.
fn fake_stale_namespaces() -> Vec<String> {
    // A pid above the kernel's pid_max cannot be running.
    let names = vec!["pctb4194399-sw".to_string(), "pctb4194399-n0".to_string()];
    for n in &names {
        let status = Command::new("ip")
            .args(["netns", "add", n])
            .status()
            .expect("ip");
        assert!(status.success(), "ip netns add {n}");
    }
    names
}

/// A testbed of 1 000 blocks, returned once its first five nodes run (bounded wait), with its
/// data dir (kept until the guard drops) and its pid.
fn long_run() -> (tempfile::TempDir, PathBuf, Child, u32) {
    let (keep, dir) = data_dir();
    let child = testbed(&dir, &["--blocks", "1000"]).spawn().expect("spawn");
    let deadline = Instant::now() + RUN_LIMIT;
    while processes_using(&dir).len() < 5 {
        assert!(Instant::now() < deadline, "nodes never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    let pid = child.id();
    (keep, dir, child, pid)
}

fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("testbed-test-")
        .tempdir()
        .expect("tempdir");
    let path = dir.path().to_path_buf();
    (dir, path)
}

/// Runs a testbed with `extra` that must succeed; its data dir (kept until the guard drops),
/// pid, output and final JSON report.
fn successful_run(extra: &[&str]) -> (tempfile::TempDir, PathBuf, u32, Output, Value) {
    let (keep, dir) = data_dir();
    let child = testbed(&dir, extra).spawn().expect("spawn");
    let pid = child.id();
    let out = finish(child);
    assert!(
        out.status.success(),
        "testbed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = last_json(&out);
    (keep, dir, pid, out, report)
}

#[test]
fn six_processes_converge_with_a_late_joiner_and_leave_nothing_behind() {
    let Some(_serial) = serial_root("six_processes_converge") else {
        return;
    };
    let stale = fake_stale_namespaces();
    let (_keep, dir, pid, out, report) = successful_run(&["--blocks", "6"]);
    assert_eq!(report["nodes"], 6);
    assert_eq!(report["blocks"], 6, "{report}");
    assert_eq!(report["publish_errors"], 0, "{report}");
    assert_eq!(report["reached_all"], true, "{report}");
    assert_eq!(report["late_joiner_caught_up"], true, "{report}");
    for key in ["commitment_p99_ms", "txlist_p99_ms", "publisher_copies"] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }
    // Each p99 has its floor beside it, from the hops every message took: read from the
    // nodes' own delivery lines, so at least one hop to every node that got it by gossip.
    for key in [
        "txlist_floor_ms",
        "commitment_floor_ms",
        "txlist_p99_over_floor",
        "publisher_payload_copies",
    ] {
        assert!(
            report[key].as_f64().is_some_and(|v| v > 0.0),
            "{key}: {report}"
        );
    }
    assert!(
        report["txlist_depth_max"].as_u64().is_some_and(|d| d >= 1),
        "{report}"
    );
    assert!(
        report["commitment_depth_p99"]
            .as_u64()
            .is_some_and(|d| d >= 1),
        "{report}"
    );
    let class = &report["classes"][0];
    assert!(
        class["txlist_floor_ms"].as_f64().is_some_and(|v| v > 0.0),
        "{report}"
    );
    // The table came before the JSON.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("reached all: true"), "{table}");
    assert!(table.contains("floor ms"), "{table}");
    // No node has static peers, only the bootnode's ENR: every node holding four or more
    // peers before the first block means discv5 found the others.
    assert!(
        report["min_peers"].as_u64().is_some_and(|p| p >= 4),
        "{report}"
    );
    assert_nothing_left(pid, &dir);
    for n in stale {
        assert!(
            !Path::new("/run/netns").join(&n).exists(),
            "stale namespace {n} was not cleaned"
        );
    }
}

/// Production addressing: every node listens on `0.0.0.0`/`::` with no address of its own in
/// its config and knows only the bootnode's ENR. Each node's ENR (from its status) must carry
/// its own namespace addresses — not 0.0.0.0, not 127.0.0.1, not the management network — and
/// discovery must still form the mesh.
#[test]
fn nodes_listening_everywhere_advertise_their_own_address_and_form_the_mesh() {
    let Some(_serial) = serial_root("nodes_listening_everywhere") else {
        return;
    };
    let (_keep, dir, _, _, report) =
        successful_run(&["--listen-any", "--blocks", "3", "--late-joiner", "false"]);
    // The mesh: every node found four or more peers through discv5 before the first block,
    // and every block reached every node.
    assert!(
        report["min_peers"].as_u64().is_some_and(|p| p >= 4),
        "{report}"
    );
    assert_eq!(report["reached_all"], true, "{report}");
    let enrs = report["enrs"].as_array().expect("enrs");
    assert_eq!(enrs.len(), 6, "{report}");
    for (i, text) in enrs.iter().enumerate() {
        // No address of its own in the node's config: the production defaults.
        let config = std::fs::read_to_string(dir.join(format!("n{i}/node.toml"))).expect("config");
        assert!(
            config.contains("listen_addr = \"/ip4/0.0.0.0/tcp/9222\""),
            "node {i}: {config}"
        );
        assert!(!config.contains("10.77."), "node {i} was given an address");
        let enr: preconfirmation_net::Enr = text
            .as_str()
            .expect("enr string")
            .parse()
            .unwrap_or_else(|e| panic!("node {i}: {e}: {text}"));
        let octet = i as u8 + 1;
        assert_eq!(
            enr.ip4(),
            Some(std::net::Ipv4Addr::new(10, 77, 0, octet)),
            "node {i}: {enr}"
        );
        assert_eq!(
            enr.ip6(),
            Some(std::net::Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x77,
                0,
                0,
                0,
                0,
                octet.into()
            )),
            "node {i}: {enr}"
        );
        assert_eq!(
            (enr.tcp4(), enr.udp4()),
            (Some(9222), Some(9222)),
            "node {i}"
        );
    }
}

#[test]
fn ctrl_c_removes_every_namespace_and_process() {
    let Some(_serial) = serial_root("ctrl_c_removes") else {
        return;
    };
    let (_keep, dir, child, pid) = long_run();
    assert!(
        !namespaces_of(pid).is_empty(),
        "namespaces exist while it runs"
    );
    kill(Pid::from_raw(pid as i32), Signal::SIGINT).expect("SIGINT");
    let out = finish(child);
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
    assert_nothing_left(pid, &dir);
}

/// Runs a testbed with `extra` that must fail (exit code 1) and leave nothing behind; its data
/// dir (kept until the guard drops) and stderr.
fn failing_run(extra: &[&str]) -> (tempfile::TempDir, PathBuf, String) {
    let (keep, dir) = data_dir();
    let child = testbed(&dir, extra).spawn().expect("spawn");
    let pid = child.id();
    let out = finish(child);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_nothing_left(pid, &dir);
    (keep, dir, stderr)
}

#[test]
fn an_error_removes_every_namespace_and_process() {
    let Some(_serial) = serial_root("an_error_removes") else {
        return;
    };
    let (_keep, dir, stderr) = failing_run(&["--fail-after-start"]);
    assert!(stderr.contains("failing on purpose"), "{stderr}");
    // It got as far as running every node before failing.
    assert!(dir.join("n4/node.log").exists(), "nodes ran");
}

/// A node that cannot start (here: an override naming no config key) stops the run with the
/// node's own error, not a wait for an RPC that will never answer, and everything is removed.
#[test]
fn a_node_that_cannot_start_is_reported_with_its_log() {
    let Some(_serial) = serial_root("a_node_that_cannot_start") else {
        return;
    };
    let (_keep, _dir, stderr) = failing_run(&["--set", "sdk.no_such_key=1"]);
    assert!(stderr.contains("node 0 exited"), "{stderr}");
    assert!(
        stderr.contains("no_such_key"),
        "the node's log names the key: {stderr}"
    );
    assert!(!stderr.contains("did not answer"), "{stderr}");
}

#[test]
fn a_killed_testbed_is_cleaned_by_the_next_start() {
    let Some(_serial) = serial_root("a_killed_testbed") else {
        return;
    };
    let (_keep, dir, child, pid) = long_run();
    // The nodes run unprivileged (the testbed itself, also naming the dir, is root; so is a
    // node's `ip netns exec` / `setpriv` wrapper until it execs the node).
    let nodes: Vec<u32> = processes_using(&dir)
        .into_iter()
        .filter(|p| *p != pid)
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "preconf-node")
        })
        .collect();
    assert!(!nodes.is_empty(), "nodes running");
    for node in &nodes {
        let status = std::fs::read_to_string(format!("/proc/{node}/status")).unwrap_or_default();
        let uid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|v| v.split_whitespace().next().map(str::to_owned));
        assert_eq!(uid.as_deref(), Some("65534"), "node {node} runs as nobody");
    }
    // SIGKILL: no cleanup of the testbed runs; the namespaces stay, but the nodes die with it
    // (parent-death signal), bounded wait.
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("SIGKILL");
    let _ = finish(child);
    assert!(!namespaces_of(pid).is_empty(), "leftovers after SIGKILL");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_using(&dir).is_empty() {
        assert!(
            Instant::now() < deadline,
            "nodes outlived the killed testbed: {:?}",
            processes_using(&dir)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next start removes them (and the nodes inside) before it builds its own network;
    // a bad flag after that stops it early.
    let (_keep2, dir2) = data_dir();
    let out = finish(
        testbed(&dir2, &["--uplink-mix", "10:50"])
            .spawn()
            .expect("spawn"),
    );
    assert_eq!(out.status.code(), Some(2), "bad mix is a config error");
    assert_nothing_left(pid, &dir);
}

#[test]
fn without_root_it_says_so_in_one_line() {
    // `setpriv` (util-linux) drops to nobody; without it, only a non-root run can check this.
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        Command::new(BIN)
    };
    let out = command
        .args(["testbed", "--nodes", "6"])
        .output()
        .expect("setpriv or the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("needs root"), "{stderr}");
}
