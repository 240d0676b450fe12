//! Response-byte budgets (§7 "per-peer rate limits on every req/resp protocol"): what a
//! request may cost the serving node in egress, computed the same way on both sides.
//!
//! Each peer has one byte bucket, shared by the three data protocols
//! (`get_commitments_by_number`, `get_raw_txlist`, `get_raw_txlists`; `get_head` answers a
//! fixed 64 bytes and is limited by its request count alone). One bucket rather than one per
//! protocol because what it protects is the serving node's egress, which the three protocols
//! share: a per-protocol budget would let one peer take three times the figure by spreading
//! its requests, and the requester's mirror ([`crate::reqresp::self_limiter`]) would need three.
//!
//! The bucket is *deterministic* so that the requester can mirror it exactly:
//!
//! - at admission the server reserves [`max_response_bytes`] of the request — a pure function
//!   of the request, from the protocol maxima of `preconfirmation_types` (never the runtime
//!   caps, which may differ between nodes), clamped to the bucket's capacity — and refuses the
//!   request (reason `bytes_exhausted`) when the bucket holds less;
//! - when the response is handed to libp2p it refunds `reserved − response_len` (the SSZ body
//!   length, [`response_len`]); a request that gets no response (the SDK did not answer, the
//!   stream closed) is refunded in full, since nothing was served.
//!
//! The requester reserves the same amount before sending and refunds with the length of the
//! response it decoded, which is the same SSZ length.

use std::time::{Duration, Instant};

use preconfirmation_types::reexports::ssz::Encode;
use preconfirmation_types::{
    ReqRespKind, MAX_COMMITMENTS_PER_RESPONSE, SIGNED_COMMITMENT_SSZ_LEN, SSZ_OFFSET_LEN,
};

use crate::config::ByteRateLimit;
use crate::reqresp::codec::{Request, Response};

/// The largest SSZ response body `request` can get, from the protocol maxima (§3, §10.2,
/// PROTOCOL-EXT.md; the req/resp table's [`ReqRespKind::max_response_bytes`]), so both sides
/// compute the same figure whatever their runtime caps:
///
/// - `get_commitments_by_number`: `4 + min(maxCount, 256) · 382` (an empty request still
///   reserves the 4-byte offset);
/// - `get_raw_txlist`: `36 + MAX_TXLIST_BYTES` (2 MiB + 36);
/// - `get_raw_txlists`: `4 + n · (4 + 36 + MAX_TXLIST_BYTES)` for `n` hashes, at most
///   `MAX_RAW_TXLISTS_RESPONSE_BYTES` (8 MiB);
/// - `get_head`: 64 (not budgeted, see [`ReqRespKind::is_byte_budgeted`]);
/// - an invalid request: 0 (never served).
pub fn max_response_bytes(request: &Request) -> u64 {
    let offset = SSZ_OFFSET_LEN as u64;
    let max = |kind: ReqRespKind| kind.max_response_bytes() as u64;
    match request {
        Request::GetHead => max(ReqRespKind::GetHead),
        Request::GetCommitmentsByNumber(r) => {
            let count = u64::from(r.max_count).min(MAX_COMMITMENTS_PER_RESPONSE as u64);
            offset + count * SIGNED_COMMITMENT_SSZ_LEN as u64
        }
        Request::GetRawTxList(_) => max(ReqRespKind::GetRawTxList),
        Request::GetRawTxLists(r) => {
            // Each entry is a `get_raw_txlist` response behind its offset.
            let n = r.raw_tx_list_hashes.len() as u64;
            offset
                .saturating_add(n.saturating_mul(offset + max(ReqRespKind::GetRawTxList)))
                .min(max(ReqRespKind::GetRawTxLists))
        }
        Request::Invalid(..) => 0,
    }
}

/// The SSZ length of `response`'s body: what the server writes after the length prefix and
/// what the requester read. Computed from the container, without encoding it.
pub fn response_len(response: &Response) -> u64 {
    let len = match response {
        Response::Head(r) => r.ssz_bytes_len(),
        Response::Commitments(r) => r.ssz_bytes_len(),
        Response::RawTxList(r) => r.ssz_bytes_len(),
        Response::RawTxLists(r) => r.ssz_bytes_len(),
    };
    len as u64
}

/// A token bucket of bytes: `capacity` bytes, refilled continuously over `period`. Holds
/// reservations and refunds (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct ByteBucket {
    level: f64,
    capacity: f64,
    refill_per_sec: f64,
    last: Instant,
}

