//! Gossipsub mesh parameters (§7) and the frame caps derived from the largest valid payload
//! (§2, §3).

use std::time::Duration;

use preconfirmation_types::{
    MAX_TXLIST_BYTES, RAW_TXLIST_FIXED_PART_LEN, SIGNED_COMMITMENT_SSZ_LEN,
};
use serde::{Deserialize, Serialize};

use super::duration;

/// Room for gossipsub's protobuf framing around one published payload (§2, §7), added to the
/// largest valid payload to make the frame caps. One message on the wire is a length-prefixed
/// `RPC { publish: [Message { from, data, seqno, topic, signature, key }] }`; its overhead is
/// at most ≈ 300 bytes: `from` (a peer id, ≤ 2 + 42), `seqno` (2 + 8), `topic` (2 + the topic
/// string, ≤ 2 + 70 for a 20-digit chain id), `signature` (≤ 2 + 72, secp256k1 DER), `key`
/// (≤ 2 + 37, or none when inlined in an ed25519 peer id), the `data` and `publish` field
/// prefixes (≤ 2 × 6) and the frame's varint length (≤ 5). 1 KiB leaves room for the odd
/// subscription an implementation piggybacks on the same RPC, and no more.
pub const GOSSIP_FRAMING_ALLOWANCE: usize = 1024;

/// The largest valid gossip payload of the protocol (§2, §3): a `RawTxListGossip` of
/// `MAX_TXLIST_BYTES` (2 MiB) plus its 36-byte SSZ fixed part; a `SignedCommitment` is only
/// `SIGNED_COMMITMENT_SSZ_LEN` (382) bytes.
pub const MAX_GOSSIP_PAYLOAD_BYTES: usize = {
    let txlist = RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES;
    if txlist > SIGNED_COMMITMENT_SSZ_LEN {
        txlist
    } else {
        SIGNED_COMMITMENT_SSZ_LEN
    }
};

/// Default [`GossipConfig::max_transmit_size`]: [`MAX_GOSSIP_PAYLOAD_BYTES`] +
/// [`GOSSIP_FRAMING_ALLOWANCE`] = 2 098 212 bytes (≈ 2 MiB + 1 KiB).
pub const DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE: usize =
    MAX_GOSSIP_PAYLOAD_BYTES + GOSSIP_FRAMING_ALLOWANCE;

