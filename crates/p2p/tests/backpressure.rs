//! Bounded queues: a full command queue returns `Backpressure` to the caller; a subscriber that
//! falls behind is told how many events it lost.

mod common;

use common::*;
use p2p::testkit::ChainBuilder;
use p2p::P2pSdkError;

// A current-thread runtime: the SDK's manager cannot run between two calls that do not await,
// so the second command deterministically finds the queue full.
#[tokio::test(flavor = "current_thread")]
async fn full_command_queue_returns_backpressure() {
    let builder = ChainBuilder::in_the_past(chain(), 1, 4, 10);
    let mut config = sdk_config();
    config.command_channel_capacity = 1;
    config.catchup.enabled = false;
    let node = start_node(config, &builder).await;
    node.sdk.schedule_updated().expect("first command fits");
    let err = node
        .sdk
        .schedule_updated()
        .expect_err("queue of one is full");
    assert!(
        matches!(err, P2pSdkError::Backpressure { queue: "command" }),
        "{err:?}"
    );
    // Once the manager drained it, commands fit again.
    tokio::task::yield_now().await;
    tokio::time::timeout(WAIT, async {
        while node.sdk.schedule_updated().is_err() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("queue drains");
    node.sdk.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_subscriber_is_told_what_it_lost() {
    let mut builder = ChainBuilder::in_the_past(chain(), 1, 4, 20);
    let mut config = sdk_config();
    config.event_channel_capacity = 2;
    config.catchup.enabled = false;
    let mut node = start_node(config, &builder).await;
    // No peers: each publish is stored (and emits events) and then reports NoPeers.
    for _ in 0..5 {
        let block = builder.next_block(Some(b"txs".to_vec()));
        let result = node
            .sdk
            .publish(block.commitment, Some(b"txs".to_vec()))
            .await;
        assert!(matches!(result, Err(P2pSdkError::Network(_))), "{result:?}");
    }
    wait_head(&node.sdk, 5).await;
    let mut lost = None;
    tokio::time::timeout(WAIT, async {
        loop {
            match node.events.recv().await {
                Err(P2pSdkError::Lagged { missed }) => {
                    lost = Some(missed);
                    return;
                }
                Ok(_) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("lag reported");
    assert!(lost.unwrap() > 0);
    node.sdk.shutdown().await.unwrap();
}
