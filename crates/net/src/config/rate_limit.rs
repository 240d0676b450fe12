//! Rate limits: per-peer inbound limits of req/resp ([`RateLimitConfig`], the defaults from the
//! req/resp table of `preconfirmation_types`) and gossip ([`GossipRateLimitConfig`]), and the
//! limits we assume of peers when pacing our own requests ([`PolitenessConfig`]) (§7).

use std::time::Duration;

use preconfirmation_types::{
    GossipTopicKind, ReqRespKind, RequestRate, MAX_TXLIST_BYTES, RAW_TXLIST_FIXED_PART_LEN,
    SIGNED_COMMITMENT_SSZ_LEN,
};
use serde::{Deserialize, Serialize};

use super::duration;
#[cfg(doc)]
use super::NetworkConfig;

/// One token bucket: `burst` tokens, refilled continuously at `burst / period`. A request
/// that finds the bucket empty is refused and, beyond [`NetworkConfig::rate_limit_grace`],
/// penalises the requester (§7, §7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// Bucket size: requests allowed in a burst.
    pub burst: u32,
    /// Time to refill a full bucket.
    #[serde(with = "duration")]
    pub period: Duration,
}

impl RateLimit {
    /// `burst` requests, refilled over `period`.
    pub const fn new(burst: u32, period: Duration) -> Self {
        Self { burst, period }
    }
}

/// A byte budget: a token bucket of `burst_bytes` bytes, refilled continuously at
/// `burst_bytes / period` (§7). See [`crate::reqresp::budget`] for how requests draw on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ByteRateLimit {
    /// Bucket size in bytes: response bytes allowed in a burst.
    pub burst_bytes: u64,
    /// Time to refill a full bucket.
    #[serde(with = "duration")]
    pub period: Duration,
}

impl ByteRateLimit {
    /// `burst_bytes` bytes, refilled over `period`.
    pub const fn new(burst_bytes: u64, period: Duration) -> Self {
        Self {
            burst_bytes,
            period,
        }
    }

    /// Whether both figures are positive.
    pub fn is_valid(&self) -> bool {
        self.burst_bytes > 0 && !self.period.is_zero()
    }
}

