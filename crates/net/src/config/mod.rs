//! Configuration of the network layer. Every limit is a field with the default the spec or the
//! reference implementation uses; section numbers refer to `PROTOCOL.md`.
//!
//! Durations are (de)serialised as humantime strings (`"30s"`, `"500ms"`): [`duration`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use preconfirmation_types::{
    ChainLimits, GossipTopicKind, ReqRespKind, MAX_RAW_TXLISTS_RESPONSE_BYTES, MAX_TXLIST_BYTES,
    RAW_TXLIST_FIXED_PART_LEN, SIGNED_COMMITMENT_SSZ_LEN, TAIKO_MAINNET_CHAIN_ID,
};
use serde::{Deserialize, Serialize};

use crate::error::NetError;

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

/// Serde helper for every duration in a config file (`#[serde(with = "duration")]`): a
/// human-readable string, `"30s"`, `"500ms"`, `"10min"`, `"1h 30m"` (the `humantime` syntax, as
/// reth and Lighthouse configs write durations). A bare number is refused: its unit would be a
/// guess. Written back in the same syntax, so `config --print-default` round-trips.
pub mod duration {
    use std::time::Duration;

    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    /// Writes the duration as a humantime string (`"1m 30s"`, `"500ms"`, `"0s"`).
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    /// Reads a humantime string into a duration; anything else is an error naming the syntax.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d).map_err(|_| {
            D::Error::custom("expected a duration string with a unit, e.g. \"30s\" or \"500ms\"")
        })?;
        parse(&text).map_err(D::Error::custom)
    }

    /// Parses `"30s"`, `"500ms"`, `"2m 30s"`; the error says what was wrong and what is
    /// expected.
    pub fn parse(text: &str) -> Result<Duration, String> {
        humantime::parse_duration(text.trim()).map_err(|e| {
            format!("{text:?} is not a duration ({e}); write e.g. \"30s\" or \"500ms\"")
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq)]
        struct Holder {
            #[serde(with = "super")]
            d: Duration,
        }

        fn read(toml_text: &str) -> Result<Duration, String> {
            toml::from_str::<Holder>(toml_text)
                .map(|h| h.d)
                .map_err(|e| e.to_string())
        }

        #[test]
        fn units_are_read() {
            assert_eq!(read(r#"d = "30s""#), Ok(Duration::from_secs(30)));
            assert_eq!(read(r#"d = "500ms""#), Ok(Duration::from_millis(500)));
            assert_eq!(read(r#"d = "2m 30s""#), Ok(Duration::from_secs(150)));
            assert_eq!(read(r#"d = "10min""#), Ok(Duration::from_secs(600)));
            assert_eq!(read(r#"d = "0s""#), Ok(Duration::ZERO));
        }

        #[test]
        fn a_bare_number_or_junk_is_refused_with_the_syntax() {
            let bare = read("d = 500").unwrap_err();
            assert!(bare.contains("30s"), "{bare}");
            let junk = read(r#"d = "soon""#).unwrap_err();
            assert!(junk.contains("soon") && junk.contains("500ms"), "{junk}");
            assert!(read(r#"d = "5""#).is_err(), "a unitless string is refused");
        }

        #[test]
        fn written_form_reads_back() {
            for d in [
                Duration::ZERO,
                Duration::from_millis(500),
                Duration::from_millis(10_500),
                Duration::from_secs(3_600),
            ] {
                let text = toml::to_string(&Holder { d }).unwrap();
                assert_eq!(toml::from_str::<Holder>(&text).unwrap().d, d, "{text}");
            }
            let text = toml::to_string(&Holder {
                d: Duration::from_millis(1_500),
            })
            .unwrap();
            assert!(text.contains(r#""1s 500ms""#), "{text}");
        }
    }
}

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
    /// Most inbound connections, pending or established, from one IP address. Default 4: a
    /// host runs a node or a few, never tens; without the cap one host minting peer ids takes
    /// every inbound slot ([`crate::peers::ip_limit`]). Outbound connections are not counted. Tests
    /// running many nodes on 127.0.0.1 raise it.
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
    /// slot; it applies to our dials too. Default 10 s (libp2p's own default, which applied
    /// before this was configurable); must be positive.
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

/// One token bucket: `burst` tokens, refilled continuously at `burst / period`. A request
/// that finds the bucket empty is refused and, beyond [`NetworkConfig::rate_limit_grace`],
/// penalises the requester (§7, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Bucket size: requests allowed in a burst.
    pub burst: u32,
    /// Time to refill a full bucket.
    #[serde(with = "duration")]
    pub period: Duration,
}

impl RateLimit {
    /// `burst` requests, refilled over `period`.
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }
}

/// A byte budget: a token bucket of `burst_bytes` bytes, refilled continuously at
/// `burst_bytes / period` (§7). See [`crate::reqresp::budget`] for how requests draw on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRateLimit {
    /// Bucket size in bytes: response bytes allowed in a burst.
    pub burst_bytes: u64,
    /// Time to refill a full bucket.
    #[serde(with = "duration")]
    pub period: Duration,
}

impl ByteRateLimit {
    /// `burst_bytes` bytes, refilled over `period`.
    pub const fn new(burst_bytes: u64, period: Duration) -> Self {
        Self {
            burst_bytes,
            period,
        }
    }

    /// Whether both figures are positive.
    pub fn is_valid(&self) -> bool {
        self.burst_bytes > 0 && !self.period.is_zero()
    }
}

/// Per-peer inbound limits (§7 "per-peer rate limits … on every req/resp protocol"): one
/// request-count token bucket per peer and protocol, and one response-byte budget per peer
/// shared by the three data protocols ([`crate::reqresp::budget`]). The spec fixes no figures.
///
/// # Why these defaults
///
/// They let one catching-up peer take, from each serving node, about 25 pages of commitments
/// and 51 batches of tx lists per second (§10.3 catch-up), with bursts that cover a day
/// offline (43 200 blocks of 2 s) from two peers, and bound what that costs:
///
/// - **Egress**: every data response draws on [`Self::response_bytes`], 64 MiB per 10 s, so
///   one peer at the limit takes at most 6.4 MiB/s (≈ 54 Mbit/s) sustained and 64 MiB in a
///   burst from a serving node, whatever the mix of protocols; `get_head` adds 8 × 64 bytes
///   per 10 s. 256 full pages per 10 s are 256 × 97 796 B ≈ 2.4 MiB/s, well inside it.
/// - **CPU** (derived from the code path): a page is one redb read transaction with a range
///   read of up to 256 values (≈ 98 KB) plus their SSZ decode and re-encode, ≈ 0.2–0.5 ms, so
///   25.6 pages/s cost ≈ 5–13 ms of CPU per second. A `get_raw_txlists` batch is up to 64
///   point reads plus copying what is served: ≈ 0.3 ms per batch, ≈ 15 ms/s at 51.2
///   batches/s, plus ≈ 15 ms/s for the 6.4 MiB/s the byte budget lets through. One peer at
///   every limit thus costs a serving node ≲ 5 % of one core.
/// - **Measured** (`bench catchup --defaults`, BENCHMARKS.md, serving node column,
///   2026-12-03): three serving nodes feeding one catching-up node at its full speed
///   (≈ 25 000 blocks/s) each spent 4–5 % of one core and sent ≈ 5 MiB/s with 256 B tx lists;
///   with 64 KiB tx lists 5–9 % and 12 MiB/s over a 9 s catch-up, most of it the 64 MiB
///   burst, after which the byte budget holds each at 6.4 MiB/s.
///
/// Read with `#[serde(default)]`: a config file may set any subset of the protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// `get_head`: 8 per 10 s by default. A peer asks for the head at start-up, perhaps
    /// again to pick a catch-up source; more than one every ~1.25 s sustained is polling.
    pub get_head: RateLimit,
    /// `get_commitments_by_number` (§10.2): 256 per 10 s by default, ≈ 25 pages/s sustained.
    /// A page holds up to `MAX_COMMITMENTS_PER_RESPONSE` (256) commitments, so one burst pages
    /// through 65 536 blocks and the refill stays far ahead of the chain (about 5 blocks per
    /// 10 s), even for a peer that pages with a small `maxCount`. Each page also reserves
    /// `4 + min(maxCount, 256) · 382` bytes of [`Self::response_bytes`].
    pub get_commitments_by_number: RateLimit,
    /// `get_raw_txlist` (§11.2): 512 per 10 s by default. A catching-up peer fetches one tx
    /// list by hash per block it has not seen on gossip, up to 256 per commitments page: the
    /// burst covers two full pages, and the refill (51.2/s) is about 100× the chain's block
    /// rate. Each request reserves `MAX_TXLIST_BYTES` + 36 bytes of
    /// [`Self::response_bytes`], refunded down to what is served; in-flight requests are
    /// capped at [`NetworkConfig::max_concurrent_inbound_per_protocol`].
    pub get_raw_txlist: RateLimit,
    /// `get_raw_txlists` (PROTOCOL-EXT.md, this project's batched fetch): 512 per 10 s by
    /// default, ≈ 51 batches/s, as many as single-hash `get_raw_txlist` requests. One request
    /// asks for up to 64 tx lists, so the burst covers 32 768 blocks (≈ 18 hours of 2 s
    /// blocks, with the pages' 256 × 256) and the refill serves 3 277 tx lists per second from
    /// each peer — tx lists keep pace with pages and with the recover rate of a 2-core node
    /// catching up from 3 peers. A batch costs 64 point reads; the measured CPU of a serving
    /// node at this pace is in BENCHMARKS.md (`bench catchup`, serving node). A response
    /// carries at most `MAX_RAW_TXLISTS_RESPONSE_BYTES` (8 MiB); what bounds egress is
    /// [`Self::response_bytes`], from which each request reserves its largest response.
    pub get_raw_txlists: RateLimit,
    /// Response bytes per peer, shared by `get_commitments_by_number`, `get_raw_txlist` and
    /// `get_raw_txlists` (§7): 64 MiB per 10 s by default (6.4 MiB/s sustained, 64 MiB
    /// burst). A request reserves its largest possible response at admission (clamped to
    /// the budget) and is refused, reason `bytes_exhausted`, when the budget holds less; the
    /// unused part is refunded when the response is sent ([`crate::reqresp::budget`]). The burst holds
    /// eight of the largest `get_raw_txlists` responses, so two in flight never wait on it.
    pub response_bytes: ByteRateLimit,
}

/// 64 MiB: the default [`RateLimitConfig::response_bytes`] burst.
const DEFAULT_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

impl Default for RateLimitConfig {
    fn default() -> Self {
        let period = Duration::from_secs(10);
        Self {
            get_head: RateLimit::new(8, period),
            get_commitments_by_number: RateLimit::new(256, period),
            get_raw_txlist: RateLimit::new(512, period),
            get_raw_txlists: RateLimit::new(512, period),
            response_bytes: ByteRateLimit::new(DEFAULT_RESPONSE_BYTES, period),
        }
    }
}

impl RateLimitConfig {
    /// The same limit for every protocol (e.g. tests that keep the limiter out of the way),
    /// and a byte budget that lets each of the `burst` requests carry the largest response
    /// (`burst × MAX_RAW_TXLISTS_RESPONSE_BYTES` per `period`).
    pub const fn uniform(burst: u32, period: Duration) -> Self {
        let limit = RateLimit::new(burst, period);
        Self {
            get_head: limit,
            get_commitments_by_number: limit,
            get_raw_txlist: limit,
            get_raw_txlists: limit,
            response_bytes: ByteRateLimit::new(
                (burst as u64).saturating_mul(MAX_RAW_TXLISTS_RESPONSE_BYTES as u64),
                period,
            ),
        }
    }

    /// The limit of protocol `kind`.
    pub fn get(&self, kind: ReqRespKind) -> RateLimit {
        match kind {
            ReqRespKind::GetHead => self.get_head,
            ReqRespKind::GetCommitmentsByNumber => self.get_commitments_by_number,
            ReqRespKind::GetRawTxList => self.get_raw_txlist,
            ReqRespKind::GetRawTxLists => self.get_raw_txlists,
        }
    }
}

/// The L2 slot (§7 honest gossip load: one commitment and one tx list per slot).
pub const L2_SLOT: Duration = Duration::from_secs(2);

/// Headroom of the default gossip limits over the honest load, in burst and in rate.
pub const GOSSIP_RATE_HEADROOM: u32 = 8;

/// One topic's per-peer gossip limits: a message-count bucket and a byte bucket, each refilled
/// continuously over its period. A message must fit both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipTopicLimit {
    /// Messages per period.
    pub messages: RateLimit,
    /// Payload bytes per period.
    pub bytes: ByteRateLimit,
}

impl GossipTopicLimit {
    /// The default for messages of at most `max_len` bytes, one per [`L2_SLOT`] when honest:
    /// [`GOSSIP_RATE_HEADROOM`] messages and as many largest messages per slot.
    pub const fn honest_load_times_headroom(max_len: usize) -> Self {
        Self {
            messages: RateLimit::new(GOSSIP_RATE_HEADROOM, L2_SLOT),
            bytes: ByteRateLimit::new(GOSSIP_RATE_HEADROOM as u64 * max_len as u64, L2_SLOT),
        }
    }
}

/// Per-peer gossip limits per topic (§7 "per-peer rate limits on gossip"), counted on the
/// messages each peer delivers to us first (gossipsub drops duplicates before they are
/// counted). The spec fixes no figures.
///
/// # Why these defaults
///
/// An honest network carries one commitment (382 bytes) and one tx list (at most
/// `MAX_TXLIST_BYTES` + 36 bytes) per 2 s L2 slot, and a mesh peer forwards each message to
/// us at most once, so an honest peer sends at most that. Each topic allows
/// [`GOSSIP_RATE_HEADROOM`] (8) times it, as a burst and as a rate: 8 messages per 2 s (4/s)
/// and 8 × 382 bytes per 2 s of commitments, 8 messages and 8 × (2 MiB + 36) ≈ 16 MiB per
/// 2 s of tx lists. A peer over them is ignored message by message and penalised
/// ([`NetworkConfig::rate_limit_grace`], then −1 per message, at most −4 per 10 s, §7.1), so
/// one sustaining it is banned; what one peer can make us validate and forward is bounded by
/// the limits, whatever it sends.
///
/// Read with `#[serde(default)]`: a config file may set either topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GossipRateLimitConfig {
    /// `preconfirmationCommitments` (§2): 8 messages and 3 056 bytes per 2 s by default.
    pub commitments: GossipTopicLimit,
    /// `rawTxLists` (§2): 8 messages and 16 777 504 bytes per 2 s by default.
    pub raw_txlists: GossipTopicLimit,
}

impl Default for GossipRateLimitConfig {
    fn default() -> Self {
        Self {
            commitments: GossipTopicLimit::honest_load_times_headroom(SIGNED_COMMITMENT_SSZ_LEN),
            raw_txlists: GossipTopicLimit::honest_load_times_headroom(
                RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES,
            ),
        }
    }
}

impl GossipRateLimitConfig {
    /// `burst` messages per `period` on every topic, and bytes for as many of the topic's
    /// largest messages: for devnets, benchmarks and tests that produce blocks faster than
    /// one per slot.
    pub const fn uniform(burst: u32, period: Duration) -> Self {
        const fn limit(burst: u32, period: Duration, max_len: usize) -> GossipTopicLimit {
            GossipTopicLimit {
                messages: RateLimit::new(burst, period),
                bytes: ByteRateLimit::new((burst as u64).saturating_mul(max_len as u64), period),
            }
        }
        Self {
            commitments: limit(burst, period, SIGNED_COMMITMENT_SSZ_LEN),
            raw_txlists: limit(burst, period, RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES),
        }
    }

    /// The limits of topic `kind`.
    pub fn get(&self, kind: GossipTopicKind) -> GossipTopicLimit {
        match kind {
            GossipTopicKind::Commitments => self.commitments,
            GossipTopicKind::RawTxLists => self.raw_txlists,
        }
    }
}

/// Outbound pacing (see [`crate::reqresp::self_limiter`]): the limits we assume of each kind of peer, so
/// that we never send a request it would refuse. A peer that does not advertise this project's
/// extensions is assumed to be the deployed reference (PROTOCOL.md "Reference strictness"); a
/// peer that does is assumed to run this project's default inbound limits.
///
/// Read with `#[serde(default)]`: a config file may set any subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolitenessConfig {
    /// Requests per protocol per window we send to a strict peer. Default 8, the reference's
    /// limit.
    pub strict_requests_per_window: u32,
    /// The strict peer's rate-limit window. Default 10 s, the reference's.
    #[serde(with = "duration")]
    pub strict_window: Duration,
    /// Unanswered requests per protocol to a strict peer. Default 1: never a second request
    /// before the first is answered.
    pub strict_max_in_flight: usize,
    /// The inbound limits assumed of peers that advertise this project's extensions: by
    /// default this project's own defaults ([`RateLimitConfig::default`]), which other nodes
    /// run. Independent of this node's own `rate_limit`, so raising what we accept never
    /// makes us ask others for more than they accept. Raise it only for a network whose
    /// nodes all raised theirs. Its `response_bytes` is mirrored too: before a data request
    /// we reserve its largest response from our copy of the peer's byte budget, as the peer
    /// will ([`crate::reqresp::budget`]).
    pub extended_rate_limit: RateLimitConfig,
    /// Unanswered requests per protocol to a peer of ours. Default 2, the default
    /// `max_concurrent_inbound_per_protocol`.
    pub extended_max_in_flight: usize,
    /// Added to every window, so jitter between our send and the peer's receive cannot put
    /// one request too many into its window; our copy of a peer's byte budget refills over
    /// its period plus this margin. Default 500 ms.
    #[serde(with = "duration")]
    pub window_margin: Duration,
    /// Floor of a peer's byte budget as we learn it: when a peer of ours refuses a data
    /// request our pacing admitted, we halve the budget we assume of it for the rest of the
    /// connection, never below this (§7). Default 1 MiB (a larger reservation is clamped to
    /// the budget, as the peer clamps it, so requests still go out, one per refill).
    pub learned_min_response_bytes: u64,
    /// Whether the first `strict_window` (plus margin) after the network starts counts as
    /// spent for every strict peer: nothing goes to one until it has passed. The strict
    /// reference bans for the life of its process on the first request over its budget, and
    /// it remembers our peer id across our restart: a node restarted within a window of a
    /// full burst would otherwise send a fresh burst into a window the previous process
    /// filled (PROTOCOL.md "Reference strictness"). Default true; the node turns it off when
    /// its identity key is new (no peer has seen that id).
    pub strict_window_spent_at_start: bool,
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        Self {
            strict_requests_per_window: 8,
            strict_window: Duration::from_secs(10),
            strict_max_in_flight: 1,
            extended_rate_limit: RateLimitConfig::default(),
            extended_max_in_flight: 2,
            window_margin: Duration::from_millis(500),
            learned_min_response_bytes: 1024 * 1024,
            strict_window_spent_at_start: true,
        }
    }
}

/// Room for gossipsub's protobuf framing around one published payload (§2, §7), added to the
/// largest valid payload to make the frame caps. One message on the wire is a length-prefixed
/// `RPC { publish: [Message { from, data, seqno, topic, signature, key }] }`; its overhead is
/// at most ≈ 300 bytes: `from` (a peer id, ≤ 2 + 42), `seqno` (2 + 8), `topic` (2 + the topic
/// string, ≤ 2 + 70 for a 20-digit chain id), `signature` (≤ 2 + 72, secp256k1 DER), `key`
/// (≤ 2 + 37, or none when inlined in an ed25519 peer id), the `data` and `publish` field
/// prefixes (≤ 2 × 6) and the frame's varint length (≤ 5). 1 KiB leaves room for the odd
/// subscription an implementation piggybacks on the same RPC, and no more.
pub const GOSSIP_FRAMING_ALLOWANCE: usize = 1024;

/// The largest valid gossip payload of the protocol (§2, §3): a `RawTxListGossip` of
/// `MAX_TXLIST_BYTES` (2 MiB) plus its 36-byte SSZ fixed part; a `SignedCommitment` is only
/// `SIGNED_COMMITMENT_SSZ_LEN` (382) bytes.
pub const MAX_GOSSIP_PAYLOAD_BYTES: usize = {
    let txlist = RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES;
    if txlist > SIGNED_COMMITMENT_SSZ_LEN {
        txlist
    } else {
        SIGNED_COMMITMENT_SSZ_LEN
    }
};

/// Default [`GossipConfig::max_transmit_size`]: [`MAX_GOSSIP_PAYLOAD_BYTES`] +
/// [`GOSSIP_FRAMING_ALLOWANCE`] = 2 098 212 bytes (≈ 2 MiB + 1 KiB).
pub const DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE: usize =
    MAX_GOSSIP_PAYLOAD_BYTES + GOSSIP_FRAMING_ALLOWANCE;

/// Gossipsub mesh parameters (§7); defaults are the Kona/op-node presets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GossipConfig {
    /// Mesh degree D. Default 8.
    pub mesh_n: usize,
    /// D_lo. Default 6.
    pub mesh_n_low: usize,
    /// D_hi. Default 12.
    pub mesh_n_high: usize,
    /// D_lazy: the fewest non-mesh peers each heartbeat's IHAVE goes to, per topic. Default 1
    /// (gossipsub's is 6).
    ///
    /// Measured in `preconf-node testbed` (BENCHMARKS.md "testbed", 24 nodes, 50 Mbit/s,
    /// 1 MiB tx lists): every IHAVE for a tx list that reaches a node before the mesh copy
    /// does (which takes ≥ 0.5 s to cross three 50 Mbit/s links) is answered by IWANT, and the
    /// publisher sends the whole list again. With 6 (and `gossip_factor` 0.25) a publisher
    /// sent 9.3 copies per tx list, tx-list p99 2.1–2.3 s; with 1 (and `gossip_factor` 0)
    /// 4.2 copies, p99 1.6–1.9 s, and at 64 nodes every node still got every commitment
    /// (the repair IHAVE is for). Gossipsub offers no per-topic setting, so commitments get
    /// the same. A node whose mesh drops a commitment still gets it from one random
    /// non-mesh peer per heartbeat of each node, or by its gap check and catch-up.
    pub gossip_lazy: usize,
    /// Share of the non-mesh peers of a topic each heartbeat's IHAVE goes to, when that is
    /// more than `gossip_lazy`. Default 0 (gossipsub's is 0.25, which with ~18 peers meant
    /// 4–5 IHAVE peers whatever `gossip_lazy` says); between 0 and 1.
    pub gossip_factor: f64,
    /// Heartbeat interval. Default 500 ms.
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    /// Fanout TTL. Default 24 s.
    #[serde(with = "duration")]
    pub fanout_ttl: Duration,
    /// Heartbeats of message history kept. Default 12.
    pub history_length: usize,
    /// Heartbeats of history advertised to non-mesh peers (IHAVE). Default 1.
    ///
    /// Measured in `preconf-node testbed` (BENCHMARKS.md "testbed"). With gossipsub's 3, a
    /// publisher's IHAVE for a 1 MiB tx list reaches its non-mesh peers long before the mesh
    /// copies can cross 50 Mbit/s links, so they all ask (IWANT) and its uplink carries ~12
    /// copies (24 nodes: tx-list p99 5.7 s). With 0 (no IHAVE) that fell to 3 copies and
    /// 1.9 s, but at 64 nodes some nodes then missed commitments their mesh did not bring.
    /// With 1 (IHAVE for the last heartbeat's messages only): 64 nodes all reached,
    /// 24 nodes' 1 MiB tx-list p99 2.3 s with 9 copies from the publisher while IHAVE went to
    /// 6 peers, 1.6–1.9 s with 4.2 copies once it goes to one (`gossip_lazy`).
    pub history_gossip: usize,
    /// Duplicate (seen) cache window (§7 "short duplicate windows"). Default 120 s.
    #[serde(with = "duration")]
    pub duplicate_cache_time: Duration,
    /// Sign published messages and require signatures (`MessageAuthenticity::Signed` +
    /// `ValidationMode::Strict`). The payload itself stays raw SSZ (§2); the signature lives in
    /// the gossipsub envelope. Set false for `Anonymous` (op-node `StrictNoSign`) networks.
    /// Default true.
    pub signed_messages: bool,
    /// Gossipsub's frame cap in bytes: an inbound RPC frame longer than this is refused by the
    /// codec before it is decoded (the stream is dropped), and we never publish a larger one.
    /// Default [`DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE`]: the largest valid message of the
    /// protocol, a `RawTxListGossip` of `MAX_TXLIST_BYTES` + 36 bytes, plus
    /// [`GOSSIP_FRAMING_ALLOWANCE`] — not `MAX_GOSSIP_SIZE_BYTES` (10 MiB), which no valid
    /// message comes near. Each topic additionally gets its own cap,
    /// `limits.max_gossip_len(topic)` + [`GOSSIP_FRAMING_ALLOWANCE`] (so 1 406 bytes for
    /// commitments) but never above this one; a message over its topic's cap is dropped by
    /// gossipsub as an invalid delivery (§7.1 weight −2) and never reaches the SDK. Must hold
    /// the largest message `limits` allow plus the allowance.
    pub max_transmit_size: usize,
    /// Whether our own messages go to every peer subscribed to the topic (gossipsub's flood
    /// publish) rather than to the mesh only. Default false, as the Kona preset: flooding a
    /// 1 MiB tx list to 18+ peers kept a 50 Mbit/s publisher busy for 3 s (testbed: commitment
    /// p50 3.1 s → 1.0 s without it).
    pub flood_publish: bool,
    /// Whether, when we publish a large message, we first tell each recipient we do not want
    /// it back (gossipsub v1.2 IDONTWANT on publish). Default false.
    pub idontwant_on_publish: bool,
    /// Mesh degree D of the tx-list topic: each node sends a tx list to this many peers. Its
    /// messages are up to 1 000× a commitment, so on a home uplink every extra copy delays
    /// all the others: D = 3 keeps a publisher's uplink at about 3 copies and the duplicates
    /// a node receives below one, while 24 nodes are still reached in about three hops
    /// (testbed, 50 Mbit/s: tx-list p50 1.4 s with D = 4, 1.2 s with D = 3). Default 3.
    pub txlist_mesh_n: usize,
    /// D_lo of the tx-list topic. Default 2.
    pub txlist_mesh_n_low: usize,
    /// D_hi of the tx-list topic. Default 4.
    pub txlist_mesh_n_high: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            mesh_n: 8,
            mesh_n_low: 6,
            mesh_n_high: 12,
            gossip_lazy: 1,
            gossip_factor: 0.0,
            heartbeat_interval: Duration::from_millis(500),
            fanout_ttl: Duration::from_secs(24),
            history_length: 12,
            history_gossip: 1,
            duplicate_cache_time: Duration::from_secs(120),
            signed_messages: true,
            max_transmit_size: DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE,
            flood_publish: false,
            idontwant_on_publish: false,
            txlist_mesh_n: 3,
            txlist_mesh_n_low: 2,
            txlist_mesh_n_high: 4,
        }
    }
}

/// Peer scoring (§7.1): gossipsub v1.1 topic parameters, the application score the net layer
/// keeps from the SDK's verdicts, thresholds and the ban threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringConfig {
    /// Topic weight of both topics. Default 1.0.
    pub topic_weight: f64,
    /// invalidMessageDeliveries weight (negative; §7.1 magnitude 2.0). Default −2.0.
    ///
    /// §7.1 also caps this term at −20; gossipsub has no such cap (the term is
    /// `weight · counter²`, unbounded). It is not emulated, because with these defaults it
    /// would change no outcome: a peer whose term reaches −20 (counter √10) stays below
    /// `ban_threshold` (−5) for ≈ 69 s while the counter decays (0.99 per 1 s interval), more
    /// than `ban_sustain` (30 s), so it is banned with or without the cap, and a banned peer's
    /// score is forgotten (`retain_score`) before the 1 h ban ends. Below the cap the two agree
    /// exactly. `gossip::tests::the_minus_20_cap_changes_no_ban` checks this against the
    /// defaults.
    pub invalid_message_deliveries_weight: f64,
    /// invalidMessageDeliveries decay. Default 0.99.
    pub invalid_message_deliveries_decay: f64,
    /// firstMessageDeliveries weight. Default 0.5.
    pub first_message_deliveries_weight: f64,
    /// firstMessageDeliveries decay. Default 0.999.
    pub first_message_deliveries_decay: f64,
    /// firstMessageDeliveries cap. Default 20.
    pub first_message_deliveries_cap: f64,
    /// timeInMesh weight (not fixed by §7.1); default 1/3600 so a full hour adds +1.
    pub time_in_mesh_weight: f64,
    /// timeInMesh quantum. Default 1 s.
    #[serde(with = "duration")]
    pub time_in_mesh_quantum: Duration,
    /// timeInMesh cap in quanta. Default 3600.
    pub time_in_mesh_cap: f64,
    /// App-specific score weight. Default 1.0.
    pub app_specific_weight: f64,
    /// App-score penalty per validation failure / misbehaviour. Default 1.0.
    pub app_penalty: f64,
    /// Most penalties counted per peer per [`Self::app_penalty_window`]. Default 4.
    pub app_max_penalties_per_window: u32,
    /// Window of the penalty cap. Default 10 s.
    #[serde(with = "duration")]
    pub app_penalty_window: Duration,
    /// App-score reward per accepted message. Default 0.05.
    pub app_reward: f64,
    /// App-score multiplicative decay applied per [`Self::app_decay_interval`]. Default 0.9.
    pub app_decay: f64,
    /// Decay interval of the app score. Default 10 s.
    #[serde(with = "duration")]
    pub app_decay_interval: Duration,
    /// Lower clamp of the app score. Default −10.
    pub app_score_min: f64,
    /// Upper clamp of the app score (the reward cap). Default +10.
    pub app_score_max: f64,
    /// IP colocation weight (not in §7.1). Default 0: devnets run many nodes per IP.
    pub ip_colocation_factor_weight: f64,
    /// Below this, no gossip is emitted to / accepted from the peer (§7.1 "drop"). Default −1.
    pub gossip_threshold: f64,
    /// Below this, we neither publish to the peer nor keep it in the mesh (§7.1 "prune").
    /// Default −2. (Gossipsub itself prunes every mesh peer whose score is below 0 at each
    /// heartbeat, which is stricter; this threshold is where it also stops publishing to the
    /// peer and accepting its PX.)
    pub publish_threshold: f64,
    /// Below this, all RPCs of the peer are ignored. Default −5.
    pub graylist_threshold: f64,
    /// A score below this for longer than `ban_sustain` bans the peer (§7.1). Default −5.
    pub ban_threshold: f64,
    /// How long gossipsub keeps a disconnected peer's score (so a reconnect does not wash a
    /// bad score). Every peer id that ever connected costs an entry for this long, so it
    /// bounds the memory a peer-id churn can hold (gossipsub's own default is an hour). Bans
    /// and the app score are kept by the peer manager, not here. Default 60 000 ms.
    #[serde(with = "duration")]
    pub retain_score: Duration,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -2.0,
            invalid_message_deliveries_decay: 0.99,
            first_message_deliveries_weight: 0.5,
            first_message_deliveries_decay: 0.999,
            first_message_deliveries_cap: 20.0,
            time_in_mesh_weight: 1.0 / 3600.0,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            app_specific_weight: 1.0,
            app_penalty: 1.0,
            app_max_penalties_per_window: 4,
            app_penalty_window: Duration::from_secs(10),
            app_reward: 0.05,
            app_decay: 0.9,
            app_decay_interval: Duration::from_secs(10),
            app_score_min: -10.0,
            app_score_max: 10.0,
            ip_colocation_factor_weight: 0.0,
            retain_score: Duration::from_secs(60),
            gossip_threshold: -1.0,
            publish_threshold: -2.0,
            graylist_threshold: -5.0,
            ban_threshold: -5.0,
        }
    }
}

