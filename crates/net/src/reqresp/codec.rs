//! Req/resp framing (§10–§11): one request and one response per stream, each a single SSZ
//! container behind an unsigned-varint length prefix.
//!
//! The prefix is read with `unsigned_varint::aio` and compared with the protocol's cap
//! ([`ChainLimits::max_request_len`] / [`ChainLimits::max_response_len`]) *before* a single body
//! byte is read or a buffer is allocated; an over-cap prefix fails the stream with
//! [`CodecError::Oversize`] (libp2p then resets it).
//!
//! An inbound request must arrive whole within the read timeout
//! ([`crate::NetworkConfig::request_read_timeout`]); a silent or trickling stream yields
//! [`Request::Invalid`] with [`CodecError::ReadTimeout`] and its sender is penalised
//! ([`SLOW_REQUEST_PENALTY_REASON`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use preconfirmation_types::{
    ChainLimits, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetHeadRequest,
    GetRawTxListRequest, GetRawTxListResponse, GetRawTxListsRequest, GetRawTxListsResponse,
    PreconfHead, ReqRespKind, WireMessage,
};

use crate::error::CodecError;

/// Penalty reason (metric label `preconf_net_rejections_total{reason="slow_request"}`) of an
/// inbound stream that did not deliver its whole request within the read timeout — opened and
/// left silent, or trickled a byte at a time (slowloris).
///
/// PROTOCOL.md §7 lists per-peer rate limits on every req/resp protocol and §7.1 one app-score
/// penalty (−1, at most −4 per 10 s per peer) per validation failure, but names no penalty
/// for a stalled request. A stalled stream holds one of the connection's
/// `max_streams_per_connection` slots for nothing, like an over-limit request, and is not a
/// request at all, like a malformed one: it is treated exactly like those — one §7.1 app
/// penalty (`ScoringConfig::app_penalty`, default −1) counted against the same per-window cap,
/// the stream closed without a response. A peer that keeps doing it crosses the ban threshold
/// (−5) in its second penalty window and is banned `ban_sustain` later, like any other
/// req/resp misbehaviour.
pub const SLOW_REQUEST_PENALTY_REASON: &str = "slow_request";

/// A reader that counts the bytes that went through it.
struct Counting<'a, T> {
    inner: &'a mut T,
    read: u64,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counting<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let res = Pin::new(&mut *this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            this.read = this.read.saturating_add(*n as u64);
        }
        res
    }
}

/// A req/resp protocol: its kind and its chain-specific id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReqRespProtocol {
    /// Which protocol.
    pub kind: ReqRespKind,
    id: StreamProtocol,
}

impl ReqRespProtocol {
    /// The protocol `kind` on `chain_id`.
    pub fn new(kind: ReqRespKind, chain_id: u64) -> Self {
        let id = StreamProtocol::try_from_owned(kind.protocol_id(chain_id))
            .unwrap_or_else(|_| StreamProtocol::new("/taiko/invalid"));
        Self { kind, id }
    }

    /// The libp2p stream protocol id.
    pub fn stream_protocol(&self) -> StreamProtocol {
        self.id.clone()
    }
}

impl AsRef<str> for ReqRespProtocol {
    fn as_ref(&self) -> &str {
        self.id.as_ref()
    }
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `get_head`. Sent as the 4-byte [`GetHeadRequest`] container the deployed reference
    /// requires; read from either that or an empty body (PROTOCOL.md "get_head request").
    GetHead,
    /// `get_commitments_by_number`.
    GetCommitmentsByNumber(GetCommitmentsByNumberRequest),
    /// `get_raw_txlist`.
    GetRawTxList(GetRawTxListRequest),
    /// `get_raw_txlists` (PROTOCOL-EXT.md).
    GetRawTxLists(GetRawTxListsRequest),
    /// An inbound request that broke the framing (over-cap prefix, bad varint, bad SSZ). Never
    /// sent. The codec yields it instead of an error because libp2p-request-response does not
    /// report `read_request` failures to the behaviour: this way the driver learns the peer,
    /// penalises it and closes the stream without a response. Nothing past the bad prefix is
    /// read.
    Invalid(ReqRespKind, CodecError),
}

