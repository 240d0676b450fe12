//! Configuration of the network layer. Every limit is a field with the default the spec or the
//! reference implementation uses; section numbers refer to `PROTOCOL.md`.
//!
//! [`NetworkConfig`] is the root; its tables are by concern: [`RateLimitConfig`],
//! [`GossipRateLimitConfig`] and [`PolitenessConfig`] (rate limits, ours and the ones we assume
//! of peers), [`GossipConfig`] (the mesh), [`ScoringConfig`] (§7.1) and [`EnrConfig`] (what
//! discovery advertises). Durations are (de)serialised as humantime strings (`"30s"`,
//! `"500ms"`): [`duration`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use preconfirmation_types::{ChainLimits, GossipTopicKind, ReqRespKind, TAIKO_MAINNET_CHAIN_ID};
use serde::{Deserialize, Serialize};

use crate::error::NetError;

pub mod duration;
mod enr;
mod gossip;
mod rate_limit;
mod scoring;

pub use enr::EnrConfig;
pub use gossip::{
    GossipConfig, DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE, GOSSIP_FRAMING_ALLOWANCE,
    MAX_GOSSIP_PAYLOAD_BYTES,
};
pub use rate_limit::{
    ByteRateLimit, GossipRateLimitConfig, GossipTopicLimit, PolitenessConfig, RateLimit,
    RateLimitConfig, GOSSIP_RATE_HEADROOM, L2_SLOT,
};
pub use scoring::ScoringConfig;

/// [`NetworkConfig::max_connections_per_ip`] for devnets, benchmarks and tests, where every
/// node dials from 127.0.0.1: the per-IP cap is then no cap. Never for a public node.
pub const LOOPBACK_MAX_CONNECTIONS_PER_IP: u32 = 1024;

/// The p2p port of a production node: libp2p TCP and discv5 UDP both listen on it by default
/// ([`NetworkConfig::listen_addr`] `/ip4/0.0.0.0/tcp/9222`, [`NetworkConfig::discv5_port`]
/// unset = the TCP port). Open it for TCP and UDP in the firewall.
pub const DEFAULT_P2P_PORT: u16 = 9222;

/// [`NetworkConfig::listen_addr`] of tests, devnets and benchmarks: loopback, ephemeral port
/// (see [`NetworkConfig::loopback`]).
pub const LOOPBACK_LISTEN_ADDR: &str = "/ip4/127.0.0.1/tcp/0";

