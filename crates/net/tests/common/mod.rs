//! Helpers shared by the network layer's integration tests: real nodes over TCP on
//! 127.0.0.1, every wait bounded by `tokio::time::timeout`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::swarm::{NetworkBehaviour, Stream, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder};
use preconfirmation_net::{
    GossipVerdict, InboundRequest, NetworkConfig, NetworkEvent, NetworkEvents, P2pService,
    PeerSnapshot,
};
use preconfirmation_types::{
    GetCommitmentsByNumberResponse, GetRawTxListResponse, GossipTopicKind, PreconfCommitment,
    PreconfHead, Preconfirmation, SignedCommitment, MAX_COMMITMENTS_PER_RESPONSE, U256,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn test_config() -> NetworkConfig {
    let mut c = NetworkConfig {
        discovery_enabled: false,
        request_timeout: Duration::from_secs(2),
        ban_sustain: Duration::from_secs(1),
        // 127.0.0.1, ephemeral ports: never the production 0.0.0.0:9222.
        ..NetworkConfig::loopback()
    };
    c.gossip.heartbeat_interval = Duration::from_millis(200);
    c
}

pub async fn start(config: NetworkConfig) -> (P2pService, NetworkEvents) {
    P2pService::start(config, None).await.expect("start")
}

pub async fn addr(s: &P2pService) -> Multiaddr {
    s.listen_addrs().await.expect("listen addrs")[0].clone()
}

/// Waits for the first event matching `pred`, skipping others.
pub async fn wait_for(
    events: &mut NetworkEvents,
    mut pred: impl FnMut(&NetworkEvent) -> bool,
) -> Option<NetworkEvent> {
    timeout(WAIT, async {
        while let Some(ev) = events.recv().await {
            if pred(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Waits until `events` reports `peer` connected; `None` on timeout.
pub async fn wait_connected(events: &mut NetworkEvents, peer: PeerId) -> Option<NetworkEvent> {
    wait_for(
        events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer: p, .. } if *p == peer),
    )
    .await
}

/// A bare libp2p swarm of a fresh identity over TCP (noise, yamux) running `behaviour`, whose
/// idle connections stay up for 60 s: a peer that speaks only what a test gives it.
pub fn bare_swarm<B: NetworkBehaviour>(behaviour: impl FnOnce(&Keypair) -> B) -> Swarm<B> {
    bare_swarm_of(
        Keypair::generate_ed25519(),
        Duration::from_secs(60),
        behaviour,
    )
}

/// Like [`bare_swarm`], with the identity `keypair` and idle connections kept up for `idle`.
pub fn bare_swarm_of<B: NetworkBehaviour>(
    keypair: Keypair,
    idle: Duration,
    behaviour: impl FnOnce(&Keypair) -> B,
) -> Swarm<B> {
    SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
        .build()
}

/// `dialer` dials `target` and waits until the dialer sees the connection.
pub async fn connect(dialer: &P2pService, dialer_events: &mut NetworkEvents, target: &P2pService) {
    dialer.dial(addr(target).await).await.expect("dial");
    let t = target.local_peer_id();
    wait_connected(dialer_events, t).await.expect("connected");
}

/// A fresh node on [`test_config`], connected to `target` (it has seen the connection).
pub async fn start_connected_to(target: &P2pService) -> (P2pService, NetworkEvents) {
    let (node, mut events) = start(test_config()).await;
    connect(&node, &mut events, target).await;
    (node, events)
}

pub fn head() -> PreconfHead {
    PreconfHead {
        block_number: U256::from(77u64),
        submission_window_end: U256::from(1234u64),
    }
}

pub fn commitment(n: u64) -> SignedCommitment {
    SignedCommitment {
        commitment: PreconfCommitment {
            preconf: Preconfirmation {
                block_number: U256::from(n),
                ..Default::default()
            },
            ..Default::default()
        },
        ..Default::default()
    }
}

/// An SDK stand-in that answers every request and gives every gossip `verdict`; gossip
/// payloads are forwarded to the returned channel.
pub fn spawn_sdk(
    service: P2pService,
    mut events: NetworkEvents,
    verdict: GossipVerdict,
) -> mpsc::Receiver<(GossipTopicKind, Vec<u8>)> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetworkEvent::Gossip {
                    peer,
                    topic,
                    message_id,
                    data,
                    ..
                } => {
                    let _ = service.report_validation(message_id, peer, verdict);
                    let _ = tx.try_send((topic, data));
                }
                NetworkEvent::InboundRequest(InboundRequest::GetHead { responder, .. }) => {
                    responder.respond(head())
                }
                NetworkEvent::InboundRequest(InboundRequest::GetCommitmentsByNumber {
                    request,
                    responder,
                    ..
                }) => {
                    // Peer data: the count is capped before anything is allocated, a start
                    // beyond u64 gives an empty page, and the range stops at u64::MAX.
                    let count = usize::try_from(request.max_count)
                        .unwrap_or(usize::MAX)
                        .min(MAX_COMMITMENTS_PER_RESPONSE);
                    let list = match u64::try_from(request.start_block_number) {
                        Ok(start) => (0..count as u64)
                            .map_while(|i| start.checked_add(i))
                            .map(commitment)
                            .collect(),
                        Err(_) => Vec::new(),
                    };
                    if let Ok(page) = GetCommitmentsByNumberResponse::new(list) {
                        responder.respond(page);
                    }
                }
                NetworkEvent::InboundRequest(InboundRequest::GetRawTxList {
                    responder, ..
                }) => responder.respond(GetRawTxListResponse::new(vec![9; 1000]).expect("cap")),
                _ => {}
            }
        }
    });
    rx
}

