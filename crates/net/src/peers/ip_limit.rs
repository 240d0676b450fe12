//! Connection limits keyed by what a remote chooses (§7 "nothing a peer sends can grow a
//! node's memory without bound"): its IP address and its peer id.
//!
//! - **Per IP** ([`NetworkConfig::max_connections_per_ip`]): inbound connections from one IP,
//!   pending (still in their handshake) and established, are capped, so one host cannot take
//!   every inbound slot ([`NetworkConfig::max_inbound_peers`]) by minting peer ids. Counted
//!   from `handle_pending_inbound_connection`, before the handshake spends any CPU. Outbound
//!   connections are ours to choose and are not counted.
//! - **Per peer id** ([`NetworkConfig::max_connections_per_peer`]): established
//!   connections of one peer id, in both directions. libp2p's `connection_limits` has the same
//!   limit but keeps an entry for every peer id that ever connected (an attacker minting ids
//!   grows it without bound); this one drops a peer's entry with its last connection.
//!
//! A refused connection is denied with [`LimitExceeded`] (inside libp2p's `ConnectionDenied`);
//! the swarm reports it as an `IncomingConnectionError` / `OutgoingConnectionError`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::{ConnectionEstablished, ListenFailure};
use libp2p::swarm::{
    dummy, ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use crate::config::NetworkConfig;

/// Why [`Behaviour`] refused a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The remote IP already has `limit` inbound connections.
    #[error("{ip} already has {limit} inbound connections")]
    PerIp {
        /// The remote IP.
        ip: IpAddr,
        /// [`NetworkConfig::max_connections_per_ip`].
        limit: u32,
    },
    /// The peer id already has `limit` established connections.
    #[error("{peer} already has {limit} connections")]
    PerPeer {
        /// The remote peer id.
        peer: PeerId,
        /// [`NetworkConfig::max_connections_per_peer`].
        limit: u32,
    },
}

/// Sizes of the per-key maps, for tests: each returns to 0 when every connection is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LimitCounts {
    /// IPs with at least one counted inbound connection.
    pub ips: usize,
    /// Inbound connections counted against an IP.
    pub inbound_connections: usize,
    /// Peer ids with at least one established connection.
    pub peers: usize,
}

/// The behaviour: no protocol, only admission decisions and their bookkeeping.
#[derive(Debug)]
pub struct Behaviour {
    max_per_ip: u32,
    max_per_peer: u32,
    /// Inbound connection → its remote IP (pending or established).
    inbound: HashMap<ConnectionId, IpAddr>,
    /// Remote IP → its inbound connections; no zero entries.
    per_ip: HashMap<IpAddr, u32>,
    /// Peer id → its established connections; no empty entries.
    per_peer: HashMap<PeerId, Vec<ConnectionId>>,
}

impl Behaviour {
    /// Limits of `config`.
    pub fn new(config: &NetworkConfig) -> Self {
        Self::with_limits(
            config.max_connections_per_ip,
            config.max_connections_per_peer,
        )
    }

    /// At most `max_per_ip` inbound connections per IP and `max_per_peer` connections per
    /// peer id.
    pub fn with_limits(max_per_ip: u32, max_per_peer: u32) -> Self {
        Self {
            max_per_ip,
            max_per_peer,
            inbound: HashMap::new(),
            per_ip: HashMap::new(),
            per_peer: HashMap::new(),
        }
    }

    /// The sizes of the per-IP and per-peer maps.
    pub fn counts(&self) -> LimitCounts {
        LimitCounts {
            ips: self.per_ip.len(),
            inbound_connections: self.inbound.len(),
            peers: self.per_peer.len(),
        }
    }

    fn admit_inbound(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), LimitExceeded> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let n = self.per_ip.get(&ip).copied().unwrap_or(0);
        if n >= self.max_per_ip {
            return Err(LimitExceeded::PerIp {
                ip,
                limit: self.max_per_ip,
            });
        }
        self.per_ip.insert(ip, n.saturating_add(1));
        self.inbound.insert(id, ip);
        Ok(())
    }

    fn release_inbound(&mut self, id: ConnectionId) {
        let Some(ip) = self.inbound.remove(&id) else {
            return;
        };
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }

    fn check_peer(&self, peer: PeerId) -> Result<(), LimitExceeded> {
        let n = self.per_peer.get(&peer).map_or(0, Vec::len);
        if n >= self.max_per_peer as usize {
            return Err(LimitExceeded::PerPeer {
                peer,
                limit: self.max_per_peer,
            });
        }
        Ok(())
    }

    fn closed(&mut self, peer: PeerId, id: ConnectionId) {
        self.release_inbound(id);
        if let Some(ids) = self.per_peer.get_mut(&peer) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                self.per_peer.remove(&peer);
            }
        }
    }
}

