//! [`OrphanTxLists`]: the holding area for tx lists no accepted commitment references yet.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::PeerId;
use lru::LruCache;
use preconfirmation_net::GossipVerdict;
use preconfirmation_types::B256;

use super::held::{HeldVerdict, ReleasedVerdict};

#[derive(Debug)]
struct HeldTxList {
    txlist: Bytes,
    /// The peer whose quota it counts against (None: published locally or fetched).
    from: Option<PeerId>,
    verdict: Option<HeldVerdict>,
}

/// The holding area: tx lists no accepted commitment references yet (§6 publishes the tx list
/// just before its commitment), under count and byte caps and a per-peer byte quota, so one
/// peer id can neither fill it nor evict another's entries.
///
/// A gossiped tx list is forwarded only once a commitment references it: its verdict is held
/// here and released as `Accept` when a valid or pending commitment claims the list, or as
/// `Ignore` (no penalty: a slow preconfer is not an attacker) when it is evicted or waited
/// longer than the hold time. Released verdicts are collected for the manager to report.
#[derive(Debug)]
pub(crate) struct OrphanTxLists {
    cache: LruCache<B256, HeldTxList>,
    bytes: usize,
    per_peer: HashMap<PeerId, usize>,
    max_count: NonZeroUsize,
    max_bytes: usize,
    max_bytes_per_peer: usize,
    released: Vec<ReleasedVerdict>,
}

impl OrphanTxLists {
    /// An empty holding area.
    pub(crate) fn new(max_count: usize, max_bytes: usize, max_bytes_per_peer: usize) -> Self {
        Self {
            cache: LruCache::unbounded(),
            bytes: 0,
            per_peer: HashMap::new(),
            max_count: NonZeroUsize::new(max_count).unwrap_or(NonZeroUsize::MIN),
            max_bytes,
            max_bytes_per_peer: max_bytes_per_peer.min(max_bytes),
            released: Vec::new(),
        }
    }

    /// Holds `txlist` under `hash`, counted against `from`'s quota, with the gossip verdict
    /// `verdict` (if any) held until a commitment claims it. A list larger than the caps is
    /// not held (its verdict is released as `Ignore`). Makes room by evicting `from`'s own
    /// oldest lists first when its quota is full, then the least recently used.
    pub(crate) fn insert(
        &mut self,
        hash: B256,
        txlist: Bytes,
        from: Option<PeerId>,
        verdict: Option<HeldVerdict>,
    ) {
        let quota = if from.is_some() {
            self.max_bytes_per_peer
        } else {
            self.max_bytes
        };
        if txlist.len() > quota {
            if let Some(v) = verdict {
                self.released
                    .push((v.message_id, v.peer, GossipVerdict::Ignore));
            }
            return;
        }
        self.remove(&hash, GossipVerdict::Ignore);
        if let Some(peer) = from {
            while self.per_peer.get(&peer).copied().unwrap_or(0) + txlist.len() > quota {
                let oldest = self
                    .cache
                    .iter()
                    .rev()
                    .find(|(_, e)| e.from == Some(peer))
                    .map(|(h, _)| *h);
                match oldest {
                    Some(h) => {
                        self.remove(&h, GossipVerdict::Ignore);
                    }
                    None => break,
                }
            }
            *self.per_peer.entry(peer).or_default() += txlist.len();
        }
        self.bytes += txlist.len();
        self.cache.put(
            hash,
            HeldTxList {
                txlist,
                from,
                verdict,
            },
        );
        while self.cache.len() > self.max_count.get() || self.bytes > self.max_bytes {
            let Some(oldest) = self.cache.peek_lru().map(|(h, _)| *h) else {
                break;
            };
            self.remove(&oldest, GossipVerdict::Ignore);
        }
    }

