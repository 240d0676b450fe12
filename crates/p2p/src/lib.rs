//! # p2p — the `P2pSdk` for Taiko preconfirmation sidecars
//!
//! The SDK sits between a sidecar and the network layer (`preconfirmation-net`) and is the only
//! place that decides whether a commitment is valid: it validates gossip (§4–§5, §3.4),
//! deduplicates it, buffers what cannot be decided yet, stores what it accepts, serves that
//! storage to peers' requests, catches up by itself and reports slashing evidence.
//!
//! ## Bird's-eye view
//!
//! ```text
//!  sidecar ─► P2pSdk (handle) ─ Command ───────────────────────────┐
//!     ▲        reads status (watch), storage, peer heads           ▼
//!     └──────────── SdkEvent (broadcast) ──────────────── manager task (core/, memory/):
//!                                                         the only writer
//!  peers ◄─► network driver ─ NetworkEvent ───────────────►     │
//!                 ▲                                             │
//!                 └──── verdicts, penalties (try_send) ─────────┤
//!                                                               ├─ PageWrite ──────► writer thread
//!                                                               ├─ spawn ──────────► sync task
//!                                                               ├─ spawn ──────────► fetch tasks
//!                                                               ├─ spawn_blocking ─► serve
//!                                                               └─ rayon::spawn ───► rayon batches
//!  writer thread, sync task, fetch tasks ─ Internal ─► manager task
//! ```
//!
//! - **Manager task** (tokio; `manager.rs` over `core/` and `memory/`): owns the chain state
//!   and is its only writer. It validates gossip, local publishes and catch-up pages, decides
//!   gossipsub's verdicts, queues durable writes and announces what is durable. It `select!`s
//!   over the handle's commands, the network's events, its tasks' reports, the end of a
//!   catch-up round and a 1 s upkeep tick, and never awaits the network driver.
//! - **Writer thread** (`p2p-writer`, with a one-thread runtime of its own; `writer.rs`):
//!   stores writes in the order the core made them, whatever queued during one transaction in
//!   the next (group commit), and reports each write stored.
//! - **Sync task** (`sync.rs`, one catch-up round at a time): asks peers for their heads and
//!   runs the missing range through fetch (page tasks) → validate (the manager) → write (the
//!   writer thread), then fetches the tx lists still owed.
//! - **Fetch tasks** (`fetch.rs`): fetch missing tx lists — one task per hash once its gossip
//!   grace period ends, a periodic retry of the rest — with the same code catch-up uses for its
//!   pages' lists; verified lists are stored on the blocking pool.
//! - **Blocking-pool server** (`serve.rs`, one `spawn_blocking` per inbound request): answers
//!   `get_head`, `get_commitments_by_number` and `get_raw_txlist(s)` from storage.
//! - **Rayon batches** (the global rayon pool): signature recovery of a burst of gossiped
//!   commitments (`core/batch.rs`) and of catch-up pages, keccak of batched tx lists.
//!
//! What crosses between them (`messages.rs`), and how far it may pile up:
//!
//! - handle → manager: `Command`s on an mpsc of `command_channel_capacity` (1024), sent with
//!   `try_send`, so a full queue is [`P2pSdkError::Backpressure`] to the caller, never a wait;
//!   replies on oneshots.
//! - network driver → manager: `NetworkEvent`s on the network's mpsc
//!   (`network.event_channel_capacity`, 1024; when full the driver ignores gossip and refuses
//!   requests). Manager → driver: verdicts and penalties with `try_send` on the driver's command
//!   channel (`network.command_channel_capacity`); the manager never awaits the driver.
//! - manager → sidecar: [`SdkEvent`]s on a broadcast ring of `event_channel_capacity` (4096; a
//!   subscriber that falls behind loses the oldest and is told, [`P2pSdkError::Lagged`]), and
//!   [`SdkStatus`] on a watch.
//! - manager → writer thread: `WriteJob`s on an unbounded mpsc, bounded by what may be queued:
//!   the core queues only writes that extend its chain, and a catch-up page holds a permit of
//!   `catchup.write_queue_pages` and of `catchup.write_queue_bytes` until it is written.
//! - writer, sync and fetch tasks → manager: `Internal` reports on an mpsc of 256, sent with
//!   `send().await` (the task waits for room, the manager never does). The sync task signals
//!   its end on an mpsc of 1; one round runs at a time, a request meanwhile runs it once more.
//! - fetch tasks: at most `catchup.parallel_txlists` at once (a semaphore; the periodic retry
//!   takes them all); every outbound request, the handle's included, waits for one of
//!   `catchup.max_requests_per_peer` slots per peer and protocol.
//! - rayon batches: a burst of gossiped commitments is cut into chunks of
//!   `gossip_validation.chunk`, two chunks in flight on the pool while the manager checks the
//!   previous one in order; catch-up pages and batched tx lists use rayon inside their
//!   `spawn_blocking` task.
//!
//! The modules, from the bottom: `config`, `types`, `error` and `metrics`; the schedule
//! (`lookahead`); `validation` (the rules, stateless); `storage` (the trait and an in-memory
//! store); `memory` (bounded chain state, pending buffer, tx-list holding area, dedupe);
//! `core` (the state machine over them); `messages` (what crosses between tasks); `writer`,
//! `fetch`, `sync` and `serve` (the tasks); `handle` and `manager` on top. With the
//! `test-utils` feature: `testkit` (chain builders, a faulty disk) and `gossip_path` (the
//! core's gossip path without a network, for benches).
//!
//! ## Lifecycle
//!
//! 1. **Start after L2 sync.** Once the sidecar's execution engine is synced to the on-chain tip
//!    (§10.3), call [`P2pSdk::start`] with a [`P2pSdkConfig`], an [`SdkStorage`] and a
//!    [`Lookahead`]. The head comes from storage, or from [`config::Anchor`] when it is empty.
//! 2. **Catch-up.** The sync task asks peers for their heads, pages the missing commitments,
//!    verifies them and fetches their tx lists, emitting [`HeadSyncStatus`]
//!    `Idle → Syncing → Live`. It runs again by itself on reconnect, when gossip reveals a gap
//!    and when the head has not moved for `catchup.stale_head_check`.
//! 3. **Live.** Gossip is validated and deduplicated; gossipsub gets its verdict at once (a
//!    commitment waiting for its parent gets it once it validates), and the writer thread
//!    stores what was accepted. Once durable, each accepted commitment is an
//!    [`SdkEvent::Commitment`], each tx list an [`SdkEvent::RawTxList`], slashing evidence an
//!    [`SdkEvent::Equivocation`]. A preconfer publishes with [`P2pSdk::publish`] (tx list first,
//!    then the commitment, §6; gossiped only once its own disk holds it).
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
pub use lookahead::{
    LearnedLookahead, Lookahead, RotatingLookahead, SlotSchedule, WindowEndOutOfRange,
};
pub use messages::PublishReceipt;
pub use peer_view::{PeerHead, ScheduleDisagreement};
pub use storage::{MemoryStorage, MemoryStorageLimits, SdkStorage, StorageError, StorageStats};
pub use types::{
    CommitmentSource, EvidenceKind, HeadSyncStatus, MessageId, PeerInfo, SdkEvent, SdkStatus,
};
pub use validation::{PendingReason, RejectReason, ValidationOutcome, Validator};
pub use writer::WRITER_THREAD;

/// The README's snippet compiles as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
