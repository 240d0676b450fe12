//! The commands a [`crate::P2pService`] handle sends the driver task, each with its reply
//! channel where it has one.

use std::time::Duration;

use libp2p::gossipsub::MessageId;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_types::GossipTopicKind;
use tokio::sync::oneshot;

use crate::error::{NetError, RequestError};
use crate::event::{GossipVerdict, PeerSnapshot, PeerStateSizes};
use crate::reqresp::codec::{Request, Response};

/// A handle's request to the driver.
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
