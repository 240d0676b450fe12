//! The `preconf-node` command line: parses the flags and hands each subcommand to the library
//! that implements it.
//!
//! | subcommand | runs |
//! |---|---|
//! | `run` | a node: [`preconf_node_core::Node`], configured from file, environment and flags |
//! | `config` | print the default or minimal TOML, check a file ([`preconf_node_core::config`]) |
//! | `publish` | one block through a running node ([`preconf_devtools::publish`]) |
//! | `devnet` | a local network in this process ([`preconf_devtools::devnet`]) |
//! | `testbed` | many `run` processes on a shaped network ([`preconf_devtools::testbed`]) |
//! | `bench` | end-to-end benches ([`preconf_devtools::bench`]) |
//!
//! The binary's own tests (`crates/node/tests`) spawn it as a child process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use metrics_exporter_prometheus::PrometheusHandle;
use preconf_devtools::bench;
use preconf_devtools::devnet::{self, DevnetArgs};
use preconf_devtools::ToolError;
use preconf_node_core::config::{LogFormat, GENERIC_ENV_PREFIX, OVERRIDES};
use preconf_node_core::{Node, NodeConfig, NodeError};

/// The process allocator: jemalloc, as reth and Lighthouse use. Under glibc malloc, clearing
/// freshly faulted pages took 7.4 % of a catch-up's CPU samples; with jemalloc 2.4 %
/// (BENCHMARKS.md, catch-up).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "preconf-node",
    version = preconf_node_core::telemetry::VERSION_LINE,
    about = "Taiko preconfirmation P2P node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a node.
    Run(RunArgs),
    /// Publish one block with a tx list through a running node that holds the preconfer key:
    /// the node fills the commitment for the current slot, signs and gossips it.
    Publish(preconf_devtools::publish::PublishArgs),
    /// Run a local multi-node network in this process and report whether it converges.
    Devnet(DevnetArgs),
    /// Many `run` processes on a shaped private network of Linux namespaces (root), measured.
    Testbed(preconf_devtools::testbed::TestbedArgs),
    /// Benchmarks of the hot paths against this machine's limits (see BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Configuration helpers: print the defaults, print the keys an operator sets, check a file.
    Config(ConfigArgs),
}

/// `preconf-node config …`.
#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
struct ConfigArgs {
    /// Print the full default configuration as commented TOML (every key, its doc, its default).
    #[arg(long, conflicts_with = "print_minimal")]
    print_default: bool,
    /// Print the ~20 keys an operator sets, at their defaults.
    #[arg(long)]
    print_minimal: bool,
    #[command(subcommand)]
    action: Option<ConfigAction>,
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Validate FILE as `run --config FILE` would (without flags or `PRECONF_*` variables) and
    /// exit: 0 and a summary when it is valid, 2 and one line naming the key when not.
    Check {
        /// The TOML config file.
        file: PathBuf,
    },
}

