//! What a testbed run reports: the last line's JSON ([`TestbedReport`]) and the table before it.

use serde::Serialize;

use crate::bench::util as bench_util;

/// The last line of `preconf-node testbed`.
#[derive(Debug, Clone, Serialize)]
pub struct TestbedReport {
    /// Node processes.
    pub nodes: usize,
    /// `"50mbit"` or the mix as given.
    pub uplink: String,
    /// Bytes of each tx list.
    pub txlist_bytes: usize,
    /// Blocks published.
    pub blocks: u64,
    /// Publish → a node's acceptance of the commitment, over every (block, node) pair of the
    /// nodes running at publish time, the publisher excluded.
    pub commitment_p50_ms: f64,
    /// See `commitment_p50_ms`.
    pub commitment_p99_ms: f64,
    /// Publish → a node's storing the tx list.
    pub txlist_p50_ms: f64,
    /// See `txlist_p50_ms`.
    pub txlist_p99_ms: f64,
    /// Every commitment and tx list reached every node.
    pub reached_all: bool,
    /// When not: up to 10 of what is missing where (`node N block B: commitment|tx list|both`).
    pub missing: Vec<String>,
    /// Median bytes the publisher's uplink sent in the slot of its block, per tx list.
    pub publisher_bytes_per_txlist: u64,
    /// `publisher_bytes_per_txlist` / `txlist_bytes`.
    pub publisher_copies: f64,
    /// Data-network bytes received by the nodes during publishing / (receivers × bytes
    /// published) − 1: copies of a message a node received beyond the first (framing
    /// included).
    pub duplicates_per_msg: f64,
    /// The late joiner holds every block and tx list (`null` without one).
    pub late_joiner_caught_up: Option<bool>,
    /// Uplink (Mbit/s) of each preconfer's node, in rotation order.
    pub publisher_mbit: Vec<u32>,
    /// Fewest peers of a node when publishing began (no node has static peers: each was
    /// found through discv5 from the bootnode's ENR).
    pub min_peers: usize,
    /// Per uplink class: its nodes' tx-list and commitment p99.
    pub classes: Vec<ClassReport>,
    /// Publishes refused by the node (`pending`: the publisher did not hold the parent yet).
    pub publish_errors: u64,
    /// Every node's ENR (`enr:-…`) at the end, as its `/status` (`preconf_status`) gives
    /// it, in node order: the addresses it advertised.
    pub enrs: Vec<String>,
    /// Wall time of the run.
    pub elapsed_s: f64,
}

/// Figures of the nodes of one uplink rate.
#[derive(Debug, Clone, Serialize)]
pub struct ClassReport {
    /// Uplink, Mbit/s.
    pub mbit: u32,
    /// Nodes of this class.
    pub nodes: usize,
    /// Tx-list p99 at these nodes.
    pub txlist_p99_ms: f64,
    /// Commitment p99 at these nodes.
    pub commitment_p99_ms: f64,
}

/// The nearest-rank `p` quantile (0..1) of `values` in ms, to 0.01; sorts them.
pub(super) fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    round2(bench_util::percentile(values, p * 100.0))
}

pub(super) fn round2(x: f64) -> f64 {
    bench_util::round(x, 2)
}

/// The human-readable summary printed before the JSON line.
pub(super) fn table(r: &TestbedReport) -> String {
    let mut out = format!(
        "testbed: {} processes, uplink {}, {} blocks with {} B tx lists, {:.1} s\n\
         {:<28}{:>10}{:>10}\n\
         {:<28}{:>10.1}{:>10.1}\n\
         {:<28}{:>10.1}{:>10.1}\n",
        r.nodes,
        r.uplink,
        r.blocks,
        r.txlist_bytes,
        r.elapsed_s,
        "",
        "p50 ms",
        "p99 ms",
        "commitment",
        r.commitment_p50_ms,
        r.commitment_p99_ms,
        "tx list",
        r.txlist_p50_ms,
        r.txlist_p99_ms,
    );
    for c in &r.classes {
        out.push_str(&format!(
            "  {:>5} Mbit/s ({:>2} nodes){:>7}{:>10.1}  (tx list p99; commitment p99 {:.1})\n",
            c.mbit, c.nodes, "", c.txlist_p99_ms, c.commitment_p99_ms
        ));
    }
    out.push_str(&format!(
        "reached all: {}   publisher uplink per tx list: {} B ({:.2}×)   duplicates/msg: {:.2}\n\
         late joiner caught up: {}   publish errors: {}   preconfers' uplinks (Mbit/s): {:?}",
        r.reached_all,
        r.publisher_bytes_per_txlist,
        r.publisher_copies,
        r.duplicates_per_msg,
        r.late_joiner_caught_up
            .map_or("n/a".to_string(), |b| b.to_string()),
        r.publish_errors,
        r.publisher_mbit
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&mut v, 0.5), 50.0);
        assert_eq!(percentile(&mut v, 0.99), 99.0);
        assert_eq!(percentile(&mut [], 0.99), 0.0);
    }
}
