//! `preconf-devtools`: the tools around the node, kept apart from what an operator runs.
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
