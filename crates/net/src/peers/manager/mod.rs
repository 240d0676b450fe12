//! Peer bookkeeping: application scores from the SDK's verdicts (§7.1, [`AppScore`]), bans,
//! inbound req/resp concurrency (§7), the grace of a peer's first refusal, and — in `dial` —
//! connections and dial targets (static peers with backoff, peers that refused us). The rate
//! limits themselves (request, response-byte and gossip buckets) live in
//! [`crate::reqresp::rate_limiter`]; this manager asks it.
//!
//! Inbound admission ([`PeerManager::admit`]) checks, in order: the peer's in-flight requests
//! of the protocol, its request-count bucket of the protocol, and — for the data protocols —
//! its response-byte bucket, from which it reserves the request's largest response
//! ([`crate::reqresp::budget`]). Nothing is taken unless everything fits. The reservation is
//! refunded down to the response's length when the response is sent
//! ([`PeerManager::response_sent`]), in full when none is ([`PeerManager::inbound_done`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::request_response::InboundRequestId;
use libp2p::PeerId;
use preconfirmation_types::ReqRespKind;

use crate::config::{NetworkConfig, ScoringConfig};
use crate::peers::score::AppScore;
use crate::reqresp::rate_limiter::{Admission, RateLimiter};

mod dial;

pub(crate) use dial::peer_of;
use dial::{Refuser, StaticPeer};

/// The penalty reason of a catch-up page that fails validation here (a bad signature, a signer
/// the local schedule does not elect, a broken link, a gap): a disagreement over history, which
/// a static peer is never banned for ([`PeerManager::drop_instead`]).
pub const CATCHUP_DISAGREEMENT_REASON: &str = "catchup_invalid_commitment";

/// An admitted inbound request: whose, which protocol, and the response bytes still reserved
/// for it.
#[derive(Debug, Clone, Copy)]
struct InboundSlot {
    peer: PeerId,
    kind: ReqRespKind,
    reserved: u64,
}

/// A peer's refusals inside the current grace window.
#[derive(Debug, Clone, Copy)]
struct RefusalWindow {
    start: Instant,
    count: u32,
}

/// Entries in each of the peer manager's per-peer maps ([`PeerManager::map_sizes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerManagerSizes {
    /// App scores (kept after a disconnect until they decay to 0).
    pub app_scores: usize,
    /// Inbound request-rate buckets, per peer and protocol.
    pub request_buckets: usize,
    /// Inbound response-byte budgets.
    pub byte_buckets: usize,
    /// Gossip rate buckets, per peer and topic.
    pub gossip_buckets: usize,
    /// Disconnected peers whose rate-limit buckets are kept until they would have refilled.
    pub departed_rate_limited: usize,
    /// Inbound requests in flight (counts per peer and protocol, and one per request).
    pub inflight: usize,
    /// Refusal grace windows (kept until the window is over).
    pub refusal_windows: usize,
    /// Peers below the ban threshold, waiting out `ban_sustain`.
    pub below_ban_threshold: usize,
    /// Bans (kept until they expire).
    pub banned: usize,
    /// Connected, outbound and dialling sets.
    pub connected: usize,
}

impl PeerManagerSizes {
    /// Entries in all maps together.
    pub fn total(&self) -> usize {
        self.app_scores
            + self.request_buckets
            + self.byte_buckets
            + self.gossip_buckets
            + self.departed_rate_limited
            + self.inflight
            + self.refusal_windows
            + self.below_ban_threshold
            + self.banned
            + self.connected
    }
}

