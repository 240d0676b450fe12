//! The adversary harness: scriptable hostile peers against real in-process nodes on 127.0.0.1.
//!
//! - [`RawPeer`]: a bare libp2p swarm (TCP + noise + yamux, nothing else) that opens streams on
//!   any protocol id — the three req/resp protocols, gossipsub's `/meshsub/1.1.0`, identify push,
//!   ping — and writes whatever a [`Step`] script says: garbage, malformed SSZ, varint prefixes
//!   of 4 GiB, silence (slowloris) or one byte per second. It answers nothing and never
//!   frames anything itself.
//! - [`GossipPeer`]: a `preconfirmation-net` service with no SDK behind it: publishes arbitrary
//!   payloads on the gossip topics (signed gossipsub envelopes, raw SSZ inside) and answers
//!   inbound requests with whatever a [`Liar`] returns (lying catch-up pages, bad tx lists).
//! - [`raw_tcp`]: plain TCP below libp2p (garbage instead of multistream-select, silent sockets).
//! - [`Honest`]: a few honest [`Node`]s (redb data dirs) in a full mesh, a publisher that
//!   measures how long an honest commitment takes to reach every honest node, and the check that
//!   no acknowledged commitment went missing.
//!
//! The RSS and allocation sampler the attack tests report with lives in the test binary, whose
//! global allocator it reads (`crates/devtools/tests/adversary`).
//!
//! Every wait is bounded; tests print one `RELIABILITY …` line with their measurements.

/// A `request_response::Codec` method of the side a double never takes: it fails with `$why`.
/// `read NAME -> TYPE` reads a message of TYPE; `write NAME(TYPE)` writes one.
macro_rules! refused_codec_method {
    (read $name:ident -> $out:ty, $why:literal) => {
        async fn $name<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<$out>
        where
            T: AsyncRead + Unpin + Send,
        {
            Err(io::Error::other($why))
        }
    };
    (write $name:ident($msg:ty), $why:literal) => {
        async fn $name<T>(&mut self, _: &StreamProtocol, _: &mut T, _: $msg) -> io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            Err(io::Error::other($why))
        }
    };
}

pub mod strict;

use std::collections::{HashMap, HashSet};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{identity::Keypair, noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol};
use p2p::testkit::ChainBuilder;
use p2p::{SdkEvent, SdkEvents};
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_net::{InboundRequest, NetworkConfig, NetworkEvent, P2pService};
use preconfirmation_types::{
    ChainSpec, GetCommitmentsByNumberResponse, GetRawTxListResponse, PreconfHead, ReqRespKind,
    SignedCommitment, B256,
};
use tokio::sync::{mpsc, oneshot, watch};

use crate::testing::{self as common, WAIT};

// ------------------------------------------------------------------------------- config

/// A node config for attack tests: the shared test config plus a 1 s ban sustain (production:
/// 30 s; time to ban scales with it, see RELIABILITY.md), 3 s request timeout, RPC off.
pub fn attack_config(
    dir: &std::path::Path,
    builder: &ChainBuilder,
    peers: Vec<Multiaddr>,
) -> NodeConfig {
    let mut c = common::node_config(dir, builder, peers);
    c.rpc.enabled = false;
    c.sdk.network.ban_sustain = Duration::from_secs(1);
    c.sdk.network.request_timeout = Duration::from_secs(3);
    c.sdk.network.static_peer_max_backoff = Duration::from_secs(1);
    c
}

/// A bare network config for [`GossipPeer`]s on the test chain.
pub fn attacker_network(chain: &ChainSpec) -> NetworkConfig {
    let mut c = NetworkConfig {
        chain_id: chain.chain_id,
        limits: chain.limits,
        request_timeout: Duration::from_secs(5),
        ..NetworkConfig::default()
    };
    crate::loopback::network(&mut c);
    c.gossip.heartbeat_interval = Duration::from_millis(200);
    // The attacker must not ban its victims for refusing it.
    c.ban_sustain = Duration::from_secs(3600);
    c.rate_limit = preconfirmation_net::RateLimitConfig::uniform(100_000, Duration::from_secs(1));
    c
}

// ------------------------------------------------------------------------------- honest nodes

