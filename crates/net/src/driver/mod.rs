//! The driver: one task owning the `Swarm`, running a single `tokio::select!` loop over
//! commands from the handles, swarm events, discoveries, pending SDK answers and a tick.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError};
use libp2p::identity::Keypair;
use libp2p::request_response::{
    self, InboundFailure, InboundRequestId, OutboundFailure, OutboundRequestId, ProtocolSupport,
    ResponseChannel,
};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::SwarmEvent;
use libp2p::{
    allow_block_list, connection_limits, identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm,
    SwarmBuilder,
};
use preconfirmation_types::{GossipTopicKind, ReqRespKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::behaviour::{Behaviour, BehaviourEvent};
use crate::chains::{chain_ids, on_other_chain, OtherChainWarnings};
use crate::command::Command;
use crate::config::NetworkConfig;
use crate::discovery::{self, Discovered, DiscoveryHandle};
use crate::error::{CodecError, NetError, RequestError};
use crate::event::{
    Direction, GossipVerdict, InboundRequest, NetworkEvent, PeerSnapshot, PeerStateSizes, Responder,
};
use crate::gossip::{build_gossipsub, Topics};
use crate::metrics;
use crate::peers::manager::PeerManager;
use crate::ping;
use crate::reqresp::budget::{max_response_bytes, response_len};
use crate::reqresp::codec::{PreconfCodec, ReqRespProtocol, Request, Response};
use crate::reqresp::rate_limiter::{Admission, GossipAdmission};
use crate::reqresp::self_limiter::{Held, OutboundPacer, PeerProfile};

/// Identify protocol version string of this network.
pub const IDENTIFY_PROTOCOL: &str = "/taiko/preconf/1.0.0";

type PendingAnswer = BoxFuture<
    'static,
    (
        InboundRequestId,
        PeerId,
        ReqRespKind,
        ResponseChannel<Response>,
        Option<Response>,
    ),
>;

struct Driver {
    swarm: Swarm<Behaviour>,
    config: NetworkConfig,
    topics: Topics,
    peers: PeerManager<(ReqRespKind, InboundRequestId)>,
    /// Outbound pacing per peer and protocol, by what the peer speaks.
    pacer: OutboundPacer,
    connected: HashMap<PeerId, Connected>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetworkEvent>,
    discovered: mpsc::Receiver<Discovered>,
    discovery: Option<DiscoveryHandle>,
    outbound: HashMap<(ReqRespKind, OutboundRequestId), Outbound>,
    pending_answers: FuturesUnordered<PendingAnswer>,
    listen_addrs: Vec<Multiaddr>,
    /// Peers already named in a WARN for being on another chain.
    other_chain_warnings: OtherChainWarnings,
}

/// What the driver knows of a connected peer.
struct Connected {
    direction: Direction,
    addr: Multiaddr,
    ping_rtt: Option<Duration>,
    ping_unsupported: bool,
    /// SSZ bytes of the responses we sent it on its current connection(s).
    served_bytes: u64,
    /// The chains its identify protocols name ([`crate::chains::chain_ids`]).
    chain_ids: Vec<u64>,
}

/// An outbound request awaiting its answer.
struct Outbound {
    reply: oneshot::Sender<Result<Response, RequestError>>,
    /// Bytes reserved from our copy of the peer's budget ([`crate::reqresp::self_limiter`]).
    reserved: u64,
}

fn transport_err(e: impl std::fmt::Display) -> NetError {
    NetError::Transport(e.to_string())
}

/// Builds the swarm, starts listening and discovery, and spawns the driver.
pub(crate) async fn spawn(
    config: NetworkConfig,
    keypair: Keypair,
) -> Result<
    (
        mpsc::Sender<Command>,
        PeerId,
        Option<discovery::LocalEnr>,
        mpsc::Receiver<NetworkEvent>,
    ),
    NetError,
> {
    config.validate()?;
    let local_peer_id = keypair.public().to_peer_id();
    let topics = Topics::new(config.chain_id);
    let gossipsub = build_gossipsub(&config, &keypair, &topics)?;
    let reqresp = |kind: ReqRespKind| {
        request_response::Behaviour::with_codec(
            PreconfCodec::new(config.limits)
                .with_read_timeout(config.effective_request_read_timeout()),
            [(
                ReqRespProtocol::new(kind, config.chain_id),
                ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(config.request_timeout)
                .with_max_concurrent_streams(config.max_streams_per_connection),
        )
    };
    // One connection per peer (the usual case) makes these peer counts; connections per peer
    // id are capped by `ip_limit`, whose map forgets a peer with its last connection.
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(config.max_peers))
        .with_max_established_incoming(Some(config.max_inbound_peers))
        .with_max_established_outgoing(Some(config.max_outbound_peers))
        .with_max_pending_incoming(Some(config.max_pending_incoming));
    let behaviour = Behaviour {
        block_list: allow_block_list::Behaviour::default(),
        ip_limit: crate::peers::ip_limit::Behaviour::new(&config),
        limits: connection_limits::Behaviour::new(limits),
        gossipsub,
        head: reqresp(ReqRespKind::GetHead),
        commitments: reqresp(ReqRespKind::GetCommitmentsByNumber),
        txlist: reqresp(ReqRespKind::GetRawTxList),
        txlists: reqresp(ReqRespKind::GetRawTxLists),
        identify: identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.into(),
            keypair.public(),
        )),
        ping: ping::Behaviour::new(ping::Config::from_network(&config)),
    };
    let idle = config.idle_connection_timeout;
    let mut swarm = SwarmBuilder::with_existing_identity(keypair.clone())
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(transport_err)?
        .with_behaviour(|_| behaviour)
        .map_err(transport_err)?
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        // Bounds the upgrade (multistream-select, noise, yamux) of every connection, inbound
        // and outbound: a silent socket gives back its pending slot after this.
        .with_connection_timeout(config.handshake_timeout)
        .build();

    // Each fixed port is checked free before libp2p binds it (libp2p sets SO_REUSEPORT and
    // would share it with another node silently; see `listen`).
    let plan = crate::listen::listen_plan(&config, crate::listen::global_ipv6_route)?;
    let (listening, listen_addrs) = crate::listen::listen(&mut swarm, plan).await?;
    for &(ip, port) in &listening {
        info!(peer = %local_peer_id, addr = %SocketAddr::new(ip, port), "p2p network listening");
    }

    let (found_tx, found_rx) = mpsc::channel(256);
    let discovery = if config.discovery_enabled {
        // discv5's UDP port: the configured one, else the TCP port number as configured (a
        // configured 0 stays 0: a free port).
        let udp_port = config.discv5_port.unwrap_or(plan.primary.port());
        let (mut v4, mut v6) = (None, None);
        for &(ip, port) in &listening {
            match ip {
                IpAddr::V4(ip) => v4 = Some((ip, port)),
                IpAddr::V6(ip) => v6 = Some((ip, port)),
            }
        }
        let handle = discovery::start(
            &keypair,
            discovery::Listening { v4, v6, udp_port },
            &config.enr,
            &config.bootnodes,
            discovery::Pacing {
                min: config.discovery_min_interval,
                max: config.discovery_interval,
            },
            found_tx,
        )
        .await?;
        info!(enr = %handle.local_enr.get().to_base64(), "discv5 started");
        Some(handle)
    } else {
        drop(found_tx);
        None
    };
    let local_enr = discovery.as_ref().map(|d| d.local_enr.clone());

    let (cmd_tx, cmd_rx) = mpsc::channel(config.command_channel_capacity);
    let (ev_tx, ev_rx) = mpsc::channel(config.event_channel_capacity);
    let driver = Driver {
        swarm,
        peers: PeerManager::new(&config, Instant::now()),
        pacer: OutboundPacer::new(
            config.politeness,
            ReqRespProtocol::new(ReqRespKind::GetRawTxLists, config.chain_id).stream_protocol(),
        ),
        topics,
        connected: HashMap::new(),
        commands: cmd_rx,
        events: ev_tx,
        discovered: found_rx,
        discovery,
        outbound: HashMap::new(),
        pending_answers: FuturesUnordered::new(),
        listen_addrs,
        other_chain_warnings: OtherChainWarnings::new(config.remembered_departed_peers),
        config,
    };
    let span = info_span!("p2p_net", peer = %local_peer_id);
    tokio::spawn(driver.run().instrument(span));
    Ok((cmd_tx, local_peer_id, local_enr, ev_rx))
}

