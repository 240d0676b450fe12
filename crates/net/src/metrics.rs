//! Metrics through the `metrics` facade; every name starts with `preconf_net_` (the
//! transport's share of the node's one `preconf_` prefix). Install any `metrics` recorder
//! (e.g. a Prometheus exporter) in the binary to collect them, then call [`describe`] so the
//! exporter has a `# HELP` line for each.

use preconfirmation_types::{GossipTopicKind, ReqRespKind};

/// Connected peers (gauge).
pub const PEERS_CONNECTED: &str = "preconf_net_peers_connected";
/// Gossip payload bytes received, label `topic` (counter).
pub const GOSSIP_BYTES_IN: &str = "preconf_net_gossip_bytes_in_total";
/// Gossip payload bytes published, label `topic` (counter).
pub const GOSSIP_BYTES_OUT: &str = "preconf_net_gossip_bytes_out_total";
/// Gossip messages received, labels `topic` (counter).
pub const GOSSIP_MESSAGES_IN: &str = "preconf_net_gossip_messages_in_total";
/// Req/resp requests, labels `protocol`, `direction` (inbound/outbound) and `outcome`
/// (counter): each request is counted once, when it ends, with how it ended on the wire.
/// The SDK's `preconf_reqresp_answers_total` says what the answers held; it counts no
/// requests.
///
/// Outbound: `ok` (a response arrived), `decode` (it did not decode, or answered another protocol),
/// `timeout`, `refused`, `oversize`, `disconnected`, `shutdown`, or `throttled` (held back by our
/// pacing, never sent). Inbound: `served` (the answer was handed to the stream), `stream_closed`
/// (the stream closed before it), `unanswered` (the SDK gave no answer in time), `dropped` (the
/// SDK's event channel was full), a refusal's reason — `rate_limited` (request count),
/// `bytes_exhausted` (response-byte budget, [`crate::reqresp::budget`]) or `too_many_concurrent` —
/// or the reason an invalid request was closed (e.g. `oversize_request`, `slow_request`).
pub const REQRESP: &str = "preconf_net_reqresp_requests_total";
/// SSZ bytes of the responses we sent, label `protocol` (counter).
pub const RESPONSE_BYTES_OUT: &str = "preconf_net_reqresp_response_bytes_out_total";
/// Inbound refusals not penalised because they fell within the peer's grace
/// (`rate_limit_grace`), labels `protocol` and `reason` (as in [`REQRESP`]) (counter).
pub const REFUSALS_FORGIVEN: &str = "preconf_net_reqresp_refusals_forgiven_total";
/// Gossip messages ignored because their sender was over its per-peer limits of the topic
/// (`gossip_rate_limit`), labels `topic` and `limit` (`messages` or `bytes`) (counter).
pub const GOSSIP_RATE_LIMITED: &str = "preconf_net_gossip_rate_limited_total";
/// Rejected input, label `reason` (counter).
pub const REJECTIONS: &str = "preconf_net_rejections_total";
/// Bans issued (counter).
pub const BANS: &str = "preconf_net_bans_total";
/// Current total score per peer, sampled every tick (histogram).
pub const PEER_SCORE: &str = "preconf_net_peer_score";
/// Events dropped because the SDK's event channel was full, label `kind` (counter).
pub const EVENTS_DROPPED: &str = "preconf_net_events_dropped_total";

/// Round-trip time of successful outbound pings, in seconds (histogram).
pub const PING_RTT: &str = "preconf_net_ping_rtt_seconds";
/// Connections whose peer refused our outbound ping protocol (counter). Such a connection
/// is not pinged again; the peer's own pings are still answered.
pub const PING_UNSUPPORTED: &str = "preconf_net_ping_unsupported_total";
/// Outbound pings that failed, label `reason` (`timeout`, `mismatch` or `error`) (counter).
pub const PING_FAILURES: &str = "preconf_net_ping_failures_total";
/// Peers in our gossipsub mesh of each topic, label `topic`, sampled every tick (gauge).
pub const GOSSIP_MESH_PEERS: &str = "preconf_net_gossip_mesh_peers";

/// Every metric of this crate: (name, kind, help). [`describe`] registers them; tests
/// check the list against the constants above.
pub const DESCRIPTIONS: &[(&str, MetricKind, &str)] = &[
    (PEERS_CONNECTED, MetricKind::Gauge, "Connected peers."),
    (GOSSIP_BYTES_IN, MetricKind::Counter, "Gossip payload bytes received, by topic."),
    (GOSSIP_BYTES_OUT, MetricKind::Counter, "Gossip payload bytes published, by topic."),
    (GOSSIP_MESSAGES_IN, MetricKind::Counter, "Gossip messages received, by topic."),
    (
        REQRESP,
        MetricKind::Counter,
        "Req/resp requests, each counted once when it ends, by protocol, direction and how it ended on the wire.",
    ),
    (RESPONSE_BYTES_OUT, MetricKind::Counter, "SSZ bytes of the responses sent, by protocol."),
    (
        REFUSALS_FORGIVEN,
        MetricKind::Counter,
        "Inbound refusals not penalised (within the peer's rate_limit_grace), by protocol and reason.",
    ),
    (
        GOSSIP_RATE_LIMITED,
        MetricKind::Counter,
        "Gossip messages ignored because their sender was over its per-peer limit of the topic, by topic and limit.",
    ),
    (REJECTIONS, MetricKind::Counter, "Input rejected by the network layer, by reason."),
    (BANS, MetricKind::Counter, "Peer bans issued."),
    (PEER_SCORE, MetricKind::Histogram, "Total score of each connected peer, sampled every tick."),
    (
        EVENTS_DROPPED,
        MetricKind::Counter,
        "Network events dropped because the SDK's event channel was full, by kind.",
    ),
    (PING_RTT, MetricKind::Histogram, "Round-trip time of successful outbound pings."),
    (
        PING_UNSUPPORTED,
        MetricKind::Counter,
        "Connections whose peer refused our outbound ping protocol.",
    ),
    (PING_FAILURES, MetricKind::Counter, "Outbound pings that failed, by reason."),
    (
        GOSSIP_MESH_PEERS,
        MetricKind::Gauge,
        "Peers in our gossipsub mesh, by topic, sampled every tick.",
    ),
];

/// What kind of metric a name is, for [`describe_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonic counter (`# TYPE … counter`).
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram (a Prometheus histogram or summary, as the recorder exports it).
    Histogram,
}

/// Registers `descriptions` with the installed `metrics` recorder, so its exporter writes a
/// `# HELP` line for each. Call it after installing the recorder; a recorder installed later
/// does not see it.
pub fn describe_all(descriptions: &[(&'static str, MetricKind, &'static str)]) {
    for &(name, kind, help) in descriptions {
        match kind {
            MetricKind::Counter => metrics::describe_counter!(name, help),
            MetricKind::Gauge => metrics::describe_gauge!(name, help),
            MetricKind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
}

/// Registers the description of every metric of this crate ([`DESCRIPTIONS`]) with the
/// installed recorder.
pub fn describe() {
    describe_all(DESCRIPTIONS);
}

pub(crate) fn gossip_mesh_peers(kind: GossipTopicKind, peers: usize) {
    metrics::gauge!(GOSSIP_MESH_PEERS, "topic" => kind.label()).set(peers as f64);
}

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
