//! A gossiped commitment whose tx list never came over gossip: once the gossip grace period
//! is over, the node asks for that one list (`get_raw_txlist`), of the peer that sent the
//! commitment first, over real TCP on 127.0.0.1.

mod common;

use std::time::Duration;

use common::*;
use p2p::testkit::ChainBuilder;
use p2p::SdkEvent;
use preconfirmation_net::{InboundRequest, NetworkEvent};
use preconfirmation_types::{
    GetCommitmentsByNumberResponse, GetRawTxListResponse, GetRawTxListsResponse, GossipTopicKind,
    PreconfHead, ReqRespKind, WireMessage, B256,
};
use tokio::sync::mpsc;

/// X gossips block 1's commitment alone; A accepts it, waits out the grace period and asks X
/// for the list with `get_raw_txlist` (the per-hash fetch), not with the periodic retry's
/// batched `get_raw_txlists`; the list is then stored and announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_txlist_is_asked_of_the_commitment_s_sender_after_the_grace() {
    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, 50);
    let block = builder.blocks(1, 64).remove(0);
    let txlist = block.txlist.clone().expect("a block with a tx list");
    let hash = txlist.raw_tx_list_hash;

    // X: a bare node that has the list and tells which request asked for it.
    let (x, mut x_events) = raw_node().await;
    let (asked_tx, mut asked) = mpsc::unbounded_channel::<(ReqRespKind, Vec<B256>)>();
    let bytes = txlist.txlist.to_vec();
    tokio::spawn(async move {
        while let Some(event) = x_events.recv().await {
            let NetworkEvent::InboundRequest(request) = event else {
                continue;
            };
            match request {
                InboundRequest::GetHead { responder, .. } => {
                    responder.respond(PreconfHead::default());
                }
                InboundRequest::GetCommitmentsByNumber { responder, .. } => {
                    let empty = GetCommitmentsByNumberResponse::new(Vec::new());
                    responder.respond(empty.expect("an empty page"));
                }
                InboundRequest::GetRawTxList {
                    request, responder, ..
                } => {
                    let wanted = request.raw_tx_list_hash;
                    let _ = asked_tx.send((ReqRespKind::GetRawTxList, vec![wanted]));
                    let answer = if wanted == hash {
                        GetRawTxListResponse::new(bytes.clone())
                    } else {
                        GetRawTxListResponse::from_verified(wanted, Vec::new())
                    };
                    responder.respond(answer.expect("a tx list response"));
                }
                InboundRequest::GetRawTxLists {
                    request, responder, ..
                } => {
                    let wanted: Vec<B256> = request.raw_tx_list_hashes.to_vec();
                    let _ = asked_tx.send((ReqRespKind::GetRawTxLists, wanted.clone()));
                    let answers = wanted
                        .iter()
                        .map(|h| {
                            let txlist = if *h == hash {
                                bytes.clone()
                            } else {
                                Vec::new()
                            };
                            GetRawTxListResponse::from_verified(*h, txlist)
                                .expect("a tx list response")
                        })
                        .collect();
                    responder.respond(GetRawTxListsResponse::new(answers).expect("a response"));
                }
            }
        }
    });

    let mut config = sdk_config();
    config.catchup.txlist_gossip_grace = Duration::from_millis(100);
    let mut a = start_node(config, &builder).await;
    connect_raw(&a.sdk, &x).await;
    a.sdk.wait_for_gossip_peers(1, WAIT).await.expect("mesh");
    wait_live(&a.sdk).await;

    x.publish(GossipTopicKind::Commitments, block.commitment.to_ssz())
        .await
        .expect("x publishes");
    wait_event(&mut a.events, |e| match e {
        SdkEvent::RawTxList { hash: stored, .. } if *stored == hash => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(
        a.sdk.raw_txlist(&hash).expect("storage").as_deref(),
        Some(&txlist.txlist[..]),
        "fetched and stored"
    );
    let first = tokio::time::timeout(WAIT, async {
        loop {
            let (kind, hashes) = asked.recv().await.expect("x's requests");
            if hashes.contains(&hash) {
                return kind;
            }
        }
    })
    .await
    .expect("x was asked for the list");
    assert_eq!(
        first,
        ReqRespKind::GetRawTxList,
        "asked by the per-hash fetch after the grace, not left to the periodic retry"
    );
    a.sdk.shutdown().await.expect("shutdown");
}