impl Driver {
    fn tick_interval(&self) -> Duration {
        (self.config.ban_sustain / 4).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.tick_interval());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let shutdown_reply = loop {
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(cmd) => self.on_command(cmd),
                    None => break None,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Some(found) = self.discovered.recv() => self.on_discovered(found),
                Some((id, peer, kind, channel, answer)) = self.pending_answers.next(),
                    if !self.pending_answers.is_empty() =>
                {
                    self.on_answer(id, peer, kind, channel, answer);
                }
                _ = tick.tick() => self.on_tick(),
            }
        };
        if let Some(d) = self.discovery.as_mut() {
            d.shutdown();
        }
        for (_, outbound) in self.outbound.drain() {
            let _ = outbound.reply.send(Err(RequestError::Shutdown));
        }
        info!("p2p network shut down");
        drop(self.swarm);
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn emit(&self, event: NetworkEvent, kind: &'static str) -> bool {
        match self.events.try_send(event) {
            Ok(()) => true,
            Err(_) => {
                warn!(kind, "event channel full or closed, dropping event");
                metrics::event_dropped(kind);
                false
            }
        }
    }

    // ---- commands ----------------------------------------------------------------------

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Publish { kind, data, reply } => {
                let _ = reply.send(self.publish(kind, data));
            }
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let kind = request.kind();
                if self.peers.is_banned(&peer) {
                    metrics::reqresp(kind, "outbound", outcome_label(&RequestError::Disconnected));
                    let _ = reply.send(Err(RequestError::Disconnected));
                    return;
                }
                let max_response = max_response_bytes(&request);
                let reserved = match self.pacer.admit(peer, kind, max_response, Instant::now()) {
                    Ok(reserved) => reserved,
                    Err(held) => {
                        let err = match held {
                            Held::Throttled(retry) => RequestError::Throttled(retry),
                            Held::Unsupported => RequestError::Refused(format!(
                                "peer does not advertise {}",
                                kind.label()
                            )),
                        };
                        debug!(%peer, protocol = kind.label(), error = %err, "outbound request held");
                        metrics::reqresp(kind, "outbound", outcome_label(&err));
                        let _ = reply.send(Err(err));
                        return;
                    }
                };
                let id = self
                    .swarm
                    .behaviour_mut()
                    .reqresp(kind)
                    .send_request(&peer, request);
                debug!(%peer, protocol = kind.label(), reserved, "outbound request");
                self.outbound
                    .insert((kind, id), Outbound { reply, reserved });
            }
            Command::Validation {
                message_id,
                source,
                verdict,
            } => self.on_verdict(message_id, source, verdict),
            Command::Penalize { peer, reason } => self.penalize(peer, reason),
            Command::Dial { addr, reply } => {
                if crate::peers::manager::peer_of(&addr).is_some_and(|p| self.peers.is_banned(&p)) {
                    let _ = reply.send(Err(NetError::Dial("peer is banned".into())));
                    return;
                }
                let res = self
                    .swarm
                    .dial(addr)
                    .map_err(|e| NetError::Dial(e.to_string()));
                let _ = reply.send(res);
            }
            Command::Ban { peer, duration } => self.ban(peer, duration),
            Command::Peers { reply } => {
                let list = self
                    .connected
                    .iter()
                    .map(|(peer, c)| PeerSnapshot {
                        peer_id: *peer,
                        score: self.score(peer),
                        direction: c.direction,
                        addr: c.addr.clone(),
                        ping_rtt: c.ping_rtt,
                        ping_unsupported: c.ping_unsupported,
                        served_bytes: c.served_bytes,
                        extended: self.pacer.profile(peer) == PeerProfile::Extended,
                        chain_ids: c.chain_ids.clone(),
                    })
                    .collect();
                let _ = reply.send(list);
            }
            Command::StateSizes { reply } => {
                let _ = reply.send(PeerStateSizes {
                    connected: self.connected.len(),
                    peer_manager: self.peers.map_sizes().total(),
                    peer_manager_maps: self.peers.map_sizes(),
                    pacer: self.pacer.tracked_peers(),
                    outbound_requests: self.outbound.len(),
                    connection_limits: self.swarm.behaviour().ip_limit.counts(),
                });
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.listen_addrs.clone());
            }
            Command::GossipPeers { kind, reply } => {
                let hash = self.topics.topic(kind).hash();
                let list = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .all_peers()
                    .filter(|(_, topics)| topics.contains(&&hash))
                    .map(|(p, _)| *p)
                    .collect();
                let _ = reply.send(list);
            }
            Command::MeshSizes { reply } => {
                let _ = reply.send(self.mesh_sizes());
            }
            Command::Shutdown { .. } => {}
        }
    }

    /// Peers in our gossipsub mesh of each topic.
    fn mesh_sizes(&self) -> Vec<(GossipTopicKind, usize)> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        GossipTopicKind::ALL
            .iter()
            .map(|&kind| {
                let hash = self.topics.topic(kind).hash();
                (kind, gossipsub.mesh_peers(&hash).count())
            })
            .collect()
    }

    fn publish(&mut self, kind: GossipTopicKind, data: Vec<u8>) -> Result<MessageId, NetError> {
        let len = data.len();
        let topic = self.topics.topic(kind).clone();
        match self.swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(id) => {
                metrics::gossip_out(kind, len);
                debug!(topic = kind.label(), len, "published");
                Ok(id)
            }
            Err(PublishError::NoPeersSubscribedToTopic) | Err(PublishError::AllQueuesFull(_)) => {
                Err(NetError::NoPeers)
            }
            Err(PublishError::Duplicate) => Err(NetError::Duplicate),
            Err(PublishError::MessageTooLarge) => Err(NetError::Oversize {
                len,
                cap: self.config.limits.max_gossip_len(kind),
            }),
            Err(e) => Err(NetError::Publish(e.to_string())),
        }
    }

    /// Tells gossipsub to drop a message without forwarding it and without scoring its sender.
    fn ignore_gossip(&mut self, id: &MessageId, source: &PeerId) {
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(id, source, MessageAcceptance::Ignore);
    }

    fn on_verdict(&mut self, id: MessageId, source: PeerId, verdict: GossipVerdict) {
        let acceptance = match verdict {
            GossipVerdict::Accept => MessageAcceptance::Accept,
            GossipVerdict::Reject => MessageAcceptance::Reject,
            GossipVerdict::Ignore => MessageAcceptance::Ignore,
        };
        self.swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&id, &source, acceptance);
        match verdict {
            GossipVerdict::Accept => {
                let score = self.peers.reward(source, Instant::now());
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&source, score);
            }
            GossipVerdict::Reject => self.penalize(source, "gossip_rejected"),
            GossipVerdict::Ignore => {}
        }
    }

    fn penalize(&mut self, peer: PeerId, reason: &'static str) {
        metrics::rejection(reason);
        match self.peers.drop_instead(peer, reason) {
            Some(true) => {
                info!(
                    %peer,
                    reason,
                    "static peer served history that fails validation here: disconnected, \
                     redialled with backoff (never banned for it)"
                );
                let _ = self.swarm.disconnect_peer_id(peer);
                return;
            }
            Some(false) => return,
            None => {}
        }
        if let Some(score) = self.peers.penalize(peer, Instant::now()) {
            debug!(%peer, reason, app_score = score, "peer penalised");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, score);
        }
    }

    fn ban(&mut self, peer: PeerId, duration: Duration) {
        let until = Instant::now() + duration;
        warn!(%peer, ?duration, "banning peer");
        self.peers.ban(peer, until);
        let b = self.swarm.behaviour_mut();
        b.block_list.block_peer(peer);
        b.gossipsub.blacklist_peer(&peer);
        metrics::ban();
        self.emit(NetworkEvent::PeerBanned { peer, until }, "peer_banned");
    }

    /// The total score of a peer: gossipsub's (topic scores + app score) for peers speaking
    /// gossipsub, else the app score alone (e.g. a req/resp-only peer sending bad frames).
    fn score(&self, peer: &PeerId) -> f64 {
        let gs = &self.swarm.behaviour().gossipsub;
        if gs.all_peers().any(|(p, _)| p == peer) {
            gs.peer_score(peer).unwrap_or(0.0)
        } else {
            self.peers.app_score(peer)
        }
    }

    // ---- periodic work -----------------------------------------------------------------

    fn on_tick(&mut self) {
        let now = Instant::now();
        for (peer, score) in self.peers.decay_app_scores(now) {
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, score);
        }
        let scores: Vec<(PeerId, f64)> =
            self.connected.keys().map(|p| (*p, self.score(p))).collect();
        for (_, s) in &scores {
            metrics::peer_score(*s);
        }
        for (kind, peers) in self.mesh_sizes() {
            metrics::gossip_mesh_peers(kind, peers);
        }
        for peer in self.peers.peers_to_ban(scores, now) {
            self.ban(peer, self.config.ban_period);
        }
        for peer in self.peers.expired_bans(now) {
            info!(%peer, "ban expired");
            let b = self.swarm.behaviour_mut();
            b.block_list.unblock_peer(peer);
            b.gossipsub.remove_blacklisted_peer(&peer);
        }
        self.peers.forget_departed(now);
        let connected = &self.connected;
        self.pacer.prune(now, |peer| connected.contains_key(peer));
        for addr in self.peers.due_static_dials(now) {
            debug!(%addr, "dialling static peer");
            if let Err(e) = self.swarm.dial(addr.clone()) {
                debug!(%addr, error = %e, "static dial failed");
            }
        }
        if let Some(d) = &self.discovery {
            d.want_peers.store(
                self.peers.below_target(),
                std::sync::atomic::Ordering::Relaxed,
            );
        }
    }

    fn on_discovered(&mut self, found: Discovered) {
        if found.peer == *self.swarm.local_peer_id()
            || !self.peers.wants_dial(&found.peer, Instant::now())
        {
            return;
        }
        debug!(peer = %found.peer, addr = %found.addr, "dialling discovered peer");
        let opts = DialOpts::peer_id(found.peer)
            .addresses(vec![found.addr])
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => self.peers.mark_dialing(found.peer),
            Err(e) => debug!(peer = %found.peer, error = %e, "dial failed"),
        }
    }

    // ---- inbound answers ---------------------------------------------------------------

    fn on_answer(
        &mut self,
        id: InboundRequestId,
        peer: PeerId,
        kind: ReqRespKind,
        channel: ResponseChannel<Response>,
        answer: Option<Response>,
    ) {
        let now = Instant::now();
        match answer {
            Some(response) => {
                let len = response_len(&response);
                if self
                    .swarm
                    .behaviour_mut()
                    .reqresp(kind)
                    .send_response(channel, response)
                    .is_err()
                {
                    // Nothing served: the reservation is refunded in full.
                    metrics::reqresp(kind, "inbound", "stream_closed");
                    self.peers.inbound_done((kind, id), now);
                    return;
                }
                // Refund the reservation down to what is sent, now rather than when libp2p
                // reports it written: the requester refunds when it has read it, later.
                self.peers.response_sent((kind, id), len, now);
                metrics::reqresp(kind, "inbound", "served");
                metrics::response_bytes(kind, len);
                if let Some(c) = self.connected.get_mut(&peer) {
                    c.served_bytes = c.served_bytes.saturating_add(len);
                }
            }
            None => {
                debug!(%peer, protocol = kind.label(), "no answer from the SDK; closing stream");
                metrics::reqresp(kind, "inbound", "unanswered");
                drop(channel);
                self.peers.inbound_done((kind, id), now);
            }
        }
    }

    // ---- swarm events ------------------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(e)) => self.on_gossip(e),
            SwarmEvent::Behaviour(BehaviourEvent::Head(e)) => {
                self.on_reqresp(ReqRespKind::GetHead, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Commitments(e)) => {
                self.on_reqresp(ReqRespKind::GetCommitmentsByNumber, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Txlist(e)) => {
                self.on_reqresp(ReqRespKind::GetRawTxList, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Txlists(e)) => {
                self.on_reqresp(ReqRespKind::GetRawTxLists, e)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                let profile = self.pacer.identified(peer_id, &info.protocols);
                debug!(peer = %peer_id, agent = %info.agent_version, ?profile, "identified");
                self.on_identified_chains(peer_id, chain_ids(&info.protocols));
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(e)) => self.on_ping(e),
            SwarmEvent::Behaviour(_) => {}
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
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return;
        };
        let Some(kind) = self.topics.kind(&message.topic) else {
            self.ignore_gossip(&message_id, &propagation_source);
            return;
        };
        let len = message.data.len();
        metrics::gossip_in(kind, len);
        if len > self.config.limits.max_gossip_len(kind) {
            debug!(peer = %propagation_source, topic = kind.label(), len, "oversized gossip");
            self.on_verdict(message_id, propagation_source, GossipVerdict::Reject);
            return;
        }
        let now = Instant::now();
        let admission = self.peers.admit_gossip(propagation_source, kind, len, now);
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

    fn on_reqresp(&mut self, kind: ReqRespKind, event: request_response::Event<Request, Response>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => self.on_inbound_request(peer, request_id, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(Outbound { reply, reserved }) =
                    self.outbound.remove(&(kind, request_id))
                {
                    let res = if response.kind() == kind {
                        let len = response_len(&response);
                        self.pacer
                            .answered(&peer, kind, reserved, len, Instant::now());
                        metrics::reqresp(kind, "outbound", "ok");
                        Ok(response)
                    } else {
                        self.pacer.done(&peer, kind);
                        let err = RequestError::Decode("mismatched response".into());
                        metrics::reqresp(kind, "outbound", outcome_label(&err));
                        Err(err)
                    };
                    debug!(%peer, protocol = kind.label(), ok = res.is_ok(), "response");
                    let _ = reply.send(res);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(Outbound { reply, .. }) = self.outbound.remove(&(kind, request_id)) else {
                    return;
                };
                // No refund: we do not know what the peer served.
                self.pacer.done(&peer, kind);
                let err = match error {
                    OutboundFailure::Timeout => RequestError::Timeout,
                    OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => {
                        RequestError::Disconnected
                    }
                    OutboundFailure::UnsupportedProtocols => {
                        RequestError::Refused("protocol not supported".into())
                    }
                    OutboundFailure::Io(e) => match CodecError::from_io(&e) {
                        Some(codec) => {
                            let err = RequestError::from(codec.clone());
                            self.penalize(peer, "bad_response");
                            err
                        }
                        None => {
                            // The stream closed without an answer: the peer refused a
                            // request our pacing admitted, so it runs tighter limits.
                            self.pacer.refused(&peer, kind, Instant::now());
                            RequestError::Refused(e.to_string())
                        }
                    },
                };
                debug!(%peer, protocol = kind.label(), error = %err, "outbound request failed");
                metrics::reqresp(kind, "outbound", outcome_label(&err));
                let _ = reply.send(Err(err));
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.peers.inbound_done((kind, request_id), Instant::now());
                if let InboundFailure::Io(e) = &error {
                    if let Some(codec) = CodecError::from_io(e) {
                        let reason = penalty_reason(codec);
                        debug!(%peer, error = %codec, "inbound request refused");
                        self.penalize(peer, reason);
                        return;
                    }
                }
                debug!(%peer, %error, "inbound request failed");
            }
            Event::ResponseSent { request_id, .. } => {
                self.peers.inbound_done((kind, request_id), Instant::now());
            }
        }
    }

    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        id: InboundRequestId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let kind = request.kind();
        let span = info_span!("inbound_request", %peer, protocol = kind.label());
        let _enter = span.enter();
        if self.peers.is_banned(&peer) {
            return;
        }
        if let Request::Invalid(_, error) = &request {
            // Over-cap prefix, malformed body, or not all there within the read timeout
            // (slowloris): nothing more is read; close the stream without a response and
            // penalise the sender.
            let reason = penalty_reason(error);
            debug!(%error, reason, "invalid inbound request");
            metrics::reqresp(kind, "inbound", reason);
            drop(channel);
            self.penalize(peer, reason);
            return;
        }
        let now = Instant::now();
        let max_response = max_response_bytes(&request);
        let admission = self.peers.admit(peer, kind, (kind, id), max_response, now);
        if admission != Admission::Allow {
            let reason = admission.label();
            metrics::reqresp(kind, "inbound", reason);
            drop(channel);
            if self.peers.refusal_penalised(peer, now) {
                debug!(reason, "inbound request refused");
                self.penalize(peer, reason);
            } else {
                // Within the grace: an honest node may be learning our limits.
                debug!(reason, "inbound request refused, without penalty (grace)");
                metrics::refusal_forgiven(kind, reason);
            }
            return;
        }
        let timeout = self.config.request_timeout;
        let (event, answer): (InboundRequest, BoxFuture<'static, Option<Response>>) = match request
        {
            Request::GetHead => {
                let (responder, rx) = Responder::new();
                (
                    InboundRequest::GetHead { peer, responder },
                    rx.map(|r| r.ok().map(Response::Head)).boxed(),
                )
            }
            Request::GetCommitmentsByNumber(request) => {
                let (responder, rx) = Responder::new();
                (
                    InboundRequest::GetCommitmentsByNumber {
                        peer,
                        request,
                        responder,
                    },
                    rx.map(|r| r.ok().map(Response::Commitments)).boxed(),
                )
            }
            Request::Invalid(..) => return,
            Request::GetRawTxList(request) => {
                let (responder, rx) = Responder::new();
                (
                    InboundRequest::GetRawTxList {
                        peer,
                        request,
                        responder,
                    },
                    rx.map(|r| r.ok().map(Response::RawTxList)).boxed(),
                )
            }
            Request::GetRawTxLists(request) => {
                let (responder, rx) = Responder::new();
                (
                    InboundRequest::GetRawTxLists {
                        peer,
                        request,
                        responder,
                    },
                    rx.map(|r| r.ok().map(Response::RawTxLists)).boxed(),
                )
            }
        };
        if !self.emit(NetworkEvent::InboundRequest(event), "inbound_request") {
            metrics::reqresp(kind, "inbound", "dropped");
            self.peers.inbound_done((kind, id), Instant::now());
            return;
        }
        // Counted once, when it ends: `served`, `stream_closed` or `unanswered`.
        self.pending_answers.push(
            async move {
                let answer = tokio::time::timeout(timeout, answer).await.ok().flatten();
                (id, peer, kind, channel, answer)
            }
            .boxed(),
        );
    }
}

/// The penalty reason (and metric label) of an inbound request the codec refused.
fn penalty_reason(e: &CodecError) -> &'static str {
    match e {
        CodecError::Oversize { .. } => "oversize_request",
        CodecError::ReadTimeout { .. } => crate::reqresp::codec::SLOW_REQUEST_PENALTY_REASON,
        CodecError::Varint(_) | CodecError::Decode(_) => "malformed_request",
    }
}

fn outcome_label(e: &RequestError) -> &'static str {
    match e {
        RequestError::Timeout => "timeout",
        RequestError::Refused(_) => "refused",
        RequestError::Oversize { .. } => "oversize",
        RequestError::Decode(_) => "decode",
        RequestError::Disconnected => "disconnected",
        RequestError::Shutdown => "shutdown",
        RequestError::Throttled(_) => "throttled",
    }
}
