//! Discovery with discv5: the node's ENR advertises its libp2p TCP address and discv5 UDP port;
//! found ENRs are turned into `/ip4/…/tcp/…/p2p/<peer id>` and handed to the driver to dial.
//!
//! What the ENR advertises, per IP family ([`advertised_ip`]): `enr.address` / `enr.address6`
//! when set (`run --nat extip:IP`); else the listen IP when it is a specific address; else (a
//! wildcard listen, `0.0.0.0` / `::`) the source address of this host's route towards the
//! first bootnode, or towards the internet without bootnodes — the address other hosts of the
//! network reach it at, unless it is behind NAT. Then discv5's ENR auto-update replaces IP and
//! UDP port with what `enr.update_min_votes` peers report in their PONGs (off when an address
//! is configured), which is how a node behind NAT learns its public address. Neither ever
//! yields `0.0.0.0`, nor a loopback address unless the node listens on loopback: a wildcard
//! route through loopback is skipped, and a vote for loopback is undone ([`vote_acceptable`]).
//! The ports are the listen ports unless `enr.tcp_port` / `enr.udp_port` say otherwise.
//!
//! The ENR is signed with the node's libp2p key, so the ENR's public key *is* the libp2p
//! identity and a discoverer derives the peer id from it. The key must be secp256k1: discv5
//! opens sessions with an ECDH on it, which the discv5 crate does only for secp256k1 (an
//! ed25519 node could sign its ENR, but every handshake with it fails with
//! `KeyTypeNotSupported`), so [`start`] refuses any other key type.
//! discv5's packet filter is off. Its table filter accepts every ENR for a node listening on
//! loopback (127.0.0.1 devnets and tests); a node listening on a real address leaves ENRs that
//! advertise loopback out of its table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use discv5::{ConfigBuilder, Discv5, Enr, Event, ListenConfig};
use enr::{CombinedKey, CombinedPublicKey, EnrPublicKey, NodeId};
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::EnrConfig;
use crate::error::NetError;
use crate::listen;

/// A peer found by discovery, ready to dial.
#[derive(Debug, Clone)]
pub(crate) struct Discovered {
    pub(crate) peer: PeerId,
    pub(crate) addr: Multiaddr,
}

/// Handle of the running discovery task.
#[derive(Debug)]
pub(crate) struct DiscoveryHandle {
    /// The ENR as it is now (votes may update it).
    pub(crate) local_enr: LocalEnr,
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

/// The dialable libp2p address of an ENR: `ip4` + `tcp4` + peer id, or, for an ENR without
/// them, `ip6` + `tcp6` + peer id.
pub fn enr_multiaddr(enr: &Enr) -> Option<(PeerId, Multiaddr)> {
    let peer = enr_peer_id(enr)?;
    let ip = match (enr.ip4().zip(enr.tcp4()), enr.ip6().zip(enr.tcp6())) {
        (Some((ip, tcp)), _) => Multiaddr::empty()
            .with(Protocol::Ip4(ip))
            .with(Protocol::Tcp(tcp)),
        (None, Some((ip, tcp))) => Multiaddr::empty()
            .with(Protocol::Ip6(ip))
            .with(Protocol::Tcp(tcp)),
        (None, None) => return None,
    };
    Some((peer, ip.with(Protocol::P2p(peer))))
}

/// What the node listens on, per IP family, as discovery needs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Listening {
    /// IPv4 listen IP and the libp2p TCP port bound on it.
    pub(crate) v4: Option<(Ipv4Addr, u16)>,
    /// IPv6 listen IP and the libp2p TCP port bound on it.
    pub(crate) v6: Option<(Ipv6Addr, u16)>,
    /// discv5's UDP port, on each listen IP (0: a free port).
    pub(crate) udp_port: u16,
}

