//! Metric names (the plan's Task 13) and the helpers that record them where things happen.
//!
//! The SDK records through the `metrics` facade; install any recorder (e.g.
//! `metrics-exporter-prometheus`, as `preconf-node` does) to export them, before the SDK
//! starts: the core keeps the handles of its per-message counters (`MessageCounters`).
//!
//! | name | type | labels |
//! |---|---|---|
//! | `p2p_gossip_received_total` | counter | `topic`, `outcome` (`accept`, `pending`, reject reason) |
//! | `p2p_gossip_publish_total` | counter | `topic`, `outcome` (`ok`, `no_peers`, `error`, `invalid`) |
//! | `p2p_reqresp_requests_total` | counter | `protocol`, `direction`, `outcome` |
//! | `p2p_reqresp_latency_seconds` | histogram | `protocol` |
//! | `p2p_cache_hits_total` | counter | `kind` |
//! | `p2p_cache_misses_total` | counter | `kind` |
//! | `p2p_validation_failures_total` | counter | `reason` |
//! | `p2p_peer_score_gauge` | gauge | `stat` (`min`, `median`, `max` of connected peers' scores) |
//! | `p2p_backpressure_total` | counter | `queue` |
//! | `p2p_pending_commitments` | gauge | `reason` |
//! | `p2p_pending_evicted_total` | counter | — |
//! | `p2p_equivocations_total` | counter | `kind` |
//! | `p2p_head_block_number` | gauge | — |
//! | `p2p_catchup_commitments_total` | counter | — |
//! | `p2p_catchup_peer_failures_total` | counter | `reason` |
//! | `p2p_gossip_queue_seconds` | histogram | `topic` |
//! | `p2p_durable_write_seconds` | histogram | — |

use std::collections::HashMap;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter};
use preconfirmation_types::{GossipTopicKind, ReqRespKind};

/// `p2p_gossip_received_total`.
pub const GOSSIP_RECEIVED: &str = "p2p_gossip_received_total";
/// `p2p_gossip_commitment_chunks_total{recovery}`: chunks of a batch of gossiped commitments
/// ([`crate::config::GossipValidationConfig`]), by whether their signers were recovered on
/// the pool (`parallel`) or on the manager's thread (`inline`).
pub const GOSSIP_CHUNKS: &str = "p2p_gossip_commitment_chunks_total";
/// `p2p_gossip_publish_total`.
pub const GOSSIP_PUBLISH: &str = "p2p_gossip_publish_total";
/// `p2p_reqresp_requests_total`.
pub const REQRESP_REQUESTS: &str = "p2p_reqresp_requests_total";
/// `p2p_reqresp_latency_seconds`.
pub const REQRESP_LATENCY: &str = "p2p_reqresp_latency_seconds";
/// `p2p_cache_hits_total`.
pub const CACHE_HITS: &str = "p2p_cache_hits_total";
/// `p2p_cache_misses_total`.
pub const CACHE_MISSES: &str = "p2p_cache_misses_total";
/// `p2p_validation_failures_total`.
pub const VALIDATION_FAILURES: &str = "p2p_validation_failures_total";
/// `p2p_peer_score_gauge`: the lowest, median and highest total score (§7.1) of the connected
/// peers, label `stat` (`min`, `median`, `max`); all three 0 with no peer connected. Three
/// series whatever the peers: a label per peer id would let every peer that ever connected
/// add a series to the exporter for the life of the process.
pub const PEER_SCORE: &str = "p2p_peer_score_gauge";
/// `p2p_backpressure_total`.
pub const BACKPRESSURE: &str = "p2p_backpressure_total";
/// `p2p_pending_commitments`.
pub const PENDING: &str = "p2p_pending_commitments";
/// `p2p_pending_evicted_total`.
pub const PENDING_EVICTED: &str = "p2p_pending_evicted_total";
/// `p2p_equivocations_total`.
pub const EQUIVOCATIONS: &str = "p2p_equivocations_total";
/// `p2p_head_block_number`.
pub const HEAD_BLOCK: &str = "p2p_head_block_number";
/// `p2p_catchup_commitments_total`.
pub const CATCHUP_COMMITMENTS: &str = "p2p_catchup_commitments_total";
/// `p2p_catchup_peer_failures_total`.
pub const CATCHUP_PEER_FAILURES: &str = "p2p_catchup_peer_failures_total";
/// `p2p_txlist_held_verdicts_total{verdict}`: gossip verdicts of tx lists held for their
/// commitment, by how they were released (`accept`: a commitment referenced it; `ignore`:
/// evicted or waited too long).
pub const TXLIST_HELD_VERDICTS: &str = "p2p_txlist_held_verdicts_total";

