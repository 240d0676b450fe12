//! End-to-end tests of the network layer over real TCP on 127.0.0.1. Every wait is bounded by
//! `tokio::time::timeout`; nothing asserts on timing.

use std::time::Duration;

use futures::future::join_all;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, PeerId, StreamProtocol, Swarm, SwarmBuilder};
use preconfirmation_net::{
    ByteRateLimit, Direction, GossipVerdict, InboundRequest, NetworkConfig, NetworkEvent,
    P2pService, RateLimit, RateLimitConfig, RequestError,
};
use preconfirmation_types::{
    GetCommitmentsByNumberRequest, GetRawTxListRequest, GetRawTxListResponse, GossipTopicKind,
    RawTxListGossip, ReqRespKind, WireMessage, MAX_COMMITMENTS_PER_RESPONSE, U256,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

#[path = "../common/mod.rs"]
mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_three_nodes_both_topics() {
    let (a, a_events) = start(test_config()).await;
    let (b, mut b_events) = start(test_config()).await;
    let (c, mut c_events) = start(test_config()).await;
    // Line topology B — A — C: C only gets B's messages if A forwards them after Accept.
    connect(&b, &mut b_events, &a).await;
    connect(&c, &mut c_events, &a).await;
    let mut a_rx = spawn_sdk(a.clone(), a_events, GossipVerdict::Accept);
    let _b_rx = spawn_sdk(b.clone(), b_events, GossipVerdict::Accept);
    let mut c_rx = spawn_sdk(c.clone(), c_events, GossipVerdict::Accept);
    wait_gossip_peers(&a, &[b.local_peer_id(), c.local_peer_id()]).await;
    wait_gossip_peers(&b, &[a.local_peer_id()]).await;
    wait_gossip_peers(&c, &[a.local_peer_id()]).await;

    let signed = commitment(5).to_ssz();
    let txlist = RawTxListGossip::new(vec![1, 2, 3, 4])
        .expect("txlist")
        .to_ssz();
    b.publish(GossipTopicKind::Commitments, signed.clone())
        .await
        .expect("publish commitment");
    b.publish(GossipTopicKind::RawTxLists, txlist.clone())
        .await
        .expect("publish txlist");

    for rx in [&mut a_rx, &mut c_rx] {
        let mut got = Vec::new();
        while got.len() < 2 {
            let msg = timeout(WAIT, rx.recv())
                .await
                .expect("gossip in time")
                .expect("open");
            got.push(msg);
        }
        got.sort_by_key(|(k, _)| *k);
        assert_eq!(got[0], (GossipTopicKind::Commitments, signed.clone()));
        assert_eq!(got[1], (GossipTopicKind::RawTxLists, txlist.clone()));
    }
    // Over-cap payloads are refused locally.
    assert!(b
        .publish(GossipTopicKind::Commitments, vec![0; 383])
        .await
        .is_err());
    for s in [a, b, c] {
        s.shutdown().await.expect("shutdown");
    }
}

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
    let score = score_of(&server, client.local_peer_id()).await;
    assert!(
        score.is_some_and(|s| s >= 0.0),
        "catching-up client not penalised: {score:?}"
    );
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
    let score = score_of(&server, client_id).await;
    assert!(
        score.is_some_and(|s| s >= 0.0),
        "a first refusal is not penalised: {score:?}"
    );
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
    let score = score_of(&server, client.local_peer_id()).await;
    assert!(
        score.is_some_and(|s| s >= 0.0),
        "one refusal, forgiven; nothing more was sent: {score:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_gossip_peer_is_banned() {
    let mut receiver_cfg = test_config();
    receiver_cfg.ban_period = Duration::from_secs(60);
    let (receiver, receiver_events) = start(receiver_cfg).await;
    let (bad, mut bad_events) = start(test_config()).await;
    connect(&bad, &mut bad_events, &receiver).await;
    let bad_id = bad.local_peer_id();
    // The receiver's SDK rejects everything; forward its events to the test as well.
    let (ev_tx, mut ev_rx) = mpsc::channel(256);
    {
        let receiver = receiver.clone();
        let mut events = receiver_events;
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let NetworkEvent::Gossip {
                    peer, message_id, ..
                } = &ev
                {
                    let _ = receiver.report_validation(
                        message_id.clone(),
                        *peer,
                        GossipVerdict::Reject,
                    );
                }
                let _ = ev_tx.try_send(ev);
            }
        });
    }
    wait_gossip_peers(&bad, &[receiver.local_peer_id()]).await;
    let publisher = {
        let bad = bad.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            for n in 0u64.. {
                tick.tick().await;
                let _ = bad
                    .publish(GossipTopicKind::Commitments, commitment(n).to_ssz())
                    .await;
            }
        })
    };
    let banned = timeout(WAIT, async {
        while let Some(ev) = ev_rx.recv().await {
            if let NetworkEvent::PeerBanned { peer, .. } = ev {
                if peer == bad_id {
                    return true;
                }
            }
        }
        false
    })
    .await
    .expect("banned within the bound");
    assert!(banned);
    publisher.abort();
    // Disconnected, and refused when it dials again during the ban.
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            if !receiver
                .connected_peers()
                .await
                .expect("peers")
                .contains(&bad_id)
            {
                return;
            }
        }
    })
    .await
    .expect("banned peer disconnected");
    let _ = bad.dial(addr(&receiver).await).await;
    let reconnected = timeout(Duration::from_secs(2), async {
        while let Some(ev) = ev_rx.recv().await {
            if matches!(ev, NetworkEvent::PeerConnected { peer, .. } if peer == bad_id) {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(!reconnected, "a banned peer must not reconnect");
    assert!(!receiver
        .connected_peers()
        .await
        .expect("peers")
        .contains(&bad_id));
}

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
    wait_for(
        &mut c_events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == b_id),
    )
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

// ---- raw streams ------------------------------------------------------------------------

/// What the raw client writes on its stream.
#[derive(Debug, Clone, Copy)]
enum Raw {
    /// A 4 GiB length prefix and nothing else.
    HugePrefix,
    /// Nothing at all for this long.
    Silent(Duration),
    /// An honest `get_head` request (prefix 0).
    GetHead,
    /// A valid `get_commitments_by_number` request written one byte per this interval.
    Trickle(Duration),
}

#[derive(Debug, Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Raw;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Raw> {
        Err(std::io::Error::other("client only"))
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        let mut buf = Vec::new();
        io.take(1 << 20).read_to_end(&mut buf).await?;
        if buf.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "no response",
            ));
        }
        Ok(buf)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Raw,
    ) -> std::io::Result<()> {
        match req {
            Raw::HugePrefix => {
                let mut buf = unsigned_varint::encode::u64_buffer();
                io.write_all(unsigned_varint::encode::u64(4 << 30, &mut buf))
                    .await?;
                io.flush().await
            }
            Raw::Silent(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Raw::GetHead => {
                io.write_all(&[0]).await?;
                io.flush().await
            }
            Raw::Trickle(every) => {
                let body = GetCommitmentsByNumberRequest {
                    start_block_number: U256::from(1u64),
                    max_count: 8,
                }
                .to_ssz();
                let mut buf = unsigned_varint::encode::u64_buffer();
                let mut bytes = unsigned_varint::encode::u64(body.len() as u64, &mut buf).to_vec();
                bytes.extend(body);
                for b in bytes {
                    io.write_all(&[b]).await?;
                    io.flush().await?;
                    tokio::time::sleep(every).await;
                }
                Ok(())
            }
        }
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("client only"))
    }
}