    /// Removes `hash`, releasing its held verdict as `verdict`.
    fn remove(&mut self, hash: &B256, verdict: GossipVerdict) -> Option<Bytes> {
        let entry = self.cache.pop(hash)?;
        self.bytes -= entry.txlist.len();
        if let Some(peer) = entry.from {
            if let Some(used) = self.per_peer.get_mut(&peer) {
                *used = used.saturating_sub(entry.txlist.len());
                if *used == 0 {
                    self.per_peer.remove(&peer);
                }
            }
        }
        if let Some(v) = entry.verdict {
            self.released.push((v.message_id, v.peer, verdict));
        }
        Some(entry.txlist)
    }

    /// Removes and returns the tx list for `hash`: an accepted commitment references it, so
    /// its held verdict is released as `Accept`.
    pub(crate) fn take(&mut self, hash: &B256) -> Option<Bytes> {
        self.remove(hash, GossipVerdict::Accept)
    }

    /// A pending commitment references `hash`: its held verdict is released as `Accept`; the
    /// list stays until the commitment is accepted.
    pub(crate) fn claim(&mut self, hash: &B256) {
        if let Some(v) = self.cache.peek_mut(hash).and_then(|e| e.verdict.take()) {
            self.released
                .push((v.message_id, v.peer, GossipVerdict::Accept));
        }
    }

    /// Releases as `Ignore` every verdict held longer than `hold_for` (the list itself stays,
    /// under the caps, in case its commitment is only late). Returns how many.
    pub(crate) fn expire(&mut self, now: Instant, hold_for: Duration) -> usize {
        let mut expired = 0;
        for (_, entry) in self.cache.iter_mut() {
            if entry
                .verdict
                .as_ref()
                .is_some_and(|v| now.saturating_duration_since(v.since) >= hold_for)
            {
                if let Some(v) = entry.verdict.take() {
                    self.released
                        .push((v.message_id, v.peer, GossipVerdict::Ignore));
                    expired += 1;
                }
            }
        }
        expired
    }

    /// The verdicts released since the last call.
    pub(crate) fn take_released(&mut self) -> Vec<ReleasedVerdict> {
        std::mem::take(&mut self.released)
    }

    /// Whether `hash` is held.
    pub(crate) fn contains(&self, hash: &B256) -> bool {
        self.cache.contains(hash)
    }

    /// The held tx list for `hash`, without removing it.
    #[cfg(test)]
    pub(crate) fn get(&self, hash: &B256) -> Option<Bytes> {
        self.cache.peek(hash).map(|e| e.txlist.clone())
    }

    /// Number of held lists.
    pub(crate) fn len(&self) -> usize {
        self.cache.len()
    }

    /// Held bytes.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held for `peer`.
    #[cfg(test)]
    pub(crate) fn bytes_of(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Peers with bytes held (bounded by the count cap).
    #[cfg(test)]
    pub(crate) fn peers(&self) -> usize {
        self.per_peer.len()
    }
}

#[cfg(test)]
mod tests {
    use preconfirmation_net::MessageId as GossipMessageId;

    use super::*;

    fn held(n: u8, peer: PeerId) -> Option<HeldVerdict> {
        Some(HeldVerdict {
            message_id: GossipMessageId::new(&[n]),
            peer,
            since: Instant::now(),
        })
    }

    /// Holds list `n` (`len` zero bytes) gossiped by `peer`, its verdict held.
    fn gossiped(area: &mut OrphanTxLists, n: u8, len: usize, peer: PeerId) {
        let txlist = Bytes::from(vec![0; len]);
        area.insert(B256::repeat_byte(n), txlist, Some(peer), held(n, peer));
    }

    fn verdicts(area: &mut OrphanTxLists) -> Vec<(u8, GossipVerdict)> {
        area.take_released()
            .into_iter()
            .map(|(id, _, v)| (id.0[0], v))
            .collect()
    }

