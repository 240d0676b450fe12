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

/// Minimal HTTP/1.1 GET returning (status line, body).
fn get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("response");
    (
        head.lines().next().unwrap_or_default().to_string(),
        body.to_string(),
    )
}

#[test]
fn devnet_ui_serves_the_page_and_a_snapshot_that_advances() {
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_preconf-node"))
        .args([
            "devnet",
            "--nodes",
            "3",
            "--preconfers",
            "2",
            "--blocks",
            "30",
        ])
        .args([
            "--block-time-ms",
            "200",
            "--txlist-bytes",
            "256",
            "--seed",
            "3",
        ])
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
    let addr = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the devnet prints its UI address");
        if let Some(url) = line.strip_prefix("devnet UI: http://") {
            break url.trim_end_matches('/').to_string();
        }
    };
    let (status, page) = get(&addr, "/");
    assert!(status.contains("200"), "{status}");
    assert!(page.contains("EventSource(\"/events\")"));
    let published = |body: &str| -> u64 {
        let json: serde_json::Value = serde_json::from_str(body).expect("snapshot JSON");
        json["blocks_published"].as_u64().expect("blocks_published")
    };
    let (_, first) = get(&addr, "/snapshot");
    let start = published(&first);
    let advanced = loop {
        let (_, body) = get(&addr, "/snapshot");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        if published(&body) > start && json["nodes"].as_array().map(Vec::len) == Some(3) {
            break json;
        }
        assert!(
            Instant::now() < deadline,
            "devnet snapshot does not advance"
        );
        std::thread::sleep(Duration::from_millis(100));
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