/// Per-peer inbound limits (§7 "per-peer rate limits … on every req/resp protocol"): one
/// request-count token bucket per peer and protocol, and one response-byte budget per peer
/// shared by the three data protocols ([`crate::reqresp::budget`]). The spec fixes no figures.
///
/// # Why these defaults
///
/// They let one catching-up peer take, from each serving node, about 25 pages of commitments
/// and 51 batches of tx lists per second (§10.3 catch-up), with bursts that cover a day
/// offline (43 200 blocks of 2 s) from two peers, and bound what that costs:
///
/// - **Egress**: every data response draws on [`Self::response_bytes`], 64 MiB per 10 s, so
///   one peer at the limit takes at most 6.4 MiB/s (≈ 54 Mbit/s) sustained and 64 MiB in a
///   burst from a serving node, whatever the mix of protocols; `get_head` adds 8 × 64 bytes
///   per 10 s. 256 full pages per 10 s are 256 × 97 796 B ≈ 2.4 MiB/s, well inside it.
/// - **CPU** (derived from the code path): a page is one redb read transaction with a range
///   read of up to 256 values (≈ 98 KB) plus their SSZ decode and re-encode, ≈ 0.2–0.5 ms, so
///   25.6 pages/s cost ≈ 5–13 ms of CPU per second. A `get_raw_txlists` batch is up to 64
///   point reads plus copying what is served: ≈ 0.3 ms per batch, ≈ 15 ms/s at 51.2
///   batches/s, plus ≈ 15 ms/s for the 6.4 MiB/s the byte budget lets through. One peer at
///   every limit thus costs a serving node ≲ 5 % of one core.
/// - **Measured** (`bench catchup --defaults`, BENCHMARKS.md, serving node column): three
///   serving nodes feeding one catching-up node at its full speed (≈ 25 000 blocks/s) each
///   spent 4–5 % of one core and sent ≈ 5 MiB/s with 256 B tx lists; with 64 KiB tx lists
///   5–9 % and 12 MiB/s over a 9 s catch-up, most of it the 64 MiB burst, after which the byte
///   budget holds each at 6.4 MiB/s.
///
/// Read with `#[serde(default)]`: a config file may set any subset of the protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimitConfig {
    /// `get_head`: 8 per 10 s by default. A peer asks for the head at start-up, perhaps
    /// again to pick a catch-up source; more than one every ~1.25 s sustained is polling.
    pub get_head: RateLimit,
    /// `get_commitments_by_number` (§10.2): 256 per 10 s by default, ≈ 25 pages/s sustained.
    /// A page holds up to `MAX_COMMITMENTS_PER_RESPONSE` (256) commitments, so one burst pages
    /// through 65 536 blocks and the refill stays far ahead of the chain (about 5 blocks per
    /// 10 s), even for a peer that pages with a small `maxCount`. Each page also reserves
    /// `4 + min(maxCount, 256) · 382` bytes of [`Self::response_bytes`].
    pub get_commitments_by_number: RateLimit,
    /// `get_raw_txlist` (§11.2): 512 per 10 s by default. A catching-up peer fetches one tx
    /// list by hash per block it has not seen on gossip, up to 256 per commitments page: the
    /// burst covers two full pages, and the refill (51.2/s) is about 100× the chain's block
    /// rate. Each request reserves `MAX_TXLIST_BYTES` + 36 bytes of
    /// [`Self::response_bytes`], refunded down to what is served; in-flight requests are
    /// capped at [`NetworkConfig::max_concurrent_inbound_per_protocol`].
    pub get_raw_txlist: RateLimit,
    /// `get_raw_txlists` (PROTOCOL-EXT.md, this project's batched fetch): 512 per 10 s by
    /// default, ≈ 51 batches/s, as many as single-hash `get_raw_txlist` requests. One request
    /// asks for up to 64 tx lists, so the burst covers 32 768 blocks (≈ 18 hours of 2 s
    /// blocks, with the pages' 256 × 256) and the refill serves 3 277 tx lists per second from
    /// each peer — tx lists keep pace with pages and with the recover rate of a 2-core node
    /// catching up from 3 peers. A batch costs 64 point reads; the measured CPU of a serving
    /// node at this pace is in BENCHMARKS.md (`bench catchup`, serving node). A response
    /// carries at most `MAX_RAW_TXLISTS_RESPONSE_BYTES` (8 MiB); what bounds egress is
    /// [`Self::response_bytes`], from which each request reserves its largest response.
    pub get_raw_txlists: RateLimit,
    /// Response bytes per peer, shared by `get_commitments_by_number`, `get_raw_txlist` and
    /// `get_raw_txlists` (§7): 64 MiB per 10 s by default (6.4 MiB/s sustained, 64 MiB burst). A
    /// request reserves its largest possible response at admission (clamped to the budget) and is
    /// refused, reason `bytes_exhausted`, when the budget holds less; the unused part is refunded
    /// when the response is sent ([`budget`](crate::reqresp::budget)). The burst holds eight of the
    /// largest `get_raw_txlists` responses, so two in flight never wait on it.
    pub response_bytes: ByteRateLimit,
}

/// The default [`RateLimitConfig::response_bytes`]: 64 MiB per 10 s (§7; the spec fixes no
/// figure).
const DEFAULT_RESPONSE_BYTES: ByteRateLimit =
    ByteRateLimit::new(64 * 1024 * 1024, Duration::from_secs(10));

impl From<RequestRate> for RateLimit {
    fn from(rate: RequestRate) -> Self {
        Self::new(rate.burst, rate.period)
    }
}

impl Default for RateLimitConfig {
    /// Each protocol's default rate from the req/resp table ([`ReqRespKind::default_rate`]),
    /// and 64 MiB of responses per 10 s.
    fn default() -> Self {
        let rate = |kind: ReqRespKind| RateLimit::from(kind.default_rate());
        Self {
            get_head: rate(ReqRespKind::GetHead),
            get_commitments_by_number: rate(ReqRespKind::GetCommitmentsByNumber),
            get_raw_txlist: rate(ReqRespKind::GetRawTxList),
            get_raw_txlists: rate(ReqRespKind::GetRawTxLists),
            response_bytes: DEFAULT_RESPONSE_BYTES,
        }
    }
}

impl RateLimitConfig {
    /// The same limit for every protocol (e.g. tests that keep the limiter out of the way),
    /// and a byte budget that lets each of the `burst` requests carry the largest response
    /// (`burst ×` [`ReqRespKind::LARGEST_RESPONSE_BYTES`], 8 MiB, per `period`).
    pub const fn uniform(burst: u32, period: Duration) -> Self {
        let limit = RateLimit::new(burst, period);
        Self {
            get_head: limit,
            get_commitments_by_number: limit,
            get_raw_txlist: limit,
            get_raw_txlists: limit,
            response_bytes: ByteRateLimit::new(
                (burst as u64).saturating_mul(ReqRespKind::LARGEST_RESPONSE_BYTES as u64),
                period,
            ),
        }
    }