impl Listening {
    /// Whether every listen IP is a loopback one (tests, devnets): only then may the ENR
    /// advertise, and the routing table hold, loopback addresses.
    fn loopback_only(&self) -> bool {
        self.v4.is_none_or(|(ip, _)| ip.is_loopback())
            && self.v6.is_none_or(|(ip, _)| ip.is_loopback())
    }
}

/// Where the ENR's IP of one family came from (logged at start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressSource {
    /// `enr.address` / `enr.address6` (`--nat extip:IP`).
    Configured,
    /// The listen address is a specific one.
    ListenAddress,
    /// Listening on the wildcard: the source address of this host's route towards the
    /// bootnodes (or, without bootnodes, its default route).
    Route,
}

/// Whether other hosts could dial `ip` (an ENR address chosen on a wildcard listen, or
/// voted by peers): not unspecified, loopback, link-local, multicast or broadcast.
pub fn routable(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_unspecified()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast())
        }
        IpAddr::V6(v6) => {
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || v6.is_unicast_link_local())
        }
    }
}

/// The IP the ENR advertises for one family: the configured one (`enr.address`, `--nat
/// extip`); else the listen IP when it is a specific address (a loopback listen advertises
/// loopback, which tests and devnets need); else, on a wildcard listen, `route()` — the source
/// address towards the network — when other hosts could dial it ([`routable`]; for IPv6 only a
/// global unicast address, `2000::/3`: dual-stack discv5 peers contact an ENR's IPv6 first, so
/// a unique-local or link-local one would cost this node every such contact). `None`: the ENR
/// starts without an IP of this family and discv5's PONG votes fill it in. Never the
/// unspecified address, never loopback for a non-loopback listen.
pub fn advertised_ip(
    configured: Option<IpAddr>,
    listen: IpAddr,
    route: impl FnOnce() -> Option<IpAddr>,
) -> Option<(IpAddr, AddressSource)> {
    if let Some(ip) = configured {
        return Some((ip, AddressSource::Configured));
    }
    if !listen.is_unspecified() {
        return Some((listen, AddressSource::ListenAddress));
    }
    route()
        .filter(|ip| match ip {
            IpAddr::V4(_) => routable(*ip),
            IpAddr::V6(v6) => listen::is_global_v6(*v6),
        })
        .map(|ip| (ip, AddressSource::Route))
}

/// Whether a socket discv5's PONG votes chose may replace the ENR's: never the unspecified
/// address, and never a loopback one unless the node listens on loopback only (a peer on
/// this very host reaching us over 127.0.0.1 must not make the ENR useless to everyone else).
pub fn vote_acceptable(loopback_listen: bool, voted: IpAddr) -> bool {
    if voted.is_unspecified() || voted.is_multicast() {
        return false;
    }
    loopback_listen || routable(voted)
}

/// discv5's routing-table filter of a node listening on loopback: every ENR.
fn accept_every_enr(_: &Enr) -> bool {
    true
}

/// discv5's routing-table filter of a node listening on a real address: ENRs advertising a
/// loopback or unspecified IP are left out (no other host could use them, and their PONGs
/// would vote for a loopback address).
fn reject_loopback_enrs(enr: &Enr) -> bool {
    let v4 = enr.ip4().is_none_or(|ip| routable(ip.into()));
    let v6 = enr.ip6().is_none_or(|ip| routable(ip.into()));
    v4 && v6
}

