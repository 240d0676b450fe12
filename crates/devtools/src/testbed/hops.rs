//! How many hops each gossip message travelled to each node, and the physical floor of a
//! delivery that follows from it.
//!
//! Every testbed node logs JSON lines with [`DELIVERY_LOG_TARGET`] at DEBUG: one line per
//! message it got first from gossip, naming the peer it came from. With each node's peer id
//! these lines give every message's delivery tree, and a node's depth in it is the number of
//! hops the message took to reach it (1: straight from the publisher). A node that got a
//! message another way (a request, catch-up) has no line for it and no depth.
//!
//! The floor of one delivery is what the links alone impose, with no CPU and no queueing
//! beyond the publisher's own copies ([`floor_ms`]): the publisher's uplink must carry all its
//! copies (they go out together, so the first hop ends when the last copy does), then every
//! further hop carries one more copy.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub(super) use preconfirmation_net::gossip::DELIVERY_LOG_TARGET;
use serde_json::Value;

/// Longest path followed through a delivery tree: more than the testbed's nodes means a loop.
const MAX_DEPTH: u32 = 64;

/// Who delivered each message first to each node: message id (lowercase hex) → node index →
/// the sender's peer id.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    by_id: HashMap<String, HashMap<usize, String>>,
}

impl Deliveries {
    /// Reads the delivery lines of every `(node index, log file)`; unreadable files and other
    /// lines are skipped (a node without lines has no depths).
    pub(super) fn read<'a>(logs: impl IntoIterator<Item = (usize, &'a Path)>) -> Self {
        let mut deliveries = Self::default();
        for (node, path) in logs {
            let Ok(file) = std::fs::File::open(path) else {
                continue;
            };
            for line in BufReader::new(file).lines().map_while(Result::ok) {
                if let Some((id, peer)) = parse_line(&line) {
                    deliveries.record(node, id, peer);
                }
            }
        }
        deliveries
    }

    /// Records that `node` got message `id` first from `peer`; a later line for the same pair
    /// does not replace it.
    pub(super) fn record(&mut self, node: usize, id: String, peer: String) {
        self.by_id
            .entry(id.to_ascii_lowercase())
            .or_default()
            .entry(node)
            .or_insert(peer);
    }

    /// The hops message `id` of `publisher` took to `node`: the length of the path from
    /// `node` back to `publisher` through the first senders; `None` when a node on the way got
    /// it other than by gossip, or from a peer that is no node (`node_of` maps peer ids to
    /// nodes), or the path loops.
    pub(super) fn depth(
        &self,
        id: &str,
        publisher: usize,
        node: usize,
        node_of: &HashMap<String, usize>,
    ) -> Option<u32> {
        let senders = self.by_id.get(&id.to_ascii_lowercase())?;
        let mut at = node;
        let mut hops = 0;
        while at != publisher {
            if hops >= MAX_DEPTH {
                return None;
            }
            at = *node_of.get(senders.get(&at)?)?;
            hops += 1;
        }
        Some(hops)
    }
}

/// `(message id, sender peer id)` of one JSON delivery line (`tracing_subscriber`'s JSON
/// format: the event's fields under `fields`); `None` for any other line.
pub(super) fn parse_line(line: &str) -> Option<(String, String)> {
    if !line.contains(DELIVERY_LOG_TARGET) {
        return None;
    }
    let value: Value = serde_json::from_str(line).ok()?;
    if value["target"] != DELIVERY_LOG_TARGET {
        return None;
    }
    let fields = &value["fields"];
    Some((
        fields["id"].as_str()?.to_string(),
        fields["peer"].as_str()?.to_string(),
    ))
}

/// Milliseconds `bytes` take on a link of `mbit` Mbit/s.
pub(super) fn transfer_ms(bytes: f64, mbit: u32) -> f64 {
    bytes * 8.0 / (f64::from(mbit) * 1e3)
}

/// The floor of delivering a message of `size` bytes over `depth` hops: `copies` copies on the
/// publisher's `publisher_mbit` uplink, then one copy per further hop on a `relay_mbit`
/// uplink (the fastest of the network, so this stays a lower bound wherever the path went).
pub(super) fn floor_ms(
    copies: f64,
    size: usize,
    publisher_mbit: u32,
    depth: u32,
    relay_mbit: u32,
) -> f64 {
    let size = size as f64;
    transfer_ms(copies * size, publisher_mbit)
        + f64::from(depth.saturating_sub(1)) * transfer_ms(size, relay_mbit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(target: &str, id: &str, peer: &str) -> String {
        serde_json::json!({
            "timestamp": "2026-12-07T10:00:00.000000Z",
            "level": "DEBUG",
            "fields": {"message": "gossip received first", "topic": "raw_txlists", "id": id, "peer": peer},
            "target": target,
        })
        .to_string()
    }

    #[test]
    fn delivery_lines_are_read_and_other_lines_skipped() {
        assert_eq!(
            parse_line(&line(DELIVERY_LOG_TARGET, "AB01", "16Uiu2Hpeer")),
            Some(("AB01".into(), "16Uiu2Hpeer".into()))
        );
        assert_eq!(parse_line(&line("p2p::core", "ab01", "x")), None);
        assert_eq!(
            parse_line("2026-12-07 INFO preconf_net::delivery: not json"),
            None
        );
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn depth_follows_the_first_senders_back_to_the_publisher() {
        // Publisher 0 → 1 → 2 → 3; 4 got it from a peer that is no node; 5 has no line; 6
        // and 7 name each other.
        let node_of: HashMap<String, usize> = (0..8).map(|i| (format!("peer{i}"), i)).collect();
        let mut d = Deliveries::default();
        for (node, from) in [(1, "peer0"), (2, "peer1"), (3, "peer2"), (4, "stranger")] {
            d.record(node, "AA".into(), from.into());
        }
        d.record(6, "aa".into(), "peer7".into());
        d.record(7, "aa".into(), "peer6".into());
        // A second line for node 1 keeps the first sender.
        d.record(1, "aa".into(), "peer3".into());
        let depth = |node| d.depth("aa", 0, node, &node_of);
        assert_eq!(depth(0), Some(0));
        assert_eq!(depth(1), Some(1));
        assert_eq!(depth(3), Some(3));
        assert_eq!(depth(4), None, "sender is no node");
        assert_eq!(depth(5), None, "no line");
        assert_eq!(depth(6), None, "a loop ends");
        assert_eq!(d.depth("bb", 0, 3, &node_of), None, "unknown message");
    }

    #[test]
    fn the_floor_is_the_publisher_copies_then_one_copy_per_further_hop() {
        // 1 MiB at 50 Mbit/s: 167.77 ms a copy.
        let copy = transfer_ms(1_048_576.0, 50);
        assert!((copy - 167.772_16).abs() < 1e-6, "{copy}");
        assert!((floor_ms(3.0, 1 << 20, 50, 1, 50) - 3.0 * copy).abs() < 1e-6);
        assert!((floor_ms(3.0, 1 << 20, 50, 3, 50) - 5.0 * copy).abs() < 1e-6);
        // Further hops at the fastest uplink.
        let fast = floor_ms(3.0, 1 << 20, 50, 3, 1000);
        assert!(
            (fast - (3.0 * copy + 2.0 * copy / 20.0)).abs() < 1e-6,
            "{fast}"
        );
        assert!((floor_ms(3.0, 1 << 20, 50, 0, 50) - 3.0 * copy).abs() < 1e-6);
    }
}
