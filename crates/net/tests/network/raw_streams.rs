//! Raw streams from a bare libp2p client, to reach the codec's limits an honest requester
//! never hits: an over-cap length prefix, a silent stream, and slowloris trickles.

use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{PeerId, StreamProtocol, Swarm};
use preconfirmation_net::{GossipVerdict, InboundRequest, NetworkEvent, P2pService};
use preconfirmation_types::{GetCommitmentsByNumberRequest, ReqRespKind, WireMessage, U256};
use tokio::sync::mpsc;
use tokio::time::timeout;

use crate::common::*;

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
    let mut swarm = bare_swarm(|_| {
        request_response::Behaviour::with_codec(
            RawCodec,
            [(protocol, ProtocolSupport::Outbound)],
            request_response::Config::default().with_request_timeout(Duration::from_secs(30)),
        )
    });
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
    let (client, _client_events) = start_connected_to(&server).await;
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
    let (client, _client_events) = start_connected_to(&server).await;
    assert_eq!(client.request_head(server_id).await.expect("head"), head());
}