/// All per-peer state the driver keeps besides libp2p's own.
///
/// `I` identifies inbound requests (libp2p's `InboundRequestId`; tests use integers).
#[derive(Debug)]
pub(crate) struct PeerManager<I = InboundRequestId> {
    scoring: ScoringConfig,
    max_concurrent: usize,
    ban_sustain: Duration,
    target_peers: usize,
    max_outbound: usize,
    static_backoff: Duration,
    static_max_backoff: Duration,
    stable_connection: Duration,
    refused_max_backoff: Duration,
    /// When each connected peer's connection was established.
    connected_since: HashMap<PeerId, Instant>,
    /// Peers whose last connections ended soon after they began (they refused us): not
    /// dialled before `next_dial`; at most `max_refusers`, the longest-waiting dropped.
    refusers: HashMap<PeerId, Refuser>,
    max_refusers: usize,
    app: HashMap<PeerId, AppScore>,
    /// Request, response-byte and gossip buckets of every peer.
    limiter: RateLimiter,
    inflight: HashMap<(PeerId, ReqRespKind), usize>,
    inbound: HashMap<I, InboundSlot>,
    grace: u32,
    grace_window: Duration,
    refusals: HashMap<PeerId, RefusalWindow>,
    below_since: HashMap<PeerId, Instant>,
    banned: HashMap<PeerId, Instant>,
    connected: HashSet<PeerId>,
    /// The connected peers we dialled (they hold outbound slots).
    outbound: HashSet<PeerId>,
    dialing: HashSet<PeerId>,
    statics: Vec<StaticPeer>,
    /// Static peers being disconnected instead of penalised ([`Self::drop_instead`]), until
    /// their connection is gone; they are then redialled after the refusal backoff.
    dropping: HashSet<PeerId>,
}

impl<I: Copy + Eq + std::hash::Hash> PeerManager<I> {
    pub(crate) fn new(cfg: &NetworkConfig, now: Instant) -> Self {
        Self {
            scoring: cfg.scoring.clone(),
            max_concurrent: cfg.max_concurrent_inbound_per_protocol,
            ban_sustain: cfg.ban_sustain,
            target_peers: cfg.target_peers as usize,
            max_outbound: cfg.max_outbound_peers as usize,
            static_backoff: cfg.static_peer_backoff,
            static_max_backoff: cfg.static_peer_max_backoff,
            stable_connection: cfg.stable_connection,
            refused_max_backoff: cfg.refused_peer_max_backoff,
            connected_since: HashMap::new(),
            refusers: HashMap::new(),
            max_refusers: cfg.remembered_departed_peers,
            app: HashMap::new(),
            limiter: RateLimiter::new(
                cfg.rate_limit,
                cfg.gossip_rate_limit,
                cfg.remembered_departed_peers,
            ),
            inflight: HashMap::new(),
            inbound: HashMap::new(),
            grace: cfg.rate_limit_grace,
            grace_window: cfg.rate_limit_grace_window,
            refusals: HashMap::new(),
            below_since: HashMap::new(),
            banned: HashMap::new(),
            connected: HashSet::new(),
            outbound: HashSet::new(),
            dialing: HashSet::new(),
            dropping: HashSet::new(),
            statics: cfg
                .static_peers
                .iter()
                .map(|addr| StaticPeer::new(addr, cfg.static_peer_backoff, now))
                .collect(),
        }
    }

    /// Entries in each per-peer map: for tests and operators that check a peer's state goes
    /// with it.
    pub(crate) fn map_sizes(&self) -> PeerManagerSizes {
        PeerManagerSizes {
            app_scores: self.app.len(),
            request_buckets: self.limiter.request_buckets(),
            byte_buckets: self.limiter.byte_buckets(),
            gossip_buckets: self.limiter.gossip_buckets(),
            departed_rate_limited: self.limiter.departed_peers(),
            inflight: self.inflight.len() + self.inbound.len(),
            refusal_windows: self.refusals.len(),
            below_ban_threshold: self.below_since.len(),
            banned: self.banned.len(),
            connected: self.connected.len() + self.outbound.len() + self.dialing.len(),
        }
    }

    // ---- app score -------------------------------------------------------------------------

    /// Penalises `peer`; returns its new app score if the penalty counted.
    pub(crate) fn penalize(&mut self, peer: PeerId, now: Instant) -> Option<f64> {
        let s = self.app.entry(peer).or_insert_with(|| AppScore::new(now));
        s.penalize(&self.scoring, now).then(|| s.value())
    }

    /// Rewards `peer`; returns its new app score.
    pub(crate) fn reward(&mut self, peer: PeerId, now: Instant) -> f64 {
        let s = self.app.entry(peer).or_insert_with(|| AppScore::new(now));
        s.reward(&self.scoring);
        s.value()
    }

    /// The current app score of `peer` (0 when unknown).
    pub(crate) fn app_score(&self, peer: &PeerId) -> f64 {
        self.app.get(peer).map_or(0.0, AppScore::value)
    }

    /// Decays every app score; returns the scores to push to gossipsub.
    pub(crate) fn decay_app_scores(&mut self, now: Instant) -> Vec<(PeerId, f64)> {
        let connected = &self.connected;
        let scoring = &self.scoring;
        self.app.retain(|peer, s| {
            s.decay(scoring, now);
            s.value() != 0.0 || connected.contains(peer)
        });
        self.app.iter().map(|(p, s)| (*p, s.value())).collect()
    }

