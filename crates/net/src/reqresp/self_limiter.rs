//! Our own outbound pacing, the self-limiter (configured as `politeness`): never send a peer a
//! request it would refuse.
//!
//! The deployed Taiko reference allows 8 requests per peer per protocol per 10 s and
//! disconnects (and refuses) a peer after a single failed or rate-limited exchange
//! (PROTOCOL.md "Reference strictness"). Nodes of this project refuse (and, beyond a grace,
//! penalise) requests above their own limits ([`crate::RateLimitConfig`]). So every outbound
//! request passes [`OutboundPacer::admit`] first, which keeps, per peer and protocol:
//!
//! - at most `max_in_flight` requests unanswered, and
//! - for the strict reference, at most `requests` sends inside any sliding `window + margin`;
//!   for peers of ours, a mirror of the peer's own request token bucket (`burst` tokens,
//!   refilled over `period + margin`),
//!
//! and, for peers of ours, a mirror of the peer's response-byte budget (below).
//!
//! Which limits apply depends on what the peer speaks, learnt from identify's protocol list
//! ([`PeerProfile`]): a peer that advertises this project's extension (`get_raw_txlists`,
//! PROTOCOL-EXT.md) is one of ours and is paced by this project's default inbound limits
//! ([`PolitenessConfig::extended_rate_limit`]); any other peer — including one not identified
//! yet — is treated as the strict reference ([`PolitenessConfig`]). A sliding window of `n`
//! sends per window is at least as strict as a token bucket or a fixed window of `n` per the
//! same period, so this holds whichever limiter the reference runs; the margin absorbs latency
//! jitter between our send and its arrival. Peers of ours are known to run token buckets
//! ([`crate::RateLimitConfig`]), so for them we mirror the bucket itself, which keeps sending
//! at its refill rate after a burst where a sliding window would stall for a whole window:
//! both start full, ours refills more slowly (over `period + margin`), and each send reaches
//! the peer later than we count it, so the peer always holds at least as many tokens as we
//! assume.
//!
//! # The byte-budget mirror (peers of ours)
//!
//! A peer of ours reserves, at admission, the largest response of each data request from one byte
//! bucket per requester, and refunds the unused part when it sends the response
//! ([`crate::reqresp::budget`]). The pacer keeps the same bucket per peer
//! ([`crate::RateLimitConfig::response_bytes`] of `extended_rate_limit`): before sending it
//! reserves the same [`crate::reqresp::budget::max_response_bytes`] (clamped to the capacity, as
//! the peer clamps it), and holds the request back with the time after which it fits; on the answer
//! it refunds `reserved − response length`; a request that fails or times out refunds nothing (we
//! do not know what the peer served).
//!
//! Why the mirror is never ahead of the peer: both buckets start full with the same capacity
//! and refill at (at most) the same rate, and each of our reservations reaches the peer *later*
//! (on arrival) than we make it, while each refund happens at the peer *earlier* (when it
//! sends) than we make it (when the answer has arrived) — or never, for a failed request.
//! Refills and refunds commute (both add, then clamp at the capacity), and every operation is
//! monotone in the level, so a bucket whose charges come earlier and refunds later never holds
//! more than the peer's did at the same point of the sequence. The one effect that favours us
//! is the capacity clamp: while a reservation is on the wire our bucket may refill into room
//! the peer's full bucket cannot use, a lead of at most the refill during the one-way latency.
//! That is why the mirror refills over `period + window_margin` rather than `period`: it is
//! slower by `burst / (period + margin)`, which covers latency jitter up to the margin, as it
//! does for the count windows. The peer also drops its buckets when we disconnect, while we
//! keep ours: after a reconnect it holds more than we assume.
//!
//! # Learning tighter limits
//!
//! A peer of ours may run other limits than the defaults we assume. When it refuses a request
//! our pacing admitted (the stream closed without an answer: [`OutboundPacer::refused`]), we
//! lower what we assume of it for the rest of the connection: the sends of the current window
//! it accepted become its per-window limit of that protocol (at least 1), a data protocol's
//! refusal halves the byte budget we assume (not below
//! [`PolitenessConfig::learned_min_response_bytes`]), and nothing of that protocol goes to it
//! until the window has passed. A reconnect restores the defaults (identify runs again).
//! Strict peers are not affected: the reference disconnects after a refusal.
//!
//! A request the pacer holds back is not sent: the caller gets
//! [`crate::RequestError::Throttled`] with the time after which a retry fits, and chooses
//! another peer or waits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::{PeerId, StreamProtocol};
use preconfirmation_types::ReqRespKind;
use tracing::info;

use crate::config::PolitenessConfig;
use crate::reqresp::budget::ByteBucket;

