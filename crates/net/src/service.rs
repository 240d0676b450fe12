//! The cheap cloneable handle [`P2pService`] and the event stream [`NetworkEvents`]: what the
//! SDK holds. Each method sends the driver a [`Command`]; the events are in [`crate::event`].

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

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

use crate::command::Command;
use crate::config::NetworkConfig;
use crate::error::{NetError, RequestError};
use crate::event::{GossipVerdict, NetworkEvent, PeerSnapshot, PeerStateSizes};
use crate::reqresp::codec::{Request, Response};

/// A typed req/resp call of a protocol with a request body: `$method` sends the [`Request`]
/// variant `$request` and takes back the [`Response`] variant `$response`; any other response
/// is [`RequestError::Decode`]. A macro because the methods differ only in their types.
macro_rules! typed_request {
    ($(#[$doc:meta])* $method:ident: $request:ident($req:ty) -> $response:ident($resp:ty)) => {
        $(#[$doc])*
        pub async fn $method(&self, peer: PeerId, request: $req) -> Result<$resp, RequestError> {
            match self.request(peer, Request::$request(request)).await? {
                Response::$response(r) => Ok(r),
                _ => Err(RequestError::Decode("mismatched response".into())),
            }
        }
    };
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

/// Handle to the network driver. Cheap to clone; every method talks to the driver task over a
/// bounded channel.
#[derive(Debug, Clone)]
pub struct P2pService {
    commands: mpsc::Sender<Command>,
    local_peer_id: PeerId,
    local_enr: Option<crate::discovery::LocalEnr>,
    limits: ChainLimits,
}

impl P2pService {
    /// Starts the network: listens, subscribes to both topics, starts discv5 and spawns the
    /// driver, on a thread of its own ([`crate::NET_THREAD`]) or, without
    /// [`NetworkConfig::own_thread`], as a task of the current tokio runtime. Without
    /// `keypair` a fresh secp256k1 key is generated.
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

    typed_request!(
        /// `get_commitments_by_number` (§10.2).
        request_commitments: GetCommitmentsByNumber(GetCommitmentsByNumberRequest)
            -> Commitments(GetCommitmentsByNumberResponse)
    );

    typed_request!(
        /// `get_raw_txlist` (§11.2).
        request_raw_txlist: GetRawTxList(GetRawTxListRequest) -> RawTxList(GetRawTxListResponse)
    );

    typed_request!(
        /// `get_raw_txlists` (PROTOCOL-EXT.md). Only to peers that advertise it
        /// ([`PeerSnapshot::extended`]); the Taiko reference does not.
        request_raw_txlists: GetRawTxLists(GetRawTxListsRequest) -> RawTxLists(GetRawTxListsResponse)
    );

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
