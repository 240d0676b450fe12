//! Peer bookkeeping: application scores from the SDK's verdicts (§7.1), bans, inbound
//! req/resp concurrency (§7), the grace of a peer's first refusal, and dial targets (static
//! peers with backoff). The rate limits themselves (request, response-byte and gossip
//! buckets) live in [`crate::reqresp::rate_limiter`]; this manager asks it.
//!
//! Inbound admission ([`PeerManager::admit`]) checks, in order: the peer's in-flight requests
//! of the protocol, its request-count bucket of the protocol, and — for the data protocols —
//! its response-byte bucket, from which it reserves the request's largest response
//! ([`crate::reqresp::budget`]). Nothing is taken unless everything fits. The reservation is refunded
//! down to the response's length when the response is sent ([`PeerManager::response_sent`]),
//! in full when none is ([`PeerManager::inbound_done`]).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::request_response::InboundRequestId;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_types::{GossipTopicKind, ReqRespKind};

use crate::config::{NetworkConfig, ScoringConfig};
use crate::reqresp::rate_limiter::{Admission, GossipAdmission, RateLimiter};

/// The penalty reason of a catch-up page that fails validation here (a bad signature, a signer
/// the local schedule does not elect, a broken link, a gap): a disagreement over history, which
/// a static peer is never banned for ([`PeerManager::drop_instead`]).
pub const CATCHUP_DISAGREEMENT_REASON: &str = "catchup_invalid_commitment";

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

/// A peer that ended our last connection soon after it began.
#[derive(Debug, Clone, Copy)]
struct Refuser {
    /// The backoff after its next refusal.
    backoff: Duration,
    /// Not dialled before this.
    next_dial: Instant,
}

#[derive(Debug)]
struct StaticPeer {
    addr: Multiaddr,
    peer: Option<PeerId>,
    connected: bool,
    backoff: Duration,
    next_attempt: Instant,
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

    /// Whether `peer` is one of the configured static peers (by the `/p2p/` id of its address,
    /// or the id learned when its address connected).
    pub(crate) fn is_static(&self, peer: &PeerId) -> bool {
        self.statics.iter().any(|s| s.peer.as_ref() == Some(peer))
    }

