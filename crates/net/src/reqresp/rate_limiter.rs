//! The inbound rate limiter (§7 "per-peer rate limits on gossip and on every req/resp
//! protocol"): a request-count token bucket per peer and req/resp protocol (its default rate
//! from the req/resp table), one response-byte budget per peer shared by the data protocols
//! ([`crate::reqresp::budget`]), and a message and a byte bucket per peer and gossip topic,
//! which live and die with the request buckets.
//!
//! The limiter knows buckets only — not scores, bans, connections or in-flight requests,
//! which the peer manager ([`crate::peers::manager`]) keeps and which asks it (the way
//! Lighthouse keeps its RPC rate limiter apart from its peer manager). A peer's buckets are
//! created on its first message or request. When it disconnects they are kept
//! ([`RateLimiter::departed`]) until they would have refilled, at most for
//! `remembered_departed_peers` peers: a peer that redials with the same key resumes where it
//! left, so reconnecting never buys a fresh burst.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use preconfirmation_types::{GossipTopicKind, ReqRespKind};

use crate::config::{GossipRateLimitConfig, RateLimit, RateLimitConfig};
use crate::reqresp::budget::ByteBucket;

/// A token bucket: `burst` tokens, refilled continuously at `burst / period`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    capacity: f64,
    refill_per_sec: f64,
    last: Instant,
}

impl TokenBucket {
    pub(crate) fn new(cfg: RateLimit, now: Instant) -> Self {
        let capacity = f64::from(cfg.burst);
        Self {
            tokens: capacity,
            capacity,
            refill_per_sec: capacity / cfg.period.as_secs_f64().max(f64::EPSILON),
            last: now,
        }
    }

    /// Whether a token is there (after refilling to `now`).
    pub(crate) fn has_token(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        self.tokens >= 1.0
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        if self.has_token(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Outcome of an inbound request admission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve it.
    Allow,
    /// The request-count token bucket is empty.
    RateLimited,
    /// The response-byte bucket holds less than the request's largest response.
    BytesExhausted,
    /// Too many requests of this protocol in flight from this peer.
    TooManyConcurrent,
}

impl Admission {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Admission::Allow => "allow",
            Admission::RateLimited => "rate_limited",
            Admission::BytesExhausted => "bytes_exhausted",
            Admission::TooManyConcurrent => "too_many_concurrent",
        }
    }
}

/// Outcome of a gossip message's rate check ([`crate::peers::manager::PeerManager::admit_gossip`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GossipAdmission {
    /// Within the peer's limits of the topic.
    Allow,
    /// The peer's message bucket of the topic is empty.
    TooManyMessages,
    /// The peer's byte bucket of the topic holds less than the message.
    TooManyBytes,
}

impl GossipAdmission {
    /// The metric label of a refusal.
    pub(crate) fn label(self) -> &'static str {
        match self {
            GossipAdmission::Allow => "allow",
            GossipAdmission::TooManyMessages => "messages",
            GossipAdmission::TooManyBytes => "bytes",
        }
    }
}

/// Every peer's buckets.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    requests: RateLimitConfig,
    gossip: GossipRateLimitConfig,
    /// Per peer and protocol: requests.
    buckets: HashMap<(PeerId, ReqRespKind), TokenBucket>,
    /// One response-byte bucket per peer, shared by the data protocols.
    byte_buckets: HashMap<PeerId, ByteBucket>,
    /// Per peer and topic: gossip messages and bytes.
    gossip_buckets: HashMap<(PeerId, GossipTopicKind), (TokenBucket, ByteBucket)>,
    /// Disconnected peers whose buckets are kept, by when they left.
    departed: HashMap<PeerId, Instant>,
    /// Most entries of `departed`.
    max_departed: usize,
    /// How long a departed peer's buckets are kept: the longest refill period, after which
    /// they are full, as new ones would be.
    keep_departed: Duration,
}

impl RateLimiter {
    pub(crate) fn new(
        requests: RateLimitConfig,
        gossip: GossipRateLimitConfig,
        max_departed: usize,
    ) -> Self {
        let request_periods = ReqRespKind::ALL
            .iter()
            .map(|kind| requests.get(*kind).period)
            .chain([requests.response_bytes.period]);
        let gossip_periods = GossipTopicKind::ALL.into_iter().flat_map(|kind| {
            let limit = gossip.get(kind);
            [limit.messages.period, limit.bytes.period]
        });
        let keep_departed = request_periods
            .chain(gossip_periods)
            .max()
            .unwrap_or_default();
        Self {
            requests,
            gossip,
            buckets: HashMap::new(),
            byte_buckets: HashMap::new(),
            gossip_buckets: HashMap::new(),
            departed: HashMap::new(),
            max_departed,
            keep_departed,
        }
    }

