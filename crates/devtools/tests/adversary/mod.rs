//! The adversary harness of [`preconf_devtools::testing::adversary`], plus what the attack and
//! fault tests share: the chain they run on, one-at-a-time runs, honest traffic during an
//! attack, and what must live in the test binary itself: its global allocator, which counts the
//! bytes allocated (`cap`, no limit set), and [`RssSampler`], which reads it.
//!
//! RSS alone cannot see a zeroed allocation that is never touched (calloc'd pages are not
//! resident), so a node that honoured a 4 GiB length prefix with `vec![0; n]` would pass an RSS
//! check; it cannot pass the allocation check.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use p2p::testkit::ChainBuilder;
use p2p::SdkEvents;
pub use preconf_devtools::testing::adversary::*;
use preconfirmation_types::{ChainSpec, U256};

/// A count an attack task adds to and the scenario reads after it, for its `volume` line.
#[derive(Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// A `volume` line for [`RssSampler::close_scenario`]: the count at closing, then `what`.
    pub fn volume<'a>(&'a self, what: &'a str) -> impl FnOnce() -> String + 'a {
        move || format!("{} {what}", self.get())
    }
}

/// A chain with 3 preconfers rotating every 4 one-second slots, 2000 slots of history so tests
/// can publish far ahead of real time without hitting the future-drift rule.
pub fn builder() -> ChainBuilder {
    ChainBuilder::in_the_past(preconf_devtools::testing::chain(), 3, 4, 2000)
}

/// The test chain.
pub fn chain() -> ChainSpec {
    preconf_devtools::testing::chain()
}

/// Attack and fault tests run one at a time: each gets the machine (2 cores in CI) to itself,
/// so its RSS and latency figures are its own.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The start of an attack scenario: the machine to itself ([`serial`]), the RSS sampler
/// running, and `n` honest nodes on [`builder`]'s chain, each config adjusted by `tweak`.
pub async fn start_scenario(
    n: usize,
    tweak: impl Fn(usize, &mut preconf_node_core::NodeConfig),
) -> (tokio::sync::MutexGuard<'static, ()>, RssSampler, Honest) {
    let (serial, rss) = serial_rss().await;
    (serial, rss, Honest::start(n, builder(), tweak).await)
}

/// The one-at-a-time lock, then an RSS sampler started once it is held.
pub async fn serial_rss() -> (tokio::sync::MutexGuard<'static, ()>, RssSampler) {
    let serial = serial().await;
    (serial, RssSampler::start())
}