/// Starts discv5 on the listen IPs of `listening` at its UDP port, advertising the libp2p TCP
/// ports, with the ENR address chosen by [`advertised_ip`] from `enr`. While peers are wanted
/// it looks up at the pace of `pacing`. A UDP port already in use is
/// [`NetError::AddrInUse`].
pub(crate) async fn start(
    keypair: &Keypair,
    listening: Listening,
    enr: &EnrConfig,
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
    let boot_enrs = bootnodes
        .iter()
        .map(|boot| {
            boot.parse::<Enr>()
                .map_err(|e| NetError::Config(format!("bootnode {boot}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let key = enr_key(keypair)?;
    let udp4 = listening
        .v4
        .map(|(ip, _)| listen::bind_udp(SocketAddr::from((ip, listening.udp_port))))
        .transpose()?;
    let udp6 = listening
        .v6
        .map(|(ip, _)| listen::bind_udp(SocketAddr::from((ip, listening.udp_port))))
        .transpose()?;
    let bound_port = |socket: &Option<tokio::net::UdpSocket>| -> Result<Option<u16>, NetError> {
        socket
            .as_ref()
            .map(|s| s.local_addr().map(|a| a.port()))
            .transpose()
            .map_err(|e| NetError::Discovery(format!("discv5 socket address: {e}")))
    };
    let (udp4_port, udp6_port) = (bound_port(&udp4)?, bound_port(&udp6)?);

    let mut builder = Enr::builder();
    if let (Some((listen_ip, tcp_port)), Some(udp_port)) = (listening.v4, udp4_port) {
        let towards = boot_enrs
            .iter()
            .find_map(Enr::ip4)
            .unwrap_or(listen::NETWORK_V4);
        let chosen = advertised_ip(enr.address.map(IpAddr::V4), listen_ip.into(), || {
            listen::route_source(towards.into())
        });
        log_choice("ipv4", chosen);
        if let Some((IpAddr::V4(ip), _)) = chosen {
            builder.ip4(ip);
        }
        builder
            .tcp4(enr.tcp_port.unwrap_or(tcp_port))
            .udp4(enr.udp_port.unwrap_or(udp_port));
    } else if enr.address.is_some() {
        warn!("enr.address is set but the node does not listen on IPv4: not advertised");
    }
    if let (Some((listen_ip, tcp_port)), Some(udp_port)) = (listening.v6, udp6_port) {
        let towards = boot_enrs
            .iter()
            .find_map(Enr::ip6)
            .unwrap_or(listen::NETWORK_V6);
        let chosen = advertised_ip(enr.address6.map(IpAddr::V6), listen_ip.into(), || {
            listen::route_source(towards.into())
        });
        log_choice("ipv6", chosen);
        if let Some((IpAddr::V6(ip), _)) = chosen {
            builder.ip6(ip);
        }
        builder
            .tcp6(enr.tcp_port.unwrap_or(tcp_port))
            .udp6(enr.udp_port.unwrap_or(udp_port));
    } else if enr.address6.is_some() {
        warn!("enr.address6 is set but the node does not listen on IPv6: not advertised");
    }
    let local_enr = builder
        .build(&key)
        .map_err(|e| NetError::Discovery(format!("building the ENR: {e:?}")))?;
    let loopback_listen = listening.loopback_only();
    let mut config = ConfigBuilder::new(ListenConfig::FromSockets {
        ipv4: udp4.map(Arc::new),
        ipv6: udp6.map(Arc::new),
    });
    config
        .table_filter(if loopback_listen {
            accept_every_enr
        } else {
            reject_loopback_enrs
        })
        // Never revoke an advertised address for want of incoming sessions: in a network of
        // tens of nodes a reachable node can go minutes without one.
        .auto_nat_listen_duration(None);
    if enr.votes_update() {
        config.enr_peer_update_min(enr.update_min_votes);
    } else {
        config.disable_enr_update();
    }
    let mut discv5 = Discv5::new(local_enr.clone(), key, config.build())
        .map_err(|e| NetError::Discovery(e.to_string()))?;
    for (boot, enr) in bootnodes.iter().zip(boot_enrs) {
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
    let shared = discv5.external_enr();
    let current = LocalEnr(Arc::new(move || shared.read().clone()));
    let guard = VoteGuard {
        loopback_listen,
        key: enr_key(keypair)?,
        last: [
            local_enr.udp4_socket().map(SocketAddr::V4),
            local_enr.udp6_socket().map(SocketAddr::V6),
        ],
    };
    tokio::spawn(run(
        discv5,
        events,
        want_peers.clone(),
        pacing,
        found,
        guard,
        shutdown_rx,
    ));
    Ok(DiscoveryHandle {
        local_enr: current,
        want_peers,
        shutdown: Some(shutdown_tx),
    })
}

fn log_choice(family: &'static str, chosen: Option<(IpAddr, AddressSource)>) {
    match chosen {
        Some((ip, source)) => info!(family, %ip, ?source, "ENR address"),
        None => warn!(
            family,
            "listening on every interface without `--nat extip:IP` (enr.address) and no route \
             to the bootnodes or a default route: the ENR carries no IP until discv5's PONG \
             votes give one"
        ),
    }
}

/// The node's current ENR, as discv5 holds it (its PONG votes may update it).
#[derive(Clone)]
pub(crate) struct LocalEnr(Arc<dyn Fn() -> Enr + Send + Sync>);

impl LocalEnr {
    /// The ENR now.
    pub(crate) fn get(&self) -> Enr {
        (self.0)()
    }
}

impl std::fmt::Debug for LocalEnr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.get().to_base64())
    }
}

/// Undoes an ENR update from PONG votes that [`vote_acceptable`] refuses.
struct VoteGuard {
    loopback_listen: bool,
    key: CombinedKey,
    /// Last accepted UDP socket of each family (IPv4, IPv6) in the ENR.
    last: [Option<SocketAddr>; 2],
}

impl VoteGuard {
    fn on_socket_updated(&mut self, discv5: &Discv5, voted: SocketAddr) {
        let family = usize::from(voted.is_ipv6());
        if vote_acceptable(self.loopback_listen, voted.ip()) {
            self.last[family] = Some(voted);
            info!(
                addr = %voted,
                enr = %discv5.local_enr().to_base64(),
                "ENR address updated from discv5 PONG votes"
            );
            return;
        }
        warn!(
            addr = %voted,
            "discv5 PONG votes name an address other hosts cannot reach; the ENR keeps its own"
        );
        match self.last[family] {
            Some(previous) => {
                discv5.update_local_enr_socket(previous, false);
            }
            None => {
                let enr = discv5.external_enr();
                let mut enr = enr.write();
                let removed = if voted.is_ipv6() {
                    enr.remove_udp6_socket(&self.key)
                } else {
                    enr.remove_udp_socket(&self.key)
                };
                if let Err(e) = removed {
                    warn!(error = ?e, "cannot restore the ENR");
                }
            }
        }
    }
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
    mut guard: VoteGuard,
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
                Some(Event::SocketUpdated(voted)) => guard.on_socket_updated(&discv5, voted),
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
                let table = discv5.table_entries_enr();
                for enr in &table {
                    forward(&found, enr);
                }
                if table.is_empty() {
                    // A lookup needs a node to ask: discv5 would answer an empty one at
                    // once, with a WARN at every lookup while the node is alone.
                    debug!("discv5 lookup skipped: no node in the routing table");
                    continue;
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

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_configured_address_wins_and_the_route_is_not_looked_up() {
        for listen in ["0.0.0.0", "10.0.0.5", "127.0.0.1"] {
            let chosen = advertised_ip(Some(v4("203.0.113.9")), v4(listen), || {
                panic!("no route lookup with a configured address")
            });
            assert_eq!(
                chosen,
                Some((v4("203.0.113.9"), AddressSource::Configured)),
                "{listen}"
            );
        }
    }

    #[test]
    fn a_specific_listen_address_is_advertised_as_it_is() {
        for listen in ["10.77.0.3", "203.0.113.9", "127.0.0.1", "::1", "fd00::7"] {
            let chosen = advertised_ip(None, v4(listen), || panic!("no route lookup"));
            assert_eq!(
                chosen,
                Some((v4(listen), AddressSource::ListenAddress)),
                "{listen}"
            );
        }
    }

    #[test]
    fn a_wildcard_listen_advertises_the_route_source_never_loopback_or_unspecified() {
        let chosen = advertised_ip(None, v4("0.0.0.0"), || Some(v4("10.77.0.4")));
        assert_eq!(chosen, Some((v4("10.77.0.4"), AddressSource::Route)));
        let chosen = advertised_ip(None, v4("::"), || Some(v4("2001:db8::4")));
        assert_eq!(chosen, Some((v4("2001:db8::4"), AddressSource::Route)));
        // A route through loopback (the bootnode is on this host) or nowhere: no IP, the votes
        // fill it in; never 127.0.0.1 or 0.0.0.0.
        for route in [
            Some("127.0.0.1"),
            Some("0.0.0.0"),
            Some("169.254.1.1"),
            Some("::1"),
            Some("fe80::1"),
            // Unique-local IPv6: dual-stack peers would try it first and fail.
            Some("fd00::2"),
            None,
        ] {
            let chosen = advertised_ip(None, v4("0.0.0.0"), || route.map(v4));
            assert_eq!(chosen, None, "{route:?}");
        }
    }

    #[test]
    fn votes_for_loopback_count_only_for_a_loopback_listen() {
        assert!(vote_acceptable(false, v4("203.0.113.9")));
        assert!(vote_acceptable(false, v4("10.77.0.2")));
        assert!(vote_acceptable(false, v4("2001:db8::1")));
        for refused in [
            "127.0.0.1",
            "::1",
            "0.0.0.0",
            "::",
            "169.254.3.3",
            "224.0.0.1",
        ] {
            assert!(!vote_acceptable(false, v4(refused)), "{refused}");
        }
        assert!(vote_acceptable(true, v4("127.0.0.1")));
        assert!(vote_acceptable(true, v4("203.0.113.9")));
        assert!(!vote_acceptable(true, v4("0.0.0.0")));
    }

    #[test]
    fn a_real_listen_keeps_loopback_enrs_out_of_the_table() {
        let key = enr_key(&Keypair::generate_secp256k1()).unwrap();
        let with = |ip: &str| {
            let mut b = Enr::builder();
            b.ip(v4(ip)).tcp4(1).udp4(2);
            b.build(&key).unwrap()
        };
        assert!(!reject_loopback_enrs(&with("127.0.0.1")));
        assert!(!reject_loopback_enrs(&with("::1")));
        assert!(reject_loopback_enrs(&with("10.77.0.2")));
        assert!(reject_loopback_enrs(&with("2001:db8::2")));
        assert!(accept_every_enr(&with("127.0.0.1")));
        let listening = |v4: Option<&str>, v6: Option<&str>| Listening {
            v4: v4.map(|ip| (ip.parse().unwrap(), 1)),
            v6: v6.map(|ip| (ip.parse().unwrap(), 1)),
            udp_port: 0,
        };
        assert!(listening(Some("127.0.0.1"), None).loopback_only());
        assert!(listening(Some("127.0.0.1"), Some("::1")).loopback_only());
        assert!(!listening(Some("0.0.0.0"), Some("::")).loopback_only());
        assert!(!listening(Some("127.0.0.1"), Some("::")).loopback_only());
    }

    #[test]
    fn an_ipv6_only_enr_is_dialled_over_ipv6() {
        let kp = Keypair::generate_secp256k1();
        let key = enr_key(&kp).unwrap();
        let enr = Enr::builder()
            .ip6("2001:db8::5".parse().unwrap())
            .tcp6(9222)
            .udp6(9222)
            .build(&key)
            .unwrap();
        let (peer, addr) = enr_multiaddr(&enr).unwrap();
        assert_eq!(
            addr.to_string(),
            format!("/ip6/2001:db8::5/tcp/9222/p2p/{peer}")
        );
        let no_ip = Enr::builder().tcp4(9222).udp4(9222).build(&key).unwrap();
        assert!(enr_multiaddr(&no_ip).is_none());
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
