//! Outbound politeness: never send a peer a request it would refuse.
//!
//! The deployed Taiko reference allows 8 requests per peer per protocol per 10 s and
//! disconnects (and refuses) a peer after a single failed or rate-limited exchange
//! (PROTOCOL.md "Reference strictness"). Nodes of this project refuse and penalise requests
//! above their own limits ([`crate::RateLimitConfig`]). So every outbound request passes
//! [`OutboundPacer::admit`] first, which keeps, per peer and protocol:
//!
//! - at most `max_in_flight` requests unanswered, and
//! - at most `requests` sends inside any sliding `window + margin`.
//!
//! Which limits apply depends on what the peer speaks, learnt from identify's protocol list
//! ([`PeerProfile`]): a peer that advertises this project's extension (`get_raw_txlists`,
//! PROTOCOL-EXT.md) is one of ours and is paced by this project's default inbound limits
//! ([`PolitenessConfig::extended_rate_limit`]); any other peer — including one not identified yet — is treated as the strict reference
//! ([`PolitenessConfig`]). A sliding window of `n` sends per window is at least as strict as
//! a token bucket or a fixed window of `n` per the same period, so this holds whichever the
//! peer runs; the margin absorbs latency jitter between our send and its arrival.
//!
//! A request the pacer holds back is not sent: the caller gets
//! [`crate::RequestError::Throttled`] with the time after which a retry fits, and chooses
//! another peer or waits.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use libp2p::{PeerId, StreamProtocol};
use preconfirmation_types::ReqRespKind;

use crate::config::PolitenessConfig;

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
    /// Send times inside the current window, oldest first; never longer than the limit.
    sent: VecDeque<Instant>,
}

#[derive(Debug)]
struct PeerPacing {
    profile: PeerProfile,
    lanes: HashMap<ReqRespKind, Lane>,
    /// Set when its last connection closed: kept until its windows have passed, because the
    /// peer's own limiter remembers our requests across a reconnect.
    disconnected_at: Option<Instant>,
}