impl Request {
    /// The protocol this request travels on.
    pub fn kind(&self) -> ReqRespKind {
        match self {
            Request::GetHead => ReqRespKind::GetHead,
            Request::GetCommitmentsByNumber(_) => ReqRespKind::GetCommitmentsByNumber,
            Request::GetRawTxList(_) => ReqRespKind::GetRawTxList,
            Request::GetRawTxLists(_) => ReqRespKind::GetRawTxLists,
            Request::Invalid(kind, _) => *kind,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Request::GetHead => GetHeadRequest::default().to_ssz(),
            Request::GetCommitmentsByNumber(r) => r.to_ssz(),
            Request::GetRawTxList(r) => r.to_ssz(),
            Request::GetRawTxLists(r) => r.to_ssz(),
            Request::Invalid(..) => Vec::new(),
        }
    }

    fn decode(kind: ReqRespKind, body: &[u8], limits: &ChainLimits) -> Result<Self, CodecError> {
        let de = |e: preconfirmation_types::TypesError| CodecError::Decode(e.to_string());
        Ok(match kind {
            ReqRespKind::GetHead => {
                GetHeadRequest::decode_either(body).map_err(|e| {
                    CodecError::Decode(format!(
                        "get_head body must be empty or GetHeadRequest (04000000): {e:?}"
                    ))
                })?;
                Request::GetHead
            }
            ReqRespKind::GetCommitmentsByNumber => Request::GetCommitmentsByNumber(
                GetCommitmentsByNumberRequest::decode_capped(body, limits).map_err(de)?,
            ),
            ReqRespKind::GetRawTxList => {
                Request::GetRawTxList(GetRawTxListRequest::decode_capped(body, limits).map_err(de)?)
            }
            ReqRespKind::GetRawTxLists => Request::GetRawTxLists(
                GetRawTxListsRequest::decode_capped(body, limits).map_err(de)?,
            ),
        })
    }
}

/// A decoded response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `get_head` response.
    Head(PreconfHead),
    /// `get_commitments_by_number` response.
    Commitments(GetCommitmentsByNumberResponse),
    /// `get_raw_txlist` response.
    RawTxList(GetRawTxListResponse),
    /// `get_raw_txlists` response (PROTOCOL-EXT.md).
    RawTxLists(GetRawTxListsResponse),
}

impl Response {
    /// The protocol this response travels on.
    pub fn kind(&self) -> ReqRespKind {
        match self {
            Response::Head(_) => ReqRespKind::GetHead,
            Response::Commitments(_) => ReqRespKind::GetCommitmentsByNumber,
            Response::RawTxList(_) => ReqRespKind::GetRawTxList,
            Response::RawTxLists(_) => ReqRespKind::GetRawTxLists,
        }
    }

    fn encode(&self) -> Vec<u8> {
        match self {
            Response::Head(r) => r.to_ssz(),
            Response::Commitments(r) => r.to_ssz(),
            Response::RawTxList(r) => r.to_ssz(),
            Response::RawTxLists(r) => r.to_ssz(),
        }
    }

    fn decode(kind: ReqRespKind, body: &[u8], limits: &ChainLimits) -> Result<Self, CodecError> {
        let de = |e: preconfirmation_types::TypesError| CodecError::Decode(e.to_string());
        Ok(match kind {
            ReqRespKind::GetHead => {
                Response::Head(PreconfHead::decode_capped(body, limits).map_err(de)?)
            }
            ReqRespKind::GetCommitmentsByNumber => {
                let r = GetCommitmentsByNumberResponse::decode_capped(body, limits).map_err(de)?;
                if r.commitments.len() > limits.max_commitments_per_response {
                    return Err(CodecError::Decode(format!(
                        "{} commitments exceed the cap of {}",
                        r.commitments.len(),
                        limits.max_commitments_per_response
                    )));
                }
                Response::Commitments(r)
            }
            ReqRespKind::GetRawTxList => {
                Response::RawTxList(GetRawTxListResponse::decode_capped(body, limits).map_err(de)?)
            }
            ReqRespKind::GetRawTxLists => {
                let r = GetRawTxListsResponse::decode_capped(body, limits).map_err(de)?;
                if let Some(long) = r
                    .txlists
                    .iter()
                    .find(|t| t.txlist.len() > limits.max_txlist_bytes)
                {
                    return Err(CodecError::Decode(format!(
                        "a tx list of {} bytes exceeds the cap of {}",
                        long.txlist.len(),
                        limits.max_txlist_bytes
                    )));
                }
                Response::RawTxLists(r)
            }
        })
    }
}

