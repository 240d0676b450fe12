//! What the network layer tells the SDK: [`NetworkEvent`]s (gossip to validate, inbound
//! requests to answer with a [`Responder`], peers coming, going and banned), the SDK's
//! [`GossipVerdict`], and the snapshots [`crate::P2pService`] returns.

use std::time::{Duration, Instant};

use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_types::{
    GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetRawTxListRequest,
    GetRawTxListResponse, GetRawTxListsRequest, GetRawTxListsResponse, GossipTopicKind,
    PreconfHead,
};
use tokio::sync::oneshot;

use crate::peers::ip_limit::LimitCounts;
use crate::peers::manager::PeerManagerSizes;

/// Which side opened a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

/// The SDK's verdict on a gossip message (§4.2, §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipVerdict {
    /// Valid: forward it and reward the propagation source (+0.05 app score).
    Accept,
    /// Invalid: drop it, count an invalid delivery and penalise the source (−1 app score,
    /// at most −4 per 10 s).
    Reject,
    /// Neither (duplicate, pending parent, not interesting): drop it without scoring.
    Ignore,
}

/// A typed one-shot answer to an inbound request. Dropping it, or not answering within the
/// request timeout, closes the stream without a response (the requester sees a refusal).
#[derive(Debug)]
pub struct Responder<T> {
    tx: oneshot::Sender<T>,
}

impl<T> Responder<T> {
    pub(crate) fn new() -> (Self, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (Self { tx }, rx)
    }

    /// Sends the response. A no-op if the request already timed out or the peer left.
    pub fn respond(self, value: T) {
        let _ = self.tx.send(value);
    }

    /// Whether the stream is already gone (timed out or shut down).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// An inbound req/resp request (§10–§11), admitted by the rate limits, for the SDK to answer.
#[derive(Debug)]
pub enum InboundRequest {
    /// `get_head` (§10).
    GetHead {
        /// Requesting peer.
        peer: PeerId,
        /// Where to send our head.
        responder: Responder<PreconfHead>,
    },
    /// `get_commitments_by_number` (§10.2).
    GetCommitmentsByNumber {
        /// Requesting peer.
        peer: PeerId,
        /// The request.
        request: GetCommitmentsByNumberRequest,
        /// Where to send the commitments (at most the chain's cap).
        responder: Responder<GetCommitmentsByNumberResponse>,
    },
    /// `get_raw_txlist` (§11.2).
    GetRawTxList {
        /// Requesting peer.
        peer: PeerId,
        /// The request.
        request: GetRawTxListRequest,
        /// Where to send the tx list (empty `txlist` when unknown).
        responder: Responder<GetRawTxListResponse>,
    },
    /// `get_raw_txlists` (PROTOCOL-EXT.md): up to 64 tx lists by hash.
    GetRawTxLists {
        /// Requesting peer.
        peer: PeerId,
        /// The request.
        request: GetRawTxListsRequest,
        /// Where to send the answers: a prefix of the request, in order, within
        /// `MAX_RAW_TXLISTS_RESPONSE_BYTES` (an unknown hash echoed with an empty `txlist`).
        responder: Responder<GetRawTxListsResponse>,
    },
}

impl InboundRequest {
    /// The requesting peer.
    pub fn peer(&self) -> PeerId {
        match self {
            InboundRequest::GetHead { peer, .. }
            | InboundRequest::GetCommitmentsByNumber { peer, .. }
            | InboundRequest::GetRawTxList { peer, .. }
            | InboundRequest::GetRawTxLists { peer, .. } => *peer,
        }
    }
}

/// What the network layer reports to the SDK.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message on one of the two topics (§2), size-checked but not validated: the SDK
    /// must call [`crate::P2pService::report_validation`] with `message_id` and `peer`.
    Gossip {
        /// Propagation source (the peer that sent it to us).
        peer: PeerId,
        /// Topic.
        topic: GossipTopicKind,
        /// Message id ([`crate::message_id`]).
        message_id: MessageId,
        /// Raw SSZ payload.
        data: Vec<u8>,
        /// When the driver handed it to the SDK (the SDK measures how long it waited in the
        /// event channel).
        received_at: std::time::Instant,
    },
    /// An inbound request to answer.
    InboundRequest(InboundRequest),
    /// First connection to a peer established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Who dialled.
        direction: Direction,
    },
    /// Last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A peer was banned (score below the ban threshold for longer than `ban_sustain`, or
    /// [`crate::P2pService::ban`]); it is disconnected and refused until `until`.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// End of the ban.
        until: Instant,
    },
}

/// A connected peer as seen by [`crate::P2pService::peers`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerSnapshot {
    /// Its id.
    pub peer_id: PeerId,
    /// Total gossipsub score (topic scores + app score), 0 when unknown.
    pub score: f64,
    /// Who dialled.
    pub direction: Direction,
    /// Remote address of the first connection.
    pub addr: Multiaddr,
    /// Whether it advertises this project's extensions (identify): requests to it are paced
    /// by this project's default limits. Otherwise it is treated as the strict reference
    /// ([`crate::reqresp::self_limiter`]).
    pub extended: bool,
    /// Round-trip time of the last successful outbound ping (`/ipfs/ping/1.0.0`), if any.
    pub ping_rtt: Option<Duration>,
    /// Whether the peer refused our outbound ping protocol on one of its connections. Such a
    /// peer is not pinged again on that connection; its own pings are still answered.
    pub ping_unsupported: bool,
    /// SSZ bytes of the responses we sent it (all protocols) since its current connection
    /// opened: what it took of our egress, e.g. for a serving node's MiB/s out.
    pub served_bytes: u64,
    /// Gossip messages we dropped for it since its current connection opened, because its
    /// send queue stayed full (it reads slower than we send). Counted, not scored
    /// (`scoring.slow_peer_weight`).
    pub gossip_dropped: u64,
    /// The chains it serves, from the `/taiko/<chain id>/…` protocols it listed to identify
    /// ([`crate::chains::chain_ids`]); empty until identify has answered (or when it lists
    /// no protocol of this network). A peer whose list lacks our chain is on another one.
    pub chain_ids: Vec<u64>,
}

/// How much per-peer state the driver holds ([`crate::P2pService::peer_state_sizes`]): every figure
/// is bounded by the connected peers plus those disconnected within a rate-limit window, and
/// returns to its baseline once they are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerStateSizes {
    /// Connected peers.
    pub connected: usize,
    /// Entries of the peer manager's per-peer maps (scores, rate-limit buckets, byte budgets,
    /// in-flight requests, refusal windows, bans, dial state).
    pub peer_manager: usize,
    /// The same, map by map.
    pub peer_manager_maps: PeerManagerSizes,
    /// Peers with outbound pacing state ([`crate::reqresp::self_limiter`]).
    pub pacer: usize,
    /// Outbound requests awaiting an answer.
    pub outbound_requests: usize,
    /// Sizes of the per-IP and per-peer connection maps ([`crate::peers::ip_limit`]).
    pub connection_limits: LimitCounts,
}
