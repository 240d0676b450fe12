//! End-to-end tests of the network layer over real TCP on 127.0.0.1, one binary with a module
//! per concern. Every wait is bounded by `tokio::time::timeout`; nothing asserts on timing.

#[path = "../common/mod.rs"]
mod common;

mod discovery;
mod gossip;
mod peers;
mod raw_streams;
mod reqresp;
