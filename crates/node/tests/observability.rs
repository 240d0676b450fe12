//! What an operator reads, from the real binary (`CARGO_BIN_EXE_preconf-node`) on 127.0.0.1:
//! logs (a status line, one INFO line per published block, nothing repeated while idle, no
//! colour codes in a pipe, a validated log filter that `RUST_LOG` does not override, JWT
//! refusals at WARN with their reason) and `/metrics` (every series with `# HELP`, `# TYPE`
//! and the `preconf_` prefix; build info, process and RPC metrics).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alloy_rpc_types_engine::{Claims, JwtSecret};
use common::process::{stderr_lines, write_config, WAIT};
use common::{builder, http_get, node_config, to_hex};
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::HttpClientBuilder;
use jsonrpsee::rpc_params;
use p2p::testkit::ChainBuilder;
use preconf_node_core::{rpc, NodeConfig};
use preconfirmation_types::WireMessage;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");

/// A `preconf-node run` child with its stderr lines, all kept.
struct Node {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line so far.
    seen: Vec<String>,
}

impl Node {
    /// `run --config config` plus `args`, with `env` and without `RUST_LOG` / `NO_COLOR`
    /// unless `env` sets them.
    fn spawn(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut command = Command::new(BIN);
        command
            .args(["run", "--config"])
            .arg(config)
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn preconf-node");
        let lines = stderr_lines(&mut child);
        Node {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// A node on the test config written into `dir`, logging `format` at INFO, with `env`.
    fn spawn_in(dir: &Path, format: &str, env: &[(&str, &str)]) -> Node {
        let path = write(dir, "node.toml", &config(dir));
        Node::spawn(
            &path,
            &["--log-format", format, "--log-filter", "info"],
            env,
        )
    }

    /// Reads lines until `done(all lines so far)` holds; panics with them after [`WAIT`].
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!("{what}: not seen in time; logs:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// The JSON log lines seen so far.
    fn json(&self) -> Vec<Value> {
        self.seen
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The "node started" line's `field`.
    fn started_field(&self, field: &str) -> String {
        self.json()
            .iter()
            .find(|j| j["fields"]["message"] == "node started")
            .and_then(|j| j["fields"][field].as_str().map(str::to_string))
            .expect("node started")
    }

    fn http(&self) -> std::net::SocketAddr {
        self.started_field("http").parse().expect("http addr")
    }

    fn rpc(&self) -> std::net::SocketAddr {
        self.started_field("rpc").parse().expect("rpc addr")
    }

    /// Waits for the process to exit; its status.
    fn exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.seen.push(line);
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "still running; logs:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn message(line: &Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or_default()
}

fn is_started(lines: &[String]) -> bool {
    lines.iter().any(|l| l.contains("node started"))
}

/// JSON lines whose message is exactly `text`.
fn with_message<'a>(lines: &'a [Value], text: &str) -> Vec<&'a Value> {
    lines.iter().filter(|j| message(j) == text).collect()
}

/// Sum of a numeric field over the status lines.
fn status_sum(lines: &[String], field: &str) -> u64 {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|j| message(j) == "status")
        .filter_map(|j| j["fields"][field].as_u64())
        .sum()
}

/// A config for `builder()`'s chain in `dir`, status lines every second.
fn config(dir: &Path) -> NodeConfig {
    config_of(dir, &builder())
}

/// A config for `chain` in `dir`: nodes of one network share their chain's schedule (a
/// builder made a second later has another genesis).
fn config_of(dir: &Path, chain: &ChainBuilder) -> NodeConfig {
    let mut c = node_config(&dir.join("data"), chain, Vec::new());
    c.log_status_interval = Duration::from_secs(1);
    c
}

fn write(dir: &Path, name: &str, config: &NodeConfig) -> std::path::PathBuf {
    let path = dir.join(name);
    write_config(&path, config);
    path
}

/// Checks a Prometheus text rendering: every sample's family has `# HELP` and `# TYPE`, and
/// every name starts with `preconf_`. Returns the sample lines by family.
fn check_exposition(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut help = Vec::new();
    let mut types = BTreeMap::new();
    let mut samples: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help.push(rest.split_whitespace().next().expect("name").to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let name = words.next().expect("name").to_string();
            types.insert(name, words.next().expect("type").to_string());
        } else {
            let name = line
                .split(['{', ' '])
                .next()
                .expect("a sample name")
                .to_string();
            samples.entry(name).or_default().push(line.to_string());
        }
    }
    let mut families: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, lines) in samples {
        // A histogram's or summary's samples carry suffixes; its family is the bare name.
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                let base = name.strip_suffix(s)?;
                matches!(
                    types.get(base).map(String::as_str),
                    Some("histogram" | "summary")
                )
                .then(|| base.to_string())
            })
            .unwrap_or(name);
        assert!(
            family.starts_with(preconf_node_core::telemetry::METRIC_PREFIX),
            "{family} lacks the preconf_ prefix"
        );
        assert!(help.contains(&family), "{family} has no # HELP:\n{text}");
        assert!(
            types.contains_key(&family),
            "{family} has no # TYPE:\n{text}"
        );
        families.entry(family).or_default().extend(lines);
    }
    families
}