/// Honest nodes in a full mesh (node `i` has every `j < i` as a static peer).
pub struct Honest {
    /// The nodes, in start order.
    pub nodes: Vec<Node>,
    /// Each node's event subscription, taken at its start.
    pub events: Vec<SdkEvents>,
    /// The chain the publisher extends.
    pub builder: ChainBuilder,
    /// The nodes' data dirs (removed on drop).
    pub dir: tempfile::TempDir,
    /// Every commitment an honest node published and every honest node stored.
    pub acknowledged: Vec<SignedCommitment>,
}

impl Honest {
    /// `n` honest nodes on `builder`'s chain; `tweak` adjusts each config.
    pub async fn start(
        n: usize,
        builder: ChainBuilder,
        tweak: impl Fn(usize, &mut NodeConfig),
    ) -> Honest {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut nodes: Vec<Node> = Vec::new();
        let mut events = Vec::new();
        let mut addrs = Vec::new();
        for i in 0..n {
            let mut c = attack_config(
                &dir.path().join(format!("honest{i}")),
                &builder,
                addrs.clone(),
            );
            tweak(i, &mut c);
            let mut node = common::start(c).await;
            events.push(node.take_events().expect("events"));
            addrs.push(common::p2p_addr(&node).await);
            nodes.push(node);
        }
        for node in &nodes {
            node.sdk()
                .wait_for_gossip_peers(n - 1, WAIT)
                .await
                .expect("honest mesh forms");
        }
        Honest {
            nodes,
            events,
            builder,
            dir,
            acknowledged: Vec::new(),
        }
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Publishes the next block (with a tx list) from node `from` and waits until every honest
    /// node in `reach` has it as head; returns the time it took.
    pub async fn publish_from(&mut self, from: usize, reach: &[usize]) -> Duration {
        let number = self.builder.next_number();
        let block = self
            .builder
            .next_block(Some(p2p::testkit::deterministic_txlist(number, 256)));
        let started = Instant::now();
        let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
        let _ = self.nodes[from]
            .sdk()
            .publish(block.commitment.clone(), txlist)
            .await;
        for &i in reach {
            wait_head(&self.nodes[i], number).await;
        }
        self.acknowledged.push(block.commitment);
        started.elapsed()
    }

    /// Publishes from node 0 until every node has it; returns the latency.
    pub async fn publish(&mut self) -> Duration {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.publish_from(0, &all).await
    }

    /// Every acknowledged commitment is stored, unchanged, on every honest node, and so is its
    /// tx list (waited for, within the bound: a tx list may still be on its way when its
    /// commitment is). Returns the lost count, commitments and tx lists (asserted 0).
    pub async fn assert_nothing_lost(&self) -> usize {
        let mut lost_commitments = 0;
        let mut lost_txlists = 0;
        for node in &self.nodes {
            for c in &self.acknowledged {
                let number = u64::try_from(c.preconf().block_number).expect("u64");
                let stored = node
                    .sdk()
                    .commitment_by_number(number)
                    .expect("storage reads");
                if stored.as_ref() != Some(c) {
                    lost_commitments += 1;
                }
                let hash = c.preconf().raw_tx_list_hash;
                if hash == B256::ZERO {
                    continue;
                }
                let arrived = tokio::time::timeout(WAIT, async {
                    while !matches!(node.sdk().raw_txlist(&hash), Ok(Some(_))) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
                .await;
                if arrived.is_err() {
                    lost_txlists += 1;
                }
            }
        }
        assert_eq!(lost_commitments, 0, "acknowledged commitments lost");
        assert_eq!(lost_txlists, 0, "tx lists of acknowledged commitments lost");
        lost_commitments + lost_txlists
    }

    /// Stops every node.
    pub async fn shutdown(self) {
        for node in self.nodes {
            node.shutdown().await;
        }
    }
}

/// Waits until `node`'s head is at least `number`.
pub async fn wait_head(node: &Node, number: u64) {
    let mut status = node.sdk().watch_status();
    tokio::time::timeout(WAIT, status.wait_for(|s| s.head_block_number >= number))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "head {} did not reach {number} in time",
                node.sdk().status().head_block_number
            )
        })
        .expect("status watch open");
}