/// Reads a varint length prefix and checks it against `cap` before anything else is read.
async fn read_prefix<T: AsyncRead + Unpin + Send>(io: &mut T, cap: usize) -> io::Result<usize> {
    let len = unsigned_varint::aio::read_u64(&mut *io)
        .await
        .map_err(|e| match e {
            unsigned_varint::io::ReadError::Io(e) => e,
            other => CodecError::Varint(other.to_string()).into_io(),
        })?;
    match usize::try_from(len) {
        Ok(n) if n <= cap => Ok(n),
        _ => {
            crate::metrics::rejection("oversize_frame");
            Err(CodecError::Oversize { len, cap }.into_io())
        }
    }
}

/// Reads one length-prefixed frame whose length is at most `cap`.
pub(crate) async fn read_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    cap: usize,
) -> io::Result<Vec<u8>> {
    let len = read_prefix(io, cap).await?;
    // Allocation bounded by `cap`, which was checked above.
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

/// Writes one length-prefixed frame, refusing a body above `cap`.
pub(crate) async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    body: &[u8],
    cap: usize,
) -> io::Result<()> {
    if body.len() > cap {
        return Err(CodecError::Oversize {
            len: body.len() as u64,
            cap,
        }
        .into_io());
    }
    let mut prefix = unsigned_varint::encode::u64_buffer();
    let prefix = unsigned_varint::encode::u64(body.len() as u64, &mut prefix);
    io.write_all(prefix).await?;
    io.write_all(body).await?;
    io.flush().await
}

/// Reads one inbound request frame, giving up after `timeout` (when set and inside a tokio
/// runtime; outside one the read is unbounded here and only libp2p's stream timeout applies).
async fn read_request_frame<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    cap: usize,
    timeout: Option<Duration>,
) -> io::Result<Vec<u8>> {
    let Some(timeout) = timeout.filter(|_| tokio::runtime::Handle::try_current().is_ok()) else {
        return read_frame(io, cap).await;
    };
    let mut counting = Counting { inner: io, read: 0 };
    match tokio::time::timeout(timeout, read_frame(&mut counting, cap)).await {
        Ok(res) => res,
        Err(_) => Err(CodecError::ReadTimeout {
            timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            read: counting.read,
        }
        .into_io()),
    }
}

/// The `request_response::Codec` of the three protocols, enforcing the chain's caps and the
/// inbound read timeout.
#[derive(Debug, Clone, Default)]
pub struct PreconfCodec {
    limits: ChainLimits,
    read_timeout: Option<Duration>,
}

impl PreconfCodec {
    /// A codec enforcing `limits`, with no read timeout of its own.
    pub fn new(limits: ChainLimits) -> Self {
        Self {
            limits,
            read_timeout: None,
        }
    }

    /// Inbound requests must arrive whole within `timeout` (see
    /// [`crate::NetworkConfig::request_read_timeout`]); a stream still incomplete then yields
    /// [`Request::Invalid`] with [`CodecError::ReadTimeout`].
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = Some(timeout);
        self
    }
}

impl libp2p::request_response::Codec for PreconfCodec {
    type Protocol = ReqRespProtocol;
    type Request = Request;
    type Response = Response;

    async fn read_request<T>(
        &mut self,
        protocol: &ReqRespProtocol,
        io: &mut T,
    ) -> io::Result<Request>
    where
        T: AsyncRead + Unpin + Send,
    {
        let cap = self.limits.max_request_len(protocol.kind);
        let body = match read_request_frame(io, cap, self.read_timeout).await {
            Ok(body) => body,
            Err(e) => {
                return match CodecError::from_io(&e) {
                    Some(codec) => Ok(Request::Invalid(protocol.kind, codec.clone())),
                    None => Err(e),
                }
            }
        };
        Ok(Request::decode(protocol.kind, &body, &self.limits)
            .unwrap_or_else(|e| Request::Invalid(protocol.kind, e)))
    }