impl ByteBucket {
    /// A full bucket of `limit.burst_bytes` refilled over `refill_over` (the server uses
    /// `limit.period`, the requester's mirror `limit.period` plus its margin).
    pub(crate) fn new(limit: ByteRateLimit, refill_over: Duration, now: Instant) -> Self {
        let capacity = limit.burst_bytes.max(1) as f64;
        Self {
            level: capacity,
            capacity,
            refill_per_sec: capacity / refill_over.as_secs_f64().max(f64::EPSILON),
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.level = (self.level + elapsed * self.refill_per_sec).min(self.capacity);
    }

    /// The capacity in bytes.
    pub(crate) fn capacity(&self) -> u64 {
        self.capacity as u64
    }

    /// `bytes` clamped to the capacity: a reservation larger than the bucket would never fit.
    pub(crate) fn clamp(&self, bytes: u64) -> u64 {
        bytes.min(self.capacity())
    }

    /// Whether `bytes` (already clamped) fit now.
    pub(crate) fn fits(&mut self, bytes: u64, now: Instant) -> bool {
        self.refill(now);
        self.level >= bytes as f64
    }

    /// Takes `bytes` if they fit; returns whether they did.
    pub(crate) fn try_reserve(&mut self, bytes: u64, now: Instant) -> bool {
        if !self.fits(bytes, now) {
            return false;
        }
        self.level -= bytes as f64;
        true
    }

    /// Gives `bytes` back (never above the capacity).
    pub(crate) fn refund(&mut self, bytes: u64, now: Instant) {
        self.refill(now);
        self.level = (self.level + bytes as f64).min(self.capacity);
    }

    /// How long until `bytes` (already clamped) fit, at least 1 ms when they do not fit now.
    pub(crate) fn time_until(&mut self, bytes: u64, now: Instant) -> Duration {
        self.refill(now);
        let missing = bytes as f64 - self.level;
        if missing <= 0.0 {
            return Duration::ZERO;
        }
        let secs = missing / self.refill_per_sec.max(f64::EPSILON);
        Duration::try_from_secs_f64(secs)
            .unwrap_or(Duration::MAX)
            .max(Duration::from_millis(1))
    }

    /// Halves the capacity and the refill rate (not below `floor` bytes of capacity); the
    /// level is kept within the new capacity.
    pub(crate) fn halve(&mut self, floor: u64, now: Instant) {
        self.refill(now);
        let new_capacity = (self.capacity / 2.0)
            .max(floor.max(1) as f64)
            .min(self.capacity);
        let factor = new_capacity / self.capacity;
        self.capacity = new_capacity;
        self.refill_per_sec *= factor;
        self.level = self.level.min(self.capacity);
    }

    /// Back to `limit` (refilled over `refill_over`), keeping the current level.
    pub(crate) fn restore(&mut self, limit: ByteRateLimit, refill_over: Duration, now: Instant) {
        self.refill(now);
        let fresh = Self::new(limit, refill_over, now);
        self.capacity = fresh.capacity;
        self.refill_per_sec = fresh.refill_per_sec;
        self.level = self.level.min(self.capacity);
    }
}

/// The largest request of `kind` (tests): a full page, a tx list, a batch of 64.
#[cfg(test)]
pub(crate) fn largest_request(kind: ReqRespKind) -> Request {
    use preconfirmation_types::{
        GetCommitmentsByNumberRequest, GetRawTxListRequest, GetRawTxListsRequest, B256,
    };
    match kind {
        ReqRespKind::GetHead => Request::GetHead,
        ReqRespKind::GetCommitmentsByNumber => {
            Request::GetCommitmentsByNumber(GetCommitmentsByNumberRequest {
                max_count: 256,
                ..Default::default()
            })
        }
        ReqRespKind::GetRawTxList => Request::GetRawTxList(GetRawTxListRequest::default()),
        ReqRespKind::GetRawTxLists => Request::GetRawTxLists(
            GetRawTxListsRequest::new(vec![B256::ZERO; 64]).expect("64 hashes fit"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use preconfirmation_types::{
        GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetRawTxListRequest,
        GetRawTxListResponse, GetRawTxListsRequest, GetRawTxListsResponse, PreconfHead,
        SignedCommitment, WireMessage, B256, MAX_TXLIST_BYTES,
    };

    use super::*;
    use crate::CodecError;

    fn page(max_count: u32) -> Request {
        Request::GetCommitmentsByNumber(GetCommitmentsByNumberRequest {
            max_count,
            ..Default::default()
        })
    }

    fn batch(n: usize) -> Request {
        Request::GetRawTxLists(GetRawTxListsRequest::new(vec![B256::ZERO; n]).unwrap())
    }

    #[test]
    fn max_response_bytes_follows_the_request() {
        assert_eq!(max_response_bytes(&Request::GetHead), 64);
        assert_eq!(max_response_bytes(&page(0)), 4);
        assert_eq!(max_response_bytes(&page(1)), 4 + 382);
        assert_eq!(max_response_bytes(&page(256)), 4 + 256 * 382);
        assert_eq!(max_response_bytes(&page(u32::MAX)), 4 + 256 * 382);
        assert_eq!(
            max_response_bytes(&Request::GetRawTxList(GetRawTxListRequest::default())),
            36 + 2 * 1024 * 1024
        );
        assert_eq!(max_response_bytes(&batch(0)), 4);
        assert_eq!(max_response_bytes(&batch(1)), 4 + 4 + 36 + 2 * 1024 * 1024);
        assert_eq!(
            max_response_bytes(&batch(3)),
            4 + 3 * (4 + 36 + 2 * 1024 * 1024)
        );
        assert_eq!(max_response_bytes(&batch(4)), 8 * 1024 * 1024);
        assert_eq!(max_response_bytes(&batch(64)), 8 * 1024 * 1024);
        assert_eq!(
            max_response_bytes(&Request::Invalid(
                ReqRespKind::GetRawTxList,
                CodecError::Decode("x".into())
            )),
            0
        );
        assert!(!ReqRespKind::GetHead.is_byte_budgeted());
        assert!(ReqRespKind::ALL
            .iter()
            .filter(|k| **k != ReqRespKind::GetHead)
            .all(|k| k.is_byte_budgeted()));
    }

    #[test]
    fn the_largest_responses_fit_their_reservation() {
        let full_page =
            GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 256]).unwrap();
        assert_eq!(
            response_len(&Response::Commitments(full_page)),
            max_response_bytes(&page(256))
        );
        let full_list = GetRawTxListResponse::new(vec![7; MAX_TXLIST_BYTES]).unwrap();
        assert_eq!(
            response_len(&Response::RawTxList(full_list.clone())),
            max_response_bytes(&Request::GetRawTxList(GetRawTxListRequest::default()))
        );
        let three = GetRawTxListsResponse::new(vec![full_list; 3]).unwrap();
        assert_eq!(
            response_len(&Response::RawTxLists(three)),
            max_response_bytes(&batch(3))
        );
    }

    #[test]
    fn response_len_is_the_encoded_length() {
        let responses = [
            Response::Head(PreconfHead::default()),
            Response::Commitments(
                GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 3]).unwrap(),
            ),
            Response::RawTxList(GetRawTxListResponse::new(vec![1; 10]).unwrap()),
            Response::RawTxLists(
                GetRawTxListsResponse::new(vec![
                    GetRawTxListResponse::new(vec![1; 10]).unwrap(),
                    GetRawTxListResponse::default(),
                ])
                .unwrap(),
            ),
        ];
        for r in responses {
            let encoded = match &r {
                Response::Head(x) => x.to_ssz().len(),
                Response::Commitments(x) => x.to_ssz().len(),
                Response::RawTxList(x) => x.to_ssz().len(),
                Response::RawTxLists(x) => x.to_ssz().len(),
            };
            assert_eq!(response_len(&r), encoded as u64, "{:?}", r.kind());
        }
    }

