//! Listen addresses and what the ENR advertises, on real sockets: a port already in use stops
//! the start naming the address (TCP and UDP), the ENR carries the configured address and
//! ports, discv5's PONG votes correct a wrong one, and a wildcard listen never advertises
//! `0.0.0.0` or loopback. Every node listens on 127.0.0.1 at ephemeral ports, except the one
//! wildcard node, which takes ephemeral ports too (never 9222).

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::{addr, start, test_config, wait_connected, WAIT};
use preconfirmation_net::{EnrConfig, NetError, NetworkConfig, P2pService};
use tokio::time::timeout;

fn discovery(bootnodes: Vec<String>) -> NetworkConfig {
    NetworkConfig {
        discovery_enabled: true,
        discovery_interval: Duration::from_millis(300),
        discovery_min_interval: Duration::from_millis(100),
        bootnodes,
        ..test_config()
    }
}

fn tcp_port(s: &libp2p::Multiaddr) -> u16 {
    s.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("tcp port")
}

#[tokio::test]
async fn a_second_node_on_the_same_tcp_port_fails_naming_the_address() {
    let (first, _events) = start(test_config()).await;
    let port = tcp_port(&addr(&first).await);
    // libp2p binds with SO_REUSEPORT: without the check this start succeeds and both nodes
    // share the port.
    for listen in ["127.0.0.1", "0.0.0.0"] {
        let err = P2pService::start(
            NetworkConfig {
                listen_addr: format!("/ip4/{listen}/tcp/{port}").parse().unwrap(),
                listen_ipv6: false,
                ..test_config()
            },
            None,
        )
        .await
        .expect_err("the port is taken");
        let want: SocketAddr = format!("{listen}:{port}").parse().unwrap();
        assert!(
            matches!(err, NetError::AddrInUse { protocol: "p2p TCP", addr } if addr == want),
            "{err:?}"
        );
        let line = err.to_string();
        assert!(line.contains(&want.to_string()), "{line}");
        assert_eq!(line.lines().count(), 1, "{line}");
    }
    first.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_second_node_on_the_same_discv5_port_fails_naming_the_address() {
    let (first, _events) = start(discovery(Vec::new())).await;
    let udp = first.local_enr().expect("enr").udp4().expect("udp4");
    let err = P2pService::start(
        NetworkConfig {
            discv5_port: Some(udp),
            ..discovery(Vec::new())
        },
        None,
    )
    .await
    .expect_err("the UDP port is taken");
    let want = SocketAddr::from((Ipv4Addr::LOCALHOST, udp));
    assert!(
        matches!(err, NetError::AddrInUse { protocol: "discv5 UDP", addr } if addr == want),
        "{err:?}"
    );
    assert!(err.to_string().contains(&want.to_string()), "{err}");
    first.shutdown().await.expect("shutdown");
}

/// discv5 takes the TCP port number unless told otherwise.
#[tokio::test]
async fn discv5_listens_on_the_tcp_port_number_by_default() {
    // A port free for both TCP and UDP, picked by the kernel.
    let port = loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = tcp.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            break port;
        }
    };
    let (node, _events) = start(NetworkConfig {
        listen_addr: format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap(),
        ..discovery(Vec::new())
    })
    .await;
    let enr = node.local_enr().expect("enr");
    assert_eq!((enr.tcp4(), enr.udp4()), (Some(port), Some(port)));
    node.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_enr_advertises_the_configured_address_and_ports() {
    let (node, _events) = start(NetworkConfig {
        enr: EnrConfig {
            address: Some(Ipv4Addr::new(203, 0, 113, 9)),
            tcp_port: Some(30303),
            udp_port: Some(30304),
            ..Default::default()
        },
        ..discovery(Vec::new())
    })
    .await;
    let enr = node.local_enr().expect("enr");
    assert_eq!(enr.ip4(), Some(Ipv4Addr::new(203, 0, 113, 9)));
    assert_eq!((enr.tcp4(), enr.udp4()), (Some(30303), Some(30304)));
    node.shutdown().await.expect("shutdown");
}

/// A node whose ENR names a wrong UDP port (as behind a NAT) learns the right one from its
/// peers' PONGs (discv5's ENR auto-update, `enr.update_min_votes` of them), and a node given the
/// updated ENR finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pong_votes_replace_a_wrong_advertised_port() {
    let (boot, _boot_events) = start(discovery(Vec::new())).await;
    let boot_enr = boot.local_enr().expect("enr").to_base64();
    // discv5 counts the votes of peers the node contacted itself, not its bootnode's: two
    // more nodes for the node to find through the bootnode.
    let (other, _other_events) = start(discovery(vec![boot_enr.clone()])).await;
    let (third, _third_events) = start(discovery(vec![boot_enr.clone()])).await;
    let (node, _node_events) = start(NetworkConfig {
        enr: EnrConfig {
            udp_port: Some(1),
            update_min_votes: 2,
            ..Default::default()
        },
        ..discovery(vec![boot_enr])
    })
    .await;
    assert_eq!(node.local_enr().expect("enr").udp4(), Some(1));
    let updated = timeout(WAIT, async {
        loop {
            let enr = node.local_enr().expect("enr");
            if enr.udp4() != Some(1) {
                return enr;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("two peers' PONGs update the ENR");
    assert_eq!(updated.ip4(), Some(Ipv4Addr::LOCALHOST));
    // The voted port is discv5's real one: a node bootstrapping from it reaches the node.
    let (fresh, mut fresh_events) = start(discovery(vec![updated.to_base64()])).await;
    let node_id = node.local_peer_id();
    wait_connected(&mut fresh_events, node_id)
        .await
        .expect("found through the voted ENR");
    for s in [boot, other, third, node, fresh] {
        s.shutdown().await.expect("shutdown");
    }
}

/// The source address towards `dest` by this host's routing table, as the node picks it.
fn route_source(dest: IpAddr) -> Option<IpAddr> {
    let any: IpAddr = if dest.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let s = UdpSocket::bind((any, 0)).ok()?;
    s.connect((dest, 9)).ok()?;
    Some(s.local_addr().ok()?.ip())
}

/// Listening on every interface (ephemeral ports), the ENR carries the address this host
/// routes from, never `0.0.0.0` or 127.0.0.1 (it used to carry whichever interface address
/// libp2p reported first, often 127.0.0.1).
#[tokio::test]
async fn a_wildcard_listen_advertises_the_routed_address_never_loopback() {
    let (node, _events) = start(NetworkConfig {
        listen_addr: "/ip4/0.0.0.0/tcp/0".parse().unwrap(),
        ..discovery(Vec::new())
    })
    .await;
    let enr = node.local_enr().expect("enr");
    let routed =
        |dest: IpAddr| route_source(dest).filter(|ip| !ip.is_loopback() && !ip.is_unspecified());
    let v4 = routed(Ipv4Addr::new(192, 0, 2, 1).into());
    assert_eq!(enr.ip4().map(IpAddr::from), v4, "{enr}");
    assert!(enr.tcp4().is_some() && enr.udp4().is_some(), "{enr}");
    // IPv6: a global unicast route source, or nothing (this machine may have only a
    // unique-local address, which is not advertised).
    let v6 = routed("2001:db8::1".parse().unwrap()).filter(|ip| match ip {
        IpAddr::V6(v6) => v6.segments()[0] & 0xe000 == 0x2000,
        IpAddr::V4(_) => false,
    });
    assert_eq!(enr.ip6().map(IpAddr::from), v6, "{enr}");
    node.shutdown().await.expect("shutdown");
}
