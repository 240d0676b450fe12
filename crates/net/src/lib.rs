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
//! read ([`codec`]), every queue is bounded, and misbehaving peers are scored and banned.
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
//! let config = NetworkConfig { discovery_enabled: false, ..Default::default() };
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
pub mod codec;
pub mod config;
pub mod discovery;
mod driver;
pub mod error;
pub mod gossip;
pub mod metrics;
mod peer_manager;
mod service;

pub use config::{GossipConfig, NetworkConfig, RateLimitConfig, ScoringConfig};
pub use discovery::{enr_multiaddr, enr_peer_id};
pub use driver::IDENTIFY_PROTOCOL;
pub use error::{CodecError, NetError, RequestError};
pub use gossip::message_id;
pub use service::{
    Direction, GossipVerdict, InboundRequest, NetworkEvent, NetworkEvents, P2pService,
    PeerSnapshot, Responder,
};

/// Re-exports used in the public API.
pub use discv5::Enr;
pub use libp2p::gossipsub::MessageId;
pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId};
