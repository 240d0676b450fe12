//! Metric names (the plan's Task 13) and the helpers that record them where things happen.
//!
//! The SDK records through the `metrics` facade; install any recorder (e.g.
//! `metrics-exporter-prometheus`, as `preconf-node` does) to export them, before the SDK
//! starts: the core keeps the handles of its per-message counters (`MessageCounters`). Then
//! call [`describe`] (this crate's and the network layer's) so the exporter writes a
//! `# HELP` line for each. Every name starts with `preconf_`; the network layer's with
//! `preconf_net_`.
//!
//! Req/resp requests are counted once, by the network layer
//! (`preconf_net_reqresp_requests_total{protocol,direction,outcome}`: how each ended on the
//! wire); [`REQRESP_ANSWERS`] says what the answers that arrived (or that we gave) held.
//!
//! | name | type | labels |
//! |---|---|---|
//! | `preconf_gossip_received_total` | counter | `topic`, `outcome` (`accept`, `pending`, reject reason) |
//! | `preconf_gossip_publish_total` | counter | `topic`, `outcome` (`ok`, `no_peers`, `error`, `invalid`) |
//! | `preconf_reqresp_answers_total` | counter | `protocol`, `direction`, `result` |
//! | `preconf_reqresp_latency_seconds` | histogram | `protocol` |
//! | `preconf_cache_hits_total` | counter | `kind` |
//! | `preconf_cache_misses_total` | counter | `kind` |
//! | `preconf_validation_failures_total` | counter | `reason` |
//! | `preconf_peer_score_gauge` | gauge | `stat` (`min`, `median`, `max` of connected peers' scores) |
//! | `preconf_backpressure_total` | counter | `queue` |
//! | `preconf_pending_commitments` | gauge | `reason` |
//! | `preconf_pending_evicted_total` | counter | — |
//! | `preconf_equivocations_total` | counter | `kind` |
//! | `preconf_head_block_number` | gauge | — |
//! | `preconf_catchup_commitments_total` | counter | — |
//! | `preconf_catchup_peer_failures_total` | counter | `reason` |
//! | `preconf_gossip_queue_seconds` | histogram | `topic` |
//! | `preconf_durable_write_seconds` | histogram | — |

use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter};
pub use preconfirmation_net::metrics::{describe_all, MetricKind};
use preconfirmation_types::{GossipTopicKind, ReqRespKind};

/// `preconf_gossip_received_total`.
pub const GOSSIP_RECEIVED: &str = "preconf_gossip_received_total";
/// `preconf_gossip_commitment_chunks_total{recovery}`: chunks of a batch of gossiped commitments
/// ([`crate::config::GossipValidationConfig`]), by whether their signers were recovered on
/// the pool (`parallel`) or on the manager's thread (`inline`).
pub const GOSSIP_CHUNKS: &str = "preconf_gossip_commitment_chunks_total";
/// `preconf_gossip_publish_total`.
pub const GOSSIP_PUBLISH: &str = "preconf_gossip_publish_total";
/// `preconf_reqresp_answers_total{protocol,direction,result}`: what each req/resp answer held.
/// Outbound (answers that arrived; failures on the wire are only in the network layer's
/// request count): `ok`, `empty` (no commitments), `not_found` (the peer does not hold the tx
/// list) or `invalid` (a page longer than asked, a tx list not matching its hash; the peer is
/// penalised). Inbound (answers we gave): `served`, `empty` or `not_found`.
pub const REQRESP_ANSWERS: &str = "preconf_reqresp_answers_total";
/// `preconf_reqresp_latency_seconds{protocol}`: an outbound request's time to its answer or
/// failure, including waits for the peer's rate limits (histogram).
pub const REQRESP_LATENCY: &str = "preconf_reqresp_latency_seconds";
/// `preconf_cache_hits_total`.
pub const CACHE_HITS: &str = "preconf_cache_hits_total";
/// `preconf_cache_misses_total`.
pub const CACHE_MISSES: &str = "preconf_cache_misses_total";
/// `preconf_validation_failures_total`.
pub const VALIDATION_FAILURES: &str = "preconf_validation_failures_total";
/// `preconf_peer_score_gauge`: the lowest, median and highest total score (§7.1) of the connected
/// peers, label `stat` (`min`, `median`, `max`); all three 0 with no peer connected. Three
/// series whatever the peers: a label per peer id would let every peer that ever connected
/// add a series to the exporter for the life of the process.
pub const PEER_SCORE: &str = "preconf_peer_score_gauge";
/// `preconf_backpressure_total`.
pub const BACKPRESSURE: &str = "preconf_backpressure_total";
/// `preconf_pending_commitments`.
pub const PENDING: &str = "preconf_pending_commitments";
/// `preconf_pending_evicted_total`.
pub const PENDING_EVICTED: &str = "preconf_pending_evicted_total";
/// `preconf_equivocations_total`.
pub const EQUIVOCATIONS: &str = "preconf_equivocations_total";
/// `preconf_head_block_number`.
pub const HEAD_BLOCK: &str = "preconf_head_block_number";
/// `preconf_catchup_commitments_total`.
pub const CATCHUP_COMMITMENTS: &str = "preconf_catchup_commitments_total";
/// `preconf_catchup_peer_failures_total`.
pub const CATCHUP_PEER_FAILURES: &str = "preconf_catchup_peer_failures_total";
/// `preconf_txlist_held_verdicts_total{verdict}`: gossip verdicts of tx lists held for their
/// commitment, by how they were released (`accept`: a commitment referenced it; `ignore`:
/// evicted or waited too long).
pub const TXLIST_HELD_VERDICTS: &str = "preconf_txlist_held_verdicts_total";

