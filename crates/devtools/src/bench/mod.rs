//! `preconf-node bench <kind>`: the hot paths measured against the best this machine can do,
//! in the same run.
//!
//! | kind | measures | baseline in the same run | target |
//! |---|---|---|---|
//! | [`validate`] | full SDK validation of gossiped commitments per second, one core | bare libsecp256k1 ecrecover on the same inputs | ratio ≥ 0.9 (≥ 0.8 on N cores) |
//! | [`propagation`] | CPU per commitment (and per MiB of tx list) delivered to one node, split by thread: network, SDK, writer; publish → accepted latency; N nodes on 127.0.0.1 | bare rust-libp2p gossipsub, the same meshes (per topic), transport and payloads | CPU ≤ 1.3×, gossipsub + transport ≤ 1.1×; p99 < 50 ms, 1 MiB p99 < 500 ms |
//! | [`catchup`] | commitments per second a fresh node catches up from 3 peers | ecrecover on every core | ratio ≥ 0.5 |
//! | [`memory`] | peak RSS during an unknown-parent flood and during catch-up | the configured caps | within caps |
//!
//! Every kind prints the machine facts and a short table, then, as the last stdout line, one
//! JSON object with the kind's keys (only that line with `--json`). All traffic stays on
//! 127.0.0.1 and every wait is bounded.

pub(crate) mod bare;
pub mod catchup;
pub(crate) mod cpu;
pub(crate) mod deliveries;
pub mod memory;
pub mod propagation;
pub(crate) mod util;
pub mod validate;

use clap::{Args, Subcommand};
use serde_json::{Map, Value};

use crate::error::ToolError;

/// `preconf-node bench` arguments.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which bench.
    #[command(subcommand)]
    pub kind: BenchKind,
    /// Print only the JSON line.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The bench kinds.
#[derive(Debug, Subcommand)]
pub enum BenchKind {
    /// Full SDK validation per second (one core) vs bare ecrecover.
    Validate(validate::ValidateArgs),
    /// Gossip propagation over N local nodes vs bare gossipsub.
    Propagation(propagation::PropagationArgs),
    /// Catch-up of a fresh node from 3 peers vs the all-core ecrecover limit.
    Catchup(catchup::CatchupArgs),
    /// Peak RSS during an unknown-parent flood and during catch-up vs the configured caps.
    Memory(memory::MemoryArgs),
}

/// What a bench measured: named figures (the JSON keys) and a human table.
#[derive(Debug, Default)]
pub struct Report {
    /// JSON figures, in insertion order.
    pub figures: Map<String, Value>,
    /// Rows of the human table (label, value).
    pub table: Vec<(String, String)>,
}

impl Report {
    /// Adds a figure under `key` and a table row labelled `label`.
    pub fn figure(&mut self, key: &str, label: &str, value: impl Into<Value>) {
        let value = value.into();
        let shown = match &value {
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.fract() != 0.0)
                .map_or_else(|| n.to_string(), |f| format!("{f:.3}")),
            other => other.to_string(),
        };
        self.table.push((format!("{label} ({key})"), shown));
        self.figures.insert(key.to_string(), value);
    }

    /// Adds a figure to the JSON only.
    pub fn extra(&mut self, key: &str, value: impl Into<Value>) {
        self.figures.insert(key.to_string(), value.into());
    }
}

/// Facts about the machine a run happened on.
#[derive(Debug, Clone)]
pub struct MachineFacts {
    /// Logical cores available to this process.
    pub cores: usize,
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu_model: String,
    /// 1-minute load average at the start of the run.
    pub load_avg_1m: f64,
    /// Whether this binary was built with optimisations.
    pub release: bool,
}

impl MachineFacts {
    /// Reads the facts of this machine.
    pub fn read() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        Self {
            cores,
            cpu_model,
            load_avg_1m: util::load_avg_1m(),
            release: !cfg!(debug_assertions),
        }
    }
}

/// Runs the bench `args` asks for and prints its report.
pub async fn run(args: BenchArgs) -> Result<(), ToolError> {
    let machine = MachineFacts::read();
    let (kind, report) = match args.kind {
        BenchKind::Validate(a) => ("validate", validate::run(a).await?),
        BenchKind::Propagation(a) => ("propagation", propagation::run(a).await?),
        BenchKind::Catchup(a) => ("catchup", catchup::run(a).await?),
        BenchKind::Memory(a) => ("memory", memory::run(a).await?),
    };
    print_report(kind, &machine, report, args.json);
    Ok(())
}

fn print_report(kind: &str, machine: &MachineFacts, report: Report, json_only: bool) {
    if !json_only {
        println!(
            "machine: {} cores, {}, load average {:.2} (1 min), {} build",
            machine.cores,
            machine.cpu_model,
            machine.load_avg_1m,
            if machine.release { "release" } else { "debug" }
        );
        println!("bench {kind}");
        let width = report.table.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &report.table {
            println!("  {label:<width$}  {value}");
        }
    }
    let mut out = Map::new();
    out.insert("bench".into(), kind.into());
    out.extend(report.figures);
    out.insert("cores".into(), machine.cores.into());
    out.insert("cpu_model".into(), machine.cpu_model.clone().into());
    out.insert(
        "load_avg_1m".into(),
        util::round(machine.load_avg_1m, 2).into(),
    );
    out.insert("release".into(), machine.release.into());
    println!("{}", Value::Object(out));
}

/// A bench failed to run (not: missed its target).
pub(crate) fn failed(kind: &str, reason: impl std::fmt::Display) -> ToolError {
    ToolError::Devnet(format!("bench {kind}: {reason}"))
}