/// `p2p_gossip_queue_seconds{topic}`: how long a gossip message waited between the network
/// driver and the SDK's manager (the event channel): with the verdict's own work, what each
/// hop of a message's propagation costs here beyond bare gossipsub.
pub const GOSSIP_QUEUE: &str = "p2p_gossip_queue_seconds";

pub(crate) fn gossip_queued(topic: GossipTopicKind, waited: Duration) {
    histogram!(GOSSIP_QUEUE, "topic" => topic.label()).record(waited.as_secs_f64());
}

/// `p2p_durable_write_seconds`: from a write's queueing (the core accepted what it holds)
/// to the manager learning it is durable, when the core announces it: the delay durability
/// adds before a sidecar hears of a block (its transaction and fsync, and the hand-offs to
/// and from the writer).
pub const DURABLE_WRITE: &str = "p2p_durable_write_seconds";

pub(crate) fn durable_write(elapsed: Duration) {
    histogram!(DURABLE_WRITE).record(elapsed.as_secs_f64());
}

/// `p2p_durable_transaction_seconds`: one durable transaction of the writer, from its start
/// to its fsync's return: the part of [`DURABLE_WRITE`] that is storage's own work; the rest
/// is waiting for the writer and the hand-offs to and from it.
pub const DURABLE_TRANSACTION: &str = "p2p_durable_transaction_seconds";

pub(crate) fn durable_transaction(elapsed: Duration) {
    histogram!(DURABLE_TRANSACTION).record(elapsed.as_secs_f64());
}

/// `p2p_durable_write_group_size`: writes the durable writer put into one transaction
/// (histogram; group commit).
pub const DURABLE_WRITE_GROUP: &str = "p2p_durable_write_group_size";

pub(crate) fn write_group(writes: usize) {
    metrics::histogram!(DURABLE_WRITE_GROUP).record(writes as f64);
}

/// `p2p_pending_held_verdicts_total{verdict}`: gossip verdicts of commitments held while
/// they were pending, by how they were released (`accept`: validated and forwarded;
/// `reject`: failed; `ignore`: evicted, swept or held too long).
pub const PENDING_HELD_VERDICTS: &str = "p2p_pending_held_verdicts_total";

pub(crate) fn pending_verdict_released(verdict: preconfirmation_net::GossipVerdict) {
    counter!(PENDING_HELD_VERDICTS, "verdict" => verdict_label(verdict)).increment(1);
}

fn verdict_label(verdict: preconfirmation_net::GossipVerdict) -> &'static str {
    match verdict {
        preconfirmation_net::GossipVerdict::Accept => "accept",
        preconfirmation_net::GossipVerdict::Reject => "reject",
        preconfirmation_net::GossipVerdict::Ignore => "ignore",
    }
}

pub(crate) fn txlist_verdict_released(verdict: preconfirmation_net::GossipVerdict) {
    counter!(TXLIST_HELD_VERDICTS, "verdict" => verdict_label(verdict)).increment(1);
}