/// The IP of a `/ip4/…` or `/ip6/…` address (none for e.g. a memory transport).
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit_inbound(connection_id, remote_addr)
            .map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // A denial here is followed by a `ListenFailure`, which releases the IP's count.
        self.check_peer(peer).map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.check_peer(peer).map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        match event {
            FromSwarm::ConnectionEstablished(ConnectionEstablished {
                peer_id,
                connection_id,
                ..
            }) => self
                .per_peer
                .entry(peer_id)
                .or_default()
                .push(connection_id),
            FromSwarm::ConnectionClosed(ConnectionClosed {
                peer_id,
                connection_id,
                ..
            }) => self.closed(peer_id, connection_id),
            FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.release_inbound(connection_id)
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/4000").parse().unwrap()
    }

    #[test]
    fn inbound_connections_are_capped_per_ip_and_released() {
        let mut b = Behaviour::with_limits(2, 1);
        let local = addr("127.0.0.1");
        let (c1, c2, c3, c4) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
            ConnectionId::new_unchecked(4),
        );
        b.handle_pending_inbound_connection(c1, &local, &addr("10.0.0.1"))
            .unwrap();
        b.handle_pending_inbound_connection(c2, &local, &addr("10.0.0.1"))
            .unwrap();
        let denied = b
            .handle_pending_inbound_connection(c3, &local, &addr("10.0.0.1"))
            .unwrap_err();
        assert!(matches!(
            denied.downcast::<LimitExceeded>(),
            Ok(LimitExceeded::PerIp { limit: 2, .. })
        ));
        // Another IP has its own count.
        b.handle_pending_inbound_connection(c4, &local, &addr("10.0.0.2"))
            .unwrap();
        assert_eq!(
            b.counts(),
            LimitCounts {
                ips: 2,
                inbound_connections: 3,
                peers: 0
            }
        );
        // A failed handshake frees its slot; so does a closed connection.
        b.release_inbound(c1);
        b.handle_pending_inbound_connection(c3, &local, &addr("10.0.0.1"))
            .unwrap();
        let peer = PeerId::random();
        b.per_peer.entry(peer).or_default().push(c2);
        b.closed(peer, c2);
        b.closed(PeerId::random(), c3);
        b.closed(PeerId::random(), c4);
        assert_eq!(b.counts(), LimitCounts::default());
        // Unknown ids are ignored.
        b.release_inbound(c1);
        assert_eq!(b.counts(), LimitCounts::default());
    }

    #[test]
    fn connections_are_capped_per_peer_and_entries_dropped() {
        let mut b = Behaviour::with_limits(8, 1);
        let peer = PeerId::random();
        let local = addr("127.0.0.1");
        b.check_peer(peer).unwrap();
        b.per_peer
            .entry(peer)
            .or_default()
            .push(ConnectionId::new_unchecked(1));
        assert!(matches!(
            b.handle_established_outbound_connection(
                ConnectionId::new_unchecked(2),
                peer,
                &local,
                Endpoint::Dialer,
                PortUse::New
            )
            .map(|_| ())
            .unwrap_err()
            .downcast::<LimitExceeded>(),
            Ok(LimitExceeded::PerPeer { limit: 1, .. })
        ));
        b.closed(peer, ConnectionId::new_unchecked(1));
        assert_eq!(b.counts().peers, 0, "no empty entry is left behind");
        b.check_peer(peer).unwrap();
    }

    #[test]
    fn addresses_without_an_ip_are_not_counted() {
        let mut b = Behaviour::with_limits(1, 1);
        let mem: Multiaddr = "/memory/1234".parse().unwrap();
        for i in 0..3 {
            b.handle_pending_inbound_connection(ConnectionId::new_unchecked(i), &mem, &mem)
                .unwrap();
        }
        assert_eq!(b.counts(), LimitCounts::default());
        assert_eq!(
            ip_of(&"/ip6/::1/tcp/1".parse().unwrap()),
            Some("::1".parse().unwrap())
        );
    }
}
