//! [`ChainState`]: what the SDK remembers about the chain between messages — the head, recent
//! accepted commitments (for equivocation checks), EOP hand-offs, seen message ids, the pending
//! buffer and tx lists waiting for their commitment. All of it is bounded.

use std::collections::VecDeque;
use std::sync::Arc;

use preconfirmation_types::{
    preconfirmation_hash, Address, PreconfHead, SignedCommitment, B256, U256,
};

use super::dedupe::{BoundedMap, BoundedSet};
use super::orphans::OrphanTxLists;
use super::pending::PendingBuffer;
use crate::config::{Anchor, P2pSdkConfig};
use crate::types::MessageId;
use crate::validation::{AcceptedCommitment, ChainView, LocalHead};

/// The SDK's in-memory view of the chain.
#[derive(Debug)]
#[cfg_attr(not(feature = "test-utils"), allow(unreachable_pub))]
pub struct ChainState {
    head: LocalHead,
    head_window_end: U256,
    recent: RecentCommitments,
    slot_signers: BoundedMap<(u64, Address), Arc<SignedCommitment>>,
    eops: BoundedMap<U256, Arc<SignedCommitment>>,
    /// Message ids seen (received or published).
    seen: BoundedSet<MessageId>,
    /// Commitments waiting for their parent or schedule.
    pending: PendingBuffer,
    /// Tx lists waiting for a commitment.
    orphans: OrphanTxLists,
    /// Accepted commitments whose tx list is missing.
    awaiting_txlists: AwaitedTxLists,
}

impl ChainState {
    /// State at the anchor (empty storage).
    #[cfg_attr(not(feature = "test-utils"), allow(unreachable_pub))]
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
            recent: RecentCommitments::new(config.dedupe.slot_signers),
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
    pub(crate) fn set_head_from(&mut self, head: &SignedCommitment) -> bool {
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

    /// Records message `id` as seen: `true` if it is new.
    #[cfg_attr(not(feature = "test-utils"), allow(unreachable_pub))]
    pub fn see(&mut self, id: MessageId) -> bool {
        self.seen.insert(id)
    }

    /// The pending buffer.
    pub(crate) fn pending(&self) -> &PendingBuffer {
        &self.pending
    }

    /// The pending buffer, to insert, take and sweep.
    pub(crate) fn pending_mut(&mut self) -> &mut PendingBuffer {
        &mut self.pending
    }

    /// The holding area for tx lists.
    pub(crate) fn orphans(&self) -> &OrphanTxLists {
        &self.orphans
    }

    /// The holding area for tx lists, to insert, take and expire.
    pub(crate) fn orphans_mut(&mut self) -> &mut OrphanTxLists {
        &mut self.orphans
    }

    /// Records an accepted commitment: it becomes the head.
    #[cfg_attr(not(feature = "test-utils"), allow(unreachable_pub))]
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
            .insert(accepted.block_number, shared.clone(), accepted.signer);
        self.slot_signers
            .insert_if_absent((accepted.slot, accepted.signer), shared.clone());
        if preconf.eop {
            self.eops
                .insert_if_absent(preconf.submission_window_end, shared);
        }
    }

    /// The head as a `PreconfHead` (§10.2).
    pub(crate) fn preconf_head(&self) -> PreconfHead {
        PreconfHead {
            block_number: U256::from(self.head.block_number),
            submission_window_end: self.head_window_end,
        }
    }

    /// Notes that the tx list `hash` of block `number` is missing; when `dedupe.slot_signers`
    /// are already missing, the one of the lowest block number is forgotten.
    pub(crate) fn await_txlist(&mut self, hash: B256, number: u64) {
        self.awaiting_txlists.insert(hash, number);
    }

    /// The block waiting for tx list `hash`, removing the note.
    pub(crate) fn take_awaiting(&mut self, hash: &B256) -> Option<u64> {
        self.awaiting_txlists.remove(hash)
    }