    #[test]
    fn holding_area_respects_count_and_bytes() {
        let mut cache = OrphanTxLists::new(2, 150, 150);
        cache.insert(B256::repeat_byte(1), Bytes::from(vec![0; 100]), None, None);
        cache.insert(B256::repeat_byte(2), Bytes::from(vec![0; 40]), None, None);
        cache.insert(B256::repeat_byte(3), Bytes::from(vec![0; 40]), None, None);
        assert_eq!(cache.len(), 2);
        assert!(!cache.contains(&B256::repeat_byte(1)));
        cache.insert(B256::repeat_byte(4), Bytes::from(vec![0; 151]), None, None);
        assert!(!cache.contains(&B256::repeat_byte(4)));
        assert!(cache.bytes() <= 150);
        assert_eq!(cache.take(&B256::repeat_byte(2)).map(|b| b.len()), Some(40));
        assert_eq!(cache.bytes(), 40);
        cache.insert(B256::repeat_byte(5), Bytes::from(vec![0; 110]), None, None);
        assert_eq!(cache.bytes(), 150, "exactly at the byte cap is allowed");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn one_peer_evicts_only_its_own_lists() {
        let (honest, attacker) = (PeerId::random(), PeerId::random());
        let mut area = OrphanTxLists::new(100, 1_000, 300);
        gossiped(&mut area, 1, 100, honest);
        for i in 10..20u8 {
            gossiped(&mut area, i, 100, attacker);
        }
        assert!(
            area.contains(&B256::repeat_byte(1)),
            "the honest list survives"
        );
        assert_eq!(area.bytes_of(&attacker), 300);
        assert_eq!(area.bytes_of(&honest), 100);
        assert_eq!(area.peers(), 2);
        // The attacker's seven evicted lists were released as Ignore, oldest first.
        let released = verdicts(&mut area);
        assert_eq!(released.len(), 7);
        assert_eq!(released[0], (10, GossipVerdict::Ignore));
        assert!(released.iter().all(|(_, v)| *v == GossipVerdict::Ignore));
        // Over the quota alone: not held at all.
        gossiped(&mut area, 30, 301, attacker);
        assert!(!area.contains(&B256::repeat_byte(30)));
        assert_eq!(verdicts(&mut area), vec![(30, GossipVerdict::Ignore)]);
        // Taking a list frees its peer's quota.
        area.take(&B256::repeat_byte(1));
        assert_eq!(area.bytes_of(&honest), 0);
        assert_eq!(area.peers(), 1);
    }

    #[test]
    fn held_verdicts_are_accepted_when_claimed_and_ignored_when_late() {
        let peer = PeerId::random();
        let mut area = OrphanTxLists::new(10, 1_000, 1_000);
        let t0 = Instant::now();
        for i in 1..=3u8 {
            gossiped(&mut area, i, 10, peer);
        }
        assert!(
            verdicts(&mut area).is_empty(),
            "nothing released on arrival"
        );
        area.claim(&B256::repeat_byte(1));
        assert_eq!(verdicts(&mut area), vec![(1, GossipVerdict::Accept)]);
        assert!(area.contains(&B256::repeat_byte(1)), "a claimed list stays");
        area.claim(&B256::repeat_byte(1));
        assert!(verdicts(&mut area).is_empty(), "released once");
        assert_eq!(area.take(&B256::repeat_byte(2)).map(|b| b.len()), Some(10));
        assert_eq!(verdicts(&mut area), vec![(2, GossipVerdict::Accept)]);
        let hold = Duration::from_secs(3);
        assert_eq!(area.expire(t0, hold), 0);
        assert_eq!(area.expire(t0 + hold + Duration::from_secs(1), hold), 1);
        assert_eq!(verdicts(&mut area), vec![(3, GossipVerdict::Ignore)]);
        assert!(
            area.contains(&B256::repeat_byte(3)),
            "the bytes stay under the caps"
        );
        assert!(area.get(&B256::repeat_byte(3)).is_some());
    }
}
