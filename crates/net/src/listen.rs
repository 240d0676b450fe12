//! The p2p listen sockets: which addresses the node binds, each checked for another socket on
//! its port before libp2p binds it, discv5's UDP sockets, and the source address this host
//! uses towards the network (the ENR's address on a wildcard listen, see
//! [`crate::discovery::advertised_ip`]).
//!
//! Why the check: libp2p-tcp binds every listening socket with `SO_REUSEPORT` (its
//! `Config::port_reuse` switch is a no-op since libp2p-tcp 0.42), so on Linux a second process
//! of the same user binding the same port *succeeds* and the kernel splits the incoming
//! connections between the two — two nodes "listening" on one port, each getting part of the
//! dials. Before libp2p listens, the node binds the address itself without `SO_REUSEPORT`
//! (with `SO_REUSEADDR`, so a previous run's TIME_WAIT does not count): any socket listening
//! on that port makes this fail with `EADDRINUSE`, and the start stops with
//! [`NetError::AddrInUse`]. The check and libp2p's bind are two steps: two nodes started at the
//! same instant on one port could still both bind (libp2p offers no bind without
//! `SO_REUSEPORT`). discv5's UDP sockets are bound here, without any reuse option, and handed
//! to discv5, so a UDP port in use always fails.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, Swarm};
use socket2::{Domain, Socket, Type};
use tracing::info;

use crate::behaviour::Behaviour;
use crate::config::NetworkConfig;
use crate::error::NetError;

/// [`NetError::AddrInUse::protocol`] of the libp2p listener.
pub(crate) const TCP: &str = "p2p TCP";
/// [`NetError::AddrInUse::protocol`] of discv5.
pub(crate) const UDP: &str = "discv5 UDP";

/// `e`, from binding `addr`, as the node's error: [`NetError::AddrInUse`] for a port in use,
/// else [`NetError::Listen`] naming the address.
pub(crate) fn bind_error(protocol: &'static str, addr: SocketAddr, e: &io::Error) -> NetError {
    if e.kind() == io::ErrorKind::AddrInUse {
        NetError::AddrInUse { protocol, addr }
    } else {
        NetError::Listen(format!("{protocol} {addr}: {e}"))
    }
}

/// `/ip4|ip6/<ip>/tcp/<port>` of a socket address.
pub(crate) fn tcp_multiaddr(addr: SocketAddr) -> Multiaddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty().with(ip).with(Protocol::Tcp(addr.port()))
}

/// An unbound socket of `addr`'s family, no reuse option set; IPv6 sockets are IPv6-only, as
/// libp2p's are.
fn socket_for(addr: SocketAddr, ty: Type, protocol: socket2::Protocol) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Binds (and drops) a TCP socket on `addr` without `SO_REUSEPORT`: fails with `EADDRINUSE`
/// if any socket listens on that port, whatever options it set. IPv6 sockets are IPv6-only,
/// as libp2p's are.
pub(crate) fn check_tcp_free(addr: SocketAddr) -> io::Result<()> {
    let socket = socket_for(addr, Type::STREAM, socket2::Protocol::TCP)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// Stand-in destinations for "the network" when no bootnode gives one: documentation
/// addresses (RFC 5737, RFC 3849) whose route is only looked up, never sent to.
pub(crate) const NETWORK_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// See [`NETWORK_V4`].
pub(crate) const NETWORK_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);

/// Whether `ip` is a global unicast IPv6 address (`2000::/3`): not loopback, link-local or
/// unique-local.
pub(crate) fn is_global_v6(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xe000 == 0x2000
}

/// This host's IPv6 address towards the IPv6 internet, when it is a global one: the host
/// "has IPv6". A host with the IPv6 stack but only link-local or unique-local addresses, or
/// no IPv6 default route (IPv6 disabled, most containers), does not.
pub(crate) fn global_ipv6_route() -> Option<Ipv6Addr> {
    match route_source(NETWORK_V6.into())? {
        IpAddr::V6(ip) if is_global_v6(ip) => Some(ip),
        _ => None,
    }
}