/// A served node and a connected client.
pub async fn server_and_client(
    server_cfg: NetworkConfig,
    client_cfg: NetworkConfig,
) -> (P2pService, P2pService, NetworkEvents) {
    let (server, server_events) = start(server_cfg).await;
    let (client, mut client_events) = start(client_cfg).await;
    connect(&client, &mut client_events, &server).await;
    spawn_sdk(server.clone(), server_events, GossipVerdict::Accept);
    // Until identify says otherwise, the client paces the server as the strict reference;
    // the tests measure the server's own limits, so start once it is known as one of ours.
    wait_peer(&client, server.local_peer_id(), |p| p.extended)
        .await
        .expect("identify marks the server as a peer with this project's extensions");
    (server, client, client_events)
}

pub async fn wait_gossip_peers(node: &P2pService, expected: &[PeerId]) {
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            let mut all = true;
            for kind in GossipTopicKind::ALL {
                let peers = node.gossip_peers(kind).await.expect("gossip peers");
                all &= expected.iter().all(|p| peers.contains(p));
            }
            if all {
                return;
            }
        }
    })
    .await
    .expect("gossip subscriptions exchanged");
}

/// The total score `node` gives `peer`, if connected.
pub async fn score_of(node: &P2pService, peer: PeerId) -> Option<f64> {
    node.peers()
        .await
        .expect("peers")
        .into_iter()
        .find(|p| p.peer_id == peer)
        .map(|p| p.score)
}

/// Asserts that `node`, connected to `peer`, scores it at 0 or above: `why` it has not been
/// penalised.
pub async fn assert_not_penalised(node: &P2pService, peer: PeerId, why: &str) {
    let score = score_of(node, peer).await;
    assert!(score.is_some_and(|s| s >= 0.0), "{why}: {score:?}");
}

/// Polls `node.peers()` until `peer`'s snapshot satisfies `pred`; `None` on timeout.
pub async fn wait_peer(
    node: &P2pService,
    peer: PeerId,
    mut pred: impl FnMut(&PeerSnapshot) -> bool,
) -> Option<PeerSnapshot> {
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let peers = node.peers().await.expect("peers");
            if let Some(p) = peers.into_iter().find(|p| p.peer_id == peer && pred(p)) {
                return p;
            }
        }
    })
    .await
    .ok()
}

/// The libp2p ping protocol.
pub const PING: StreamProtocol = StreamProtocol::new("/ipfs/ping/1.0.0");

