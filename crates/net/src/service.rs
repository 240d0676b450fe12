//! The cheap cloneable handle [`P2pService`], the event stream [`NetworkEvents`] and the types
//! the SDK exchanges with the network layer.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use discv5::Enr;
use libp2p::gossipsub::MessageId;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_types::{
    ChainLimits, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse,
    GetRawTxListRequest, GetRawTxListResponse, GetRawTxListsRequest, GetRawTxListsResponse,
    GossipTopicKind, PreconfHead,
};
use tokio::sync::{mpsc, oneshot};

use crate::config::NetworkConfig;
use crate::error::{NetError, RequestError};
use crate::reqresp::codec::{Request, Response};

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
    /// must call [`P2pService::report_validation`] with `message_id` and `peer`.
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
    /// [`P2pService::ban`]); it is disconnected and refused until `until`.
    PeerBanned {
        /// The peer.
        peer: PeerId,
        /// End of the ban.
        until: Instant,
    },
}

/// A connected peer as seen by [`P2pService::peers`].
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
    /// The chains it serves, from the `/taiko/<chain id>/…` protocols it listed to identify
    /// ([`crate::chains::chain_ids`]); empty until identify has answered (or when it lists
    /// no protocol of this network). A peer whose list lacks our chain is on another one.
    pub chain_ids: Vec<u64>,
}

/// How much per-peer state the driver holds ([`P2pService::peer_state_sizes`]): every figure
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
    pub peer_manager_maps: crate::peers::manager::PeerManagerSizes,
    /// Peers with outbound pacing state ([`crate::reqresp::self_limiter`]).
    pub pacer: usize,
    /// Outbound requests awaiting an answer.
    pub outbound_requests: usize,
    /// Sizes of the per-IP and per-peer connection maps ([`crate::peers::ip_limit`]).
    pub connection_limits: crate::peers::ip_limit::LimitCounts,
}

/// The stream of [`NetworkEvent`]s (a bounded channel from the driver).
#[derive(Debug)]
pub struct NetworkEvents {
    rx: mpsc::Receiver<NetworkEvent>,
}

impl NetworkEvents {
    /// The next event; `None` once the service has shut down.
    pub async fn recv(&mut self) -> Option<NetworkEvent> {
        self.rx.recv().await
    }

    /// The next event if one is queued now, without waiting (`None` also once shut down).
    pub fn try_recv(&mut self) -> Option<NetworkEvent> {
        self.rx.try_recv().ok()
    }
}

impl futures::Stream for NetworkEvents {
    type Item = NetworkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NetworkEvent>> {
        self.rx.poll_recv(cx)
    }
}

pub(crate) enum Command {
    Publish {
        kind: GossipTopicKind,
        data: Vec<u8>,
        reply: oneshot::Sender<Result<MessageId, NetError>>,
    },
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, RequestError>>,
    },
    Validation {
        message_id: MessageId,
        source: PeerId,
        verdict: GossipVerdict,
    },
    Penalize {
        peer: PeerId,
        reason: &'static str,
    },
    Dial {
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), NetError>>,
    },
    Ban {
        peer: PeerId,
        duration: Duration,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerSnapshot>>,
    },
    StateSizes {
        reply: oneshot::Sender<PeerStateSizes>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    GossipPeers {
        kind: GossipTopicKind,
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    MeshSizes {
        reply: oneshot::Sender<Vec<(GossipTopicKind, usize)>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// Handle to the network driver. Cheap to clone; every method talks to the driver task over a
/// bounded channel.
#[derive(Debug, Clone)]
pub struct P2pService {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    local_enr: Option<crate::discovery::LocalEnr>,
    limits: ChainLimits,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Command::Publish { .. } => "Publish",
            Command::Request { .. } => "Request",
            Command::Validation { .. } => "Validation",
            Command::Penalize { .. } => "Penalize",
            Command::Dial { .. } => "Dial",
            Command::Ban { .. } => "Ban",
            Command::Peers { .. } => "Peers",
            Command::ListenAddrs { .. } => "ListenAddrs",
            Command::GossipPeers { .. } => "GossipPeers",
            Command::StateSizes { .. } => "StateSizes",
            Command::MeshSizes { .. } => "MeshSizes",
            Command::Shutdown { .. } => "Shutdown",
        })
    }
}

impl P2pService {
    /// Starts the network: listens, subscribes to both topics, starts discv5 and spawns the
    /// driver task on the current tokio runtime. Without `keypair` a fresh secp256k1 key is
    /// generated.
    pub async fn start(
        config: NetworkConfig,
        keypair: Option<Keypair>,
    ) -> Result<(P2pService, NetworkEvents), NetError> {
        let mut config = config;
        let keypair = keypair.unwrap_or_else(|| {
            // A fresh identity: no peer holds a window of ours.
            config.politeness.strict_window_spent_at_start = false;
            Keypair::generate_secp256k1()
        });
        let limits = config.limits;
        let (commands, local_peer_id, local_enr, events) =
            crate::driver::spawn(config, keypair).await?;
        Ok((
            P2pService {
                commands,
                local_peer_id,
                local_enr,
                limits,
            },
            NetworkEvents { rx: events },
        ))
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Our ENR as it is now (`None` when discovery is disabled): discv5's PONG votes may have
    /// updated its address since the start. Give its `to_base64()` to other nodes as a
    /// bootnode.
    pub fn local_enr(&self) -> Option<Enr> {
        self.local_enr.as_ref().map(crate::discovery::LocalEnr::get)
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| NetError::Shutdown)?;
        rx.await.map_err(|_| NetError::Shutdown)
    }

