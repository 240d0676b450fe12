//! Gossipsub set-up (§2, §7, §7.1): topics, message ids, mesh presets and peer scoring.

use std::collections::HashMap;

use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicHash, TopicScoreParams, ValidationMode,
};
use libp2p::identity::Keypair;
use preconfirmation_types::GossipTopicKind;

use crate::config::{GossipConfig, NetworkConfig, GOSSIP_FRAMING_ALLOWANCE};
use crate::error::NetError;

/// `tracing` target of one DEBUG line per gossip message this node receives first (gossipsub
/// hands each message on once, whoever else sends it later): its `topic`, message `id` and the
/// `peer` it came from. Off at the default filter; `preconf-node testbed` turns it on to measure
/// how many hops each message travelled to each node.
pub const DELIVERY_LOG_TARGET: &str = "preconf_net::delivery";

/// Message id (§7 "stable message id from payload hash"), identical to the deployed
/// reference's for every payload: [`preconfirmation_types::gossip_message_id`] (the first 20
/// bytes of `sha256(0x01000000 ‖ decompressed)` for a payload that is valid snappy, else of
/// `sha256(0x00000000 ‖ payload)`). The topic is not hashed in.
pub fn message_id(payload: &[u8]) -> MessageId {
    MessageId::new(&preconfirmation_types::gossip_message_id(payload))
}

/// The two live topics of a chain and the way back from a topic hash to its kind.
#[derive(Debug, Clone)]
pub struct Topics {
    by_hash: HashMap<TopicHash, GossipTopicKind>,
    commitments: IdentTopic,
    raw_txlists: IdentTopic,
}

impl Topics {
    /// The topics of `chain_id` (§2). Legacy topics are never built here, so never published to.
    pub fn new(chain_id: u64) -> Self {
        let commitments = IdentTopic::new(GossipTopicKind::Commitments.topic(chain_id));
        let raw_txlists = IdentTopic::new(GossipTopicKind::RawTxLists.topic(chain_id));
        let by_hash = HashMap::from([
            (commitments.hash(), GossipTopicKind::Commitments),
            (raw_txlists.hash(), GossipTopicKind::RawTxLists),
        ]);
        Self {
            by_hash,
            commitments,
            raw_txlists,
        }
    }

    /// The topic of `kind`.
    pub fn topic(&self, kind: GossipTopicKind) -> &IdentTopic {
        match kind {
            GossipTopicKind::Commitments => &self.commitments,
            GossipTopicKind::RawTxLists => &self.raw_txlists,
        }
    }

    /// The kind of a topic hash, if it is one of ours.
    pub fn kind(&self, hash: &TopicHash) -> Option<GossipTopicKind> {
        self.by_hash.get(hash).copied()
    }
}

/// A gossipsub config builder with this crate's mesh parameters (§7), frame cap
/// (`max_transmit_size`, normally [`GossipConfig::max_transmit_size`]) and content-addressed
/// message ids. [`build_gossipsub`] adds the per-topic settings ([`per_topic_settings`]),
/// manual validation and scoring; benchmarks use it with the per-topic settings and nothing
/// else, so a baseline runs the very same meshes.
pub fn mesh_config_builder(g: &GossipConfig, max_transmit_size: usize) -> gossipsub::ConfigBuilder {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .mesh_n(g.mesh_n)
        .mesh_n_low(g.mesh_n_low)
        .mesh_n_high(g.mesh_n_high)
        .gossip_lazy(g.gossip_lazy)
        .gossip_factor(g.gossip_factor)
        .heartbeat_interval(g.heartbeat_interval)
        .fanout_ttl(g.fanout_ttl)
        .history_length(g.history_length)
        .history_gossip(g.history_gossip)
        .duplicate_cache_time(g.duplicate_cache_time)
        // Gossipsub's frame cap: checked on an inbound frame's length before it is decoded.
        .max_transmit_size(max_transmit_size)
        .flood_publish(g.flood_publish)
        .idontwant_on_publish(g.idontwant_on_publish)
        .message_id_fn(|m: &gossipsub::Message| message_id(&m.data))
        .mesh_outbound_min(mesh_outbound_min(g.mesh_n, g.mesh_n_low));
    builder
}