    /// Whether a penalty for `reason` to `peer` is replaced by dropping the peer: a static
    /// peer is never penalised (so never banned) for [`CATCHUP_DISAGREEMENT_REASON`] — a page
    /// that fails validation here may be this node's misconfiguration as much as the peer's —
    /// it is disconnected instead and redialled after the refusal backoff, which grows with
    /// each drop. `None`: penalise as usual; `Some(true)`: disconnect it now; `Some(false)`:
    /// nothing to do (a drop is under way, or it is not connected).
    pub(crate) fn drop_instead(&mut self, peer: PeerId, reason: &str) -> Option<bool> {
        (reason == CATCHUP_DISAGREEMENT_REASON && self.is_static(&peer))
            .then(|| self.connected.contains(&peer) && self.dropping.insert(peer))
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

    /// Rate check of a gossip message of `len` bytes that `peer` delivered first on `kind`'s
    /// topic: it must fit both the message and the byte bucket; only then is it counted.
    pub(crate) fn admit_gossip(
        &mut self,
        peer: PeerId,
        kind: GossipTopicKind,
        len: usize,
        now: Instant,
    ) -> GossipAdmission {
        self.limiter.admit_gossip(peer, kind, len, now)
    }

    // ---- inbound requests ------------------------------------------------------------------

    /// Admission control of an inbound request that may get a response of up to
    /// `max_response` bytes ([`crate::reqresp::budget::max_response_bytes`]); on `Allow` the slot is
    /// taken until [`Self::inbound_done`] is called with `id`, and for the data protocols
    /// `max_response` (clamped to the byte bucket's capacity) is reserved until
    /// [`Self::response_sent`] or [`Self::inbound_done`]. A refusal takes nothing.
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
    /// beyond `len` ([`crate::reqresp::budget`]). The slot stays taken until [`Self::inbound_done`].
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

    // ---- connections and dial targets ------------------------------------------------------

    /// `peer` connected at `remote`; `outbound` if we dialled it.
    pub(crate) fn on_connected(
        &mut self,
        peer: PeerId,
        remote: &Multiaddr,
        outbound: bool,
        now: Instant,
    ) {
        self.connected.insert(peer);
        self.connected_since.entry(peer).or_insert(now);
        if outbound {
            self.outbound.insert(peer);
        }
        self.dialing.remove(&peer);
        self.limiter.returned(peer);
        for s in &mut self.statics {
            if s.peer == Some(peer) || (s.peer.is_none() && strip_p2p(&s.addr) == strip_p2p(remote))
            {
                s.peer = Some(peer);
                s.connected = true;
            }
        }
    }

    pub(crate) fn on_disconnected(&mut self, peer: PeerId, now: Instant) {
        self.connected.remove(&peer);
        let dialled = self.outbound.remove(&peer);
        self.below_since.remove(&peer);
        self.limiter.departed(peer, now);
        // A connection we dialled that ended soon after it began is a refusal: back off from
        // the peer, longer each time; one that lasted resets the backoff. (An inbound one
        // that ends soon is a peer that came and went: nothing to back off from.)
        let lasted = self
            .connected_since
            .remove(&peer)
            .map(|since| now.saturating_duration_since(since));
        // A static peer we dropped (`drop_instead`) backs off as a refuser does, whoever
        // dialled.
        let dropped = self.dropping.remove(&peer);
        let refused = dropped || (dialled && lasted.is_some_and(|d| d < self.stable_connection));
        let initial = self.static_backoff;
        let redial_after = if refused {
            let max = self.refused_max_backoff;
            let r = self.refusers.entry(peer).or_insert(Refuser {
                backoff: initial,
                next_dial: now,
            });
            r.next_dial = now + r.backoff;
            let wait = r.backoff;
            r.backoff = (r.backoff * 2).min(max);
            while self.refusers.len() > self.max_refusers {
                let Some(oldest) = self
                    .refusers
                    .iter()
                    .min_by_key(|(_, r)| r.next_dial)
                    .map(|(p, _)| *p)
                else {
                    break;
                };
                self.refusers.remove(&oldest);
            }
            Some(wait)
        } else {
            if lasted.is_some() {
                self.refusers.remove(&peer);
            }
            None
        };
        // Grace windows outlive the connection (a reconnect does not buy a fresh grace), but
        // only until they are over: bounded by the peers refused within the last window.
        let window = self.grace_window;
        self.refusals
            .retain(|_, w| now.saturating_duration_since(w.start) < window);
        for s in &mut self.statics {
            if s.peer == Some(peer) {
                s.connected = false;
                match redial_after {
                    Some(wait) => s.next_attempt = now + wait,
                    None => {
                        s.backoff = initial;
                        s.next_attempt = now + initial;
                    }
                }
            }
        }
    }

    /// Whether `peer` refused us lately and its redial backoff has not passed at `now`.
    pub(crate) fn backing_off(&self, peer: &PeerId, now: Instant) -> bool {
        self.refusers.get(peer).is_some_and(|r| now < r.next_dial)
    }

    /// Peers remembered as refusing us.
    #[cfg(test)]
    pub(crate) fn refusers(&self) -> usize {
        self.refusers.len()
    }

    pub(crate) fn on_dial_failed(&mut self, peer: Option<PeerId>) {
        if let Some(p) = peer {
            self.dialing.remove(&p);
        }
    }

    /// Whether a discovered `peer` should be dialled now: below the target and with an
    /// outbound slot free ([`NetworkConfig::max_outbound_peers`]).
    pub(crate) fn wants_dial(&self, peer: &PeerId, now: Instant) -> bool {
        !self.backing_off(peer, now)
            && self.connected.len() + self.dialing.len() < self.target_peers
            && self.outbound.len() + self.dialing.len() < self.max_outbound
            && !self.connected.contains(peer)
            && !self.dialing.contains(peer)
            && !self.banned.contains_key(peer)
    }

    pub(crate) fn below_target(&self) -> bool {
        self.connected.len() < self.target_peers && self.outbound.len() < self.max_outbound
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
            // A refusing static peer's next attempt is its refusal backoff (on_disconnected).
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
    use crate::config::{RateLimit, RateLimitConfig};
    use crate::reqresp::budget::{largest_request, max_response_bytes};

    fn largest(kind: ReqRespKind) -> u64 {
        max_response_bytes(&largest_request(kind))
    }

    #[test]
    fn gossip_is_limited_per_peer_and_topic_in_messages_and_bytes() {
        use crate::config::{ByteRateLimit, GossipTopicLimit};
        let mut cfg = NetworkConfig::default();
        cfg.gossip_rate_limit.raw_txlists = GossipTopicLimit {
            messages: RateLimit::new(3, Duration::from_secs(10)),
            bytes: ByteRateLimit::new(1000, Duration::from_secs(10)),
        };
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        let (a, b) = (PeerId::random(), PeerId::random());
        let tx = GossipTopicKind::RawTxLists;
        // Bytes: 600 fit, 600 more do not (and take nothing); 400 still do.
        assert_eq!(pm.admit_gossip(a, tx, 600, t0), GossipAdmission::Allow);
        assert_eq!(
            pm.admit_gossip(a, tx, 600, t0),
            GossipAdmission::TooManyBytes
        );
        assert_eq!(pm.admit_gossip(a, tx, 400, t0), GossipAdmission::Allow);
        // Messages: the third is the last of the burst.
        assert_eq!(pm.admit_gossip(a, tx, 0, t0), GossipAdmission::Allow);
        assert_eq!(
            pm.admit_gossip(a, tx, 0, t0),
            GossipAdmission::TooManyMessages
        );
        // Another peer, another topic: their own buckets.
        assert_eq!(pm.admit_gossip(b, tx, 1000, t0), GossipAdmission::Allow);
        assert_eq!(
            pm.admit_gossip(a, GossipTopicKind::Commitments, 382, t0),
            GossipAdmission::Allow
        );
        // Refill: a third of the period gives back one message and a third of the bytes.
        let later = t0 + Duration::from_millis(3_400);
        assert_eq!(pm.admit_gossip(a, tx, 300, later), GossipAdmission::Allow);
        assert_eq!(
            pm.admit_gossip(a, tx, 0, later),
            GossipAdmission::TooManyMessages
        );
        // A disconnect keeps the peer's buckets: a reconnect resumes them ...
        pm.on_disconnected(a, later);
        pm.on_connected(a, &"/ip4/127.0.0.1/tcp/1".parse().unwrap(), false, later);
        assert_eq!(
            pm.admit_gossip(a, tx, 0, later),
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
            pm.admit_gossip(a, tx, 0, later + Duration::from_secs(10)),
            GossipAdmission::Allow
        );
        assert_eq!(GossipAdmission::TooManyBytes.label(), "bytes");
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
        let cfg = NetworkConfig::default();
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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
        let cfg = NetworkConfig::default();
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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
    fn a_static_peer_is_redialled_a_backoff_after_it_disconnects() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let cfg = NetworkConfig {
            static_peers: vec![addr.clone()],
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        pm.on_connected(peer, &addr, true, t0);
        assert!(pm.due_static_dials(t0).is_empty(), "connected");
        let t1 = t0 + Duration::from_secs(100);
        pm.on_disconnected(PeerId::random(), t1);
        assert!(pm.due_static_dials(t1 + Duration::from_secs(5)).is_empty());
        pm.on_disconnected(peer, t1);
        assert!(pm.due_static_dials(t1).is_empty(), "not before the backoff");
        assert_eq!(pm.due_static_dials(t1 + Duration::from_secs(1)), vec![addr]);
    }

    /// Finding: after the strict reference banned us, we redialled it every few seconds with
    /// no growing backoff (it accepts the handshake, then closes). A connection we dialled
    /// that ends within `stable_connection` is a refusal: redials back off 1, 2, 4 … s up to
    /// 10 min, for a static peer and a discovered one alike; a connection that lasts resets
    /// it; an inbound connection that ends soon is no refusal.
    #[test]
    fn a_peer_that_keeps_refusing_us_is_redialled_ever_more_rarely() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let cfg = NetworkConfig {
            static_peers: vec![addr.clone()],
            ..Default::default()
        };
        let mut t = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t);
        let mut waits = Vec::new();
        assert_eq!(
            pm.due_static_dials(t),
            vec![addr.clone()],
            "dialled at start"
        );
        for _ in 0..12 {
            pm.on_connected(peer, &addr, true, t);
            t += Duration::from_millis(50);
            pm.on_disconnected(peer, t);
            assert!(pm.backing_off(&peer, t) && !pm.wants_dial(&peer, t));
            // The next dial is due when the backoff ends (the call that finds it dials).
            let mut wait = Duration::ZERO;
            while pm.due_static_dials(t + wait).is_empty() {
                wait += Duration::from_millis(250);
                assert!(wait <= Duration::from_secs(601), "never redialled");
            }
            waits.push(wait.as_secs());
            t += wait;
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600]);
        // A connection that lasts resets it.
        pm.on_connected(peer, &addr, true, t);
        t += Duration::from_secs(31);
        pm.on_disconnected(peer, t);
        assert!(!pm.backing_off(&peer, t));
        assert_eq!(pm.refusers(), 0);
        assert_eq!(
            pm.due_static_dials(t + Duration::from_secs(1)),
            vec![addr.clone()]
        );
        // Inbound and short: a peer that came and went, not a refusal.
        let visitor = PeerId::random();
        pm.on_connected(visitor, &addr, false, t);
        pm.on_disconnected(visitor, t + Duration::from_millis(10));
        assert!(!pm.backing_off(&visitor, t + Duration::from_millis(10)));
    }

