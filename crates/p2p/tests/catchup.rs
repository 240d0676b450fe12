//! Catch-up over real TCP on 127.0.0.1: a late joiner reaches the network's head with every tx
//! list; a lying peer is penalised and the node switches to an honest one; a stale head is re-checked.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use p2p::testkit::ChainBuilder;
use p2p::{HeadSyncStatus, MemoryStorage, SdkEvent};
use preconfirmation_net::InboundRequest;
use preconfirmation_types::{GetRawTxListResponse, PreconfHead, U256};

const BLOCKS: usize = 1_000;

/// Three nodes follow 1 000 blocks published by A over gossip; a fourth starts afterwards,
/// knowing only A, and catches up to the same head with every tx list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_joiner_catches_up_after_1000_commitments() {
    let mut builder = ChainBuilder::in_the_past(chain(), 3, 8, BLOCKS as u64 + 10);
    let blocks = builder.blocks(BLOCKS, 512);

    let a = start_node(sdk_config(), &builder).await;
    let b = start_node(sdk_config(), &builder).await;
    let c = start_node(sdk_config(), &builder).await;
    connect(&b.sdk, &a.sdk).await;
    connect(&c.sdk, &a.sdk).await;
    connect(&c.sdk, &b.sdk).await;
    a.sdk.wait_for_gossip_peers(2, WAIT).await.expect("mesh");
    wait_live(&b.sdk).await;
    wait_live(&c.sdk).await;

    for block in &blocks {
        publish_block(&a.sdk, block).await;
    }
    for node in [&b, &c] {
        wait_complete(&node.sdk, BLOCKS as u64).await;
    }

    // The late joiner, with a write queue of one byte: every page is larger than the whole
    // budget and must still be written (alone) rather than wait forever.
    let mut late = sdk_config();
    late.catchup.write_queue_bytes = 1;
    let mut d = start_node(late, &builder).await;
    connect(&d.sdk, &a.sdk).await;
    let target = wait_event(&mut d.events, |e| match e {
        SdkEvent::HeadSync(HeadSyncStatus::Syncing { local, target }) => Some((*local, *target)),
        _ => None,
    })
    .await;
    assert_eq!(target, (0, BLOCKS as u64));
    let status = wait_complete(&d.sdk, BLOCKS as u64).await;
    assert_eq!(
        status.head_hash,
        b.sdk.status().head_hash,
        "same head as the others"
    );
    wait_live(&d.sdk).await;
    for block in &blocks {
        let n = u64::try_from(block.commitment.preconf().block_number).unwrap();
        assert_eq!(
            d.sdk.commitment_by_number(n).unwrap().as_ref(),
            Some(&block.commitment)
        );
        let t = block.txlist.as_ref().unwrap();
        assert_eq!(
            d.sdk.raw_txlist(&t.raw_tx_list_hash).unwrap().as_deref(),
            Some(&t.txlist[..]),
            "tx list of block {n}"
        );
    }
    for n in [a, b, c, d] {
        n.sdk.shutdown().await.unwrap();
    }
}

/// A liar claims a higher head and serves commitments with broken signatures and tx lists that
/// do not hash right; the new node penalises it and completes from the honest peer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catchup_from_lying_peer_switches_to_honest_one() {
    lying_peer_is_penalised_and_the_honest_chain_wins(false).await;
}

/// A peer whose pages carry bad signatures but whose tx lists are right is penalised for the
/// pages themselves (the catch-up disagreement), not only for lying about tx lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_serving_badly_signed_pages_is_penalised_for_the_pages() {
    lying_peer_is_penalised_and_the_honest_chain_wins(true).await;
}

