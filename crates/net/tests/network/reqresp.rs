//! Req/resp end to end: each protocol's round trip, the inbound rate limits and the
//! response-byte budget, and a requester that learns a peer's tighter limits from a refusal.

use std::time::Duration;

use futures::future::join_all;
use preconfirmation_net::{
    ByteRateLimit, InboundRequest, NetworkConfig, NetworkEvent, P2pService, RateLimit,
    RateLimitConfig, RequestError,
};
use preconfirmation_types::{
    GetCommitmentsByNumberRequest, GetRawTxListRequest, GetRawTxListResponse,
    MAX_COMMITMENTS_PER_RESPONSE, U256,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_head_round_trip() {
    let (server, client, _ev) = server_and_client(test_config(), test_config()).await;
    let got = client
        .request_head(server.local_peer_id())
        .await
        .expect("head");
    assert_eq!(got, head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_commitments_by_number_round_trip() {
    let (server, client, _ev) = server_and_client(test_config(), test_config()).await;
    let req = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(10u64),
        max_count: 3,
    };
    let got = client
        .request_commitments(server.local_peer_id(), req)
        .await
        .expect("commitments");
    let numbers: Vec<U256> = got
        .commitments
        .iter()
        .map(|c| c.preconf().block_number)
        .collect();
    assert_eq!(
        numbers,
        vec![U256::from(10u64), U256::from(11u64), U256::from(12u64)]
    );
}

/// Extreme peer-chosen values cross the wire intact and are answered within the caps, not
/// with a panic: a count above `MAX_COMMITMENTS_PER_RESPONSE`, a start at `u64::MAX` and a
/// start beyond `u64`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extreme_commitments_request_is_answered_within_the_cap() {
    let (server, client, _ev) = server_and_client(test_config(), test_config()).await;
    let peer = server.local_peer_id();
    let page = |start: U256| {
        client.request_commitments(
            peer,
            GetCommitmentsByNumberRequest {
                start_block_number: start,
                max_count: u32::MAX,
            },
        )
    };
    let capped = page(U256::from(1u64)).await.expect("capped page");
    assert_eq!(capped.commitments.len(), MAX_COMMITMENTS_PER_RESPONSE);
    let last = page(U256::from(u64::MAX)).await.expect("last block");
    assert_eq!(last.commitments.len(), 1);
    assert_eq!(
        last.commitments[0].preconf().block_number,
        U256::from(u64::MAX)
    );
    let beyond = page(U256::MAX).await.expect("beyond u64");
    assert!(beyond.commitments.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_raw_txlist_round_trip() {
    let (server, client, _ev) = server_and_client(test_config(), test_config()).await;
    let got = client
        .request_raw_txlist(server.local_peer_id(), GetRawTxListRequest::default())
        .await
        .expect("txlist");
    assert_eq!(got, GetRawTxListResponse::new(vec![9; 1000]).expect("cap"));
    // A server-side cap smaller than the response: the client refuses it as oversize.
    let small = NetworkConfig {
        limits: preconfirmation_types::ChainLimits {
            max_txlist_bytes: 100,
            ..Default::default()
        },
        ..test_config()
    };
    let (server2, client2, _ev2) = server_and_client(test_config(), small).await;
    let err = client2
        .request_raw_txlist(server2.local_peer_id(), GetRawTxListRequest::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Oversize {
                len: 1036,
                cap: 136
            }
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_flood_is_rate_limited() {
    let mut client_cfg = test_config();
    client_cfg.max_streams_per_connection = 64;
    // A flooder: its own outbound pacing (which would hold the flood back) is out of the way.
    client_cfg.politeness.extended_rate_limit =
        preconfirmation_net::RateLimitConfig::uniform(1_000, Duration::from_secs(1));
    client_cfg.politeness.extended_max_in_flight = 64;
    let (server, client, _ev) = server_and_client(test_config(), client_cfg).await;
    let peer = server.local_peer_id();
    // Sequential: never more than one in flight, so only the get_head token bucket (burst 8)
    // limits. The client's pacer learns from the first refusal and backs off for the window it
    // assumes (1.5 s); a flooder that waits that out and goes on is refused again — and
    // penalised, since only a peer's first refusal in 10 s is free. (After the second refusal
    // the pacer has learnt one per 1.5 s, which the server's refill serves.)
    let mut ok = 0;
    let mut refused = 0;
    timeout(WAIT, async {
        while refused < 2 {
            match client.request_head(peer).await {
                Ok(_) => ok += 1,
                Err(RequestError::Refused(_)) => refused += 1,
                Err(RequestError::Throttled(d)) => tokio::time::sleep(d).await,
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
    })
    .await
    .expect("the flood is refused in time");
    assert!(ok >= 8, "the burst is served: {ok}");
    // Concurrent flood on another protocol: at most 2 in flight, the rest refused, none queued.
    let results =
        join_all((0..10).map(|_| client.request_raw_txlist(peer, GetRawTxListRequest::default())))
            .await;
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(RequestError::Refused(_))))
        .count();
    assert!(refused >= 1, "concurrent flood refused: {results:?}");
    assert!(results
        .iter()
        .all(|r| r.is_ok() || matches!(r, Err(RequestError::Refused(_)))));
    // Refusals carry the §7.1 penalty.
    let score = score_of(&server, client.local_peer_id()).await;
    assert!(
        score.is_some_and(|s| s < 0.0),
        "flooding client penalised: {score:?}"
    );
}

/// The catch-up pattern of a syncing node: many `get_raw_txlist` fetches from one peer, two in
/// flight at a time. The default `get_raw_txlist` limit serves far more than the `get_head`
/// burst, without penalising the requester.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catch_up_txlist_burst_is_served_by_default() {
    let (server, client, _ev) = server_and_client(test_config(), test_config()).await;
    let peer = server.local_peer_id();
    let defaults = NetworkConfig::default().rate_limit;
    let per_worker = 100;
    assert!(2 * per_worker > defaults.get_head.burst as usize);
    assert!(2 * per_worker <= defaults.get_raw_txlist.burst as usize);
    let worker = |client: P2pService| async move {
        let mut errors = Vec::new();
        for _ in 0..per_worker {
            if let Err(e) = client
                .request_raw_txlist(peer, GetRawTxListRequest::default())
                .await
            {
                errors.push(e);
            }
        }
        errors
    };
    let errors = timeout(
        WAIT,
        join_all([worker(client.clone()), worker(client.clone())]),
    )
    .await
    .expect("catch-up burst in time");
    assert!(
        errors.iter().all(Vec::is_empty),
        "every fetch served: {errors:?}"
    );
    assert_not_penalised(
        &server,
        client.local_peer_id(),
        "catching-up client not penalised",
    )
    .await;
}

/// The server's response-byte budget (3 MiB here) holds one tx-list reservation (2 MiB + 36)
/// at a time: a second tx list while the first is unanswered is refused, without penalty (the
/// peer's first refusal); once the first is answered (1 036 bytes) the rest of its reservation
/// comes back and the next is served. The snapshot counts the bytes served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_bytes_are_reserved_then_refunded_down_to_what_is_sent() {
    let mut server_cfg = test_config();
    // Refills 3 MiB per hour: nothing the test could wait for.
    server_cfg.rate_limit.response_bytes =
        ByteRateLimit::new(3 * 1024 * 1024, Duration::from_secs(3600));
    // The client's own pacing (and its mirror of the budget) out of the way: the server is
    // what is tested.
    let mut client_cfg = test_config();
    client_cfg.politeness.extended_rate_limit =
        RateLimitConfig::uniform(1_000, Duration::from_secs(1));
    client_cfg.politeness.extended_max_in_flight = 64;
    let (server, mut server_events) = start(server_cfg).await;
    let (client, mut client_events) = start(client_cfg).await;
    connect(&client, &mut client_events, &server).await;
    // The server's SDK hands the tx-list responders to the test.
    let (held_tx, mut held) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(ev) = server_events.recv().await {
            if let NetworkEvent::InboundRequest(InboundRequest::GetRawTxList {
                responder, ..
            }) = ev
            {
                let _ = held_tx.send(responder).await;
            }
        }
    });
    let peer = server.local_peer_id();
    wait_peer(&client, peer, |p| p.extended)
        .await
        .expect("server identified as one of ours");
    let first = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .request_raw_txlist(peer, GetRawTxListRequest::default())
                .await
        })
    };
    let first_responder = timeout(WAIT, held.recv())
        .await
        .expect("first request reaches the SDK")
        .expect("sdk loop alive");
    let second = timeout(
        WAIT,
        client.request_raw_txlist(peer, GetRawTxListRequest::default()),
    )
    .await
    .expect("second request settles");
    assert!(
        matches!(second, Err(RequestError::Refused(_))),
        "the budget holds one reservation: {second:?}"
    );
    let list = GetRawTxListResponse::new(vec![9; 1000]).expect("cap");
    first_responder.respond(list.clone());
    let first = timeout(WAIT, first)
        .await
        .expect("first answered")
        .expect("task");
    assert_eq!(first.expect("first served"), list);
    // The client's pacer learnt from the refusal and backs off for its window (1.5 s): the
    // third goes out once that has passed.
    let third = {
        let client = client.clone();
        tokio::spawn(async move {
            loop {
                match client
                    .request_raw_txlist(peer, GetRawTxListRequest::default())
                    .await
                {
                    Err(RequestError::Throttled(d)) => tokio::time::sleep(d).await,
                    other => return other,
                }
            }
        })
    };
    timeout(WAIT, held.recv())
        .await
        .expect("third request admitted: the unused reservation was refunded")
        .expect("sdk loop alive")
        .respond(list.clone());
    let third = timeout(WAIT, third)
        .await
        .expect("third answered")
        .expect("task");
    assert_eq!(third.expect("third served"), list);
    let client_id = client.local_peer_id();
    let snapshot = wait_peer(&server, client_id, |p| p.served_bytes == 2 * 1036).await;
    assert!(
        snapshot.is_some(),
        "served bytes counted: {:?}",
        server.peers().await
    );
    assert_not_penalised(&server, client_id, "a first refusal is not penalised").await;
}

