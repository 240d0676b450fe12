//! The run's figures from what was observed: each (block, node) sample's latency, its hops
//! and its floor ([`hops`](super::hops)), the publisher's bytes, and their percentiles overall
//! and per uplink class.

use std::collections::HashMap;

use preconfirmation_types::SIGNED_COMMITMENT_SSZ_LEN;

use super::hops::{floor_ms, Deliveries};
use super::report::{percentile, round2, ClassReport};
use super::watch::Observations;
use super::Published;

/// What the figures are computed from.
pub(super) struct Run<'a> {
    /// Bytes of each tx list.
    pub(super) txlist_bytes: usize,
    /// Every node's uplink, Mbit/s.
    pub(super) rates: &'a [u32],
    pub(super) published: &'a [Published],
    pub(super) observations: &'a Observations,
    pub(super) deliveries: &'a Deliveries,
    /// Peer id → node index.
    pub(super) node_of: &'a HashMap<String, usize>,
    /// Left out of the samples: it catches up rather than receives gossip.
    pub(super) late_index: Option<usize>,
}

/// The latency figures, their floors and the publisher's bytes.
#[derive(Debug, Default)]
pub(super) struct Figures {
    pub(super) commitment_p50_ms: f64,
    pub(super) commitment_p99_ms: f64,
    pub(super) commitment_floor_ms: f64,
    pub(super) txlist_p50_ms: f64,
    pub(super) txlist_p99_ms: f64,
    pub(super) txlist_floor_ms: f64,
    pub(super) txlist_p99_over_floor: f64,
    pub(super) txlist_depth_p50: u32,
    pub(super) txlist_depth_p99: u32,
    pub(super) txlist_depth_max: u32,
    pub(super) commitment_depth_p99: u32,
    pub(super) depth_unknown: usize,
    pub(super) publisher_bytes_per_txlist: u64,
    pub(super) publisher_copies: f64,
    pub(super) publisher_payload_copies: f64,
    pub(super) classes: Vec<ClassReport>,
}

/// Latencies of one kind of message and the floors of those of known depth.
#[derive(Debug, Default)]
struct Samples {
    ms: Vec<f64>,
    floor_ms: Vec<f64>,
}

impl Samples {
    fn p99(&mut self) -> (f64, f64) {
        (
            percentile(&mut self.ms, 0.99),
            percentile(&mut self.floor_ms, 0.99),
        )
    }
}

/// The upper median of `values` (0 when empty).
fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// Computes the figures of `run`.
pub(super) fn figures(run: &Run<'_>) -> Figures {
    let size = run.txlist_bytes as f64;
    let publisher_bytes = median(run.published.iter().map(|p| p.sent().0).collect());
    let payload_bytes = median(run.published.iter().map(|p| p.sent().1).collect());
    let copies = publisher_bytes as f64 / size;
    let fastest = run.rates.iter().copied().max().unwrap_or(1);
    let obs = run.observations;
    let mut commitments = Samples::default();
    let mut txlists = Samples::default();
    let mut per_class: HashMap<u32, (Samples, Samples)> = HashMap::new();
    let (mut txlist_depths, mut commitment_depths) = (Vec::new(), Vec::new());
    let mut depth_unknown = 0;
    for p in run.published {
        let receivers: Vec<usize> = p
            .present
            .iter()
            .copied()
            .filter(|&n| n != p.publisher && Some(n) != run.late_index)
            .collect();
        let depth = |id: &str, node| run.deliveries.depth(id, p.publisher, node, run.node_of);
        // The commitment's copies from the publisher: the nodes whose first copy came from
        // it (a lower bound of what it sent, so the floor stays one).
        let first_hop = receivers
            .iter()
            .filter(|&&n| depth(&p.commitment_id, n) == Some(1))
            .count()
            .max(1);
        let publisher_mbit = run.rates[p.publisher];
        for &node in &receivers {
            let class = per_class.entry(run.rates[node]).or_default();
            if let Some(t) = obs.commitment_at(&p.hash, node) {
                let ms = t.saturating_duration_since(p.at).as_secs_f64() * 1e3;
                commitments.ms.push(ms);
                class.1.ms.push(ms);
            }
            if let Some(t) = obs.txlist_at(&p.txlist_hash, node) {
                let ms = t.saturating_duration_since(p.at).as_secs_f64() * 1e3;
                txlists.ms.push(ms);
                class.0.ms.push(ms);
            }
            match depth(&p.commitment_id, node) {
                Some(d) => {
                    let floor = floor_ms(
                        first_hop as f64,
                        SIGNED_COMMITMENT_SSZ_LEN,
                        publisher_mbit,
                        d,
                        fastest,
                    );
                    commitments.floor_ms.push(floor);
                    class.1.floor_ms.push(floor);
                    commitment_depths.push(f64::from(d));
                }
                None => depth_unknown += 1,
            }
            match depth(&p.txlist_id, node) {
                Some(d) => {
                    let floor = floor_ms(copies, run.txlist_bytes, publisher_mbit, d, fastest);
                    txlists.floor_ms.push(floor);
                    class.0.floor_ms.push(floor);
                    txlist_depths.push(f64::from(d));
                }
                None => depth_unknown += 1,
            }
        }
    }
    let mut classes: Vec<ClassReport> = per_class
        .into_iter()
        .map(|(mbit, (mut t, mut c))| {
            let (txlist_p99_ms, txlist_floor_ms) = t.p99();
            let (commitment_p99_ms, commitment_floor_ms) = c.p99();
            ClassReport {
                mbit,
                nodes: run.rates.iter().filter(|&&r| r == mbit).count(),
                txlist_p99_ms,
                txlist_floor_ms,
                commitment_p99_ms,
                commitment_floor_ms,
            }
        })
        .collect();
    classes.sort_by_key(|c| c.mbit);
    let (commitment_p99_ms, commitment_floor_ms) = commitments.p99();
    let (txlist_p99_ms, txlist_floor_ms) = txlists.p99();
    let depth_at = |depths: &mut Vec<f64>, p: f64| percentile(depths, p) as u32;
    Figures {
        commitment_p50_ms: percentile(&mut commitments.ms, 0.5),
        commitment_p99_ms,
        commitment_floor_ms,
        txlist_p50_ms: percentile(&mut txlists.ms, 0.5),
        txlist_p99_ms,
        txlist_floor_ms,
        txlist_p99_over_floor: if txlist_floor_ms > 0.0 {
            round2(txlist_p99_ms / txlist_floor_ms)
        } else {
            0.0
        },
        txlist_depth_p50: depth_at(&mut txlist_depths, 0.5),
        txlist_depth_p99: depth_at(&mut txlist_depths, 0.99),
        txlist_depth_max: depth_at(&mut txlist_depths, 1.0),
        commitment_depth_p99: depth_at(&mut commitment_depths, 0.99),
        depth_unknown,
        publisher_bytes_per_txlist: publisher_bytes,
        publisher_copies: round2(copies),
        publisher_payload_copies: round2(payload_bytes as f64 / size),
        classes,
    }
}