    /// A gossip message of `len` bytes that `peer` delivered first on `kind`'s topic: it must
    /// fit both the message and the byte bucket; only then is it counted.
    pub(crate) fn admit_gossip(
        &mut self,
        peer: PeerId,
        kind: GossipTopicKind,
        len: usize,
        now: Instant,
    ) -> GossipAdmission {
        let limit = self.gossip.get(kind);
        let (messages, bytes) = self.gossip_buckets.entry((peer, kind)).or_insert_with(|| {
            (
                TokenBucket::new(limit.messages, now),
                ByteBucket::new(limit.bytes, limit.bytes.period, now),
            )
        });
        if !messages.has_token(now) {
            return GossipAdmission::TooManyMessages;
        }
        if !bytes.try_reserve(len as u64, now) {
            return GossipAdmission::TooManyBytes;
        }
        messages.try_take(now);
        GossipAdmission::Allow
    }

    /// A request of `kind` from `peer` whose response may be up to `max_response` bytes:
    /// takes a request token and, for the data protocols, reserves `max_response` (clamped
    /// to the byte bucket's capacity) — both or neither. `Ok(reserved bytes)`, or the refusal
    /// ([`Admission::RateLimited`] or [`Admission::BytesExhausted`]).
    pub(crate) fn admit_request(
        &mut self,
        peer: PeerId,
        kind: ReqRespKind,
        max_response: u64,
        now: Instant,
    ) -> Result<u64, Admission> {
        let rate = self.requests.get(kind);
        let bucket = self
            .buckets
            .entry((peer, kind))
            .or_insert_with(|| TokenBucket::new(rate, now));
        if !bucket.has_token(now) {
            return Err(Admission::RateLimited);
        }
        let mut reserved = 0;
        if kind.is_byte_budgeted() {
            let limit = self.requests.response_bytes;
            let bytes = self
                .byte_buckets
                .entry(peer)
                .or_insert_with(|| ByteBucket::new(limit, limit.period, now));
            reserved = bytes.clamp(max_response);
            if !bytes.try_reserve(reserved, now) {
                return Err(Admission::BytesExhausted);
            }
        }
        bucket.try_take(now);
        Ok(reserved)
    }

    /// Gives `bytes` of a reservation back to `peer`'s byte budget.
    pub(crate) fn refund(&mut self, peer: PeerId, bytes: u64, now: Instant) {
        if let Some(bucket) = self.byte_buckets.get_mut(&peer) {
            bucket.refund(bytes, now);
        }
    }

    /// `peer` disconnected at `now`: its buckets are kept until they would have refilled
    /// (so a redial with the same key resumes them), for at most `max_departed` peers; the
    /// buckets of peers gone longer, or beyond that count the longest gone, are dropped.
    pub(crate) fn departed(&mut self, peer: PeerId, now: Instant) {
        self.departed.insert(peer, now);
        let mut dropped: Vec<PeerId> = Vec::new();
        while self.departed.len() > self.max_departed {
            let Some(oldest) = self
                .departed
                .iter()
                .min_by_key(|(_, left)| **left)
                .map(|(p, _)| *p)
            else {
                break;
            };
            self.departed.remove(&oldest);
            dropped.push(oldest);
        }
        self.drop_buckets(dropped);
    }

    /// Drops the buckets of departed peers gone for their longest refill period: they would
    /// be full again, as new ones are (call periodically).
    pub(crate) fn forget_departed(&mut self, now: Instant) {
        let keep = self.keep_departed;
        let mut dropped: Vec<PeerId> = Vec::new();
        self.departed.retain(|p, left| {
            let expired = now.saturating_duration_since(*left) >= keep;
            if expired {
                dropped.push(*p);
            }
            !expired
        });
        self.drop_buckets(dropped);
    }

    fn drop_buckets(&mut self, peers: Vec<PeerId>) {
        if peers.is_empty() {
            return;
        }
        let peers: std::collections::HashSet<PeerId> = peers.into_iter().collect();
        self.buckets.retain(|(p, _), _| !peers.contains(p));
        self.byte_buckets.retain(|p, _| !peers.contains(p));
        self.gossip_buckets.retain(|(p, _), _| !peers.contains(p));
    }

    /// `peer` connected (again): its kept buckets are in use, no longer departed.
    pub(crate) fn returned(&mut self, peer: PeerId) {
        self.departed.remove(&peer);
    }

    /// Departed peers whose buckets are kept.
    pub(crate) fn departed_peers(&self) -> usize {
        self.departed.len()
    }

    /// Request buckets held (per peer and protocol).
    pub(crate) fn request_buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Response-byte budgets held (per peer).
    pub(crate) fn byte_buckets(&self) -> usize {
        self.byte_buckets.len()
    }