/// Two binaries, A and B (A its static peer), status lines every second. A's sidecar publishes
/// three blocks over JSON-RPC: A logs each at INFO (block, hash, tx-list size); A's status lines
/// count them as published, B's as received, with B's peer and head. Then both `/metrics`
/// are scraped: every series has `# HELP`, `# TYPE` and the `preconf_` prefix; build info,
/// process metrics, RPC metrics by method and the req/resp counts are there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishing_pair_logs_each_block_and_its_status_and_exports_described_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = builder();
    let a_path = write(
        dir.path(),
        "a.toml",
        &config_of(&dir.path().join("a"), &chain),
    );
    let json = ["--log-format", "json", "--log-filter", "info"];
    let mut a = Node::spawn(&a_path, &json, &[]);
    a.wait_until("A started", is_started);
    let status: Value =
        serde_json::from_str(&http_get(a.http(), "/status").await.body).expect("status JSON");
    let a_addr = format!(
        "{}/p2p/{}",
        status["listen_addrs"][0].as_str().expect("listen addr"),
        status["peer_id"].as_str().expect("peer id")
    );
    let mut b_config = config_of(&dir.path().join("b"), &chain);
    b_config.sdk.network.static_peers = vec![a_addr.parse().expect("multiaddr")];
    let b_path = write(dir.path(), "b.toml", &b_config);
    let mut b = Node::spawn(&b_path, &json, &[]);
    b.wait_until("B started", is_started);
    // Both meshes hold the other before anything is published.
    for node in [&mut a, &mut b] {
        node.wait_until(
            "a status line with the peer in the commitments mesh",
            |lines| {
                lines
                    .iter()
                    .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                    .any(|j| {
                        message(&j) == "status"
                            && j["fields"]["peers"] == 1
                            && j["fields"]["mesh"]
                                .as_str()
                                .is_some_and(|m| m.contains("commitments=1"))
                    })
            },
        );
    }

    let client = HttpClientBuilder::default()
        .request_timeout(WAIT)
        .build(format!("http://{}", a.rpc()))
        .expect("client");
    let mut sizes = Vec::new();
    for i in 0..3u8 {
        let txlist = vec![i; 100 + usize::from(i)];
        sizes.push(txlist.len());
        let block = chain.next_block(Some(txlist.clone()));
        let published: Value = client
            .request(
                rpc::PUBLISH_COMMITMENT,
                rpc_params![to_hex(&block.commitment.to_ssz()), to_hex(&txlist)],
            )
            .await
            .expect("published to a peer");
        assert_eq!(published["block_number"], u64::from(i) + 1);
    }
    // Some calls for the RPC metrics: an unknown method is an error with its code.
    let _: Value = client
        .request(rpc::HEAD, rpc_params![])
        .await
        .expect("head");
    assert!(client
        .request::<Value, _>("preconf_noSuchMethod", rpc_params![])
        .await
        .is_err());

    a.wait_until(
        "three published blocks, counted by the status lines",
        |lines| {
            lines
                .iter()
                .filter(|l| l.contains("\"published commitment\""))
                .count()
                == 3
                && status_sum(lines, "published") == 3
        },
    );
    let a_json = a.json();
    let published = with_message(&a_json, "published commitment");
    for (i, line) in published.iter().enumerate() {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["fields"]["block"], i as u64 + 1, "{line}");
        assert_eq!(line["fields"]["txlist_bytes"], sizes[i] as u64, "{line}");
        assert!(line["fields"]["hash"]
            .as_str()
            .is_some_and(|h| h.starts_with("0x")));
    }
    b.wait_until("B's status lines count three received blocks", |lines| {
        status_sum(lines, "received") == 3
    });
    let b_json = b.json();
    let last = with_message(&b_json, "status")
        .into_iter()
        .last()
        .expect("a status line")
        .clone();
    assert_eq!(last["level"], "INFO");
    assert_eq!(last["fields"]["head"], 3, "{last}");
    assert_eq!(last["fields"]["peers"], 1, "{last}");
    assert!(
        last["fields"]["head_age"]
            .as_str()
            .is_some_and(|a| a.ends_with('s')),
        "{last}"
    );
    assert_eq!(status_sum(&b.seen, "published"), 0, "B published nothing");

    for (name, node, gossip) in [
        ("A", &a, "preconf_gossip_publish_total"),
        ("B", &b, "preconf_gossip_received_total"),
    ] {
        let scrape = http_get(node.http(), "/metrics").await;
        assert_eq!(scrape.status, 200);
        let families = check_exposition(&scrape.body);
        let build = &families["preconf_build_info"];
        assert_eq!(build.len(), 1, "{name}: {build:?}");
        assert!(build[0].contains("version=\"") && build[0].contains("commit=\""));
        assert!(build[0].ends_with(" 1"), "{name}: {build:?}");
        for family in [
            "preconf_process_resident_memory_bytes",
            "preconf_process_cpu_seconds_total",
            "preconf_net_peers_connected",
            "preconf_net_reqresp_requests_total",
            gossip,
            "preconf_head_block_number",
            "preconf_net_gossip_mesh_peers",
        ] {
            assert!(families.contains_key(family), "{name}: no {family}");
        }
    }
    let scrape = http_get(a.http(), "/metrics").await.body;
    for series in [
        r#"preconf_rpc_calls_total{method="preconf_publishCommitment"} 3"#,
        r#"preconf_rpc_calls_total{method="preconf_head"} 1"#,
        r#"preconf_rpc_errors_total{method="other",code="-32601"} 1"#,
        r#"preconf_rpc_call_seconds_count{method="preconf_publishCommitment"} 3"#,
    ] {
        assert!(scrape.contains(series), "{series}\n{scrape}");
    }
}

