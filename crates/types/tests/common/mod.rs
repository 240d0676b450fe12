//! Helpers shared by the integration tests of this crate.
#![allow(dead_code, unreachable_pub)]
pub mod vector_gen;
