//! The SDK's façade types: re-exported wire containers and the events it emits.

use std::time::{Duration, Instant};

use libp2p::PeerId;
use preconfirmation_types::{gossip_message_id, GossipTopicKind, MESSAGE_ID_LEN};
pub use preconfirmation_types::{
    Address, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetRawTxListRequest,
    GetRawTxListResponse, PreconfCommitment, PreconfHead, Preconfirmation, RawTxListGossip,
    SignedCommitment, B256, U256,
};

/// Dedupe key of a gossip payload: its topic and its gossip message id (§7, the first 20 bytes
/// of a domain-separated sha256 of the payload: [`preconfirmation_types::gossip_message_id`]).
/// It is the id gossipsub computes for the same bytes, so a gossiped message is not hashed a
/// second time and a payload this node published is known by the id its peers use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId {
    /// The topic it came on.
    pub topic: GossipTopicKind,
    /// Its gossip message id.
    pub id: [u8; MESSAGE_ID_LEN],
}

impl MessageId {
    /// The id of `payload` on `topic`.
    pub fn new(topic: GossipTopicKind, payload: &[u8]) -> Self {
        Self {
            topic,
            id: gossip_message_id(payload),
        }
    }

    /// The id of `payload`, which gossipsub delivered on `topic` under `gossip_id` (computed by
    /// this node's gossipsub from the payload, never taken from the sender). An id of another
    /// length than §7's is not trusted to be one: the payload is hashed instead.
    pub(crate) fn from_gossip(topic: GossipTopicKind, gossip_id: &[u8], payload: &[u8]) -> Self {
        match <[u8; MESSAGE_ID_LEN]>::try_from(gossip_id) {
            Ok(id) => Self { topic, id },
            Err(_) => Self::new(topic, payload),
        }
    }
}

/// Where an accepted commitment came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitmentSource {
    /// Published by this node.
    Local,
    /// Received on gossip from this peer.
    Gossip(PeerId),
    /// Fetched by catch-up from this peer.
    CatchUp(PeerId),
}

/// Where the node stands relative to its peers (§10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HeadSyncStatus {
    /// Started, catch-up has not run yet.
    Idle,
    /// Catching up from `local` to `target`.
    Syncing {
        /// Local head.
        local: u64,
        /// Best head reported by peers.
        target: u64,
    },
    /// Caught up; following gossip.
    Live,
}

/// What an equivocation or hand-off violation broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    /// Two different commitments for the same slot by the same signer.
    SameSlot,
    /// Two different commitments for the same block number by the same signer.
    SameBlockNumber,
    /// A commitment after the signer's own EOP for the same window (§5).
    CommitAfterEop,
}

impl EvidenceKind {
    /// Stable metric label.
    pub fn label(self) -> &'static str {
        match self {
            EvidenceKind::SameSlot => "same_slot",
            EvidenceKind::SameBlockNumber => "same_block_number",
            EvidenceKind::CommitAfterEop => "commit_after_eop",
        }
    }
}

/// What the SDK tells the sidecar.
// `Commitment` is the common variant and the events travel by value through a broadcast
// channel; boxing it would add an allocation per event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SdkEvent {
    /// A commitment was validated, stored and (if from gossip) forwarded.
    Commitment {
        /// The commitment.
        commitment: SignedCommitment,
        /// Its recovered signer.
        signer: Address,
        /// Where it came from.
        source: CommitmentSource,
        /// Whether its tx list is already stored (always true for a pure EOP).
        txlist_available: bool,
    },
    /// A tx list referenced by an accepted commitment is now stored (it came on gossip, by
    /// request or was published locally). The event carries no bytes — read them with
    /// `P2pSdk::raw_txlist` — so the event ring never holds tx-list payloads (up to
    /// 2 MiB each) for subscribers that are slow or never read. Tx lists no commitment
    /// references are never announced.
    RawTxList {
        /// `keccak256(txlist)`.
        hash: B256,
        /// The block whose commitment references it.
        block_number: u64,
    },
    /// The local head moved.
    HeadChanged {
        /// New head.
        head: PreconfHead,
        /// `preconfirmation_hash` of the new head.
        hash: B256,
    },
    /// Catch-up state changed.
    HeadSync(HeadSyncStatus),
    /// Slashing evidence: two commitments by one signer that must not both exist. The second
    /// was not stored or forwarded.
    Equivocation {
        /// What rule they break.
        kind: EvidenceKind,
        /// Their signer.
        signer: Address,
        /// The commitment accepted first (or the EOP).
        first: Box<SignedCommitment>,
        /// The conflicting commitment.
        second: Box<SignedCommitment>,
    },
    /// A peer connected.
    PeerConnected(PeerId),
    /// A peer disconnected.
    PeerDisconnected(PeerId),
    /// A peer was banned until `until`.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// End of the ban.
        until: Instant,
    },
}

