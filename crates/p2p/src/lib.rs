//! # p2p — the `P2pSdk` for Taiko preconfirmation sidecars
//!
//! The SDK sits between a sidecar and the network layer (`preconfirmation-net`) and is the only
//! place that decides whether a commitment is valid:
//!
//! ```text
//!  inbound:  peer bytes ─► net (framing, caps, gossipsub) ─NetworkEvent─► P2pSdk ─SdkEvent─► sidecar
//!                                   ▲                                     │ validate (§4–§5), dedupe,
//!                                   └── Accept / Reject / Ignore ─────────┘ store, buffer, catch up
//!  outbound: sidecar ─► P2pSdk::publish (validate locally, queue the write) ─► net ─► peers
//!  req/resp: peer ─► net ─► P2pSdk serves get_head / get_commitments_by_number / get_raw_txlist
//!            from the same SdkStorage it writes
//! ```
//!
//! ## Lifecycle
//!
//! 1. **Start after L2 sync.** Once the sidecar's execution engine is synced to the on-chain tip
//!    (§10.3), call [`P2pSdk::start`] with a [`P2pSdkConfig`], an [`SdkStorage`] and a
//!    [`Lookahead`]. The head comes from storage, or from [`config::Anchor`] when it is empty.
//! 2. **Catch-up.** The SDK asks peers for their heads, pages the missing commitments, verifies
//!    them and fetches their tx lists, emitting [`HeadSyncStatus`] `Idle → Syncing → Live`. It
//!    runs again by itself on reconnect and when gossip reveals a gap.
//! 3. **Live.** Gossip is validated and deduplicated; gossipsub gets its verdict at once (a
//!    commitment waiting for its parent gets it once it validates), and the durable writer
//!    stores what was accepted on a thread of its own, grouping writes into transactions. Once
//!    durable, each accepted commitment is an
//!    [`SdkEvent::Commitment`], each tx list an [`SdkEvent::RawTxList`], slashing evidence an
//!    [`SdkEvent::Equivocation`]. A preconfer publishes with [`P2pSdk::publish`] (tx list first,
//!    then the commitment, §6).
//! 4. **Shutdown.** [`P2pSdk::shutdown`] stops the manager and the network. Everything accepted
//!    was written to storage before it was announced.
//!
//! ## Example
//!
//! Two nodes on 127.0.0.1: A publishes a block, B receives it.
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use p2p::{testkit::ChainBuilder, MemoryStorage, P2pSdk, P2pSdkConfig, SdkEvent};
//! use preconfirmation_types::{Address, ChainSpec};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
//! let mut blocks = ChainBuilder::in_the_past(chain, 2, 4, 10);
//! let mut config = P2pSdkConfig::new(chain);
//! // 127.0.0.1, ephemeral ports (the default is 0.0.0.0:9222, a production node's).
//! config.network = preconfirmation_net::NetworkConfig::loopback();
//! config.network.discovery_enabled = false;
//!
//! let (a, _) = P2pSdk::start(config.clone(), Arc::new(MemoryStorage::default()), blocks.lookahead(), None).await?;
//! let (b, mut b_events) = P2pSdk::start(config, Arc::new(MemoryStorage::default()), blocks.lookahead(), None).await?;
//! b.dial(a.listen_addrs().await?[0].clone()).await?;
//! a.wait_for_gossip_peers(1, Duration::from_secs(10)).await?;
//!
//! let block = blocks.next_block(Some(b"compressed txs".to_vec()));
//! a.publish(block.commitment.clone(), Some(b"compressed txs".to_vec())).await?;
//!
//! let received = tokio::time::timeout(Duration::from_secs(10), async {
//!     loop {
//!         if let Ok(SdkEvent::Commitment { commitment, .. }) = b_events.recv().await {
//!             return commitment;
//!         }
//!     }
//! }).await?;
//! assert_eq!(received, block.commitment);
//! b.shutdown().await?;
//! a.shutdown().await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

pub mod config;
mod core;
pub mod error;
mod fetch;
#[cfg(feature = "test-utils")]
pub mod gossip_path;
mod handle;
mod lookahead;
mod manager;
mod memory;
mod messages;
pub mod metrics;
mod peer_view;
mod serve;
pub mod storage;
mod sync;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;
pub mod types;
pub mod validation;
mod writer;

pub use config::P2pSdkConfig;
pub use error::{P2pSdkError, Result};
pub use handle::{P2pSdk, SdkEvents};
pub use lookahead::{LearnedLookahead, Lookahead, RotatingLookahead, SlotSchedule};
pub use messages::PublishReceipt;
pub use peer_view::{PeerHead, ScheduleDisagreement};
pub use storage::{MemoryStorage, MemoryStorageLimits, SdkStorage, StorageError, StorageStats};
pub use types::{
    CommitmentSource, EvidenceKind, HeadSyncStatus, MessageId, PeerInfo, SdkEvent, SdkStatus,
};
pub use validation::{PendingReason, RejectReason, ValidationOutcome, Validator};

/// The README's snippet compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