/// A bare libp2p peer (TCP, noise, yamux) with no ping service, like a js-libp2p node started
/// without `@libp2p/ping`: it accepts no inbound protocol at all, so the node's outbound pings
/// are refused during negotiation, while the test opens ping streams to the node through
/// `libp2p-stream` (as js-libp2p's connection monitor does). Dropping it stops its swarm.
pub struct NoPingPeer {
    pub peer_id: PeerId,
    control: libp2p_stream::Control,
    /// Established connections of the bare swarm.
    connections: watch::Receiver<usize>,
    task: JoinHandle<()>,
}

impl NoPingPeer {
    /// Starts the bare swarm, dials `node` and waits until the connection is up.
    pub async fn connect(node: &P2pService) -> Self {
        Self::start(node, false).await
    }

    /// Like [`Self::connect`], but the peer accepts the node's ping streams and never answers
    /// on them (a hung peer): the node's pings time out.
    pub async fn connect_mute(node: &P2pService) -> Self {
        Self::start(node, true).await
    }

    async fn start(node: &P2pService, accept_pings: bool) -> Self {
        let mut swarm = bare_swarm_of(
            Keypair::generate_ed25519(),
            Duration::from_secs(120),
            |_| libp2p_stream::Behaviour::new(),
        );
        let peer_id = *swarm.local_peer_id();
        let mut control = swarm.behaviour().new_control();
        let mut incoming = match accept_pings {
            true => Some(control.accept(PING).expect("ping not registered yet")),
            false => None,
        };
        swarm.dial(addr(node).await).expect("dial");
        let (tx, connections) = watch::channel(0usize);
        let task = tokio::spawn(async move {
            // Accepted ping streams are held open, unanswered; a few are enough.
            let mut held = Vec::new();
            loop {
                tokio::select! {
                    event = swarm.select_next_some() => match event {
                        SwarmEvent::ConnectionEstablished { .. } => tx.send_modify(|n| *n += 1),
                        SwarmEvent::ConnectionClosed { .. } => {
                            tx.send_modify(|n| *n = n.saturating_sub(1))
                        }
                        _ => {}
                    },
                    Some((_, stream)) = async {
                        match incoming.as_mut() {
                            Some(incoming) => incoming.next().await,
                            None => std::future::pending().await,
                        }
                    } => {
                        if held.len() < 16 {
                            held.push(stream);
                        }
                    }
                }
            }
        });
        let mut peer = Self {
            peer_id,
            control,
            connections,
            task,
        };
        timeout(WAIT, peer.connections.wait_for(|n| *n > 0))
            .await
            .expect("bare peer connected in time")
            .expect("swarm task alive");
        peer
    }

    /// Established connections of the bare swarm right now.
    pub fn connections(&self) -> usize {
        *self.connections.borrow()
    }

    /// Opens a `/ipfs/ping/1.0.0` stream to `target`.
    pub async fn open_ping(&mut self, target: PeerId) -> Result<Stream, String> {
        timeout(
            Duration::from_secs(5),
            self.control.open_stream(target, PING),
        )
        .await
        .map_err(|_| "opening the ping stream timed out".to_owned())?
        .map_err(|e| e.to_string())
    }

    /// One ping js-libp2p style: a new stream, 32 bytes out, 32 bytes back, close.
    pub async fn ping_new_stream(
        &mut self,
        target: PeerId,
        payload: [u8; 32],
    ) -> Result<[u8; 32], String> {
        let mut stream = self.open_ping(target).await?;
        let echo = ping_on(&mut stream, payload).await?;
        let _ = timeout(Duration::from_secs(5), stream.close()).await;
        Ok(echo)
    }
}

impl Drop for NoPingPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Writes one 32-byte ping on `stream` and reads the 32-byte answer (5 s at most).
pub async fn ping_on(stream: &mut Stream, payload: [u8; 32]) -> Result<[u8; 32], String> {
    timeout(Duration::from_secs(5), async {
        stream.write_all(&payload).await?;
        stream.flush().await?;
        let mut echo = [0u8; 32];
        stream.read_exact(&mut echo).await?;
        Ok::<_, std::io::Error>(echo)
    })
    .await
    .map_err(|_| "no echo within 5 s".to_owned())?
    .map_err(|e| e.to_string())
}

/// A distinct 32-byte ping payload.
pub fn ping_payload(i: u8) -> [u8; 32] {
    std::array::from_fn(|j| i.wrapping_mul(31).wrapping_add(j as u8))
}