/// A connected peer and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// Peer id.
    pub peer_id: PeerId,
    /// Gossipsub score (topic scores + application score).
    pub score: f64,
    /// Whether it advertises this project's extensions (identify); otherwise requests to it
    /// are paced as to the strict Taiko reference.
    pub extended: bool,
    /// Round-trip time of its last answered ping.
    pub ping_rtt: Option<Duration>,
    /// SSZ bytes of the responses this node served it on its current connection(s).
    pub served_bytes: u64,
    /// Gossip messages dropped for it on its current connection(s) because its send queue
    /// stayed full (it reads slower than this node sends); counted, not scored.
    pub gossip_dropped: u64,
}

/// A snapshot of the SDK for `/status` pages and tests.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SdkStatus {
    /// Local head block number.
    pub head_block_number: u64,
    /// `preconfirmation_hash` of the head, if known.
    pub head_hash: Option<B256>,
    /// `submissionWindowEnd` of the head commitment (0 at the anchor).
    pub head_window_end: U256,
    /// Catch-up state.
    pub sync: HeadSyncStatus,
    /// Commitments waiting for their parent.
    pub pending_parent: usize,
    /// Commitments waiting for their schedule.
    pub pending_schedule: usize,
    /// Tx lists not yet referenced by an accepted commitment.
    pub orphan_txlists: usize,
    /// Accepted commitments whose tx list is still missing.
    pub missing_txlists: usize,
}

impl SdkStatus {
    /// The status a core starts from, before it publishes its first: nothing known, `sync` as
    /// given.
    pub(crate) fn starting(sync: HeadSyncStatus) -> Self {
        Self {
            head_block_number: 0,
            head_hash: None,
            head_window_end: U256::ZERO,
            sync,
            pending_parent: 0,
            pending_schedule: 0,
            orphan_txlists: 0,
            missing_txlists: 0,
        }
    }
}

/// `PreconfHead` with `U256` block number from a status snapshot.
pub(crate) fn head_of(status: &SdkStatus) -> preconfirmation_types::PreconfHead {
    preconfirmation_types::PreconfHead {
        block_number: preconfirmation_types::U256::from(status.head_block_number),
        submission_window_end: status.head_window_end,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gossiped_message_is_known_by_the_id_gossipsub_gave_it() {
        let topic = GossipTopicKind::Commitments;
        let payload = b"a commitment's bytes";
        let gossip_id = preconfirmation_net::message_id(payload);
        let key = MessageId::from_gossip(topic, &gossip_id.0, payload);
        assert_eq!(
            key,
            MessageId::new(topic, payload),
            "the same key as published"
        );
        assert_eq!(key.id.as_slice(), gossip_id.0.as_slice());
        // The id gossipsub computed is taken as it is, not computed again.
        assert_eq!(MessageId::from_gossip(topic, &[9; 20], payload).id, [9; 20]);
        // An id of another length is not used: the payload is hashed.
        let odd = MessageId::from_gossip(topic, &[7; 8], payload);
        assert_eq!(odd, MessageId::new(topic, payload));
        // The topic is part of the key.
        assert_ne!(
            MessageId::new(GossipTopicKind::RawTxLists, payload),
            MessageId::new(topic, payload)
        );
    }
}
