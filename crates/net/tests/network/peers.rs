//! Connections and peer state: static peers, inbound slots and the per-IP cap, sockets that
//! never finish their handshake, and per-peer state that leaves with its peer.

use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use preconfirmation_net::{
    Direction, GossipVerdict, NetworkConfig, NetworkEvent, P2pService, RateLimitConfig,
};
use tokio::time::timeout;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peer_is_dialled() {
    let (a, _a_events) = start(test_config()).await;
    let a_id = a.local_peer_id();
    let static_addr = addr(&a).await.with(libp2p::multiaddr::Protocol::P2p(a_id));
    let (b, mut b_events) = start(NetworkConfig {
        static_peers: vec![static_addr],
        ..test_config()
    })
    .await;
    wait_connected(&mut b_events, a_id)
        .await
        .expect("static peer dialled at start");
    // After a disconnect (A bans B briefly), B redials A once the ban is over.
    a.ban(b.local_peer_id(), Duration::from_millis(300))
        .expect("ban");
    wait_for(
        &mut b_events,
        |e| matches!(e, NetworkEvent::PeerDisconnected { peer } if *peer == a_id),
    )
    .await
    .expect("disconnected by the ban");
    wait_connected(&mut b_events, a_id)
        .await
        .expect("static peer redialled with backoff");
}

