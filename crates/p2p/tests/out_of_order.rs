//! Out-of-order gossip across several hops: a commitment that arrives before its parent waits
//! in the pending buffer with its gossipsub verdict held, and is forwarded once the parent
//! arrives (§4.2, §5). SDK nodes over real TCP on 127.0.0.1; catch-up is off, so gossip is the
//! only way a block can reach a node.

mod common;

use common::*;
use p2p::testkit::ChainBuilder;
use preconfirmation_types::{GossipTopicKind, WireMessage};

/// A 6-node line (each node connected to its neighbours only); a raw publisher next to the
/// first node gossips block N+1, then block N (each tx list first). Every node ends with both
/// and their tx lists: the first node holds
/// N+1's verdict while it is pending and reports `Accept` once N validates, so N+1 is forwarded
/// down the line. With `Ignore` for a pending commitment it would stop at the first node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_commitments_cross_a_line_topology() {
    const NODES: usize = 6;
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, 200);
    let mut config = sdk_config();
    config.catchup.enabled = false;
    let mut nodes = Vec::new();
    for _ in 0..NODES {
        nodes.push(start_node(config.clone(), &builder).await);
    }
    for pair in nodes.windows(2) {
        connect(&pair[1].sdk, &pair[0].sdk).await;
    }
    for (i, node) in nodes.iter().enumerate() {
        let neighbours = if i == 0 || i == NODES - 1 { 1 } else { 2 };
        node.sdk
            .wait_for_gossip_peers(neighbours, WAIT)
            .await
            .expect("line mesh");
    }
    let (publisher, mut publisher_events) = raw_node().await;
    let first_addr = nodes[0].sdk.listen_addrs().await.expect("addrs")[0].clone();
    publisher.dial(first_addr).await.expect("dial");
    nodes[0]
        .sdk
        .wait_for_gossip_peers(2, WAIT)
        .await
        .expect("the publisher joins the first node's mesh");
    // The publisher answers nothing and validates nothing; drain its events.
    tokio::spawn(async move { while publisher_events.recv().await.is_some() {} });

    let mut blocks = builder.blocks(2, 64);
    let child = blocks.pop().expect("block 2");
    let parent = blocks.pop().expect("block 1");
    // Block 2 first (its tx list, then its commitment, as §6 publishes): pending at the first
    // node, and at every node it reached.
    for block in [&child, &parent] {
        let txlist = block.txlist.as_ref().expect("tx list");
        publisher
            .publish(GossipTopicKind::RawTxLists, txlist.to_ssz())
            .await
            .expect("publish tx list");
        publisher
            .publish(GossipTopicKind::Commitments, block.commitment.to_ssz())
            .await
            .expect("publish commitment");
        if std::ptr::eq(block, &child) {
            wait_status(&nodes[0].sdk, |s| s.pending_parent == 1).await;
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let mut watch = node.sdk.watch_status();
        tokio::time::timeout(WAIT, watch.wait_for(|s| s.head_block_number >= 2))
            .await
            .unwrap_or_else(|_| panic!("node {i} did not get block 2: {:?}", node.sdk.status()))
            .expect("sdk alive");
        assert_eq!(
            node.sdk.commitment_by_number(2).expect("storage"),
            Some(child.commitment.clone()),
            "node {i} has block 2"
        );
        for block in [&parent, &child] {
            let hash = block.commitment.preconf().raw_tx_list_hash;
            let arrived = tokio::time::timeout(WAIT, async {
                while !matches!(node.sdk.raw_txlist(&hash), Ok(Some(_))) {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
            .await;
            assert!(arrived.is_ok(), "node {i} has the tx list of {hash}");
        }
    }
    for node in &nodes {
        node.sdk.shutdown().await.expect("shutdown");
    }
}
