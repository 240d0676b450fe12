//! # preconfirmation-net
//!
//! The libp2p layer of the preconfirmation P2P protocol (`PROTOCOL.md` §2, §7, §10–§11).
//!
//! ```text
//! peer bytes ─► preconfirmation-net ──NetworkEvent──► SDK (validation, storage)
//!               framing, caps, gossip,                 │
//!               scores, bans, discovery ◄──verdicts────┘  report_validation / penalize_peer
//! ```
//!
//! It knows bytes, peers and limits, never whether a commitment is valid: every gossip message
//! is handed to the SDK as [`NetworkEvent::Gossip`] and forwarded only after the SDK reports
//! [`GossipVerdict::Accept`] through [`P2pService::report_validation`]; `Reject` penalises the
//! sender (§7.1). Inbound requests arrive as [`NetworkEvent::InboundRequest`] with a typed
//! [`Responder`]. Every length prefix is checked against the chain's caps before anything is
//! read ([`reqresp::codec`]), every queue is bounded, and misbehaving peers are scored and
//! banned.
//!
//! ## Bird's-eye view
//!
//! One task, the driver, owns the libp2p `Swarm`. The SDK holds cloneable [`P2pService`]
//! handles and one [`NetworkEvents`] stream; both cross to the driver over bounded channels.
//! discv5 runs in a task of its own and hands the driver the peers it finds. By default
//! ([`NetworkConfig::own_thread`]) the driver, the swarm's connection tasks and discv5 run on
//! one thread of their own, [`NET_THREAD`], apart from the SDK's runtime.
//!
//! ```text
//!  P2pService ──Command──►  driver task (one tokio::select! loop)  ──NetworkEvent──► NetworkEvents
//!  service.rs  command.rs   driver/: mod (loop, commands, verdicts,   event.rs          service.rs
//!                           bans, ticks), swarm (events), reqresp
//!                                 │ owns                    ▲ Discovered
//!                                 ▼                         │
//!           Swarm<Behaviour> (behaviour.rs)          discv5 task (discovery.rs)
//!           block list · peers::ip_limit · connection limits · gossipsub (gossip.rs)
//!           one request_response per protocol (reqresp::codec) · identify · ping (ping.rs)
//! ```
//!
//! - **Gossip in**: gossipsub hands the driver a message (`driver/swarm`); it is checked
//!   against its topic's cap and the sender's gossip buckets (`reqresp::rate_limiter`) and
//!   sent as [`NetworkEvent::Gossip`]; the SDK's verdict comes back as a command and goes to
//!   gossipsub (forward or drop) and to the sender's app score (`peers::manager`).
//! - **Requests in**: the codec reads one capped frame; `driver/reqresp` admits it through
//!   the peer manager (in-flight count, request bucket, response-byte budget:
//!   [`reqresp::budget`]) and sends [`NetworkEvent::InboundRequest`]; the SDK's answer goes
//!   back on the stream and the unused part of the byte reservation is refunded.
//! - **Requests out**: [`P2pService::request_head`] and its siblings send a command;
//!   `driver/reqresp` asks our own pacing ([`reqresp::self_limiter`]) whether the peer would
//!   accept it now (else [`RequestError::Throttled`]), sends it, and replies with the answer.
//! - **Ticks**: app scores decay, sustained low scores become bans, expired bans lift, static
//!   peers are redialled, departed peers' state is dropped once it would have refilled.
//!
//! ## Modules
//!
//! - `service`, `event`, `command`: the handle and the event stream; what the SDK receives;
//!   what a handle sends the driver.
//! - `driver/`: the task — building the swarm, the loop, commands, verdicts, penalties, bans
//!   and ticks (`mod.rs`); swarm and behaviour events (`swarm`); req/resp both ways
//!   (`reqresp`).
//! - `behaviour`: the composed `NetworkBehaviour`.
//! - [`reqresp`]: [`codec`](reqresp::codec) (framing and caps), `rate_limiter` (every peer's
//!   inbound buckets), [`budget`](reqresp::budget) (response bytes),
//!   [`self_limiter`](reqresp::self_limiter) (our outbound pacing).
//! - [`peers`]: the peer manager (scores, bans, admission; its `dial` child: connections and
//!   dial targets), one peer's app `score`, [`ip_limit`](peers::ip_limit) (connections per IP
//!   and per peer id).
//! - [`gossip`]: gossipsub's configuration and scoring, the topics, the message id.
//! - [`discovery`], `listen`: discv5 and the ENR; the listening sockets.
//! - [`config`]: [`NetworkConfig`] and its tables, one file per concern.
//! - [`chains`], `ping`, [`metrics`], [`error`]: the chains a peer serves, liveness, metric
//!   names, errors.
//!
//! Each req/resp protocol's id, caps, default rate and budgeting are one row of the table in
//! `preconfirmation_types` ([`ReqRespKind::spec`](preconfirmation_types::ReqRespKind::spec)).
//! A new protocol is that row plus what the compiler then names: its request and response in
//! [`reqresp::codec`] (and the budget's arms), its behaviour in `behaviour` (and its arm in
//! `driver/swarm`'s exhaustive match on the behaviour's events), its `rate_limit` key in
//! [`RateLimitConfig`], and its [`InboundRequest`]; it also goes into `ReqRespKind::ALL`, and
//! gets a request method on [`P2pService`].
//!
//! ## Choices worth knowing
//!
//! - **Message id** (§7): the reference's, for every payload ([`message_id`]): the first 20
//!   bytes of `sha256(0x01000000 ‖ decompressed)` when the payload is valid snappy, else of
//!   `sha256(0x00000000 ‖ payload)`.
//! - **Gossip authenticity**: payloads are raw SSZ (§2); the gossipsub envelope is signed and
//!   checked (`MessageAuthenticity::Signed` + `ValidationMode::Strict`) by default. Set
//!   [`GossipConfig::signed_messages`] to false for `Anonymous` (op-node `StrictNoSign`) peers.
//! - **Gossip size caps** (§2, §3): gossipsub refuses an inbound frame over
//!   [`GossipConfig::max_transmit_size`] before decoding it — by default the largest valid
//!   message (a 2 MiB tx list + 36 bytes) plus 1 KiB of framing, not the 10 MiB
//!   `MAX_GOSSIP_SIZE_BYTES` — and drops a message over its topic's own cap (382 bytes + 1 KiB
//!   for commitments) as an invalid delivery, so it never reaches the driver or the SDK.
//! - **Per-peer gossip limits** (§7): each peer may deliver us, per topic, 8 messages and 8
//!   largest messages' worth of bytes per 2 s slot (8× the honest load,
//!   [`GossipRateLimitConfig`]); a message over them is ignored (not delivered, not
//!   forwarded) and, after the first refusal in 10 s, penalised.
//! - **Manual validation**: nothing is forwarded before the SDK's `Accept`; `Reject` counts an
//!   invalid delivery (weight −2) and −1 app score (at most −4 per 10 s); `Accept` gives +0.05.
//!   A peer whose score stays below −5 for `ban_sustain` is banned for `ban_period`.
//! - **Req/resp** (§10–§11): one `request_response` behaviour per protocol; varint prefix checked
//!   against the cap before any body byte is read; over-cap or malformed requests are answered by
//!   closing the stream and penalising the sender; each peer gets a token bucket per protocol
//!   ([`RateLimitConfig`]; by default 8 `get_head`, 256 `get_commitments_by_number`, 512
//!   `get_raw_txlist` and 512 `get_raw_txlists` per 10 s, so catch-up fits), a response-byte budget
//!   shared by the data protocols (64 MiB per 10 s; each request reserves its largest response, the
//!   rest is refunded when it is sent: [`reqresp::budget`]) and 2 concurrent requests per protocol;
//!   a request over any limit is refused, and penalised unless it is the peer's first refusal in 10
//!   s ([`NetworkConfig::rate_limit_grace`]); unanswered requests time out. A stream that has not
//!   delivered its whole request within [`NetworkConfig::request_read_timeout`] (default 5 s:
//!   silent or trickling, a slowloris) is closed and penalised like a malformed request
//!   ([`SLOW_REQUEST_PENALTY_REASON`]). `get_head` requests are sent as the reference's 4-byte
//!   `GetHeadRequest`; an empty body is accepted too. This project's batched `get_raw_txlists`
//!   (PROTOCOL-EXT.md) is offered beside the §10–§11 protocols.
//! - **Outbound pacing** ([`reqresp::self_limiter`], `sdk.network.politeness`): no request
//!   leaves that the peer would refuse.
//!   Identify's protocol list tells peers of ours (they list `get_raw_txlists`) from the
//!   others, which are paced as the strict reference (8 per protocol per 10 s, one in flight)
//!   and never sent an extension; ours are paced by this project's default limits, including
//!   a mirror of their byte budget, and a refusal from one of them teaches tighter limits for
//!   the connection. A held request fails locally with [`RequestError::Throttled`] and the
//!   time a retry fits.
//! - **Ping** (`/ipfs/ping/1.0.0`): our own behaviour, not `libp2p::ping`, whose 0.48 handler
//!   stops answering a peer's pings once that peer has refused ours; a js-libp2p 2.x node
//!   without `@libp2p/ping` then aborts the connection at its connection monitor's next ping
//!   (every 10 s). Every connection echoes every inbound ping (at most
//!   [`NetworkConfig::ping_max_inbound_streams_per_peer`] streams per peer and
//!   [`NetworkConfig::ping_max_inbound_streams`] in all, each closed after
//!   [`NetworkConfig::ping_inbound_timeout`] of silence) and pings on a fresh stream every
//!   [`NetworkConfig::ping_interval`] (15 s); a connection whose peer refuses the protocol is
//!   no longer pinged. RTTs and refusals show in [`PeerSnapshot`] and the `preconf_net_ping_*`
//!   metrics; a failed ping never closes a connection.
//! - **Discovery**: the ENR is signed with the libp2p key (secp256k1 by default), so its public
//!   key gives the peer id; it advertises `ip4` + `tcp4` (libp2p) + `udp4` (discv5), and the
//!   `ip6` set when listening on IPv6. Its address comes from `enr.address` (`--nat extip`), a
//!   specific listen address, or the route to the bootnodes, corrected by discv5's PONG votes;
//!   never `0.0.0.0`, and loopback only for a node listening on loopback ([`discovery`]).
//! - **Listening**: production default `0.0.0.0` (plus `::` where the host has IPv6), TCP and
//!   UDP port 9222 ([`config::DEFAULT_P2P_PORT`]); a port already in use fails the start with
//!   an error naming the address ([`NetError::AddrInUse`]).
//!
//! ## Example
//!
//! Two nodes on 127.0.0.1: B asks A for its head, A's SDK loop answers.
//!
//! ```
//! use preconfirmation_net::{InboundRequest, NetworkConfig, NetworkEvent, P2pService};
//! use preconfirmation_types::{PreconfHead, U256};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 127.0.0.1, ephemeral ports (the default is 0.0.0.0:9222, a production node's).
//! let config = NetworkConfig { discovery_enabled: false, ..NetworkConfig::loopback() };
//! let (a, mut a_events) = P2pService::start(config.clone(), None).await?;
//! let (b, mut b_events) = P2pService::start(config, None).await?;
//!
//! // A's "SDK": answer get_head.
//! tokio::spawn(async move {
//!     while let Some(event) = a_events.recv().await {
//!         if let NetworkEvent::InboundRequest(InboundRequest::GetHead { responder, .. }) = event {
//!             responder.respond(PreconfHead { block_number: U256::from(42u64), ..Default::default() });
//!         }
//!     }
//! });
//!
//! let addr = a.listen_addrs().await?[0].clone();
//! b.dial(addr).await?;
//! // Requests go to connected peers: wait until B sees A.
//! while let Some(event) = b_events.recv().await {
//!     if matches!(event, NetworkEvent::PeerConnected { peer, .. } if peer == a.local_peer_id()) {
//!         break;
//!     }
//! }
//! let head = b.request_head(a.local_peer_id()).await?;
//! assert_eq!(head.block_number, U256::from(42u64));
//! b.shutdown().await?;
//! a.shutdown().await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod behaviour;
pub mod chains;
mod command;
pub mod config;
pub mod discovery;
mod driver;
pub mod error;
mod event;
pub mod gossip;
mod listen;
pub mod metrics;
pub mod peers;
mod ping;
pub mod reqresp;
mod service;

pub use config::{
    ByteRateLimit, EnrConfig, GossipConfig, GossipRateLimitConfig, GossipTopicLimit, NetworkConfig,
    PolitenessConfig, RateLimit, RateLimitConfig, ScoringConfig,
};
pub use discovery::{enr_multiaddr, enr_peer_id};
pub use driver::{IDENTIFY_PROTOCOL, NET_THREAD};
pub use error::{CodecError, NetError, RequestError};
pub use event::{
    Direction, GossipVerdict, InboundRequest, NetworkEvent, PeerSnapshot, PeerStateSizes, Responder,
};
pub use gossip::message_id;
pub use peers::manager::{PeerManagerSizes, CATCHUP_DISAGREEMENT_REASON};
pub use reqresp::codec::SLOW_REQUEST_PENALTY_REASON;
pub use reqresp::self_limiter::PeerProfile;
pub use service::{NetworkEvents, P2pService};

/// Re-exports used in the public API.
pub use discv5::Enr;
pub use libp2p::gossipsub::MessageId;
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