/// Publishes honest blocks from node 0 (each waited for on every honest node, latency
/// recorded) until `done` resolves; returns its output and the latencies.
pub async fn honest_traffic_until<T: Send + 'static>(
    honest: &mut Honest,
    done: tokio::task::JoinHandle<T>,
) -> (T, Vec<Duration>) {
    let mut latencies = Vec::new();
    // At least one honest commitment during the attack, whatever happens.
    latencies.push(honest.publish().await);
    while !done.is_finished() {
        latencies.push(honest.publish().await);
        // Pacing of the honest publisher (one block per 200 ms), not synchronisation.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    (done.await.expect("join"), latencies)
}

/// Spawns a wait for `attacker`'s ban on `events`, timed from now.
pub fn ban_watch(
    mut events: SdkEvents,
    attacker: libp2p::PeerId,
) -> tokio::task::JoinHandle<Duration> {
    let since = Instant::now();
    tokio::spawn(async move { wait_banned(&mut events, attacker, since).await })
}

/// The victim is alive: it answers an honest peer's `get_head` with its head.
pub async fn assert_serves_head(honest: &Honest, victim: usize, asker: usize) {
    let victim_id = honest.node(victim).sdk().local_peer_id();
    let head = tokio::time::timeout(
        preconf_devtools::testing::WAIT,
        honest.node(asker).sdk().request_head(victim_id),
    )
    .await
    .expect("get_head answered within the bound")
    .expect("get_head answered");
    assert_eq!(
        head.block_number,
        U256::from(honest.node(victim).sdk().status().head_block_number)
    );
}

/// Publishes honest blocks until `banned` resolves, then waits until `attacker` is gone from
/// `victim` and stops `attack`; returns the time to ban and the honest latencies.
pub async fn traffic_until_banned(
    honest: &mut Honest,
    banned: tokio::task::JoinHandle<Duration>,
    attacker: &RawPeer,
    victim: libp2p::PeerId,
    attack: tokio::task::JoinHandle<()>,
) -> (Duration, Vec<Duration>) {
    let (time_to_ban, latencies) = honest_traffic_until(honest, banned).await;
    attacker.wait_disconnected(victim).await;
    attack.abort();
    (time_to_ban, latencies)
}

/// The victim's (node 1's) peer id, a raw attacker connected to it, and a watch for the
/// attacker's ban timed from now.
pub async fn raw_attacker(
    honest: &Honest,
) -> (
    libp2p::PeerId,
    Arc<RawPeer>,
    tokio::task::JoinHandle<Duration>,
) {
    let victim = honest.node(1).sdk().local_peer_id();
    let x = Arc::new(RawPeer::spawn(chain().chain_id));
    x.connect(honest.node(1)).await;
    let banned = ban_watch(honest.node(1).sdk().subscribe(), x.peer_id);
    (victim, x, banned)
}

/// `attacker` is no longer among node `victim`'s peers.
pub async fn assert_attacker_gone(honest: &Honest, victim: usize, attacker: libp2p::PeerId) {
    assert!(
        honest
            .node(victim)
            .sdk()
            .peers()
            .await
            .expect("peers")
            .iter()
            .all(|p| p.peer_id != attacker),
        "the attacker is gone"
    );
}

/// Samples this process's resident set every 20 ms on a thread until dropped.
pub struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    peak_allocated: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The test binary's allocator: the system allocator, counting the bytes allocated (`cap`,
/// no limit set). Zeroed allocations stay zeroed by the system (untouched, not resident).
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Bytes this test process has allocated right now (touched or not).
pub fn allocated_bytes() -> u64 {
    ALLOCATOR.allocated() as u64
}

/// This process's `VmRSS` in KiB.
pub fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

impl RssSampler {
    pub fn start() -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(rss_kib()));
        let peak_allocated = Arc::new(AtomicU64::new(ALLOCATOR.allocated() as u64));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, allocated, stop) = (peak_kib.clone(), peak_allocated.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss_kib(), Ordering::Relaxed);
                    allocated.fetch_max(ALLOCATOR.allocated() as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler {
            peak_kib,
            peak_allocated,
            stop,
            thread: Some(thread),
        }
    }

    /// Peak so far in MiB.
    pub fn peak_mib(&self) -> u64 {
        self.peak_kib.load(Ordering::Relaxed) / 1024
    }

    /// Peak bytes allocated (touched or not) as sampled since the sampler started, in MiB.
    pub fn peak_allocated_mib(&self) -> u64 {
        self.peak_allocated
            .load(Ordering::Relaxed)
            .max(ALLOCATOR.allocated() as u64)
            >> 20
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

/// RSS cap of a test process running honest nodes and attackers: generous, but far below what
/// honouring one 4 GiB prefix or buffering 100 000 commitments unboundedly would take.
pub const RSS_CAP_MIB: u64 = 1024;

impl RssSampler {
    /// The closing checks every attack scenario shares: node 1 (the victim) still answers
    /// node 2's `get_head` and no acknowledged commitment is lost; then the `RELIABILITY` line
    /// (its `volume` built once the checks passed, the peaks checked by [`Self::report`]) and
    /// the honest nodes' shutdown.
    pub async fn close_scenario(
        &self,
        honest: Honest,
        family: &str,
        time_to_ban: impl Into<Option<Duration>>,
        latencies: &[Duration],
        volume: impl FnOnce() -> String,
    ) {
        assert_serves_head(&honest, 1, 2).await;
        let lost = honest.assert_nothing_lost().await;
        self.report(family, &volume(), time_to_ban.into(), latencies, lost);
        honest.shutdown().await;
    }

    /// Prints the measurement line RELIABILITY.md is built from, after checking the peaks
    /// against [`RSS_CAP_MIB`].
    pub fn report(
        &self,
        family: &str,
        volume: &str,
        ban: Option<Duration>,
        honest: &[Duration],
        lost: usize,
    ) {
        let rss = self;
        let peak = rss.peak_mib();
        assert!(peak < RSS_CAP_MIB, "{family}: RSS {peak} MiB over the cap");
        let allocated = rss.peak_allocated_mib();
        assert!(
            allocated < RSS_CAP_MIB,
            "{family}: {allocated} MiB allocated at the peak, over the cap (resident or not)"
        );
        let max = honest.iter().max().copied().unwrap_or_default();
        let mean = if honest.is_empty() {
            Duration::ZERO
        } else {
            honest.iter().sum::<Duration>() / honest.len() as u32
        };
        println!(
            "RELIABILITY family={family} volume=\"{volume}\" time_to_ban={} peak_rss_mib={peak} \
             honest_latency_ms_mean={} honest_latency_ms_max={} honest_samples={} \
             lost_commitments_and_txlists={lost} peak_allocated_mib={allocated}",
            ban.map_or_else(|| "n/a".into(), |d| format!("{:.1}s", d.as_secs_f64())),
            mean.as_millis(),
            max.as_millis(),
            honest.len(),
        );
    }
}