/// The counters the SDK core bumps for every gossip message ([`GOSSIP_RECEIVED`],
/// [`CACHE_HITS`] / [`CACHE_MISSES`]), each taken from the recorder the first time its label
/// set is used and kept. Through the macros, every message built a key (its labels on the
/// heap) and looked it up in the recorder's registry: ≈ 0.8 µs a gossiped commitment in
/// `bench validate`'s profile (2026-12-03), a sixth of what the SDK adds to the signature
/// recovery. The labels are the code's own `&'static str`s, so the maps stay as small as
/// the set of outcomes.
///
/// A handle belongs to the recorder installed when it was taken: install the recorder before
/// the SDK handles its first message (as `preconf-node` does before it starts the SDK), and
/// do not let it drop idle series (the Prometheus exporter's `idle_timeout`, off by default):
/// counts through a handle kept past its series' removal are not exported.
#[derive(Debug, Default)]
pub(crate) struct MessageCounters {
    received: HashMap<(GossipTopicKind, &'static str), Counter>,
    cache: HashMap<(&'static str, bool), Counter>,
}

impl MessageCounters {
    /// One gossip message on `topic` handled with `outcome` ([`GOSSIP_RECEIVED`]).
    pub(crate) fn gossip_received(&mut self, topic: GossipTopicKind, outcome: &'static str) {
        self.received
            .entry((topic, outcome))
            .or_insert_with(
                || counter!(GOSSIP_RECEIVED, "topic" => topic.label(), "outcome" => outcome),
            )
            .increment(1);
    }

    /// A look-up in the `kind` cache, a hit or a miss ([`CACHE_HITS`], [`CACHE_MISSES`]).
    pub(crate) fn cache(&mut self, kind: &'static str, hit: bool) {
        self.cache
            .entry((kind, hit))
            .or_insert_with(|| {
                if hit {
                    counter!(CACHE_HITS, "kind" => kind)
                } else {
                    counter!(CACHE_MISSES, "kind" => kind)
                }
            })
            .increment(1);
    }
}

pub(crate) fn gossip_chunk(parallel: bool) {
    let recovery = if parallel { "parallel" } else { "inline" };
    counter!(GOSSIP_CHUNKS, "recovery" => recovery).increment(1);
}

pub(crate) fn gossip_published(topic: GossipTopicKind, outcome: &'static str) {
    counter!(GOSSIP_PUBLISH, "topic" => topic.label(), "outcome" => outcome).increment(1);
}

pub(crate) fn request(kind: ReqRespKind, direction: &'static str, outcome: &'static str) {
    counter!(REQRESP_REQUESTS, "protocol" => kind.label(), "direction" => direction, "outcome" => outcome)
        .increment(1);
}

pub(crate) fn request_latency(kind: ReqRespKind, elapsed: Duration) {
    histogram!(REQRESP_LATENCY, "protocol" => kind.label()).record(elapsed.as_secs_f64());
}

pub(crate) fn validation_failure(reason: &'static str) {
    counter!(VALIDATION_FAILURES, "reason" => reason).increment(1);
}

/// Min, median and max of `scores` (NaN sorts last); `None` when empty.
pub(crate) fn score_stats(scores: &mut [f64]) -> Option<(f64, f64, f64)> {
    scores.sort_by(f64::total_cmp);
    let min = *scores.first()?;
    let max = *scores.last()?;
    let mid = scores.len() / 2;
    let median = if scores.len().is_multiple_of(2) {
        (scores.get(mid - 1)? + scores.get(mid)?) / 2.0
    } else {
        *scores.get(mid)?
    };
    Some((min, median, max))
}

/// Exports the connected peers' scores as [`PEER_SCORE`].
pub(crate) fn peer_scores(mut scores: Vec<f64>) {
    let (min, median, max) = score_stats(&mut scores).unwrap_or((0.0, 0.0, 0.0));
    gauge!(PEER_SCORE, "stat" => "min").set(min);
    gauge!(PEER_SCORE, "stat" => "median").set(median);
    gauge!(PEER_SCORE, "stat" => "max").set(max);
}

pub(crate) fn backpressure(queue: &'static str) {
    counter!(BACKPRESSURE, "queue" => queue).increment(1);
}

pub(crate) fn pending(parent: usize, schedule: usize) {
    gauge!(PENDING, "reason" => "parent_unknown").set(parent as f64);
    gauge!(PENDING, "reason" => "schedule_unknown").set(schedule as f64);
}

pub(crate) fn pending_evicted(count: usize) {
    counter!(PENDING_EVICTED).increment(count as u64);
}

pub(crate) fn equivocation(kind: &'static str) {
    counter!(EQUIVOCATIONS, "kind" => kind).increment(1);
}

pub(crate) fn head(block_number: u64) {
    gauge!(HEAD_BLOCK).set(block_number as f64);
}

pub(crate) fn catchup_commitments(count: usize) {
    counter!(CATCHUP_COMMITMENTS).increment(count as u64);
}

pub(crate) fn catchup_peer_failure(reason: &'static str) {
    counter!(CATCHUP_PEER_FAILURES, "reason" => reason).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_stats_are_min_median_max() {
        assert_eq!(score_stats(&mut []), None);
        assert_eq!(score_stats(&mut [3.0]), Some((3.0, 3.0, 3.0)));
        assert_eq!(score_stats(&mut [5.0, -2.0, 1.0]), Some((-2.0, 1.0, 5.0)));
        assert_eq!(
            score_stats(&mut [4.0, -1.0, 0.0, 2.0]),
            Some((-1.0, 1.0, 4.0))
        );
    }
}
