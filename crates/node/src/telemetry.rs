//! The process's Prometheus recorder.
//!
//! Histograms whose name ends in `_seconds` (e.g. `p2p_reqresp_latency_seconds`) are exported
//! as real Prometheus histograms with [`LATENCY_BUCKETS_SECONDS`], so dashboards can use
//! `histogram_quantile` across nodes; other histograms are exported as summaries.
//!
//! The recorder keeps every recorded histogram sample until upkeep folds it into its buckets
//! or summary; a scrape does that too, but a node nobody scrapes would keep every sample. So
//! [`install_prometheus`] runs upkeep every [`UPKEEP_INTERVAL`] on a thread of its own.

use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// How often the recorder's upkeep runs: 5 s, the exporter's own default `upkeep_timeout`.
/// Histogram samples recorded between two runs are held in memory until the next one.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Bucket bounds of latency histograms, in seconds (100 µs … 10 s: a gossip message's wait
/// for the SDK is tens of µs, a durable write ~1 ms, a request times out at 10 s).
pub const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Installs the global recorder and starts its upkeep ([`UPKEEP_INTERVAL`]); `None` if this
/// process already has one.
pub fn install_prometheus() -> Option<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS_SECONDS)
        .ok()?
        // `install_recorder` starts no upkeep of its own (`upkeep_timeout` only configures
        // the exporter that `install` starts): ours runs below.
        .install_recorder()
        .ok()?;
    let upkeep = handle.clone();
    spawn_upkeep(UPKEEP_INTERVAL, move || {
        upkeep.run_upkeep();
        true
    });
    Some(handle)
}

/// Calls `upkeep` every `interval` on a thread of its own (named `metrics-upkeep`) until it
/// returns false; the recorder's lives as long as the process. `None` if the thread could not
/// be started (upkeep then happens at scrapes only).
pub fn spawn_upkeep(
    interval: Duration,
    upkeep: impl Fn() -> bool + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(interval);
            if !upkeep() {
                return;
            }
        })
        .ok()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{mpsc, Arc};

    use super::*;

    #[test]
    fn upkeep_runs_on_its_timer_until_told_to_stop() {
        let runs = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = mpsc::channel();
        let counted = runs.clone();
        let thread = spawn_upkeep(Duration::from_millis(10), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
            if n == 3 {
                let _ = done_tx.send(());
            }
            n < 3
        })
        .expect("thread");
        done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("upkeep ran three times");
        thread
            .join()
            .expect("the thread ends when upkeep returns false");
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn the_exporter_default_upkeep_is_kept() {
        assert_eq!(UPKEEP_INTERVAL, Duration::from_secs(5));
    }
}