/// Everything the network layer needs, apart from the node's secret key (passed separately to
/// [`crate::P2pService::start`] so it never ends up in a config file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    /// libp2p TCP listen address, `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>`. Default
    /// `/ip4/0.0.0.0/tcp/9222`: every interface, port 9222 (discv5 takes the same port number
    /// over UDP, see [`Self::discv5_port`]). A port already in use by another socket stops the
    /// start with an error naming the address; port 0 picks a free port (tests, devnets). The
    /// address advertised to other nodes is not this one but the ENR's, see [`Self::enr`].
    pub listen_addr: Multiaddr,
    /// With [`Self::listen_addr`] on the IPv4 wildcard `0.0.0.0`, also listen on the IPv6
    /// wildcard `::` (libp2p TCP and discv5 UDP, the same ports) when this host has IPv6: a
    /// global IPv6 address as the source of its IPv6 default route. Without one (IPv6 off, only
    /// link-local or unique-local addresses, no IPv6 route: most containers) the node runs IPv4
    /// only and logs that at start — discv5 listening on both families contacts every
    /// dual-stack peer over IPv6 first, which a host without IPv6 connectivity cannot. No effect
    /// with any other listen address (`/ip6/::/tcp/…` listens on IPv6 only, a specific address
    /// on that address only). Default true.
    pub listen_ipv6: bool,
    /// L2 chain id: names the topics (§2) and protocol ids (§10–§11). Not a config-file key: the
    /// SDK sets it from its chain (`sdk.chain.chain_id`), so there is one key for one setting.
    #[serde(skip)]
    pub chain_id: u64,
    /// Per-message caps (§2, §3, §10.2); checked on the length before reading or decoding. Not a
    /// config-file key: the SDK sets them from `sdk.chain.limits`.
    #[serde(skip)]
    pub limits: ChainLimits,
    /// Gossipsub mesh parameters (§7).
    pub gossip: GossipConfig,
    /// Peer scoring parameters and thresholds (§7.1).
    pub scoring: ScoringConfig,
    /// How long a banned peer is disconnected and refused (§7.1 "ban"). Default 1 h.
    #[serde(with = "duration")]
    pub ban_period: Duration,
    /// How long a score must stay below [`ScoringConfig::ban_threshold`] before the peer is
    /// banned (§7.1: "below −5 sustained for more than 30 s"). Default 30 s.
    #[serde(with = "duration")]
    pub ban_sustain: Duration,
    /// Req/resp timeout, both for our outbound requests and for inbound streams (reading the
    /// request plus waiting for the SDK's answer) (§10). Default 10 s.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Most time an inbound stream may take to deliver its whole request (length prefix and
    /// body) once the stream is open. Default 5 s. A request is at most a few dozen bytes and
    /// an honest peer writes it at once, so a stream still incomplete after this is a
    /// slowloris (silent, or trickling a byte at a time): the codec stops reading, the stream
    /// is closed without a response and the peer takes one §7 penalty, reason `slow_request`
    /// (see [`crate::SLOW_REQUEST_PENALTY_REASON`]).
    ///
    /// The effective read timeout is `min(request_read_timeout, request_timeout / 2)`, so the
    /// read verdict always lands before libp2p's overall [`Self::request_timeout`] of the
    /// stream (which is not attributed to the request being unread and is not penalised).
    #[serde(with = "duration")]
    pub request_read_timeout: Duration,
    /// Per-peer inbound request rate limits, one per req/resp protocol, and a response-byte
    /// budget shared by the data protocols (§7 "per-peer rate limits on every req/resp
    /// protocol"). Defaults: `get_head` 8, `get_commitments_by_number` 256, `get_raw_txlist`
    /// 512 and `get_raw_txlists` 512 per 10 s, and 64 MiB of responses per 10 s; see
    /// [`RateLimitConfig`].
    pub rate_limit: RateLimitConfig,
    /// Refusals (rate-limited, byte budget exhausted or too many concurrent) of one peer that
    /// go unpenalised within [`Self::rate_limit_grace_window`] (§7, §7.1): an honest node of
    /// another configuration may find our limits by hitting them once. Default 1: the first
    /// refusal in a window is free, every further one inside it is penalised as §7.1 says.
    /// 0 penalises every refusal.
    pub rate_limit_grace: u32,
    /// The window of [`Self::rate_limit_grace`], counted from a peer's first refusal (§7.1).
    /// Default 10 s, the penalty window of the score (`scoring.app_penalty_window`).
    #[serde(with = "duration")]
    pub rate_limit_grace_window: Duration,
    /// Per-peer gossip limits, messages and bytes per topic (§7 "per-peer rate limits on
    /// gossip"): a message over them is ignored (neither forwarded nor delivered to the SDK)
    /// and, beyond [`Self::rate_limit_grace`], penalised. Defaults: 8× the honest load; see
    /// [`GossipRateLimitConfig`].
    pub gossip_rate_limit: GossipRateLimitConfig,
    /// Disconnected peers whose rate-limit buckets (requests, response bytes, gossip) are
    /// kept, at most: a peer that redials with the same key resumes its buckets instead of
    /// starting with full ones, until they would have refilled anyway (the longest period of
    /// [`Self::rate_limit`] and [`Self::gossip_rate_limit`]). Without it a peer could empty
    /// its budget, reconnect and take another burst, and PROTOCOL-EXT's per-peer egress cap
    /// would not hold. Beyond this many, the longest-gone peer's buckets go first. Default
    /// 4096 (a few MiB at most).
    pub remembered_departed_peers: usize,
    /// Outbound pacing: the limits we assume of peers, so we never send a request they would
    /// refuse — the strict reference's (8 requests per protocol per 10 s, one at a time) for
    /// peers without this project's extensions, this project's defaults for the others.
    pub politeness: PolitenessConfig,
    /// Most inbound requests of one protocol a peer may have in flight. Default 2.
    pub max_concurrent_inbound_per_protocol: usize,
    /// Most simultaneous libp2p streams (inbound + outbound) of one req/resp protocol per
    /// connection; a stream beyond it is dropped before it is read. Default 16.
    pub max_streams_per_connection: usize,
    /// Most connected peers. Both directions; default 50, the sum of the default
    /// [`Self::max_inbound_peers`] and [`Self::max_outbound_peers`].
    pub max_peers: u32,
    /// Most peers connected to us (inbound). Default 35. Inbound slots are the ones an
    /// attacker can fill at will (it only has to dial us, from many peer ids); capping them
    /// below [`Self::max_peers`] keeps [`Self::max_outbound_peers`] slots that only we fill —
    /// static peers and peers discovery chose — so a node whose inbound slots are all taken
    /// still dials out and is never eclipsed by inbound peers alone (§7). 35 + 15 keeps
    /// today's 50 in all; 35 inbound leaves room for the many nodes behind NAT, which can
    /// only dial in.
    pub max_inbound_peers: u32,
    /// Most peers we dialled (outbound). Default 15: about twice gossipsub's mesh degree
    /// (D = 8), so a node can build its whole mesh from peers of its own choosing, while
    /// leaving most slots inbound for peers that cannot be dialled.
    pub max_outbound_peers: u32,
    /// Most inbound connections, pending or established, from one IP address. Default 4: a host
    /// runs a node or a few, never tens; without the cap one host minting peer ids takes every
    /// inbound slot ([`ip_limit`](crate::peers::ip_limit)). Outbound connections are not counted.
    /// Tests running many nodes on 127.0.0.1 raise it.
    pub max_connections_per_ip: u32,
    /// Discovery dials newly found peers until this many are connected. Default 50.
    pub target_peers: u32,
    /// Most connections per peer id (pending inbound or established, both directions).
    /// Default 1. (Serde also reads its old name, `max_pending_inbound_per_peer`; the
    /// node's TOML checker knows only this one.)
    #[serde(alias = "max_pending_inbound_per_peer")]
    pub max_connections_per_peer: u32,
    /// Most incoming connections still in their handshake, over all peers. Default 16.
    pub max_pending_incoming: u32,
    /// Most time a connection may take to complete the libp2p upgrade after TCP connects
    /// (multistream-select, noise, yamux); one still in it then is dropped. It bounds how
    /// long a silent or trickling socket holds one of [`Self::max_pending_incoming`] and of
    /// its IP's [`Self::max_connections_per_ip`], so a few hosts cannot keep every pending
    /// slot; it applies to our dials too. Default 10 s (libp2p's own default); must be
    /// positive.
    #[serde(with = "duration")]
    pub handshake_timeout: Duration,
    /// discv5 bootnodes as ENR strings (`enr:-…`).
    pub bootnodes: Vec<String>,
    /// Peers dialled at start and redialled with exponential backoff when disconnected.
    pub static_peers: Vec<Multiaddr>,
    /// Initial redial backoff of static peers. Default 1 s (doubles up to
    /// [`Self::static_peer_max_backoff`]).
    #[serde(with = "duration")]
    pub static_peer_backoff: Duration,
    /// Largest redial backoff of static peers. Default 60 s.
    #[serde(with = "duration")]
    pub static_peer_max_backoff: Duration,
    /// A connection that ends sooner than this after it was established counts as the peer
    /// refusing us (the strict reference accepts the handshake of a peer it banned, then
    /// closes it): the peer is not dialled again, static or discovered, before a backoff that
    /// starts at [`Self::static_peer_backoff`] and doubles with every such connection up to
    /// [`Self::refused_peer_max_backoff`]. A connection that lasted longer resets it. Default
    /// 30 s.
    #[serde(with = "duration")]
    pub stable_connection: Duration,
    /// Largest redial backoff of a peer that keeps refusing us. Default 10 min.
    #[serde(with = "duration")]
    pub refused_peer_max_backoff: Duration,
    /// Whether discv5 runs. Default true.
    pub discovery_enabled: bool,
    /// UDP port of discv5, on the IP(s) of [`Self::listen_addr`]. Unset (the default): the TCP
    /// listen port, 9222 by default, or a free port when that is 0. 0 picks a free port at
    /// start. A port already in use stops the start with an error naming the address.
    pub discv5_port: Option<u16>,
    /// What the node's ENR advertises to other nodes (discv5): its address and ports. Unset
    /// keys are filled at start: the IP from the listen address when it is a specific one, else
    /// (listening on `0.0.0.0`/`::`) the source address this host uses towards the bootnodes
    /// or, without bootnodes, its default route; then discv5's PONG votes correct it (behind
    /// NAT). Never `0.0.0.0`, never a loopback address unless the node listens on loopback.
    pub enr: EnrConfig,
    /// How often discv5 runs a random lookup while below [`Self::target_peers`]. Default 30 s.
    #[serde(with = "duration")]
    pub discovery_interval: Duration,
    /// First pause between lookups when the node starts wanting peers (at start, or when it
    /// falls below [`Self::target_peers`] again); it doubles after each lookup up to
    /// [`Self::discovery_interval`]. Default 1 s: a node's first lookup usually finds only its
    /// bootnode (whose table fills as the network joins), and waiting a whole interval for the
    /// second one left fresh nodes with a single peer for 30 s.
    #[serde(with = "duration")]
    pub discovery_min_interval: Duration,
    /// Whether the network — the swarm with every connection's noise, yamux, gossipsub and
    /// req/resp work, and discv5 — runs on a thread of its own (named `p2p-net`, see
    /// [`crate::NET_THREAD`]) with a one-thread tokio runtime, rather than as tasks on the
    /// runtime that starts it. Default true: the thread's CPU clock is then the network's
    /// own, which a profile or `preconf-node bench propagation` reads per thread name, and
    /// the SDK's tasks never wait behind a burst of decryption on a shared worker.
    pub own_thread: bool,
    /// Capacity of the command channel handle → driver. Default 1024.
    pub command_channel_capacity: usize,
    /// Capacity of the event channel driver → SDK. When full, gossip is dropped (reported
    /// `Ignore`) and inbound requests are refused. Default 1024.
    pub event_channel_capacity: usize,
    /// Idle connections (no stream, no gossip) are closed after this. Default 30 s.
    #[serde(with = "duration")]
    pub idle_connection_timeout: Duration,
    /// Time between two outbound pings (`/ipfs/ping/1.0.0`) on a connection; the first goes
    /// out as soon as the connection is up. Default 15 s (libp2p's). A peer that refuses the
    /// protocol is not pinged again on that connection; its own pings are still answered.
    #[serde(with = "duration")]
    pub ping_interval: Duration,
    /// Most time an outbound ping may take (stream negotiation, and the 32 bytes there and
    /// back). Default 20 s (libp2p's). A failed ping is counted and logged; it never closes
    /// the connection.
    #[serde(with = "duration")]
    pub ping_timeout: Duration,
    /// Most time an inbound ping stream may stay silent before its next ping, and may take to
    /// accept our echo; past it the stream is closed. Default 30 s: above the 15 s interval at
    /// which rust-libp2p peers ping on one reused stream (js-libp2p opens a stream per ping).
    #[serde(with = "duration")]
    pub ping_inbound_timeout: Duration,
    /// Most inbound ping streams one peer may have open at once (over all its connections);
    /// a stream beyond it is dropped unread. Default 2: honest peers use one at a time.
    pub ping_max_inbound_streams_per_peer: usize,
    /// Most inbound ping streams open at once over all peers; a stream beyond it is dropped
    /// unread. Default 128 (at least one per peer up to [`Self::max_peers`], 50 by default).
    pub ping_max_inbound_streams: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen_addr: Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::UNSPECIFIED))
                .with(Protocol::Tcp(DEFAULT_P2P_PORT)),
            listen_ipv6: true,
            chain_id: TAIKO_MAINNET_CHAIN_ID,
            limits: ChainLimits::default(),
            gossip: GossipConfig::default(),
            scoring: ScoringConfig::default(),
            ban_period: Duration::from_secs(3600),
            ban_sustain: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            request_read_timeout: Duration::from_secs(5),
            rate_limit: RateLimitConfig::default(),
            gossip_rate_limit: GossipRateLimitConfig::default(),
            remembered_departed_peers: 4096,
            rate_limit_grace: 1,
            rate_limit_grace_window: Duration::from_secs(10),
            politeness: PolitenessConfig::default(),
            max_concurrent_inbound_per_protocol: 2,
            max_streams_per_connection: 16,
            max_peers: 50,
            max_inbound_peers: 35,
            max_outbound_peers: 15,
            max_connections_per_ip: 4,
            target_peers: 50,
            max_connections_per_peer: 1,
            max_pending_incoming: 16,
            handshake_timeout: Duration::from_secs(10),
            bootnodes: Vec::new(),
            static_peers: Vec::new(),
            static_peer_backoff: Duration::from_secs(1),
            static_peer_max_backoff: Duration::from_secs(60),
            stable_connection: Duration::from_secs(30),
            refused_peer_max_backoff: Duration::from_secs(600),
            discovery_enabled: true,
            discv5_port: None,
            enr: EnrConfig::default(),
            discovery_interval: Duration::from_secs(30),
            discovery_min_interval: Duration::from_secs(1),
            own_thread: true,
            command_channel_capacity: 1024,
            event_channel_capacity: 1024,
            idle_connection_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(15),
            ping_timeout: Duration::from_secs(20),
            ping_inbound_timeout: Duration::from_secs(30),
            ping_max_inbound_streams_per_peer: 2,
            ping_max_inbound_streams: 128,
        }
    }
}