/// What the node's ENR advertises (`sdk.network.enr`): the address and ports other nodes
/// dial. The node's own view of its addresses (the listen address) is not what a remote peer
/// can reach behind NAT or on a wildcard listen, hence these keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnrConfig {
    /// IPv4 address to advertise: the node's public address (`run --nat extip:IP` sets it).
    /// Unset: the listen IP when `listen_addr` names a specific one, else the source address
    /// of this host's route to the bootnodes (without bootnodes: its default route), then what
    /// discv5's PONG votes say. May not be `0.0.0.0`, nor loopback unless the
    /// node listens on loopback. Setting it turns [`Self::auto_update`] off.
    pub address: Option<Ipv4Addr>,
    /// IPv6 address to advertise (`run --nat extip:IPv6` sets it); unset as for
    /// [`Self::address`], for the IPv6 listen. Setting it turns [`Self::auto_update`] off.
    pub address6: Option<Ipv6Addr>,
    /// TCP port to advertise, when a NAT forwards another port to the listen port. Unset: the
    /// libp2p TCP listen port.
    pub tcp_port: Option<u16>,
    /// UDP port to advertise, when a NAT forwards another port to the discv5 port. Unset: the
    /// discv5 port.
    pub udp_port: Option<u16>,
    /// Whether discv5 may replace the advertised IP and UDP port with the one its peers
    /// report seeing in their PONGs (discv5's ENR auto-update: a node behind NAT learns its
    /// public address). Default true; off whenever [`Self::address`] or [`Self::address6`] is
    /// set. A vote for a loopback or unspecified address is never taken when the node listens
    /// on another address.
    pub auto_update: bool,
    /// How many peers must report the same address before [`Self::auto_update`] takes it.
    /// Default 3 (discv5's own default, 10, assumes thousands of nodes; a preconfirmation
    /// network has tens). At least 2.
    pub update_min_votes: usize,
}