/// `preconf_gossip_queue_seconds{topic}`: how long a gossip message waited between the network
/// driver and the SDK's manager (the event channel): with the verdict's own work, what each
/// hop of a message's propagation costs here beyond bare gossipsub.
pub const GOSSIP_QUEUE: &str = "preconf_gossip_queue_seconds";

pub(crate) fn gossip_queued(topic: GossipTopicKind, waited: Duration) {
    histogram!(GOSSIP_QUEUE, "topic" => topic.label()).record(waited.as_secs_f64());
}

/// `preconf_durable_write_seconds`: from a write's queueing (the core accepted what it holds)
/// to the manager learning it is durable, when the core announces it: the delay durability
/// adds before a sidecar hears of a block (its transaction and fsync, and the hand-offs to
/// and from the writer).
pub const DURABLE_WRITE: &str = "preconf_durable_write_seconds";

pub(crate) fn durable_write(elapsed: Duration) {
    histogram!(DURABLE_WRITE).record(elapsed.as_secs_f64());
}

/// `preconf_durable_transaction_seconds`: one durable transaction of the writer, from its start
/// to its fsync's return: the part of [`DURABLE_WRITE`] that is storage's own work; the rest
/// is waiting for the writer and the hand-offs to and from it.
pub const DURABLE_TRANSACTION: &str = "preconf_durable_transaction_seconds";

pub(crate) fn durable_transaction(elapsed: Duration) {
    histogram!(DURABLE_TRANSACTION).record(elapsed.as_secs_f64());
}

/// `preconf_durable_write_group_size`: writes the durable writer put into one transaction
/// (histogram; group commit).
pub const DURABLE_WRITE_GROUP: &str = "preconf_durable_write_group_size";

pub(crate) fn write_group(writes: usize) {
    metrics::histogram!(DURABLE_WRITE_GROUP).record(writes as f64);
}

