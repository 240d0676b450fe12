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

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use socket2::{Domain, Socket, Type};
use tracing::info;

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

/// Binds (and drops) a TCP socket on `addr` without `SO_REUSEPORT`: fails with `EADDRINUSE`
/// if any socket listens on that port, whatever options it set. IPv6 sockets are IPv6-only,
/// as libp2p's are.
fn check_tcp_free(addr: SocketAddr) -> io::Result<()> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// The libp2p TCP sockets to listen on: the configured one and, when that is `0.0.0.0` and
/// [`NetworkConfig::listen_ipv6`] is on, `[::]` at the same port if this host can open an IPv6
/// socket (else IPv4 only, logged). Each fixed port is checked free first.
pub(crate) fn tcp_listen_plan(config: &NetworkConfig) -> Result<Vec<SocketAddr>, NetError> {
    let primary = config.listen_socket()?;
    if primary.port() != 0 {
        check_tcp_free(primary).map_err(|e| bind_error(TCP, primary, &e))?;
    }
    let mut plan = vec![primary];
    if primary.ip() == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && config.listen_ipv6 {
        let v6 = SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), primary.port());
        match check_tcp_free(v6) {
            Ok(()) => plan.push(v6),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return Err(bind_error(TCP, v6, &e));
            }
            Err(e) => info!(error = %e, "no IPv6 on this host: listening on IPv4 only"),
        }
    }
    Ok(plan)
}

/// Binds a discv5 UDP socket on `addr` (IPv6: IPv6-only) without any reuse option, so a port
/// bound by anyone else fails with [`NetError::AddrInUse`].
pub(crate) fn bind_udp(addr: SocketAddr) -> Result<tokio::net::UdpSocket, NetError> {
    let bind = || -> io::Result<tokio::net::UdpSocket> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )?;
        if addr.is_ipv6() {
            socket.set_only_v6(true)?;
        }
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
