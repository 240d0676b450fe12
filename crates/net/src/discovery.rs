//! Discovery with discv5: the node's ENR advertises its libp2p TCP address and discv5 UDP port;
//! found ENRs are turned into `/ip4/…/tcp/…/p2p/<peer id>` and handed to the driver to dial.
//!
//! The ENR is signed with the node's libp2p key, so the ENR's public key *is* the libp2p
//! identity and a discoverer derives the peer id from it. The key must be secp256k1: discv5
//! opens sessions with an ECDH on it, which the discv5 crate does only for secp256k1 (an
//! ed25519 node could sign its ENR, but every handshake with it fails with
//! `KeyTypeNotSupported`), so [`start`] refuses any other key type.
//! discv5's table filter accepts every address and the packet filter is off, so loopback ENRs
//! (127.0.0.1 devnets and tests) are accepted.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use enr::{CombinedKey, CombinedPublicKey, EnrPublicKey, NodeId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::error::NetError;

/// A peer found by discovery, ready to dial.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    pub(crate) peer: PeerId,
    pub(crate) addr: Multiaddr,
}

/// Handle of the running discovery task.
#[derive(Debug)]
pub(crate) struct DiscoveryHandle {
    pub(crate) local_enr: Enr,
    /// Set by the driver: while true, the task runs lookups every interval.
    pub(crate) want_peers: Arc<AtomicBool>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl DiscoveryHandle {
    pub(crate) fn shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for DiscoveryHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Converts the libp2p key into the ENR signing key.
pub(crate) fn enr_key(keypair: &Keypair) -> Result<CombinedKey, NetError> {
    if let Ok(kp) = keypair.clone().try_into_secp256k1() {
        let mut bytes = kp.secret().to_bytes();
        return CombinedKey::secp256k1_from_bytes(&mut bytes)
            .map_err(|e| NetError::Discovery(format!("secp256k1 key: {e:?}")));
    }
    if let Ok(kp) = keypair.clone().try_into_ed25519() {
        let mut bytes = kp.secret().as_ref().to_vec();
        return CombinedKey::ed25519_from_bytes(&mut bytes)
            .map_err(|e| NetError::Discovery(format!("ed25519 key: {e:?}")));
    }
    Err(NetError::Discovery(
        "discv5 needs a secp256k1 or ed25519 libp2p key".into(),
    ))
}

/// The libp2p peer id behind an ENR's public key.
pub fn enr_peer_id(enr: &Enr) -> Option<PeerId> {
    let pk = enr.public_key();
    let bytes = pk.encode();
    let public = match pk {
        CombinedPublicKey::Secp256k1(_) => libp2p::identity::PublicKey::from(
            libp2p::identity::secp256k1::PublicKey::try_from_bytes(&bytes).ok()?,
        ),
        CombinedPublicKey::Ed25519(_) => libp2p::identity::PublicKey::from(
            libp2p::identity::ed25519::PublicKey::try_from_bytes(&bytes).ok()?,
        ),
    };
    Some(public.to_peer_id())
}

/// The dialable libp2p address of an ENR (`ip4` + `tcp4` + peer id).
pub fn enr_multiaddr(enr: &Enr) -> Option<(PeerId, Multiaddr)> {
    let peer = enr_peer_id(enr)?;
    let ip = enr.ip4()?;
    let tcp = enr.tcp4()?;
    let addr = Multiaddr::empty()
        .with(Protocol::Ip4(ip))
        .with(Protocol::Tcp(tcp))
        .with(Protocol::P2p(peer));
    Some((peer, addr))
}

/// Starts discv5 on `ip:udp_port` (0 picks a free port) advertising `tcp_port`. While peers
/// are wanted it looks up at the pace of `pacing`.
pub(crate) async fn start(
    keypair: &Keypair,
    ip: Ipv4Addr,
    tcp_port: u16,
    udp_port: u16,
    bootnodes: &[String],
    pacing: Pacing,
    found: mpsc::Sender<Discovered>,
) -> Result<DiscoveryHandle, NetError> {
    if keypair.key_type() != libp2p::identity::KeyType::Secp256k1 {
        return Err(NetError::Config(format!(
            "discovery needs a secp256k1 node key; this one is {:?}, with which no discv5 \
             handshake can succeed (disable discovery and use static peers, or give the node a \
             secp256k1 key)",
            keypair.key_type()
        )));
    }
    let key = enr_key(keypair)?;
    let udp_port = if udp_port == 0 {
        UdpSocket::bind((ip, 0))
            .and_then(|s| s.local_addr())
            .map(|a| a.port())
            .map_err(|e| NetError::Discovery(format!("no free UDP port: {e}")))?
    } else {
        udp_port
    };
    let mut builder = Enr::builder();
    if !ip.is_unspecified() {
        builder.ip4(ip);
    }
    builder.tcp4(tcp_port).udp4(udp_port);
    let local_enr = builder
        .build(&key)
        .map_err(|e| NetError::Discovery(format!("building the ENR: {e:?}")))?;
    let config = ConfigBuilder::new(ListenConfig::from_ip(IpAddr::V4(ip), udp_port))
        .table_filter(|_| true)
        .build();
    let mut discv5 = Discv5::new(local_enr.clone(), key, config)
        .map_err(|e| NetError::Discovery(e.to_string()))?;
    for boot in bootnodes {
        let enr: Enr = boot
            .parse()
            .map_err(|e| NetError::Config(format!("bootnode {boot}: {e}")))?;
        if let Err(e) = discv5.add_enr(enr) {
            warn!(bootnode = %boot, error = e, "cannot add bootnode");
        }
    }
    discv5
        .start()
        .await
        .map_err(|e| NetError::Discovery(format!("{e:?}")))?;
    let events = discv5
        .event_stream()
        .await
        .map_err(|e| NetError::Discovery(format!("{e:?}")))?;
    let want_peers = Arc::new(AtomicBool::new(true));
    let (shutdown_tx, shutdown_rx) = oneshot::channel();
    tokio::spawn(run(
        discv5,
        events,
        want_peers.clone(),
        pacing,
        found,
        shutdown_rx,
    ));
    Ok(DiscoveryHandle {
        local_enr,
        want_peers,
        shutdown: Some(shutdown_tx),
    })
}

fn forward(found: &mpsc::Sender<Discovered>, enr: &Enr) {
    if let Some((peer, addr)) = enr_multiaddr(enr) {
        // Bounded: when the driver is behind, discoveries are dropped and found again later.
        let _ = found.try_send(Discovered { peer, addr });
    }
}

/// Pauses between lookups: from `min`, doubling to `max`, back to `min` whenever the node
/// starts wanting peers again.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pacing {
    /// `discovery_min_interval`.
    pub(crate) min: Duration,
    /// `discovery_interval`.
    pub(crate) max: Duration,
}

impl Pacing {
    /// Shortest pause allowed, whatever the config says.
    const FLOOR: Duration = Duration::from_millis(50);

