//! The shared helpers of the binary's integration tests: those of
//! [`preconf_devtools::testing`], plus the binary as a child process ([`process`]).
#![allow(dead_code, unused_imports, unreachable_pub)]

pub mod process;

pub use preconf_devtools::testing::*;