    /// The limit of protocol `kind`.
    pub fn get(&self, kind: ReqRespKind) -> RateLimit {
        match kind {
            ReqRespKind::GetHead => self.get_head,
            ReqRespKind::GetCommitmentsByNumber => self.get_commitments_by_number,
            ReqRespKind::GetRawTxList => self.get_raw_txlist,
            ReqRespKind::GetRawTxLists => self.get_raw_txlists,
        }
    }
}

/// The L2 slot (§7 honest gossip load: one commitment and one tx list per slot).
pub const L2_SLOT: Duration = Duration::from_secs(2);

/// Headroom of the default gossip limits over the honest load, in burst and in rate.
pub const GOSSIP_RATE_HEADROOM: u32 = 8;

/// One topic's per-peer gossip limits: a message-count bucket and a byte bucket, each refilled
/// continuously over its period. A message must fit both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipTopicLimit {
    /// Messages per period.
    pub messages: RateLimit,
    /// Payload bytes per period.
    pub bytes: ByteRateLimit,
}

impl GossipTopicLimit {
    /// The default for messages of at most `max_len` bytes, one per [`L2_SLOT`] when honest:
    /// [`GOSSIP_RATE_HEADROOM`] messages and as many largest messages per slot.
    pub const fn honest_load_times_headroom(max_len: usize) -> Self {
        Self {
            messages: RateLimit::new(GOSSIP_RATE_HEADROOM, L2_SLOT),
            bytes: ByteRateLimit::new(GOSSIP_RATE_HEADROOM as u64 * max_len as u64, L2_SLOT),
        }
    }
}

/// Per-peer gossip limits per topic (§7 "per-peer rate limits on gossip"), counted on the
/// messages each peer delivers to us first (gossipsub drops duplicates before they are
/// counted). The spec fixes no figures.
///
/// # Why these defaults
///
/// An honest network carries one commitment (382 bytes) and one tx list (at most
/// `MAX_TXLIST_BYTES` + 36 bytes) per 2 s L2 slot, and a mesh peer forwards each message to
/// us at most once, so an honest peer sends at most that. Each topic allows
/// [`GOSSIP_RATE_HEADROOM`] (8) times it, as a burst and as a rate: 8 messages per 2 s (4/s)
/// and 8 × 382 bytes per 2 s of commitments, 8 messages and 8 × (2 MiB + 36) ≈ 16 MiB per
/// 2 s of tx lists. A peer over them is ignored message by message and penalised
/// ([`NetworkConfig::rate_limit_grace`], then −1 per message, at most −4 per 10 s, §7.1), so
/// one sustaining it is banned; what one peer can make us validate and forward is bounded by
/// the limits, whatever it sends.
///
/// Read with `#[serde(default)]`: a config file may set either topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GossipRateLimitConfig {
    /// `preconfirmationCommitments` (§2): 8 messages and 3 056 bytes per 2 s by default.
    pub commitments: GossipTopicLimit,
    /// `rawTxLists` (§2): 8 messages and 16 777 504 bytes per 2 s by default.
    pub raw_txlists: GossipTopicLimit,
}

impl Default for GossipRateLimitConfig {
    fn default() -> Self {
        Self {
            commitments: GossipTopicLimit::honest_load_times_headroom(SIGNED_COMMITMENT_SSZ_LEN),
            raw_txlists: GossipTopicLimit::honest_load_times_headroom(
                RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES,
            ),
        }
    }
}

impl GossipRateLimitConfig {
    /// `burst` messages per `period` on every topic, and bytes for as many of the topic's
    /// largest messages: for devnets, benchmarks and tests that produce blocks faster than
    /// one per slot.
    pub const fn uniform(burst: u32, period: Duration) -> Self {
        const fn limit(burst: u32, period: Duration, max_len: usize) -> GossipTopicLimit {
            GossipTopicLimit {
                messages: RateLimit::new(burst, period),
                bytes: ByteRateLimit::new((burst as u64).saturating_mul(max_len as u64), period),
            }
        }
        Self {
            commitments: limit(burst, period, SIGNED_COMMITMENT_SSZ_LEN),
            raw_txlists: limit(burst, period, RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES),
        }
    }

    /// The limits of topic `kind`.
    pub fn get(&self, kind: GossipTopicKind) -> GossipTopicLimit {
        match kind {
            GossipTopicKind::Commitments => self.commitments,
            GossipTopicKind::RawTxLists => self.raw_txlists,
        }
    }
}

