//! Gossip topic names (§2), derived from the chain id. The req/resp protocols are in
//! [`crate::ReqRespKind`].

/// The two live gossip topics (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GossipTopicKind {
    /// `/taiko/<chainID>/0/preconfirmationCommitments`: raw SSZ [`crate::SignedCommitment`].
    Commitments,
    /// `/taiko/<chainID>/0/rawTxLists`: raw SSZ [`crate::RawTxListGossip`].
    RawTxLists,
}

impl GossipTopicKind {
    /// Both topics, in a stable order.
    pub const ALL: [GossipTopicKind; 2] =
        [GossipTopicKind::Commitments, GossipTopicKind::RawTxLists];

    /// Short label for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            GossipTopicKind::Commitments => "commitments",
            GossipTopicKind::RawTxLists => "raw_txlists",
        }
    }

    /// The full topic string for `chain_id` (§2).
    pub fn topic(self, chain_id: u64) -> String {
        match self {
            GossipTopicKind::Commitments => commitments_topic(chain_id),
            GossipTopicKind::RawTxLists => raw_txlists_topic(chain_id),
        }
    }
}

/// `/taiko/<chainID>/0/preconfirmationCommitments` (§2).
pub fn commitments_topic(chain_id: u64) -> String {
    format!("/taiko/{chain_id}/0/preconfirmationCommitments")
}

/// `/taiko/<chainID>/0/rawTxLists` (§2).
pub fn raw_txlists_topic(chain_id: u64) -> String {
    format!("/taiko/{chain_id}/0/rawTxLists")
}

/// The legacy topics that must never be published to (§2).
pub fn legacy_topics(chain_id: u64) -> [String; 4] {
    [
        "preconfBlocks",
        "responsePreconfBlocks",
        "requestPreconfBlocks",
        "requestEndOfSequencingPreconfBlocks",
    ]
    .map(|name| format!("/taiko/{chain_id}/0/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_follow_section_2() {
        assert_eq!(
            commitments_topic(167000),
            "/taiko/167000/0/preconfirmationCommitments"
        );
        assert_eq!(raw_txlists_topic(167000), "/taiko/167000/0/rawTxLists");
        assert_eq!(
            GossipTopicKind::RawTxLists.topic(5),
            "/taiko/5/0/rawTxLists"
        );
        assert!(legacy_topics(1)
            .iter()
            .all(|t| !GossipTopicKind::ALL.iter().any(|k| k.topic(1) == *t)));
        assert_eq!(legacy_topics(1)[0], "/taiko/1/0/preconfBlocks");
    }
}