    fn tell(&self, cmd: Command) -> Result<(), NetError> {
        self.commands.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => NetError::Busy,
            mpsc::error::TrySendError::Closed(_) => NetError::Shutdown,
        })
    }

    /// The addresses we listen on (with the actual port).
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(|reply| Command::ListenAddrs { reply }).await
    }

    /// Publishes raw SSZ `data` on `topic` (§2). Refused above the topic's cap.
    pub async fn publish(
        &self,
        topic: GossipTopicKind,
        data: Vec<u8>,
    ) -> Result<MessageId, NetError> {
        let cap = self.limits.max_gossip_len(topic);
        if data.len() > cap {
            return Err(NetError::Oversize {
                len: data.len(),
                cap,
            });
        }
        self.ask(|reply| Command::Publish {
            kind: topic,
            data,
            reply,
        })
        .await?
    }

    async fn request(&self, peer: PeerId, request: Request) -> Result<Response, RequestError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Request {
                peer,
                request,
                reply: tx,
            })
            .await
            .map_err(|_| RequestError::Shutdown)?;
        rx.await.map_err(|_| RequestError::Shutdown)?
    }

    /// `get_head` (§10).
    pub async fn request_head(&self, peer: PeerId) -> Result<PreconfHead, RequestError> {
        match self.request(peer, Request::GetHead).await? {
            Response::Head(h) => Ok(h),
            _ => Err(RequestError::Decode("mismatched response".into())),
        }
    }

    /// `get_commitments_by_number` (§10.2).
    pub async fn request_commitments(
        &self,
        peer: PeerId,
        request: GetCommitmentsByNumberRequest,
    ) -> Result<GetCommitmentsByNumberResponse, RequestError> {
        match self
            .request(peer, Request::GetCommitmentsByNumber(request))
            .await?
        {
            Response::Commitments(r) => Ok(r),
            _ => Err(RequestError::Decode("mismatched response".into())),
        }
    }

    /// `get_raw_txlist` (§11.2).
    pub async fn request_raw_txlist(
        &self,
        peer: PeerId,
        request: GetRawTxListRequest,
    ) -> Result<GetRawTxListResponse, RequestError> {
        match self.request(peer, Request::GetRawTxList(request)).await? {
            Response::RawTxList(r) => Ok(r),
            _ => Err(RequestError::Decode("mismatched response".into())),
        }
    }

    /// `get_raw_txlists` (PROTOCOL-EXT.md). Only to peers that advertise it
    /// ([`PeerSnapshot::extended`]); the Taiko reference does not.
    pub async fn request_raw_txlists(
        &self,
        peer: PeerId,
        request: GetRawTxListsRequest,
    ) -> Result<GetRawTxListsResponse, RequestError> {
        match self.request(peer, Request::GetRawTxLists(request)).await? {
            Response::RawTxLists(r) => Ok(r),
            _ => Err(RequestError::Decode("mismatched response".into())),
        }
    }

    /// Reports the SDK's verdict on a gossip message (non-blocking). `Accept` forwards it and
    /// rewards the source; `Reject` drops it and penalises the source; `Ignore` drops it.
    pub fn report_validation(
        &self,
        message_id: MessageId,
        propagation_source: PeerId,
        verdict: GossipVerdict,
    ) -> Result<(), NetError> {
        self.tell(Command::Validation {
            message_id,
            source: propagation_source,
            verdict,
        })
    }

    /// App-score −1 for `peer` (same per-window cap as gossip rejections), e.g. for a req/resp
    /// peer that served data failing validation. Non-blocking.
    pub fn penalize_peer(&self, peer: PeerId, reason: &'static str) -> Result<(), NetError> {
        self.tell(Command::Penalize { peer, reason })
    }

    /// Dials `addr` (with or without `/p2p/<peer id>`).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|reply| Command::Dial { addr, reply }).await?
    }

    /// Bans `peer` for `duration`: disconnects it and refuses it until then. Non-blocking.
    pub fn ban(&self, peer: PeerId, duration: Duration) -> Result<(), NetError> {
        self.tell(Command::Ban { peer, duration })
    }

    /// Connected peers with score, direction and address.
    pub async fn peers(&self) -> Result<Vec<PeerSnapshot>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    /// How much per-peer state the driver holds (for tests and diagnostics).
    pub async fn peer_state_sizes(&self) -> Result<PeerStateSizes, NetError> {
        self.ask(|reply| Command::StateSizes { reply }).await
    }

    /// Ids of the connected peers.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        Ok(self.peers().await?.into_iter().map(|p| p.peer_id).collect())
    }

    /// Peers known to be subscribed to `topic` (useful to wait for a mesh before publishing).
    pub async fn gossip_peers(&self, topic: GossipTopicKind) -> Result<Vec<PeerId>, NetError> {
        self.ask(|reply| Command::GossipPeers { kind: topic, reply })
            .await
    }

    /// How many peers our gossipsub mesh of each topic holds (the peers we forward that
    /// topic's messages to), in [`GossipTopicKind::ALL`] order.
    pub async fn mesh_sizes(&self) -> Result<Vec<(GossipTopicKind, usize)>, NetError> {
        self.ask(|reply| Command::MeshSizes { reply }).await
    }

    /// Stops the driver and discovery, closing all connections; returns once stopped. Other
    /// handles then fail with [`NetError::Shutdown`].
    pub async fn shutdown(&self) -> Result<(), NetError> {
        match self.ask(|reply| Command::Shutdown { reply }).await {
            Ok(()) | Err(NetError::Shutdown) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
