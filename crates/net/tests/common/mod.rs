//! Helpers shared by the network layer's integration tests: real nodes over TCP on
//! 127.0.0.1, every wait bounded by `tokio::time::timeout`.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use preconfirmation_net::{
    GossipVerdict, InboundRequest, NetworkConfig, NetworkEvent, NetworkEvents, P2pService,
};
use preconfirmation_types::{
    GetCommitmentsByNumberResponse, GetRawTxListResponse, GossipTopicKind, PreconfCommitment,
    PreconfHead, Preconfirmation, SignedCommitment, MAX_COMMITMENTS_PER_RESPONSE, U256,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn test_config() -> NetworkConfig {
    let mut c = NetworkConfig {
        discovery_enabled: false,
        request_timeout: Duration::from_secs(2),
        ban_sustain: Duration::from_secs(1),
        ..Default::default()
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

/// `dialer` dials `target` and waits until the dialer sees the connection.
pub async fn connect(dialer: &P2pService, dialer_events: &mut NetworkEvents, target: &P2pService) {
    dialer.dial(addr(target).await).await.expect("dial");
    let t = target.local_peer_id();
    wait_for(
        dialer_events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == t),
    )
    .await
    .expect("connected");
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