impl NetworkConfig {
    /// The defaults, listening on 127.0.0.1 at an ephemeral TCP port (discv5 at an ephemeral
    /// UDP port): for tests, devnets and benchmarks, which must never take the production port
    /// [`DEFAULT_P2P_PORT`] nor listen on every interface.
    pub fn loopback() -> Self {
        Self {
            listen_addr: Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
                .with(Protocol::Tcp(0)),
            ..Self::default()
        }
    }

    /// [`Self::listen_addr`] as a socket address; an error naming the key for anything but
    /// `/ip4|ip6/<ip>/tcp/<port>`.
    pub fn listen_socket(&self) -> Result<SocketAddr, NetError> {
        let bad = || {
            NetError::Config(format!(
                "listen_addr {}: expected /ip4/<ip>/tcp/<port> or /ip6/<ip>/tcp/<port>",
                self.listen_addr
            ))
        };
        let mut parts = self.listen_addr.iter();
        let ip: IpAddr = match parts.next() {
            Some(Protocol::Ip4(ip)) => ip.into(),
            Some(Protocol::Ip6(ip)) => ip.into(),
            _ => return Err(bad()),
        };
        let port = match parts.next() {
            Some(Protocol::Tcp(port)) => port,
            _ => return Err(bad()),
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(SocketAddr::new(ip, port))
    }

    /// The time an inbound stream gets to deliver its whole request:
    /// `min(request_read_timeout, request_timeout / 2)` (see [`Self::request_read_timeout`]).
    pub fn effective_request_read_timeout(&self) -> Duration {
        self.request_read_timeout.min(self.request_timeout / 2)
    }

    /// Checks the configuration for consistency.
    pub fn validate(&self) -> Result<(), NetError> {
        self.limits
            .validate()
            .map_err(|e| NetError::Config(e.to_string()))?;
        let listen = self.listen_socket()?.ip();
        self.enr.validate(listen)?;
        let s = &self.scoring;
        if !(s.graylist_threshold < s.publish_threshold
            && s.publish_threshold < s.gossip_threshold
            && s.gossip_threshold <= 0.0)
        {
            return Err(NetError::Config(
                "thresholds must satisfy graylist < publish < gossip <= 0".into(),
            ));
        }
        if s.slow_peer_weight.is_nan() || s.slow_peer_weight > 0.0 {
            return Err(NetError::Config(
                "scoring.slow_peer_weight must be zero or negative".into(),
            ));
        }
        if s.app_score_min > 0.0 || s.app_score_max < 0.0 {
            return Err(NetError::Config("app score bounds must contain 0".into()));
        }
        if self.handshake_timeout.is_zero() {
            return Err(NetError::Config(
                "handshake_timeout must be positive".into(),
            ));
        }
        if self.request_read_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(NetError::Config(
                "request_timeout and request_read_timeout must be positive".into(),
            ));
        }
        if self.ping_interval.is_zero()
            || self.ping_timeout.is_zero()
            || self.ping_inbound_timeout.is_zero()
        {
            return Err(NetError::Config(
                "ping_interval, ping_timeout and ping_inbound_timeout must be positive".into(),
            ));
        }
        if self.max_peers == 0
            || self.max_inbound_peers == 0
            || self.max_outbound_peers == 0
            || self.max_connections_per_ip == 0
            || self.max_connections_per_peer == 0
        {
            return Err(NetError::Config(
                "max_peers, max_inbound_peers, max_outbound_peers, max_connections_per_ip and \
                 max_connections_per_peer must be positive"
                    .into(),
            ));
        }
        if self.command_channel_capacity == 0
            || self.event_channel_capacity == 0
            || self.max_concurrent_inbound_per_protocol == 0
            || self.max_streams_per_connection == 0
            || self.ping_max_inbound_streams_per_peer == 0
            || self.ping_max_inbound_streams == 0
        {
            return Err(NetError::Config("capacities must be positive".into()));
        }
        let p = &self.politeness;
        if p.strict_requests_per_window == 0
            || p.strict_window.is_zero()
            || p.strict_max_in_flight == 0
            || p.extended_max_in_flight == 0
            || p.learned_min_response_bytes == 0
            || ReqRespKind::ALL.iter().any(|k| {
                let l = p.extended_rate_limit.get(*k);
                l.burst == 0 || l.period.is_zero()
            })
            || !p.extended_rate_limit.response_bytes.is_valid()
        {
            return Err(NetError::Config(
                "politeness: every limit, window and in-flight count must be positive".into(),
            ));
        }
        for kind in ReqRespKind::ALL {
            let limit = self.rate_limit.get(kind);
            if limit.burst == 0 || limit.period.is_zero() {
                return Err(NetError::Config(format!(
                    "rate_limit.{}: burst and period must be positive",
                    kind.label()
                )));
            }
        }
        for kind in GossipTopicKind::ALL {
            let l = self.gossip_rate_limit.get(kind);
            if l.messages.burst == 0 || l.messages.period.is_zero() || !l.bytes.is_valid() {
                return Err(NetError::Config(format!(
                    "gossip_rate_limit.{}: bursts and periods must be positive",
                    kind.label()
                )));
            }
        }
        if !self.rate_limit.response_bytes.is_valid() {
            return Err(NetError::Config(
                "rate_limit.response_bytes: burst_bytes and period must be positive".into(),
            ));
        }
        if self.rate_limit_grace_window.is_zero() {
            return Err(NetError::Config(
                "rate_limit_grace_window must be positive".into(),
            ));
        }
        let g = &self.gossip;
        let largest = GossipTopicKind::ALL
            .iter()
            .map(|k| self.limits.max_gossip_len(*k))
            .max()
            .unwrap_or(0)
            .saturating_add(GOSSIP_FRAMING_ALLOWANCE);
        if g.max_transmit_size < largest {
            return Err(NetError::Config(format!(
                "gossip.max_transmit_size ({}) must hold the largest valid message plus framing \
                 ({largest} bytes)",
                g.max_transmit_size
            )));
        }
        if !(g.mesh_n_low <= g.mesh_n && g.mesh_n <= g.mesh_n_high) {
            return Err(NetError::Config(
                "gossip mesh must satisfy D_lo <= D <= D_hi".into(),
            ));
        }
        if !(0.0..=1.0).contains(&g.gossip_factor) {
            return Err(NetError::Config(format!(
                "gossip.gossip_factor ({}) must be between 0 and 1",
                g.gossip_factor
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_round_trip() {
        let c = NetworkConfig::default();
        c.validate().unwrap();
        let json = serde_json::to_string(&c).unwrap();
        let back: NetworkConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c);
        let partial: NetworkConfig = serde_json::from_str(r#"{"ban_sustain": "1500ms"}"#).unwrap();
        assert_eq!(partial.ban_sustain, Duration::from_millis(1500));
        assert_eq!(partial.request_timeout, Duration::from_secs(10));
        assert_eq!(partial.request_read_timeout, Duration::from_secs(5));
    }

    #[test]
    fn production_listens_everywhere_on_9222_and_tests_on_loopback() {
        let c = NetworkConfig::default();
        assert_eq!(c.listen_addr.to_string(), "/ip4/0.0.0.0/tcp/9222");
        assert_eq!(
            c.listen_socket().unwrap(),
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_P2P_PORT))
        );
        assert_eq!(c.discv5_port, None, "discv5 takes the TCP port number");
        assert!(c.listen_ipv6);
        assert_eq!(c.enr, EnrConfig::default());
        assert!(c.enr.votes_update());
        let l = NetworkConfig::loopback();
        assert_eq!(l.listen_addr.to_string(), LOOPBACK_LISTEN_ADDR);
        assert_eq!(l.discv5_port, None);
        assert_eq!(
            NetworkConfig {
                listen_addr: c.listen_addr.clone(),
                ..l
            },
            c,
            "loopback() differs from the default in the listen address only"
        );
        for bad in [
            "/ip4/1.2.3.4/udp/9",
            "/dns4/example.com/tcp/9222",
            "/ip4/1.2.3.4",
        ] {
            let c = NetworkConfig {
                listen_addr: bad.parse().unwrap(),
                ..Default::default()
            };
            let err = c.validate().unwrap_err().to_string();
            assert!(err.contains("listen_addr"), "{bad}: {err}");
        }
    }

    #[test]
    fn request_read_timeout_is_capped_by_half_the_request_timeout() {
        let c = NetworkConfig::default();
        assert_eq!(c.effective_request_read_timeout(), Duration::from_secs(5));
        let c = NetworkConfig {
            request_timeout: Duration::from_secs(3),
            ..Default::default()
        };
        assert_eq!(
            c.effective_request_read_timeout(),
            Duration::from_millis(1500)
        );
        let c: NetworkConfig = serde_json::from_str(r#"{"request_read_timeout": "2s"}"#).unwrap();
        assert_eq!(c.effective_request_read_timeout(), Duration::from_secs(2));
        let c = NetworkConfig {
            request_read_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert!(matches!(c.validate(), Err(NetError::Config(_))));
    }

    #[test]
    fn ping_settings_have_defaults_and_must_be_positive() {
        let c: NetworkConfig =
            serde_json::from_str(r#"{"ping_interval": "5s", "ping_max_inbound_streams": 8}"#)
                .unwrap();
        assert_eq!(c.ping_interval, Duration::from_secs(5));
        assert_eq!(c.ping_max_inbound_streams, 8);
        assert_eq!(c.ping_timeout, Duration::from_secs(20));
        assert_eq!(c.ping_inbound_timeout, Duration::from_secs(30));
        assert_eq!(c.ping_max_inbound_streams_per_peer, 2);
        c.validate().unwrap();
        for bad in [
            NetworkConfig {
                ping_interval: Duration::ZERO,
                ..Default::default()
            },
            NetworkConfig {
                ping_inbound_timeout: Duration::ZERO,
                ..Default::default()
            },
            NetworkConfig {
                ping_max_inbound_streams_per_peer: 0,
                ..Default::default()
            },
            NetworkConfig {
                ping_max_inbound_streams: 0,
                ..Default::default()
            },
        ] {
            assert!(matches!(bad.validate(), Err(NetError::Config(_))));
        }
    }

    /// The per-peer connection cap is also read as `max_pending_inbound_per_peer` (a serde
    /// alias), so config files that use that name load.
    #[test]
    fn the_per_peer_connection_cap_reads_its_old_name() {
        let c: NetworkConfig =
            serde_json::from_str(r#"{"max_pending_inbound_per_peer": 3}"#).expect("old name");
        assert_eq!(c.max_connections_per_peer, 3);
        let c: NetworkConfig =
            serde_json::from_str(r#"{"max_connections_per_peer": 2}"#).expect("new name");
        assert_eq!(c.max_connections_per_peer, 2);
    }

    #[test]
    fn peer_slots_split_and_per_ip_cap() {
        let c = NetworkConfig::default();
        assert_eq!((c.max_inbound_peers, c.max_outbound_peers), (35, 15));
        assert_eq!(c.max_inbound_peers + c.max_outbound_peers, c.max_peers);
        assert_eq!(c.max_connections_per_ip, 4);
        let c: NetworkConfig = serde_json::from_str(
            r#"{"max_inbound_peers": 3, "max_outbound_peers": 2, "max_connections_per_ip": 9}"#,
        )
        .unwrap();
        assert_eq!(
            (
                c.max_inbound_peers,
                c.max_outbound_peers,
                c.max_connections_per_ip
            ),
            (3, 2, 9)
        );
        c.validate().unwrap();
        for f in [
            |c: &mut NetworkConfig| c.max_inbound_peers = 0,
            |c: &mut NetworkConfig| c.max_outbound_peers = 0,
            |c: &mut NetworkConfig| c.max_connections_per_ip = 0,
        ] {
            let mut c = NetworkConfig::default();
            f(&mut c);
            assert!(matches!(c.validate(), Err(NetError::Config(_))));
        }
    }
}
