//! The plan's two-node smoke test (Task 15): publish from A, B receives and stores; then B
//! requests head, commitments and the tx list from A.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p::testkit::{ChainBuilder, FaultyDisk};
use p2p::{CommitmentSource, MemoryStorage, P2pSdk, SdkEvent, SdkEvents, SdkStorage};
use preconfirmation_types::{preconfirmation_hash, SignedCommitment, U256};

/// A chain of `preconfers` (4 slots a window, room for 100 blocks in the past) and nodes A and
/// B on it, connected, B subscribed to A's gossip.
async fn a_gossiping_to_b(preconfers: u32) -> (ChainBuilder, Node, Node) {
    let builder = ChainBuilder::in_the_past(chain(), preconfers, 4, 100);
    let a = start_node(sdk_config(), &builder).await;
    let b = start_node(sdk_config(), &builder).await;
    connect(&b.sdk, &a.sdk).await;
    a.sdk
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("B subscribed");
    (builder, a, b)
}

/// The first commitment event for block `number`: the commitment and where it came from.
async fn wait_commitment(
    events: &mut SdkEvents,
    number: u64,
) -> (SignedCommitment, CommitmentSource) {
    wait_event(events, |e| match e {
        SdkEvent::Commitment {
            commitment, source, ..
        } if commitment.preconf().block_number == U256::from(number) => {
            Some((commitment.clone(), *source))
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integration_smoke() {
    let (mut builder, a, mut b) = a_gossiping_to_b(2).await;

    let txlist = b"a compressed tx list".to_vec();
    let block = builder.next_block(Some(txlist.clone()));
    let receipt = publish_block(&a.sdk, &block).await;
    assert!(receipt.txlist_message_id.is_some());

    // B accepts the commitment from A over gossip and has its tx list.
    let (commitment, source) = wait_commitment(&mut b.events, 1).await;
    assert_eq!(commitment, block.commitment);
    assert_eq!(source, CommitmentSource::Gossip(a.sdk.local_peer_id()));
    let hash = block.commitment.preconf().raw_tx_list_hash;
    wait_complete(&b.sdk, 1).await;
    assert_eq!(
        b.sdk.raw_txlist(&hash).unwrap().as_deref(),
        Some(&txlist[..])
    );
    assert_eq!(
        b.sdk.commitment_by_number(1).unwrap(),
        Some(block.commitment.clone())
    );
    let by_hash = preconfirmation_hash(block.commitment.preconf());
    assert_eq!(
        b.sdk.commitment_by_hash(&by_hash).unwrap(),
        Some(block.commitment.clone())
    );

    // A serves what it published.
    let peer = a.sdk.local_peer_id();
    let head = b.sdk.request_head(peer).await.expect("get_head");
    assert_eq!(head.block_number, U256::from(1u64));
    assert_eq!(
        head.submission_window_end,
        block.commitment.preconf().submission_window_end
    );
    let page = b
        .sdk
        .request_commitments(peer, 1, 10)
        .await
        .expect("get_commitments");
    assert_eq!(page.commitments.to_vec(), vec![block.commitment.clone()]);
    let fetched = b
        .sdk
        .request_raw_txlist(peer, hash)
        .await
        .expect("get_raw_txlist");
    assert_eq!(&fetched[..], &txlist[..]);

    tokio::time::timeout(Duration::from_secs(10), async {
        b.sdk.shutdown().await.unwrap();
        a.sdk.shutdown().await.unwrap();
    })
    .await
    .expect("clean shutdown");
}

/// Two consecutive blocks may carry byte-identical tx lists (an empty list, say). The second
/// list is a gossipsub duplicate of the first (message ids hash the payload) and is refused
/// by gossipsub's publish; the second commitment must go out all the same, or B never hears of
/// block 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_repeating_the_previous_tx_list_is_still_gossiped() {
    let (mut builder, a, mut b) = a_gossiping_to_b(1).await;
    let txlist = b"the same tx list twice".to_vec();
    let first = builder.next_block(Some(txlist.clone()));
    let second = builder.next_block(Some(txlist.clone()));
    assert_eq!(
        first.commitment.preconf().raw_tx_list_hash,
        second.commitment.preconf().raw_tx_list_hash
    );
    let receipt = publish_block(&a.sdk, &first).await;
    assert!(receipt.txlist_message_id.is_some());
    let receipt = publish_block(&a.sdk, &second).await;
    assert_eq!(
        receipt.txlist_message_id, None,
        "the list itself went out once"
    );
    // B hears block 2 over gossip, not from catch-up.
    let (commitment, source) = wait_commitment(&mut b.events, 2).await;
    assert_eq!(commitment, second.commitment);
    assert_eq!(source, CommitmentSource::Gossip(a.sdk.local_peer_id()));
    let status = wait_complete(&b.sdk, 2).await;
    assert_eq!(status.head_block_number, 2);
}

/// A local publish is durable before it is gossiped: A's disk takes 300 ms per write, and by
/// the time B holds A's commitment, A's own storage holds it too. Were it gossiped first (and
/// written meanwhile), a crash of A between the two would leave a commitment on the network
/// that A no longer knew it had signed, and A would sign another for the same block after a
/// restart: slashing evidence against its operator. Fails with the publish gossiped before the
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_publish_reaches_the_disk_before_any_peer() {
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, 100);
    let disk_of_a = Arc::new(MemoryStorage::default());
    let slow = FaultyDisk::over(disk_of_a.clone() as Arc<dyn SdkStorage>);
    slow.write_delay_ms.store(300, Ordering::SeqCst);
    let (a, _a_events) = P2pSdk::start(sdk_config(), Arc::new(slow), builder.lookahead(), None)
        .await
        .expect("A starts");
    let mut b = start_node(sdk_config(), &builder).await;
    connect(&b.sdk, &a).await;
    a.wait_for_gossip_peers(1, WAIT)
        .await
        .expect("B subscribed");

    let txlist = b"signed once".to_vec();
    let block = builder.next_block(Some(txlist.clone()));
    let publish = {
        let (a, commitment) = (a.clone(), block.commitment.clone());
        tokio::spawn(async move { a.publish(commitment, Some(txlist)).await })
    };
    let received = wait_event(&mut b.events, |e| match e {
        SdkEvent::Commitment { commitment, .. } => Some(commitment.clone()),
        _ => None,
    })
    .await;
    assert_eq!(received, block.commitment);
    assert_eq!(
        disk_of_a.commitment_by_number(1).expect("reads"),
        Some(block.commitment.clone()),
        "a peer holds A's commitment that A's own disk does not"
    );
    publish.await.expect("join").expect("published");
    a.shutdown().await.expect("A stops");
}

/// After a restart, memory no longer holds the blocks below the head, but the disk does. A local
/// publish for a stored block is judged against it: another commitment by the same signer is
/// the equivocation it would be; the same commitment, the same block by another signer, or the
/// same content under another signature are merely stale (`check_local`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_publish_below_the_head_is_judged_against_the_disk() {
    use p2p::{P2pSdkError, RejectReason};
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 8, 100);
    let mut blocks = builder.blocks(1, 64);
    let before_two = builder.clone();
    blocks.extend(builder.blocks(3, 64));
    let node = start_seeded(sdk_config(), &builder, &blocks).await;
    wait_head(&node.sdk, 4).await;

    let stored = blocks[1].commitment.clone();
    let own_key = *before_two
        .key_for_slot(before_two.next_slot())
        .expect("block 2's signer");
    let other_key = *builder
        .keys()
        .iter()
        .find(|k| **k != own_key)
        .expect("a second preconfer");
    let verdict = |result: Result<_, P2pSdkError>| match result {
        Err(P2pSdkError::Validation(reason)) => reason,
        other => panic!("expected a validation error, got {other:?}"),
    };

    // Same signer, other content: equivocation.
    let mut fork = before_two.clone();
    let other_list = b"another tx list for block 2".to_vec();
    let twin = fork.next_block(Some(other_list.clone()));
    assert_eq!(twin.commitment.preconf().block_number, U256::from(2u64));
    let reason = verdict(
        node.sdk
            .publish(twin.commitment, Some(other_list.clone()))
            .await,
    );
    assert!(
        matches!(reason, RejectReason::Equivocation { ref first, .. } if **first == stored),
        "{reason:?}"
    );

    // The stored commitment itself: stale.
    let reason = verdict(node.sdk.publish(stored.clone(), None).await);
    assert!(
        matches!(reason, RejectReason::Stale { number: 2, .. }),
        "{reason:?}"
    );

    // The same content signed by another key: stale (not ours twice).
    let resigned = before_two.sign_with(&other_key, stored.commitment.clone());
    let reason = verdict(node.sdk.publish(resigned, None).await);
    assert!(
        matches!(reason, RejectReason::Stale { number: 2, .. }),
        "{reason:?}"
    );

    // Other content by another key: stale as well.
    let unsigned = before_two.next_unsigned(Some(&other_list));
    let foreign = before_two.sign_with(&other_key, unsigned);
    let reason = verdict(node.sdk.publish(foreign, Some(other_list)).await);
    assert!(
        matches!(reason, RejectReason::Stale { number: 2, .. }),
        "{reason:?}"
    );
}
