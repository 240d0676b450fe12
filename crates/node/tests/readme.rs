//! The README's operator walkthrough, run as written: the shell block of "Publish your first
//! commitment" starts two real nodes, publishes a block through the first with
//! `preconf-node publish` and waits until the second has it. Only the port line is rewritten
//! (to free ports) and `preconf-node` is this test's build.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

const README: &str = include_str!("../../../README.md");
const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");
/// Bound of the whole walkthrough; a human following it needs under a minute once built.
const WALKTHROUGH_TIMEOUT: Duration = Duration::from_secs(240);

/// The shell blocks of the README section headed `heading`.
fn shell_blocks(heading: &str) -> Vec<String> {
    let start = README
        .find(&format!("\n## {heading}\n"))
        .unwrap_or_else(|| panic!("README has no section {heading:?}"));
    let section = &README[start + 1..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |e| e + 3)];
    section
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(block, _)| block.to_string()))
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Kills the walkthrough's whole process group (the nodes it started in the background) when
/// the test ends, however it ends.
struct Group(i32);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .status();
    }
}

#[test]
fn publish_your_first_commitment_runs_as_written() {
    let blocks = shell_blocks("Publish your first commitment");
    assert_eq!(blocks.len(), 2, "a build block and the walkthrough");
    assert!(blocks[0].contains("cargo build --release -p preconf-node"));
    let walkthrough = &blocks[1];
    let (ports_line, rest) = walkthrough.split_once('\n').expect("lines");
    assert!(ports_line.starts_with("P2P_A="), "{ports_line}");
    let ports = format!(
        "P2P_A={} P2P_B={} HTTP_A={} HTTP_B={} RPC_A={} RPC_B={}",
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port(),
        free_port()
    );
    let script = format!("set -euo pipefail\n{ports}\n{rest}\n");

    let dir = tempfile::tempdir().expect("tempdir");
    let bin_dir = std::path::Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let child = Command::new("timeout")
        .arg(WALKTHROUGH_TIMEOUT.as_secs().to_string())
        .args(["bash", "-c", &script])
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("bash");
    let _group = Group(child.id() as i32);
    let out = child.wait_with_output().expect("walkthrough ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs = ["a.log", "b.log"].map(|f| {
        std::fs::read_to_string(dir.path().join("first-block").join(f)).unwrap_or_default()
    });
    assert!(
        out.status.success(),
        "walkthrough failed ({}):\nstdout:\n{stdout}\nstderr:\n{}\na.log:\n{}\nb.log:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        logs[0],
        logs[1]
    );
    assert!(stdout.contains("published block 1 hash 0x"), "{stdout}");
    assert!(
        stdout.contains("signer 0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
            || stdout.contains("signer 0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
        "{stdout}"
    );
    // The script's waits: B's `/status` shows block 1, then block 2 as its head.
    assert!(stdout.contains("node B has block 1"), "{stdout}");
    assert!(stdout.contains("published block 2 hash 0x"), "{stdout}");
    assert!(stdout.contains("node B has block 2"), "{stdout}");
}
