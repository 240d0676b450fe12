//! The driver's swarm events: connections coming and going, listen addresses, and the
//! composed behaviour's events — gossip (checked against the topic's cap and the sender's
//! rate limits before the SDK sees it), req/resp (`reqresp`), identify and ping.

use std::time::Instant;

use libp2p::gossipsub::{self, MessageAcceptance};
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, PeerId};
use preconfirmation_types::ReqRespKind;
use tracing::{debug, info, warn};

use super::{Connected, Driver};
use crate::behaviour::BehaviourEvent;
use crate::chains::{chain_ids, on_other_chain};
use crate::event::{Direction, GossipVerdict, NetworkEvent};
use crate::gossip::DELIVERY_LOG_TARGET;
use crate::metrics;
use crate::ping;
use crate::reqresp::rate_limiter::GossipAdmission;

impl Driver {
    /// One swarm event: a behaviour's, or a connection or listen address coming or going.
    pub(super) fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } => {
                if num_established.get() != 1 {
                    return;
                }
                let direction = if endpoint.is_dialer() {
                    Direction::Outbound
                } else {
                    Direction::Inbound
                };
                let addr = endpoint.get_remote_address().clone();
                info!(peer = %peer_id, %addr, ?direction, "peer connected");
                self.peers.on_connected(
                    peer_id,
                    &addr,
                    direction == Direction::Outbound,
                    Instant::now(),
                );
                self.connected.insert(
                    peer_id,
                    Connected {
                        direction,
                        addr,
                        ping_rtt: None,
                        ping_unsupported: false,
                        served_bytes: 0,
                        gossip_dropped: 0,
                        chain_ids: Vec::new(),
                    },
                );
                metrics::peers_connected(self.connected.len());
                self.emit(
                    NetworkEvent::PeerConnected {
                        peer: peer_id,
                        direction,
                    },
                    "peer_connected",
                );
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                if num_established != 0 {
                    return;
                }
                info!(peer = %peer_id, "peer disconnected");
                self.peers.on_disconnected(peer_id, Instant::now());
                self.pacer.forget(&peer_id, Instant::now());
                self.connected.remove(&peer_id);
                metrics::peers_connected(self.connected.len());
                self.emit(
                    NetworkEvent::PeerDisconnected { peer: peer_id },
                    "peer_disconnected",
                );
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(peer = ?peer_id, %error, "outgoing connection failed");
                self.peers.on_dial_failed(peer_id);
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(%error, "incoming connection refused or failed");
                metrics::rejection("incoming_connection");
            }
            SwarmEvent::NewListenAddr { address, .. } if !self.listen_addrs.contains(&address) => {
                self.listen_addrs.push(address);
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            _ => {}
        }
    }

    /// One event of the composed behaviour. Exhaustive: a behaviour added to
    /// [`Behaviour`](crate::behaviour::Behaviour),
    /// such as a req/resp protocol, does not compile until its events are handled here.
    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::BlockList(never)
            | BehaviourEvent::IpLimit(never)
            | BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Gossipsub(e) => self.on_gossip(e),
            BehaviourEvent::Head(e) => self.on_reqresp(ReqRespKind::GetHead, e),
            BehaviourEvent::Commitments(e) => {
                self.on_reqresp(ReqRespKind::GetCommitmentsByNumber, e)
            }
            BehaviourEvent::Txlist(e) => self.on_reqresp(ReqRespKind::GetRawTxList, e),
            BehaviourEvent::Txlists(e) => self.on_reqresp(ReqRespKind::GetRawTxLists, e),
            BehaviourEvent::Identify(e) => self.on_identify(e),
            BehaviourEvent::Ping(e) => self.on_ping(e),
        }
    }

    /// Identify's answer tells what a peer speaks: how to pace our requests to it
    /// ([`crate::reqresp::self_limiter`]) and which chains it serves.
    fn on_identify(&mut self, event: identify::Event) {
        match event {
            identify::Event::Received { peer_id, info, .. } => {
                let profile = self.pacer.identified(peer_id, &info.protocols);
                debug!(peer = %peer_id, agent = %info.agent_version, ?profile, "identified");
                self.on_identified_chains(peer_id, chain_ids(&info.protocols));
            }
            identify::Event::Sent { .. }
            | identify::Event::Pushed { .. }
            | identify::Event::Error { .. } => {}
        }
    }

    /// Records the chains `peer` serves; a peer on another chain only is named once in a
    /// WARN (it stays connected: the operator may be mid-migration, and it costs one slot).
    fn on_identified_chains(&mut self, peer: PeerId, chains: Vec<u64>) {
        let ours = self.config.chain_id;
        if on_other_chain(&chains, ours) && self.other_chain_warnings.first_time(peer) {
            warn!(
                %peer,
                peer_chains = ?chains,
                our_chain = ours,
                "peer is on another chain (its protocols are /taiko/<chain id>/…): nothing can \
                 be exchanged with it; is the chain id right, here or there?"
            );
        }
        if let Some(c) = self.connected.get_mut(&peer) {
            c.chain_ids = chains;
        }
    }

    fn on_ping(&mut self, event: ping::Event) {
        let (peer, connection) = (event.peer, event.connection);
        let Some(c) = self.connected.get_mut(&peer) else {
            return;
        };
        match event.outcome {
            ping::Outcome::Rtt(rtt) => {
                debug!(%peer, ?rtt, "ping");
                metrics::ping_rtt(rtt);
                c.ping_rtt = Some(rtt);
            }
            ping::Outcome::Unsupported => {
                info!(
                    %peer,
                    %connection,
                    "peer does not support ping: no longer pinging it there, still answering its pings"
                );
                metrics::ping_unsupported();
                c.ping_unsupported = true;
            }
            ping::Outcome::Failure(error) => {
                debug!(%peer, %connection, %error, "ping failed");
                metrics::ping_failure(error.label());
            }
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let (propagation_source, message_id, message) = match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => (propagation_source, message_id, message),
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                // Messages that found the peer's send queue full, or waited in it too long:
                // counted on its snapshot, never scored (§7.1 names no such penalty).
                let dropped = failed_messages
                    .priority
                    .saturating_add(failed_messages.non_priority)
                    as u64;
                debug!(peer = %peer_id, dropped, "gossip dropped for a slow peer");
                if let Some(c) = self.connected.get_mut(&peer_id) {
                    c.gossip_dropped = c.gossip_dropped.saturating_add(dropped);
                }
                return;
            }
            // Subscriptions and the rest: gossipsub keeps them; nothing to do here.
            _ => return,
        };
        let Some(kind) = self.topics.kind(&message.topic) else {
            self.ignore_gossip(&message_id, &propagation_source);
            return;
        };
        debug!(
            target: DELIVERY_LOG_TARGET,
            topic = kind.label(),
            id = %message_id,
            peer = %propagation_source,
            "gossip received first"
        );
        let len = message.data.len();
        metrics::gossip_in(kind, len);
        if len > self.config.limits.max_gossip_len(kind) {
            debug!(peer = %propagation_source, topic = kind.label(), len, "oversized gossip");
            self.on_verdict(message_id, propagation_source, GossipVerdict::Reject);
            return;
        }
        let now = Instant::now();
        let admission = self
            .peers
            .rate_limiter()
            .admit_gossip(propagation_source, kind, len, now);
        if admission != GossipAdmission::Allow {
            // Over the peer's limits of the topic: neither delivered nor forwarded (Ignore
            // costs no gossipsub score); beyond the grace, one §7.1 penalty.
            metrics::gossip_rate_limited(kind, admission.label());
            self.ignore_gossip(&message_id, &propagation_source);
            if self.peers.refusal_penalised(propagation_source, now) {
                debug!(peer = %propagation_source, topic = kind.label(), len, limit = admission.label(), "gossip over the peer's rate limit");
                self.penalize(propagation_source, "gossip_rate_limited");
            }
            return;
        }
        let event = NetworkEvent::Gossip {
            peer: propagation_source,
            topic: kind,
            message_id: message_id.clone(),
            data: message.data,
            received_at: now,
        };
        if !self.emit(event, "gossip") {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    MessageAcceptance::Ignore,
                );
        }
    }
}