    async fn read_response<T>(
        &mut self,
        protocol: &ReqRespProtocol,
        io: &mut T,
    ) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        let body = read_frame(io, self.limits.max_response_len(protocol.kind)).await?;
        Response::decode(protocol.kind, &body, &self.limits).map_err(CodecError::into_io)
    }

    async fn write_request<T>(
        &mut self,
        protocol: &ReqRespProtocol,
        io: &mut T,
        req: Request,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if let Request::Invalid(_, e) = req {
            return Err(e.into_io());
        }
        write_frame(
            io,
            &req.encode(),
            self.limits.max_request_len(protocol.kind),
        )
        .await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &ReqRespProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        if res.kind() != protocol.kind {
            return Err(
                CodecError::Decode("response does not match the protocol".into()).into_io(),
            );
        }
        write_frame(
            io,
            &res.encode(),
            self.limits.max_response_len(protocol.kind),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;
    use futures::{StreamExt, TryStreamExt};
    use libp2p::request_response::Codec;
    use preconfirmation_types::{SignedCommitment, U256};

    use crate::error::RequestError;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    fn proto(kind: ReqRespKind) -> ReqRespProtocol {
        ReqRespProtocol::new(kind, 167000)
    }

    #[test]
    fn round_trips_every_protocol() {
        let mut codec = PreconfCodec::default();
        let reqs = [
            Request::GetHead,
            Request::GetCommitmentsByNumber(GetCommitmentsByNumberRequest {
                start_block_number: U256::from(5u64),
                max_count: 3,
            }),
            Request::GetRawTxList(GetRawTxListRequest::default()),
            Request::GetRawTxLists(
                GetRawTxListsRequest::new(vec![Default::default(); 64]).unwrap(),
            ),
        ];
        for req in reqs {
            let p = proto(req.kind());
            let mut buf = Vec::new();
            block_on(codec.write_request(&p, &mut buf, req.clone())).unwrap();
            let back = block_on(codec.read_request(&p, &mut Cursor::new(buf))).unwrap();
            assert_eq!(back, req);
        }
        let resps = [
            Response::Head(PreconfHead {
                block_number: U256::from(9u64),
                submission_window_end: U256::from(10u64),
            }),
            Response::Commitments(
                GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 2]).unwrap(),
            ),
            Response::RawTxList(GetRawTxListResponse::new(vec![1, 2, 3]).unwrap()),
            Response::RawTxLists(
                GetRawTxListsResponse::new(vec![
                    GetRawTxListResponse::new(vec![1, 2, 3]).unwrap(),
                    GetRawTxListResponse::default(),
                ])
                .unwrap(),
            ),
        ];
        for res in resps {
            let p = proto(res.kind());
            let mut buf = Vec::new();
            block_on(codec.write_response(&p, &mut buf, res.clone())).unwrap();
            let back = block_on(codec.read_response(&p, &mut Cursor::new(buf))).unwrap();
            assert_eq!(back, res);
        }
    }

    #[test]
    fn get_head_request_is_sent_as_the_reference_container() {
        let mut codec = PreconfCodec::default();
        let mut buf = Vec::new();
        block_on(codec.write_request(&proto(ReqRespKind::GetHead), &mut buf, Request::GetHead))
            .unwrap();
        // Length prefix 4, then GetHeadRequest { reserved: [] }: the offset 4.
        assert_eq!(buf, vec![4u8, 4, 0, 0, 0]);
    }

    #[test]
    fn get_head_accepts_empty_and_container_bodies() {
        let mut codec = PreconfCodec::default();
        let p = proto(ReqRespKind::GetHead);
        // The draft's empty body and the reference's 4-byte container are both a get_head.
        for frame in [vec![0u8], vec![4u8, 4, 0, 0, 0]] {
            let req = block_on(codec.read_request(&p, &mut Cursor::new(frame.clone()))).unwrap();
            assert_eq!(req, Request::GetHead, "frame {frame:02x?}");
        }
        // Anything else inside the cap is malformed: a wrong offset, a non-empty reserved
        // list, a short body.
        for frame in [
            vec![4u8, 5, 0, 0, 0],
            vec![4u8, 0, 0, 0, 0],
            vec![3u8, 4, 0, 0],
            vec![1u8, 0],
        ] {
            let req = block_on(codec.read_request(&p, &mut Cursor::new(frame.clone()))).unwrap();
            assert!(
                matches!(
                    req,
                    Request::Invalid(ReqRespKind::GetHead, CodecError::Decode(_))
                ),
                "frame {frame:02x?}: {req:?}"
            );
        }
    }

    #[test]
    fn over_cap_prefix_is_refused_before_reading_the_body() {
        let mut codec = PreconfCodec::default();
        // 4 GiB announced, no body at all: must fail with Oversize, not EOF.
        let mut buf = unsigned_varint::encode::u64_buffer();
        let prefix = unsigned_varint::encode::u64(4 << 30, &mut buf).to_vec();
        for kind in ReqRespKind::ALL {
            // The stream carries nothing after the prefix: reading the body would be EOF, so
            // an Oversize verdict proves the body was never read.
            let req = block_on(codec.read_request(&proto(kind), &mut Cursor::new(prefix.clone())))
                .unwrap();
            assert!(matches!(
                req,
                Request::Invalid(k, CodecError::Oversize { len, .. }) if k == kind && len == 4 << 30
            ));
            let err = block_on(codec.read_response(&proto(kind), &mut Cursor::new(prefix.clone())))
                .unwrap_err();
            assert!(matches!(
                CodecError::from_io(&err),
                Some(CodecError::Oversize { .. })
            ));
        }
        // One byte over the get_head cap (4) is refused too.
        let req = block_on(codec.read_request(
            &proto(ReqRespKind::GetHead),
            &mut Cursor::new(vec![5u8, 4, 0, 0, 0, 0]),
        ))
        .unwrap();
        assert!(matches!(
            req,
            Request::Invalid(_, CodecError::Oversize { len: 5, cap: 4 })
        ));
        // Invalid requests are never written.
        assert!(
            block_on(codec.write_request(&proto(ReqRespKind::GetHead), &mut Vec::new(), req))
                .is_err()
        );
    }

    #[test]
    fn runtime_caps_apply() {
        let limits = ChainLimits {
            max_txlist_bytes: 4,
            ..Default::default()
        };
        let mut small = PreconfCodec::new(limits);
        let mut big = PreconfCodec::default();
        let p = proto(ReqRespKind::GetRawTxList);
        let res = Response::RawTxList(GetRawTxListResponse::new(vec![0; 5]).unwrap());
        let mut buf = Vec::new();
        block_on(big.write_response(&p, &mut buf, res.clone())).unwrap();
        let err = block_on(small.read_response(&p, &mut Cursor::new(buf))).unwrap_err();
        assert!(matches!(
            CodecError::from_io(&err),
            Some(CodecError::Oversize { len: 41, cap: 40 })
        ));
        // And we refuse to send it.
        let err = block_on(small.write_response(&p, &mut Vec::new(), res)).unwrap_err();
        assert!(matches!(
            CodecError::from_io(&err),
            Some(CodecError::Oversize { .. })
        ));
    }

    #[test]
    fn runtime_caps_admit_responses_exactly_at_the_cap() {
        let limits = ChainLimits {
            max_txlist_bytes: 4,
            max_commitments_per_response: 2,
            ..Default::default()
        };
        let mut small = PreconfCodec::new(limits);
        // Written under the default caps, read under the small ones.
        let read = |codec: &mut PreconfCodec, res: Response| {
            let p = proto(res.kind());
            let mut buf = Vec::new();
            block_on(PreconfCodec::default().write_response(&p, &mut buf, res)).unwrap();
            block_on(codec.read_response(&p, &mut Cursor::new(buf)))
        };
        // As many commitments as the cap: accepted.
        let at_cap = Response::Commitments(
            GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 2]).unwrap(),
        );
        assert_eq!(read(&mut small, at_cap.clone()).unwrap(), at_cap);
        // One more: refused.
        let over = Response::Commitments(
            GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 3]).unwrap(),
        );
        assert!(read(&mut small, over).is_err());
        // Batched tx lists: each entry may be as long as the cap, not longer.
        let at_cap = Response::RawTxLists(
            GetRawTxListsResponse::new(vec![
                GetRawTxListResponse::new(vec![1; 4]).unwrap(),
                GetRawTxListResponse::default(),
            ])
            .unwrap(),
        );
        assert_eq!(read(&mut small, at_cap.clone()).unwrap(), at_cap);
        let over = Response::RawTxLists(
            GetRawTxListsResponse::new(vec![
                GetRawTxListResponse::default(),
                GetRawTxListResponse::new(vec![1; 5]).unwrap(),
            ])
            .unwrap(),
        );
        let err = read(&mut small, over).unwrap_err();
        assert!(matches!(
            CodecError::from_io(&err),
            Some(CodecError::Decode(_))
        ));
    }

    #[test]
    fn protocol_ids_name_the_kind_and_chain() {
        for kind in ReqRespKind::ALL {
            let p = ReqRespProtocol::new(kind, 167000);
            let id = kind.protocol_id(167000);
            assert_eq!(p.as_ref(), id);
            assert_eq!(p.stream_protocol().as_ref(), id);
        }
        assert_eq!(
            proto(ReqRespKind::GetRawTxLists).as_ref(),
            "/taiko/167000/preconf/1/get_raw_txlists"
        );
    }

    /// Yields `bytes` one per `every`, then stays pending forever (never EOF): a silent
    /// (`bytes` empty) or trickling stream.
    fn trickle(bytes: Vec<u8>, every: Duration) -> impl AsyncRead + Unpin {
        futures::stream::iter(bytes)
            .then(move |byte| async move {
                tokio::time::sleep(every).await;
                Ok::<_, io::Error>([byte])
            })
            .chain(futures::stream::pending())
            .boxed()
            .into_async_read()
    }

    #[tokio::test(start_paused = true)]
    async fn silent_and_trickling_requests_time_out_as_invalid() {
        let timeout = Duration::from_secs(5);
        let mut codec = PreconfCodec::default().with_read_timeout(timeout);
        // Silent: nothing ever arrives.
        let p = proto(ReqRespKind::GetHead);
        let mut silent = trickle(Vec::new(), Duration::ZERO);
        // The outer bound (virtual time, the clock is paused) only turns a codec that never
        // gives up into a failure instead of a hang.
        let req = tokio::time::timeout(timeout * 2, codec.read_request(&p, &mut silent))
            .await
            .expect("the codec's read timeout fires first")
            .unwrap();
        assert!(
            matches!(
                req,
                Request::Invalid(
                    ReqRespKind::GetHead,
                    CodecError::ReadTimeout {
                        timeout_ms: 5000,
                        read: 0
                    }
                )
            ),
            "{req:?}"
        );
        // Trickle: a valid get_commitments_by_number request, one byte per second; 4 bytes
        // (the prefix and 3 body bytes) arrive before the timeout, the rest never counts.
        let p = proto(ReqRespKind::GetCommitmentsByNumber);
        let mut bytes = Vec::new();
        let request = Request::GetCommitmentsByNumber(GetCommitmentsByNumberRequest {
            start_block_number: U256::from(1u64),
            max_count: 8,
        });
        codec
            .write_request(&p, &mut bytes, request.clone())
            .await
            .unwrap();
        assert!(bytes.len() > 6);
        let mut slow = trickle(bytes.clone(), Duration::from_secs(1));
        let req = codec.read_request(&p, &mut slow).await.unwrap();
        assert!(
            matches!(
                req,
                Request::Invalid(_, CodecError::ReadTimeout { read: 4 | 5, .. })
            ),
            "{req:?}"
        );
        // The same bytes at once are read in time.
        let req = codec
            .read_request(&p, &mut Cursor::new(bytes.clone()))
            .await
            .unwrap();
        assert_eq!(req, request);
        // A trickle fast enough to finish within the timeout is an honest (if slow) request.
        let mut quick = trickle(bytes, Duration::from_millis(10));
        assert_eq!(codec.read_request(&p, &mut quick).await.unwrap(), request);
        // Read timeouts map to a timeout for the requester's side.
        assert_eq!(
            RequestError::from(CodecError::ReadTimeout {
                timeout_ms: 1,
                read: 0
            }),
            RequestError::Timeout
        );
    }

    #[test]
    fn malformed_bodies_and_varints_are_typed() {
        let mut codec = PreconfCodec::default();
        let p = proto(ReqRespKind::GetCommitmentsByNumber);
        let req = block_on(codec.read_request(&p, &mut Cursor::new(vec![3u8, 1, 2, 3]))).unwrap();
        assert!(matches!(req, Request::Invalid(_, CodecError::Decode(_))));
        let req = block_on(codec.read_request(&p, &mut Cursor::new(vec![0xffu8; 11]))).unwrap();
        assert!(matches!(req, Request::Invalid(_, CodecError::Varint(_))));
        // Truncated body: plain EOF.
        let err = block_on(codec.read_request(&p, &mut Cursor::new(vec![36u8, 1]))).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
