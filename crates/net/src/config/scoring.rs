//! Peer scoring (§7.1): gossipsub's topic parameters, the application score, the thresholds and
//! the ban threshold.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::duration;

/// Peer scoring (§7.1): gossipsub v1.1 topic parameters, the application score the net layer
/// keeps from the SDK's verdicts, thresholds and the ban threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ScoringConfig {
    /// Topic weight of both topics. Default 1.0.
    pub topic_weight: f64,
    /// invalidMessageDeliveries weight (negative; §7.1 magnitude 2.0). Default −2.0.
    ///
    /// §7.1 also caps this term at −20; gossipsub has no such cap (the term is
    /// `weight · counter²`, unbounded). It is not emulated, because with these defaults it
    /// would change no outcome: a peer whose term reaches −20 (counter √10) stays below
    /// `ban_threshold` (−5) for ≈ 69 s while the counter decays (0.99 per 1 s interval), more
    /// than `ban_sustain` (30 s), so it is banned with or without the cap, and a banned peer's
    /// score is forgotten (`retain_score`) before the 1 h ban ends. Below the cap the two agree
    /// exactly. `gossip::tests::the_minus_20_cap_changes_no_ban` checks this against the
    /// defaults.
    pub invalid_message_deliveries_weight: f64,
    /// invalidMessageDeliveries decay. Default 0.99.
    pub invalid_message_deliveries_decay: f64,
    /// firstMessageDeliveries weight. Default 0.5.
    pub first_message_deliveries_weight: f64,
    /// firstMessageDeliveries decay. Default 0.999.
    pub first_message_deliveries_decay: f64,
    /// firstMessageDeliveries cap. Default 20.
    pub first_message_deliveries_cap: f64,
    /// timeInMesh weight (not fixed by §7.1); default 1/3600 so a full hour adds +1.
    pub time_in_mesh_weight: f64,
    /// timeInMesh quantum. Default 1 s.
    #[serde(with = "duration")]
    pub time_in_mesh_quantum: Duration,
    /// timeInMesh cap in quanta. Default 3600.
    pub time_in_mesh_cap: f64,
    /// App-specific score weight. Default 1.0.
    pub app_specific_weight: f64,
    /// App-score penalty per validation failure / misbehaviour. Default 1.0.
    pub app_penalty: f64,
    /// Most penalties counted per peer per [`Self::app_penalty_window`]. Default 4.
    pub app_max_penalties_per_window: u32,
    /// Window of the penalty cap. Default 10 s.
    #[serde(with = "duration")]
    pub app_penalty_window: Duration,
    /// App-score reward per accepted message. Default 0.05.
    pub app_reward: f64,
    /// App-score multiplicative decay applied per [`Self::app_decay_interval`]. Default 0.9.
    pub app_decay: f64,
    /// Decay interval of the app score. Default 10 s.
    #[serde(with = "duration")]
    pub app_decay_interval: Duration,
    /// Lower clamp of the app score. Default −10.
    pub app_score_min: f64,
    /// Upper clamp of the app score (the reward cap). Default +10.
    pub app_score_max: f64,
    /// IP colocation weight (not in §7.1). Default 0: devnets run many nodes per IP.
    pub ip_colocation_factor_weight: f64,
    /// Weight of gossipsub's slow-peer penalty, charged for each message a peer's full send
    /// queue made us drop (not in §7.1; zero or negative). Default 0: a peer that reads
    /// slowly loses what its queue cannot hold but is not scored, so a node on a thin link
    /// is never pruned or banned by the peers that outpace it (with gossipsub's own default,
    /// −0.2 per dropped message decaying ×0.2 a second, a peer missing 25 messages a second
    /// sits at the ban threshold, and one that keeps that up for `ban_sustain` is banned).
    pub slow_peer_weight: f64,
    /// Below this, no gossip is emitted to / accepted from the peer (§7.1 "drop"). Default −1.
    pub gossip_threshold: f64,
    /// Below this, we neither publish to the peer nor keep it in the mesh (§7.1 "prune").
    /// Default −2. (Gossipsub itself prunes every mesh peer whose score is below 0 at each
    /// heartbeat, which is stricter; this threshold is where it also stops publishing to the
    /// peer and accepting its PX.)
    pub publish_threshold: f64,
    /// Below this, all RPCs of the peer are ignored. Default −5.
    pub graylist_threshold: f64,
    /// A score below this for longer than `ban_sustain` bans the peer (§7.1). Default −5.
    pub ban_threshold: f64,
    /// How long gossipsub keeps a disconnected peer's score (so a reconnect does not wash a
    /// bad score). Every peer id that ever connected costs an entry for this long, so it
    /// bounds the memory a peer-id churn can hold (gossipsub's own default is an hour). Bans
    /// and the app score are kept by the peer manager, not here. Default 60 000 ms.
    #[serde(with = "duration")]
    pub retain_score: Duration,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -2.0,
            invalid_message_deliveries_decay: 0.99,
            first_message_deliveries_weight: 0.5,
            first_message_deliveries_decay: 0.999,
            first_message_deliveries_cap: 20.0,
            time_in_mesh_weight: 1.0 / 3600.0,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            app_specific_weight: 1.0,
            app_penalty: 1.0,
            app_max_penalties_per_window: 4,
            app_penalty_window: Duration::from_secs(10),
            app_reward: 0.05,
            app_decay: 0.9,
            app_decay_interval: Duration::from_secs(10),
            app_score_min: -10.0,
            app_score_max: 10.0,
            ip_colocation_factor_weight: 0.0,
            slow_peer_weight: 0.0,
            retain_score: Duration::from_secs(60),
            gossip_threshold: -1.0,
            publish_threshold: -2.0,
            graylist_threshold: -5.0,
            ban_threshold: -5.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::NetworkConfig;
    use crate::error::NetError;

    #[test]
    fn a_positive_or_nan_slow_peer_weight_is_refused() {
        for weight in [0.5, f64::NAN] {
            let mut c = NetworkConfig::default();
            c.scoring.slow_peer_weight = weight;
            assert!(matches!(c.validate(), Err(NetError::Config(_))), "{weight}");
        }
        let mut c = NetworkConfig::default();
        c.scoring.slow_peer_weight = -0.2;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_thresholds_are_refused() {
        let mut c = NetworkConfig::default();
        c.scoring.publish_threshold = -10.0;
        assert!(matches!(c.validate(), Err(NetError::Config(_))));
    }
}