/// Per-peer, per-protocol outbound pacing (see the module docs).
#[derive(Debug)]
pub(crate) struct OutboundPacer {
    politeness: PolitenessConfig,
    extension_protocol: StreamProtocol,
    peers: HashMap<PeerId, PeerPacing>,
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
        Self {
            politeness,
            extension_protocol,
            peers: HashMap::new(),
        }
    }

    /// Records what `peer` speaks (identify). Returns its profile.
    pub(crate) fn identified(&mut self, peer: PeerId, protocols: &[StreamProtocol]) -> PeerProfile {
        let profile = if protocols.contains(&self.extension_protocol) {
            PeerProfile::Extended
        } else {
            PeerProfile::Strict
        };
        self.peers
            .entry(peer)
            .or_insert_with(|| PeerPacing {
                profile,
                lanes: HashMap::new(),
                disconnected_at: None,
            })
            .profile = profile;
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

    /// Admits a request of `kind` to `peer` now (and counts it), or says why not.
    pub(crate) fn admit(
        &mut self,
        peer: PeerId,
        kind: ReqRespKind,
        now: Instant,
    ) -> Result<(), Held> {
        let profile = self.profile(&peer);
        if kind.is_extension() && profile == PeerProfile::Strict {
            return Err(Held::Unsupported);
        }
        let (per_window, window, max_in_flight) = self.limits(profile, kind);
        let pacing = self.peers.entry(peer).or_insert_with(|| PeerPacing {
            profile,
            lanes: HashMap::new(),
            disconnected_at: None,
        });
        pacing.disconnected_at = None;
        let lane = pacing.lanes.entry(kind).or_default();
        while lane
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            lane.sent.pop_front();
        }
        if lane.in_flight >= max_in_flight {
            // Retry once an answer is likely; the caller may also pick another peer.
            return Err(Held::Throttled(Duration::from_millis(50)));
        }
        if lane.sent.len() >= per_window {
            let oldest = lane.sent.front().copied().unwrap_or(now);
            let retry = window.saturating_sub(now.saturating_duration_since(oldest));
            return Err(Held::Throttled(retry.max(Duration::from_millis(1))));
        }
        lane.sent.push_back(now);
        lane.in_flight += 1;
        Ok(())
    }

    /// A request of `kind` to `peer` got its answer or failed.
    pub(crate) fn done(&mut self, peer: &PeerId, kind: ReqRespKind) {
        if let Some(lane) = self
            .peers
            .get_mut(peer)
            .and_then(|p| p.lanes.get_mut(&kind))
        {
            lane.in_flight = lane.in_flight.saturating_sub(1);
        }
    }

    /// `peer`'s last connection closed: nothing is in flight any more. Its send times are kept
    /// until its windows have passed (the peer's limiter remembers them across a reconnect),
    /// then dropped with every other such peer, so the state is bounded by the peers connected
    /// or disconnected within the longest window. Its profile falls back to strict until
    /// identify runs again.
    pub(crate) fn forget(&mut self, peer: &PeerId, now: Instant) {
        if let Some(pacing) = self.peers.get_mut(peer) {
            pacing.disconnected_at = Some(now);
            pacing.profile = PeerProfile::Strict;
            for lane in pacing.lanes.values_mut() {
                lane.in_flight = 0;
            }
        }
        let keep = self.longest_window();
        self.peers.retain(|_, p| {
            p.disconnected_at
                .is_none_or(|at| now.saturating_duration_since(at) < keep)
        });
    }

    /// The longest window any lane is paced by.
    fn longest_window(&self) -> Duration {
        let p = &self.politeness;
        let extended = ReqRespKind::ALL
            .iter()
            .map(|k| p.extended_rate_limit.get(*k).period)
            .max()
            .unwrap_or_default();
        p.strict_window.max(extended) + p.window_margin
    }

    /// Peers with pacing state (for tests and bounds).
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext() -> StreamProtocol {
        StreamProtocol::new("/taiko/1/preconf/1/get_raw_txlists")
    }

    fn pacer() -> OutboundPacer {
        OutboundPacer::new(PolitenessConfig::default(), ext())
    }

    #[test]
    fn strict_peer_gets_one_in_flight_and_eight_per_window() {
        let mut p = pacer();
        let peer = PeerId::random();
        let t0 = Instant::now();
        let kind = ReqRespKind::GetRawTxList;
        // Not identified yet: strict. One in flight.
        assert_eq!(p.admit(peer, kind, t0), Ok(()));
        assert!(matches!(p.admit(peer, kind, t0), Err(Held::Throttled(_))));
        // Other protocols have their own lanes.
        assert_eq!(p.admit(peer, ReqRespKind::GetHead, t0), Ok(()));
        p.done(&peer, kind);
        // Eight sends inside the window, answered one by one.
        for i in 1..8u64 {
            let t = t0 + Duration::from_millis(i);
            assert_eq!(p.admit(peer, kind, t), Ok(()), "send {i}");
            p.done(&peer, kind);
        }
        // The ninth waits until the first send leaves the window plus margin.
        let t = t0 + Duration::from_secs(1);
        match p.admit(peer, kind, t) {
            Err(Held::Throttled(d)) => assert_eq!(d, Duration::from_millis(9_500)),
            other => panic!("{other:?}"),
        }
        assert!(p
            .admit(peer, kind, t0 + Duration::from_millis(10_499))
            .is_err());
        assert_eq!(
            p.admit(peer, kind, t0 + Duration::from_millis(10_500)),
            Ok(())
        );
        // Never more than eight inside any 10.5 s window.
        p.done(&peer, kind);
        assert!(p
            .admit(peer, kind, t0 + Duration::from_millis(10_500))
            .is_err());
    }

    #[test]
    fn extensions_are_never_sent_to_strict_peers() {
        let mut p = pacer();
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert_eq!(
            p.admit(peer, ReqRespKind::GetRawTxLists, t0),
            Err(Held::Unsupported)
        );
        assert_eq!(
            p.identified(peer, &[StreamProtocol::new("/ipfs/ping/1.0.0")]),
            PeerProfile::Strict
        );
        assert_eq!(
            p.admit(peer, ReqRespKind::GetRawTxLists, t0),
            Err(Held::Unsupported)
        );
        assert_eq!(p.identified(peer, &[ext()]), PeerProfile::Extended);
        assert_eq!(p.admit(peer, ReqRespKind::GetRawTxLists, t0), Ok(()));
    }

    #[test]
    fn extended_peer_gets_our_own_limits() {
        let mut p = pacer();
        let peer = PeerId::random();
        p.identified(peer, &[ext()]);
        let t0 = Instant::now();
        let kind = ReqRespKind::GetRawTxList;
        let burst = crate::RateLimitConfig::default().get(kind).burst as usize;
        // Two in flight (our inbound concurrency), then held.
        assert_eq!(p.admit(peer, kind, t0), Ok(()));
        assert_eq!(p.admit(peer, kind, t0), Ok(()));
        assert!(p.admit(peer, kind, t0).is_err());
        p.done(&peer, kind);
        p.done(&peer, kind);
        for _ in 2..burst {
            assert_eq!(p.admit(peer, kind, t0), Ok(()));
            p.done(&peer, kind);
        }
        assert!(matches!(p.admit(peer, kind, t0), Err(Held::Throttled(_))));
        // Disconnected: strict again until identify, nothing in flight, but the sends of the
        // current window still count (the peer's limiter remembers them).
        p.forget(&peer, t0);
        assert_eq!(p.tracked(), 1);
        assert_eq!(p.profile(&peer), PeerProfile::Strict);
        assert!(matches!(p.admit(peer, kind, t0), Err(Held::Throttled(_))));
        p.identified(peer, &[ext()]);
        assert!(matches!(p.admit(peer, kind, t0), Err(Held::Throttled(_))));
        // Reconnected then gone again: dropped once another disconnect finds its windows over.
        p.forget(&peer, t0);
        let other = PeerId::random();
        p.admit(other, kind, t0).unwrap();
        p.forget(&other, t0 + Duration::from_millis(10_499));
        assert_eq!(p.tracked(), 2);
        p.forget(&other, t0 + Duration::from_millis(10_500));
        assert_eq!(p.tracked(), 1);
        assert!(!p.peers.contains_key(&peer), "its windows are over");
    }

    #[test]
    fn extended_peer_window_is_its_protocol_period_plus_margin() {
        // A period (2 s) unlike the strict window (10 s), so only the extended limit fits.
        let mut politeness = PolitenessConfig::default();
        politeness.extended_rate_limit.get_raw_txlists =
            crate::config::RateLimit::new(3, Duration::from_secs(2));
        let mut p = OutboundPacer::new(politeness, ext());
        let peer = PeerId::random();
        p.identified(peer, &[ext()]);
        let t0 = Instant::now();
        let kind = ReqRespKind::GetRawTxLists;
        for _ in 0..3 {
            assert_eq!(p.admit(peer, kind, t0), Ok(()));
            p.done(&peer, kind);
        }
        // The fourth waits until the first send leaves 2 s + 500 ms.
        assert_eq!(
            p.admit(peer, kind, t0 + Duration::from_secs(1)),
            Err(Held::Throttled(Duration::from_millis(1_500)))
        );
        assert!(p
            .admit(peer, kind, t0 + Duration::from_millis(2_499))
            .is_err());
        assert_eq!(
            p.admit(peer, kind, t0 + Duration::from_millis(2_500)),
            Ok(())
        );
    }
}
