//! The process's Prometheus recorder.
//!
//! Histograms whose name ends in `_seconds` (e.g. `p2p_reqresp_latency_seconds`) are exported
//! as real Prometheus histograms with [`LATENCY_BUCKETS_SECONDS`], so dashboards can use
//! `histogram_quantile` across nodes; other histograms are exported as summaries.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Bucket bounds of latency histograms, in seconds (1 ms … 10 s; requests time out at 10 s).
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the global recorder; `None` if this process already has one.
pub fn install_prometheus() -> Option<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_SECONDS)
        .ok()?
        .install_recorder()
        .ok()
}