type RawSwarm = Swarm<request_response::Behaviour<RawCodec>>;

async fn raw_client(server: &P2pService, kind: ReqRespKind, chain_id: u64) -> RawSwarm {
    let protocol = StreamProtocol::try_from_owned(kind.protocol_id(chain_id)).expect("protocol");
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RawCodec,
                [(protocol, ProtocolSupport::Outbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
            )
        })
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(addr(server).await).expect("dial");
    let target = server.local_peer_id();
    timeout(WAIT, async {
        loop {
            if let SwarmEvent::ConnectionEstablished { peer_id, .. } =
                swarm.select_next_some().await
            {
                if peer_id == target {
                    return;
                }
            }
        }
    })
    .await
    .expect("raw client connected");
    swarm
}

/// Sends one raw request and drives the swarm until it resolves.
async fn raw_request(swarm: &mut RawSwarm, peer: PeerId, req: Raw) -> Result<Vec<u8>, String> {
    let id = swarm.behaviour_mut().send_request(&peer, req);
    timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    error,
                    ..
                }) if request_id == id => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .expect("raw request resolves")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_prefix_refused_before_allocation() {
    let cfg = test_config();
    let chain_id = cfg.chain_id;
    let (server, server_events) = start(cfg).await;
    spawn_sdk(server.clone(), server_events, GossipVerdict::Accept);
    let server_id = server.local_peer_id();
    let mut raw = raw_client(&server, ReqRespKind::GetRawTxList, chain_id).await;
    let raw_id = *raw.local_peer_id();
    // 4 GiB announced: the server refuses on the prefix and resets the stream; it never
    // allocates or waits for the body (the codec unit tests show the Oversize error).
    let res = raw_request(&mut raw, server_id, Raw::HugePrefix).await;
    assert!(res.is_err(), "no response to an oversized request: {res:?}");
    // The sender is penalised.
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let peers = server.peers().await.expect("peers");
            if peers.iter().any(|p| p.peer_id == raw_id && p.score < 0.0) {
                return;
            }
        }
    })
    .await
    .expect("oversize sender penalised");
    // The server stays healthy: an honest client is served.
    let (client, mut client_events) = start(test_config()).await;
    connect(&client, &mut client_events, &server).await;
    assert_eq!(client.request_head(server_id).await.expect("head"), head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_stream_times_out() {
    let mut cfg = test_config();
    cfg.request_timeout = Duration::from_secs(1);
    // One stream per connection: the honest request below only gets through if the silent
    // stream's slot was freed by the timeout.
    cfg.max_streams_per_connection = 1;
    let chain_id = cfg.chain_id;
    let (server, server_events) = start(cfg).await;
    spawn_sdk(server.clone(), server_events, GossipVerdict::Accept);
    let server_id = server.local_peer_id();
    let mut raw = raw_client(&server, ReqRespKind::GetHead, chain_id).await;
    let res = raw_request(&mut raw, server_id, Raw::Silent(Duration::from_secs(3))).await;
    assert!(
        res.is_err(),
        "the server gave up on the silent stream: {res:?}"
    );
    let res = raw_request(&mut raw, server_id, Raw::GetHead)
        .await
        .expect("honest request");
    let mut expected = vec![64u8];
    expected.extend(head().to_ssz());
    assert_eq!(res, expected);
}

/// Slowloris: one peer id keeps silent streams and 1-byte-per-second trickles open on
/// `get_commitments_by_number`. Each stream still incomplete after the read timeout is closed
/// and penalised (`slow_request`), so the peer is banned; honest peers are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_streams_are_penalised_then_banned() {
    let mut cfg = test_config();
    cfg.request_read_timeout = Duration::from_millis(500);
    // A short penalty window keeps the test short: the peer reaches −5 in its second window.
    cfg.scoring.app_penalty_window = Duration::from_secs(2);
    cfg.ban_period = Duration::from_secs(60);
    let chain_id = cfg.chain_id;
    let (server, mut server_events) = start(cfg).await;
    let server_id = server.local_peer_id();
    // The server's "SDK": answers get_head, forwards bans and disconnects.
    let (ban_tx, mut ban_rx) = mpsc::channel(16);
    let (gone_tx, mut gone_rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Some(ev) = server_events.recv().await {
            match ev {
                NetworkEvent::InboundRequest(InboundRequest::GetHead { responder, .. }) => {
                    responder.respond(head())
                }
                NetworkEvent::PeerBanned { peer, .. } => {
                    let _ = ban_tx.try_send(peer);
                }
                NetworkEvent::PeerDisconnected { peer } => {
                    let _ = gone_tx.try_send(peer);
                }
                _ => {}
            }
        }
    });
    let mut raw = raw_client(&server, ReqRespKind::GetCommitmentsByNumber, chain_id).await;
    let raw_id = *raw.local_peer_id();
    let mut opened = 0u32;
    // Drive the attack until the server closes the connection (the ban): 4 new streams every
    // 250 ms (half silent for 5 s, half trickling a byte per second), whatever became of the
    // earlier ones (the raw side only learns of a closed stream when it next writes).
    let mut pace = tokio::time::interval(Duration::from_millis(250));
    timeout(WAIT, async {
        loop {
            tokio::select! {
                _ = pace.tick() => {
                    for i in 0..4 {
                        let req = if i % 2 == 0 {
                            Raw::Silent(Duration::from_secs(5))
                        } else {
                            Raw::Trickle(Duration::from_secs(1))
                        };
                        raw.behaviour_mut().send_request(&server_id, req);
                        opened += 1;
                    }
                }
                event = raw.select_next_some() => {
                    if matches!(event, SwarmEvent::ConnectionClosed { peer_id, .. } if peer_id == server_id) {
                        return;
                    }
                }
            }
        }
    })
    .await
    .expect("the slowloris peer is disconnected within the bound");
    let banned = timeout(WAIT, ban_rx.recv())
        .await
        .expect("ban event within the bound");
    assert_eq!(banned, Some(raw_id), "the slowloris peer is the one banned");
    assert!(opened > 4, "streams kept being opened: {opened}");
    // The raw side can see its connection close before the server's swarm reports its own
    // end of it: wait for the server's disconnect event, then check its peer table.
    timeout(WAIT, async {
        while let Some(peer) = gone_rx.recv().await {
            if peer == raw_id {
                return;
            }
        }
    })
    .await
    .expect("the server reports the slowloris peer disconnected");
    assert!(!server
        .connected_peers()
        .await
        .expect("peers")
        .contains(&raw_id));
    // An honest client is still served.
    let (client, mut client_events) = start(test_config()).await;
    connect(&client, &mut client_events, &server).await;
    assert_eq!(client.request_head(server_id).await.expect("head"), head());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_peer_is_dialled() {
    let (a, _a_events) = start(test_config()).await;
    let a_id = a.local_peer_id();
    let static_addr = addr(&a).await.with(libp2p::multiaddr::Protocol::P2p(a_id));
    let (b, mut b_events) = start(NetworkConfig {
        static_peers: vec![static_addr],
        ..test_config()
    })
    .await;
    wait_for(
        &mut b_events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_id),
    )
    .await
    .expect("static peer dialled at start");
    // After a disconnect (A bans B briefly), B redials A once the ban is over.
    a.ban(b.local_peer_id(), Duration::from_millis(300))
        .expect("ban");
    wait_for(
        &mut b_events,
        |e| matches!(e, NetworkEvent::PeerDisconnected { peer } if *peer == a_id),
    )
    .await
    .expect("disconnected by the ban");
    wait_for(
        &mut b_events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_id),
    )
    .await
    .expect("static peer redialled with backoff");
}