/// A fresh node catches up from a liar (tampered signatures on every commitment; tx lists right
/// when `honest_txlists`, wrong otherwise) and an honest peer: it reaches the honest head with
/// every tx list, and the liar ends with a negative score or banned.
#[allow(clippy::unwrap_used)] // test code, shared by two tests
async fn lying_peer_is_penalised_and_the_honest_chain_wins(honest_txlists: bool) {
    const N: usize = 300;
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, N as u64 + 10);
    let blocks = builder.blocks(N, 128);

    let honest = start_seeded(sdk_config(), &builder, &blocks).await;

    // The liar: a bare network node answering from a tampered copy of the chain.
    let (liar, liar_events) = raw_node().await;
    let tampered: Vec<_> = blocks
        .iter()
        .map(|b| {
            let mut c = b.commitment.clone();
            c.signature.0[10] ^= 0xff;
            c
        })
        .collect();
    let txlists: Vec<_> = blocks.iter().filter_map(|b| b.txlist.clone()).collect();
    // Claiming more than it has would also earn it empty-page penalties; with right tx lists
    // it claims exactly the chain, so only its pages' signatures can give it away.
    let claimed_head = if honest_txlists {
        N as u64
    } else {
        N as u64 + 500
    };
    serve_requests(liar.clone(), liar_events, move |request| match request {
        InboundRequest::GetHead { responder, .. } => responder.respond(PreconfHead {
            block_number: U256::from(claimed_head),
            ..Default::default()
        }),
        InboundRequest::GetCommitmentsByNumber {
            request, responder, ..
        } => responder.respond(page_of(&tampered, &request)),
        InboundRequest::GetRawTxList {
            request, responder, ..
        } => {
            let right = txlists
                .iter()
                .find(|t| t.raw_tx_list_hash == request.raw_tx_list_hash)
                .filter(|_| honest_txlists);
            let bytes = match right {
                Some(t) => t.txlist.to_vec(),
                None => b"not it".to_vec(),
            };
            let mut answer = GetRawTxListResponse::new(bytes).expect("a tx list response");
            answer.raw_tx_list_hash = request.raw_tx_list_hash;
            responder.respond(answer);
        }
        _ => {}
    });

    let mut config = sdk_config();
    config.catchup.page_size = 64;
    let mut fresh = start_node(config, &builder).await;
    // The liar first, so it is asked and used.
    connect_raw(&fresh.sdk, &liar).await;
    connect(&fresh.sdk, &honest.sdk).await;

    let status = wait_complete(&fresh.sdk, N as u64).await;
    assert_eq!(status.head_hash, honest.sdk.status().head_hash);
    let t = blocks[N - 1].txlist.as_ref().expect("a tx list");
    assert_eq!(
        fresh
            .sdk
            .raw_txlist(&t.raw_tx_list_hash)
            .expect("storage")
            .as_deref(),
        Some(&t.txlist[..])
    );
    // The liar was penalised: its score is negative, or it was banned outright.
    let liar_id = liar.local_peer_id();
    let peers = fresh.sdk.peers().await.expect("peers");
    let penalised = match peers.iter().find(|p| p.peer_id == liar_id) {
        Some(info) => info.score < 0.0,
        None => events_until_quiet(&mut fresh.events, Duration::from_millis(200))
            .await
            .iter()
            .any(|e| matches!(e, SdkEvent::PeerBanned { peer, .. } if *peer == liar_id)),
    };
    assert!(penalised, "the lying peer was neither penalised nor banned");
    fresh.sdk.shutdown().await.expect("shutdown");
    honest.sdk.shutdown().await.expect("shutdown");
}