/// A bare libp2p peer (no protocol, 60 s idle timeout) dials `target`; `true` if the target
/// refused the connection (closed it, or the dial failed), `false` if it stayed up for the
/// whole wait. Bounded by [`WAIT`].
async fn bare_dial_is_refused(target: &P2pService) -> bool {
    let mut swarm = bare_swarm(|_| libp2p::swarm::dummy::Behaviour);
    swarm.dial(addr(target).await).expect("dial");
    timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => return,
                _ => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Connected peers of `node` by direction: (inbound, outbound).
async fn directions(node: &P2pService) -> (usize, usize) {
    let peers = node.peers().await.expect("peers");
    let inbound = peers
        .iter()
        .filter(|p| p.direction == Direction::Inbound)
        .count();
    (inbound, peers.len() - inbound)
}

/// §7 attack: peers fill every inbound slot of a victim. A further inbound connection is
/// refused, while the victim still dials out (to an explicit peer) and stays connected to it:
/// outbound slots are its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_slot_exhaustion() {
    const INBOUND: u32 = 4;
    let victim_cfg = NetworkConfig {
        max_inbound_peers: INBOUND,
        max_outbound_peers: 2,
        max_peers: INBOUND + 2,
        // Every attacker dials from 127.0.0.1: the per-IP cap is another test's subject.
        max_connections_per_ip: 64,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let mut attackers = Vec::new();
    for _ in 0..INBOUND {
        let (a, a_events) = start_connected_to(&victim).await;
        attackers.push((a, a_events));
    }
    for _ in 0..INBOUND {
        wait_for(&mut victim_events, |e| {
            matches!(
                e,
                NetworkEvent::PeerConnected {
                    direction: Direction::Inbound,
                    ..
                }
            )
        })
        .await
        .expect("an attacker takes an inbound slot");
    }
    assert_eq!(directions(&victim).await, (INBOUND as usize, 0));

    // Every inbound slot is taken: one more inbound connection is refused …
    assert!(
        bare_dial_is_refused(&victim).await,
        "an inbound connection beyond max_inbound_peers is refused"
    );
    assert_eq!(directions(&victim).await, (INBOUND as usize, 0));

    // … yet the victim dials out to a peer of its choosing, and stays connected to it.
    let (friend, friend_events) = start(test_config()).await;
    let friend_id = friend.local_peer_id();
    spawn_sdk(friend.clone(), friend_events, GossipVerdict::Accept);
    victim.dial(addr(&friend).await).await.expect("dial out");
    wait_for(&mut victim_events, |e| {
        matches!(
            e,
            NetworkEvent::PeerConnected { peer, direction: Direction::Outbound } if *peer == friend_id
        )
    })
    .await
    .expect("the victim's outbound dial succeeds with every inbound slot taken");
    // The connection is usable, not closed after the fact.
    let head = victim.request_head(friend_id).await.expect("get_head");
    assert_eq!(head, crate::common::head());
    let peers = victim.connected_peers().await.expect("peers");
    assert!(peers.contains(&friend_id), "still connected to the friend");
    assert_eq!(directions(&victim).await, (INBOUND as usize, 1));
    for (a, _) in &attackers {
        assert!(peers.contains(&a.local_peer_id()));
    }
}

/// One host cannot take more than `max_connections_per_ip` inbound connections, whatever
/// peer ids it mints; other connections are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_are_capped_per_ip() {
    const PER_IP: usize = 2;
    let victim_cfg = NetworkConfig {
        max_connections_per_ip: PER_IP as u32,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let mut peers = Vec::new();
    for _ in 0..PER_IP {
        let (p, p_events) = start_connected_to(&victim).await;
        let id = p.local_peer_id();
        wait_connected(&mut victim_events, id)
            .await
            .expect("inbound connection within the per-IP cap");
        peers.push((p, p_events));
    }
    // 127.0.0.1 has used its inbound connections; inbound slots are still free.
    assert!(PER_IP < NetworkConfig::default().max_inbound_peers as usize);
    assert!(
        bare_dial_is_refused(&victim).await,
        "a connection beyond max_connections_per_ip is refused"
    );
    assert_eq!(directions(&victim).await, (PER_IP, 0));
    // A freed slot is reusable.
    let (first, _) = peers.remove(0);
    let first_id = first.local_peer_id();
    first.shutdown().await.expect("shutdown");
    wait_for(
        &mut victim_events,
        |e| matches!(e, NetworkEvent::PeerDisconnected { peer } if *peer == first_id),
    )
    .await
    .expect("disconnect seen");
    let (again, _again_events) = start_connected_to(&victim).await;
    assert!(wait_peer(&victim, again.local_peer_id(), |_| true)
        .await
        .is_some());
}

/// TCP sockets that connect and never speak hold pending inbound slots only until
/// `handshake_timeout`: while they are pending an honest peer is refused
/// (`max_pending_incoming` is 2), after it the node has closed them and the honest peer
/// connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_free_their_pending_slots_after_the_handshake_timeout() {
    const PENDING: usize = 2;
    let handshake_timeout = Duration::from_secs(3);
    let victim_cfg = NetworkConfig {
        max_pending_incoming: PENDING as u32,
        handshake_timeout,
        // Every socket comes from 127.0.0.1: the per-IP cap is another test's subject.
        max_connections_per_ip: 64,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let port = addr(&victim)
        .await
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP listen address");
    let opened = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..PENDING {
        let socket = timeout(WAIT, tokio::net::TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("TCP connect within the bound")
            .expect("TCP connect");
        silent.push(socket);
    }
    // Every pending slot is held: a real peer's connection is refused.
    assert!(
        bare_dial_is_refused(&victim).await,
        "a connection beyond max_pending_incoming is refused"
    );
    assert!(
        opened.elapsed() < handshake_timeout,
        "the refusal came while the silent sockets were pending"
    );
    // The node closes the silent sockets once their handshake time is up (bounded well
    // below libp2p's 10 s default, so the configured timeout is what closed them).
    let bound = handshake_timeout + Duration::from_secs(3);
    for socket in silent {
        let closed = tokio::time::timeout_at((opened + bound).into(), async {
            let mut buf = [0u8; 64];
            loop {
                if socket.readable().await.is_err() {
                    return;
                }
                match socket.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a silent socket still open {:?} after it connected",
            opened.elapsed()
        );
    }
    // The slots are free again: an honest peer connects.
    let (honest, _honest_events) = start_connected_to(&victim).await;
    let id = honest.local_peer_id();
    wait_connected(&mut victim_events, id)
        .await
        .expect("the honest peer takes a freed slot");
}

/// 200 distinct peer ids connect over TCP (in batches), are identified, and disconnect: every
/// per-peer map of the victim (peer manager, pacer, connection limits, connected set) grows
/// with them and returns to its size before them. Nothing a peer id leaves behind
/// accumulates (§7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_peer_state_is_dropped_after_churn() {
    const PEERS: usize = 200;
    // Under `max_pending_incoming` (16): a batch dials at once.
    const BATCH: usize = 10;
    let mut victim_cfg = NetworkConfig {
        max_connections_per_ip: preconfirmation_net::config::LOOPBACK_MAX_CONNECTIONS_PER_IP,
        ..test_config()
    };
    // Pacing state outlives a connection by the longest rate-limit window: keep it short.
    victim_cfg.politeness.strict_window = Duration::from_millis(100);
    victim_cfg.politeness.window_margin = Duration::from_millis(1);
    victim_cfg.politeness.extended_rate_limit =
        RateLimitConfig::uniform(8, Duration::from_millis(100));
    let (victim, mut victim_events) = start(victim_cfg).await;
    let victim_addr = addr(&victim).await;
    let baseline = victim.peer_state_sizes().await.expect("sizes");
    assert_eq!(baseline.connected, 0);

    let mut peak = baseline;
    for _ in 0..PEERS / BATCH {
        let mut swarms = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let mut swarm = bare_swarm(|key| {
                libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                    preconfirmation_net::IDENTIFY_PROTOCOL.into(),
                    key.public(),
                ))
            });
            swarm.dial(victim_addr.clone()).expect("dial");
            // Drive each swarm until the victim has identified it (its identify answer came
            // back to us), then keep it alive until the batch is dropped.
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    if let SwarmEvent::Behaviour(libp2p::identify::Event::Received { .. }) =
                        swarm.select_next_some().await
                    {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            });
            swarms.push((task, ready_rx));
        }
        let mut tasks = Vec::with_capacity(BATCH);
        for (task, ready) in swarms {
            timeout(WAIT, ready)
                .await
                .expect("identified in time")
                .expect("swarm alive");
            tasks.push(task);
        }
        // The victim sees the whole batch, and has identified each peer.
        let sizes = timeout(WAIT, async {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let s = victim.peer_state_sizes().await.expect("sizes");
                if s.connected == BATCH && s.pacer >= BATCH {
                    return s;
                }
            }
        })
        .await
        .expect("the batch is connected");
        peak.connected = peak.connected.max(sizes.connected);
        peak.peer_manager = peak.peer_manager.max(sizes.peer_manager);
        peak.connection_limits.peers = peak
            .connection_limits
            .peers
            .max(sizes.connection_limits.peers);
        peak.connection_limits.ips = peak.connection_limits.ips.max(sizes.connection_limits.ips);
        // Disconnect the batch: dropping the swarms closes their connections.
        for task in tasks {
            task.abort();
        }
        let mut gone = 0;
        while gone < BATCH {
            wait_for(&mut victim_events, |e| {
                matches!(e, NetworkEvent::PeerDisconnected { .. })
            })
            .await
            .expect("the batch disconnects");
            gone += 1;
        }
    }
    // Everything grew with the peers …
    assert_eq!(peak.connected, BATCH);
    assert!(peak.peer_manager >= BATCH, "{peak:?}");
    assert_eq!(peak.connection_limits.peers, BATCH);
    assert_eq!(peak.connection_limits.ips, 1);
    // … and returns to where it was (pacing state once its short window has passed).
    let last = timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let s = victim.peer_state_sizes().await.expect("sizes");
            if s == baseline {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("per-peer state did not return to {baseline:?}"));
    assert_eq!(last, baseline);
    victim.shutdown().await.expect("shutdown");
}
