//! The SDK's own gossip path, driven without a network: for benchmarks and tools that must
//! measure exactly what a node does with a gossiped commitment.
//!
//! [`GossipPath`] wraps the SDK's single-writer core — the code the manager task runs for each
//! gossip message: message-id dedupe, capped SSZ decode, signature recovery, §4.2 checks against
//! the schedule and the chain, pending buffer, applying an accepted commitment and queueing its
//! durable write. The verdict is what gossipsub would get. Durable writes are not part of the
//! verdict's path (the SDK's writer stores them on its own track); [`GossipPath::flush_writes`]
//! does what that writer does, for the caller to run or time separately.

use std::sync::Arc;

use libp2p::PeerId;
use preconfirmation_net::GossipVerdict;
use tokio::sync::{broadcast, watch};

use crate::config::P2pSdkConfig;
use crate::core::{Core, GossipBatch};
use crate::error::Result;
use crate::lookahead::Lookahead;
use crate::storage::SdkStorage;
use crate::types::{HeadSyncStatus, SdkEvent, SdkStatus};
use crate::validation::Validator;

/// The chain state the core validates gossip against, for timing the path stage by stage.
pub use crate::memory::ChainState;

/// The SDK core's gossip path on `storage`, fed by hand.
pub struct GossipPath {
    core: Core,
    peer: PeerId,
    parallel_chunks: u64,
    // Kept so events have a receiver; never read.
    _events: broadcast::Receiver<SdkEvent>,
}

impl std::fmt::Debug for GossipPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GossipPath")
            .field("head", &self.core.head())
            .finish_non_exhaustive()
    }
}

impl GossipPath {
    /// A core on `storage` (its head, or the configured anchor) with `lookahead`'s schedule;
    /// messages appear to come from one peer.
    pub fn new(
        config: P2pSdkConfig,
        storage: Arc<dyn SdkStorage>,
        lookahead: Arc<dyn Lookahead>,
    ) -> Result<Self> {
        let config = Arc::new(config);
        let validator = Validator::from_config(&config, lookahead);
        // A small ring: nobody reads it, the newest events overwrite the oldest.
        let (events, receiver) = broadcast::channel(16);
        let (status, _) = watch::channel(SdkStatus::starting(HeadSyncStatus::Live));
        let core = Core::new(config, validator, storage, events, status)?;
        Ok(Self {
            core,
            peer: PeerId::random(),
            parallel_chunks: 0,
            _events: receiver,
        })
    }

    /// One gossiped `SignedCommitment` (its SSZ bytes): the verdict gossipsub would get now
    /// (`None`: held while the commitment is pending).
    ///
    /// The message id is computed as gossipsub computes it on delivery
    /// ([`preconfirmation_net::message_id`]), and counts in the caller's timing.
    pub fn commitment(&mut self, ssz: &[u8]) -> Option<GossipVerdict> {
        let id = preconfirmation_net::message_id(ssz);
        let verdict = self.core.on_gossip_commitment(self.peer, id, ssz);
        // What the manager does next; effects that need a network are dropped here.
        let _ = self.core.take_effects();
        verdict
    }

    /// Gossiped commitments that arrived together, as the manager takes a batch: chunks of
    /// `gossip_validation.chunk`, one chunk's signers recovered on the current rayon pool
    /// (once it holds `gossip_validation.parallel_from` new messages) while the previous one
    /// is checked and applied in order on this thread. The verdicts, in order.
    pub fn commitments(&mut self, batch: &[Vec<u8>]) -> Vec<Option<GossipVerdict>> {
        let messages = batch
            .iter()
            .map(|ssz| (self.peer, preconfirmation_net::message_id(ssz), ssz.clone()))
            .collect();
        let mut verdicts = Vec::with_capacity(batch.len());
        let mut staged = GossipBatch::start(&mut self.core, messages);
        while let Some(commitment) = futures::executor::block_on(staged.next()) {
            verdicts.push(self.core.finish_gossip_commitment(commitment));
            let _ = self.core.take_effects();
        }
        self.parallel_chunks += staged.parallel_chunks();
        verdicts
    }

    /// Chunks whose signers were recovered on the pool so far.
    pub fn parallel_chunks(&self) -> u64 {
        self.parallel_chunks
    }

    /// The in-memory head (ahead of storage until the writes are flushed).
    pub fn head(&self) -> u64 {
        self.core.head()
    }

    /// Writes everything queued, in order, as the SDK's durable writer would (one transaction
    /// per call), and reports it stored to the core. Returns how many commitments it wrote.
    pub fn flush_writes(&mut self) -> Result<usize> {
        let written = self.core.write_queued_now()?;
        let _ = self.core.take_effects();
        Ok(written)
    }
}