impl Default for EnrConfig {
    fn default() -> Self {
        Self {
            address: None,
            address6: None,
            tcp_port: None,
            udp_port: None,
            auto_update: true,
            update_min_votes: 3,
        }
    }
}

impl EnrConfig {
    /// Whether discv5's PONG votes may update the ENR: [`Self::auto_update`], unless an
    /// address was given.
    pub fn votes_update(&self) -> bool {
        self.auto_update && self.address.is_none() && self.address6.is_none()
    }

    /// Refuses an advertised address nobody could dial, given the node listens on `listen`.
    pub fn validate(&self, listen: IpAddr) -> Result<(), NetError> {
        let configured = [self.address.map(IpAddr::V4), self.address6.map(IpAddr::V6)];
        for (key, ip) in ["enr.address", "enr.address6"].into_iter().zip(configured) {
            let Some(ip) = ip else { continue };
            if ip.is_unspecified() || ip.is_multicast() {
                return Err(NetError::Config(format!(
                    "{key} {ip}: not an address another node can dial; give the node's public \
                     address"
                )));
            }
            if ip.is_loopback() && !listen.is_loopback() {
                return Err(NetError::Config(format!(
                    "{key} {ip} is a loopback address but the node listens on {listen}: no \
                     other host could reach it"
                )));
            }
        }
        if self.tcp_port == Some(0) || self.udp_port == Some(0) {
            return Err(NetError::Config(
                "enr.tcp_port and enr.udp_port cannot be 0 (unset them to advertise the \
                 listen ports)"
                    .into(),
            ));
        }
        if self.update_min_votes < 2 {
            return Err(NetError::Config(
                "enr.update_min_votes must be at least 2".into(),
            ));
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
    fn enr_keys_are_read_and_checked() {
        let c: NetworkConfig = serde_json::from_str(
            r#"{"enr": {"address": "203.0.113.9", "address6": "2001:db8::9",
                "tcp_port": 30303, "udp_port": 30304}}"#,
        )
        .unwrap();
        assert_eq!(c.enr.address, Some(Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(c.enr.address6, Some("2001:db8::9".parse().unwrap()));
        assert_eq!((c.enr.tcp_port, c.enr.udp_port), (Some(30303), Some(30304)));
        c.validate().unwrap();
        assert!(
            !c.enr.votes_update(),
            "a configured address is never voted away"
        );
        let refused = |enr: EnrConfig, listen: &str| {
            NetworkConfig {
                enr,
                listen_addr: listen.parse().unwrap(),
                ..Default::default()
            }
            .validate()
            .map_err(|e| e.to_string())
        };
        let addr = |a: &str| EnrConfig {
            address: Some(a.parse().unwrap()),
            ..Default::default()
        };
        let err = refused(addr("0.0.0.0"), "/ip4/0.0.0.0/tcp/9222").unwrap_err();
        assert!(err.contains("enr.address 0.0.0.0"), "{err}");
        let err = refused(addr("127.0.0.1"), "/ip4/0.0.0.0/tcp/9222").unwrap_err();
        assert!(err.contains("loopback"), "{err}");
        let err = refused(
            EnrConfig {
                address6: Some(Ipv6Addr::LOCALHOST),
                ..Default::default()
            },
            "/ip6/::/tcp/9222",
        )
        .unwrap_err();
        assert!(err.contains("enr.address6 ::1"), "{err}");
        // A node listening on loopback may advertise loopback (tests, devnets).
        refused(addr("127.0.0.1"), "/ip4/127.0.0.1/tcp/0").unwrap();
        for enr in [
            EnrConfig {
                update_min_votes: 1,
                ..Default::default()
            },
            EnrConfig {
                tcp_port: Some(0),
                ..Default::default()
            },
        ] {
            assert!(refused(enr, "/ip4/0.0.0.0/tcp/9222").is_err());
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
    fn rate_limits_are_per_protocol_and_partially_configurable() {
        let c: NetworkConfig = serde_json::from_str(
            r#"{"rate_limit": {"get_raw_txlist": {"burst": 2000, "period": "5s"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.rate_limit.get_raw_txlist,
            RateLimit::new(2000, Duration::from_secs(5))
        );
        assert_eq!(
            c.rate_limit.get_head,
            RateLimitConfig::default().get_head,
            "unset protocols keep their default"
        );
        c.validate().unwrap();
        let u = RateLimitConfig::uniform(1_000, Duration::from_secs(1));
        for kind in ReqRespKind::ALL {
            assert_eq!(u.get(kind), RateLimit::new(1_000, Duration::from_secs(1)));
        }
    }

    #[test]
    fn byte_budget_and_grace_have_defaults_and_must_be_positive() {
        let c = NetworkConfig::default();
        let d = c.rate_limit;
        assert_eq!(d.get_head, RateLimit::new(8, Duration::from_secs(10)));
        assert_eq!(
            d.get_commitments_by_number,
            RateLimit::new(256, Duration::from_secs(10))
        );
        assert_eq!(
            d.get_raw_txlist,
            RateLimit::new(512, Duration::from_secs(10))
        );
        assert_eq!(
            d.get_raw_txlists,
            RateLimit::new(512, Duration::from_secs(10))
        );
        assert_eq!(
            d.response_bytes,
            ByteRateLimit::new(64 * 1024 * 1024, Duration::from_secs(10))
        );
        assert_eq!(
            c.politeness.extended_rate_limit, d,
            "peers of ours run ours"
        );
        assert_eq!(c.rate_limit_grace, 1);
        assert_eq!(c.rate_limit_grace_window, Duration::from_secs(10));
        assert_eq!(c.politeness.learned_min_response_bytes, 1024 * 1024);
        let u = RateLimitConfig::uniform(3, Duration::from_secs(2));
        assert_eq!(
            u.response_bytes,
            ByteRateLimit::new(3 * 8 * 1024 * 1024, Duration::from_secs(2)),
            "every request may carry the largest response"
        );
        let c: NetworkConfig = serde_json::from_str(
            r#"{"rate_limit": {"response_bytes": {"burst_bytes": 1000, "period": "2s"}},
                "rate_limit_grace": 0}"#,
        )
        .unwrap();
        assert_eq!(
            c.rate_limit.response_bytes,
            ByteRateLimit::new(1000, Duration::from_secs(2))
        );
        assert_eq!(c.rate_limit_grace, 0);
        assert_eq!(c.rate_limit.get_head, d.get_head);
        c.validate().unwrap();
        let mut bad = Vec::new();
        for f in [
            |c: &mut NetworkConfig| c.rate_limit.response_bytes.burst_bytes = 0,
            |c: &mut NetworkConfig| c.rate_limit.response_bytes.period = Duration::ZERO,
            |c: &mut NetworkConfig| c.rate_limit_grace_window = Duration::ZERO,
            |c: &mut NetworkConfig| c.politeness.extended_rate_limit.response_bytes.burst_bytes = 0,
            |c: &mut NetworkConfig| c.politeness.learned_min_response_bytes = 0,
        ] {
            let mut c = NetworkConfig::default();
            f(&mut c);
            bad.push(c.validate());
        }
        assert!(
            bad.iter().all(|r| matches!(r, Err(NetError::Config(_)))),
            "{bad:?}"
        );
        assert!(matches!(
            &bad[0],
            Err(NetError::Config(msg)) if msg.contains("rate_limit.response_bytes")
        ));
    }

    #[test]
    fn the_gossip_factor_is_a_share_of_the_peers() {
        let mut c = NetworkConfig::default();
        assert_eq!(c.gossip.gossip_factor, 0.0);
        for ok in [0.0, 1.0] {
            c.gossip.gossip_factor = ok;
            c.validate().expect("a share");
        }
        for bad in [-0.1, 1.1, f64::NAN] {
            c.gossip.gossip_factor = bad;
            let err = c.validate().expect_err("not a share").to_string();
            assert!(err.contains("gossip.gossip_factor"), "{err}");
        }
    }

    #[test]
    fn zero_rate_limits_are_refused_naming_the_key() {
        let mut c = NetworkConfig::default();
        c.rate_limit.get_commitments_by_number.burst = 0;
        match c.validate() {
            Err(NetError::Config(msg)) => {
                assert!(
                    msg.contains("rate_limit.get_commitments_by_number"),
                    "{msg}"
                )
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        let mut c = NetworkConfig::default();
        c.rate_limit.get_raw_txlist.period = Duration::ZERO;
        match c.validate() {
            Err(NetError::Config(msg)) => {
                assert!(msg.contains("rate_limit.get_raw_txlist"), "{msg}")
            }
            other => panic!("expected a config error, got {other:?}"),
        }
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

    /// The per-peer connection cap was called `max_pending_inbound_per_peer` although it
    /// counts established connections in both directions; config files with the old name
    /// still load.
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
    fn gossip_rate_limits_are_eight_times_the_honest_load() {
        let d = GossipRateLimitConfig::default();
        for l in [d.commitments, d.raw_txlists] {
            assert_eq!(l.messages, RateLimit::new(8, Duration::from_secs(2)));
            assert_eq!(l.bytes.period, Duration::from_secs(2));
        }
        assert_eq!(d.commitments.bytes.burst_bytes, 8 * 382);
        assert_eq!(d.raw_txlists.bytes.burst_bytes, 8 * (2 * 1024 * 1024 + 36));
        let c: NetworkConfig = serde_json::from_str(
            r#"{"gossip_rate_limit": {"raw_txlists": {"messages": {"burst": 2, "period": "1s"},
                "bytes": {"burst_bytes": 10, "period": "1s"}}}}"#,
        )
        .unwrap();
        assert_eq!(c.gossip_rate_limit.raw_txlists.bytes.burst_bytes, 10);
        assert_eq!(c.gossip_rate_limit.commitments, d.commitments);
        c.validate().unwrap();
        let mut bad = NetworkConfig::default();
        bad.gossip_rate_limit.commitments.bytes.burst_bytes = 0;
        assert!(
            matches!(bad.validate(), Err(NetError::Config(m)) if m.contains("gossip_rate_limit.commitments"))
        );
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

    #[test]
    fn bad_thresholds_are_refused() {
        let mut c = NetworkConfig::default();
        c.scoring.publish_threshold = -10.0;
        assert!(matches!(c.validate(), Err(NetError::Config(_))));
    }
}