/// Gossipsub mesh parameters (§7); defaults are the Kona/op-node presets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GossipConfig {
    /// Mesh degree D. Default 8.
    pub mesh_n: usize,
    /// D_lo. Default 6.
    pub mesh_n_low: usize,
    /// D_hi. Default 12.
    pub mesh_n_high: usize,
    /// D_lazy: the fewest non-mesh peers each heartbeat's IHAVE goes to, per topic. Default 1
    /// (gossipsub's is 6).
    ///
    /// Measured in `preconf-node testbed` (BENCHMARKS.md "testbed", 24 nodes, 50 Mbit/s,
    /// 1 MiB tx lists): every IHAVE for a tx list that reaches a node before the mesh copy
    /// does (which takes ≥ 0.5 s to cross three 50 Mbit/s links) is answered by IWANT, and the
    /// publisher sends the whole list again. With 6 (and `gossip_factor` 0.25) a publisher
    /// sent 9.3 copies per tx list, tx-list p99 2.1–2.3 s; with 1 (and `gossip_factor` 0)
    /// 4.2 copies, p99 1.6–1.9 s, and at 64 nodes every node still got every commitment
    /// (the repair IHAVE is for). Gossipsub offers no per-topic setting, so commitments get
    /// the same. A node whose mesh drops a commitment still gets it from one random
    /// non-mesh peer per heartbeat of each node, or by its gap check and catch-up.
    pub gossip_lazy: usize,
    /// Share of the non-mesh peers of a topic each heartbeat's IHAVE goes to, when that is
    /// more than `gossip_lazy`. Default 0 (gossipsub's is 0.25, which with ~18 peers meant
    /// 4–5 IHAVE peers whatever `gossip_lazy` says); between 0 and 1.
    pub gossip_factor: f64,
    /// Heartbeat interval. Default 500 ms.
    #[serde(with = "duration")]
    pub heartbeat_interval: Duration,
    /// Fanout TTL. Default 24 s.
    #[serde(with = "duration")]
    pub fanout_ttl: Duration,
    /// Heartbeats of message history kept. Default 12.
    pub history_length: usize,
    /// Heartbeats of history advertised to non-mesh peers (IHAVE). Default 1.
    ///
    /// Measured in `preconf-node testbed` (BENCHMARKS.md "testbed"). With gossipsub's 3, a
    /// publisher's IHAVE for a 1 MiB tx list reaches its non-mesh peers long before the mesh
    /// copies can cross 50 Mbit/s links, so they all ask (IWANT) and its uplink carries ~12
    /// copies (24 nodes: tx-list p99 5.7 s). With 0 (no IHAVE) that fell to 3 copies and
    /// 1.9 s, but at 64 nodes some nodes then missed commitments their mesh did not bring.
    /// With 1 (IHAVE for the last heartbeat's messages only): 64 nodes all reached,
    /// 24 nodes' 1 MiB tx-list p99 2.3 s with 9 copies from the publisher while IHAVE went to
    /// 6 peers, 1.6–1.9 s with 4.2 copies once it goes to one (`gossip_lazy`).
    pub history_gossip: usize,
    /// Duplicate (seen) cache window (§7 "short duplicate windows"). Default 120 s.
    #[serde(with = "duration")]
    pub duplicate_cache_time: Duration,
    /// Sign published messages and require signatures (`MessageAuthenticity::Signed` +
    /// `ValidationMode::Strict`). The payload itself stays raw SSZ (§2); the signature lives in
    /// the gossipsub envelope. Set false for `Anonymous` (op-node `StrictNoSign`) networks.
    /// Default true.
    pub signed_messages: bool,
    /// Gossipsub's frame cap in bytes: an inbound RPC frame longer than this is refused by the
    /// codec before it is decoded (the stream is dropped), and we never publish a larger one.
    /// Default [`DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE`]: the largest valid message of the
    /// protocol, a `RawTxListGossip` of `MAX_TXLIST_BYTES` + 36 bytes, plus
    /// [`GOSSIP_FRAMING_ALLOWANCE`] — not `MAX_GOSSIP_SIZE_BYTES` (10 MiB), which no valid
    /// message comes near. Each topic additionally gets its own cap,
    /// `limits.max_gossip_len(topic)` + [`GOSSIP_FRAMING_ALLOWANCE`] (so 1 406 bytes for
    /// commitments) but never above this one; a message over its topic's cap is dropped by
    /// gossipsub as an invalid delivery (§7.1 weight −2) and never reaches the SDK. Must hold
    /// the largest message `limits` allow plus the allowance.
    pub max_transmit_size: usize,
    /// Whether our own messages go to every peer subscribed to the topic (gossipsub's flood
    /// publish) rather than to the mesh only. Default false, as the Kona preset: flooding a
    /// 1 MiB tx list to 18+ peers kept a 50 Mbit/s publisher busy for 3 s (testbed: commitment
    /// p50 3.1 s → 1.0 s without it).
    pub flood_publish: bool,
    /// Whether, when we publish a large message, we first tell each recipient we do not want
    /// it back (gossipsub v1.2 IDONTWANT on publish). Default false.
    pub idontwant_on_publish: bool,
    /// Mesh degree D of the tx-list topic: each node sends a tx list to this many peers. Its
    /// messages are up to 1 000× a commitment, so on a home uplink every extra copy delays
    /// all the others: D = 3 keeps a publisher's uplink at about 3 copies and the duplicates
    /// a node receives below one, while 24 nodes are still reached in about three hops
    /// (testbed, 50 Mbit/s: tx-list p50 1.4 s with D = 4, 1.2 s with D = 3). Default 3.
    pub txlist_mesh_n: usize,
    /// D_lo of the tx-list topic. Default 2.
    pub txlist_mesh_n_low: usize,
    /// D_hi of the tx-list topic. Default 4.
    ///
    /// 3 (= D) measured no fewer publisher copies in `preconf-node testbed` (12, 24 and 64
    /// nodes, BENCHMARKS.md): a publisher's tx-list mesh holds 3 peers already, and its fourth
    /// copy is the answer to the IWANT its own IHAVE draws (`gossip_lazy`), which gossipsub
    /// cannot turn off for one topic only.
    pub txlist_mesh_n_high: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        Self {
            mesh_n: 8,
            mesh_n_low: 6,
            mesh_n_high: 12,
            gossip_lazy: 1,
            gossip_factor: 0.0,
            heartbeat_interval: Duration::from_millis(500),
            fanout_ttl: Duration::from_secs(24),
            history_length: 12,
            history_gossip: 1,
            duplicate_cache_time: Duration::from_secs(120),
            signed_messages: true,
            max_transmit_size: DEFAULT_GOSSIP_MAX_TRANSMIT_SIZE,
            flood_publish: false,
            idontwant_on_publish: false,
            txlist_mesh_n: 3,
            txlist_mesh_n_low: 2,
            txlist_mesh_n_high: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::NetworkConfig;

    #[test]
    fn the_gossip_factor_is_a_share_of_the_peers() {
        let mut c = NetworkConfig::default();
        assert_eq!(c.gossip.gossip_factor, 0.0);
        for ok in [0.0, 1.0] {
            c.gossip.gossip_factor = ok;
            c.validate().expect("a share");
        }
        for bad in [-0.1, 1.1, f64::NAN] {
            c.gossip.gossip_factor = bad;
            let err = c.validate().expect_err("not a share").to_string();
            assert!(err.contains("gossip.gossip_factor"), "{err}");
        }
    }
}