/// `--log-format`: the values of [`LogFormat`].
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Flags of `run`. Each beats its `PRECONF_*` variable, which beats the config file (clap's
/// order; see `NodeConfig` docs).
#[derive(Debug, Args)]
struct RunArgs {
    /// TOML config file.
    #[arg(long, env = "PRECONF_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database and node key) [env PRECONF_DATA_DIR].
    #[arg(long)]
    data_dir: Option<String>,
    /// Log format [env PRECONF_LOG_FORMAT].
    #[arg(long, value_enum)]
    log_format: Option<LogFormatArg>,
    /// Log filter, `RUST_LOG` syntax, e.g. `info,p2p=debug` [env PRECONF_LOG_FILTER; default
    /// `info`]. `run` does not read `RUST_LOG`: this filter decides (a bad one exits with 2).
    #[arg(long)]
    log_filter: Option<String>,
    /// File with the preconfer secret key (hex, mode 0600) [env PRECONF_PRECONFER_KEY_FILE].
    #[arg(long)]
    preconfer_key_file: Option<String>,
    /// HTTP address for /metrics, /health, /ready, /status [env PRECONF_HTTP_ADDR].
    #[arg(long)]
    http_addr: Option<String>,
    /// JSON-RPC address [env PRECONF_RPC_ADDR].
    #[arg(long)]
    rpc_addr: Option<String>,
    /// L2 chain id [env PRECONF_CHAIN_ID].
    #[arg(long)]
    chain_id: Option<String>,
    /// libp2p TCP listen multiaddr; discv5 takes the same port over UDP [env
    /// PRECONF_LISTEN_ADDR; default /ip4/0.0.0.0/tcp/9222].
    #[arg(long)]
    listen_addr: Option<String>,
    /// What the ENR advertises: `extip:<public IP>` (also `extip:<IPv4>,<IPv6>`), `any` (the
    /// default: the listen address, or the address this host routes from, corrected by
    /// discv5's PONG votes) or `none` (as `any`, no votes) [config: sdk.network.enr].
    #[arg(long, value_name = "extip:IP|any|none")]
    nat: Option<String>,
    /// Static peers, comma-separated multiaddrs with /p2p/ [env PRECONF_STATIC_PEERS].
    #[arg(long)]
    static_peers: Option<String>,
    /// discv5 bootnode ENRs, comma-separated [env PRECONF_BOOTNODES].
    #[arg(long)]
    bootnodes: Option<String>,
    /// Preconfer addresses in rotation order, comma-separated [env PRECONF_PRECONFERS].
    #[arg(long)]
    preconfers: Option<String>,
    /// Any config key: `--set sdk.network.max_peers=80` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl RunArgs {
    /// The flags as (dotted key, raw value) overrides.
    fn overrides(&self) -> Result<Vec<(String, String)>, NodeError> {
        let named = [
            ("data_dir", self.data_dir.clone()),
            (
                "log_format",
                self.log_format
                    .map(|f| format!("{f:?}").to_ascii_lowercase()),
            ),
            ("log_filter", self.log_filter.clone()),
            ("preconfer_key_file", self.preconfer_key_file.clone()),
            ("http.addr", self.http_addr.clone()),
            ("rpc.addr", self.rpc_addr.clone()),
            ("sdk.chain.chain_id", self.chain_id.clone()),
            ("sdk.network.listen_addr", self.listen_addr.clone()),
            ("sdk.network.static_peers", self.static_peers.clone()),
            ("sdk.network.bootnodes", self.bootnodes.clone()),
            ("lookahead.preconfers", self.preconfers.clone()),
        ];
        debug_assert_eq!(named.len(), OVERRIDES.len());
        let mut out: Vec<(String, String)> = named
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect();
        if let Some(nat) = &self.nat {
            out.extend(preconf_node_core::config::nat_overrides(nat)?);
        }
        for pair in &self.set {
            let (key, value) = pair.split_once('=').ok_or_else(|| NodeError::Config {
                key: pair.clone(),
                reason: "--set expects KEY=VALUE".into(),
            })?;
            out.push((key.trim().to_string(), value.to_string()));
        }
        Ok(out)
    }
}

/// Logging of the subcommands without a filter setting: `RUST_LOG` when set, else `default`
/// (`run` uses `log_filter` alone: see `logging::init_node_logging`).
fn init_logging(format: LogFormat, default: &str) {
    preconf_node_core::logging::init_tool_logging(format, default);
}

fn install_prometheus() -> Option<PrometheusHandle> {
    preconf_node_core::telemetry::install_prometheus()
}

async fn run(args: RunArgs) -> Result<(), NodeError> {
    preconf_node_core::ignore_hangup();
    let env = std::env::vars()
        .filter(|(k, _)| k.starts_with(GENERIC_ENV_PREFIX) || OVERRIDES.iter().any(|o| o.env == k));
    let mut config = NodeConfig::load(args.config.as_deref(), &args.overrides()?, env)?;
    // Logged absolute at start, and immune to a later change of working directory.
    config.data_dir =
        std::path::absolute(&config.data_dir).map_err(|e| NodeError::io(&config.data_dir, e))?;
    preconf_node_core::logging::init_node_logging(config.log_format, &config.log_filter)?;
    let mut node = Node::start(config, install_prometheus()).await?;
    // Nobody reads the start-up subscription here (RPC subscribers take their own): a held,
    // unread receiver would keep the SDK's whole event ring alive.
    drop(node.take_events());
    preconf_node_core::wait_for_signal().await;
    tracing::info!("shutting down");
    node.shutdown().await;
    Ok(())
}

fn config_command(args: ConfigArgs) -> Result<(), NodeError> {
    if args.print_default {
        print!("{}", NodeConfig::default_toml());
    } else if args.print_minimal {
        print!("{}", NodeConfig::minimal_toml());
    }
    if let Some(ConfigAction::Check { file }) = args.action {
        let config = NodeConfig::load(Some(&file), &[], std::iter::empty())?;
        println!("{}: ok", file.display());
        println!("{}", config.summary());
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(args).await.map_err(ToolError::from),
            Command::Devnet(args) => {
                init_logging(LogFormat::Human, if args.verbose { "info" } else { "warn" });
                devnet::run(args, install_prometheus()).await
            }
            Command::Testbed(args) => {
                init_logging(LogFormat::Human, "warn");
                preconf_devtools::testbed::run(args).await
            }
            Command::Bench(args) => {
                init_logging(LogFormat::Human, "error");
                bench::run(args).await
            }
            Command::Config(args) => config_command(args).map_err(ToolError::from),
            Command::Publish(args) => {
                init_logging(LogFormat::Human, "warn");
                preconf_devtools::publish::run(args).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