    /// The edges of the refusal backoff: a connection of exactly `stable_connection` is
    /// stable; the backoff ends exactly at `next_dial`; the longest-waiting refuser goes when
    /// more than `remembered_departed_peers` are remembered; a stable disconnect redials a
    /// static peer after the initial backoff, not before.
    #[test]
    fn refusal_backoff_edges() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let cfg = NetworkConfig {
            static_peers: vec![addr.clone()],
            remembered_departed_peers: 2,
            ..Default::default()
        };
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        assert_eq!(pm.due_static_dials(t0), vec![addr.clone()]);
        // Exactly `stable_connection`: stable, no refusal; redialled after the initial 1 s.
        pm.on_connected(peer, &addr, true, t0);
        let t1 = t0 + cfg.stable_connection;
        pm.on_disconnected(peer, t1);
        assert_eq!(
            pm.refusers(),
            0,
            "a connection of exactly the stable time is stable"
        );
        assert!(pm
            .due_static_dials(t1 + Duration::from_millis(999))
            .is_empty());
        assert_eq!(
            pm.due_static_dials(t1 + Duration::from_secs(1)),
            vec![addr.clone()]
        );
        // One tick shorter: a refusal; not due before `next_dial`, due exactly then.
        let t2 = t1 + Duration::from_secs(10);
        pm.on_connected(peer, &addr, true, t2);
        let t3 = t2 + cfg.stable_connection - Duration::from_millis(1);
        pm.on_disconnected(peer, t3);
        assert!(pm.backing_off(&peer, t3 + Duration::from_millis(999)));
        assert!(
            !pm.backing_off(&peer, t3 + Duration::from_secs(1)),
            "ends at next_dial"
        );
        assert!(!pm.wants_dial(&peer, t3 + Duration::from_millis(999)));
        // Bounded: three refusers, two remembered; the one due soonest went.
        let others: Vec<PeerId> = (0..2).map(|_| PeerId::random()).collect();
        for (i, other) in others.iter().enumerate() {
            let at = t3 + Duration::from_secs(1 + i as u64);
            pm.on_connected(*other, &addr, true, at);
            pm.on_disconnected(*other, at + Duration::from_millis(10));
        }
        assert_eq!(pm.refusers(), 2);
        assert!(
            !pm.backing_off(&peer, t3),
            "the longest-waiting refuser was dropped"
        );
        assert!(others
            .iter()
            .all(|o| pm.backing_off(o, t3 + Duration::from_secs(2))));
    }

    /// A discovered peer is dialled only while below the target and with an outbound slot
    /// free, counting dials under way, and never while connected, dialling or banned.
    #[test]
    fn wants_dial_respects_the_target_the_outbound_slots_and_dials_under_way() {
        let cfg = NetworkConfig {
            target_peers: 3,
            max_outbound_peers: 2,
            ..Default::default()
        };
        let t0 = Instant::now();
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
        let fresh = PeerId::random();
        assert!(pm.wants_dial(&fresh, t0));
        // One outbound connected, one dial under way: the outbound slots are full.
        let (out, dialling) = (PeerId::random(), PeerId::random());
        pm.on_connected(out, &addr, true, t0);
        pm.mark_dialing(dialling);
        assert!(
            !pm.wants_dial(&fresh, t0),
            "1 outbound + 1 dialling = 2 slots"
        );
        assert!(!pm.wants_dial(&dialling, t0) && !pm.wants_dial(&out, t0));
        pm.on_dial_failed(Some(dialling));
        assert!(pm.wants_dial(&fresh, t0));
        // Inbound peers count towards the target, not the outbound slots.
        pm.on_connected(PeerId::random(), &addr, false, t0);
        assert!(pm.wants_dial(&fresh, t0), "2 connected < 3");
        // A dial under way counts towards the target too (outbound slots to spare here).
        let mut spare: PeerManager<u64> = PeerManager::new(
            &NetworkConfig {
                target_peers: 3,
                max_outbound_peers: 10,
                ..Default::default()
            },
            t0,
        );
        for _ in 0..2 {
            spare.on_connected(PeerId::random(), &addr, false, t0);
        }
        assert!(spare.wants_dial(&fresh, t0));
        spare.mark_dialing(PeerId::random());
        assert!(
            !spare.wants_dial(&fresh, t0),
            "2 connected + 1 dialling: at the target"
        );
        pm.on_connected(PeerId::random(), &addr, false, t0);
        assert!(!pm.wants_dial(&fresh, t0), "3 connected: at the target");
        let banned = PeerId::random();
        pm.ban(banned, t0 + Duration::from_secs(60));
        let mut roomy: PeerManager<u64> = PeerManager::new(&NetworkConfig::default(), t0);
        roomy.ban(banned, t0 + Duration::from_secs(60));
        assert!(!roomy.wants_dial(&banned, t0));
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
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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
        let t0 = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t0);
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

    /// Issue 34: a wrong local schedule made every catch-up page of the only static peer
    /// "invalid", and the static peer was banned for an hour. A static peer is never penalised
    /// for a page that fails validation: it is dropped (disconnected) instead, once per
    /// connection, and redialled after a backoff that grows with each drop (even after a long
    /// connection). Any other peer is penalised for it, and a static peer for anything else.
    #[test]
    fn a_static_peer_is_dropped_not_penalised_for_catch_up_disagreement() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let cfg = NetworkConfig {
            static_peers: vec![addr.clone()],
            ..Default::default()
        };
        let other = PeerId::random();
        let mut t = Instant::now();
        let mut pm: PeerManager<u64> = PeerManager::new(&cfg, t);
        assert_eq!(pm.due_static_dials(t), vec![addr.clone()]);
        assert_eq!(
            pm.drop_instead(peer, CATCHUP_DISAGREEMENT_REASON),
            Some(false),
            "not connected: nothing to drop"
        );
        pm.on_connected(other, &"/ip4/127.0.0.1/tcp/2".parse().unwrap(), true, t);
        assert_eq!(pm.drop_instead(other, CATCHUP_DISAGREEMENT_REASON), None);
        let mut waits = Vec::new();
        for _ in 0..3 {
            pm.on_connected(peer, &addr, true, t);
            assert!(pm.is_static(&peer) && !pm.is_static(&other));
            assert_eq!(
                pm.drop_instead(peer, "catchup_empty_page"),
                None,
                "a lie counts"
            );
            t += Duration::from_secs(31);
            assert_eq!(
                pm.drop_instead(peer, CATCHUP_DISAGREEMENT_REASON),
                Some(true)
            );
            assert_eq!(
                pm.drop_instead(peer, CATCHUP_DISAGREEMENT_REASON),
                Some(false),
                "dropped once per connection"
            );
            pm.on_disconnected(peer, t);
            let mut wait = Duration::ZERO;
            while pm.due_static_dials(t + wait).is_empty() {
                wait += Duration::from_millis(250);
                assert!(wait <= Duration::from_secs(601), "never redialled");
            }
            waits.push(wait.as_secs());
            t += wait;
        }
        assert_eq!(waits, vec![1, 2, 4], "the backoff grows with each drop");
        assert!(!pm.is_banned(&peer));
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
