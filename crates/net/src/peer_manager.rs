//! Peer bookkeeping: application scores from the SDK's verdicts (§7.1), bans, inbound
//! req/resp rate limits and concurrency (§7), and dial targets (static peers with backoff).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::request_response::InboundRequestId;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_types::ReqRespKind;

use crate::config::{NetworkConfig, RateLimit, RateLimitConfig, ScoringConfig};

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

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.refill_per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The application-specific score of one peer (§7.1): −penalty per failure with at most
/// `max_penalties_per_window` per window, +reward per accepted message, multiplicative decay,
/// clamped to `[min, max]`.
#[derive(Debug, Clone)]
pub(crate) struct AppScore {
    score: f64,
    window_start: Instant,
    penalties_in_window: u32,
    last_decay: Instant,
}

impl AppScore {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            score: 0.0,
            window_start: now,
            penalties_in_window: 0,
            last_decay: now,
        }
    }

    pub(crate) fn value(&self) -> f64 {
        self.score
    }

    /// Applies one penalty unless the window's cap is reached; returns whether it counted.
    pub(crate) fn penalize(&mut self, cfg: &ScoringConfig, now: Instant) -> bool {
        if now.saturating_duration_since(self.window_start) >= cfg.app_penalty_window {
            self.window_start = now;
            self.penalties_in_window = 0;
        }
        if self.penalties_in_window >= cfg.app_max_penalties_per_window {
            return false;
        }
        self.penalties_in_window += 1;
        self.score = (self.score - cfg.app_penalty).clamp(cfg.app_score_min, cfg.app_score_max);
        true
    }

    pub(crate) fn reward(&mut self, cfg: &ScoringConfig) {
        self.score = (self.score + cfg.app_reward).clamp(cfg.app_score_min, cfg.app_score_max);
    }

    /// Decays by `app_decay` per `app_decay_interval`, pro rata of the elapsed time.
    pub(crate) fn decay(&mut self, cfg: &ScoringConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_decay);
        self.last_decay = now;
        let intervals =
            elapsed.as_secs_f64() / cfg.app_decay_interval.as_secs_f64().max(f64::EPSILON);
        self.score *= cfg.app_decay.powf(intervals);
        if self.score.abs() < 1e-3 {
            self.score = 0.0;
        }
    }
}

/// Outcome of an inbound request admission check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Serve it.
    Allow,
    /// The token bucket is empty.
    RateLimited,
    /// Too many requests of this protocol in flight from this peer.
    TooManyConcurrent,
}

impl Admission {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Admission::Allow => "allow",
            Admission::RateLimited => "rate_limited",
            Admission::TooManyConcurrent => "too_many_concurrent",
        }
    }
}

#[derive(Debug)]
struct StaticPeer {
    addr: Multiaddr,
    peer: Option<PeerId>,
    connected: bool,
    backoff: Duration,
    next_attempt: Instant,
}

/// All per-peer state the driver keeps besides libp2p's own.
///
/// `I` identifies inbound requests (libp2p's `InboundRequestId`; tests use integers).
#[derive(Debug)]
pub(crate) struct PeerManager<I = InboundRequestId> {
    scoring: ScoringConfig,
    rate_limit: RateLimitConfig,
    max_concurrent: usize,
    ban_sustain: Duration,
    target_peers: usize,
    static_backoff: Duration,
    static_max_backoff: Duration,
    app: HashMap<PeerId, AppScore>,
    buckets: HashMap<(PeerId, ReqRespKind), TokenBucket>,
    inflight: HashMap<(PeerId, ReqRespKind), usize>,
    inbound: HashMap<I, (PeerId, ReqRespKind)>,
    below_since: HashMap<PeerId, Instant>,
    banned: HashMap<PeerId, Instant>,
    connected: HashSet<PeerId>,
    dialing: HashSet<PeerId>,
    statics: Vec<StaticPeer>,
}

