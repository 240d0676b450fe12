//! `preconf-node devnet` with small sizes: in process (the report) and as the real binary (the
//! `--json` line and the exit code).

mod common;

use std::process::Command;

use common::http_get;

use preconf_devtools::devnet::{run_devnet, DevnetArgs};

fn small() -> DevnetArgs {
    DevnetArgs {
        nodes: 4,
        preconfers: 2,
        blocks: 24,
        block_time_ms: 100,
        late_joiners: 1,
        txlist_bytes: 2048,
        slots_per_window: 3,
        seed: Some(7),
        converge_timeout_secs: 60,
        ..DevnetArgs::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_with_a_late_joiner_converges() {
    let report = run_devnet(&small(), None, false)
        .await
        .expect("devnet runs");
    assert!(report.converged, "{report:?}");
    assert!(report.late_joiner_caught_up, "{report:?}");
    assert_eq!(report.heads, vec![24; 4]);
    assert_eq!(report.invalid_accepted, 0);
    assert!(report.gossip_latency_ms.max >= report.gossip_latency_ms.p50);
}

/// `preconf-node devnet` with 3 nodes and 2 preconfers: `blocks` blocks every `block_time_ms`,
/// tx lists of `txlist_bytes`, keys from `seed`.
fn devnet(blocks: u32, block_time_ms: u32, txlist_bytes: u32, seed: u32) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_preconf-node"));
    command.args(["devnet", "--nodes", "3", "--preconfers", "2"]);
    for (flag, value) in [
        ("--blocks", blocks),
        ("--block-time-ms", block_time_ms),
        ("--txlist-bytes", txlist_bytes),
        ("--seed", seed),
    ] {
        command.arg(flag).arg(value.to_string());
    }
    command
}

#[test]
fn devnet_json_is_the_last_stdout_line() {
    let out = devnet(12, 100, 512, 1)
        .arg("--json")
        .output()
        .expect("run devnet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf8");
    let last = stdout.trim_end().lines().last().expect("a line");
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    let keys: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "nodes",
        "blocks",
        "converged",
        "heads",
        "late_joiner_caught_up",
        "gossip_latency_ms",
        "invalid_accepted",
        "elapsed_s",
    ] {
        assert!(keys.contains(&key), "missing {key} in {last}");
    }
    assert_eq!(json["nodes"], 3);
    assert_eq!(json["converged"], true);
    assert_eq!(json["heads"], serde_json::json!([12, 12, 12]));
    assert_eq!(json["invalid_accepted"], 0);
    assert!(json["gossip_latency_ms"]["p99"].is_number());
}

#[tokio::test]
async fn devnet_ui_serves_the_page_and_a_snapshot_that_advances() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let mut child = devnet(30, 200, 256, 3)
        .args([
            "--ui",
            "--ui-addr",
            "127.0.0.1:0",
            "--ui-linger-secs",
            "0",
            "--json",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn devnet");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let addr: std::net::SocketAddr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the devnet prints its UI address");
        if let Some(url) = line.strip_prefix("devnet UI: http://") {
            break url.trim_end_matches('/').parse().expect("address");
        }
    };
    let page = http_get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("EventSource(\"/events\")"));
    let published = |body: &str| -> u64 {
        let json: serde_json::Value = serde_json::from_str(body).expect("snapshot JSON");
        json["blocks_published"].as_u64().expect("blocks_published")
    };
    let start = published(&http_get(addr, "/snapshot").await.body);
    let advanced = loop {
        let body = http_get(addr, "/snapshot").await.body;
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if published(&body) > start && json["nodes"].as_array().map(Vec::len) == Some(3) {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "devnet snapshot does not advance"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(advanced["rotation"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(
        advanced["latency_histogram"].as_array().map(Vec::len),
        Some(11)
    );
    let status = child.wait().expect("devnet exits");
    assert!(status.success(), "devnet converges with the UI on");
}
