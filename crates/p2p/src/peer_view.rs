//! What the SDK learns about the chain from its peers, for health and status: the heads they
//! last reported ([`PeerHeads`]), and whether they all disagree with the local schedule
//! ([`ScheduleAgreement`]).
//!
//! # Every peer disagrees: the local schedule is the likely culprit
//!
//! A commitment whose signer is not the one the local schedule elects (or whose window end is
//! not the schedule's) is invalid here; ordinarily its sender is penalised (§7.1), and a
//! sustained low score bans it. But when the local schedule is wrong — a wrong
//! `lookahead.preconfers` list, genesis or window length — *every* honest peer sends such
//! commitments, and banning them all for an hour isolates the misconfigured node while the
//! fault is its own.
//!
//! The SDK keeps, for each connected peer, the last schedule verdict on a commitment it
//! delivered (gossip, or a catch-up page it served): *agrees* (accepted) or *disagrees*
//! (failed the signer or window-end check). It concludes that the local schedule is wrong —
//! and stops penalising for those rules — when no connected peer agrees and at least
//! `min(schedule_disagreement_min_peers, connected peers)` distinct peers disagree (so one
//! peer when it is the only one). It says so once at WARN, naming the rule and the signer the
//! peers use, and once at INFO when a peer's commitment passes again. A single liar among
//! agreeing peers is still penalised: the others agree. Opinions last while the peer is
//! connected: an honest peer that delivered valid commitments keeps vouching for the local
//! schedule against newcomers that do not.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use libp2p::PeerId;
use parking_lot::Mutex;
use preconfirmation_types::Address;
use tracing::{debug, info, warn};

use crate::validation::RejectReason;

/// A peer's head as it answered `get_head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerHead {
    /// The peer.
    pub peer: PeerId,
    /// Its head block number.
    pub block_number: u64,
    /// When it answered.
    pub at: Instant,
}

/// The heads peers reported in the last catch-up round (catch-up asks up to
/// `catchup.head_peers` peers at start, on a gap, on a new peer and when the local head has
/// not moved for `catchup.stale_head_check`). Each round replaces the last one's, so it holds
/// at most `head_peers` entries.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerHeads(Arc<Mutex<Vec<PeerHead>>>);

impl PeerHeads {
    /// The answers of a round, `(peer, head)`.
    pub(crate) fn replace(&self, heads: &[(PeerId, u64)]) {
        let at = Instant::now();
        *self.0.lock() = heads
            .iter()
            .map(|&(peer, block_number)| PeerHead {
                peer,
                block_number,
                at,
            })
            .collect();
    }

    /// Forgets a peer that disconnected.
    pub(crate) fn forget(&self, peer: &PeerId) {
        self.0.lock().retain(|h| h.peer != *peer);
    }

    /// The highest head reported by a peer still connected (`connected` says which are).
    pub(crate) fn best(&self, connected: impl Fn(&PeerId) -> bool) -> Option<PeerHead> {
        self.0
            .lock()
            .iter()
            .filter(|h| connected(&h.peer))
            .max_by_key(|h| h.block_number)
            .copied()
    }
}

/// Every connected peer that delivered a schedule-checked commitment disagrees with the local
/// schedule (see the module docs). Shown by `/status` and `/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleDisagreement {
    /// The peers whose last commitment failed the check.
    pub peers: Vec<PeerId>,
    /// The rule the last one failed (`wrong_signer`, `wrong_window_end`, …).
    pub rule: &'static str,
    /// The signer the schedule expected and the one the peers' commitments carry, for a
    /// `wrong_signer` failure.
    pub signers: Option<(Address, Address)>,
    /// Since when.
    pub since: Instant,
}

/// A peer's last schedule verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opinion {
    Agrees,
    Disagrees,
}

/// The tracker behind [`ScheduleDisagreement`]; owned by the SDK core (one writer), its
/// conclusion shared with the handle.
#[derive(Debug)]
pub(crate) struct ScheduleAgreement {
    min_peers: usize,
    connected: HashSet<PeerId>,
    opinions: HashMap<PeerId, Opinion>,
    shared: Arc<Mutex<Option<ScheduleDisagreement>>>,
    /// Whether the WARN was logged (once per process: later episodes at DEBUG, so a peer that
    /// alternates valid and invalid commitments cannot fill the log).
    warned: bool,
    /// Whether the end of the warned episode was logged (INFO, once).
    told_recovered: bool,
}

