//! The shared helpers of the integration tests ([`preconf_devtools::testing`]).
#![allow(unused_imports, unreachable_pub)]

pub use preconf_devtools::testing::*;