/// Waits for a `PeerBanned` of `peer` on `events`; returns how long it took from `since`.
pub async fn wait_banned(events: &mut SdkEvents, peer: PeerId, since: Instant) -> Duration {
    tokio::time::timeout(WAIT * 2, async {
        loop {
            match events.recv().await {
                Ok(SdkEvent::PeerBanned { peer: p, .. }) if p == peer => return since.elapsed(),
                Ok(_) | Err(p2p::P2pSdkError::Lagged { .. }) => {}
                Err(e) => panic!("events closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{peer} not banned within {:?}", WAIT * 2))
}

/// Waits until `node` reports a negative score for `peer`, or `peer` is gone (banned).
pub async fn wait_penalised(node: &Node, peer: PeerId) -> f64 {
    tokio::time::timeout(WAIT, async {
        loop {
            let peers = node.sdk().peers().await.expect("peers");
            match peers.iter().find(|p| p.peer_id == peer) {
                Some(p) if p.score < 0.0 => return p.score,
                None => return f64::NEG_INFINITY,
                Some(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
    .await
    .expect("attacker penalised within the bound")
}

/// The node's libp2p TCP port.
pub async fn tcp_port(node: &Node) -> u16 {
    let addr = node.sdk().listen_addrs().await.expect("addrs")[0].clone();
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp port")
}

// ------------------------------------------------------------------------------- raw libp2p

/// One step of what a [`RawPeer`] writes on a stream.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes at once.
    Write(Vec<u8>),
    /// Write these bytes one at a time, pausing `every` after each.
    Trickle {
        /// What to write.
        bytes: Vec<u8>,
        /// The pause after each byte.
        every: Duration,
    },
    /// Write nothing for this long, keeping the stream open.
    Silence(Duration),
}

/// Unsigned-varint encoding of `n` (the req/resp and gossipsub length prefix).
pub fn varint(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut v = n;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The protocols a raw peer can open streams on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `get_head`.
    GetHead,
    /// `get_commitments_by_number`.
    GetCommitments,
    /// `get_raw_txlist`.
    GetRawTxList,
    /// Gossipsub, `/meshsub/1.1.0`.
    Meshsub,
    /// Identify push.
    IdentifyPush,
    /// `/ipfs/ping/1.0.0`.
    Ping,
}

impl Proto {
    /// Every protocol.
    pub const ALL: [Proto; 6] = [
        Proto::GetHead,
        Proto::GetCommitments,
        Proto::GetRawTxList,
        Proto::Meshsub,
        Proto::IdentifyPush,
        Proto::Ping,
    ];
    /// The req/resp protocols.
    pub const REQRESP: [Proto; 3] = [Proto::GetHead, Proto::GetCommitments, Proto::GetRawTxList];

    fn id(self, chain_id: u64) -> StreamProtocol {
        let s = match self {
            Proto::GetHead => ReqRespKind::GetHead.protocol_id(chain_id),
            Proto::GetCommitments => ReqRespKind::GetCommitmentsByNumber.protocol_id(chain_id),
            Proto::GetRawTxList => ReqRespKind::GetRawTxList.protocol_id(chain_id),
            Proto::Meshsub => "/meshsub/1.1.0".into(),
            Proto::IdentifyPush => "/ipfs/id/push/1.0.0".into(),
            Proto::Ping => "/ipfs/ping/1.0.0".into(),
        };
        StreamProtocol::try_from_owned(s).expect("protocol id")
    }
}

/// Writes scripts, reads whatever comes back (at most 16 MiB) until the stream ends.
#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<Step>;
    type Response = Vec<u8>;

    refused_codec_method!(read read_request -> Vec<Step>, "a raw peer serves nothing");

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut out = Vec::new();
        io.take(16 << 20).read_to_end(&mut out).await?;
        Ok(out)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        script: Vec<Step>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        for step in script {
            match step {
                Step::Write(bytes) => {
                    io.write_all(&bytes).await?;
                    io.flush().await?;
                }
                Step::Trickle { bytes, every } => {
                    for b in bytes {
                        io.write_all(&[b]).await?;
                        io.flush().await?;
                        tokio::time::sleep(every).await;
                    }
                }
                Step::Silence(d) => tokio::time::sleep(d).await,
            }
        }
        Ok(())
    }

    refused_codec_method!(write write_response(Vec<u8>), "a raw peer serves nothing");
}

#[derive(NetworkBehaviour)]
struct RawBehaviour {
    head: request_response::Behaviour<RawCodec>,
    commitments: request_response::Behaviour<RawCodec>,
    txlist: request_response::Behaviour<RawCodec>,
    meshsub: request_response::Behaviour<RawCodec>,
    identify_push: request_response::Behaviour<RawCodec>,
    ping: request_response::Behaviour<RawCodec>,
}

impl RawBehaviour {
    fn get(&mut self, proto: Proto) -> &mut request_response::Behaviour<RawCodec> {
        match proto {
            Proto::GetHead => &mut self.head,
            Proto::GetCommitments => &mut self.commitments,
            Proto::GetRawTxList => &mut self.txlist,
            Proto::Meshsub => &mut self.meshsub,
            Proto::IdentifyPush => &mut self.identify_push,
            Proto::Ping => &mut self.ping,
        }
    }
}

enum RawCommand {
    Dial(Multiaddr),
    Send {
        peer: PeerId,
        proto: Proto,
        script: Vec<Step>,
        reply: oneshot::Sender<Result<Vec<u8>, String>>,
    },
}

/// A swarm of the harness's scripted peers: TCP (nodelay) + noise + yamux, `behaviour`, idle
/// connections kept for 10 minutes (the tests end them).
pub fn tcp_swarm<B: NetworkBehaviour>(key: Keypair, behaviour: B) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("transport")
        .with_behaviour(|_| behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build()
}

/// A hostile peer on bare libp2p streams. Dropping it stops its swarm.
pub struct RawPeer {
    /// Its peer id.
    pub peer_id: PeerId,
    commands: mpsc::UnboundedSender<RawCommand>,
    connected: watch::Receiver<HashSet<PeerId>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RawPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RawPeer {
    /// A raw peer for `chain_id` with a fresh identity.
    pub fn spawn(chain_id: u64) -> RawPeer {
        Self::spawn_with_key(chain_id, Keypair::generate_ed25519())
    }

    /// A raw peer for `chain_id` with identity `key` (a peer that comes back as itself).
    pub fn spawn_with_key(chain_id: u64, key: Keypair) -> RawPeer {
        let peer_id = key.public().to_peer_id();
        let rr = |proto: Proto| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(proto.id(chain_id), ProtocolSupport::Outbound)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(600))
                    .with_max_concurrent_streams(1024),
            )
        };
        let behaviour = RawBehaviour {
            head: rr(Proto::GetHead),
            commitments: rr(Proto::GetCommitments),
            txlist: rr(Proto::GetRawTxList),
            meshsub: rr(Proto::Meshsub),
            identify_push: rr(Proto::IdentifyPush),
            ping: rr(Proto::Ping),
        };
        let mut swarm = tcp_swarm(key, behaviour);
        let (commands, mut rx) = mpsc::unbounded_channel();
        let (connected_tx, connected) = watch::channel(HashSet::new());
        let task = tokio::spawn(async move {
            let mut pending: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, String>>> =
                HashMap::new();
            loop {
                tokio::select! {
                    command = rx.recv() => match command {
                        None => return,
                        Some(RawCommand::Dial(addr)) => { let _ = swarm.dial(addr); }
                        Some(RawCommand::Send { peer, proto, script, reply }) => {
                            let id = swarm.behaviour_mut().get(proto).send_request(&peer, script);
                            pending.insert(id, reply);
                        }
                    },
                    event = swarm.select_next_some() => {
                        use request_response::{Event, Message};
                        let rr_event = match event {
                            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                                connected_tx.send_modify(|s| { s.insert(peer_id); });
                                None
                            }
                            SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                                connected_tx.send_modify(|s| { s.remove(&peer_id); });
                                None
                            }
                            SwarmEvent::Behaviour(e) => Some(match e {
                                RawBehaviourEvent::Head(e)
                                | RawBehaviourEvent::Commitments(e)
                                | RawBehaviourEvent::Txlist(e)
                                | RawBehaviourEvent::Meshsub(e)
                                | RawBehaviourEvent::IdentifyPush(e)
                                | RawBehaviourEvent::Ping(e) => e,
                            }),
                            _ => None,
                        };
                        match rr_event {
                            Some(Event::Message { message: Message::Response { request_id, response }, .. }) => {
                                if let Some(reply) = pending.remove(&request_id) {
                                    let _ = reply.send(Ok(response));
                                }
                            }
                            Some(Event::OutboundFailure { request_id, error, .. }) => {
                                if let Some(reply) = pending.remove(&request_id) {
                                    let _ = reply.send(Err(error.to_string()));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        RawPeer {
            peer_id,
            commands,
            connected,
            task,
        }
    }

    /// Dials `node` and waits until connected.
    pub async fn connect(&self, node: &Node) {
        let addr = common::p2p_addr(node).await;
        let target = node.sdk().local_peer_id();
        let _ = self.commands.send(RawCommand::Dial(addr));
        let mut connected = self.connected.clone();
        tokio::time::timeout(WAIT, connected.wait_for(|s| s.contains(&target)))
            .await
            .expect("raw peer connects")
            .expect("raw peer alive");
    }

    /// Dials `node` and waits up to `within` for the connection; whether it came up (a node
    /// that banned this id refuses it).
    pub async fn try_connect(&self, node: &Node, within: Duration) -> bool {
        let addr = common::p2p_addr(node).await;
        let target = node.sdk().local_peer_id();
        let _ = self.commands.send(RawCommand::Dial(addr));
        let mut connected = self.connected.clone();
        let up = tokio::time::timeout(within, connected.wait_for(|s| s.contains(&target)))
            .await
            .is_ok_and(|r| r.is_ok());
        up
    }

    /// Whether the raw peer holds a connection to `peer`.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.connected.borrow().contains(peer)
    }

    /// Waits until the connection to `peer` is closed (e.g. by a ban).
    pub async fn wait_disconnected(&self, peer: PeerId) {
        let mut connected = self.connected.clone();
        tokio::time::timeout(WAIT * 2, connected.wait_for(|s| !s.contains(&peer)))
            .await
            .expect("disconnected within the bound")
            .expect("raw peer alive");
    }

    /// Opens a stream on `proto` to `peer`, runs `script`, returns what came back (or the
    /// failure), without waiting.
    pub fn send(
        &self,
        peer: PeerId,
        proto: Proto,
        script: Vec<Step>,
    ) -> oneshot::Receiver<Result<Vec<u8>, String>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.commands.send(RawCommand::Send {
            peer,
            proto,
            script,
            reply,
        });
        rx
    }

    /// [`Self::send`] and wait (bounded) for the outcome.
    pub async fn exchange(
        &self,
        peer: PeerId,
        proto: Proto,
        script: Vec<Step>,
    ) -> Result<Vec<u8>, String> {
        match tokio::time::timeout(WAIT, self.send(peer, proto, script)).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err("raw peer stopped".into()),
            Err(_) => Err("no outcome within the bound".into()),
        }
    }
}

// ------------------------------------------------------------------------------- raw TCP

/// Plain TCP below libp2p.
pub mod raw_tcp {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Connects to 127.0.0.1:`port`, writes `bytes`, reads until the node closes the socket
    /// (bounded); returns whether the node closed it.
    pub async fn garbage(port: u16, bytes: &[u8]) -> bool {
        let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
            return true;
        };
        let _ = s.write_all(bytes).await;
        let mut buf = [0u8; 4096];
        tokio::time::timeout(WAIT, async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return true,
                    Ok(_) => {}
                }
            }
        })
        .await
        .unwrap_or(false)
    }

    /// Opens `count` TCP connections that never say anything; they stay open until dropped.
    pub async fn silent(port: u16, count: usize) -> Vec<tokio::net::TcpStream> {
        let mut out = Vec::new();
        for _ in 0..count {
            if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                out.push(s);
            }
        }
        out
    }
}

// ------------------------------------------------------------------------------- gossip peer

/// What a lying [`GossipPeer`] answers.
pub trait Liar: Send + Sync + 'static {
    /// The answer to `get_head`.
    fn head(&self) -> PreconfHead;
    /// The answer to `get_commitments_by_number(start, max)`.
    fn page(&self, start: u64, max: u32) -> Vec<SignedCommitment>;
    /// The answer to `get_raw_txlist(hash)`.
    fn txlist(&self, hash: preconfirmation_types::B256) -> Vec<u8>;
}

