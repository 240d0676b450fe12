//! The loopback preset: how the devnet, the benches and the tests run nodes on 127.0.0.1, in
//! one place.
//!
//! Every layer of configuration has its function, each built on the one below:
//! [`network`] (a `preconfirmation-net` config), [`sdk_config`] (an SDK's) and [`node_config`]
//! (a whole node's). A loopback network listens on 127.0.0.1 at an ephemeral port, never the
//! production port nor every interface; runs no discovery (peers are given); lifts the per-IP
//! connection cap (every node dials from 127.0.0.1) and the per-peer gossip rate limit (tests
//! and benches publish far faster than one block per 2 s slot).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use p2p::testkit::{ChainBuilder, REPLAY_WINDOW_END_GRACE};
use p2p::P2pSdkConfig;
use preconf_node_core::NodeConfig;
use preconfirmation_net::config::LOOPBACK_MAX_CONNECTIONS_PER_IP;
use preconfirmation_net::{GossipRateLimitConfig, Multiaddr, NetworkConfig};
use preconfirmation_types::{secret_key_to_address, ChainSpec};

/// Gossip messages per topic a peer may send per [`GOSSIP_RATE_WINDOW`] on loopback: far
/// above any test's or bench's rate, so the per-peer limit never shapes what they measure.
pub const GOSSIP_RATE_BURST: u32 = 100_000;

/// The window of [`GOSSIP_RATE_BURST`].
pub const GOSSIP_RATE_WINDOW: Duration = Duration::from_secs(1);

/// `/ip4/127.0.0.1/tcp/0`: loopback, a free port.
pub fn listen_addr() -> Multiaddr {
    Multiaddr::empty()
        .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
        .with(Protocol::Tcp(0))
}

/// Makes `network` a loopback network (see the module docs); every other setting is kept.
pub fn network(network: &mut NetworkConfig) {
    network.listen_addr = listen_addr();
    network.discovery_enabled = false;
    network.max_connections_per_ip = LOOPBACK_MAX_CONNECTIONS_PER_IP;
    network.gossip_rate_limit =
        GossipRateLimitConfig::uniform(GOSSIP_RATE_BURST, GOSSIP_RATE_WINDOW);
}

/// The SDK's defaults for `chain`, on a loopback network.
pub fn sdk_config(chain: ChainSpec) -> P2pSdkConfig {
    let mut config = P2pSdkConfig::new(chain);
    network(&mut config.network);
    config
}

/// A node in `data_dir` for `builder`'s chain and its static schedule, on a loopback network:
/// HTTP and JSON-RPC on free 127.0.0.1 ports, `peers` as static peers redialled after 200 ms,
/// gossip heartbeats and catch-up retries every 200 ms, a 2 s wait for peers before catching
/// up, and the window-end grace of a chain built in the past and replayed
/// ([`REPLAY_WINDOW_END_GRACE`]).
pub fn node_config(data_dir: &Path, builder: &ChainBuilder, peers: Vec<Multiaddr>) -> NodeConfig {
    let lookahead = builder.lookahead();
    let mut c = NodeConfig {
        data_dir: data_dir.to_path_buf(),
        ..NodeConfig::default()
    };
    c.http.addr = (Ipv4Addr::LOCALHOST, 0).into();
    c.rpc.addr = (Ipv4Addr::LOCALHOST, 0).into();
    c.lookahead.preconfers = builder.keys().iter().map(secret_key_to_address).collect();
    c.lookahead.slots_per_window = lookahead.slots_per_window();
    c.lookahead.genesis_timestamp = lookahead.genesis();
    c.lookahead.slot_duration_secs = lookahead.slot_duration();
    c.sdk.chain = *builder.chain();
    network(&mut c.sdk.network);
    c.sdk.network.static_peers = peers;
    c.sdk.network.static_peer_backoff = Duration::from_millis(200);
    c.sdk.network.gossip.heartbeat_interval = Duration::from_millis(200);
    c.sdk.catchup.peer_wait = Duration::from_secs(2);
    c.sdk.catchup.retry_backoff = Duration::from_millis(200);
    c.sdk.rules.window_end_grace = REPLAY_WINDOW_END_GRACE;
    c
}