    /// Whether tx list `hash` is awaited.
    pub(crate) fn is_awaited(&self, hash: &B256) -> bool {
        self.awaiting_txlists.by_hash.contains_key(hash)
    }

    /// Missing tx lists: (hash, block number).
    pub(crate) fn awaited(&self) -> Vec<(B256, u64)> {
        self.awaiting_txlists
            .by_hash
            .iter()
            .map(|(h, n)| (*h, *n))
            .collect()
    }

    /// Number of missing tx lists.
    pub(crate) fn awaited_len(&self) -> usize {
        self.awaiting_txlists.by_hash.len()
    }
}

/// The last `cap` accepted commitments by block number (for equivocation checks), the lowest
/// number forgotten first: a map kept sorted in a ring. Accepted blocks extend the head, so
/// each insert lands at the back and each eviction leaves the front — both ends stay in cache,
/// where a tree of `dedupe.slot_signers` entries walked its nodes for every block; any other
/// order is still kept sorted (an insert in the middle shifts the shorter side).
#[derive(Debug)]
struct RecentCommitments {
    entries: VecDeque<(u64, Arc<SignedCommitment>, Address)>,
    cap: usize,
}

impl RecentCommitments {
    fn new(cap: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Where `number` is, or would go, in the sorted ring.
    fn position(&self, number: u64) -> Result<usize, usize> {
        // Consecutive numbers: the index is the distance from the front.
        if let Some(&(front, _, _)) = self.entries.front() {
            if let Some(at) = number
                .checked_sub(front)
                .and_then(|d| usize::try_from(d).ok())
            {
                if self.entries.get(at).is_some_and(|e| e.0 == number) {
                    return Ok(at);
                }
            }
        }
        self.entries.binary_search_by_key(&number, |e| e.0)
    }

    /// Remembers `commitment` (signed by `signer`) at `number`, replacing what was there;
    /// beyond `cap` entries the lowest numbers are forgotten.
    fn insert(&mut self, number: u64, commitment: Arc<SignedCommitment>, signer: Address) {
        match self.entries.back() {
            Some(&(last, _, _)) if number <= last => match self.position(number) {
                Ok(at) => self.entries[at] = (number, commitment, signer),
                Err(at) => self.entries.insert(at, (number, commitment, signer)),
            },
            _ => self.entries.push_back((number, commitment, signer)),
        }
        while self.entries.len() > self.cap {
            self.entries.pop_front();
        }
    }

    /// The commitment remembered at `number` and its signer.
    fn get(&self, number: u64) -> Option<(&Arc<SignedCommitment>, Address)> {
        let at = self.position(number).ok()?;
        self.entries.get(at).map(|(_, c, signer)| (c, *signer))
    }
}

/// Tx lists that accepted commitments reference and this node does not have: hash → block
/// number, at most `cap` of them; when full, the one of the lowest block number is forgotten.
///
/// The order is a ring sorted by `(number, hash)`: accepted blocks extend the head, so an
/// insert lands at the back and forgetting the oldest leaves the front, both in cache (a tree
/// of `dedupe.slot_signers` entries walked its nodes for every commitment whose list is
/// missing, and a peer that never sends tx lists makes that every commitment). A list that
/// arrives is only removed from the map; its entry in the ring goes stale (the map no longer
/// holds that hash at that number) and is skipped when it reaches the front, and the ring is
/// compacted once stale entries make it twice the cap, so no removal shifts the ring.
#[derive(Debug)]
struct AwaitedTxLists {
    by_hash: foldhash::HashMap<B256, u64>,
    by_number: VecDeque<(u64, B256)>,
    cap: usize,
}

impl AwaitedTxLists {
    fn new(cap: usize) -> Self {
        Self {
            by_hash: foldhash::HashMap::default(),
            by_number: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Whether the ring's `entry` is still what the map holds.
    fn is_live(&self, entry: &(u64, B256)) -> bool {
        self.by_hash.get(&entry.1) == Some(&entry.0)
    }

    fn insert(&mut self, hash: B256, number: u64) {
        let entry = (number, hash);
        self.by_hash.insert(hash, number);
        // An equal entry already in the ring (live, or stale and now live again) stays.
        match self.by_number.back() {
            Some(last) if entry == *last => {}
            Some(last) if entry < *last => {
                let at = self.by_number.partition_point(|e| *e < entry);
                if self.by_number.get(at) != Some(&entry) {
                    self.by_number.insert(at, entry);
                }
            }
            _ => self.by_number.push_back(entry),
        }
        while self.by_hash.len() > self.cap {
            let Some(oldest) = self.by_number.pop_front() else {
                break;
            };
            if self.is_live(&oldest) {
                self.by_hash.remove(&oldest.1);
            }
        }
        if self.by_number.len() > 2 * self.cap {
            let by_hash = &self.by_hash;
            self.by_number.retain(|e| by_hash.get(&e.1) == Some(&e.0));
        }
    }

    fn remove(&mut self, hash: &B256) -> Option<u64> {
        self.by_hash.remove(hash)
    }

    /// The live entries in order (tests).
    #[cfg(test)]
    fn live(&self) -> Vec<(u64, B256)> {
        self.by_number
            .iter()
            .filter(|e| self.is_live(e))
            .copied()
            .collect()
    }
}

impl ChainView for ChainState {
    fn head(&self) -> LocalHead {
        self.head
    }

    fn accepted_at(&self, block_number: u64) -> Option<(SignedCommitment, Address)> {
        self.recent
            .get(block_number)
            .map(|(commitment, signer)| (SignedCommitment::clone(commitment), signer))
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
    use std::collections::BTreeSet;

    use super::*;

    /// The ring answers like the sorted map it replaces: by number whatever the order of the
    /// inserts, the same number replaced, the lowest numbers forgotten beyond the cap.
    #[test]
    fn recent_commitments_keep_the_highest_numbers_in_order() {
        let entry = |n: u64| {
            let mut c = SignedCommitment::default();
            c.commitment.preconf.block_number = U256::from(n);
            (Arc::new(c), Address::repeat_byte(n as u8))
        };
        let mut recent = RecentCommitments::new(4);
        let mut model = std::collections::BTreeMap::new();
        // In order, a gap, out of order below the back, a replacement, then past the cap.
        for n in [10u64, 11, 12, 15, 13, 11, 16, 17, 9, 18] {
            let (c, signer) = entry(n);
            recent.insert(n, c.clone(), signer);
            model.insert(n, (c, signer));
            while model.len() > 4 {
                model.pop_first();
            }
            for probe in 0..20u64 {
                let got = recent.get(probe).map(|(c, s)| (c.clone(), s));
                assert_eq!(got, model.get(&probe).cloned(), "after {n}, number {probe}");
            }
        }
        let kept: Vec<u64> = recent.entries.iter().map(|e| e.0).collect();
        assert_eq!(kept, vec![15, 16, 17, 18]);
    }

    /// What `apply` records is what the equivocation checks read back through `ChainView`:
    /// the commitment and its signer at its number, in its (slot, signer), and an EOP under
    /// its window end; nothing at numbers, slots or windows never applied.
    #[test]
    fn applied_commitments_answer_the_chain_view() {
        let mut state = ChainState::new(&P2pSdkConfig::default());
        let signer = Address::repeat_byte(0x5e);
        let commitment = |number: u64, eop: bool| {
            let mut c = SignedCommitment::default();
            c.commitment.preconf.block_number = U256::from(number);
            c.commitment.preconf.timestamp = U256::from(1_000 + number);
            c.commitment.preconf.submission_window_end = U256::from(100 + number);
            c.commitment.preconf.eop = eop;
            c
        };
        let accepted = |number: u64| AcceptedCommitment {
            signer,
            block_number: number,
            slot: 40 + number,
            timestamp: 1_000 + number,
        };
        let (first, last) = (commitment(1, false), commitment(2, true));
        state.apply(&first, &accepted(1));
        state.apply(&last, &accepted(2));

        assert_eq!(state.accepted_at(1), Some((first.clone(), signer)));
        assert_eq!(state.accepted_at(2), Some((last.clone(), signer)));
        assert_eq!(state.accepted_at(3), None);
        assert_eq!(state.accepted_in_slot(41, signer), Some(first));
        assert_eq!(state.accepted_in_slot(42, signer), Some(last.clone()));
        assert_eq!(state.accepted_in_slot(42, Address::ZERO), None);
        // Only the EOP commitment closes its window.
        assert_eq!(state.eop_for_window(U256::from(102)), Some(last.clone()));
        assert_eq!(state.eop_for_window(U256::from(101)), None);
        // The last one applied is the head.
        assert_eq!(
            state.head(),
            LocalHead {
                block_number: 2,
                preconfirmation_hash: Some(preconfirmation_hash(last.preconf())),
                timestamp: Some(1_002),
            }
        );
        assert_eq!(
            state.preconf_head(),
            PreconfHead {
                block_number: U256::from(2),
                submission_window_end: U256::from(102),
            }
        );
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
        assert_eq!(awaited.live().len(), awaited.by_hash.len(), "indexes agree");
        let left: Vec<_> = awaited.live().iter().map(|(n, _)| *n).collect();
        assert_eq!(left, vec![13, 15]);
    }

    /// Lists that arrive leave stale entries behind; the ring keeps them (no removal shifts
    /// it) until they make it longer than twice the cap, then holds only the live entries.
    #[test]
    fn awaited_tx_lists_compact_past_twice_the_cap() {
        let cap = 3;
        let mut awaited = AwaitedTxLists::new(cap);
        // Each list awaited then received: the map stays empty, the ring grows by one.
        for n in 1..=2 * cap as u64 {
            let hash = B256::repeat_byte(n as u8);
            awaited.insert(hash, n);
            assert_eq!(awaited.remove(&hash), Some(n));
            assert_eq!(
                awaited.by_number.len(),
                n as usize,
                "{n} stale entries kept"
            );
        }
        assert!(awaited.live().is_empty());
        // One more entry makes it 2 * cap + 1: compacted to the one live entry.
        let last = B256::repeat_byte(0x77);
        awaited.insert(last, 7);
        assert_eq!(awaited.by_number, VecDeque::from([(7, last)]));
        assert_eq!(awaited.live(), vec![(7, last)]);
    }

    /// The ring with its stale entries answers like a map plus a sorted set (the structure
    /// it replaces) over a seeded stream of inserts in and out of order, repeats and
    /// removals; it never holds more than twice the cap.
    #[test]
    fn awaited_tx_lists_answer_like_a_sorted_set() {
        let cap = 8;
        let mut awaited = AwaitedTxLists::new(cap);
        let mut by_hash = std::collections::HashMap::new();
        let mut by_number = BTreeSet::new();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for step in 0..20_000u64 {
            let hash = B256::repeat_byte(next(24) as u8);
            if next(4) == 0 {
                let model = by_hash.remove(&hash);
                if let Some(n) = model {
                    by_number.remove(&(n, hash));
                }
                assert_eq!(awaited.remove(&hash), model, "step {step}");
            } else {
                // Mostly rising numbers, sometimes below the back.
                let number = step / 4 + next(6);
                if let Some(previous) = by_hash.insert(hash, number) {
                    by_number.remove(&(previous, hash));
                }
                by_number.insert((number, hash));
                while by_hash.len() > cap {
                    let Some((_, oldest)) = by_number.pop_first() else {
                        break;
                    };
                    by_hash.remove(&oldest);
                }
                awaited.insert(hash, number);
            }
            let model: Vec<_> = by_number.iter().copied().collect();
            assert_eq!(awaited.live(), model, "step {step}");
            assert_eq!(awaited.by_hash.len(), by_hash.len(), "step {step}");
            assert!(awaited.by_number.len() <= 2 * cap + 1, "step {step}");
        }
    }
}