/// Whether `reason` is the local schedule's verdict on who signs, or when a window ends.
pub(crate) fn is_schedule_rule(reason: &RejectReason) -> bool {
    matches!(
        reason,
        RejectReason::WrongSigner { .. }
            | RejectReason::WrongWindowEnd { .. }
            | RejectReason::WindowEndOutOfRange(_)
    )
}

impl ScheduleAgreement {
    /// Concludes with `min_peers` disagreeing peers (fewer when fewer are connected).
    pub(crate) fn new(min_peers: usize) -> Self {
        Self {
            min_peers: min_peers.max(1),
            connected: HashSet::new(),
            opinions: HashMap::new(),
            shared: Arc::default(),
            warned: false,
            told_recovered: false,
        }
    }

    /// The conclusion, shared with the SDK handle.
    pub(crate) fn handle(&self) -> Arc<Mutex<Option<ScheduleDisagreement>>> {
        self.shared.clone()
    }

    pub(crate) fn connected(&mut self, peer: PeerId) {
        self.connected.insert(peer);
    }

    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.connected.remove(peer);
        self.opinions.remove(peer);
        let mut shared = self.shared.lock();
        if let Some(d) = shared.as_mut() {
            d.peers.retain(|p| p != peer);
            if d.peers.is_empty() {
                *shared = None;
            }
        }
    }

    /// A commitment `peer` delivered was accepted.
    pub(crate) fn agreed(&mut self, peer: PeerId) {
        if !self.connected.contains(&peer) {
            return;
        }
        self.opinions.insert(peer, Opinion::Agrees);
        if self.shared.lock().take().is_some() {
            if self.told_recovered {
                debug!(%peer, "a peer's commitments pass the local schedule check again");
            } else {
                self.told_recovered = true;
                info!(%peer, "a peer's commitments pass the local schedule check again");
            }
        }
    }

    /// A commitment `peer` delivered failed `reason`; returns whether the sender may be
    /// penalised for it (`false` once every peer disagrees with the local schedule).
    pub(crate) fn disagreed(&mut self, peer: PeerId, reason: &RejectReason) -> bool {
        if !is_schedule_rule(reason) || !self.connected.contains(&peer) {
            return true;
        }
        self.opinions.insert(peer, Opinion::Disagrees);
        let disagreeing: Vec<PeerId> = self
            .opinions
            .iter()
            .filter(|(_, o)| **o == Opinion::Disagrees)
            .map(|(p, _)| *p)
            .collect();
        let agreeing = self.opinions.len() - disagreeing.len();
        let needed = self.min_peers.min(self.connected.len()).max(1);
        if agreeing > 0 || disagreeing.len() < needed {
            // No longer every peer (one agreed, or more connected than disagree): penalise.
            if self.shared.lock().take().is_some() {
                debug!(
                    disagreeing = disagreeing.len(),
                    needed, agreeing, "not every peer disagrees with the local schedule now"
                );
            }
            return true;
        }
        let signers = match reason {
            RejectReason::WrongSigner { expected, actual } => Some((*expected, *actual)),
            _ => None,
        };
        let mut shared = self.shared.lock();
        match shared.as_mut() {
            Some(d) => {
                d.peers = disagreeing;
                d.rule = reason.label();
                d.signers = signers.or(d.signers);
            }
            None => {
                match signers {
                    _ if self.warned => debug!(
                        peers = disagreeing.len(),
                        rule = reason.label(),
                        "every peer disagrees with the local schedule again"
                    ),
                    Some((expected, actual)) => warn!(
                        peers = disagreeing.len(),
                        rule = reason.label(),
                        %expected,
                        peers_signer = %actual,
                        "every peer's commitments fail the local schedule's signer check: is \
                         lookahead.preconfers right? Peers are not penalised for it meanwhile"
                    ),
                    None => warn!(
                        peers = disagreeing.len(),
                        rule = reason.label(),
                        "every peer's commitments fail the local schedule's window check: are \
                         lookahead.preconfers, genesis_timestamp and slots_per_window right? \
                         Peers are not penalised for it meanwhile"
                    ),
                }
                self.warned = true;
                *shared = Some(ScheduleDisagreement {
                    peers: disagreeing,
                    rule: reason.label(),
                    signers,
                    since: Instant::now(),
                });
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use preconfirmation_types::U256;

    use super::*;

    fn wrong_signer() -> RejectReason {
        RejectReason::WrongSigner {
            expected: Address::repeat_byte(1),
            actual: Address::repeat_byte(2),
        }
    }

    #[test]
    fn a_lone_peer_that_disagrees_is_the_schedule_s_fault() {
        let mut a = ScheduleAgreement::new(2);
        let p = PeerId::random();
        a.connected(p);
        assert!(!a.disagreed(p, &wrong_signer()), "not penalised");
        let d = a.handle().lock().clone().expect("concluded");
        assert_eq!(d.peers, vec![p]);
        assert_eq!(d.rule, "wrong_signer");
        assert_eq!(
            d.signers,
            Some((Address::repeat_byte(1), Address::repeat_byte(2)))
        );
        // Its next valid commitment ends it; each peer's latest verdict counts.
        a.agreed(p);
        assert!(a.handle().lock().is_none());
        assert!(!a.disagreed(p, &wrong_signer()));
        assert!(a.handle().lock().is_some());
    }

    #[test]
    fn a_conclusion_is_withdrawn_once_it_no_longer_holds() {
        let mut a = ScheduleAgreement::new(2);
        let (p, q) = (PeerId::random(), PeerId::random());
        a.connected(p);
        assert!(!a.disagreed(p, &wrong_signer()));
        // A second peer connects: one of two is not every peer.
        a.connected(q);
        assert!(a.disagreed(p, &wrong_signer()), "penalised again");
        assert!(a.handle().lock().is_none(), "withdrawn");
        assert!(!a.disagreed(q, &wrong_signer()), "both disagree");
        assert!(a.handle().lock().is_some());
    }

    #[test]
    fn one_liar_among_agreeing_peers_is_penalised() {
        let mut a = ScheduleAgreement::new(2);
        let (honest, liar, quiet) = (PeerId::random(), PeerId::random(), PeerId::random());
        for p in [honest, liar, quiet] {
            a.connected(p);
        }
        a.agreed(honest);
        assert!(a.disagreed(liar, &wrong_signer()));
        assert!(a.handle().lock().is_none());
        // Without the honest peer's vote, one of three connected peers is not enough either.
        a.disconnected(&honest);
        assert!(a.disagreed(liar, &wrong_signer()), "1 of min(2, 2) peers");
        // A second distinct peer that disagrees is.
        assert!(!a.disagreed(quiet, &wrong_signer()));
        assert_eq!(a.handle().lock().as_ref().map(|d| d.peers.len()), Some(2));
    }

    #[test]
    fn only_schedule_rules_and_connected_peers_count() {
        let mut a = ScheduleAgreement::new(1);
        let p = PeerId::random();
        assert!(a.disagreed(p, &wrong_signer()), "not connected: no opinion");
        a.connected(p);
        assert!(a.disagreed(p, &RejectReason::BadParent));
        assert!(!a.disagreed(
            p,
            &RejectReason::WrongWindowEnd {
                expected: U256::from(1),
                actual: U256::from(2)
            }
        ));
        a.disconnected(&p);
        assert!(a.handle().lock().is_none(), "gone with its last peer");
    }

    #[test]
    fn peer_heads_are_the_last_round_s_and_only_connected_peers_count() {
        let heads = PeerHeads::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        heads.replace(&[(a, 10), (b, 7)]);
        assert_eq!(heads.best(|_| true).map(|h| h.block_number), Some(10));
        assert_eq!(heads.best(|p| *p == b).map(|h| h.peer), Some(b));
        heads.forget(&a);
        assert_eq!(heads.best(|_| true).map(|h| h.peer), Some(b));
        heads.replace(&[]);
        assert!(heads.best(|_| true).is_none());
    }
}
