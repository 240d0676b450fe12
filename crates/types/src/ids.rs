//! Gossip topic names (§2) and req/resp protocol ids (§10–§11), derived from the chain id.

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

/// The three req/resp protocols (§10–§11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReqRespKind {
    /// `get_head`: [`crate::GetHeadRequest`] request (sent as its 4-byte SSZ; an empty body is
    /// accepted too), [`crate::PreconfHead`] response.
    GetHead,
    /// `get_commitments_by_number`.
    GetCommitmentsByNumber,
    /// `get_raw_txlist`.
    GetRawTxList,
    /// `get_raw_txlists`: this project's batched tx-list fetch (PROTOCOL-EXT.md), up to
    /// [`crate::MAX_TXLISTS_PER_REQUEST`] hashes per request. Not spoken by the Taiko
    /// reference; a peer that advertises it (identify) is one of ours.
    GetRawTxLists,
}

impl ReqRespKind {
    /// All protocols, in a stable order.
    pub const ALL: [ReqRespKind; 4] = [
        ReqRespKind::GetHead,
        ReqRespKind::GetCommitmentsByNumber,
        ReqRespKind::GetRawTxList,
        ReqRespKind::GetRawTxLists,
    ];

    /// The protocols of the draft spec (§10–§11), which every peer speaks.
    pub const SPEC: [ReqRespKind; 3] = [
        ReqRespKind::GetHead,
        ReqRespKind::GetCommitmentsByNumber,
        ReqRespKind::GetRawTxList,
    ];

    /// Whether this is one of this project's extensions (PROTOCOL-EXT.md) rather than a §10–§11
    /// protocol.
    pub fn is_extension(self) -> bool {
        !Self::SPEC.contains(&self)
    }

    /// The protocol's last path segment, also its metric label.
    pub fn label(self) -> &'static str {
        match self {
            ReqRespKind::GetHead => "get_head",
            ReqRespKind::GetCommitmentsByNumber => "get_commitments_by_number",
            ReqRespKind::GetRawTxList => "get_raw_txlist",
            ReqRespKind::GetRawTxLists => "get_raw_txlists",
        }
    }

    /// The full protocol id for `chain_id` (§10–§11).
    pub fn protocol_id(self, chain_id: u64) -> String {
        format!("/taiko/{chain_id}/preconf/1/{}", self.label())
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

    #[test]
    fn protocol_ids_follow_sections_10_and_11() {
        assert_eq!(
            ReqRespKind::GetHead.protocol_id(167000),
            "/taiko/167000/preconf/1/get_head"
        );
        assert_eq!(
            ReqRespKind::GetCommitmentsByNumber.protocol_id(167000),
            "/taiko/167000/preconf/1/get_commitments_by_number"
        );
        assert_eq!(
            ReqRespKind::GetRawTxList.protocol_id(167000),
            "/taiko/167000/preconf/1/get_raw_txlist"
        );
    }
}
