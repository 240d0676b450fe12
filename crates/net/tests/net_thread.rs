//! The network runs on a thread of its own, named [`NET_THREAD`], when
//! `NetworkConfig::own_thread` is set (the default), and as tasks of the caller's runtime
//! without it: a profile or `preconf-node bench propagation` tells its CPU time from the
//! SDK's by that name. Its own test binary: it counts this process's threads by name.

use std::time::Duration;

use preconfirmation_net::{GossipVerdict, NetworkConfig, NET_THREAD};
use preconfirmation_types::{GossipTopicKind, WireMessage};
use tokio::time::{timeout, Instant};

mod common;
use common::*;

/// Threads of this process named [`NET_THREAD`].
fn net_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .expect("/proc/self/task")
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end() == NET_THREAD)
        })
        .count()
}

/// Waits (at most [`WAIT`]) until `count` threads are named [`NET_THREAD`].
async fn wait_net_threads(count: usize) {
    let deadline = Instant::now() + WAIT;
    while net_threads() != count {
        assert!(
            Instant::now() < deadline,
            "{} network threads, expected {count}",
            net_threads()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_runs_on_a_named_thread_of_its_own_by_default() {
    assert!(NetworkConfig::default().own_thread);
    assert_eq!(net_threads(), 0, "no network started yet");

    // Two nodes, each on its own thread, gossip to one another.
    let (a, mut a_events) = start(test_config()).await;
    let (b, b_events) = start(test_config()).await;
    assert_eq!(net_threads(), 2, "a thread per network");
    connect(&a, &mut a_events, &b).await;
    let _a_rx = spawn_sdk(a.clone(), a_events, GossipVerdict::Accept);
    let mut b_rx = spawn_sdk(b.clone(), b_events, GossipVerdict::Accept);
    wait_gossip_peers(&a, &[b.local_peer_id()]).await;
    let signed = commitment(3).to_ssz();
    a.publish(GossipTopicKind::Commitments, signed.clone())
        .await
        .expect("publish");
    let got = timeout(WAIT, b_rx.recv())
        .await
        .expect("gossip in time")
        .expect("open");
    assert_eq!(got, (GossipTopicKind::Commitments, signed));

    // A network that shuts down ends its thread.
    a.shutdown().await.expect("shutdown");
    wait_net_threads(1).await;
    b.shutdown().await.expect("shutdown");
    wait_net_threads(0).await;

    // Without `own_thread` the network's tasks run on this runtime: no thread of its own.
    let mut config = test_config();
    config.own_thread = false;
    let (c, _c_events) = start(config).await;
    assert!(!c.listen_addrs().await.expect("running").is_empty());
    assert_eq!(net_threads(), 0);
    c.shutdown().await.expect("shutdown");
}
