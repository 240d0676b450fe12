//! The driver: one task owning the `Swarm`, running a single `tokio::select!` loop over
//! commands from the handles, swarm events, discoveries, pending SDK answers and a tick.
//!
//! This file builds the swarm ([`spawn`]) and holds the loop, the commands, gossip verdicts,
//! penalties, bans and the periodic work; `swarm` handles the swarm's and the behaviour's
//! events, `reqresp` our requests and the inbound ones.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::gossipsub::{MessageAcceptance, MessageId, PublishError};
use libp2p::identity::Keypair;
use libp2p::request_response::{
    self, InboundRequestId, OutboundRequestId, ProtocolSupport, ResponseChannel,
};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{
    allow_block_list, connection_limits, identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm,
    SwarmBuilder,
};
use preconfirmation_types::{GossipTopicKind, ReqRespKind};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, info_span, warn, Instrument};

use crate::behaviour::Behaviour;
use crate::chains::OtherChainWarnings;
use crate::command::Command;
use crate::config::NetworkConfig;
use crate::discovery::{self, Discovered, DiscoveryHandle};
use crate::error::{NetError, RequestError};
use crate::event::{Direction, GossipVerdict, NetworkEvent, PeerSnapshot, PeerStateSizes};
use crate::gossip::{build_gossipsub, Topics};
use crate::metrics;
use crate::peers::manager::PeerManager;
use crate::ping;
use crate::reqresp::codec::{PreconfCodec, ReqRespProtocol, Response};
use crate::reqresp::self_limiter::{OutboundPacer, PeerProfile};

mod reqresp;
mod swarm;

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
    /// Gossip messages dropped for it because its send queue stayed full.
    gossip_dropped: u64,
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

/// Name of the thread the network runs on when [`NetworkConfig::own_thread`] is set.
pub const NET_THREAD: &str = "p2p-net";

/// What a started network gives its handle: the command channel, our peer id, our ENR (with
/// discovery) and the event channel.
type Started = (
    mpsc::Sender<Command>,
    PeerId,
    Option<discovery::LocalEnr>,
    mpsc::Receiver<NetworkEvent>,
);

/// Builds the swarm, starts listening and discovery, and spawns the driver: on a thread of
/// its own ([`NET_THREAD`], with a one-thread runtime on which the swarm, its connections and
/// discv5 run) when [`NetworkConfig::own_thread`] is set, else as a task of the current
/// runtime.
pub(crate) async fn spawn(config: NetworkConfig, keypair: Keypair) -> Result<Started, NetError> {
    if !config.own_thread {
        let (driver, started) = build(config, keypair).await?;
        tokio::spawn(driver.run_in_span());
        return Ok(started);
    }
    let (started_tx, started_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(NET_THREAD.into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started_tx.send(Err(NetError::Transport(format!("runtime: {e}"))));
                    return;
                }
            };
            // Every socket, timer and connection task of the network belongs to this runtime:
            // the swarm is built inside it.
            runtime.block_on(async move {
                match build(config, keypair).await {
                    Ok((driver, started)) => {
                        if started_tx.send(Ok(started)).is_ok() {
                            driver.run_in_span().await;
                        }
                    }
                    Err(e) => {
                        let _ = started_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| NetError::Transport(format!("network thread: {e}")))?;
    started_rx.await.map_err(|_| NetError::Shutdown)?
}

/// Builds the swarm, starts listening and discovery; the driver and what its handle needs.
async fn build(config: NetworkConfig, keypair: Keypair) -> Result<(Driver, Started), NetError> {
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
    Ok((driver, (cmd_tx, local_peer_id, local_enr, ev_rx)))
}

impl Driver {
    /// [`Self::run`] in a span naming our peer.
    async fn run_in_span(self) {
        let span = info_span!("p2p_net", peer = %self.swarm.local_peer_id());
        self.run().instrument(span).await
    }

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
            } => self.send_request(peer, request, reply),
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
                        gossip_dropped: c.gossip_dropped,
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
}