/// `preconf_pending_held_verdicts_total{verdict}`: gossip verdicts of commitments held while
/// they were pending, by how they were released (`accept`: validated and forwarded;
/// `reject`: failed; `ignore`: evicted, swept or held too long).
pub const PENDING_HELD_VERDICTS: &str = "preconf_pending_held_verdicts_total";

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
/// `bench validate`'s profile, a sixth of what the SDK adds to the signature
/// recovery. The labels are the code's own `&'static str`s, so the maps stay as small as
/// the set of outcomes; they hash with foldhash (SipHash over the labels cost ≈ 0.1 µs a
/// message).
///
/// A handle belongs to the recorder installed when it was taken: install the recorder before
/// the SDK handles its first message (as `preconf-node` does before it starts the SDK), and
/// do not let it drop idle series (the Prometheus exporter's `idle_timeout`, off by default):
/// counts through a handle kept past its series' removal are not exported.
#[derive(Debug, Default)]
pub(crate) struct MessageCounters {
    received: foldhash::HashMap<(GossipTopicKind, &'static str), Counter>,
    cache: foldhash::HashMap<(&'static str, bool), Counter>,
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

/// One req/resp answer and what it held ([`REQRESP_ANSWERS`]).
pub(crate) fn answer(kind: ReqRespKind, direction: &'static str, result: &'static str) {
    counter!(REQRESP_ANSWERS, "protocol" => kind.label(), "direction" => direction, "result" => result)
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

/// Every metric of the SDK: (name, kind, help). [`describe`] registers them.
pub const DESCRIPTIONS: &[(&str, MetricKind, &str)] = &[
    (GOSSIP_RECEIVED, MetricKind::Counter, "Gossip messages handled by the SDK, by topic and outcome (accept, pending, or the reject reason)."),
    (GOSSIP_CHUNKS, MetricKind::Counter, "Chunks of a batch of gossiped commitments, by where their signers were recovered (parallel, inline)."),
    (GOSSIP_PUBLISH, MetricKind::Counter, "Local publishes, by topic and outcome (ok, no_peers, error, invalid)."),
    (REQRESP_ANSWERS, MetricKind::Counter, "What req/resp answers held, by protocol, direction and result (requests themselves are counted in preconf_net_reqresp_requests_total)."),
    (REQRESP_LATENCY, MetricKind::Histogram, "Time of an outbound request to its answer or failure, including waits for the peer's rate limits, by protocol."),
    (CACHE_HITS, MetricKind::Counter, "Look-ups that hit a dedupe cache, by cache."),
    (CACHE_MISSES, MetricKind::Counter, "Look-ups that missed a dedupe cache, by cache."),
    (VALIDATION_FAILURES, MetricKind::Counter, "Commitments and tx lists that failed validation, by reason."),
    (PEER_SCORE, MetricKind::Gauge, "Lowest, median and highest total score of the connected peers (stat)."),
    (BACKPRESSURE, MetricKind::Counter, "Times a bounded queue was full, by queue."),
    (PENDING, MetricKind::Gauge, "Commitments held until they can be validated, by what they wait for."),
    (PENDING_EVICTED, MetricKind::Counter, "Pending commitments evicted before they could be validated."),
    (EQUIVOCATIONS, MetricKind::Counter, "Equivocations seen (slashing evidence), by kind."),
    (HEAD_BLOCK, MetricKind::Gauge, "Block number of the local preconfirmation head."),
    (CATCHUP_COMMITMENTS, MetricKind::Counter, "Commitments fetched and accepted by catch-up."),
    (CATCHUP_PEER_FAILURES, MetricKind::Counter, "Catch-up requests to a peer that failed or were wrong, by reason."),
    (TXLIST_HELD_VERDICTS, MetricKind::Counter, "Gossip verdicts of tx lists held for their commitment, by verdict."),
    (GOSSIP_QUEUE, MetricKind::Histogram, "Time a gossip message waited between the network driver and the SDK's manager, by topic."),
    (DURABLE_WRITE, MetricKind::Histogram, "Time from queueing a write to the manager learning it is durable."),
    (DURABLE_TRANSACTION, MetricKind::Histogram, "Time of one durable transaction of the writer, to its fsync's return."),
    (DURABLE_WRITE_GROUP, MetricKind::Histogram, "Writes the durable writer put into one transaction."),
    (PENDING_HELD_VERDICTS, MetricKind::Counter, "Gossip verdicts of commitments held while pending, by verdict."),
];

/// Registers the description of every metric of the SDK ([`DESCRIPTIONS`]) and of its network
/// layer ([`preconfirmation_net::metrics::describe`]) with the installed recorder, so its
/// exporter writes a `# HELP` line for each. Call it after installing the recorder.
pub fn describe() {
    preconfirmation_net::metrics::describe();
    describe_all(DESCRIPTIONS);
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
