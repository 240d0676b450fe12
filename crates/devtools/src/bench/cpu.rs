//! Per-thread CPU accounting for the benches: this process's CPU time, thread by thread, read
//! from `/proc/self/task/<tid>/` and summed by thread name, so a bench can say where its CPU
//! went (the network thread, the SDK's runtime, the durable writer) without a profiler.
//!
//! A thread's CPU time is its scheduler's run time in nanoseconds (first field of `schedstat`,
//! exact), or, on a kernel without `schedstat`, its user + system clock ticks of `stat`
//! (fields 14 and 15, whole ticks of [`CLOCK_TICKS_PER_S`]). A thread is known by its `comm`,
//! the first 15 bytes of its name. Two snapshots give each thread's time in between; a thread
//! that ended in between is missing from the later one and its time is lost, so the benches
//! keep the threads they measure alive across their windows and report, beside the groups,
//! the process's own total (`getrusage`, which counts ended threads too).

use std::collections::HashMap;

use super::util::{process_cpu_s, CLOCK_TICKS_PER_S};

/// A group of threads, by name: a thread belongs to it when its name is one of `names` or
/// starts with one of them followed by `-` (`p2p-rayon` holds `p2p-rayon-3`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadGroup {
    /// The group's key in the bench's JSON.
    pub key: &'static str,
    /// The thread names (or name prefixes before a `-`) that make it up.
    pub names: &'static [&'static str],
}

impl ThreadGroup {
    /// Whether a thread named `comm` belongs to the group.
    pub(crate) fn holds(&self, comm: &str) -> bool {
        self.names.iter().any(|name| {
            comm == *name
                || comm
                    .strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('-'))
        })
    }
}

/// The CPU time of every live thread of this process at one moment, and the process's total.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuSnapshot {
    /// Thread id → (name, CPU nanoseconds so far).
    threads: HashMap<u32, (String, u64)>,
    /// The whole process's CPU nanoseconds so far, ended threads included.
    process_ns: u64,
}

impl CpuSnapshot {
    /// Reads every thread of this process now (empty where `/proc` is unreadable).
    pub(crate) fn take() -> Self {
        let mut threads = HashMap::new();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                    continue;
                };
                let dir = task.path();
                let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
                    continue;
                };
                let ns = std::fs::read_to_string(dir.join("schedstat"))
                    .ok()
                    .and_then(|s| parse_schedstat_ns(&s))
                    .or_else(|| {
                        std::fs::read_to_string(dir.join("stat"))
                            .ok()
                            .and_then(|s| parse_stat_ticks(&s))
                            .map(ticks_to_ns)
                    });
                if let Some(ns) = ns {
                    threads.insert(tid, (comm.trim_end().to_string(), ns));
                }
            }
        }
        Self {
            threads,
            process_ns: (process_cpu_s() * 1e9) as u64,
        }
    }

    /// What each thread used between `earlier` and this snapshot, and the process's total. A
    /// thread born in between counts from zero; a thread id whose name changed is a new
    /// thread (ids are reused).
    pub(crate) fn since(&self, earlier: &CpuSnapshot) -> CpuDelta {
        let threads = self
            .threads
            .iter()
            .map(|(tid, (name, ns))| {
                let before = match earlier.threads.get(tid) {
                    Some((old_name, old_ns)) if old_name == name && old_ns <= ns => *old_ns,
                    _ => 0,
                };
                (name.clone(), ns - before)
            })
            .collect();
        CpuDelta {
            threads,
            process_ns: self.process_ns.saturating_sub(earlier.process_ns),
        }
    }
}

/// CPU time used between two snapshots: each live thread's, and the process's total.
#[derive(Debug, Clone, Default)]
pub(crate) struct CpuDelta {
    /// (thread name, CPU nanoseconds) of every thread alive at the later snapshot.
    threads: Vec<(String, u64)>,
    /// The process's total, ended threads included.
    process_ns: u64,
}

impl CpuDelta {
    /// CPU seconds of the threads `group` holds.
    pub(crate) fn group_s(&self, group: &ThreadGroup) -> f64 {
        let ns: u64 = self
            .threads
            .iter()
            .filter(|(name, _)| group.holds(name))
            .map(|(_, ns)| *ns)
            .sum();
        ns as f64 * 1e-9
    }

    /// CPU seconds of the whole process (every thread, ended ones included).
    pub(crate) fn process_s(&self) -> f64 {
        self.process_ns as f64 * 1e-9
    }
}

