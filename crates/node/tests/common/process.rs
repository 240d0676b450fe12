//! The `preconf-node` binary as a child process: spawn `run --config`, wait for its JSON
//! "node started" log line, read `/status`, SIGKILL or SIGTERM it. Shared by the real-process
//! tests.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use preconf_node_core::NodeConfig;

use super::http_get;

/// Bound of every wait on a child process.
pub const WAIT: Duration = Duration::from_secs(120);
const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");

/// Writes `config` as TOML to `path`.
pub fn write_config(path: &Path, config: &NodeConfig) {
    std::fs::write(path, toml::to_string(config).expect("config serialises"))
        .expect("write config");
}

/// `status.head.block_number`.
pub fn head_of(status: &serde_json::Value) -> u64 {
    status["head"]["block_number"]
        .as_u64()
        .expect("head.block_number")
}

/// Runs `run --config <path>` to its end (a failing start); its output.
pub fn run_to_end(path: &Path) -> Output {
    Command::new(BIN)
        .args(["run", "--config"])
        .arg(path)
        .output()
        .expect("run")
}

/// The child's stderr (piped), line by line, read on a thread of its own.
pub fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    lines
}

/// A running `preconf-node run`.
pub struct Proc {
    child: Child,
    /// The HTTP address the node logged.
    pub http: SocketAddr,
    /// The JSON-RPC address the node logged, when the RPC server is on.
    pub rpc: Option<SocketAddr>,
    lines: mpsc::Receiver<String>,
    /// The JSON "node started" log line.
    pub started: serde_json::Value,
    /// Lines logged before "node started" (connections may come first), for
    /// [`Proc::drain_logs`].
    early: std::sync::Mutex<Vec<String>>,
}

impl Proc {
    /// Spawns `run --config <path>` and waits for its "node started" log line.
    // The child is moved into `Proc`, whose `Drop` kills and reaps it; a failed spawn wait
    // panics the test, and the test harness process exit reaps it.
    #[allow(clippy::zombie_processes)]
    pub fn spawn(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        Self::spawn_in(None, config, args, env)
    }

    /// [`Proc::spawn`] with the child's working directory set to `cwd` (where a relative
    /// `data_dir` lands).
    #[allow(clippy::zombie_processes)]
    pub fn spawn_in(
        cwd: Option<&Path>,
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Proc {
        let mut command = Command::new(BIN);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        let mut child = command
            .args(["run", "--config"])
            .arg(config)
            .args(["--log-format", "json", "--log-filter", "info"])
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn preconf-node");
        let lines = stderr_lines(&mut child);
        let deadline = Instant::now() + WAIT;
        let mut early = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = lines
                .recv_timeout(left)
                .expect("node logs `node started` in time");
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            early.push(line);
            if json["fields"]["message"] == "node started" {
                let started = json.clone();
                let http = json["fields"]["http"]
                    .as_str()
                    .expect("http field")
                    .parse()
                    .expect("addr");
                let rpc = json["fields"]["rpc"].as_str().and_then(|a| a.parse().ok());
                return Proc {
                    child,
                    http,
                    rpc,
                    lines,
                    started,
                    early: std::sync::Mutex::new(early),
                };
            }
        }
    }

    pub async fn status(&self) -> serde_json::Value {
        let response = http_get(self.http, "/status").await;
        assert_eq!(response.status, 200);
        serde_json::from_str(&response.body).expect("status is JSON")
    }

    pub async fn head(&self) -> u64 {
        head_of(&self.status().await)
    }

    /// Polls `/status` until the head is at least `number`.
    pub async fn wait_head(&self, number: u64) -> u64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let head = self.head().await;
            if head >= number {
                return head;
            }
            assert!(
                Instant::now() < deadline,
                "head stuck at {head}, want {number}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The JSON log lines logged since the last call (the first call: since the start,
    /// "node started" included), without waiting.
    pub fn drain_logs(&self) -> Vec<serde_json::Value> {
        let early = std::mem::take(&mut *self.early.lock().expect("not poisoned"));
        early
            .into_iter()
            .chain(std::iter::from_fn(|| self.lines.try_recv().ok()))
            .filter_map(|line| serde_json::from_str(&line).ok())
            .collect()
    }

    /// The process's resident set in KiB (0 when unreadable).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// Waits for a JSON log line whose message contains `needle` and returns it.
    pub fn wait_log(&self, needle: &str) -> serde_json::Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no log line with {needle:?} in time"));
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle))
            {
                return json;
            }
        }
    }

    /// Sends `signal` (a `kill -s` name: `HUP`, `TERM`, …) to the node.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success(), "kill -s {signal}");
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Kills the node with SIGKILL and reaps it.
    pub fn sigkill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    pub fn sigterm(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(ok.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Drain logs so a "node stopped" line can be checked by the caller if wanted.
                while self.lines.try_recv().is_ok() {}
                return status;
            }
            assert!(Instant::now() < deadline, "node did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