/// Outbound pacing (see [`crate::reqresp::self_limiter`]): the limits we assume of each kind of
/// peer, so that we never send a request it would refuse. A peer that does not advertise this
/// project's extensions is assumed to be the deployed reference (PROTOCOL.md "Reference
/// strictness"); a peer that does is assumed to run this project's default inbound limits.
///
/// Read with `#[serde(default)]`: a config file may set any subset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PolitenessConfig {
    /// Requests per protocol per window we send to a strict peer. Default 8, the reference's
    /// limit.
    pub strict_requests_per_window: u32,
    /// The strict peer's rate-limit window. Default 10 s, the reference's.
    #[serde(with = "duration")]
    pub strict_window: Duration,
    /// Unanswered requests per protocol to a strict peer. Default 1: never a second request
    /// before the first is answered.
    pub strict_max_in_flight: usize,
    /// The inbound limits assumed of peers that advertise this project's extensions: by
    /// default this project's own defaults ([`RateLimitConfig::default`]), which other nodes
    /// run. Independent of this node's own `rate_limit`, so raising what we accept never
    /// makes us ask others for more than they accept. Raise it only for a network whose
    /// nodes all raised theirs. Its `response_bytes` is mirrored too: before a data request
    /// we reserve its largest response from our copy of the peer's byte budget, as the peer
    /// will ([`budget`](crate::reqresp::budget)).
    pub extended_rate_limit: RateLimitConfig,
    /// Unanswered requests per protocol to a peer of ours. Default 2, the default
    /// `max_concurrent_inbound_per_protocol`.
    pub extended_max_in_flight: usize,
    /// Added to every window, so jitter between our send and the peer's receive cannot put
    /// one request too many into its window; our copy of a peer's byte budget refills over
    /// its period plus this margin. Default 500 ms.
    #[serde(with = "duration")]
    pub window_margin: Duration,
    /// Floor of a peer's byte budget as we learn it: when a peer of ours refuses a data
    /// request our pacing admitted, we halve the budget we assume of it for the rest of the
    /// connection, never below this (§7). Default 1 MiB (a larger reservation is clamped to
    /// the budget, as the peer clamps it, so requests still go out, one per refill).
    pub learned_min_response_bytes: u64,
    /// Whether the first `strict_window` (plus margin) after the network starts counts as
    /// spent for every strict peer: nothing goes to one until it has passed. The strict
    /// reference bans for the life of its process on the first request over its budget, and
    /// it remembers our peer id across our restart: a node restarted within a window of a
    /// full burst would otherwise send a fresh burst into a window the previous process
    /// filled (PROTOCOL.md "Reference strictness"). Default true; the node turns it off when
    /// its identity key is new (no peer has seen that id).
    pub strict_window_spent_at_start: bool,
}

