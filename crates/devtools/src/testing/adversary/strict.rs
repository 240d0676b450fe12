//! A strict-peer double: a peer that behaves as the deployed Taiko reference does on req/resp
//! (PROTOCOL.md "Reference strictness"), to check that our node never gets itself refused.
//!
//! - It speaks identify and the three §10–§11 protocols, nothing of this project's extensions.
//! - `get_head` must carry the 4-byte `GetHeadRequest` (`04 00 00 00`); an empty body fails to
//!   decode, as in the reference.
//! - It allows 8 requests per peer per protocol in any 10 s window (counted on arrival).
//! - The first failed exchange — malformed or oversized request, over the limit, or a stream
//!   that failed before its answer went out (the requester gave up or reset it) — bans the peer:
//!   its connections are closed and redials refused (libp2p's block list). Every ban is recorded
//!   with its reason for the test to assert on.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{allow_block_list, identify, identity::Keypair, Multiaddr, PeerId, StreamProtocol};
use parking_lot::Mutex;
use preconfirmation_types::{
    raw_tx_list_hash, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse,
    GetRawTxListRequest, GetRawTxListResponse, PreconfHead, ReqRespKind, SignedCommitment,
    WireMessage, B256, U256,
};

/// The reference's limit: requests per peer per protocol per window.
pub const STRICT_REQUESTS_PER_WINDOW: usize = 8;
/// The reference's rate-limit window.
pub const STRICT_WINDOW: Duration = Duration::from_secs(10);

/// A request as the strict peer decoded it.
#[derive(Debug, Clone)]
pub enum StrictRequest {
    /// `get_head`.
    Head,
    /// `get_commitments_by_number`.
    Page(GetCommitmentsByNumberRequest),
    /// `get_raw_txlist`.
    TxList(B256),
    /// Did not decode (the reason).
    Malformed(String),
}

/// Reads requests strictly, writes raw SSZ responses behind a varint prefix.
#[derive(Debug, Clone, Default)]
struct StrictCodec;

async fn read_varint<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..63).step_by(7) {
        let mut byte = [0u8];
        io.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(io::Error::other("varint too long"))
}

impl request_response::Codec for StrictCodec {
    type Protocol = StreamProtocol;
    type Request = StrictRequest;
    type Response = Vec<u8>;

    async fn read_request<T>(
        &mut self,
        proto: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<StrictRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_varint(io).await?;
        if len > 64 {
            return Ok(StrictRequest::Malformed(format!("request of {len} bytes")));
        }
        let mut body = vec![0u8; len as usize];
        io.read_exact(&mut body).await?;
        let limits = Default::default();
        let p = proto.as_ref();
        Ok(if p.ends_with("/get_head") {
            // The reference decodes GetHeadRequest and fails on anything else, an empty body
            // included.
            if body == [4, 0, 0, 0] {
                StrictRequest::Head
            } else {
                StrictRequest::Malformed(format!("get_head body {body:02x?}"))
            }
        } else if p.ends_with("/get_commitments_by_number") {
            match GetCommitmentsByNumberRequest::decode_capped(&body, &limits) {
                Ok(r) => StrictRequest::Page(r),
                Err(e) => StrictRequest::Malformed(e.to_string()),
            }
        } else {
            match GetRawTxListRequest::decode_capped(&body, &limits) {
                Ok(r) => StrictRequest::TxList(r.raw_tx_list_hash),
                Err(e) => StrictRequest::Malformed(e.to_string()),
            }
        })
    }

    refused_codec_method!(read read_response -> Vec<u8>, "the strict peer asks nothing");

    refused_codec_method!(write write_request(StrictRequest), "the strict peer asks nothing");

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        body: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&super::varint(body.len() as u64)).await?;
        io.write_all(&body).await?;
        io.flush().await
    }
}

#[derive(NetworkBehaviour)]
struct StrictBehaviour {
    block_list: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    identify: identify::Behaviour,
    head: request_response::Behaviour<StrictCodec>,
    commitments: request_response::Behaviour<StrictCodec>,
    txlist: request_response::Behaviour<StrictCodec>,
}

/// What the strict peer saw, for assertions.
#[derive(Debug, Default)]
pub struct StrictLog {
    /// Peers it banned, with the reason.
    pub bans: Vec<(PeerId, String)>,
    /// Requests it answered, per protocol label.
    pub served: HashMap<&'static str, usize>,
    /// `get_raw_txlist` requests it answered, per hash.
    pub txlists_served: HashMap<B256, usize>,
}

/// The chain a strict peer serves.
struct Served {
    chain: Vec<SignedCommitment>,
    txlists: HashMap<B256, Vec<u8>>,
}

impl Served {
    fn answer(&self, request: &StrictRequest) -> Vec<u8> {
        match request {
            StrictRequest::Head => {
                let head = self.chain.last();
                PreconfHead {
                    block_number: head.map_or(U256::ZERO, |c| c.preconf().block_number),
                    submission_window_end: head
                        .map_or(U256::ZERO, |c| c.preconf().submission_window_end),
                }
                .to_ssz()
            }
            StrictRequest::Page(r) => {
                let first = self
                    .chain
                    .first()
                    .map_or(0, |c| u64::try_from(c.preconf().block_number).unwrap_or(0));
                let start = u64::try_from(r.start_block_number).unwrap_or(u64::MAX);
                let from = start.saturating_sub(first) as usize;
                let page: Vec<SignedCommitment> = self
                    .chain
                    .iter()
                    .skip(from.min(self.chain.len()))
                    .take((r.max_count as usize).min(256))
                    .cloned()
                    .collect();
                GetCommitmentsByNumberResponse::new(page)
                    .unwrap_or_default()
                    .to_ssz()
            }
            StrictRequest::TxList(hash) => match self.txlists.get(hash) {
                Some(bytes) => GetRawTxListResponse::new(bytes.clone())
                    .unwrap_or_default()
                    .to_ssz(),
                None => GetRawTxListResponse {
                    raw_tx_list_hash: *hash,
                    ..Default::default()
                }
                .to_ssz(),
            },
            StrictRequest::Malformed(_) => Vec::new(),
        }
    }
}

