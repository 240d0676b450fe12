//! Helpers shared by the benches: chain generation on every core, percentiles, RSS sampling.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use p2p::testkit::{deterministic_txlist, ChainBuilder};
use preconfirmation_types::{
    sign, signing_hash, Bytes65, ChainSpec, PreconfCommitment, SignedCommitment, B256,
    SIGNATURE_LEN,
};

use crate::error::ToolError;

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

/// `x` rounded to `digits` significant digits (0 stays 0), so a small figure (a ratio far
/// below 1) does not round to 0.
pub(crate) fn round_sig(x: f64, digits: i32) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = x.abs().log10().floor() as i32;
    round(x, digits - 1 - magnitude)
}

/// Clock ticks per second of the times in `/proc/<pid>/task/<tid>/stat`. `libc` is no
/// dependency of this crate, so `sysconf(_SC_CLK_TCK)` is not asked: this assumes 100 (Linux's
/// USER_HZ on the common architectures).
pub(crate) const CLOCK_TICKS_PER_S: f64 = 100.0;

/// CPU seconds (user + system) used so far by this process's threads named `name` (or
/// `name-…`): `/proc/self/task/<tid>/comm` picks the threads, fields 14 and 15 of their `stat`
/// the times. 0 where `/proc` is unreadable; a thread that ended no longer counts.
pub(crate) fn threads_cpu_s(name: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let prefix = format!("{name}-");
    let mut ticks = 0u64;
    for task in tasks.flatten() {
        let dir = task.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        let comm = comm.trim_end();
        if comm != name && !comm.starts_with(&prefix) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // Field 2 (comm, in parentheses) may hold spaces: count from after the last ')',
        // where field 3 starts, so fields 14 and 15 are the 12th and 13th.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let field = |i: usize| {
            rest.split_whitespace()
                .nth(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    ticks as f64 / CLOCK_TICKS_PER_S
}

/// CPU seconds (user + system) this whole process has used so far, every thread counted
/// (`getrusage(RUSAGE_SELF)`); 0 when unknown. The kernel adds another thread's time at its
/// scheduler tick or switch, so a window of a few ms can be off by about a tick per running
/// thread: the benches report medians over many windows.
pub(crate) fn process_cpu_s() -> f64 {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    getrusage(UsageWho::RUSAGE_SELF).map_or(0.0, |usage| {
        (usage.user_time().num_microseconds() + usage.system_time().num_microseconds()) as f64
            * 1e-6
    })
}

/// The `p`-th percentile (nearest rank) of ascending `sorted`; 0 when empty.
pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (nearest rank, as every bench figure; 0 when empty).
pub(crate) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    percentile(&values, 50.0)
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

/// What this machine's disk adds when many databases in `dir` commit at once, as the
/// propagation bench's nodes do when a message reaches them together: the median time of one
/// lone 4 KiB write + `fdatasync`, and the median time until the last of `writers`
/// simultaneous ones (each to its own file, started together) is durable. `repeats` of each;
/// milliseconds. The files are removed before it returns.
pub(crate) fn fsync_burst(
    dir: &std::path::Path,
    writers: usize,
    repeats: usize,
) -> std::io::Result<(f64, f64)> {
    use std::os::unix::fs::FileExt;
    use std::sync::Barrier;
    use std::time::Instant;

    const BLOCK: [u8; 4096] = [0x5a; 4096];
    let probe = tempfile::Builder::new()
        .prefix("fsync-burst-")
        .tempdir_in(dir)?;
    let files = (0..writers.max(1))
        .map(|i| {
            let file = std::fs::File::create(probe.path().join(format!("writer-{i}")))?;
            // Allocated and durable first, so each timed write changes data, not the size.
            file.write_all_at(&BLOCK, 0)?;
            file.sync_all()?;
            Ok(file)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let write = |file: &std::fs::File| -> std::io::Result<()> {
        file.write_all_at(&BLOCK, 0)?;
        file.sync_data()
    };
    let mut single = Vec::with_capacity(repeats);
    let mut burst = Vec::with_capacity(repeats);
    for _ in 0..repeats.max(1) {
        let started = Instant::now();
        write(&files[0])?;
        single.push(started.elapsed().as_secs_f64() * 1e3);
        let barrier = Barrier::new(files.len());
        // Each writer's (start, durable) instants, timed from its release by the barrier.
        let spans = std::thread::scope(|s| {
            let handles: Vec<_> = files
                .iter()
                .map(|file| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        let started = Instant::now();
                        write(file).map(|()| (started, Instant::now()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(std::io::Error::other("fsync probe thread panicked"))
                    })
                })
                .collect::<std::io::Result<Vec<_>>>()
        })?;
        let first = spans.iter().map(|(started, _)| *started).min();
        let last = spans.iter().map(|(_, durable)| *durable).max();
        if let (Some(first), Some(last)) = (first, last) {
            burst.push(last.duration_since(first).as_secs_f64() * 1e3);
        }
    }
    single.sort_by(f64::total_cmp);
    burst.sort_by(f64::total_cmp);
    Ok((percentile(&single, 50.0), percentile(&burst, 50.0)))
}

/// Refuses a chain bench asked for no commitments or empty tx lists.
pub(crate) fn check_chain_args(
    bench: &'static str,
    commitments: usize,
    txlist_bytes: usize,
) -> Result<(), ToolError> {
    if commitments == 0 || txlist_bytes == 0 {
        return Err(ToolError::config(
            bench,
            "commitments and txlist-bytes must be positive",
        ));
    }
    Ok(())
}

/// Each commitment's signing digest and signature: the input of a bare ecrecover.
pub(crate) fn recover_inputs(
    chain: &ChainSpec,
    blocks: &[GeneratedBlock],
) -> Vec<(B256, [u8; 65])> {
    blocks
        .iter()
        .map(|b| {
            (
                signing_hash(&chain.domain, &b.commitment.commitment),
                b.commitment.signature.0,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_sig_keeps_small_figures() {
        assert_eq!(round_sig(0.000_123_456, 3), 0.000_123);
        assert_eq!(round_sig(123_456.0, 3), 123_000.0);
        assert_eq!(round_sig(0.0, 3), 0.0);
    }

    #[test]
    fn threads_cpu_s_counts_the_named_threads_only() {
        let before = threads_cpu_s("cpu-probe");
        // Spins until the kernel has charged it 0.15 s of CPU (however loaded the machine;
        // bounded by a 60 s wall clock), measured while the thread is still alive.
        let probe = std::thread::Builder::new()
            .name("cpu-probe".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                let mut x = 0u64;
                loop {
                    let used = threads_cpu_s("cpu-probe") - before;
                    if used >= 0.15 || started.elapsed() > Duration::from_secs(60) {
                        return used;
                    }
                    let chunk = std::time::Instant::now();
                    while chunk.elapsed() < Duration::from_millis(20) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
            })
            .expect("spawn");
        let used = probe.join().expect("probe");
        assert!((0.15..=60.0).contains(&used), "used {used} s");
        assert_eq!(threads_cpu_s("no-such-thread"), 0.0);
    }

    #[test]
    fn median_sorts_then_takes_the_middle_rank() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.0);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn process_cpu_s_counts_every_threads_cpu() {
        let before = process_cpu_s();
        // Another thread spins until the kernel has charged it 0.1 s (bounded by 60 s of wall
        // clock); the process's figure must have grown by at least that much.
        // (A thread's name in /proc is its first 15 bytes: this one fits.)
        let spun = std::thread::Builder::new()
            .name("rusage-probe".into())
            .spawn(|| {
                let started = std::time::Instant::now();
                let mut x = 0u64;
                loop {
                    let used = threads_cpu_s("rusage-probe");
                    if used >= 0.1 || started.elapsed() > Duration::from_secs(60) {
                        return used;
                    }
                    let chunk = std::time::Instant::now();
                    while chunk.elapsed() < Duration::from_millis(20) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
            })
            .expect("spawn")
            .join()
            .expect("probe");
        let grown = process_cpu_s() - before;
        assert!(spun >= 0.1, "the probe spun {spun} s");
        // `threads_cpu_s` counts whole clock ticks (10 ms).
        assert!(
            grown >= spun - 0.01,
            "process grew {grown} s, the probe alone {spun} s"
        );
    }

    #[test]
    fn the_burst_probe_times_real_writes_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (single, burst) = fsync_burst(dir.path(), 4, 3).expect("probe");
        assert!(single > 0.0 && burst > 0.0, "{single} {burst}");
        let left = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(left, 0, "the probe's files are removed");
    }
}