/// A bare libp2p peer (no protocol, 60 s idle timeout) dials `target`; `true` if the target
/// refused the connection (closed it, or the dial failed), `false` if it stayed up for the
/// whole wait. Bounded by [`WAIT`].
async fn bare_dial_is_refused(target: &P2pService) -> bool {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .expect("tcp")
        .with_behaviour(|_| libp2p::swarm::dummy::Behaviour)
        .expect("behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    swarm.dial(addr(target).await).expect("dial");
    timeout(WAIT, async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionClosed { .. }
                | SwarmEvent::OutgoingConnectionError { .. } => return,
                _ => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Connected peers of `node` by direction: (inbound, outbound).
async fn directions(node: &P2pService) -> (usize, usize) {
    let peers = node.peers().await.expect("peers");
    let inbound = peers
        .iter()
        .filter(|p| p.direction == Direction::Inbound)
        .count();
    (inbound, peers.len() - inbound)
}

/// §7 attack: peers fill every inbound slot of a victim. A further inbound connection is
/// refused, while the victim still dials out (to an explicit peer) and stays connected to it:
/// outbound slots are its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_slot_exhaustion() {
    const INBOUND: u32 = 4;
    let victim_cfg = NetworkConfig {
        max_inbound_peers: INBOUND,
        max_outbound_peers: 2,
        max_peers: INBOUND + 2,
        // Every attacker dials from 127.0.0.1: the per-IP cap is another test's subject.
        max_connections_per_ip: 64,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let mut attackers = Vec::new();
    for _ in 0..INBOUND {
        let (a, mut a_events) = start(test_config()).await;
        connect(&a, &mut a_events, &victim).await;
        attackers.push((a, a_events));
    }
    for _ in 0..INBOUND {
        wait_for(&mut victim_events, |e| {
            matches!(
                e,
                NetworkEvent::PeerConnected {
                    direction: Direction::Inbound,
                    ..
                }
            )
        })
        .await
        .expect("an attacker takes an inbound slot");
    }
    assert_eq!(directions(&victim).await, (INBOUND as usize, 0));

    // Every inbound slot is taken: one more inbound connection is refused …
    assert!(
        bare_dial_is_refused(&victim).await,
        "an inbound connection beyond max_inbound_peers is refused"
    );
    assert_eq!(directions(&victim).await, (INBOUND as usize, 0));

    // … yet the victim dials out to a peer of its choosing, and stays connected to it.
    let (friend, friend_events) = start(test_config()).await;
    let friend_id = friend.local_peer_id();
    spawn_sdk(friend.clone(), friend_events, GossipVerdict::Accept);
    victim.dial(addr(&friend).await).await.expect("dial out");
    wait_for(&mut victim_events, |e| {
        matches!(
            e,
            NetworkEvent::PeerConnected { peer, direction: Direction::Outbound } if *peer == friend_id
        )
    })
    .await
    .expect("the victim's outbound dial succeeds with every inbound slot taken");
    // The connection is usable, not closed after the fact.
    let head = victim.request_head(friend_id).await.expect("get_head");
    assert_eq!(head, common::head());
    let peers = victim.connected_peers().await.expect("peers");
    assert!(peers.contains(&friend_id), "still connected to the friend");
    assert_eq!(directions(&victim).await, (INBOUND as usize, 1));
    for (a, _) in &attackers {
        assert!(peers.contains(&a.local_peer_id()));
    }
}

/// One host cannot take more than `max_connections_per_ip` inbound connections, whatever
/// peer ids it mints; other connections are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_connections_are_capped_per_ip() {
    const PER_IP: usize = 2;
    let victim_cfg = NetworkConfig {
        max_connections_per_ip: PER_IP as u32,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let mut peers = Vec::new();
    for _ in 0..PER_IP {
        let (p, mut p_events) = start(test_config()).await;
        connect(&p, &mut p_events, &victim).await;
        let id = p.local_peer_id();
        wait_for(
            &mut victim_events,
            |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == id),
        )
        .await
        .expect("inbound connection within the per-IP cap");
        peers.push((p, p_events));
    }
    // 127.0.0.1 has used its inbound connections; inbound slots are still free.
    assert!(PER_IP < NetworkConfig::default().max_inbound_peers as usize);
    assert!(
        bare_dial_is_refused(&victim).await,
        "a connection beyond max_connections_per_ip is refused"
    );
    assert_eq!(directions(&victim).await, (PER_IP, 0));
    // A freed slot is reusable.
    let (first, _) = peers.remove(0);
    let first_id = first.local_peer_id();
    first.shutdown().await.expect("shutdown");
    wait_for(
        &mut victim_events,
        |e| matches!(e, NetworkEvent::PeerDisconnected { peer } if *peer == first_id),
    )
    .await
    .expect("disconnect seen");
    let (again, mut again_events) = start(test_config()).await;
    connect(&again, &mut again_events, &victim).await;
    assert!(wait_peer(&victim, again.local_peer_id(), |_| true)
        .await
        .is_some());
}

/// TCP sockets that connect and never speak hold pending inbound slots only until
/// `handshake_timeout`: while they are pending an honest peer is refused
/// (`max_pending_incoming` is 2), after it the node has closed them and the honest peer
/// connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_sockets_free_their_pending_slots_after_the_handshake_timeout() {
    const PENDING: usize = 2;
    let handshake_timeout = Duration::from_secs(3);
    let victim_cfg = NetworkConfig {
        max_pending_incoming: PENDING as u32,
        handshake_timeout,
        // Every socket comes from 127.0.0.1: the per-IP cap is another test's subject.
        max_connections_per_ip: 64,
        ..test_config()
    };
    let (victim, mut victim_events) = start(victim_cfg).await;
    let port = addr(&victim)
        .await
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .expect("a TCP listen address");
    let opened = std::time::Instant::now();
    let mut silent = Vec::new();
    for _ in 0..PENDING {
        let socket = timeout(WAIT, tokio::net::TcpStream::connect(("127.0.0.1", port)))
            .await
            .expect("TCP connect within the bound")
            .expect("TCP connect");
        silent.push(socket);
    }
    // Every pending slot is held: a real peer's connection is refused.
    assert!(
        bare_dial_is_refused(&victim).await,
        "a connection beyond max_pending_incoming is refused"
    );
    assert!(
        opened.elapsed() < handshake_timeout,
        "the refusal came while the silent sockets were pending"
    );
    // The node closes the silent sockets once their handshake time is up (bounded well
    // below libp2p's 10 s default, so the configured timeout is what closed them).
    let bound = handshake_timeout + Duration::from_secs(3);
    for socket in silent {
        let closed = tokio::time::timeout_at((opened + bound).into(), async {
            let mut buf = [0u8; 64];
            loop {
                if socket.readable().await.is_err() {
                    return;
                }
                match socket.try_read(&mut buf) {
                    Ok(0) => return,
                    Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => return,
                    _ => {}
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "a silent socket still open {:?} after it connected",
            opened.elapsed()
        );
    }
    // The slots are free again: an honest peer connects.
    let (honest, mut honest_events) = start(test_config()).await;
    connect(&honest, &mut honest_events, &victim).await;
    let id = honest.local_peer_id();
    wait_for(
        &mut victim_events,
        |e| matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == id),
    )
    .await
    .expect("the honest peer takes a freed slot");
}

/// 200 distinct peer ids connect over TCP (in batches), are identified, and disconnect: every
/// per-peer map of the victim (peer manager, pacer, connection limits, connected set) grows
/// with them and returns to its size before them. Nothing a peer id leaves behind
/// accumulates (§7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_peer_state_is_dropped_after_churn() {
    const PEERS: usize = 200;
    // Under `max_pending_incoming` (16): a batch dials at once.
    const BATCH: usize = 10;
    let mut victim_cfg = NetworkConfig {
        max_connections_per_ip: preconfirmation_net::config::LOOPBACK_MAX_CONNECTIONS_PER_IP,
        ..test_config()
    };
    // Pacing state outlives a connection by the longest rate-limit window: keep it short.
    victim_cfg.politeness.strict_window = Duration::from_millis(100);
    victim_cfg.politeness.window_margin = Duration::from_millis(1);
    victim_cfg.politeness.extended_rate_limit =
        RateLimitConfig::uniform(8, Duration::from_millis(100));
    let (victim, mut victim_events) = start(victim_cfg).await;
    let victim_addr = addr(&victim).await;
    let baseline = victim.peer_state_sizes().await.expect("sizes");
    assert_eq!(baseline.connected, 0);

    let mut peak = baseline;
    for _ in 0..PEERS / BATCH {
        let mut swarms = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let mut swarm = SwarmBuilder::with_new_identity()
                .with_tokio()
                .with_tcp(
                    tcp::Config::default(),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .expect("tcp")
                .with_behaviour(|key| {
                    libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
                        preconfirmation_net::IDENTIFY_PROTOCOL.into(),
                        key.public(),
                    ))
                })
                .expect("behaviour")
                .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
                .build();
            swarm.dial(victim_addr.clone()).expect("dial");
            // Drive each swarm until the victim has identified it (its identify answer came
            // back to us), then keep it alive until the batch is dropped.
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let task = tokio::spawn(async move {
                let mut ready = Some(ready_tx);
                loop {
                    if let SwarmEvent::Behaviour(libp2p::identify::Event::Received { .. }) =
                        swarm.select_next_some().await
                    {
                        if let Some(tx) = ready.take() {
                            let _ = tx.send(());
                        }
                    }
                }
            });
            swarms.push((task, ready_rx));
        }
        let mut tasks = Vec::with_capacity(BATCH);
        for (task, ready) in swarms {
            timeout(WAIT, ready)
                .await
                .expect("identified in time")
                .expect("swarm alive");
            tasks.push(task);
        }
        // The victim sees the whole batch, and has identified each peer.
        let sizes = timeout(WAIT, async {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                let s = victim.peer_state_sizes().await.expect("sizes");
                if s.connected == BATCH && s.pacer >= BATCH {
                    return s;
                }
            }
        })
        .await
        .expect("the batch is connected");
        peak.connected = peak.connected.max(sizes.connected);
        peak.peer_manager = peak.peer_manager.max(sizes.peer_manager);
        peak.connection_limits.peers = peak
            .connection_limits
            .peers
            .max(sizes.connection_limits.peers);
        peak.connection_limits.ips = peak.connection_limits.ips.max(sizes.connection_limits.ips);
        // Disconnect the batch: dropping the swarms closes their connections.
        for task in tasks {
            task.abort();
        }
        let mut gone = 0;
        while gone < BATCH {
            wait_for(&mut victim_events, |e| {
                matches!(e, NetworkEvent::PeerDisconnected { .. })
            })
            .await
            .expect("the batch disconnects");
            gone += 1;
        }
    }
    // Everything grew with the peers …
    assert_eq!(peak.connected, BATCH);
    assert!(peak.peer_manager >= BATCH, "{peak:?}");
    assert_eq!(peak.connection_limits.peers, BATCH);
    assert_eq!(peak.connection_limits.ips, 1);
    // … and returns to where it was (pacing state once its short window has passed).
    let last = timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let s = victim.peer_state_sizes().await.expect("sizes");
            if s == baseline {
                return s;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("per-peer state did not return to {baseline:?}"));
    assert_eq!(last, baseline);
    victim.shutdown().await.expect("shutdown");
}

