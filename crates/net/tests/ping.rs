//! Liveness pings (`/ipfs/ping/1.0.0`) over real TCP on 127.0.0.1: RTTs between two nodes, and
//! a peer without a ping service (like a js-libp2p 2.x node started without `@libp2p/ping`,
//! whose connection monitor still pings us) whose pings must be answered on the very
//! connection on which ours were refused.

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