    fn first(&self) -> Duration {
        self.min.max(Self::FLOOR).min(self.max.max(Self::FLOOR))
    }

    fn after(&self, pause: Duration) -> Duration {
        (pause * 2).min(self.max.max(Self::FLOOR))
    }
}

async fn run(
    mut discv5: Discv5,
    mut events: mpsc::Receiver<Event>,
    want_peers: Arc<AtomicBool>,
    pacing: Pacing,
    found: mpsc::Sender<Discovered>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut pause = pacing.first();
    let mut wanted = true;
    let next = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(next);
    let mut query_running = Arc::new(AtomicBool::new(false));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            event = events.recv() => match event {
                Some(Event::Discovered(enr)) | Some(Event::SessionEstablished(enr, _)) => {
                    forward(&found, &enr);
                }
                Some(_) => {}
                None => break,
            },
            () = &mut next => {
                if !want_peers.load(Ordering::Relaxed) {
                    wanted = false;
                    next.as_mut().reset(tokio::time::Instant::now() + pacing.first());
                    continue;
                }
                if !wanted {
                    wanted = true;
                    pause = pacing.first();
                }
                next.as_mut().reset(tokio::time::Instant::now() + pause);
                pause = pacing.after(pause);
                for enr in discv5.table_entries_enr() {
                    forward(&found, &enr);
                }
                if query_running.load(Ordering::Relaxed) {
                    continue;
                }
                query_running = Arc::new(AtomicBool::new(true));
                let running = query_running.clone();
                let query = discv5.find_node(NodeId::random());
                let found = found.clone();
                tokio::spawn(async move {
                    match query.await {
                        Ok(enrs) => {
                            debug!(found = enrs.len(), "discv5 lookup finished");
                            for enr in &enrs {
                                forward(&found, enr);
                            }
                        }
                        Err(e) => debug!(error = ?e, "discv5 lookup failed"),
                    }
                    running.store(false, Ordering::Relaxed);
                });
            }
        }
    }
    discv5.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_start_fast_and_back_off_to_the_interval() {
        let p = Pacing {
            min: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        let mut pauses = vec![p.first()];
        for _ in 0..6 {
            pauses.push(p.after(*pauses.last().unwrap()));
        }
        let secs: Vec<u64> = pauses.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        // A minimum above the interval is the interval; zero is the floor.
        let odd = Pacing {
            min: Duration::from_secs(60),
            max: Duration::from_secs(30),
        };
        assert_eq!(odd.first(), Duration::from_secs(30));
        let zero = Pacing {
            min: Duration::ZERO,
            max: Duration::ZERO,
        };
        assert_eq!(zero.first(), Pacing::FLOOR);
        assert_eq!(zero.after(Pacing::FLOOR), Pacing::FLOOR);
    }

    #[test]
    fn enr_carries_the_libp2p_identity() {
        for kp in [Keypair::generate_secp256k1(), Keypair::generate_ed25519()] {
            let key = enr_key(&kp).unwrap();
            let enr = Enr::builder()
                .ip4(Ipv4Addr::LOCALHOST)
                .tcp4(4000)
                .udp4(4001)
                .build(&key)
                .unwrap();
            let (peer, addr) = enr_multiaddr(&enr).unwrap();
            assert_eq!(peer, kp.public().to_peer_id());
            assert_eq!(
                addr.to_string(),
                format!("/ip4/127.0.0.1/tcp/4000/p2p/{peer}")
            );
            let text = enr.to_base64();
            let back: Enr = text.parse().unwrap();
            assert_eq!(enr_peer_id(&back), Some(peer));
        }
    }
}