/// A peer that behaves as the strict reference (see the module docs). Dropping it stops it.
pub struct StrictPeer {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its dialable address (with `/p2p/`).
    pub addr: Multiaddr,
    /// What it served and refused.
    pub log: Arc<Mutex<StrictLog>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StrictPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StrictPeer {
    /// A strict peer on `chain_id` serving `chain` and `txlists`, listening on 127.0.0.1.
    pub async fn spawn(
        chain_id: u64,
        chain: Vec<SignedCommitment>,
        txlists: Vec<Vec<u8>>,
    ) -> StrictPeer {
        let key = Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id();
        let rr = |kind: ReqRespKind| {
            request_response::Behaviour::with_codec(
                StrictCodec,
                [(
                    StreamProtocol::try_from_owned(kind.protocol_id(chain_id)).expect("id"),
                    ProtocolSupport::Inbound,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            )
        };
        let behaviour = StrictBehaviour {
            block_list: Default::default(),
            identify: identify::Behaviour::new(identify::Config::new(
                "/taiko/preconf/reference".into(),
                key.public(),
            )),
            head: rr(ReqRespKind::GetHead),
            commitments: rr(ReqRespKind::GetCommitmentsByNumber),
            txlist: rr(ReqRespKind::GetRawTxList),
        };
        let mut swarm = super::tcp_swarm(key, behaviour);
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
            .expect("listen");
        let addr = loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                break address.with(libp2p::multiaddr::Protocol::P2p(peer_id));
            }
        };
        let served = Served {
            chain,
            txlists: txlists
                .into_iter()
                .map(|t| (raw_tx_list_hash(&t), t))
                .collect(),
        };
        let log = Arc::new(Mutex::new(StrictLog::default()));
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            // Arrival times per (peer, protocol) inside the window.
            let mut arrivals: HashMap<(PeerId, &'static str), VecDeque<Instant>> = HashMap::new();
            loop {
                let (label, event) = match swarm.select_next_some().await {
                    SwarmEvent::Behaviour(StrictBehaviourEvent::Head(e)) => ("get_head", e),
                    SwarmEvent::Behaviour(StrictBehaviourEvent::Commitments(e)) => {
                        ("get_commitments_by_number", e)
                    }
                    SwarmEvent::Behaviour(StrictBehaviourEvent::Txlist(e)) => ("get_raw_txlist", e),
                    _ => continue,
                };
                use request_response::{Event, Message};
                let (peer, violation) = match event {
                    Event::Message {
                        peer,
                        message:
                            Message::Request {
                                request, channel, ..
                            },
                        ..
                    } => {
                        let now = Instant::now();
                        let window = arrivals.entry((peer, label)).or_default();
                        while window
                            .front()
                            .is_some_and(|t| now.duration_since(*t) >= STRICT_WINDOW)
                        {
                            window.pop_front();
                        }
                        window.push_back(now);
                        let violation = if let StrictRequest::Malformed(reason) = &request {
                            Some(format!("{label}: malformed ({reason})"))
                        } else if window.len() > STRICT_REQUESTS_PER_WINDOW {
                            Some(format!(
                                "{label}: over {STRICT_REQUESTS_PER_WINDOW} per {STRICT_WINDOW:?}"
                            ))
                        } else {
                            None
                        };
                        if violation.is_none() {
                            let body = served.answer(&request);
                            let behaviour = swarm.behaviour_mut();
                            let rr = match label {
                                "get_head" => &mut behaviour.head,
                                "get_commitments_by_number" => &mut behaviour.commitments,
                                _ => &mut behaviour.txlist,
                            };
                            if rr.send_response(channel, body).is_ok() {
                                let mut log = task_log.lock();
                                *log.served.entry(label).or_default() += 1;
                                if let StrictRequest::TxList(hash) = &request {
                                    *log.txlists_served.entry(*hash).or_default() += 1;
                                }
                            }
                        }
                        (peer, violation)
                    }
                    Event::InboundFailure { peer, error, .. } => {
                        (peer, Some(format!("{label}: failed exchange ({error})")))
                    }
                    _ => continue,
                };
                if let Some(reason) = violation {
                    let mut log = task_log.lock();
                    if !log.bans.iter().any(|(p, _)| *p == peer) {
                        log.bans.push((peer, reason));
                    }
                    swarm.behaviour_mut().block_list.block_peer(peer);
                }
            }
        });
        StrictPeer {
            peer_id,
            addr,
            log,
            task,
        }
    }

    /// Peers this strict peer banned, with reasons.
    pub fn bans(&self) -> Vec<(PeerId, String)> {
        self.log.lock().bans.clone()
    }

    /// `get_raw_txlist` answers per hash.
    pub fn txlists_served(&self) -> HashMap<B256, usize> {
        self.log.lock().txlists_served.clone()
    }

    /// Requests answered on protocol `label`.
    pub fn served(&self, label: &str) -> usize {
        self.log.lock().served.get(label).copied().unwrap_or(0)
    }
}