/// How soon a request held back from a peer not identified yet (during the start-up window
/// of [`PolitenessConfig::strict_window_spent_at_start`]) may be tried again: identify
/// usually completes within a round trip or two of the connection.
const UNIDENTIFIED_RETRY: Duration = Duration::from_millis(100);

/// What a peer speaks, as far as pacing is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerProfile {
    /// Advertises this project's extensions: paced by this project's default limits.
    Extended,
    /// Anything else (the reference, another implementation, or not identified yet): paced
    /// as the strict reference.
    Strict,
}

/// The pacing of one peer and protocol.
#[derive(Debug, Default)]
struct Lane {
    in_flight: usize,
    /// Send times inside the current window, oldest first.
    sent: VecDeque<Instant>,
    /// Our copy of a peer of ours' request token bucket: `(tokens, last refill)`.
    tokens: Option<(f64, Instant)>,
    /// A per-window limit learnt from a refusal (peers of ours), for this connection.
    learned_limit: Option<usize>,
    /// Nothing is sent before this (set by a refusal).
    backoff_until: Option<Instant>,
}

#[derive(Debug)]
struct PeerPacing {
    profile: PeerProfile,
    lanes: HashMap<ReqRespKind, Lane>,
    /// Our copy of the peer's response-byte budget (peers of ours, data protocols).
    bytes: Option<ByteBucket>,
    /// Set when its last connection closed: kept until its windows have passed, because the
    /// peer's own limiter remembers our requests across a reconnect.
    disconnected_at: Option<Instant>,
    /// Whether identify has told us what it speaks (until then it is paced as strict).
    identified: bool,
}

impl PeerPacing {
    fn new(profile: PeerProfile) -> Self {
        Self {
            profile,
            lanes: HashMap::new(),
            bytes: None,
            disconnected_at: None,
            identified: false,
        }
    }
}

/// Per-peer, per-protocol outbound pacing (see the module docs).
#[derive(Debug)]
pub(crate) struct OutboundPacer {
    politeness: PolitenessConfig,
    extension_protocol: StreamProtocol,
    peers: HashMap<PeerId, PeerPacing>,
    /// Until when every strict peer's window counts as spent (the process's first window,
    /// see [`PolitenessConfig::strict_window_spent_at_start`]).
    strict_spent_until: Option<Instant>,
}

/// Why a request was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Held {
    /// The peer would refuse it now; a retry fits after this long.
    Throttled(Duration),
    /// The peer does not speak this protocol (an extension to a strict peer).
    Unsupported,
}

impl OutboundPacer {
    pub(crate) fn new(politeness: PolitenessConfig, extension_protocol: StreamProtocol) -> Self {
        Self::started_at(politeness, extension_protocol, Instant::now())
    }

    /// A pacer of a network started at `now`.
    pub(crate) fn started_at(
        politeness: PolitenessConfig,
        extension_protocol: StreamProtocol,
        now: Instant,
    ) -> Self {
        let strict_spent_until = politeness
            .strict_window_spent_at_start
            .then(|| now + politeness.strict_window + politeness.window_margin);
        Self {
            politeness,
            extension_protocol,
            peers: HashMap::new(),
            strict_spent_until,
        }
    }