/// A `preconfirmation-net` service with no SDK: publishes whatever it is given, answers
/// requests with its [`Liar`] (or not at all).
pub struct GossipPeer {
    /// Its network service.
    pub net: P2pService,
    /// Its peer id.
    pub peer_id: PeerId,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GossipPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl GossipPeer {
    /// Starts one on `chain`, answering requests with `liar` (or not at all).
    pub async fn start(chain: &ChainSpec, liar: Option<Arc<dyn Liar>>) -> GossipPeer {
        let (net, mut events) = P2pService::start(attacker_network(chain), None)
            .await
            .expect("attacker starts");
        let peer_id = net.local_peer_id();
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let NetworkEvent::InboundRequest(request) = event else {
                    continue;
                };
                let Some(liar) = &liar else { continue };
                match request {
                    InboundRequest::GetHead { responder, .. } => responder.respond(liar.head()),
                    InboundRequest::GetCommitmentsByNumber {
                        request, responder, ..
                    } => {
                        let start = u64::try_from(request.start_block_number).unwrap_or(0);
                        let page = liar.page(start, request.max_count);
                        if let Ok(r) = GetCommitmentsByNumberResponse::new(page) {
                            responder.respond(r);
                        }
                    }
                    InboundRequest::GetRawTxList {
                        request, responder, ..
                    } => {
                        let hash = request.raw_tx_list_hash;
                        let mut r =
                            GetRawTxListResponse::new(liar.txlist(hash)).unwrap_or_default();
                        r.raw_tx_list_hash = hash;
                        responder.respond(r);
                    }
                    // The batched extension gets the same lie for every hash.
                    InboundRequest::GetRawTxLists {
                        request, responder, ..
                    } => {
                        let answers = request
                            .raw_tx_list_hashes
                            .iter()
                            .map(|hash| {
                                let mut r = GetRawTxListResponse::new(liar.txlist(*hash))
                                    .unwrap_or_default();
                                r.raw_tx_list_hash = *hash;
                                r
                            })
                            .collect();
                        if let Ok(r) = preconfirmation_types::GetRawTxListsResponse::new(answers) {
                            responder.respond(r);
                        }
                    }
                }
            }
        });
        GossipPeer { net, peer_id, task }
    }

    /// Its first listen address with `/p2p/<id>`, to give a node as a static peer or dial.
    pub async fn p2p_addr(&self) -> Multiaddr {
        self.net.listen_addrs().await.expect("addrs")[0]
            .clone()
            .with(libp2p::multiaddr::Protocol::P2p(self.peer_id))
    }

    /// Dials `node` and waits until both gossip topics have `node` as a peer.
    pub async fn connect(&self, node: &Node) {
        self.net
            .dial(common::p2p_addr(node).await)
            .await
            .expect("attacker dials");
        let target = node.sdk().local_peer_id();
        tokio::time::timeout(WAIT, async {
            loop {
                let a = self
                    .net
                    .gossip_peers(preconfirmation_types::GossipTopicKind::Commitments)
                    .await
                    .unwrap_or_default();
                if a.contains(&target) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("attacker joins the victim's topic");
    }

    /// Publishes a raw payload on the tx-list topic; false once nobody takes it.
    pub async fn publish_txlist(&self, bytes: Vec<u8>) -> bool {
        self.net
            .publish(preconfirmation_types::GossipTopicKind::RawTxLists, bytes)
            .await
            .is_ok()
    }

    /// Publishes a raw payload on the commitments topic; false once nobody takes it.
    pub async fn publish_commitment(&self, bytes: Vec<u8>) -> bool {
        self.net
            .publish(preconfirmation_types::GossipTopicKind::Commitments, bytes)
            .await
            .is_ok()
    }
}