    // ---- bans ------------------------------------------------------------------------------

    /// Feeds the current total scores; returns the peers whose score stayed below the ban
    /// threshold for longer than `ban_sustain`.
    pub(crate) fn peers_to_ban(
        &mut self,
        scores: impl IntoIterator<Item = (PeerId, f64)>,
        now: Instant,
    ) -> Vec<PeerId> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (peer, score) in scores {
            seen.insert(peer);
            if score < self.scoring.ban_threshold {
                let since = *self.below_since.entry(peer).or_insert(now);
                if now.saturating_duration_since(since) > self.ban_sustain
                    && !self.banned.contains_key(&peer)
                {
                    out.push(peer);
                }
            } else {
                self.below_since.remove(&peer);
            }
        }
        self.below_since.retain(|p, _| seen.contains(p));
        out
    }

    /// Records a ban until `until`.
    pub(crate) fn ban(&mut self, peer: PeerId, until: Instant) {
        self.banned.insert(peer, until);
        self.below_since.remove(&peer);
        self.dialing.remove(&peer);
    }

    pub(crate) fn is_banned(&self, peer: &PeerId) -> bool {
        self.banned.contains_key(peer)
    }

    /// Removes and returns the bans that have expired; their app score starts afresh.
    pub(crate) fn expired_bans(&mut self, now: Instant) -> Vec<PeerId> {
        let expired: Vec<PeerId> = self
            .banned
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(p, _)| *p)
            .collect();
        for p in &expired {
            self.banned.remove(p);
            self.app.remove(p);
        }
        expired
    }

    /// Drops the rate-limit buckets of peers gone long enough for them to have refilled.
    pub(crate) fn forget_departed(&mut self, now: Instant) {
        self.limiter.forget_departed(now);
    }

    // ---- gossip ----------------------------------------------------------------------------

    /// The per-peer rate limits, which gossip is admitted by directly
    /// ([`RateLimiter::admit_gossip`]); inbound requests go through [`Self::admit`], which also
    /// holds their in-flight slot.
    pub(crate) fn rate_limiter(&mut self) -> &mut RateLimiter {
        &mut self.limiter
    }

    // ---- inbound requests ------------------------------------------------------------------

    /// Admission control of an inbound request that may get a response of up to `max_response`
    /// bytes ([`crate::reqresp::budget::max_response_bytes`]); on `Allow` the slot is taken until
    /// [`Self::inbound_done`] is called with `id`, and for the data protocols `max_response`
    /// (clamped to the byte bucket's capacity) is reserved until [`Self::response_sent`] or
    /// [`Self::inbound_done`]. A refusal takes nothing.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        kind: ReqRespKind,
        id: I,
        max_response: u64,
        now: Instant,
    ) -> Admission {
        let inflight = self.inflight.get(&(peer, kind)).copied().unwrap_or(0);
        if inflight >= self.max_concurrent {
            return Admission::TooManyConcurrent;
        }
        let reserved = match self.limiter.admit_request(peer, kind, max_response, now) {
            Ok(reserved) => reserved,
            Err(refusal) => return refusal,
        };
        *self.inflight.entry((peer, kind)).or_insert(0) += 1;
        self.inbound.insert(
            id,
            InboundSlot {
                peer,
                kind,
                reserved,
            },
        );
        Admission::Allow
    }

    /// The response to `id`, `len` SSZ bytes, was handed to libp2p: refunds what was reserved
    /// beyond `len` ([`crate::reqresp::budget`]). The slot stays taken until
    /// [`Self::inbound_done`].
    pub(crate) fn response_sent(&mut self, id: I, len: u64, now: Instant) {
        if let Some(slot) = self.inbound.get_mut(&id) {
            let refund = slot.reserved.saturating_sub(len);
            slot.reserved = 0;
            self.limiter.refund(slot.peer, refund, now);
        }
    }

    /// Frees the slot of an admitted inbound request (answered, failed or timed out) and
    /// refunds whatever is still reserved for it: in full if no response was sent.
    pub(crate) fn inbound_done(&mut self, id: I, now: Instant) {
        if let Some(slot) = self.inbound.remove(&id) {
            self.limiter.refund(slot.peer, slot.reserved, now);
            let key = (slot.peer, slot.kind);
            if let Some(n) = self.inflight.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.inflight.remove(&key);
                }
            }
        }
    }

    /// Records a refusal of `peer` (any [`Admission`] but `Allow`) and says whether it is
    /// penalised: the first [`NetworkConfig::rate_limit_grace`] refusals inside a
    /// [`NetworkConfig::rate_limit_grace_window`] (counted from the first of them) are not.
    pub(crate) fn refusal_penalised(&mut self, peer: PeerId, now: Instant) -> bool {
        let window = self.grace_window;
        let w = self.refusals.entry(peer).or_insert(RefusalWindow {
            start: now,
            count: 0,
        });
        if now.saturating_duration_since(w.start) >= window {
            *w = RefusalWindow {
                start: now,
                count: 0,
            };
        }
        w.count = w.count.saturating_add(1);
        w.count > self.grace
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use preconfirmation_types::GossipTopicKind;

    use crate::config::{RateLimit, RateLimitConfig};
    use crate::reqresp::budget::{largest_request, max_response_bytes};
    use crate::reqresp::rate_limiter::GossipAdmission;

    fn largest(kind: ReqRespKind) -> u64 {
        max_response_bytes(&largest_request(kind))
    }

    /// A manager of `cfg` (inbound requests identified by integers), and the instant it
    /// started at.
    pub(super) fn manager(cfg: &NetworkConfig) -> (PeerManager<u64>, Instant) {
        let t0 = Instant::now();
        (PeerManager::new(cfg, t0), t0)
    }

    #[test]
    fn gossip_is_limited_per_peer_and_topic_in_messages_and_bytes() {
        use crate::config::{ByteRateLimit, GossipTopicLimit};
        let mut cfg = NetworkConfig::default();
        cfg.gossip_rate_limit.raw_txlists = GossipTopicLimit {
            messages: RateLimit::new(3, Duration::from_secs(10)),
            bytes: ByteRateLimit::new(1000, Duration::from_secs(10)),
        };
        let (mut pm, t0) = manager(&cfg);
        let gossip = |pm: &mut PeerManager<u64>, peer, kind, len, now| {
            pm.rate_limiter().admit_gossip(peer, kind, len, now)
        };
        let (a, b) = (PeerId::random(), PeerId::random());
        let tx = GossipTopicKind::RawTxLists;
        // Bytes: 600 fit, 600 more do not (and take nothing); 400 still do.
        assert_eq!(gossip(&mut pm, a, tx, 600, t0), GossipAdmission::Allow);
        assert_eq!(
            gossip(&mut pm, a, tx, 600, t0),
            GossipAdmission::TooManyBytes
        );
        assert_eq!(gossip(&mut pm, a, tx, 400, t0), GossipAdmission::Allow);
        // Messages: the third is the last of the burst.
        assert_eq!(gossip(&mut pm, a, tx, 0, t0), GossipAdmission::Allow);
        assert_eq!(
            gossip(&mut pm, a, tx, 0, t0),
            GossipAdmission::TooManyMessages
        );
        // Another peer, another topic: their own buckets.
        assert_eq!(gossip(&mut pm, b, tx, 1000, t0), GossipAdmission::Allow);
        assert_eq!(
            gossip(&mut pm, a, GossipTopicKind::Commitments, 382, t0),
            GossipAdmission::Allow
        );
        // Refill: a third of the period gives back one message and a third of the bytes.
        let later = t0 + Duration::from_millis(3_400);
        assert_eq!(gossip(&mut pm, a, tx, 300, later), GossipAdmission::Allow);
        assert_eq!(
            gossip(&mut pm, a, tx, 0, later),
            GossipAdmission::TooManyMessages
        );
        // A disconnect keeps the peer's buckets: a reconnect resumes them ...
        pm.on_disconnected(a, later);
        pm.on_connected(a, &"/ip4/127.0.0.1/tcp/1".parse().unwrap(), false, later);
        assert_eq!(
            gossip(&mut pm, a, tx, 0, later),
            GossipAdmission::TooManyMessages,
            "no fresh burst for a reconnect"
        );
        // ... until they would have refilled: then they go, and new ones start full.
        pm.on_disconnected(a, later);
        let before = pm.map_sizes().gossip_buckets;
        pm.forget_departed(later + Duration::from_secs(10));
        assert!(
            pm.map_sizes().gossip_buckets < before,
            "a's buckets are gone"
        );
        assert_eq!(
            gossip(&mut pm, a, tx, 0, later + Duration::from_secs(10)),
            GossipAdmission::Allow
        );
        assert_eq!(GossipAdmission::TooManyBytes.label(), "bytes");
    }

    #[test]
    fn admission_limits_concurrency_and_rate() {
        let (mut pm, t0) = manager(&NetworkConfig::default());
        let peer = PeerId::random();
        let k = ReqRespKind::GetHead;
        let ids: Vec<u64> = (0..20).collect();
        assert_eq!(pm.admit(peer, k, ids[0], 64, t0), Admission::Allow);
        assert_eq!(pm.admit(peer, k, ids[1], 64, t0), Admission::Allow);
        assert_eq!(
            pm.admit(peer, k, ids[2], 64, t0),
            Admission::TooManyConcurrent
        );
        // Another protocol has its own slots.
        assert_eq!(
            pm.admit(
                peer,
                ReqRespKind::GetRawTxList,
                ids[3],
                largest(ReqRespKind::GetRawTxList),
                t0
            ),
            Admission::Allow
        );
        let mut allowed = 2;
        for id in &ids[4..] {
            pm.inbound_done(ids[0], t0);
            pm.inbound_done(ids[1], t0);
            match pm.admit(peer, k, *id, 64, t0) {
                Admission::Allow => {
                    allowed += 1;
                    pm.inbound_done(*id, t0);
                }
                Admission::RateLimited => break,
                other => panic!("slots were freed: {other:?}"),
            }
        }
        assert_eq!(allowed, 8, "burst of 8");
    }

    #[test]
    fn a_finished_request_frees_exactly_its_own_slot() {
        let (mut pm, t0) = manager(&NetworkConfig::default());
        let peer = PeerId::random();
        let k = ReqRespKind::GetHead;
        assert_eq!(pm.admit(peer, k, 1, 64, t0), Admission::Allow);
        assert_eq!(pm.admit(peer, k, 2, 64, t0), Admission::Allow);
        pm.inbound_done(1, t0);
        pm.inbound_done(1, t0);
        pm.inbound_done(99, t0);
        // One still in flight: one more fits, not two.
        assert_eq!(pm.admit(peer, k, 3, 64, t0), Admission::Allow);
        assert_eq!(pm.admit(peer, k, 4, 64, t0), Admission::TooManyConcurrent);
        pm.inbound_done(2, t0);
        pm.inbound_done(3, t0);
        assert!(pm.inflight.is_empty(), "no empty entries are kept");
    }

    #[test]
    fn a_disconnect_keeps_that_peers_buckets_until_they_refill() {
        let (mut pm, t0) = manager(&NetworkConfig::default());
        let (gone, stays) = (PeerId::random(), PeerId::random());
        let k = ReqRespKind::GetHead;
        let mut id = 0;
        for peer in [gone, stays] {
            assert_eq!(sequential_burst(&mut pm, peer, k, &mut id, 20, t0), 8);
        }
        pm.on_disconnected(gone, t0);
        assert_eq!(pm.map_sizes().departed_rate_limited, 1);
        assert_eq!(
            pm.admit(gone, k, 100, 64, t0),
            Admission::RateLimited,
            "redialling buys no fresh burst"
        );
        // Its buckets go once they would have refilled (10 s); the other peer's stay.
        let later = t0 + Duration::from_secs(10);
        pm.forget_departed(later);
        assert_eq!(pm.map_sizes().departed_rate_limited, 0);
        assert_eq!(pm.map_sizes().request_buckets, 1);
        assert_eq!(pm.admit(gone, k, 101, 64, later), Admission::Allow);
    }

    #[test]
    fn map_sizes_total_is_the_sum_of_every_map() {
        let sizes = PeerManagerSizes {
            app_scores: 1,
            request_buckets: 2,
            byte_buckets: 4,
            gossip_buckets: 8,
            departed_rate_limited: 16,
            inflight: 32,
            refusal_windows: 64,
            below_ban_threshold: 128,
            banned: 256,
            connected: 512,
        };
        assert_eq!(sizes.total(), 1023);
    }

    /// Admits `n` sequential requests of `kind` at `now` (each answered before the next, so
    /// only the token bucket limits); returns how many were allowed before the first refusal.
    fn sequential_burst(
        pm: &mut PeerManager<u64>,
        peer: PeerId,
        kind: ReqRespKind,
        next_id: &mut u64,
        n: usize,
        now: Instant,
    ) -> usize {
        let mut allowed = 0;
        for _ in 0..n {
            *next_id += 1;
            match pm.admit(peer, kind, *next_id, largest(kind), now) {
                Admission::Allow => {
                    allowed += 1;
                    pm.inbound_done(*next_id, now);
                }
                Admission::RateLimited => break,
                other => panic!("every slot was freed and every reservation refunded: {other:?}"),
            }
        }
        allowed
    }

    #[test]
    fn each_protocol_has_its_own_rate_limit() {
        let cfg = NetworkConfig::default();
        let limits = cfg.rate_limit;
        assert!(limits.get_raw_txlist.burst > limits.get_head.burst);
        let (mut pm, t0) = manager(&cfg);
        let peer = PeerId::random();
        let mut id = 0;
        // A catch-up burst of tx-list fetches far beyond the get_head limit is served, up to
        // get_raw_txlist's own burst and no further.
        for kind in ReqRespKind::ALL {
            let burst = limits.get(kind).burst as usize;
            assert_eq!(
                sequential_burst(&mut pm, peer, kind, &mut id, burst + 10, t0),
                burst,
                "{kind:?}"
            );
            id += 1;
            assert_eq!(
                pm.admit(peer, kind, id, largest(kind), t0),
                Admission::RateLimited,
                "{kind:?} over its own limit"
            );
        }
        // Another peer's buckets are untouched.
        let other = PeerId::random();
        assert_eq!(
            sequential_burst(&mut pm, other, ReqRespKind::GetRawTxList, &mut id, 600, t0),
            limits.get_raw_txlist.burst as usize
        );
    }

    #[test]
    fn uniform_rate_limit_applies_to_every_protocol() {
        let cfg = NetworkConfig {
            rate_limit: RateLimitConfig::uniform(3, Duration::from_secs(10)),
            ..Default::default()
        };
        let (mut pm, t0) = manager(&cfg);
        let peer = PeerId::random();
        let mut id = 0;
        for kind in ReqRespKind::ALL {
            assert_eq!(sequential_burst(&mut pm, peer, kind, &mut id, 10, t0), 3);
        }
    }

    #[test]
    fn byte_budget_reserves_the_largest_response_and_refunds_the_rest() {
        const MIB: u64 = 1024 * 1024;
        let mut cfg = NetworkConfig::default();
        cfg.rate_limit.response_bytes =
            crate::config::ByteRateLimit::new(5 * MIB, Duration::from_secs(10));
        cfg.rate_limit.get_raw_txlists = RateLimit::new(1, Duration::from_secs(3600));
        cfg.max_concurrent_inbound_per_protocol = 64;
        let (mut pm, t0) = manager(&cfg);
        let peer = PeerId::random();
        let list = ReqRespKind::GetRawTxList;
        let batch = ReqRespKind::GetRawTxLists;
        let r = largest(list);
        // Two tx lists in flight reserve 2 × (2 MiB + 36): the 8 MiB batch, clamped to the
        // 5 MiB budget, no longer fits.
        assert_eq!(pm.admit(peer, list, 1, r, t0), Admission::Allow);
        assert_eq!(pm.admit(peer, list, 2, r, t0), Admission::Allow);
        assert_eq!(
            pm.admit(peer, batch, 3, largest(batch), t0),
            Admission::BytesExhausted
        );
        // The budget is shared: of the 1 MiB − 72 left, ten full pages (97 796 bytes each)
        // can be reserved at once, not eleven; unanswered, they are refunded in full.
        let page = ReqRespKind::GetCommitmentsByNumber;
        let pages = (100..120)
            .take_while(|id| pm.admit(peer, page, *id, largest(page), t0) == Admission::Allow)
            .count();
        assert_eq!(pages, 10);
        for id in 100..110 {
            pm.inbound_done(id, t0);
        }
        assert_eq!(
            pm.admit(peer, page, 111, largest(page), t0),
            Admission::Allow
        );
        pm.inbound_done(111, t0);
        // get_head draws nothing.
        assert_eq!(
            pm.admit(peer, ReqRespKind::GetHead, 4, 64, t0),
            Admission::Allow
        );
        // The first list is answered with 1 036 bytes: the rest of its reservation comes back,
        // but the batch still finds less than 5 MiB.
        pm.response_sent(1, 1036, t0);
        pm.inbound_done(1, t0);
        assert_eq!(
            pm.admit(peer, batch, 5, largest(batch), t0),
            Admission::BytesExhausted
        );
        // The second gets no response: refunded in full. 1 036 bytes were served, so the
        // batch fits once they have refilled (0.5 MiB/s: 2 ms), and it finds its request
        // token untouched by the refusals.
        pm.inbound_done(2, t0);
        assert_eq!(
            pm.admit(peer, batch, 6, largest(batch), t0),
            Admission::BytesExhausted
        );
        let t1 = t0 + Duration::from_millis(10);
        assert_eq!(
            pm.admit(peer, batch, 7, largest(batch), t1),
            Admission::Allow
        );
        // Sending twice refunds once; a response longer than its reservation refunds nothing.
        pm.response_sent(7, 5 * MIB + 1, t1);
        pm.response_sent(7, 0, t1);
        pm.inbound_done(7, t1);
        assert_eq!(
            pm.admit(peer, list, 8, r, t1),
            Admission::BytesExhausted,
            "the whole budget was served"
        );
        // Another peer has its own budget; a disconnect does not refill this one's.
        assert_eq!(pm.admit(PeerId::random(), list, 9, r, t1), Admission::Allow);
        pm.on_disconnected(peer, t1);
        assert_eq!(pm.admit(peer, list, 10, r, t1), Admission::BytesExhausted);
    }

    #[test]
    fn first_refusal_in_a_window_is_not_penalised() {
        let cfg = NetworkConfig::default();
        assert_eq!(cfg.rate_limit_grace, 1);
        let (mut pm, t0) = manager(&cfg);
        let peer = PeerId::random();
        assert!(!pm.refusal_penalised(peer, t0), "the first is free");
        assert!(pm.refusal_penalised(peer, t0 + Duration::from_secs(1)));
        assert!(pm.refusal_penalised(peer, t0 + Duration::from_millis(9_999)));
        // Another peer has its own grace.
        assert!(!pm.refusal_penalised(PeerId::random(), t0));
        // A reconnect inside the window buys no fresh grace.
        pm.on_disconnected(peer, t0 + Duration::from_secs(2));
        assert!(pm.refusal_penalised(peer, t0 + Duration::from_secs(3)));
        // The window (10 s from the first refusal) is over: free again, once.
        let t1 = t0 + Duration::from_secs(10);
        assert!(!pm.refusal_penalised(peer, t1));
        assert!(pm.refusal_penalised(peer, t1));
        // Disconnects forget windows that are over.
        pm.on_disconnected(peer, t1 + Duration::from_secs(10));
        assert!(pm.refusals.is_empty());

        for (grace, expected) in [(0, [true, true, true]), (2, [false, false, true])] {
            let cfg = NetworkConfig {
                rate_limit_grace: grace,
                ..Default::default()
            };
            let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
            let got = [0, 1, 2].map(|_| pm.refusal_penalised(peer, t0));
            assert_eq!(got, expected, "grace {grace}");
        }
    }

    #[test]
    fn sustained_low_score_bans_after_the_sustain_time() {
        let cfg = NetworkConfig {
            ban_sustain: Duration::from_secs(30),
            ..Default::default()
        };
        let (mut pm, t0) = manager(&cfg);
        let bad = PeerId::random();
        let good = PeerId::random();
        assert!(pm.peers_to_ban([(bad, -6.0), (good, 1.0)], t0).is_empty());
        assert!(pm
            .peers_to_ban([(bad, -6.0)], t0 + Duration::from_secs(29))
            .is_empty());
        assert_eq!(
            pm.peers_to_ban([(bad, -6.0)], t0 + Duration::from_secs(31)),
            vec![bad]
        );
        // Recovering resets the clock.
        let other = PeerId::random();
        pm.peers_to_ban([(other, -6.0)], t0);
        pm.peers_to_ban([(other, -1.0)], t0 + Duration::from_secs(20));
        assert!(pm
            .peers_to_ban([(other, -6.0)], t0 + Duration::from_secs(40))
            .is_empty());
        pm.ban(bad, t0 + Duration::from_secs(100));
        assert!(pm.is_banned(&bad));
        assert!(pm.expired_bans(t0 + Duration::from_secs(99)).is_empty());
        assert_eq!(pm.expired_bans(t0 + Duration::from_secs(100)), vec![bad]);
    }
}
