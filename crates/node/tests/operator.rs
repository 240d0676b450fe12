//! What an operator meets before the node does anything: `--version`, `config --print-minimal`,
//! `config check`, a relative data dir, a data dir that is a file, SIGHUP. Each runs the real
//! binary Cargo built for this test.

use std::process::{Command, Output};

mod common;

use common::process::{run_to_end, write_config, Proc};
use common::{chain, node_config};
use p2p::testkit::ChainBuilder;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("run preconf-node")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn builder() -> ChainBuilder {
    ChainBuilder::in_the_past(chain(), 1, 4, 10)
}

#[test]
fn version_names_the_commit_and_the_build_date() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let line = text(&out.stdout);
    // `preconf-node 0.1.0 (commit 0123456789ab, built 2026-12-07)`
    assert!(line.starts_with("preconf-node 0."), "{line}");
    let commit = line
        .split("(commit ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default();
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
    let date = line
        .split("built ")
        .nth(1)
        .map(|d| d.trim().trim_end_matches(')'))
        .unwrap_or_default();
    assert_eq!(date.len(), 10, "{line}");
    assert_eq!(date.as_bytes()[4], b'-', "{line}");
}

#[test]
fn print_minimal_is_short_and_checks_once_the_schedule_is_set() {
    let out = run(&["config", "--print-minimal"]);
    assert!(out.status.success());
    let minimal = text(&out.stdout);
    let keys = minimal.lines().filter(|l| l.contains(" = ")).count();
    assert!((15..=25).contains(&keys), "{keys} keys:\n{minimal}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    std::fs::write(&path, &minimal).expect("write");
    // As printed, the static schedule has no addresses: `config check` says which key.
    let out = run(&["config", "check", path.to_str().expect("utf8 path")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains("lookahead.preconfers"), "{err}");

    let edited = minimal.replacen(
        "preconfers = []",
        "preconfers = [\"0x00000000000000000000000000000000000000aa\"]",
        1,
    );
    assert_ne!(
        edited, minimal,
        "the minimal file carries lookahead.preconfers"
    );
    std::fs::write(&path, edited).expect("write");
    let out = run(&["config", "check", path.to_str().expect("utf8 path")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let summary = text(&out.stdout);
    assert!(summary.contains("chain_id: 167000"), "{summary}");
    assert!(
        summary.contains("schedule: static, 1 preconfer"),
        "{summary}"
    );
    // The relative default data dir is shown absolute.
    let data_dir = summary
        .lines()
        .find_map(|l| l.strip_prefix("data_dir: "))
        .expect("data_dir line");
    assert!(data_dir.starts_with('/'), "{summary}");
}

#[test]
fn config_check_names_a_mistyped_key_and_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("node.toml");
    for (file, key) in [
        ("[sdk.network]\nmax_peer = 10\n", "sdk.network.max_peer"),
        ("[l1]\npoll_interval = 2000\n", "l1.poll_interval"),
        ("[sdk.network]\nchain_id = 5\n", "sdk.network.chain_id"),
    ] {
        std::fs::write(&path, file).expect("write");
        let out = run(&["config", "check", path.to_str().expect("utf8 path")]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = text(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "{file}: {err}");
    }
}

#[tokio::test]
async fn a_relative_data_dir_is_logged_absolute() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = node_config(
        std::path::Path::new("relative-data"),
        &builder(),
        Vec::new(),
    );
    c.rpc.enabled = false;
    let path = dir.path().join("node.toml");
    write_config(&path, &c);
    let node = Proc::spawn_in(Some(dir.path()), &path, &[], &[]);
    let logged = node.started["fields"]["data_dir"]
        .as_str()
        .expect("data_dir field")
        .to_string();
    let expected = dir.path().join("relative-data");
    assert_eq!(std::path::Path::new(&logged), expected);
    assert!(
        expected.join("node.key").exists(),
        "the node wrote where it said"
    );
}

#[test]
fn a_data_dir_that_is_a_file_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    let mut c = node_config(&file, &builder(), Vec::new());
    c.rpc.enabled = false;
    let path = dir.path().join("node.toml");
    write_config(&path, &c);
    let out = run_to_end(&path);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    let last = err.trim().lines().last().unwrap_or_default();
    assert!(last.contains(&*file.to_string_lossy()), "{err}");
    assert!(last.contains("not a directory"), "{err}");
}

#[tokio::test]
async fn sighup_is_logged_and_ignored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = node_config(&dir.path().join("data"), &builder(), Vec::new());
    c.rpc.enabled = false;
    let path = dir.path().join("node.toml");
    write_config(&path, &c);
    let mut node = Proc::spawn(&path, &[], &[]);
    node.signal("HUP");
    let line = node.wait_log("SIGHUP ignored");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(node.alive(), "SIGHUP must not stop the node");
    assert!(node.status().await["peer_id"].is_string());
    let status = node.sigterm();
    assert!(status.success(), "SIGTERM still stops it cleanly: {status}");
}
