//! The composed libp2p behaviour: bans, connection limits, gossipsub, req/resp, identify, ping.

use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, gossipsub, identify, request_response};

use crate::peers::ip_limit;
use crate::ping;
use crate::reqresp::codec::PreconfCodec;

/// All protocols of a node. Order matters for connection denial: the block list and the
/// connection limits are consulted first.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Banned peers: connections refused, existing ones closed (§7.1).
    pub(crate) block_list: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Inbound connections per IP and connections per peer id ([`crate::peers::ip_limit`]).
    pub(crate) ip_limit: ip_limit::Behaviour,
    /// Max peers in all, inbound and outbound, max pending incoming.
    pub(crate) limits: connection_limits::Behaviour,
    /// The two topics (§2) with manual validation and §7.1 scoring.
    pub(crate) gossipsub: gossipsub::Behaviour,
    /// `get_head` (§10). One behaviour per protocol, so each request negotiates its own id.
    pub(crate) head: request_response::Behaviour<PreconfCodec>,
    /// `get_commitments_by_number` (§10.2).
    pub(crate) commitments: request_response::Behaviour<PreconfCodec>,
    /// `get_raw_txlist` (§11.2).
    pub(crate) txlist: request_response::Behaviour<PreconfCodec>,
    /// `get_raw_txlists` (PROTOCOL-EXT.md): this project's batched fetch; advertising it
    /// tells peers we are not the strict reference.
    pub(crate) txlists: request_response::Behaviour<PreconfCodec>,
    /// Exchange of listen addresses and protocols.
    pub(crate) identify: identify::Behaviour,
    /// Liveness: our own `/ipfs/ping/1.0.0`, which answers the remote's pings on every
    /// connection even after it refused ours ([`crate::ping`]).
    pub(crate) ping: ping::Behaviour,
}

impl Behaviour {
    /// The req/resp behaviour of `kind`.
    pub(crate) fn reqresp(
        &mut self,
        kind: preconfirmation_types::ReqRespKind,
    ) -> &mut request_response::Behaviour<PreconfCodec> {
        use preconfirmation_types::ReqRespKind;
        match kind {
            ReqRespKind::GetHead => &mut self.head,
            ReqRespKind::GetCommitmentsByNumber => &mut self.commitments,
            ReqRespKind::GetRawTxList => &mut self.txlist,
            ReqRespKind::GetRawTxLists => &mut self.txlists,
        }
    }
}