impl<I: Copy + Eq + std::hash::Hash> PeerManager<I> {
    pub(crate) fn new(cfg: &NetworkConfig, now: Instant) -> Self {
        Self {
            scoring: cfg.scoring.clone(),
            rate_limit: cfg.rate_limit,
            max_concurrent: cfg.max_concurrent_inbound_per_protocol,
            ban_sustain: cfg.ban_sustain,
            target_peers: cfg.target_peers as usize,
            static_backoff: cfg.static_peer_backoff,
            static_max_backoff: cfg.static_peer_max_backoff,
            app: HashMap::new(),
            buckets: HashMap::new(),
            inflight: HashMap::new(),
            inbound: HashMap::new(),
            below_since: HashMap::new(),
            banned: HashMap::new(),
            connected: HashSet::new(),
            dialing: HashSet::new(),
            statics: cfg
                .static_peers
                .iter()
                .map(|addr| StaticPeer {
                    peer: peer_of(addr),
                    addr: addr.clone(),
                    connected: false,
                    backoff: cfg.static_peer_backoff,
                    next_attempt: now,
                })
                .collect(),
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

    // ---- inbound requests ------------------------------------------------------------------

    /// Admission control of an inbound request; on `Allow` the slot is taken until
    /// [`Self::inbound_done`] is called with `id`.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        kind: ReqRespKind,
        id: I,
        now: Instant,
    ) -> Admission {
        let inflight = self.inflight.get(&(peer, kind)).copied().unwrap_or(0);
        if inflight >= self.max_concurrent {
            return Admission::TooManyConcurrent;
        }
        let rate = self.rate_limit.get(kind);
        let bucket = self
            .buckets
            .entry((peer, kind))
            .or_insert_with(|| TokenBucket::new(rate, now));
        if !bucket.try_take(now) {
            return Admission::RateLimited;
        }
        *self.inflight.entry((peer, kind)).or_insert(0) += 1;
        self.inbound.insert(id, (peer, kind));
        Admission::Allow
    }

    /// Frees the slot of an admitted inbound request (answered, failed or timed out).
    pub(crate) fn inbound_done(&mut self, id: I) {
        if let Some(key) = self.inbound.remove(&id) {
            if let Some(n) = self.inflight.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.inflight.remove(&key);
                }
            }
        }
    }

    // ---- connections and dial targets ------------------------------------------------------

    pub(crate) fn on_connected(&mut self, peer: PeerId, remote: &Multiaddr) {
        self.connected.insert(peer);
        self.dialing.remove(&peer);
        let initial = self.static_backoff;
        for s in &mut self.statics {
            if s.peer == Some(peer) || (s.peer.is_none() && strip_p2p(&s.addr) == strip_p2p(remote))
            {
                s.peer = Some(peer);
                s.connected = true;
                s.backoff = initial;
            }
        }
    }

    pub(crate) fn on_disconnected(&mut self, peer: PeerId, now: Instant) {
        self.connected.remove(&peer);
        self.below_since.remove(&peer);
        self.buckets.retain(|(p, _), _| *p != peer);
        for s in &mut self.statics {
            if s.peer == Some(peer) {
                s.connected = false;
                s.next_attempt = now + s.backoff;
            }
        }
    }

    pub(crate) fn on_dial_failed(&mut self, peer: Option<PeerId>) {
        if let Some(p) = peer {
            self.dialing.remove(&p);
        }
    }

    /// Whether a discovered `peer` should be dialled now.
    pub(crate) fn wants_dial(&self, peer: &PeerId) -> bool {
        self.connected.len() + self.dialing.len() < self.target_peers
            && !self.connected.contains(peer)
            && !self.dialing.contains(peer)
            && !self.banned.contains_key(peer)
    }

    pub(crate) fn below_target(&self) -> bool {
        self.connected.len() < self.target_peers
    }

    pub(crate) fn mark_dialing(&mut self, peer: PeerId) {
        self.dialing.insert(peer);
    }

    /// Static peers due for a (re)dial; each one's backoff doubles up to the maximum.
    pub(crate) fn due_static_dials(&mut self, now: Instant) -> Vec<Multiaddr> {
        let max = self.static_max_backoff;
        let banned = &self.banned;
        let mut out = Vec::new();
        for s in &mut self.statics {
            if s.connected
                || s.next_attempt > now
                || s.peer.is_some_and(|p| banned.contains_key(&p))
            {
                continue;
            }
            out.push(s.addr.clone());
            s.next_attempt = now + s.backoff;
            s.backoff = (s.backoff * 2).min(max);
        }
        out
    }
}

