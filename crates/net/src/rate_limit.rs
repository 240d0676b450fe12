//! Per-peer rate limits (§7): a request-count token bucket per peer and req/resp protocol,
//! one response-byte budget per peer shared by the data protocols ([`crate::budget`]), and a
//! message and a byte bucket per peer and gossip topic.
//!
//! The limiter knows buckets only — not scores, bans, connections or in-flight requests,
//! which the peer manager ([`crate::peer_manager`]) keeps and which asks it (the way
//! Lighthouse keeps its RPC rate limiter apart from its peer manager). A peer's buckets are
//! created on its first message or request and dropped with [`RateLimiter::forget`] when it
//! disconnects.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use preconfirmation_types::{GossipTopicKind, ReqRespKind};

use crate::budget::{is_byte_budgeted, ByteBucket};
use crate::config::{GossipRateLimitConfig, RateLimit, RateLimitConfig};
use crate::peer_manager::Admission;

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

/// Outcome of a gossip message's rate check ([`PeerManager::admit_gossip`]).
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
}

impl RateLimiter {
    pub(crate) fn new(requests: RateLimitConfig, gossip: GossipRateLimitConfig) -> Self {
        Self {
            requests,
            gossip,
            buckets: HashMap::new(),
            byte_buckets: HashMap::new(),
            gossip_buckets: HashMap::new(),
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
        if is_byte_budgeted(kind) {
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

    /// Drops every bucket of `peer` (it disconnected).
    pub(crate) fn forget(&mut self, peer: PeerId) {
        self.buckets.retain(|(p, _), _| *p != peer);
        self.byte_buckets.remove(&peer);
        self.gossip_buckets.retain(|(p, _), _| *p != peer);
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
}