/// Adds each topic's own settings to `builder`: the tx-list topic's mesh degrees
/// ([`GossipConfig::txlist_mesh_n`] and its siblings) and each topic's frame cap
/// ([`topic_transmit_size`]). [`gossipsub_config`] adds them; a benchmark's bare baseline adds
/// them too, so it runs the very same meshes.
pub fn per_topic_settings(
    builder: &mut gossipsub::ConfigBuilder,
    config: &NetworkConfig,
    topics: &Topics,
) {
    let g = &config.gossip;
    let txlists = topics.topic(GossipTopicKind::RawTxLists).hash();
    builder
        .mesh_n_for_topic(g.txlist_mesh_n, txlists.clone())
        .mesh_n_low_for_topic(g.txlist_mesh_n_low, txlists.clone())
        .mesh_n_high_for_topic(g.txlist_mesh_n_high, txlists.clone())
        .mesh_outbound_min_for_topic(
            mesh_outbound_min(g.txlist_mesh_n, g.txlist_mesh_n_low),
            txlists,
        );
    for kind in GossipTopicKind::ALL {
        builder.max_transmit_size_for_topic(
            topic_transmit_size(config, kind),
            topics.topic(kind).hash(),
        );
    }
}

/// gossipsub requires mesh_outbound_min <= mesh_n / 2 and < mesh_n_low.
fn mesh_outbound_min(mesh_n: usize, mesh_n_low: usize) -> usize {
    (mesh_n / 2).min(mesh_n_low.saturating_sub(1))
}

/// Whether `0 < low <= n <= high`.
fn mesh_degrees_valid(n: usize, low: usize, high: usize) -> bool {
    low > 0 && low <= n && n <= high
}

/// The gossipsub config of a node: mesh presets, the frame cap
/// ([`GossipConfig::max_transmit_size`]), one cap per topic ([`topic_transmit_size`]), manual
/// validation and the validation mode of [`GossipConfig::signed_messages`].
pub fn gossipsub_config(
    config: &NetworkConfig,
    topics: &Topics,
) -> Result<gossipsub::Config, NetError> {
    let g = &config.gossip;
    if !mesh_degrees_valid(g.mesh_n, g.mesh_n_low, g.mesh_n_high) {
        return Err(NetError::Config("invalid gossip mesh parameters".into()));
    }
    if !mesh_degrees_valid(g.txlist_mesh_n, g.txlist_mesh_n_low, g.txlist_mesh_n_high) {
        return Err(NetError::Config(
            "invalid tx-list mesh parameters (need 0 < txlist_mesh_n_low <= txlist_mesh_n <= \
             txlist_mesh_n_high)"
                .into(),
        ));
    }
    let mut builder = mesh_config_builder(g, g.max_transmit_size);
    per_topic_settings(&mut builder, config, topics);
    // Nothing is forwarded before the SDK reports Accept; unreported messages expire.
    builder.validate_messages();
    builder.validation_mode(if g.signed_messages {
        ValidationMode::Strict
    } else {
        ValidationMode::Anonymous
    });
    builder
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))
}

/// Builds the gossipsub behaviour with the mesh presets, manual validation and §7.1 scoring.
pub fn build_gossipsub(
    config: &NetworkConfig,
    keypair: &Keypair,
    topics: &Topics,
) -> Result<gossipsub::Behaviour, NetError> {
    let authenticity = if config.gossip.signed_messages {
        MessageAuthenticity::Signed(keypair.clone())
    } else {
        MessageAuthenticity::Anonymous
    };
    let gs_config = gossipsub_config(config, topics)?;
    let mut behaviour = gossipsub::Behaviour::new(authenticity, gs_config)
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;
    let (params, thresholds) = score_params(config, topics);
    behaviour
        .with_peer_score(params, thresholds)
        .map_err(|e| NetError::Config(format!("peer scoring: {e}")))?;
    for kind in GossipTopicKind::ALL {
        behaviour
            .subscribe(topics.topic(kind))
            .map_err(|e| NetError::Config(format!("subscribe: {e}")))?;
    }
    Ok(behaviour)
}

/// The cap of one message on `kind`'s topic, envelope included: the largest valid payload
/// (`limits.max_gossip_len`) plus [`GOSSIP_FRAMING_ALLOWANCE`], never above the frame cap. A
/// larger message is dropped by gossipsub's codec as an invalid delivery, before it is
/// handed to the driver.
pub fn topic_transmit_size(config: &NetworkConfig, kind: GossipTopicKind) -> usize {
    config
        .limits
        .max_gossip_len(kind)
        .saturating_add(GOSSIP_FRAMING_ALLOWANCE)
        .min(config.gossip.max_transmit_size)
}