/// What the node listens on: [`Self::primary`], and `[::]` at the same port when
/// [`Self::ipv6`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenPlan {
    /// [`NetworkConfig::listen_addr`] as a socket address.
    pub(crate) primary: SocketAddr,
    /// Also listen on the IPv6 wildcard (libp2p TCP and discv5 UDP): the primary is
    /// `0.0.0.0`, [`NetworkConfig::listen_ipv6`] is on and the host has IPv6 (`v6_route`
    /// gives a global address). Only then: discv5 listening on both families contacts a peer
    /// over IPv6 first whenever its ENR has an IPv6 address, so a host without IPv6
    /// connectivity must stay IPv4 only.
    pub(crate) ipv6: bool,
}

/// The listen plan of `config`, each fixed port checked free (TCP) first.
pub(crate) fn listen_plan(
    config: &NetworkConfig,
    v6_route: impl FnOnce() -> Option<Ipv6Addr>,
) -> Result<ListenPlan, NetError> {
    let primary = config.listen_socket()?;
    if primary.port() != 0 {
        check_tcp_free(primary).map_err(|e| bind_error(TCP, primary, &e))?;
    }
    let mut ipv6 = false;
    if primary.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && config.listen_ipv6 {
        match v6_route() {
            Some(ip) => {
                ipv6 = true;
                info!(%ip, "this host has IPv6: listening on :: too");
            }
            None => info!("no global IPv6 address with a route out: listening on IPv4 only"),
        }
    }
    if ipv6 && primary.port() != 0 {
        let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), primary.port());
        check_tcp_free(v6).map_err(|e| bind_error(TCP, v6, &e))?;
    }
    Ok(ListenPlan { primary, ipv6 })
}

/// Listens on `plan` with libp2p: the primary address, then, when [`ListenPlan::ipv6`], `[::]`
/// at the port the primary got (a taken port there is an error for a fixed port, and leaves the
/// node IPv4 only for an ephemeral one). Returns the (IP, TCP port) of each listener and the
/// addresses reported so far (a wildcard listener reports one per interface; later ones reach
/// the driver loop).
pub(crate) async fn listen(
    swarm: &mut Swarm<Behaviour>,
    plan: ListenPlan,
) -> Result<(Vec<(IpAddr, u16)>, Vec<Multiaddr>), NetError> {
    let listen_on = |swarm: &mut Swarm<Behaviour>, addr: SocketAddr| {
        swarm.listen_on(tcp_multiaddr(addr)).map_err(|e| match e {
            libp2p::TransportError::Other(io) => bind_error(TCP, addr, &io),
            other => NetError::Listen(format!("{TCP} {addr}: {other}")),
        })
    };
    let primary = listen_on(swarm, plan.primary)?;
    let mut reported = Vec::new();
    // The primary's port: the configured one, or the one an ephemeral bind got.
    let port = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr {
                    listener_id,
                    address,
                } => {
                    let port = address.iter().find_map(|p| match p {
                        Protocol::Tcp(port) => Some(port),
                        _ => None,
                    });
                    reported.push(address);
                    if let Some(port) = port.filter(|_| listener_id == primary) {
                        return Ok(port);
                    }
                }
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(NetError::Listen(format!("{TCP} {}: {error}", plan.primary)))
                }
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(NetError::Listen(format!(
                        "{TCP} {}: listener closed: {reason:?}",
                        plan.primary
                    )))
                }
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| {
        NetError::Listen(format!(
            "{TCP} {}: no listen address within 5 s",
            plan.primary
        ))
    })??;
    let mut listening = vec![(plan.primary.ip(), port)];
    if plan.ipv6 {
        let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port);
        // A fixed port was checked by `listen_plan`; an ephemeral one only now.
        match check_tcp_free(v6) {
            Ok(()) => {
                listen_on(swarm, v6)?;
                listening.push((v6.ip(), port));
            }
            Err(e) if plan.primary.port() != 0 => return Err(bind_error(TCP, v6, &e)),
            Err(e) => info!(addr = %v6, error = %e, "IPv6 listen failed: IPv4 only"),
        }
    }
    Ok((listening, reported))
}