/// A lone node with discovery on and a stale-head check every 300 ms: catch-up's idle checks
/// and discv5's lookups run again and again (seen at DEBUG, which the filter lets through for
/// their two modules), yet nothing reaches INFO but the status line, and nothing WARN.
#[test]
fn an_idle_node_repeats_nothing_above_debug() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    c.sdk.network.discovery_enabled = true;
    c.sdk.network.discovery_min_interval = Duration::from_millis(100);
    c.sdk.network.discovery_interval = Duration::from_millis(200);
    c.sdk.catchup.stale_head_check = Duration::from_millis(300);
    c.sdk.catchup.peer_wait = Duration::from_millis(100);
    let path = write(dir.path(), "node.toml", &c);
    let mut node = Node::spawn(
        &path,
        &[
            "--log-format",
            "json",
            "--log-filter",
            "info,p2p::sync=debug,preconfirmation_net::discovery=debug",
        ],
        &[],
    );
    node.wait_until(
        "idle checks and lookups, over three status lines",
        |lines| {
            let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
            count("\"catch-up done\"") >= 3 && count("\"status\"") >= 3
        },
    );
    let lines = node.json();
    let loud: Vec<&Value> = lines
        .iter()
        .filter(|j| matches!(j["level"].as_str(), Some("WARN" | "ERROR")))
        .collect();
    assert!(loud.is_empty(), "WARN/ERROR while idle: {loud:#?}");
    for done in with_message(&lines, "catch-up done") {
        assert_eq!(done["level"], "DEBUG", "an idle check is not news: {done}");
    }
    assert!(
        !with_message(
            &lines,
            "discv5 lookup skipped: no node in the routing table"
        )
        .is_empty(),
        "discovery ran (and found its table empty)"
    );
    // Once running, INFO is the status line alone. Counted from the second status line (a
    // second into the run): the servers' start-up lines come from their own tasks and may
    // follow "node started", or even the first status line.
    let running = lines
        .iter()
        .enumerate()
        .filter(|(_, j)| message(j) == "status")
        .nth(1)
        .map(|(i, _)| i)
        .expect("a second status line");
    let repeated: Vec<&Value> = lines[running + 1..]
        .iter()
        .filter(|j| j["level"] == "INFO" && message(j) != "status")
        .collect();
    assert!(repeated.is_empty(), "INFO lines while idle: {repeated:#?}");
}