    /// Gossip buckets held (per peer and topic).
    pub(crate) fn gossip_buckets(&self) -> usize {
        self.gossip_buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn token_bucket_bursts_then_refills() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(RateLimit::new(8, Duration::from_secs(10)), t0);
        assert!((0..8).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        // 1.25 s refills one token.
        assert!(!b.try_take(t0 + Duration::from_millis(1000)));
        assert!(b.try_take(t0 + Duration::from_millis(1300)));
        assert!(!b.try_take(t0 + Duration::from_millis(1300)));
        // Never more than the burst.
        let later = t0 + Duration::from_secs(3600);
        assert_eq!((0..20).filter(|_| b.try_take(later)).count(), 8);
    }

    fn limiter(max_departed: usize) -> RateLimiter {
        RateLimiter::new(
            RateLimitConfig::default(),
            GossipRateLimitConfig::default(),
            max_departed,
        )
    }

    /// A peer that redials with the same key must not get a full burst again: its buckets are
    /// kept until they would have refilled, so served bytes stay within burst + rate × time
    /// however often the peer reconnects.
    #[test]
    fn a_peer_that_reconnects_resumes_its_empty_buckets() {
        let t0 = Instant::now();
        let mut l = limiter(16);
        let peer = PeerId::random();
        let kind = ReqRespKind::GetHead;
        let burst = RateLimitConfig::default().get_head.burst;
        for _ in 0..burst {
            assert!(l.admit_request(peer, kind, 0, t0).is_ok());
        }
        assert_eq!(
            l.admit_request(peer, kind, 0, t0),
            Err(Admission::RateLimited)
        );
        // A huge response budget drawn down too.
        let bytes = RateLimitConfig::default().response_bytes.burst_bytes;
        assert!(l
            .admit_request(peer, ReqRespKind::GetRawTxLists, bytes, t0)
            .is_ok());
        l.departed(peer, t0);
        l.forget_departed(t0 + Duration::from_secs(1));
        l.returned(peer);
        assert_eq!(
            l.admit_request(peer, kind, 0, t0 + Duration::from_secs(1)),
            Err(Admission::RateLimited),
            "a reconnect buys no fresh burst"
        );
        assert_eq!(
            l.admit_request(
                peer,
                ReqRespKind::GetRawTxLists,
                bytes,
                t0 + Duration::from_secs(1)
            ),
            Err(Admission::BytesExhausted),
            "nor fresh bytes"
        );
        // Gone for the longest period (10 s): fresh buckets, as full as the kept ones would be.
        l.departed(peer, t0 + Duration::from_secs(1));
        l.forget_departed(t0 + Duration::from_secs(11) - Duration::from_millis(1));
        assert_eq!(
            l.departed_peers(),
            1,
            "kept until its buckets have refilled"
        );
        l.forget_departed(t0 + Duration::from_secs(11));
        assert_eq!(l.departed_peers(), 0);
        assert_eq!(
            (l.request_buckets(), l.byte_buckets(), l.gossip_buckets()),
            (0, 0, 0)
        );
    }

    #[test]
    fn departed_peers_are_bounded_longest_gone_first() {
        let t0 = Instant::now();
        let mut l = limiter(3);
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        for (i, p) in peers.iter().enumerate() {
            let t = t0 + Duration::from_millis(i as u64);
            assert!(l.admit_request(*p, ReqRespKind::GetHead, 0, t).is_ok());
            assert_eq!(
                l.admit_gossip(*p, GossipTopicKind::Commitments, 10, t),
                GossipAdmission::Allow
            );
            l.departed(*p, t);
        }
        assert_eq!(l.departed_peers(), 3);
        assert_eq!(l.request_buckets(), 3, "the two longest gone were dropped");
        assert_eq!(l.gossip_buckets(), 3);
        // A peer that came back is no longer departed: its buckets are never swept.
        l.returned(peers[4]);
        l.forget_departed(t0 + Duration::from_secs(60));
        assert_eq!(l.departed_peers(), 0);
        assert_eq!(l.request_buckets(), 1, "the returned peer's bucket stays");
    }

    #[test]
    fn admission_labels_are_the_documented_refusal_reasons() {
        // `metrics::REQRESP` documents these outcome labels; `metrics::REFUSALS_FORGIVEN` uses
        // them as reasons.
        let labels = [
            Admission::Allow,
            Admission::RateLimited,
            Admission::BytesExhausted,
            Admission::TooManyConcurrent,
        ]
        .map(Admission::label);
        assert_eq!(
            labels,
            [
                "allow",
                "rate_limited",
                "bytes_exhausted",
                "too_many_concurrent"
            ]
        );
    }
}
