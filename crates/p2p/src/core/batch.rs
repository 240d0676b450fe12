//! Gossiped commitments that arrived together, validated as a short pipeline.
//!
//! Signature recovery is nine tenths of a commitment's validation and needs no chain state;
//! the checks against the chain must run one at a time, in arrival order. So a batch (the
//! gossiped commitments queued behind one another, up to `gossip_validation.batch_max`) is
//! cut into chunks of `gossip_validation.chunk`: while the caller checks and applies one
//! chunk's commitments on its own thread ([`Core::finish_gossip_commitment`]),
//! the next chunk's are decoded and recovered on the rayon pool. Every message's id is
//! recorded as seen first, in order, so a duplicate inside the batch is caught too.
//!
//! A chunk with fewer than `gossip_validation.parallel_from` new messages is staged on the
//! caller's thread: a message that arrives alone (the live network's normal case) is
//! validated at once.

use std::collections::VecDeque;
use std::sync::Arc;

use libp2p::PeerId;
use preconfirmation_net::MessageId as GossipMessageId;
use tokio::sync::oneshot;

use super::gossip::StagedCommitment;
use super::Core;
use crate::metrics;
use crate::validation::{unix_now, Validator};

/// Chunks started ahead of the caller: two, so the pool never waits for the caller to hand it
/// the next chunk.
const CHUNKS_IN_FLIGHT: usize = 2;

/// A gossiped commitment as the network delivered it.
pub(crate) type GossipCommitment = (PeerId, GossipMessageId, Vec<u8>);

/// A chunk's first stage: done on the caller's thread, or running on the pool.
enum Stage {
    Done(Vec<StagedCommitment>),
    Pool(oneshot::Receiver<Vec<StagedCommitment>>),
}

/// One batch in flight; [`GossipBatch::next`] yields its staged commitments in arrival order.
pub(crate) struct GossipBatch {
    /// Chunks not started yet: each message with whether it is new.
    waiting: VecDeque<Vec<(GossipCommitment, bool)>>,
    /// Chunks started, oldest first: at most [`CHUNKS_IN_FLIGHT`], so the pool has the next
    /// chunk queued when it finishes one.
    running: VecDeque<Stage>,
    /// Staged commitments handed out next.
    ready: VecDeque<StagedCommitment>,
    validator: Arc<Validator>,
    now: u64,
    parallel_from: usize,
    parallel_chunks: u64,
}

impl GossipBatch {
    /// Records every message of `batch` as seen (in order) and starts its first chunk.
    pub(crate) fn start(core: &mut Core, batch: Vec<GossipCommitment>) -> Self {
        let settings = &core.config().gossip_validation;
        let (chunk, parallel_from) = (settings.chunk.max(1), settings.parallel_from);
        let mut waiting = VecDeque::new();
        let mut current = Vec::with_capacity(chunk.min(batch.len()));
        for message in batch {
            let fresh = core.see_gossip_commitment(&message.1, &message.2);
            current.push((message, fresh));
            if current.len() == chunk {
                waiting.push_back(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            waiting.push_back(current);
        }
        let mut batch = Self {
            waiting,
            running: VecDeque::new(),
            ready: VecDeque::new(),
            validator: core.shared_validator(),
            now: unix_now(),
            parallel_from,
            parallel_chunks: 0,
        };
        for _ in 0..CHUNKS_IN_FLIGHT {
            batch.start_next();
        }
        batch
    }

    /// The next staged commitment, in arrival order; `None` when the batch is done. Taking a
    /// chunk's results starts the next chunk first, so it runs while the caller works. A
    /// chunk still on the pool is awaited, not blocked on: the caller's thread (a tokio
    /// worker, in a node) runs other tasks meanwhile.
    pub(crate) async fn next(&mut self) -> Option<StagedCommitment> {
        loop {
            if let Some(staged) = self.ready.pop_front() {
                return Some(staged);
            }
            let staged = match self.running.pop_front()? {
                Stage::Done(staged) => staged,
                // The job sends before it ends; a panic on the pool aborts the process
                // (rayon's default), so no chunk is lost silently.
                Stage::Pool(results) => results.await.unwrap_or_default(),
            };
            self.start_next();
            self.ready.extend(staged);
        }
    }

    /// Chunks whose signers were recovered on the pool.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn parallel_chunks(&self) -> u64 {
        self.parallel_chunks
    }

    fn start_next(&mut self) {
        let Some(chunk) = self.waiting.pop_front() else {
            return;
        };
        let (validator, now) = (self.validator.clone(), self.now);
        let stage = move |((peer, message_id, data), fresh): (GossipCommitment, bool)| {
            StagedCommitment::new(&validator, peer, message_id, &data, fresh, now)
        };
        let new = chunk.iter().filter(|(_, fresh)| *fresh).count();
        let parallel = new >= self.parallel_from;
        metrics::gossip_chunk(parallel);
        self.running.push_back(if parallel {
            self.parallel_chunks += 1;
            let (results, receiver) = oneshot::channel();
            rayon::spawn(move || {
                use rayon::prelude::*;
                let staged = chunk.into_par_iter().map(stage).collect();
                let _ = results.send(staged);
            });
            Stage::Pool(receiver)
        } else {
            Stage::Done(chunk.into_iter().map(stage).collect())
        });
    }
}