/// Refused JWTs are logged at WARN with their reason — never the token — and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_refusals_are_logged_at_warn_with_their_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = config(dir.path());
    let secret_file = dir.path().join("jwt.hex");
    c.rpc.jwt_secret_file = Some(secret_file.clone());
    let path = write(dir.path(), "node.toml", &c);
    let mut node = Node::spawn(
        &path,
        &["--log-format", "json", "--log-filter", "info"],
        &[],
    );
    node.wait_until("started", is_started);
    let secret = JwtSecret::from_hex(
        std::fs::read_to_string(&secret_file)
            .expect("secret")
            .trim(),
    )
    .expect("secret hex");
    let now = Claims::default().iat;
    let wrong = JwtSecret::random()
        .encode(&Claims {
            iat: now,
            exp: None,
        })
        .expect("jwt");
    let stale = secret
        .encode(&Claims {
            iat: now - 3600,
            exp: None,
        })
        .expect("jwt");
    let publish = |header: Option<String>| {
        let mut headers = jsonrpsee::http_client::HeaderMap::new();
        if let Some(h) = header {
            headers.insert("authorization", h.parse().expect("header"));
        }
        HttpClientBuilder::default()
            .request_timeout(WAIT)
            .set_headers(headers)
            .build(format!("http://{}", node.rpc()))
            .expect("client")
    };
    let cases = [
        ("wrong_secret", Some(format!("Bearer {wrong}"))),
        ("iat_skew", Some(format!("Bearer {stale}"))),
        ("not_bearer", Some(format!("Token {wrong}"))),
        ("missing_header", None),
    ];
    for (reason, header) in &cases {
        let result = publish(header.clone())
            .request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(b"guarded")])
            .await;
        assert!(
            result
                .as_ref()
                .is_err_and(|e| e.to_string().contains("401")),
            "{reason}: {result:?}"
        );
    }
    node.wait_until("a WARN per reason", |lines| {
        cases.iter().all(|(reason, _)| {
            lines
                .iter()
                .any(|l| l.contains("\"WARN\"") && l.contains(&format!("\"reason\":\"{reason}\"")))
        })
    });
    for line in &node.seen {
        for token in [&wrong, &stale] {
            for part in token.split('.') {
                assert!(
                    !line.contains(part),
                    "the token leaked into the log: {line}"
                );
            }
        }
    }
    let scrape = http_get(node.http(), "/metrics").await.body;
    for (reason, _) in &cases {
        let series = format!("preconf_rpc_auth_failures_total{{reason=\"{reason}\"}} 1");
        assert!(scrape.contains(&series), "{series}\n{scrape}");
    }
}

/// `--log-filter p2p=loud` (or the same in the file) stops the start: exit 2, one line naming
/// the key.
#[test]
fn a_bad_log_filter_is_a_config_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = write(dir.path(), "good.toml", &config(dir.path()));
    let mut bad_file = config(dir.path());
    bad_file.log_filter = "p2p=loud".into();
    let bad = write(dir.path(), "bad.toml", &bad_file);
    for (path, args) in [(&good, vec!["--log-filter", "p2p=loud"]), (&bad, vec![])] {
        let mut node = Node::spawn(path, &args, &[]);
        let status = node.exit();
        assert_eq!(status.code(), Some(2), "{:?}", node.seen);
        assert_eq!(node.seen.len(), 1, "one line: {:?}", node.seen);
        assert!(node.seen[0].contains("log_filter"), "{:?}", node.seen);
        assert!(node.seen[0].contains("p2p=loud"), "{:?}", node.seen);
    }
}

/// `run` logs by `log_filter` alone: `RUST_LOG=error` does not silence its INFO lines, and a
/// line says `RUST_LOG` is not read.
#[test]
fn the_log_filter_decides_and_rust_log_is_named_not_obeyed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::spawn_in(dir.path(), "json", &[("RUST_LOG", "error")]);
    node.wait_until("started at INFO despite RUST_LOG=error", is_started);
    let lines = node.json();
    let notice = lines
        .iter()
        .find(|j| message(j).starts_with("RUST_LOG is not read"))
        .expect("a line about RUST_LOG");
    assert_eq!(notice["fields"]["rust_log"], "error");
    assert_eq!(notice["fields"]["log_filter"], "info");
}

/// Human logs into a pipe (a file, journald) carry no ANSI colour codes.
#[test]
fn no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut node = Node::spawn_in(dir.path(), "human", &[]);
    node.wait_until("node started", is_started);
    assert!(node.seen.len() > 1, "{:?}", node.seen);
    for line in &node.seen {
        assert!(!line.contains('\u{1b}'), "an escape code: {line:?}");
    }
}