/// A peer of ours running tighter limits than we assume (2 `get_head` per window instead of
/// 8): its first refusal teaches our pacer, which holds the next request back instead of
/// sending it, so the peer never has a reason to penalise us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusal_teaches_the_requester_tighter_limits() {
    let mut server_cfg = test_config();
    server_cfg.rate_limit.get_head = RateLimit::new(2, Duration::from_secs(3600));
    let (server, client, _ev) = server_and_client(server_cfg, test_config()).await;
    let peer = server.local_peer_id();
    for i in 0..2 {
        timeout(WAIT, client.request_head(peer))
            .await
            .expect("in time")
            .unwrap_or_else(|e| panic!("head {i}: {e:?}"));
    }
    let refused = timeout(WAIT, client.request_head(peer))
        .await
        .expect("in time");
    assert!(
        matches!(refused, Err(RequestError::Refused(_))),
        "the server's third: {refused:?}"
    );
    for _ in 0..3 {
        let held = timeout(WAIT, client.request_head(peer))
            .await
            .expect("in time");
        assert!(
            matches!(held, Err(RequestError::Throttled(d)) if d > Duration::ZERO),
            "held back, not sent: {held:?}"
        );
    }
    assert_not_penalised(
        &server,
        client.local_peer_id(),
        "one refusal, forgiven; nothing more was sent",
    )
    .await;
}