    fn limit(bytes: u64) -> ByteRateLimit {
        ByteRateLimit::new(bytes, Duration::from_secs(10))
    }

    #[test]
    fn byte_bucket_reserves_refunds_and_refills() {
        let t0 = Instant::now();
        let mut b = ByteBucket::new(limit(1000), Duration::from_secs(10), t0);
        assert_eq!(b.capacity(), 1000);
        assert_eq!(b.clamp(5000), 1000);
        assert_eq!(b.clamp(10), 10);
        assert!(b.try_reserve(600, t0));
        assert!(!b.try_reserve(600, t0), "400 left");
        assert!(b.try_reserve(400, t0));
        assert!(!b.fits(1, t0));
        // 100 bytes per second: 600 fit after 6 s.
        assert_eq!(b.time_until(600, t0), Duration::from_secs(6));
        assert!(!b.fits(600, t0 + Duration::from_millis(5_900)));
        assert!(b.fits(600, t0 + Duration::from_secs(6)));
        // Refunds add, capped at the capacity.
        b.refund(300, t0 + Duration::from_secs(6));
        assert!(b.try_reserve(900, t0 + Duration::from_secs(6)));
        b.refund(5_000, t0 + Duration::from_secs(6));
        assert!(!b.try_reserve(1001, t0 + Duration::from_secs(6)));
        assert!(b.try_reserve(1000, t0 + Duration::from_secs(6)));
        assert_eq!(b.time_until(0, t0 + Duration::from_secs(6)), Duration::ZERO);
    }

    #[test]
    fn byte_bucket_halves_and_restores() {
        let t0 = Instant::now();
        let mut b = ByteBucket::new(limit(1000), Duration::from_secs(10), t0);
        b.halve(100, t0);
        assert_eq!(b.capacity(), 500);
        assert!(
            !b.try_reserve(501, t0),
            "level kept within the new capacity"
        );
        assert!(b.try_reserve(500, t0));
        // The refill rate halves with it: 50 bytes per second.
        assert_eq!(b.time_until(100, t0), Duration::from_secs(2));
        b.halve(300, t0);
        assert_eq!(b.capacity(), 300, "not below the floor");
        b.halve(300, t0);
        assert_eq!(b.capacity(), 300);
        b.restore(limit(1000), Duration::from_secs(10), t0);
        assert_eq!(b.capacity(), 1000);
        assert_eq!(b.time_until(100, t0), Duration::from_secs(1), "level kept");
    }
}