/// The run time in nanoseconds from a `schedstat` line (`<run ns> <wait ns> <slices>`).
fn parse_schedstat_ns(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// User + system clock ticks from a `stat` line. Field 2 (the name, in parentheses) may hold
/// spaces and parentheses: fields are counted from after the last `)`, where field 3 starts,
/// so fields 14 and 15 are the 12th and 13th there.
fn parse_stat_ticks(text: &str) -> Option<u64> {
    let (_, rest) = text.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_to_ns(ticks: u64) -> u64 {
    (ticks as f64 * 1e9 / CLOCK_TICKS_PER_S) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn schedstat_gives_the_run_time() {
        assert_eq!(parse_schedstat_ns("123456789 4118 2\n"), Some(123_456_789));
        assert_eq!(parse_schedstat_ns(""), None);
        assert_eq!(parse_schedstat_ns("x 1 2"), None);
    }

    #[test]
    fn stat_gives_user_plus_system_ticks_whatever_the_name_holds() {
        // Fields 14 (utime) 7 and 15 (stime) 5; the name holds a space and a ')'.
        let line = "4242 (a b) c) S 1 2 3 4 5 6 7 8 9 10 7 5 0 0 20 0 1 0 100 0 0\n";
        assert_eq!(parse_stat_ticks(line), Some(12));
        assert_eq!(parse_stat_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_ticks("no parenthesis"), None);
    }

    #[test]
    fn a_group_holds_its_names_and_their_numbered_threads_only() {
        let group = ThreadGroup {
            key: "sdk",
            names: &["p2p-sdk", "p2p-rayon"],
        };
        for held in ["p2p-sdk", "p2p-rayon-0", "p2p-rayon-12"] {
            assert!(group.holds(held), "{held}");
        }
        for other in ["p2p-sdkx", "p2p-net", "p2p-rayon0", "tokio-runtime-w"] {
            assert!(!group.holds(other), "{other}");
        }
    }

    #[test]
    fn a_delta_counts_new_threads_from_zero_and_renamed_ids_as_new() {
        let snapshot = |threads: &[(u32, &str, u64)], process_ns| CpuSnapshot {
            threads: threads
                .iter()
                .map(|(tid, name, ns)| (*tid, (name.to_string(), *ns)))
                .collect(),
            process_ns,
        };
        let before = snapshot(
            &[(1, "p2p-net", 100), (2, "p2p-sdk", 50), (3, "gone", 9)],
            200,
        );
        let after = snapshot(
            &[(1, "p2p-net", 160), (2, "reused", 20), (4, "p2p-net", 30)],
            400,
        );
        let delta = after.since(&before);
        let net = ThreadGroup {
            key: "net",
            names: &["p2p-net"],
        };
        let reused = ThreadGroup {
            key: "reused",
            names: &["reused"],
        };
        assert!((delta.group_s(&net) - 90e-9).abs() < 1e-15);
        assert!((delta.group_s(&reused) - 20e-9).abs() < 1e-15);
        assert!((delta.process_s() - 200e-9).abs() < 1e-15);
    }

    /// A named thread that spins is charged what it spun, to its group; a named thread that
    /// sleeps meanwhile is charged next to nothing.
    #[test]
    fn a_snapshot_charges_a_spinning_thread_to_its_group() {
        let spinner = ThreadGroup {
            key: "spin",
            names: &["cpu-spinner"],
        };
        let idler = ThreadGroup {
            key: "idle",
            names: &["cpu-idler"],
        };
        // Each thread stays alive until told to stop: an ended thread is gone from /proc.
        let start = |name: &str, spin: bool| {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let _ = go_rx.recv_timeout(Duration::from_secs(60));
                    let start = thread_cpu_ns();
                    let wall = Instant::now();
                    let mut x = 0u64;
                    // Spins until its own clock says 50 ms (bounded by 60 s of wall clock).
                    while spin
                        && thread_cpu_ns() - start < 50_000_000
                        && wall.elapsed() < Duration::from_secs(60)
                    {
                        for _ in 0..10_000 {
                            x = std::hint::black_box(x.wrapping_add(1));
                        }
                    }
                    let _ = ready_tx.send(thread_cpu_ns() - start);
                    let _ = stop_rx.recv_timeout(Duration::from_secs(120));
                })
                .expect("spawn");
            (thread, go_tx, ready_rx, stop_tx)
        };
        let spinning = start("cpu-spinner", true);
        let idling = start("cpu-idler", false);
        let before = CpuSnapshot::take();
        let _ = spinning.1.send(());
        let _ = idling.1.send(());
        let spun_ns = spinning
            .2
            .recv_timeout(Duration::from_secs(120))
            .expect("spun");
        idling
            .2
            .recv_timeout(Duration::from_secs(120))
            .expect("idled");
        let delta = CpuSnapshot::take().since(&before);
        for (thread, _, _, stop) in [spinning, idling] {
            let _ = stop.send(());
            thread.join().expect("thread");
        }
        assert!(spun_ns >= 50_000_000, "spun {spun_ns} ns");
        let charged = delta.group_s(&spinner);
        assert!(charged >= 0.05, "charged {charged} s");
        assert!(
            delta.group_s(&idler) < 0.005,
            "the idler is charged its wake-ups only"
        );
        assert!(
            delta.process_s() >= charged,
            "the process counts every thread"
        );
    }

    /// This thread's CPU nanoseconds, from its own `schedstat`.
    fn thread_cpu_ns() -> u64 {
        std::fs::read_to_string("/proc/thread-self/schedstat")
            .ok()
            .and_then(|s| parse_schedstat_ns(&s))
            .unwrap_or(0)
    }
}
