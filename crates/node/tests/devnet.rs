//! `preconf-node devnet` with small sizes: in process (the report) and as the real binary (the
//! `--json` line and the exit code).

use std::process::Command;

use preconf_node::devnet::{run_devnet, DevnetArgs};

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

#[test]
fn devnet_json_is_the_last_stdout_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_preconf-node"))
        .args([
            "devnet",
            "--nodes",
            "3",
            "--preconfers",
            "2",
            "--blocks",
            "12",
        ])
        .args([
            "--block-time-ms",
            "100",
            "--txlist-bytes",
            "512",
            "--seed",
            "1",
            "--json",
        ])
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
