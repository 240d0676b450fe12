//! Metrics through the `metrics` facade; every name starts with `p2p_net_`. Install any
//! `metrics` recorder (e.g. a Prometheus exporter) in the binary to collect them.

use preconfirmation_types::{GossipTopicKind, ReqRespKind};

/// Connected peers (gauge).
pub const PEERS_CONNECTED: &str = "p2p_net_peers_connected";
/// Gossip payload bytes received, label `topic` (counter).
pub const GOSSIP_BYTES_IN: &str = "p2p_net_gossip_bytes_in_total";
/// Gossip payload bytes published, label `topic` (counter).
pub const GOSSIP_BYTES_OUT: &str = "p2p_net_gossip_bytes_out_total";
/// Gossip messages received, labels `topic` (counter).
pub const GOSSIP_MESSAGES_IN: &str = "p2p_net_gossip_messages_in_total";
/// Req/resp exchanges, labels `protocol`, `direction` (inbound/outbound) and `outcome`
/// (counter). Inbound refusals carry their reason as the outcome: `rate_limited` (request
/// count), `bytes_exhausted` (response-byte budget, [`crate::budget`]) or
/// `too_many_concurrent`.
pub const REQRESP: &str = "p2p_net_reqresp_total";
/// SSZ bytes of the responses we sent, label `protocol` (counter).
pub const RESPONSE_BYTES_OUT: &str = "p2p_net_reqresp_response_bytes_out_total";
/// Inbound refusals not penalised because they fell within the peer's grace
/// (`rate_limit_grace`), labels `protocol` and `reason` (as in [`REQRESP`]) (counter).
pub const REFUSALS_FORGIVEN: &str = "p2p_net_reqresp_refusals_forgiven_total";
/// Gossip messages ignored because their sender was over its per-peer limits of the topic
/// (`gossip_rate_limit`), labels `topic` and `limit` (`messages` or `bytes`) (counter).
pub const GOSSIP_RATE_LIMITED: &str = "p2p_net_gossip_rate_limited_total";
/// Rejected input, label `reason` (counter).
pub const REJECTIONS: &str = "p2p_net_rejections_total";
/// Bans issued (counter).
pub const BANS: &str = "p2p_net_bans_total";
/// Current total score per peer, sampled every tick (histogram).
pub const PEER_SCORE: &str = "p2p_net_peer_score";
/// Events dropped because the SDK's event channel was full, label `kind` (counter).
pub const EVENTS_DROPPED: &str = "p2p_net_events_dropped_total";

/// Round-trip time of successful outbound pings, in seconds (histogram).
pub const PING_RTT: &str = "p2p_net_ping_rtt_seconds";
/// Connections whose peer refused our outbound ping protocol (counter). Such a connection
/// is not pinged again; the peer's own pings are still answered.
pub const PING_UNSUPPORTED: &str = "p2p_net_ping_unsupported_total";
/// Outbound pings that failed, label `reason` (`timeout`, `mismatch` or `error`) (counter).
pub const PING_FAILURES: &str = "p2p_net_ping_failures_total";

pub(crate) fn peers_connected(n: usize) {
    metrics::gauge!(PEERS_CONNECTED).set(n as f64);
}

pub(crate) fn gossip_in(kind: GossipTopicKind, bytes: usize) {
    metrics::counter!(GOSSIP_BYTES_IN, "topic" => kind.label()).increment(bytes as u64);
    metrics::counter!(GOSSIP_MESSAGES_IN, "topic" => kind.label()).increment(1);
}

pub(crate) fn gossip_rate_limited(kind: GossipTopicKind, limit: &'static str) {
    metrics::counter!(GOSSIP_RATE_LIMITED, "topic" => kind.label(), "limit" => limit).increment(1);
}

pub(crate) fn gossip_out(kind: GossipTopicKind, bytes: usize) {
    metrics::counter!(GOSSIP_BYTES_OUT, "topic" => kind.label()).increment(bytes as u64);
}

pub(crate) fn reqresp(kind: ReqRespKind, direction: &'static str, outcome: &'static str) {
    metrics::counter!(REQRESP, "protocol" => kind.label(), "direction" => direction, "outcome" => outcome)
        .increment(1);
}

pub(crate) fn response_bytes(kind: ReqRespKind, bytes: u64) {
    metrics::counter!(RESPONSE_BYTES_OUT, "protocol" => kind.label()).increment(bytes);
}

pub(crate) fn refusal_forgiven(kind: ReqRespKind, reason: &'static str) {
    metrics::counter!(REFUSALS_FORGIVEN, "protocol" => kind.label(), "reason" => reason)
        .increment(1);
}

pub(crate) fn rejection(reason: &'static str) {
    metrics::counter!(REJECTIONS, "reason" => reason).increment(1);
}

pub(crate) fn ban() {
    metrics::counter!(BANS).increment(1);
}

pub(crate) fn peer_score(score: f64) {
    metrics::histogram!(PEER_SCORE).record(score);
}

pub(crate) fn event_dropped(kind: &'static str) {
    metrics::counter!(EVENTS_DROPPED, "kind" => kind).increment(1);
}

pub(crate) fn ping_rtt(rtt: std::time::Duration) {
    metrics::histogram!(PING_RTT).record(rtt.as_secs_f64());
}

pub(crate) fn ping_unsupported() {
    metrics::counter!(PING_UNSUPPORTED).increment(1);
}

pub(crate) fn ping_failure(reason: &'static str) {
    metrics::counter!(PING_FAILURES, "reason" => reason).increment(1);
}