/// The peer id in a `/p2p/…` component, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        libp2p::multiaddr::Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

fn strip_p2p(addr: &Multiaddr) -> Multiaddr {
    addr.iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn app_score_penalties_are_capped_per_window_and_clamped() {
        let cfg = ScoringConfig::default();
        let t0 = Instant::now();
        let mut s = AppScore::new(t0);
        let counted = (0..10).filter(|_| s.penalize(&cfg, t0)).count();
        assert_eq!(counted, 4);
        assert_eq!(s.value(), -4.0);
        let t1 = t0 + Duration::from_secs(10);
        for _ in 0..4 {
            s.penalize(&cfg, t1);
        }
        let t2 = t1 + Duration::from_secs(10);
        for _ in 0..4 {
            s.penalize(&cfg, t2);
        }
        assert_eq!(s.value(), -10.0, "clamped at the minimum");
    }

    #[test]
    fn app_score_rewards_are_capped_and_decay() {
        let cfg = ScoringConfig::default();
        let t0 = Instant::now();
        let mut s = AppScore::new(t0);
        s.reward(&cfg);
        assert!((s.value() - 0.05).abs() < 1e-12);
        for _ in 0..1000 {
            s.reward(&cfg);
        }
        assert_eq!(s.value(), 10.0);
        s.decay(&cfg, t0 + Duration::from_secs(10));
        assert!((s.value() - 9.0).abs() < 1e-9);
        s.decay(&cfg, t0 + Duration::from_secs(20));
        assert!((s.value() - 8.1).abs() < 1e-9);
    }

    #[test]
    fn admission_limits_concurrency_and_rate() {
        let cfg = NetworkConfig::default();
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        let peer = PeerId::random();
        let k = ReqRespKind::GetHead;
        let ids: Vec<u64> = (0..20).collect();
        assert_eq!(pm.admit(peer, k, ids[0], t0), Admission::Allow);
        assert_eq!(pm.admit(peer, k, ids[1], t0), Admission::Allow);
        assert_eq!(pm.admit(peer, k, ids[2], t0), Admission::TooManyConcurrent);
        // Another protocol has its own slots.
        assert_eq!(
            pm.admit(peer, ReqRespKind::GetRawTxList, ids[3], t0),
            Admission::Allow
        );
        let mut allowed = 2;
        for id in &ids[4..] {
            pm.inbound_done(ids[0]);
            pm.inbound_done(ids[1]);
            match pm.admit(peer, k, *id, t0) {
                Admission::Allow => {
                    allowed += 1;
                    pm.inbound_done(*id);
                }
                Admission::RateLimited => break,
                Admission::TooManyConcurrent => panic!("slots were freed"),
            }
        }
        assert_eq!(allowed, 8, "burst of 8");
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
            match pm.admit(peer, kind, *next_id, now) {
                Admission::Allow => {
                    allowed += 1;
                    pm.inbound_done(*next_id);
                }
                Admission::RateLimited => break,
                Admission::TooManyConcurrent => panic!("every slot was freed"),
            }
        }
        allowed
    }

    #[test]
    fn each_protocol_has_its_own_rate_limit() {
        let cfg = NetworkConfig::default();
        let limits = cfg.rate_limit;
        assert!(limits.get_raw_txlist.burst > limits.get_head.burst);
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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
                pm.admit(peer, kind, id, t0),
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
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        let peer = PeerId::random();
        let mut id = 0;
        for kind in ReqRespKind::ALL {
            assert_eq!(sequential_burst(&mut pm, peer, kind, &mut id, 10, t0), 3);
        }
    }

    #[test]
    fn sustained_low_score_bans_after_the_sustain_time() {
        let cfg = NetworkConfig {
            ban_sustain: Duration::from_secs(30),
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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

    #[test]
    fn static_peers_back_off_exponentially() {
        let cfg = NetworkConfig {
            static_peers: vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()],
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        assert_eq!(pm.due_static_dials(t0).len(), 1);
        assert!(pm.due_static_dials(t0).is_empty());
        assert_eq!(pm.due_static_dials(t0 + Duration::from_secs(1)).len(), 1);
        // Backoff is now 2 s.
        assert!(pm.due_static_dials(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(pm.due_static_dials(t0 + Duration::from_secs(3)).len(), 1);
    }
}