/// Binds a discv5 UDP socket on `addr` (IPv6: IPv6-only) without any reuse option, so a port
/// bound by anyone else fails with [`NetError::AddrInUse`].
pub(crate) fn bind_udp(addr: SocketAddr) -> Result<tokio::net::UdpSocket, NetError> {
    let bind = || -> io::Result<tokio::net::UdpSocket> {
        let socket = socket_for(addr, Type::DGRAM, socket2::Protocol::UDP)?;
        socket.bind(&addr.into())?;
        socket.set_nonblocking(true)?;
        tokio::net::UdpSocket::from_std(socket.into())
    };
    bind().map_err(|e| bind_error(UDP, addr, &e))
}

/// The source address this host's routing table picks towards `dest`; `None` without a
/// route. No packet is sent: connecting a UDP socket only looks the route up.
pub(crate) fn route_source(dest: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = match dest {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((any, 0)).ok()?;
    // Port 9 (discard): any port does, nothing is sent.
    socket.connect((dest, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_port_is_in_use_whatever_its_reuse_options() {
        // libp2p's listeners set SO_REUSEPORT: model one.
        let holder = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        holder.set_reuse_address(true).unwrap();
        holder.set_reuse_port(true).unwrap();
        holder
            .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
            .unwrap();
        holder.listen(8).unwrap();
        let addr = holder.local_addr().unwrap().as_socket().unwrap();
        let err = check_tcp_free(addr).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(matches!(
            bind_error(TCP, addr, &err),
            NetError::AddrInUse { protocol: TCP, addr: a } if a == addr
        ));
        drop(holder);
        check_tcp_free(addr).expect("free once the holder is gone");
    }

    #[test]
    fn ipv6_too_only_on_the_ipv4_wildcard_of_a_host_with_global_ipv6() {
        let global: Ipv6Addr = "2001:db8:77::2".parse().unwrap();
        let plan = |listen: &str, listen_ipv6: bool, route: Option<Ipv6Addr>| {
            let config = NetworkConfig {
                listen_addr: listen.parse().unwrap(),
                listen_ipv6,
                ..NetworkConfig::default()
            };
            listen_plan(&config, || route).unwrap()
        };
        let wildcard = "/ip4/0.0.0.0/tcp/0";
        assert!(plan(wildcard, true, Some(global)).ipv6);
        assert!(!plan(wildcard, true, None).ipv6, "no IPv6 route: IPv4 only");
        assert!(!plan(wildcard, false, Some(global)).ipv6, "listen_ipv6 off");
        assert!(!plan("/ip4/127.0.0.1/tcp/0", true, Some(global)).ipv6);
        assert!(
            !plan("/ip6/::/tcp/0", true, Some(global)).ipv6,
            "already IPv6"
        );
        assert_eq!(
            plan(wildcard, true, None).primary,
            SocketAddr::from(([0, 0, 0, 0], 0))
        );
        assert!(is_global_v6(global));
        for not in ["fd00::2", "fe80::1", "::1", "::"] {
            assert!(!is_global_v6(not.parse().unwrap()), "{not}");
        }
    }

    #[test]
    fn the_route_to_loopback_starts_at_loopback() {
        assert_eq!(
            route_source(Ipv4Addr::LOCALHOST.into()),
            Some(Ipv4Addr::LOCALHOST.into())
        );
    }

    #[test]
    fn multiaddrs_of_both_families() {
        assert_eq!(
            tcp_multiaddr("0.0.0.0:9222".parse().unwrap()).to_string(),
            "/ip4/0.0.0.0/tcp/9222"
        );
        assert_eq!(
            tcp_multiaddr("[::]:9222".parse().unwrap()).to_string(),
            "/ip6/::/tcp/9222"
        );
    }
}