/// A node that is live and connected but missed the last blocks' gossip (no later block shows a
/// gap) asks its peers for their heads again once its own head has not moved for
/// `stale_head_check`, and fetches what it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_head_is_rechecked_and_missed_blocks_are_fetched() {
    const N: usize = 5;
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, N as u64 + 10);
    let blocks = builder.blocks(N, 64);

    // A bare peer that never gossips; it serves an empty chain until `revealed` is set.
    let (peer, peer_events) = raw_node().await;
    let revealed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let heads_asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let served: Vec<_> = blocks.iter().map(|b| b.commitment.clone()).collect();
    let txlists: Vec<_> = blocks.iter().filter_map(|b| b.txlist.clone()).collect();
    let reveal = revealed.clone();
    let asked = heads_asked.clone();
    serve_requests(peer.clone(), peer_events, move |request| {
        let shown = if reveal.load(std::sync::atomic::Ordering::Acquire) {
            N
        } else {
            0
        };
        match request {
            InboundRequest::GetHead { responder, .. } => {
                asked.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
                let head = served[..shown].last().map(|c| PreconfHead {
                    block_number: c.preconf().block_number,
                    submission_window_end: c.preconf().submission_window_end,
                });
                responder.respond(head.unwrap_or_default());
            }
            InboundRequest::GetCommitmentsByNumber {
                request, responder, ..
            } => responder.respond(page_of(&served[..shown], &request)),
            InboundRequest::GetRawTxList {
                request, responder, ..
            } => {
                let found = txlists
                    .iter()
                    .find(|t| t.raw_tx_list_hash == request.raw_tx_list_hash);
                let bytes = found.map(|t| t.txlist.to_vec()).unwrap_or_default();
                responder.respond(GetRawTxListResponse::new(bytes).expect("a tx list response"));
            }
            _ => {}
        }
    });

    let mut config = sdk_config();
    config.catchup.stale_head_check = Duration::from_secs(1);
    let node = start_node(config, &builder).await;
    connect_raw(&node.sdk, &peer).await;
    let status = wait_live(&node.sdk).await;
    assert_eq!(status.head_block_number, 0);
    // Start-up catch-up and the re-run the new connection triggers each ask once; both were
    // answered with the empty chain, so nothing else is pending when the blocks appear.
    tokio::time::timeout(WAIT, async {
        while heads_asked.load(std::sync::atomic::Ordering::Acquire) < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both start-up rounds asked for the head");

    // The peer now has blocks the node never received over gossip.
    revealed.store(true, std::sync::atomic::Ordering::Release);
    let status = wait_complete(&node.sdk, N as u64).await;
    assert_eq!(
        status.head_hash,
        Some(preconfirmation_types::preconfirmation_hash(
            blocks[N - 1].commitment.preconf()
        ))
    );
}

/// A peer that pruned old blocks (`retain_blocks`) answers an empty page for them although its
/// head is higher: it is honest. The catching-up node asks it for its claimed head, finds it
/// served, stops asking it for old pages without penalising it, and completes from the peer
/// that has everything. (Without the probe, the empty page would count as a lie and be
/// penalised.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruned_peer_is_not_penalised() {
    const N: usize = 200;
    const PRUNED_BELOW: u64 = 150;
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, N as u64 + 10);
    let blocks = builder.blocks(N, 64);

    let full = start_seeded(sdk_config(), &builder, &blocks).await;
    let pruned_store = Arc::new(MemoryStorage::default());
    seed(&pruned_store, &blocks);
    assert!(p2p::SdkStorage::prune_below(&*pruned_store, PRUNED_BELOW).unwrap() > 0);
    let pruned = start_with_storage(sdk_config(), &builder, pruned_store).await;
    assert_eq!(pruned.sdk.status().head_block_number, N as u64);

    // Small pages, so the pruned peer is asked for some below 150 in the first batch.
    let mut config = sdk_config();
    config.catchup.page_size = 10;
    let joiner = start_node(config, &builder).await;
    connect(&joiner.sdk, &pruned.sdk).await;
    connect(&joiner.sdk, &full.sdk).await;
    wait_complete(&joiner.sdk, N as u64).await;
    let score = joiner
        .sdk
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.peer_id == pruned.sdk.local_peer_id())
        .map(|p| p.score);
    assert!(
        score.is_some_and(|s| s >= 0.0),
        "the pruned peer is connected and not penalised: {score:?}"
    );
    for n in [joiner, pruned, full] {
        n.sdk.shutdown().await.unwrap();
    }
}
