//! [`ChainState`]: what the SDK remembers about the chain between messages — the head, recent
//! accepted commitments (for equivocation checks), EOP hand-offs, seen message ids, the pending
//! buffer and tx lists waiting for their commitment. All of it is bounded.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::PeerId;
use lru::LruCache;
use preconfirmation_net::{GossipVerdict, MessageId as GossipMessageId};
use preconfirmation_types::{
    preconfirmation_hash, Address, PreconfHead, SignedCommitment, B256, U256,
};

use crate::config::{Anchor, P2pSdkConfig};
use crate::dedupe::{BoundedMap, BoundedSet};
use crate::pending::PendingBuffer;
use crate::types::MessageId;
use crate::validation::{AcceptedCommitment, ChainView, LocalHead};

/// A gossip verdict the SDK holds back while a tx list waits for a commitment that references
/// it (gossipsub validates asynchronously: the message is neither forwarded nor dropped until
/// the verdict is reported).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldVerdict {
    /// The gossipsub message.
    pub message_id: GossipMessageId,
    /// Its propagation source.
    pub peer: PeerId,
    /// When it arrived.
    pub since: Instant,
}

/// A verdict now due: report it to gossipsub.
pub type ReleasedVerdict = (GossipMessageId, PeerId, GossipVerdict);

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
pub struct OrphanTxLists {
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
    pub fn new(max_count: usize, max_bytes: usize, max_bytes_per_peer: usize) -> Self {
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
    pub fn insert(
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
    pub fn take(&mut self, hash: &B256) -> Option<Bytes> {
        self.remove(hash, GossipVerdict::Accept)
    }

    /// A pending commitment references `hash`: its held verdict is released as `Accept`; the
    /// list stays until the commitment is accepted.
    pub fn claim(&mut self, hash: &B256) {
        if let Some(v) = self.cache.peek_mut(hash).and_then(|e| e.verdict.take()) {
            self.released
                .push((v.message_id, v.peer, GossipVerdict::Accept));
        }
    }

    /// Releases as `Ignore` every verdict held longer than `hold_for` (the list itself stays,
    /// under the caps, in case its commitment is only late). Returns how many.
    pub fn expire(&mut self, now: Instant, hold_for: Duration) -> usize {
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
    pub fn take_released(&mut self) -> Vec<ReleasedVerdict> {
        std::mem::take(&mut self.released)
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &B256) -> bool {
        self.cache.contains(hash)
    }

    /// The held tx list for `hash`, without removing it.
    pub fn get(&self, hash: &B256) -> Option<Bytes> {
        self.cache.peek(hash).map(|e| e.txlist.clone())
    }

    /// Number of held lists.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the area is empty.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Held bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes held for `peer`.
    pub fn bytes_of(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).copied().unwrap_or(0)
    }

    /// Peers with bytes held (bounded by the count cap).
    pub fn peers(&self) -> usize {
        self.per_peer.len()
    }
}

/// The SDK's in-memory view of the chain.
#[derive(Debug)]
pub struct ChainState {
    head: LocalHead,
    head_window_end: U256,
    recent: BTreeMap<u64, (Arc<SignedCommitment>, Address)>,
    recent_cap: usize,
    slot_signers: BoundedMap<(u64, Address), Arc<SignedCommitment>>,
    eops: BoundedMap<U256, Arc<SignedCommitment>>,
    /// Message ids seen (received or published).
    pub seen: BoundedSet<MessageId>,
    /// Commitments waiting for their parent or schedule.
    pub pending: PendingBuffer,
    /// Tx lists waiting for a commitment.
    pub orphans: OrphanTxLists,
    /// Accepted commitments whose tx list is missing.
    awaiting_txlists: AwaitedTxLists,
}

impl ChainState {
    /// State at the anchor (empty storage).
    pub fn new(config: &P2pSdkConfig) -> Self {
        let Anchor {
            block_number,
            preconfirmation_hash,
        } = config.anchor;
        Self {
            head: LocalHead {
                block_number,
                preconfirmation_hash,
                timestamp: None,
            },
            head_window_end: U256::ZERO,
            recent: BTreeMap::new(),
            recent_cap: config.dedupe.slot_signers.max(1),
            slot_signers: BoundedMap::new(config.dedupe.slot_signers),
            eops: BoundedMap::new(config.dedupe.slot_signers),
            seen: BoundedSet::new(config.dedupe.seen_messages),
            pending: PendingBuffer::new(config.pending.clone()),
            orphans: OrphanTxLists::new(
                config.orphan_txlists.max_count,
                config.orphan_txlists.max_bytes,
                config.orphan_txlists.max_bytes_per_peer,
            ),
            awaiting_txlists: AwaitedTxLists::new(config.dedupe.slot_signers),
        }
    }

    /// Moves the head to a stored commitment (start-up from storage). Recent-commitment
    /// memory starts empty.
    pub fn set_head_from(&mut self, head: &SignedCommitment) -> bool {
        let Ok(number) = u64::try_from(head.preconf().block_number) else {
            return false;
        };
        self.head = LocalHead {
            block_number: number,
            preconfirmation_hash: Some(preconfirmation_hash(head.preconf())),
            timestamp: u64::try_from(head.preconf().timestamp).ok(),
        };
        self.head_window_end = head.preconf().submission_window_end;
        true
    }

    /// Records an accepted commitment: it becomes the head.
    pub fn apply(&mut self, commitment: &SignedCommitment, accepted: &AcceptedCommitment) {
        let preconf = commitment.preconf();
        self.head = LocalHead {
            block_number: accepted.block_number,
            preconfirmation_hash: Some(preconfirmation_hash(preconf)),
            timestamp: Some(accepted.timestamp),
        };
        self.head_window_end = preconf.submission_window_end;
        // One copy shared by the three memories (each would otherwise hold its own ~400 B).
        let shared = Arc::new(commitment.clone());
        self.recent
            .insert(accepted.block_number, (shared.clone(), accepted.signer));
        while self.recent.len() > self.recent_cap {
            self.recent.pop_first();
        }
        self.slot_signers
            .insert_if_absent((accepted.slot, accepted.signer), shared.clone());
        if preconf.eop {
            self.eops
                .insert_if_absent(preconf.submission_window_end, shared);
        }
    }

    /// The head as a `PreconfHead` (§10.2).
    pub fn preconf_head(&self) -> PreconfHead {
        PreconfHead {
            block_number: U256::from(self.head.block_number),
            submission_window_end: self.head_window_end,
        }
    }

    /// Notes that the tx list `hash` of block `number` is missing; when `dedupe.slot_signers`
    /// are already missing, the one of the lowest block number is forgotten.
    pub fn await_txlist(&mut self, hash: B256, number: u64) {
        self.awaiting_txlists.insert(hash, number);
    }

    /// The block waiting for tx list `hash`, removing the note.
    pub fn take_awaiting(&mut self, hash: &B256) -> Option<u64> {
        self.awaiting_txlists.remove(hash)
    }

    /// Whether tx list `hash` is awaited.
    pub fn is_awaited(&self, hash: &B256) -> bool {
        self.awaiting_txlists.by_hash.contains_key(hash)
    }

    /// Missing tx lists: (hash, block number).
    pub fn awaited(&self) -> Vec<(B256, u64)> {
        self.awaiting_txlists
            .by_hash
            .iter()
            .map(|(h, n)| (*h, *n))
            .collect()
    }

    /// Number of missing tx lists.
    pub fn awaited_len(&self) -> usize {
        self.awaiting_txlists.by_hash.len()
    }
}

/// Tx lists that accepted commitments reference and this node does not have: hash → block
/// number, at most `cap` of them; when full, the one of the lowest block number is forgotten.
/// Indexed both ways so that forgetting the oldest costs O(log n), not a scan: a peer that
/// never sends tx lists fills it, and every further commitment would pay for the scan.
#[derive(Debug)]
struct AwaitedTxLists {
    by_hash: foldhash::HashMap<B256, u64>,
    by_number: BTreeSet<(u64, B256)>,
    cap: usize,
}

impl AwaitedTxLists {
    fn new(cap: usize) -> Self {
        Self {
            by_hash: foldhash::HashMap::default(),
            by_number: BTreeSet::new(),
            cap: cap.max(1),
        }
    }

    fn insert(&mut self, hash: B256, number: u64) {
        if let Some(previous) = self.by_hash.insert(hash, number) {
            self.by_number.remove(&(previous, hash));
        }
        self.by_number.insert((number, hash));
        while self.by_hash.len() > self.cap {
            let Some((_, oldest)) = self.by_number.pop_first() else {
                break;
            };
            self.by_hash.remove(&oldest);
        }
    }

    fn remove(&mut self, hash: &B256) -> Option<u64> {
        let number = self.by_hash.remove(hash)?;
        self.by_number.remove(&(number, *hash));
        Some(number)
    }
}

impl ChainView for ChainState {
    fn head(&self) -> LocalHead {
        self.head
    }

    fn accepted_at(&self, block_number: u64) -> Option<(SignedCommitment, Address)> {
        self.recent
            .get(&block_number)
            .map(|(commitment, signer)| (SignedCommitment::clone(commitment), *signer))
    }

    fn accepted_in_slot(&self, slot: u64, signer: Address) -> Option<SignedCommitment> {
        self.slot_signers
            .get(&(slot, signer))
            .map(|c| SignedCommitment::clone(c))
    }

    fn eop_for_window(&self, window_end: U256) -> Option<SignedCommitment> {
        self.eops
            .get(&window_end)
            .map(|c| SignedCommitment::clone(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(n: u8, peer: PeerId) -> Option<HeldVerdict> {
        Some(HeldVerdict {
            message_id: GossipMessageId::new(&[n]),
            peer,
            since: Instant::now(),
        })
    }

    fn verdicts(area: &mut OrphanTxLists) -> Vec<(u8, GossipVerdict)> {
        area.take_released()
            .into_iter()
            .map(|(id, _, v)| (id.0[0], v))
            .collect()
    }

    #[test]
    fn awaited_tx_lists_forget_the_lowest_block_when_full() {
        let mut awaited = AwaitedTxLists::new(3);
        for (byte, number) in [(1u8, 12u64), (2, 10), (3, 11)] {
            awaited.insert(B256::repeat_byte(byte), number);
        }
        awaited.insert(B256::repeat_byte(4), 13);
        assert_eq!(awaited.by_hash.len(), 3);
        assert!(
            !awaited.by_hash.contains_key(&B256::repeat_byte(2)),
            "block 10 forgotten"
        );
        // Awaited again for a newer block: one entry, at the new number.
        awaited.insert(B256::repeat_byte(3), 14);
        assert_eq!(awaited.by_hash.len(), 3);
        awaited.insert(B256::repeat_byte(5), 15);
        assert!(
            !awaited.by_hash.contains_key(&B256::repeat_byte(1)),
            "block 12 forgotten"
        );
        assert_eq!(awaited.remove(&B256::repeat_byte(3)), Some(14));
        assert_eq!(awaited.remove(&B256::repeat_byte(3)), None);
        assert_eq!(
            awaited.by_number.len(),
            awaited.by_hash.len(),
            "indexes agree"
        );
        let left: Vec<_> = awaited.by_number.iter().map(|(n, _)| *n).collect();
        assert_eq!(left, vec![13, 15]);
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
        area.insert(
            B256::repeat_byte(1),
            Bytes::from(vec![0; 100]),
            Some(honest),
            held(1, honest),
        );
        for i in 10..20u8 {
            area.insert(
                B256::repeat_byte(i),
                Bytes::from(vec![0; 100]),
                Some(attacker),
                held(i, attacker),
            );
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
        area.insert(
            B256::repeat_byte(30),
            Bytes::from(vec![0; 301]),
            Some(attacker),
            held(30, attacker),
        );
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
            area.insert(
                B256::repeat_byte(i),
                Bytes::from(vec![0; 10]),
                Some(peer),
                held(i, peer),
            );
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