impl Default for PolitenessConfig {
    fn default() -> Self {
        Self {
            strict_requests_per_window: 8,
            strict_window: Duration::from_secs(10),
            strict_max_in_flight: 1,
            extended_rate_limit: RateLimitConfig::default(),
            extended_max_in_flight: 2,
            window_margin: Duration::from_millis(500),
            learned_min_response_bytes: 1024 * 1024,
            strict_window_spent_at_start: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::NetworkConfig;
    use crate::error::NetError;

    #[test]
    fn rate_limits_are_per_protocol_and_partially_configurable() {
        let c: NetworkConfig = serde_json::from_str(
            r#"{"rate_limit": {"get_raw_txlist": {"burst": 2000, "period": "5s"}}}"#,
        )
        .unwrap();
        assert_eq!(
            c.rate_limit.get_raw_txlist,
            RateLimit::new(2000, Duration::from_secs(5))
        );
        assert_eq!(
            c.rate_limit.get_head,
            RateLimitConfig::default().get_head,
            "unset protocols keep their default"
        );
        c.validate().unwrap();
        let u = RateLimitConfig::uniform(1_000, Duration::from_secs(1));
        for kind in ReqRespKind::ALL {
            assert_eq!(u.get(kind), RateLimit::new(1_000, Duration::from_secs(1)));
        }
    }

    #[test]
    fn byte_budget_and_grace_have_defaults_and_must_be_positive() {
        let c = NetworkConfig::default();
        let d = c.rate_limit;
        assert_eq!(d.get_head, RateLimit::new(8, Duration::from_secs(10)));
        assert_eq!(
            d.get_commitments_by_number,
            RateLimit::new(256, Duration::from_secs(10))
        );
        assert_eq!(
            d.get_raw_txlist,
            RateLimit::new(512, Duration::from_secs(10))
        );
        assert_eq!(
            d.get_raw_txlists,
            RateLimit::new(512, Duration::from_secs(10))
        );
        assert_eq!(
            d.response_bytes,
            ByteRateLimit::new(64 * 1024 * 1024, Duration::from_secs(10))
        );
        assert_eq!(
            c.politeness.extended_rate_limit, d,
            "peers of ours run ours"
        );
        assert_eq!(c.rate_limit_grace, 1);
        assert_eq!(c.rate_limit_grace_window, Duration::from_secs(10));
        assert_eq!(c.politeness.learned_min_response_bytes, 1024 * 1024);
        let u = RateLimitConfig::uniform(3, Duration::from_secs(2));
        assert_eq!(
            u.response_bytes,
            ByteRateLimit::new(3 * 8 * 1024 * 1024, Duration::from_secs(2)),
            "every request may carry the largest response"
        );
        let c: NetworkConfig = serde_json::from_str(
            r#"{"rate_limit": {"response_bytes": {"burst_bytes": 1000, "period": "2s"}},
                "rate_limit_grace": 0}"#,
        )
        .unwrap();
        assert_eq!(
            c.rate_limit.response_bytes,
            ByteRateLimit::new(1000, Duration::from_secs(2))
        );
        assert_eq!(c.rate_limit_grace, 0);
        assert_eq!(c.rate_limit.get_head, d.get_head);
        c.validate().unwrap();
        let mut bad = Vec::new();
        for f in [
            |c: &mut NetworkConfig| c.rate_limit.response_bytes.burst_bytes = 0,
            |c: &mut NetworkConfig| c.rate_limit.response_bytes.period = Duration::ZERO,
            |c: &mut NetworkConfig| c.rate_limit_grace_window = Duration::ZERO,
            |c: &mut NetworkConfig| c.politeness.extended_rate_limit.response_bytes.burst_bytes = 0,
            |c: &mut NetworkConfig| c.politeness.learned_min_response_bytes = 0,
        ] {
            let mut c = NetworkConfig::default();
            f(&mut c);
            bad.push(c.validate());
        }
        assert!(
            bad.iter().all(|r| matches!(r, Err(NetError::Config(_)))),
            "{bad:?}"
        );
        assert!(matches!(
            &bad[0],
            Err(NetError::Config(msg)) if msg.contains("rate_limit.response_bytes")
        ));
    }

    #[test]
    fn zero_rate_limits_are_refused_naming_the_key() {
        let mut c = NetworkConfig::default();
        c.rate_limit.get_commitments_by_number.burst = 0;
        match c.validate() {
            Err(NetError::Config(msg)) => {
                assert!(
                    msg.contains("rate_limit.get_commitments_by_number"),
                    "{msg}"
                )
            }
            other => panic!("expected a config error, got {other:?}"),
        }
        let mut c = NetworkConfig::default();
        c.rate_limit.get_raw_txlist.period = Duration::ZERO;
        match c.validate() {
            Err(NetError::Config(msg)) => {
                assert!(msg.contains("rate_limit.get_raw_txlist"), "{msg}")
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn gossip_rate_limits_are_eight_times_the_honest_load() {
        let d = GossipRateLimitConfig::default();
        for l in [d.commitments, d.raw_txlists] {
            assert_eq!(l.messages, RateLimit::new(8, Duration::from_secs(2)));
            assert_eq!(l.bytes.period, Duration::from_secs(2));
        }
        assert_eq!(d.commitments.bytes.burst_bytes, 8 * 382);
        assert_eq!(d.raw_txlists.bytes.burst_bytes, 8 * (2 * 1024 * 1024 + 36));
        let c: NetworkConfig = serde_json::from_str(
            r#"{"gossip_rate_limit": {"raw_txlists": {"messages": {"burst": 2, "period": "1s"},
                "bytes": {"burst_bytes": 10, "period": "1s"}}}}"#,
        )
        .unwrap();
        assert_eq!(c.gossip_rate_limit.raw_txlists.bytes.burst_bytes, 10);
        assert_eq!(c.gossip_rate_limit.commitments, d.commitments);
        c.validate().unwrap();
        let mut bad = NetworkConfig::default();
        bad.gossip_rate_limit.commitments.bytes.burst_bytes = 0;
        assert!(
            matches!(bad.validate(), Err(NetError::Config(m)) if m.contains("gossip_rate_limit.commitments"))
        );
    }
}
