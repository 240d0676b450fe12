//! `preconf-node-core`: the Taiko preconfirmation P2P node as a library — everything
//! `preconf-node run` runs, for the binary and for a process that embeds a node.
//!
//! ```text
//!  sidecar (any language) ── JSON-RPC / WS ──┐        operator ── HTTP /metrics /ready /status
//!                                            ▼                         ▲
//!                            ┌───────────── Node ───────────────────────┤
//!                            │  rpc ── P2pSdk (validate, dedupe, store) ─ http (+ ui)
//!                            │              │            │
//!                            │   storage (redb, data dir) preconfirmation-net (libp2p)
//!                            │   schedule (static, or read from L1)
//!                            └──────────────────────────────────────────┘
//! ```
//!
//! The node adds what a long-running process needs around [`p2p::P2pSdk`]: a crash-safe store
//! the SDK writes and serves req/resp from, a persistent identity, layered configuration, the
//! preconfer schedule, an HTTP server for metrics, health, readiness, status and an operator
//! page, and a JSON-RPC server so sidecars in any language can publish and subscribe.
//!
//! # Bird's-eye view
//!
//! | module | what it holds |
//! |---|---|
//! | [`node`] | [`Node`]: starts everything below from a [`NodeConfig`], stops it in order |
//! | [`config`] | [`NodeConfig`]: defaults < TOML file < `PRECONF_*` env < flags; `config --print-default` from the structs' own docs |
//! | [`schedule`] | who may sign which slot: one file per `lookahead.source` (`static`, `l1_whitelist`) behind one trait |
//! | [`storage`] | [`RedbStore`] in the data dir, [`storage::Layered`] layers over it, write health |
//! | [`identity`] | the libp2p node key, the preconfer key, the JWT secret (private key files) |
//! | [`context`] | [`NodeContext`]: what the servers and tasks share of a running node |
//! | [`status`] | `/status` and `/ready`, from one observation of SDK, network, schedule and store |
//! | [`http`], [`ui`] | the HTTP server and the live operator page it serves |
//! | [`rpc`] | the JSON-RPC server, its methods, subscriptions, metrics and JWT guard ([`rpc::auth`]) |
//! | [`publish`] | the draft commitment of the current slot (`preconf_draftCommitment`) |
//! | [`telemetry`], [`logging`] | the Prometheus recorder and metric names, the status line; log output |
//! | [`signals`], [`clock`], [`error`] | SIGINT/SIGTERM/SIGHUP, unix time, [`NodeError`] |
//!
//! Modules import downwards only, from the bottom: `error`, `clock`, `logging`, `signals`;
//! `schedule`; `config`, `storage`, `identity`; `context`; `status`, `publish`; `rpc`;
//! `telemetry` (which names the RPC's metrics); `ui`; `http`; `node` on top.
//!
//! # Tasks
//!
//! [`Node::start`] starts the SDK (its own manager task, writer thread and network driver; see
//! the `p2p` crate) and, on the node's tokio runtime: the HTTP server, the JSON-RPC server
//! (one task per connection, subscriptions pumped by tasks of their own), the schedule's reader
//! when it has one (the L1 poller), the status line and the pruning loop. All of them stop on
//! one cancellation token in [`Node::shutdown`], before the SDK; store reads for `/status`
//! and pruning run on the blocking pool.
//!
//! # Example
//!
//! A node on loopback with a one-preconfer static schedule, asked for its head, then stopped:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), preconf_node_core::NodeError> {
//! use preconf_node_core::{Node, NodeConfig};
//!
//! let data_dir = tempfile::tempdir().expect("a temp dir");
//! let mut config = NodeConfig::default();
//! config.data_dir = data_dir.path().into();
//! config.lookahead.preconfers = vec!["0x00000000000000000000000000000000000000aa".parse().unwrap()];
//! // Free loopback ports, no discovery: it runs anywhere and disturbs nothing.
//! config.sdk.network.listen_addr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
//! config.sdk.network.discovery_enabled = false;
//! config.http.addr = ([127, 0, 0, 1], 0).into();
//! config.rpc.addr = ([127, 0, 0, 1], 0).into();
//!
//! let node = Node::start(config, None).await?;
//! assert_eq!(node.sdk().status().head_block_number, 0);
//! println!("status at http://{}/status", node.http_addr().expect("HTTP is on"));
//! node.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod clock;
pub mod config;
pub mod context;
pub mod error;
pub mod http;
pub mod identity;
pub mod logging;
pub mod node;
pub mod publish;
pub mod rpc;
pub mod schedule;
pub mod signals;
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod ui;

pub use config::NodeConfig;
pub use context::NodeContext;
pub use error::NodeError;
pub use node::Node;
pub use signals::{ignore_hangup, wait_for_signal};
pub use storage::RedbStore;
