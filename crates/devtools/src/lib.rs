//! `preconf-devtools`: the tools around the node, kept apart from what an operator runs (as
//! reth keeps `reth-bench` and Lighthouse its simulator and `eth1_test_rig`). The
//! `preconf-node` binary exposes them as subcommands; nothing here is compiled into
//! [`preconf_node_core`].
//!
//! # Bird's-eye view
//!
//! | module | what it holds | subcommand |
//! |---|---|---|
//! | [`devnet`] | a whole network of real nodes in one process, a driver that publishes through them, the live devnet page | `devnet` |
//! | [`bench`](mod@bench) | end-to-end benches against same-run baselines: validation, propagation, catch-up, memory | `bench` |
//! | [`testbed`] | many `preconf-node run` processes in Linux network namespaces on shaped links, measured | `testbed` |
//! | [`publish`] | the operator's half of publishing one block through a running node's JSON-RPC | `publish` |
//! | [`l1_dev`] | a local L1: anvil and the test `PreconfWhitelist` contract | `devnet --l1` |
//! | [`loopback`] | the one preset for nodes, SDKs and networks on 127.0.0.1 | |
//! | `testing` | (feature `test-utils`) the integration-test harness: in-process nodes, HTTP, hostile peers | |
//! | [`error`] | [`ToolError`], wrapping [`preconf_node_core::NodeError`] | |
//!
//! Modules import downwards only: `error` and `loopback` at the bottom; `l1_dev`, `publish`,
//! `bench`; `devnet` (uses `l1_dev`) and `testbed` (uses `bench`'s statistics); `testing` on
//! top.
//!
//! # Example
//!
//! The README's first command in miniature: three nodes, one of them a late joiner that must
//! catch up, six blocks.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), preconf_devtools::ToolError> {
//! use preconf_devtools::devnet::{run_devnet, DevnetArgs};
//!
//! let args = DevnetArgs {
//!     nodes: 3,
//!     late_joiners: 1,
//!     blocks: 6,
//!     block_time_ms: 100,
//!     txlist_bytes: 256,
//!     seed: Some(7),
//!     ..DevnetArgs::default()
//! };
//! let report = run_devnet(&args, None, false).await?;
//! assert!(report.converged && report.late_joiner_caught_up, "{report:?}");
//! assert_eq!(report.heads, vec![6; 3]);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod bench;
pub mod devnet;
pub mod error;
pub mod l1_dev;
pub mod loopback;
pub mod publish;
pub mod testbed;
#[cfg(feature = "test-utils")]
pub mod testing;

pub use error::ToolError;
