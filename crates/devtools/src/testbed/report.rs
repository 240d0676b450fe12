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
    /// The floor beside `commitment_p99_ms`: the same percentile of each delivery's floor
    /// (`txlist_floor_ms`, for a commitment of `SIGNED_COMMITMENT_SSZ_LEN` bytes, its publisher
    /// copies counted as the nodes that got their first copy from it).
    pub commitment_floor_ms: f64,
    /// Publish → a node's storing the tx list.
    pub txlist_p50_ms: f64,
    /// See `txlist_p50_ms`.
    pub txlist_p99_ms: f64,
    /// The floor beside `txlist_p99_ms`: the same percentile, over the (block, node) samples
    /// of known depth, of each one's floor = `publisher_copies` × `txlist_bytes` ÷ the
    /// publisher's uplink + (its depth − 1) × `txlist_bytes` ÷ the fastest uplink: what the
    /// links alone impose.
    pub txlist_floor_ms: f64,
    /// `txlist_p99_ms` / `txlist_floor_ms`.
    pub txlist_p99_over_floor: f64,
    /// Hops a tx list took to the nodes (delivery depth, 1 = straight from the publisher):
    /// each node's path back to the publisher through the peer it got the list from first,
    /// read from the nodes' own delivery log lines. Median over the samples of known depth.
    pub txlist_depth_p50: u32,
    /// See `txlist_depth_p50`; the 99th percentile.
    pub txlist_depth_p99: u32,
    /// See `txlist_depth_p50`; the deepest.
    pub txlist_depth_max: u32,
    /// Hops a commitment took (as `txlist_depth_p50`), 99th percentile.
    pub commitment_depth_p99: u32,
    /// (block, node) samples of either topic whose depth is unknown: the node got it other
    /// than by gossip, or from a node that did.
    pub depth_unknown: usize,
    /// Every commitment and tx list reached every node.
    pub reached_all: bool,
    /// When not: up to 10 of what is missing where (`node N block B: commitment|tx list|both`).
    pub missing: Vec<String>,
    /// Median bytes the publisher's uplink sent in the slot of its block, per tx list: the
    /// `eth0` transmit counter of its namespace (`/proc/<pid>/net/dev`) from just before the
    /// publish to the next block's publish, whole frames (Ethernet, IP and TCP headers, TCP
    /// acknowledgements, the commitment and gossip control included).
    pub publisher_bytes_per_txlist: u64,
    /// `publisher_bytes_per_txlist` / `txlist_bytes`: the copies of its tx list the
    /// publisher's link carried, on the wire.
    pub publisher_copies: f64,
    /// The same, TCP payload only: the slot's transmitted bytes less
    /// [`FRAME_HEADER_BYTES`](super::FRAME_HEADER_BYTES) per packet sent, / `txlist_bytes`
    /// (median over blocks).
    pub publisher_payload_copies: f64,
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
    /// Its floor (as `TestbedReport::txlist_floor_ms`, over these nodes' samples).
    pub txlist_floor_ms: f64,
    /// Commitment p99 at these nodes.
    pub commitment_p99_ms: f64,
    /// Its floor (as `TestbedReport::commitment_floor_ms`).
    pub commitment_floor_ms: f64,
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
         {:<28}{:>10}{:>10}{:>10}\n\
         {:<28}{:>10.1}{:>10.1}{:>10.1}\n\
         {:<28}{:>10.1}{:>10.1}{:>10.1}\n",
        r.nodes,
        r.uplink,
        r.blocks,
        r.txlist_bytes,
        r.elapsed_s,
        "",
        "p50 ms",
        "p99 ms",
        "floor ms",
        "commitment",
        r.commitment_p50_ms,
        r.commitment_p99_ms,
        r.commitment_floor_ms,
        "tx list",
        r.txlist_p50_ms,
        r.txlist_p99_ms,
        r.txlist_floor_ms,
    );
    for c in &r.classes {
        out.push_str(&format!(
            "  {:>5} Mbit/s ({:>2} nodes){:>7}{:>10.1}{:>10.1}  (tx list; commitment p99 {:.1}, \
             floor {:.1})\n",
            c.mbit,
            c.nodes,
            "",
            c.txlist_p99_ms,
            c.txlist_floor_ms,
            c.commitment_p99_ms,
            c.commitment_floor_ms
        ));
    }
    out.push_str(&format!(
        "tx list p99 / floor: {:.2}   hops (delivery depth): tx list p50 {}, p99 {}, max {}; \
         commitment p99 {}; unknown {}\n",
        r.txlist_p99_over_floor,
        r.txlist_depth_p50,
        r.txlist_depth_p99,
        r.txlist_depth_max,
        r.commitment_depth_p99,
        r.depth_unknown,
    ));
    out.push_str(&format!(
        "reached all: {}   publisher uplink per tx list: {} B ({:.2}× on the wire, {:.2}× TCP \
         payload)   duplicates/msg: {:.2}\n\
         late joiner caught up: {}   publish errors: {}   preconfers' uplinks (Mbit/s): {:?}",
        r.reached_all,
        r.publisher_bytes_per_txlist,
        r.publisher_copies,
        r.publisher_payload_copies,
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