/// The §7.1 score parameters and thresholds.
pub fn score_params(
    config: &NetworkConfig,
    topics: &Topics,
) -> (PeerScoreParams, PeerScoreThresholds) {
    let s = &config.scoring;
    let topic = TopicScoreParams {
        topic_weight: s.topic_weight,
        time_in_mesh_weight: s.time_in_mesh_weight,
        time_in_mesh_quantum: s.time_in_mesh_quantum,
        time_in_mesh_cap: s.time_in_mesh_cap,
        first_message_deliveries_weight: s.first_message_deliveries_weight,
        first_message_deliveries_decay: s.first_message_deliveries_decay,
        first_message_deliveries_cap: s.first_message_deliveries_cap,
        // Mesh delivery rates (P3, P3b) are not part of §7.1: off, so quiet meshes are fine.
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: s.invalid_message_deliveries_weight,
        invalid_message_deliveries_decay: s.invalid_message_deliveries_decay,
        ..TopicScoreParams::default()
    };
    let params = PeerScoreParams {
        topics: GossipTopicKind::ALL
            .iter()
            .map(|k| (topics.topic(*k).hash(), topic.clone()))
            .collect(),
        app_specific_weight: s.app_specific_weight,
        ip_colocation_factor_weight: s.ip_colocation_factor_weight,
        slow_peer_weight: s.slow_peer_weight,
        retain_score: s.retain_score,
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: s.gossip_threshold,
        publish_threshold: s.publish_threshold,
        graylist_threshold: s.graylist_threshold,
        ..PeerScoreThresholds::default()
    };
    (params, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasoning on `ScoringConfig::invalid_message_deliveries_weight`: with the default
    /// weights, decay and thresholds, a peer at §7.1's −20 cap stays below the ban threshold
    /// longer than `ban_sustain`, so capping would not change whether it is banned.
    #[test]
    fn the_minus_20_cap_changes_no_ban() {
        let config = NetworkConfig::default();
        let s = &config.scoring;
        let decay_interval = PeerScoreParams::default().decay_interval.as_secs_f64();
        // Score term −w·c² = −20 → c² = 20 / |w|; it decays by decay² per interval.
        let mut term = -20.0;
        let mut seconds = 0.0;
        while term < s.ban_threshold {
            term *= s.invalid_message_deliveries_decay.powi(2);
            seconds += decay_interval;
        }
        assert!(
            seconds > config.ban_sustain.as_secs_f64(),
            "at the cap a peer stays below the ban threshold {seconds} s, not past ban_sustain"
        );
        assert!(
            s.retain_score < config.ban_period,
            "a banned peer's score is gone first"
        );
        // The term reaches −20 at a counter of √10 ≈ 3.2: four invalid messages.
        let c: f64 = 4.0;
        assert!(s.invalid_message_deliveries_weight * s.topic_weight * c * c <= -20.0);
    }

    /// A peer whose send queue overflows is not scored by default (§7.1 names no such
    /// penalty), and the configured weight is the one gossipsub gets.
    #[test]
    fn slow_peers_are_not_scored_unless_configured() {
        let mut config = NetworkConfig::default();
        let topics = Topics::new(config.chain_id);
        assert_eq!(score_params(&config, &topics).0.slow_peer_weight, 0.0);
        config.scoring.slow_peer_weight = -0.2;
        assert_eq!(score_params(&config, &topics).0.slow_peer_weight, -0.2);
    }

    #[test]
    fn message_id_is_20_bytes_of_domain_sha256() {
        use sha2::{Digest, Sha256};
        let id = message_id(b"abc");
        assert_eq!(id.0.len(), 20);
        let mut h = Sha256::new();
        h.update([0u8, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(id.0, h.finalize()[..20].to_vec());
        assert_ne!(message_id(b"abc"), message_id(b"abd"));
    }

    #[test]
    fn score_params_validate_and_follow_section_7_1() {
        let config = NetworkConfig::default();
        let topics = Topics::new(config.chain_id);
        let (params, thresholds) = score_params(&config, &topics);
        params.validate().unwrap();
        thresholds.validate().unwrap();
        let t = params.topics.values().next().unwrap();
        assert_eq!(t.invalid_message_deliveries_weight, -2.0);
        assert_eq!(t.first_message_deliveries_cap, 20.0);
        assert_eq!(thresholds.graylist_threshold, -5.0);
        // A departed peer's score is kept for a minute, not gossipsub's default hour: a
        // peer-id churn holds one entry per id for that long.
        assert_eq!(params.retain_score, std::time::Duration::from_secs(60));
        assert_eq!(params.retain_score, config.scoring.retain_score);
        let kp = Keypair::generate_secp256k1();
        build_gossipsub(&config, &kp, &topics).unwrap();
    }

    /// A bare config with the per-topic settings has the node's meshes: the tx-list topic's
    /// own degrees, the commitment topic's the global ones, and each topic's frame cap.
    #[test]
    fn per_topic_settings_give_a_bare_config_the_nodes_meshes() {
        let mut config = NetworkConfig::default();
        config.gossip.txlist_mesh_n = 5;
        config.gossip.txlist_mesh_n_low = 3;
        config.gossip.txlist_mesh_n_high = 7;
        let topics = Topics::new(config.chain_id);
        let mut builder = mesh_config_builder(&config.gossip, config.gossip.max_transmit_size);
        per_topic_settings(&mut builder, &config, &topics);
        let bare = builder.build().unwrap();
        let node = gossipsub_config(&config, &topics).unwrap();
        let txlists = topics.topic(GossipTopicKind::RawTxLists).hash();
        let commitments = topics.topic(GossipTopicKind::Commitments).hash();
        for built in [&bare, &node] {
            assert_eq!(built.mesh_n_for_topic(&txlists), 5);
            assert_eq!(built.mesh_n_low_for_topic(&txlists), 3);
            assert_eq!(built.mesh_n_high_for_topic(&txlists), 7);
            assert_eq!(built.mesh_n_for_topic(&commitments), config.gossip.mesh_n);
            assert_eq!(
                built.mesh_n_high_for_topic(&commitments),
                config.gossip.mesh_n_high
            );
            for kind in GossipTopicKind::ALL {
                assert_eq!(
                    built.max_transmit_size_for_topic(&topics.topic(kind).hash()),
                    topic_transmit_size(&config, kind)
                );
            }
        }
        // Without them the tx-list topic would run the global degree.
        let global = mesh_config_builder(&config.gossip, config.gossip.max_transmit_size)
            .build()
            .unwrap();
        assert_eq!(global.mesh_n_for_topic(&txlists), config.gossip.mesh_n);
    }

    #[test]
    fn frame_caps_come_from_the_chain_caps() {
        use preconfirmation_types::{
            MAX_TXLIST_BYTES, RAW_TXLIST_FIXED_PART_LEN, SIGNED_COMMITMENT_SSZ_LEN,
        };
        let config = NetworkConfig::default();
        // The largest valid message is a 2 MiB tx list and its 36-byte fixed part.
        assert_eq!(RAW_TXLIST_FIXED_PART_LEN, 36);
        assert_eq!(
            config.gossip.max_transmit_size,
            MAX_TXLIST_BYTES + RAW_TXLIST_FIXED_PART_LEN + GOSSIP_FRAMING_ALLOWANCE
        );
        assert_eq!(config.gossip.max_transmit_size, 2 * 1024 * 1024 + 36 + 1024);
        assert!(config.gossip.max_transmit_size < config.limits.max_gossip_size_bytes);
        assert_eq!(
            topic_transmit_size(&config, GossipTopicKind::RawTxLists),
            config.gossip.max_transmit_size
        );
        assert_eq!(
            topic_transmit_size(&config, GossipTopicKind::Commitments),
            SIGNED_COMMITMENT_SSZ_LEN + GOSSIP_FRAMING_ALLOWANCE
        );
        // What gossipsub is built with.
        let topics = Topics::new(config.chain_id);
        let built = gossipsub_config(&config, &topics).unwrap();
        assert_eq!(built.max_transmit_size(), 2 * 1024 * 1024 + 36 + 1024);
        for kind in GossipTopicKind::ALL {
            assert_eq!(
                built.max_transmit_size_for_topic(&topics.topic(kind).hash()),
                topic_transmit_size(&config, kind)
            );
        }
        build_gossipsub(&config, &Keypair::generate_ed25519(), &topics).unwrap();
        // Smaller chain caps shrink the tx-list topic's cap with them.
        let mut small = NetworkConfig::default();
        small.limits.max_txlist_bytes = 1000;
        assert_eq!(
            topic_transmit_size(&small, GossipTopicKind::RawTxLists),
            1036 + GOSSIP_FRAMING_ALLOWANCE
        );
        // A frame cap below the largest valid message is refused.
        let mut bad = NetworkConfig::default();
        bad.gossip.max_transmit_size -= 1;
        assert!(
            matches!(bad.validate(), Err(NetError::Config(m)) if m.contains("max_transmit_size"))
        );
    }

    #[test]
    fn topics_map_back_and_exclude_legacy() {
        let topics = Topics::new(5);
        for k in GossipTopicKind::ALL {
            assert_eq!(topics.kind(&topics.topic(k).hash()), Some(k));
        }
        for legacy in preconfirmation_types::legacy_topics(5) {
            assert_eq!(topics.kind(&IdentTopic::new(legacy).hash()), None);
        }
    }
}
