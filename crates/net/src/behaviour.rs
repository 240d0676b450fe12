//! The composed libp2p behaviour: bans, connection limits, gossipsub, req/resp, identify, ping.

use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, gossipsub, identify, ping, request_response};

use crate::codec::PreconfCodec;

/// All protocols of a node. Order matters for connection denial: the block list and the
/// connection limits are consulted first.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Banned peers: connections refused, existing ones closed (§7.1).
    pub(crate) block_list: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Max peers, max connections per peer, max pending incoming.
    pub(crate) limits: connection_limits::Behaviour,
    /// The two topics (§2) with manual validation and §7.1 scoring.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// The three req/resp protocols (§10–§11).
    pub(crate) reqresp: request_response::Behaviour<PreconfCodec>,
    /// Exchange of listen addresses and protocols.
    pub(crate) identify: identify::Behaviour,
    /// Liveness.
    pub(crate) ping: ping::Behaviour,
}
