//! The peer manager's connections and dial targets: connected, outbound and dialling peers,
//! static peers redialled with backoff, peers that refused us (a connection we dialled that
//! ended soon) backed off ever longer, and static peers dropped rather than penalised for a
//! catch-up disagreement.

use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

use super::{PeerManager, CATCHUP_DISAGREEMENT_REASON};

/// A peer that ended our last connection soon after it began.
#[derive(Debug, Clone, Copy)]
pub(super) struct Refuser {
    /// The backoff after its next refusal.
    backoff: Duration,
    /// Not dialled before this.
    next_dial: Instant,
}

/// A configured static peer and its redial state.
#[derive(Debug)]
pub(super) struct StaticPeer {
    addr: Multiaddr,
    peer: Option<PeerId>,
    connected: bool,
    backoff: Duration,
    next_attempt: Instant,
}

impl StaticPeer {
    /// The static peer at `addr`, due for its first dial at `now`.
    pub(super) fn new(addr: &Multiaddr, backoff: Duration, now: Instant) -> Self {
        Self {
            peer: peer_of(addr),
            addr: addr.clone(),
            connected: false,
            backoff,
            next_attempt: now,
        }
    }
}

impl<I: Copy + Eq + std::hash::Hash> PeerManager<I> {
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
    use crate::config::NetworkConfig;
    use crate::peers::manager::tests::manager;

    /// A peer id, its address, and a config naming that address as the one static peer.
    fn one_static_peer() -> (PeerId, Multiaddr, NetworkConfig) {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        let cfg = NetworkConfig {
            static_peers: vec![addr.clone()],
            ..Default::default()
        };
        (peer, addr, cfg)
    }

    /// How long after `t` the next static dial falls due, found in 250 ms steps (the call
    /// that finds it dials); never more than 601 s.
    fn until_redial(pm: &mut PeerManager<u64>, t: Instant) -> Duration {
        let mut wait = Duration::ZERO;
        while pm.due_static_dials(t + wait).is_empty() {
            wait += Duration::from_millis(250);
            assert!(wait <= Duration::from_secs(601), "never redialled");
        }
        wait
    }

    #[test]
    fn a_static_peer_is_redialled_a_backoff_after_it_disconnects() {
        let (peer, addr, cfg) = one_static_peer();
        let (mut pm, t0) = manager(&cfg);
        pm.on_connected(peer, &addr, true, t0);
        assert!(pm.due_static_dials(t0).is_empty(), "connected");
        let t1 = t0 + Duration::from_secs(100);
        pm.on_disconnected(PeerId::random(), t1);
        assert!(pm.due_static_dials(t1 + Duration::from_secs(5)).is_empty());
        pm.on_disconnected(peer, t1);
        assert!(pm.due_static_dials(t1).is_empty(), "not before the backoff");
        assert_eq!(pm.due_static_dials(t1 + Duration::from_secs(1)), vec![addr]);
    }

    /// The strict reference accepts the handshake of a peer it banned, then closes it, so
    /// redialling it every few seconds would go on for the life of its process. A connection we
    /// dialled that ends within `stable_connection` is a refusal: redials back off 1, 2, 4 … s
    /// up to 10 min, for a static peer and a discovered one alike; a connection that lasts
    /// resets it; an inbound connection that ends soon is no refusal.
    #[test]
    fn a_peer_that_keeps_refusing_us_is_redialled_ever_more_rarely() {
        let (peer, addr, cfg) = one_static_peer();
        let (mut pm, mut t) = manager(&cfg);
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
            let wait = until_redial(&mut pm, t);
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
        let (peer, addr, cfg) = one_static_peer();
        let cfg = NetworkConfig {
            remembered_departed_peers: 2,
            ..cfg
        };
        let (mut pm, t0) = manager(&cfg);
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
        let targets = |target_peers, max_outbound_peers| NetworkConfig {
            target_peers,
            max_outbound_peers,
            ..Default::default()
        };
        let (mut pm, t0) = manager(&targets(3, 2));
        let addr: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
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
        let mut spare: PeerManager<u64> = PeerManager::new(&targets(3, 10), t0);
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

    /// A wrong local schedule makes every catch-up page of the only static peer "invalid";
    /// banning that peer for an hour would cut the node off. A static peer is never penalised
    /// for a page that fails validation: it is dropped (disconnected) instead, once per
    /// connection, and redialled after a backoff that grows with each drop (even after a long
    /// connection). Any other peer is penalised for it, and a static peer for anything else.
    #[test]
    fn a_static_peer_is_dropped_not_penalised_for_catch_up_disagreement() {
        let (peer, addr, cfg) = one_static_peer();
        let other = PeerId::random();
        let (mut pm, mut t) = manager(&cfg);
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
            let wait = until_redial(&mut pm, t);
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
        let (mut pm, t0) = manager(&cfg);
        assert_eq!(pm.due_static_dials(t0).len(), 1);
        assert!(pm.due_static_dials(t0).is_empty());
        assert_eq!(pm.due_static_dials(t0 + Duration::from_secs(1)).len(), 1);
        // Backoff is now 2 s.
        assert!(pm.due_static_dials(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(pm.due_static_dials(t0 + Duration::from_secs(3)).len(), 1);
    }
}
