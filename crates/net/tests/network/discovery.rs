//! Discovery: discv5 finds a third node and it is dialled; an identity discv5 cannot use is
//! refused at start.

use std::time::Duration;

use libp2p::identity::Keypair;
use preconfirmation_net::{NetworkConfig, P2pService};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv5_finds_and_dials_third_node() {
    let disc = |boot: Vec<String>| NetworkConfig {
        discovery_enabled: true,
        discovery_interval: Duration::from_millis(300),
        bootnodes: boot,
        ..test_config()
    };
    let (a, _a_events) = start(disc(vec![])).await;
    let a_enr = a.local_enr().expect("enr").to_base64();
    let (b, _b_events) = start(disc(vec![a_enr.clone()])).await;
    let (c, mut c_events) = start(disc(vec![a_enr])).await;
    let b_id = b.local_peer_id();
    wait_connected(&mut c_events, b_id)
        .await
        .expect("C discovers and dials B");
    assert!(c.connected_peers().await.expect("peers").contains(&b_id));
    for s in [a, b, c] {
        s.shutdown().await.expect("shutdown");
    }
}

/// discv5 opens sessions only with secp256k1 keys: an ed25519 node would start, sign its ENR
/// and never complete a handshake, so starting discovery with one is a config error.
#[tokio::test]
async fn discovery_refuses_an_ed25519_identity() {
    let config = NetworkConfig {
        discovery_enabled: true,
        ..test_config()
    };
    let err = P2pService::start(config.clone(), Some(Keypair::generate_ed25519()))
        .await
        .expect_err("ed25519 with discovery");
    assert!(err.to_string().contains("secp256k1"), "{err}");
    let without = NetworkConfig {
        discovery_enabled: false,
        ..config
    };
    let (service, _events) = P2pService::start(without, Some(Keypair::generate_ed25519()))
        .await
        .expect("ed25519 without discovery");
    service.shutdown().await.expect("shutdown");
}
