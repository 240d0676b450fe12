//! `preconf-node`: the P2P SDK of the Taiko preconfirmation network as a process.
//!
//! ```text
//!  sidecar (any language) ── JSON-RPC / WS ──┐        operator ── HTTP /metrics /status
//!                                            ▼                         ▲
//!                            ┌───────────── Node ───────────────────────┤
//!                            │  rpc ── P2pSdk (validate, dedupe, store) ─ http
//!                            │              │            │
//!                            │       RedbStore (data dir) preconfirmation-net (libp2p)
//!                            └──────────────────────────────────────────┘
//! ```
//!
//! The node adds what a long-running process needs around [`p2p::P2pSdk`]: a crash-safe
//! [`storage::RedbStore`] implementing the SDK's storage trait (the SDK writes it, inbound
//! req/resp is served from it), a persistent libp2p identity, layered configuration
//! ([`config::NodeConfig`]: defaults < TOML file < flags < `PRECONF_*` env), an HTTP server for
//! Prometheus metrics, health and status, and a JSON-RPC server so sidecars in any language can
//! publish and subscribe. [`devnet`] runs a whole local network in one process.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), preconf_node_core::NodeError> {
//! use preconf_node_core::{Node, NodeConfig};
//!
//! let mut config = NodeConfig::default();
//! config.data_dir = "/var/lib/preconf".into();
//! config.lookahead.preconfers = vec!["0x00000000000000000000000000000000000000aa".parse().unwrap()];
//! let node = Node::start(config, None).await?;
//! println!("status at http://{:?}/status", node.http_addr());
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
pub mod status;
pub mod storage;
pub mod telemetry;
pub mod ui;

pub use config::NodeConfig;
pub use context::NodeContext;
pub use error::NodeError;
pub use node::Node;
pub use storage::RedbStore;

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM: how `run` and `testbed` learn to stop.
///
/// SIGHUP (a closed terminal, a `systemctl reload`) does not stop the node: it is logged and
/// ignored, as the configuration is read once at start. Call [`ignore_hangup`] first thing, so
/// a SIGHUP that arrives while the node is still starting is not fatal either.
pub async fn wait_for_signal() {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    /// The next delivery of `signal`, or never when it could not be registered.
    async fn next(signal: &mut Option<Signal>) -> Option<()> {
        match signal {
            Some(signal) => signal.recv().await,
            None => std::future::pending().await,
        }
    }
    let mut term = signal(SignalKind::terminate()).ok();
    let mut hangup = signal(SignalKind::hangup()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return,
            Some(()) = next(&mut term) => return,
            Some(()) = next(&mut hangup) => tracing::info!(
                "SIGHUP ignored: the configuration is read once at start; restart the node to \
                 apply a change"
            ),
        }
    }
}

/// Takes SIGHUP's default action (terminate) away for the rest of the process; from then on
/// [`wait_for_signal`] logs it. Needs a tokio runtime.
pub fn ignore_hangup() {
    // Registering a handler replaces the disposition for the life of the process, whether or
    // not the returned stream is kept.
    let _ = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
}