/// §7 attack: a peer floods valid-looking tx lists far over its per-peer byte limit of the
/// topic. The SDK gets no more than the limit lets through (burst + refill over the elapsed
/// time, whatever was sent), the rest is ignored, and the sustained excess costs the peer
/// score (§7.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_byte_flood() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    const MSG: usize = 16 * 1024;
    let limit = ByteRateLimit::new(2 * MSG as u64 + 100, Duration::from_secs(10));
    let mut victim_cfg = test_config();
    victim_cfg.gossip_rate_limit.raw_txlists.bytes = limit;
    let (victim, victim_events) = start(victim_cfg).await;
    let (flooder, mut flooder_events) = start(test_config()).await;
    let flooder_id = flooder.local_peer_id();
    connect(&flooder, &mut flooder_events, &victim).await;
    let mut sdk = spawn_sdk(victim.clone(), victim_events, GossipVerdict::Accept);
    // Count every byte the SDK gets (draining the stand-in's channel so none is dropped).
    let delivered = Arc::new(AtomicU64::new(0));
    {
        let delivered = delivered.clone();
        tokio::spawn(async move {
            while let Some((_, data)) = sdk.recv().await {
                delivered.fetch_add(data.len() as u64, Ordering::SeqCst);
            }
        });
    }
    wait_gossip_peers(&flooder, &[victim.local_peer_id()]).await;

    let start_at = Instant::now();
    let sent = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (flooder, sent) = (flooder.clone(), sent.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for n in 0u64..4_000 {
                tick.tick().await;
                let mut body = vec![0u8; MSG];
                body[..8].copy_from_slice(&n.to_le_bytes());
                let msg = RawTxListGossip::new(body).expect("txlist").to_ssz();
                let len = msg.len() as u64;
                if flooder
                    .publish(GossipTopicKind::RawTxLists, msg)
                    .await
                    .is_ok()
                {
                    sent.fetch_add(len, Ordering::SeqCst);
                }
            }
        })
    };
    let penalised = wait_peer(&victim, flooder_id, |p| p.score < 0.0).await;
    assert!(
        penalised.is_some(),
        "a peer sustaining a flood over its gossip byte limit is penalised"
    );
    // Keep flooding until far more than the limit was sent (bounded).
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while sent.load(Ordering::SeqCst) < 64 * MSG as u64 {
            tick.tick().await;
        }
    })
    .await
    .expect("the flood goes out");
    publisher.abort();
    // What the SDK got is bounded by the limit over the time elapsed, not by what was sent.
    let got = delivered.load(Ordering::SeqCst);
    let elapsed = start_at.elapsed().as_secs_f64();
    let bound =
        limit.burst_bytes as f64 + limit.burst_bytes as f64 / limit.period.as_secs_f64() * elapsed;
    let sent = sent.load(Ordering::SeqCst);
    assert!(got >= MSG as u64, "the burst is delivered ({got} bytes)");
    assert!(
        (got as f64) <= bound,
        "delivered {got} bytes in {elapsed:.1} s, over the limit's {bound:.0} (sent {sent})"
    );
    assert!(
        sent > 4 * got,
        "the flood was far over the limit (sent {sent}, got {got})"
    );
}
