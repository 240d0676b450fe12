//! Helpers shared by the benches: chain generation on every core, percentiles, RSS sampling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use p2p::testkit::{deterministic_txlist, ChainBuilder};
use preconfirmation_types::{sign, Bytes65, PreconfCommitment, SignedCommitment, SIGNATURE_LEN};

/// How often the RSS sampler reads `/proc/self/status`.
pub(crate) const RSS_SAMPLE_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes in a MiB.
pub(crate) const MIB: f64 = 1024.0 * 1024.0;

/// The 1-minute load average, 0 when unknown.
pub(crate) fn load_avg_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// `x` rounded to `digits` decimals.
pub(crate) fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

/// The `p`-th percentile (nearest rank) of ascending `sorted`; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Applies `f` to every item on all cores (scoped threads, order kept).
pub(crate) fn par_map<T: Send, U: Send>(items: Vec<T>, f: impl Fn(T) -> U + Sync) -> Vec<U> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = items.len().div_ceil(threads).max(1);
    let mut chunks: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        chunks.push(items.by_ref().take(chunk).collect());
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || c.into_iter().map(f).collect::<Vec<U>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

/// A block of a generated chain.
pub(crate) struct GeneratedBlock {
    /// The signed commitment.
    pub commitment: SignedCommitment,
    /// Its tx list (None for a pure EOP).
    pub txlist: Option<Vec<u8>>,
}

/// `count` valid blocks from `builder`, each with a distinct `txlist_bytes`-byte tx list (none
/// when 0); the chain is linked in order, the signatures are made on every core.
pub(crate) fn signed_chain(
    builder: &mut ChainBuilder,
    count: usize,
    txlist_bytes: usize,
) -> Vec<GeneratedBlock> {
    let domain = builder.chain().domain;
    let mut unsigned: Vec<(PreconfCommitment, Option<Vec<u8>>, _)> = Vec::with_capacity(count);
    for _ in 0..count {
        let txlist =
            (txlist_bytes > 0).then(|| deterministic_txlist(builder.next_number(), txlist_bytes));
        let commitment = builder.next_unsigned(txlist.as_deref());
        let key = builder
            .key_for_slot(builder.next_slot())
            .copied()
            .unwrap_or_else(|| p2p::testkit::preconfer_key(0));
        // The parent link only depends on the unsigned part.
        builder.advance(&SignedCommitment {
            commitment: commitment.clone(),
            signature: Bytes65([0; SIGNATURE_LEN]),
        });
        unsigned.push((commitment, txlist, key));
    }
    par_map(unsigned, |(commitment, txlist, key)| GeneratedBlock {
        commitment: sign(&key, &domain, commitment),
        txlist,
    })
}

/// Resident set size and its high-water mark of this process, in bytes.
pub(crate) fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Samples this process's RSS every [`RSS_SAMPLE_INTERVAL`] on its own thread and keeps the
/// peak since the last [`RssSampler::reset`].
pub(crate) struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    /// Starts sampling.
    pub(crate) fn start() -> Self {
        let peak = Arc::new(AtomicU64::new(rss_bytes().0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (peak.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_bytes().0, Ordering::Relaxed);
                    std::thread::sleep(RSS_SAMPLE_INTERVAL);
                }
            })
        };
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    /// Peak RSS in bytes since start or the last reset (sampled now too).
    pub(crate) fn peak(&self) -> u64 {
        self.peak.fetch_max(rss_bytes().0, Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed)
    }

    /// Starts a new peak from the current RSS.
    pub(crate) fn reset(&self) {
        self.peak.store(rss_bytes().0, Ordering::Relaxed);
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
