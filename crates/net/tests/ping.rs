//! Liveness pings (`/ipfs/ping/1.0.0`) over real TCP on 127.0.0.1: RTTs between two nodes, and
//! a peer without a ping service (like a js-libp2p 2.x node started without `@libp2p/ping`,
//! whose connection monitor still pings us) whose pings must be answered on the very
//! connection on which ours were refused; and the bounds on inbound ping streams.

use std::time::Duration;

use futures::AsyncReadExt;
use preconfirmation_net::NetworkConfig;
use tokio::time::timeout;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_between_two_nodes_records_rtt() {
    let (a, mut a_events) = start(test_config()).await;
    let (b, _b_events) = start(test_config()).await;
    connect(&a, &mut a_events, &b).await;
    for (node, peer) in [(&a, b.local_peer_id()), (&b, a.local_peer_id())] {
        let snap = wait_peer(node, peer, |p| p.ping_rtt.is_some())
            .await
            .expect("an RTT recorded on both sides");
        assert!(!snap.ping_unsupported, "our own nodes support ping");
    }
    a.shutdown().await.expect("shutdown");
    b.shutdown().await.expect("shutdown");
}

/// The node's outbound ping is refused (the peer has no ping service); the peer's own pings,
/// on new streams (js-libp2p's connection monitor) and on one reused stream (rust-libp2p,
/// go-libp2p), are then all echoed, and the connection stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_of_a_peer_without_ping_are_answered_after_ours_is_refused() {
    let (node, _events) = start(test_config()).await;
    let mut peer = NoPingPeer::connect(&node).await;
    let target = node.local_peer_id();
    wait_peer(&node, peer.peer_id, |p| p.ping_unsupported)
        .await
        .expect("the node tried to ping the peer and found ping unsupported");

    for i in 0..3u8 {
        let payload = ping_payload(i);
        let echo = peer
            .ping_new_stream(target, payload)
            .await
            .unwrap_or_else(|e| panic!("ping {i} on a new stream: {e}"));
        assert_eq!(echo, payload, "ping {i} echoed byte for byte");
    }
    let mut stream = peer.open_ping(target).await.expect("ping stream");
    for i in 3..6u8 {
        let payload = ping_payload(i);
        let echo = ping_on(&mut stream, payload)
            .await
            .unwrap_or_else(|e| panic!("ping {i} on a reused stream: {e}"));
        assert_eq!(echo, payload, "ping {i} echoed byte for byte");
    }

    assert_eq!(peer.connections(), 1, "the connection is still up");
    let snap = wait_peer(&node, peer.peer_id, |_| true)
        .await
        .expect("the node still lists the peer");
    assert!(snap.ping_unsupported);
    node.shutdown().await.expect("shutdown");
}

/// At most `ping_max_inbound_streams_per_peer` inbound ping streams per peer: one more is
/// dropped unanswered; silent streams are closed after `ping_inbound_timeout`, which frees
/// their places, and pings go through again on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_ping_streams_are_capped_per_peer_and_silent_ones_time_out() {
    let (node, _events) = start(NetworkConfig {
        ping_max_inbound_streams_per_peer: 2,
        ping_inbound_timeout: Duration::from_millis(500),
        ..test_config()
    })
    .await;
    let mut peer = NoPingPeer::connect(&node).await;
    let target = node.local_peer_id();

    // Two silent streams take the peer's two places.
    let mut silent = [
        peer.open_ping(target).await.expect("stream 1"),
        peer.open_ping(target).await.expect("stream 2"),
    ];
    let mut third = peer.open_ping(target).await.expect("negotiated");
    assert!(
        ping_on(&mut third, ping_payload(1)).await.is_err(),
        "a third concurrent stream is dropped unanswered"
    );

    // The node closes each silent stream once the inbound timeout has passed.
    for (i, stream) in silent.iter_mut().enumerate() {
        let mut byte = [0u8; 1];
        let read = timeout(WAIT, stream.read(&mut byte))
            .await
            .unwrap_or_else(|_| panic!("silent stream {i} still open"));
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "silent stream {i}: no data, only the close"
        );
    }

    // Places freed: pings are answered again, on the same connection.
    let echo = peer
        .ping_new_stream(target, ping_payload(2))
        .await
        .expect("ping after the silent streams were closed");
    assert_eq!(echo, ping_payload(2));
    assert_eq!(peer.connections(), 1, "the connection is still up");
    node.shutdown().await.expect("shutdown");
}