    /// Records what `peer` speaks (identify). Returns its profile.
    pub(crate) fn identified(&mut self, peer: PeerId, protocols: &[StreamProtocol]) -> PeerProfile {
        let profile = if protocols.contains(&self.extension_protocol) {
            PeerProfile::Extended
        } else {
            PeerProfile::Strict
        };
        let pacing = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerPacing::new(profile));
        pacing.profile = profile;
        pacing.identified = true;
        profile
    }

    /// The profile of `peer` (strict until identify says otherwise).
    pub(crate) fn profile(&self, peer: &PeerId) -> PeerProfile {
        self.peers
            .get(peer)
            .map_or(PeerProfile::Strict, |p| p.profile)
    }

    /// `(requests per window, window, max in flight)` for `profile` and `kind`.
    fn limits(&self, profile: PeerProfile, kind: ReqRespKind) -> (usize, Duration, usize) {
        let margin = self.politeness.window_margin;
        match profile {
            PeerProfile::Strict => (
                self.politeness.strict_requests_per_window.max(1) as usize,
                self.politeness.strict_window + margin,
                self.politeness.strict_max_in_flight.max(1),
            ),
            PeerProfile::Extended => {
                let limit = self.politeness.extended_rate_limit.get(kind);
                (
                    limit.burst.max(1) as usize,
                    limit.period + margin,
                    self.politeness.extended_max_in_flight.max(1),
                )
            }
        }
    }

    /// How long our copy of a peer's byte budget takes to refill: its period plus the margin
    /// (module docs).
    fn bytes_refill_over(&self) -> Duration {
        self.politeness.extended_rate_limit.response_bytes.period + self.politeness.window_margin
    }

    /// A full copy of a peer of ours' byte budget.
    fn fresh_bytes(&self, now: Instant) -> ByteBucket {
        let limit = self.politeness.extended_rate_limit.response_bytes;
        ByteBucket::new(limit, self.bytes_refill_over(), now)
    }

    /// Admits a request of `kind` to `peer` now whose response may be up to `max_response` bytes
    /// ([`crate::reqresp::budget::max_response_bytes`]), and counts it; or says why not. Returns
    /// the bytes reserved from the peer's budget (0 for strict peers and `get_head`), to be passed
    /// back to [`Self::answered`].
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        kind: ReqRespKind,
        max_response: u64,
        now: Instant,
    ) -> Result<u64, Held> {
        let profile = self.profile(&peer);
        if kind.is_extension() && profile == PeerProfile::Strict {
            return Err(Held::Unsupported);
        }
        if profile == PeerProfile::Strict {
            // A previous process with our peer id may have filled the peer's window just
            // before this one started.
            if let Some(until) = self.strict_spent_until.filter(|until| now < *until) {
                // A peer not identified yet may turn out to be one of ours in a moment: ask
                // again soon rather than after the whole window.
                let identified = self.peers.get(&peer).is_some_and(|p| p.identified);
                let retry = if identified {
                    until - now
                } else {
                    (until - now).min(UNIDENTIFIED_RETRY)
                };
                return Err(Held::Throttled(retry));
            }
        }
        let (per_window, window, max_in_flight) = self.limits(profile, kind);
        let budgeted = profile == PeerProfile::Extended && kind.is_byte_budgeted();
        let fresh = budgeted.then(|| self.fresh_bytes(now));
        let pacing = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerPacing::new(profile));
        pacing.disconnected_at = None;
        let lane = pacing.lanes.entry(kind).or_default();
        while lane
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            lane.sent.pop_front();
        }
        if let Some(until) = lane.backoff_until {
            if now < until {
                return Err(Held::Throttled(until - now));
            }
            lane.backoff_until = None;
        }
        if lane.in_flight >= max_in_flight {
            // Retry once an answer is likely; the caller may also pick another peer.
            return Err(Held::Throttled(Duration::from_millis(50)));
        }
        let per_window = lane.learned_limit.map_or(per_window, |l| l.min(per_window));
        if profile == PeerProfile::Extended {
            // The peer's token bucket, refilled over `window` (its period plus the margin).
            let capacity = per_window as f64;
            let rate = capacity / window.as_secs_f64().max(f64::EPSILON);
            let (tokens, last) = lane.tokens.get_or_insert((capacity, now));
            let elapsed = now.saturating_duration_since(*last).as_secs_f64();
            *tokens = (*tokens + elapsed * rate).min(capacity);
            *last = now;
            if *tokens < 1.0 {
                let retry = Duration::from_secs_f64((1.0 - *tokens) / rate);
                return Err(Held::Throttled(retry.max(Duration::from_millis(1))));
            }
        } else if lane.sent.len() >= per_window {
            let oldest = lane.sent.front().copied().unwrap_or(now);
            let retry = window.saturating_sub(now.saturating_duration_since(oldest));
            return Err(Held::Throttled(retry.max(Duration::from_millis(1))));
        }
        let mut reserved = 0;
        if let Some(fresh) = fresh {
            let bytes = pacing.bytes.get_or_insert(fresh);
            reserved = bytes.clamp(max_response);
            if !bytes.try_reserve(reserved, now) {
                return Err(Held::Throttled(bytes.time_until(reserved, now)));
            }
        }
        if let Some((tokens, _)) = lane.tokens.as_mut() {
            *tokens -= 1.0;
        }
        lane.sent.push_back(now);
        lane.in_flight += 1;
        Ok(reserved)
    }

    /// A request of `kind` to `peer` failed (or timed out): it is no longer in flight, and
    /// its reservation is not refunded (we do not know what the peer served).
    pub(crate) fn done(&mut self, peer: &PeerId, kind: ReqRespKind) {
        if let Some(lane) = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.lanes.get_mut(&kind))
        {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }

    /// A request of `kind` to `peer` that reserved `reserved` bytes got its answer, `len` SSZ bytes
    /// ([`crate::reqresp::budget::response_len`]): no longer in flight, and `reserved − len` is
    /// refunded, as the peer did when it sent the answer.
    pub(crate) fn answered(
        &mut self,
        peer: &PeerId,
        kind: ReqRespKind,
        reserved: u64,
        len: u64,
        now: Instant,
    ) {
        self.done(peer, kind);
        if let Some(bytes) = self.peers.get_mut(peer).and_then(|p| p.bytes.as_mut()) {
            bytes.refund(reserved.saturating_sub(len), now);
        }
    }

    /// `peer` refused a request of `kind` that we admitted (the stream closed without an
    /// answer). Call after [`Self::done`]. For a peer of ours, learns tighter limits for the
    /// rest of the connection (module docs): the sends of the current window it accepted
    /// become its per-window limit (at least 1), a data protocol halves its byte budget, and
    /// the protocol backs off until the window has passed.
    pub(crate) fn refused(&mut self, peer: &PeerId, kind: ReqRespKind, now: Instant) {
        if self.profile(peer) != PeerProfile::Extended {
            return;
        }
        let (_, window, _) = self.limits(PeerProfile::Extended, kind);
        let floor = self.politeness.learned_min_response_bytes;
        let Some(pacing) = self.peers.get_mut(peer) else {
            return;
        };
        let lane = pacing.lanes.entry(kind).or_default();
        // The refused send is the newest of the window; the others were accepted.
        let accepted = lane.sent.len().saturating_sub(1).max(1);
        let limit = lane.learned_limit.map_or(accepted, |l| l.min(accepted));
        lane.learned_limit = Some(limit);
        lane.backoff_until = Some(now + window);
        // Its bucket is empty now; after the back-off (one window) it is full again, at the
        // learnt limit.
        lane.tokens = Some((0.0, now));
        let mut budget = None;
        if kind.is_byte_budgeted() {
            if let Some(bytes) = pacing.bytes.as_mut() {
                bytes.halve(floor, now);
                budget = Some(bytes.capacity());
            }
        }
        info!(
            %peer,
            protocol = kind.label(),
            per_window = limit,
            ?window,
            response_bytes = ?budget,
            "peer refused a paced request: assuming tighter limits for this connection"
        );
    }

    /// `peer`'s last connection closed: nothing is in flight any more. Its send times, byte
    /// budget level and back-offs are kept until its windows have passed (the peer's limiter
    /// may remember them across a reconnect), then dropped with every other such peer, so the
    /// state is bounded by the peers connected or disconnected within the longest window.
    /// Limits learnt from refusals are forgotten (they hold for one connection), and its
    /// profile falls back to strict until identify runs again.
    pub(crate) fn forget(&mut self, peer: &PeerId, now: Instant) {
        let limit = self.politeness.extended_rate_limit.response_bytes;
        let refill_over = self.bytes_refill_over();
        if let Some(pacing) = self.peers.get_mut(peer) {
            pacing.disconnected_at = Some(now);
            pacing.profile = PeerProfile::Strict;
            for lane in pacing.lanes.values_mut() {
                lane.in_flight = 0;
                lane.learned_limit = None;
            }
            if let Some(bytes) = pacing.bytes.as_mut() {
                bytes.restore(limit, refill_over, now);
            }
        }
        let keep = self.longest_window();
        self.peers.retain(|_, p| {
            p.disconnected_at
                .is_none_or(|at| now.saturating_duration_since(at) < keep)
        });
    }

    /// The longest window any lane is paced by.
    /// Drops the state of peers disconnected longer than the longest window ago (as
    /// [`Self::forget`] does), so it goes even when no other peer disconnects after them.
    /// State created for a peer after its disconnect (a request or an identify answer that
    /// raced the connection's close) has no disconnect time and would stay forever: a peer
    /// `is_connected` denies, with nothing in flight, is treated as disconnected from `now`.
    pub(crate) fn prune(&mut self, now: Instant, is_connected: impl Fn(&PeerId) -> bool) {
        for (peer, pacing) in self.peers.iter_mut() {
            if pacing.disconnected_at.is_none()
                && !is_connected(peer)
                && pacing.lanes.values().all(|lane| lane.in_flight == 0)
            {
                pacing.disconnected_at = Some(now);
            }
        }
        let keep = self.longest_window();
        self.peers.retain(|_, p| {
            p.disconnected_at
                .is_none_or(|at| now.saturating_duration_since(at) < keep)
        });
    }

    /// Peers with pacing state, connected or within the longest window of their disconnect.
    pub(crate) fn tracked_peers(&self) -> usize {
        self.peers.len()
    }

    fn longest_window(&self) -> Duration {
        let p = &self.politeness;
        let extended = ReqRespKind::ALL
            .iter()
            .map(|k| p.extended_rate_limit.get(*k).period)
            .chain([p.extended_rate_limit.response_bytes.period])
            .max()
            .unwrap_or_default();
        p.strict_window.max(extended) + p.window_margin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ByteRateLimit, RateLimit};
    use crate::reqresp::budget::{largest_request, max_response_bytes};

    const MIB: u64 = 1024 * 1024;

    fn ext() -> StreamProtocol {
        StreamProtocol::new("/taiko/1/preconf/1/get_raw_txlists")
    }

    /// The defaults, without the start-up window (tests of the windows themselves).
    fn politeness_config() -> PolitenessConfig {
        PolitenessConfig {
            strict_window_spent_at_start: false,
            ..PolitenessConfig::default()
        }
    }

    /// The strict reference (8 requests per 10 s, the 9th bans for the life of its process)
    /// remembers our peer id across our restart: a node restarted within a window of a full
    /// burst must not send a fresh burst. A new process sends a strict peer nothing in its
    /// first window (plus margin); then the peer's full budget.
    #[test]
    fn a_new_process_counts_each_strict_peers_first_window_as_spent() {
        let t0 = Instant::now();
        let mut p = OutboundPacer::started_at(PolitenessConfig::default(), ext(), t0);
        let (strict, ours) = (PeerId::random(), PeerId::random());
        p.identified(ours, &[ext()]);
        let kind = ReqRespKind::GetHead;
        let window = Duration::from_millis(10_500);
        assert_eq!(
            p.admit(strict, kind, 64, t0 + Duration::from_secs(3)),
            Err(Held::Throttled(UNIDENTIFIED_RETRY)),
            "not identified yet: asked again soon"
        );
        p.identified(strict, &[]);
        assert_eq!(
            p.admit(strict, kind, 64, t0 + Duration::from_secs(3)),
            Err(Held::Throttled(window - Duration::from_secs(3)))
        );
        assert_eq!(
            p.admit(ours, kind, 64, t0),
            Ok(0),
            "peers of ours forgive one refusal"
        );
        let later = t0 + window;
        for _ in 0..8 {
            assert_eq!(p.admit(strict, kind, 64, later), Ok(0));
            p.answered(&strict, kind, 0, 64, later);
        }
        assert!(
            p.admit(strict, kind, 64, later).is_err(),
            "then its usual window"
        );
        // Off (a new identity no peer has seen): the first window is the peer's to use.
        let mut fresh = OutboundPacer::started_at(politeness_config(), ext(), t0);
        assert_eq!(fresh.admit(strict, kind, 64, t0), Ok(0));
    }

    fn pacer() -> OutboundPacer {
        OutboundPacer::new(politeness_config(), ext())
    }

    /// A pacer on the defaults (without the start-up window), a peer it has not identified
    /// (strict until identify says otherwise), and the time now.
    fn strict_peer() -> (OutboundPacer, PeerId, Instant) {
        (pacer(), PeerId::random(), Instant::now())
    }

    /// A pacer on `politeness`, a peer of ours it has identified, and the time now.
    fn extended_peer(politeness: PolitenessConfig) -> (OutboundPacer, PeerId, Instant) {
        let mut p = OutboundPacer::new(politeness, ext());
        let peer = PeerId::random();
        p.identified(peer, &[ext()]);
        (p, peer, Instant::now())
    }

    /// The largest response of `kind`'s largest request.
    fn max(kind: ReqRespKind) -> u64 {
        max_response_bytes(&largest_request(kind))
    }

    #[test]
    fn strict_peer_gets_one_in_flight_and_eight_per_window() {
        let (mut p, peer, t0) = strict_peer();
        let kind = ReqRespKind::GetRawTxList;
        let m = max(kind);
        // Not identified yet: strict. One in flight; no byte budget is assumed.
        assert_eq!(p.admit(peer, kind, m, t0), Ok(0));
        assert!(matches!(
            p.admit(peer, kind, m, t0),
            Err(Held::Throttled(_))
        ));
        // Other protocols have their own lanes.
        assert_eq!(p.admit(peer, ReqRespKind::GetHead, 64, t0), Ok(0));
        p.done(&peer, kind);
        // Eight sends inside the window, answered one by one.
        for i in 1..8u64 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(p.admit(peer, kind, m, t), Ok(0), "send {i}");
            p.done(&peer, kind);
        }
        // The ninth waits until the first send leaves the window plus margin.
        let t = t0 + Duration::from_secs(1);
        match p.admit(peer, kind, m, t) {
            Err(Held::Throttled(d)) => assert_eq!(d, Duration::from_millis(9_500)),
            other => panic!("{other:?}"),
        }
        assert!(p
            .admit(peer, kind, m, t0 + Duration::from_millis(10_499))
            .is_err());
        assert_eq!(
            p.admit(peer, kind, m, t0 + Duration::from_millis(10_500)),
            Ok(0)
        );
        // Never more than eight inside any 10.5 s window.
        p.done(&peer, kind);
        assert!(p
            .admit(peer, kind, m, t0 + Duration::from_millis(10_500))
            .is_err());
        // A strict peer's refusal teaches nothing (the reference disconnects anyway).
        p.refused(&peer, kind, t0 + Duration::from_millis(10_500));
        assert!(p.peers[&peer].lanes[&kind].learned_limit.is_none());
        assert!(p.peers[&peer].lanes[&kind].backoff_until.is_none());
    }

    #[test]
    fn extensions_are_never_sent_to_strict_peers() {
        let (mut p, peer, t0) = strict_peer();
        let kind = ReqRespKind::GetRawTxLists;
        assert_eq!(p.admit(peer, kind, 4, t0), Err(Held::Unsupported));
        assert_eq!(
            p.identified(peer, &[StreamProtocol::new("/ipfs/ping/1.0.0")]),
            PeerProfile::Strict
        );
        assert_eq!(p.admit(peer, kind, 4, t0), Err(Held::Unsupported));
        assert_eq!(p.identified(peer, &[ext()]), PeerProfile::Extended);
        assert_eq!(p.admit(peer, kind, 4, t0), Ok(4));
    }

    /// State created for a peer after its connection closed (a request or an identify answer
    /// that raced the close) never gets `forget`; the prune tick treats a peer that is not
    /// connected as disconnected, once nothing is in flight to it, and drops it a window later.
    #[test]
    fn state_created_after_a_disconnect_is_pruned() {
        let mut p = pacer();
        let (gone, connected, dialling) = (PeerId::random(), PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        let kind = ReqRespKind::GetHead;
        for peer in [gone, connected, dialling] {
            assert_eq!(p.admit(peer, kind, 64, t0), Ok(0));
        }
        p.done(&gone, kind);
        p.done(&connected, kind);
        let is_connected = |peer: &PeerId| *peer == connected;
        p.prune(t0, is_connected);
        assert_eq!(
            p.tracked_peers(),
            3,
            "kept for one window after the prune saw it gone"
        );
        let window = p.longest_window();
        p.prune(t0 + window, is_connected);
        // `gone` dropped; `connected` kept; `dialling` kept while its request is in flight.
        assert!(!p.peers.contains_key(&gone));
        assert!(p.peers.contains_key(&connected));
        assert!(p.peers.contains_key(&dialling));
        p.done(&dialling, kind);
        p.prune(t0 + window, is_connected);
        p.prune(t0 + window * 2, is_connected);
        assert_eq!(p.tracked_peers(), 1);
    }

    #[test]
    fn extended_peer_gets_our_own_limits() {
        let (mut p, peer, t0) = extended_peer(politeness_config());
        let kind = ReqRespKind::GetRawTxList;
        let m = max(kind);
        let burst = crate::RateLimitConfig::default().get(kind).burst as usize;
        // Two in flight (our inbound concurrency), then held.
        assert_eq!(p.admit(peer, kind, m, t0), Ok(m));
        assert_eq!(p.admit(peer, kind, m, t0), Ok(m));
        assert!(p.admit(peer, kind, m, t0).is_err());
        p.answered(&peer, kind, m, 1036, t0);
        p.answered(&peer, kind, m, 1036, t0);
        for _ in 2..burst {
            assert_eq!(p.admit(peer, kind, m, t0), Ok(m));
            p.answered(&peer, kind, m, 0, t0);
        }
        assert!(matches!(
            p.admit(peer, kind, m, t0),
            Err(Held::Throttled(_))
        ));
        // Disconnected: strict again until identify, nothing in flight, but the sends of the
        // current window still count (the peer's limiter remembers them).
        p.forget(&peer, t0);
        assert_eq!(p.tracked_peers(), 1);
        assert_eq!(p.profile(&peer), PeerProfile::Strict);
        assert!(matches!(
            p.admit(peer, kind, m, t0),
            Err(Held::Throttled(_))
        ));
        p.identified(peer, &[ext()]);
        assert!(matches!(
            p.admit(peer, kind, m, t0),
            Err(Held::Throttled(_))
        ));
        // Reconnected then gone again: dropped once another disconnect finds its windows over.
        p.forget(&peer, t0);
        let other = PeerId::random();
        p.admit(other, kind, m, t0).unwrap();
        p.forget(&other, t0 + Duration::from_millis(10_499));
        assert_eq!(p.tracked_peers(), 2);
        p.forget(&other, t0 + Duration::from_millis(10_500));
        assert_eq!(p.tracked_peers(), 1);
        assert!(!p.peers.contains_key(&peer), "its windows are over");
    }

    #[test]
    fn extended_peer_is_paced_by_its_token_bucket_refilled_over_period_plus_margin() {
        // 3 per 2 s (unlike the strict window, so only the extended limit fits); we refill
        // our copy over 2.5 s: a token every 833 ms, where the peer's comes every 667 ms.
        let mut politeness = politeness_config();
        politeness.extended_rate_limit.get_raw_txlists = RateLimit::new(3, Duration::from_secs(2));
        let (mut p, peer, t0) = extended_peer(politeness);
        let kind = ReqRespKind::GetRawTxLists;
        for _ in 0..3 {
            assert_eq!(p.admit(peer, kind, 4, t0), Ok(4));
            p.answered(&peer, kind, 4, 4, t0);
        }
        match p.admit(peer, kind, 4, t0) {
            Err(Held::Throttled(d)) => assert!((d.as_secs_f64() - 2.5 / 3.0).abs() < 1e-3, "{d:?}"),
            other => panic!("{other:?}"),
        }
        assert!(p
            .admit(peer, kind, 4, t0 + Duration::from_millis(830))
            .is_err());
        assert_eq!(
            p.admit(peer, kind, 4, t0 + Duration::from_millis(840)),
            Ok(4)
        );
        p.answered(&peer, kind, 4, 4, t0 + Duration::from_millis(840));
        // The 7 ms of refill beyond that token count towards the next one.
        match p.admit(peer, kind, 4, t0 + Duration::from_millis(840)) {
            Err(Held::Throttled(d)) => {
                let expected = (1.0 - 0.84 * 1.2 + 1.0) / 1.2;
                assert!((d.as_secs_f64() - expected).abs() < 1e-3, "{d:?}");
            }
            other => panic!("{other:?}"),
        }
        // Sustained: it keeps sending at our refill rate after the burst (a sliding window
        // would stall for whole windows), and never beyond what the peer's bucket holds.
        let mut sent = 4.0;
        for step in 85..=2_000u64 {
            let t = t0 + Duration::from_millis(step * 10);
            if p.admit(peer, kind, 4, t).is_ok() {
                p.answered(&peer, kind, 4, 4, t);
                sent += 1.0;
            }
            let elapsed = (step * 10) as f64 / 1e3;
            assert!(sent <= 3.0 + elapsed * 1.5, "{sent} sends by {elapsed} s");
        }
        assert!(sent >= 3.0 + 20.0 * 1.2 - 1.0, "only {sent} sends in 20 s");
    }

    /// A peer of ours with a 10 MiB byte budget per 9.5 s (10 s with the margin: 1 MiB/s),
    /// generous request limits and in-flight counts, so only the byte mirror holds back.
    fn byte_pacer() -> (OutboundPacer, PeerId, Instant) {
        let mut extended_rate_limit =
            crate::RateLimitConfig::uniform(1_000, Duration::from_secs(10));
        extended_rate_limit.response_bytes =
            ByteRateLimit::new(10 * MIB, Duration::from_millis(9_500));
        let politeness = PolitenessConfig {
            extended_rate_limit,
            extended_max_in_flight: 100,
            ..Default::default()
        };
        extended_peer(politeness)
    }

    #[test]
    fn byte_budget_is_mirrored_reserved_and_refunded() {
        let (mut p, peer, t0) = byte_pacer();
        let batch = ReqRespKind::GetRawTxLists;
        let list = ReqRespKind::GetRawTxList;
        let page = ReqRespKind::GetCommitmentsByNumber;
        // One 8 MiB batch fits; the budget is shared, so a tx list (2 MiB + 36) no longer does.
        assert_eq!(p.admit(peer, batch, max(batch), t0), Ok(8 * MIB));
        // 36 bytes short at 1 MiB/s: a retry fits after the shortest wait, 1 ms.
        assert_eq!(
            p.admit(peer, list, max(list), t0),
            Err(Held::Throttled(Duration::from_millis(1)))
        );
        // A page fits in the 2 MiB left; get_head draws nothing and has no budget.
        assert_eq!(p.admit(peer, page, max(page), t0), Ok(max(page)));
        assert_eq!(p.admit(peer, ReqRespKind::GetHead, 64, t0), Ok(0));
        // The batch answers 1 MiB: 7 MiB come back, and the list fits.
        p.answered(&peer, batch, 8 * MIB, MIB, t0);
        assert_eq!(p.admit(peer, list, max(list), t0), Ok(max(list)));
        // A failed request refunds nothing: the page's reservation stays taken.
        p.done(&peer, page);
        // Left: 10 − 1 − 2 − page. A second 8 MiB batch waits for the refill (1 MiB/s).
        let left = 10 * MIB - MIB - max(list) - max(page);
        let missing = 8 * MIB - left;
        match p.admit(peer, batch, max(batch), t0) {
            Err(Held::Throttled(d)) => {
                let expected = Duration::from_secs_f64(missing as f64 / MIB as f64);
                let diff = d.abs_diff(expected);
                assert!(diff < Duration::from_millis(1), "{d:?} vs {expected:?}");
            }
            other => panic!("{other:?}"),
        }
        let later = t0 + Duration::from_secs_f64(missing as f64 / MIB as f64 + 0.001);
        assert_eq!(p.admit(peer, batch, max(batch), later), Ok(8 * MIB));
    }

    #[test]
    fn reservations_are_clamped_to_the_assumed_budget() {
        let mut politeness = politeness_config();
        politeness.extended_rate_limit.response_bytes =
            ByteRateLimit::new(3 * MIB, Duration::from_secs(10));
        let (mut p, peer, t0) = extended_peer(politeness);
        let batch = ReqRespKind::GetRawTxLists;
        // The peer clamps an 8 MiB reservation to its 3 MiB budget; so do we.
        assert_eq!(p.admit(peer, batch, max(batch), t0), Ok(3 * MIB));
        assert!(matches!(
            p.admit(peer, batch, 1, t0),
            Err(Held::Throttled(_))
        ));
        p.answered(&peer, batch, 3 * MIB, 0, t0);
        assert_eq!(p.admit(peer, batch, 1, t0), Ok(1));
    }

    #[test]
    fn a_refusal_teaches_tighter_limits_for_the_connection() {
        let (mut p, peer, t0) = extended_peer(politeness_config());
        let kind = ReqRespKind::GetCommitmentsByNumber;
        let m = max(kind);
        // Five pages accepted, the sixth refused (the peer runs 5 per window, not 256).
        for i in 0..6u64 {
            assert_eq!(p.admit(peer, kind, m, t0 + Duration::from_millis(i)), Ok(m));
            if i < 5 {
                p.answered(&peer, kind, m, m, t0);
            }
        }
        let t1 = t0 + Duration::from_millis(10);
        p.done(&peer, kind);
        p.refused(&peer, kind, t1);
        // Back off until the window (10 s + 500 ms) has passed.
        assert_eq!(
            p.admit(peer, kind, m, t1),
            Err(Held::Throttled(Duration::from_millis(10_500)))
        );
        assert_eq!(
            p.admit(peer, kind, m, t1 + Duration::from_millis(10_000)),
            Err(Held::Throttled(Duration::from_millis(500)))
        );
        // Then five per window: the refused send counts as one of the window's.
        let t2 = t1 + Duration::from_millis(10_500);
        for i in 0..5u64 {
            let t = t2 + Duration::from_millis(i);
            assert_eq!(p.admit(peer, kind, m, t), Ok(m), "send {i}");
            p.answered(&peer, kind, m, 0, t);
        }
        assert!(matches!(
            p.admit(peer, kind, m, t2 + Duration::from_millis(5)),
            Err(Held::Throttled(_))
        ));
        // Other protocols keep their limits.
        let list = ReqRespKind::GetRawTxList;
        for _ in 0..10 {
            assert!(p.admit(peer, list, 0, t2).is_ok());
            p.answered(&peer, list, 0, 0, t2);
        }
        // The byte budget halved: 32 MiB, not 64 MiB; a get_head refusal leaves it alone.
        assert_eq!(
            p.peers[&peer].bytes.as_ref().map(ByteBucket::capacity),
            Some(32 * MIB)
        );
        p.refused(&peer, ReqRespKind::GetHead, t2);
        assert_eq!(
            p.peers[&peer].bytes.as_ref().map(ByteBucket::capacity),
            Some(32 * MIB)
        );
        // A second refusal halves again, never below the floor (1 MiB).
        for _ in 0..10 {
            p.refused(&peer, kind, t2);
        }
        assert_eq!(
            p.peers[&peer].bytes.as_ref().map(ByteBucket::capacity),
            Some(MIB)
        );
        // A refusal with nothing else in the window still allows one per window.
        let lone = PeerId::random();
        p.identified(lone, &[ext()]);
        assert!(p.admit(lone, kind, m, t0).is_ok());
        p.done(&lone, kind);
        p.refused(&lone, kind, t0);
        assert_eq!(p.peers[&lone].lanes[&kind].learned_limit, Some(1));
        // A reconnect restores the defaults (the back-off and the budget's level stay).
        p.forget(&peer, t2);
        p.identified(peer, &[ext()]);
        assert!(p.peers[&peer].lanes[&kind].learned_limit.is_none());
        assert_eq!(
            p.peers[&peer].bytes.as_ref().map(ByteBucket::capacity),
            Some(64 * MIB)
        );
        // …with the default refill too: 64 MiB over 10 s + 500 ms. The level kept is 1 MiB
        // (the floor it was clamped to), so the rest comes back in 63/64 of 10.5 s.
        let wait = p
            .peers
            .get_mut(&peer)
            .and_then(|pacing| pacing.bytes.as_mut())
            .map(|b| b.time_until(64 * MIB, t2));
        let expected = Duration::from_secs_f64(10.5 * 63.0 / 64.0);
        assert!(
            wait.is_some_and(|w| w.abs_diff(expected) < Duration::from_millis(1)),
            "{wait:?} vs {expected:?}"
        );
    }
}
