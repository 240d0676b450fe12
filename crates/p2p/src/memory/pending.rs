//! Buffers for commitments that cannot be validated yet (§4.2): unknown parent and unknown
//! schedule.
//!
//! One buffer holds both kinds, bounded by count *and* bytes ([`PendingLimits`]) and by a
//! per-peer quota: a peer over its quota evicts its own oldest entry, and when the buffer is
//! full the oldest entry *of the peer holding the most* goes, so a flood from one peer id (or
//! a few) never evicts another peer's entries.
//!
//! A gossiped entry carries its held gossipsub verdict ([`HeldVerdict`]): gossipsub validates
//! asynchronously, so a commitment that waits for its parent is forwarded once it validates.
//! The buffer releases a held verdict as `Ignore` (no penalty) when the entry is evicted or
//! swept, and when it was held longer than `hold_verdict_for` (the entry stays; it is just
//! not forwarded any more); the core releases it as `Accept` or `Reject` when the entry is
//! validated. Entries are swept once the head passes their block number or once
//! they are older than `max_age`. Unknown-parent entries are drained by block number when the
//! head reaches their parent; unknown-schedule entries are all retried when the schedule changes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use preconfirmation_net::GossipVerdict;
use preconfirmation_types::{Address, SignedCommitment, B256, SIGNED_COMMITMENT_SSZ_LEN};

use super::held::{HeldVerdict, ReleasedVerdict};
use crate::config::PendingLimits;
use crate::validation::PendingReason;

/// Bytes one entry is accounted for: the SSZ size plus bookkeeping.
pub(crate) const PENDING_ENTRY_BYTES: usize = SIGNED_COMMITMENT_SSZ_LEN + 128;

/// A buffered commitment.
#[derive(Debug, Clone)]
pub(crate) struct PendingEntry {
    /// The commitment.
    pub(crate) commitment: SignedCommitment,
    /// Its recovered signer.
    pub(crate) signer: Address,
    /// Its block number.
    pub(crate) block_number: u64,
    /// The peer it came from (`None` when local).
    pub(crate) source: Option<PeerId>,
    /// Why it waits.
    pub(crate) reason: PendingReason,
    /// Its gossip verdict, held until it validates (gossiped entries only).
    pub(crate) held: Option<HeldVerdict>,
    /// When it first arrived: a recheck that puts it back keeps this, so `max_age` counts
    /// from its first arrival, never from its latest recheck.
    arrived: Instant,
}

impl PendingEntry {
    /// A new entry, stamped now.
    pub(crate) fn new(
        commitment: SignedCommitment,
        signer: Address,
        block_number: u64,
        source: Option<PeerId>,
        reason: PendingReason,
    ) -> Self {
        Self {
            commitment,
            signer,
            block_number,
            source,
            reason,
            held: None,
            arrived: Instant::now(),
        }
    }

    /// The same entry, first arrived at `arrived` (a recheck keeps the original arrival).
    pub(crate) fn arrived_at(mut self, arrived: Instant) -> Self {
        self.arrived = arrived;
        self
    }

    /// When it first arrived.
    pub(crate) fn arrived(&self) -> Instant {
        self.arrived
    }

    /// The same entry, holding gossip verdict `held`.
    #[cfg(test)]
    pub(crate) fn holding(mut self, held: HeldVerdict) -> Self {
        self.held = Some(held);
        self
    }
}

/// The pending buffer.
#[derive(Debug)]
pub(crate) struct PendingBuffer {
    limits: PendingLimits,
    next_seq: u64,
    /// Insertion order (oldest first) → entry.
    entries: BTreeMap<u64, PendingEntry>,
    /// (block number, seq) index for draining and sweeping by number.
    by_number: BTreeSet<(u64, u64)>,
    /// Seqs by source peer (`None`: local), oldest first, for the per-peer quota.
    by_source: HashMap<Option<PeerId>, BTreeSet<u64>>,
    /// Entries per reason, kept as entries come and go (a status read is O(1), not a scan).
    parent_unknown: usize,
    schedule_unknown: usize,
    /// Tx-list hash → entries waiting for their parent that reference it. Only those: their
    /// signer was checked against the schedule, so their tx lists may be forwarded. An entry
    /// waiting for its schedule may be signed by any key.
    verified_txlists: HashMap<B256, usize>,
    evicted: u64,
    /// Verdicts released (`Ignore`) since the last [`Self::take_released`].
    released: Vec<ReleasedVerdict>,
}

impl PendingBuffer {
    /// An empty buffer under `limits`.
    pub(crate) fn new(limits: PendingLimits) -> Self {
        Self {
            limits,
            next_seq: 0,
            entries: BTreeMap::new(),
            by_number: BTreeSet::new(),
            by_source: HashMap::new(),
            parent_unknown: 0,
            schedule_unknown: 0,
            verified_txlists: HashMap::new(),
            evicted: 0,
            released: Vec::new(),
        }
    }

    /// Buffers `entry` (an identical commitment already buffered is not added twice: its
    /// held verdict is released as `Ignore`); evicts the oldest entries while over a cap.
    /// Returns how many were evicted.
    pub(crate) fn insert(&mut self, mut entry: PendingEntry) -> usize {
        let duplicate = self
            .by_number
            .range((entry.block_number, 0)..=(entry.block_number, u64::MAX))
            .any(|(_, seq)| {
                self.entries
                    .get(seq)
                    .is_some_and(|e| e.commitment == entry.commitment)
            });
        if duplicate {
            self.release(entry.held.take());
            return 0;
        }
        let mut evicted = 0;
        if let Some(peer) = entry.source {
            // Over its quota, a peer makes room among its own entries.
            let quota = self.limits.max_count_per_peer.max(1);
            while self.by_source.get(&Some(peer)).map_or(0, BTreeSet::len) >= quota {
                let oldest = self
                    .by_source
                    .get(&Some(peer))
                    .and_then(|seqs| seqs.first().copied());
                match oldest {
                    Some(seq) if self.drop_seq(seq) => evicted += 1,
                    _ => break,
                }
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_number.insert((entry.block_number, seq));
        self.by_source.entry(entry.source).or_default().insert(seq);
        self.count_in(&entry);
        self.entries.insert(seq, entry);
        while self.entries.len() > self.limits.max_count || self.bytes() > self.limits.max_bytes {
            // The oldest entry of the source holding the most.
            let victim = self
                .by_source
                .values()
                .max_by_key(|seqs| (seqs.len(), std::cmp::Reverse(seqs.first().copied())))
                .and_then(|seqs| seqs.first().copied());
            match victim {
                Some(seq) if self.drop_seq(seq) => evicted += 1,
                _ => break,
            }
        }
        self.evicted += evicted as u64;
        evicted
    }

    /// Releases `held` as `Ignore`.
    fn release(&mut self, held: Option<HeldVerdict>) {
        if let Some(h) = held {
            self.released
                .push((h.message_id, h.peer, GossipVerdict::Ignore));
        }
    }

    /// Drops entry `seq` (evicted or swept), releasing its held verdict as `Ignore`.
    fn drop_seq(&mut self, seq: u64) -> bool {
        match self.remove_seq(seq) {
            Some(entry) => {
                self.release(entry.held);
                true
            }
            None => false,
        }
    }

    /// Releases as `Ignore` every held verdict older than `hold_for` (relative to `now`); the
    /// entries stay buffered. Returns how many were released.
    pub(crate) fn expire_held(&mut self, now: Instant, hold_for: Duration) -> usize {
        let mut expired = Vec::new();
        for entry in self.entries.values_mut() {
            if entry
                .held
                .as_ref()
                .is_some_and(|h| now.saturating_duration_since(h.since) >= hold_for)
            {
                expired.push(entry.held.take());
            }
        }
        let count = expired.len();
        for held in expired {
            self.release(held);
        }
        count
    }

    /// Verdicts released since the last call, in release order.
    pub(crate) fn take_released(&mut self) -> Vec<ReleasedVerdict> {
        std::mem::take(&mut self.released)
    }

    /// Counts `entry` in the per-reason counts and the tx-list index.
    fn count_in(&mut self, entry: &PendingEntry) {
        match entry.reason {
            PendingReason::ParentUnknown => {
                self.parent_unknown += 1;
                let hash = entry.commitment.preconf().raw_tx_list_hash;
                if hash != B256::ZERO {
                    *self.verified_txlists.entry(hash).or_default() += 1;
                }
            }
            PendingReason::ScheduleUnknown => self.schedule_unknown += 1,
        }
    }

    /// Undoes [`Self::count_in`] for an entry leaving the buffer.
    fn count_out(&mut self, entry: &PendingEntry) {
        match entry.reason {
            PendingReason::ParentUnknown => {
                self.parent_unknown = self.parent_unknown.saturating_sub(1);
                let hash = entry.commitment.preconf().raw_tx_list_hash;
                if let Some(n) = self.verified_txlists.get_mut(&hash) {
                    *n -= 1;
                    if *n == 0 {
                        self.verified_txlists.remove(&hash);
                    }
                }
            }
            PendingReason::ScheduleUnknown => {
                self.schedule_unknown = self.schedule_unknown.saturating_sub(1)
            }
        }
    }

    /// Removes entry `seq` from every index.
    fn remove_seq(&mut self, seq: u64) -> Option<PendingEntry> {
        let entry = self.entries.remove(&seq)?;
        self.count_out(&entry);
        self.by_number.remove(&(entry.block_number, seq));
        if let Some(seqs) = self.by_source.get_mut(&entry.source) {
            seqs.remove(&seq);
            if seqs.is_empty() {
                self.by_source.remove(&entry.source);
            }
        }
        Some(entry)
    }

    /// Entries buffered from `peer`.
    #[cfg(test)]
    pub(crate) fn count_from(&self, peer: &PeerId) -> usize {
        self.by_source.get(&Some(*peer)).map_or(0, BTreeSet::len)
    }

    /// Whether a commitment waiting for its parent references tx list `hash`. Its signer was
    /// checked against the schedule, so the list may be forwarded now. A commitment waiting
    /// for its *schedule* does not count: it may be signed by any key, and a list forwarded
    /// on its word would let anyone ride junk across the network (§3.4: a tx list's
    /// authenticity comes from the commitment that references it).
    pub(crate) fn references_txlist(&self, hash: &B256) -> bool {
        self.verified_txlists.contains_key(hash)
    }

    /// Removes and returns the entries for `block_number` (oldest first).
    pub(crate) fn take_number(&mut self, block_number: u64) -> Vec<PendingEntry> {
        let seqs: Vec<(u64, u64)> = self
            .by_number
            .range((block_number, 0)..=(block_number, u64::MAX))
            .copied()
            .collect();
        seqs.into_iter()
            .filter_map(|(_, seq)| self.remove_seq(seq))
            .collect()
    }

    /// Removes and returns every entry waiting for `reason`, in block order.
    pub(crate) fn take_reason(&mut self, reason: PendingReason) -> Vec<PendingEntry> {
        let keys: Vec<(u64, u64)> = self
            .by_number
            .iter()
            .filter(|(_, seq)| self.entries.get(seq).is_some_and(|e| e.reason == reason))
            .copied()
            .collect();
        keys.into_iter()
            .filter_map(|(_, seq)| self.remove_seq(seq))
            .collect()
    }

    /// Drops entries at or below `head` and entries older than `max_age` (relative to `now`).
    /// Returns how many went.
    pub(crate) fn sweep(&mut self, head: u64, now: Instant) -> usize {
        let max_age = self.limits.max_age;
        let doomed: Vec<(u64, u64)> = self
            .by_number
            .iter()
            .filter(|(number, seq)| {
                *number <= head
                    || self
                        .entries
                        .get(seq)
                        .is_some_and(|e| now.saturating_duration_since(e.arrived) > max_age)
            })
            .copied()
            .collect();
        for (_, seq) in &doomed {
            self.drop_seq(*seq);
        }
        doomed.len()
    }

    /// Lowest buffered block number.
    #[cfg(test)]
    pub(crate) fn lowest_number(&self) -> Option<u64> {
        self.by_number.first().map(|(n, _)| *n)
    }

    /// Number of buffered entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Number of entries waiting for `reason`.
    pub(crate) fn count(&self, reason: PendingReason) -> usize {
        match reason {
            PendingReason::ParentUnknown => self.parent_unknown,
            PendingReason::ScheduleUnknown => self.schedule_unknown,
        }
    }

    /// Accounted bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.entries.len() * PENDING_ENTRY_BYTES
    }

    /// Entries evicted by the caps so far.
    #[cfg(test)]
    pub(crate) fn evicted_total(&self) -> u64 {
        self.evicted
    }

    /// The maximum age.
    #[cfg(test)]
    pub(crate) fn max_age(&self) -> Duration {
        self.limits.max_age
    }
}

#[cfg(test)]
mod tests {
    use preconfirmation_types::U256;

    use super::*;

    fn entry(number: u64, reason: PendingReason) -> PendingEntry {
        let mut c = SignedCommitment::default();
        c.commitment.preconf.block_number = U256::from(number);
        PendingEntry::new(c, Address::ZERO, number, None, reason)
    }

    fn limits(max_count: usize, max_bytes: usize) -> PendingLimits {
        PendingLimits {
            max_count,
            max_bytes,
            ..Default::default()
        }
    }

    /// The per-reason counts and the tx-list index follow every way an entry comes and goes
    /// (insert, duplicate, quota and cap eviction, take, sweep); only entries waiting for a
    /// parent vouch for a tx list.
    #[test]
    fn counts_and_txlist_index_follow_every_entry() {
        let with_list = |number: u64, reason, list: u8| {
            let mut e = entry(number, reason);
            e.commitment.commitment.preconf.raw_tx_list_hash = B256::repeat_byte(list);
            e
        };
        let mut buf = PendingBuffer::new(limits(3, usize::MAX));
        buf.insert(with_list(5, PendingReason::ParentUnknown, 1));
        buf.insert(with_list(6, PendingReason::ScheduleUnknown, 2));
        assert_eq!(
            buf.insert(with_list(5, PendingReason::ParentUnknown, 1)),
            0,
            "duplicate"
        );
        assert_eq!(buf.count(PendingReason::ParentUnknown), 1);
        assert_eq!(buf.count(PendingReason::ScheduleUnknown), 1);
        assert!(buf.references_txlist(&B256::repeat_byte(1)));
        assert!(
            !buf.references_txlist(&B256::repeat_byte(2)),
            "a schedule-unknown entry vouches for nothing"
        );
        assert!(!buf.references_txlist(&B256::ZERO));
        // Two entries reference list 3; the index holds it until both are gone.
        buf.insert(with_list(7, PendingReason::ParentUnknown, 3));
        assert_eq!(
            buf.insert(with_list(8, PendingReason::ParentUnknown, 3)),
            1,
            "cap of 3"
        );
        assert!(
            !buf.references_txlist(&B256::repeat_byte(1)),
            "evicted with its entry"
        );
        assert_eq!(buf.count(PendingReason::ParentUnknown), 2);
        assert_eq!(buf.take_number(7).len(), 1);
        assert!(
            buf.references_txlist(&B256::repeat_byte(3)),
            "block 8 still does"
        );
        assert_eq!(buf.take_reason(PendingReason::ScheduleUnknown).len(), 1);
        assert_eq!(buf.count(PendingReason::ScheduleUnknown), 0);
        assert_eq!(buf.sweep(8, Instant::now()), 1);
        assert!(!buf.references_txlist(&B256::repeat_byte(3)));
        assert_eq!(buf.count(PendingReason::ParentUnknown), 0);
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn age_counts_from_first_arrival_across_a_recheck() {
        let mut buf = PendingBuffer::new(limits(10, usize::MAX));
        let first = Instant::now();
        buf.insert(entry(5, PendingReason::ScheduleUnknown).arrived_at(first));
        // A recheck takes it out and puts it back, keeping its arrival.
        let again = buf.take_reason(PendingReason::ScheduleUnknown).remove(0);
        assert_eq!(again.arrived(), first);
        buf.insert(again);
        let max_age = buf.max_age();
        assert_eq!(
            buf.sweep(0, first + max_age),
            0,
            "not older than max_age yet"
        );
        assert_eq!(buf.sweep(0, first + max_age + Duration::from_millis(1)), 1);
    }

    #[test]
    fn evicts_oldest_first_by_count() {
        let mut buf = PendingBuffer::new(limits(3, usize::MAX));
        for n in [10, 5, 7, 9] {
            buf.insert(entry(n, PendingReason::ParentUnknown));
        }
        assert_eq!(buf.len(), 3);
        // 10 was inserted first, so it went, although it is not the lowest number.
        assert!(buf.take_number(10).is_empty());
        assert_eq!(buf.take_number(5).len(), 1);
        assert_eq!(buf.evicted_total(), 1);
    }

    fn entry_from(number: u64, peer: PeerId) -> PendingEntry {
        let mut c = SignedCommitment::default();
        c.commitment.preconf.block_number = U256::from(number);
        PendingEntry::new(
            c,
            Address::ZERO,
            number,
            Some(peer),
            PendingReason::ScheduleUnknown,
        )
    }

    fn held(i: u8, since: Instant) -> HeldVerdict {
        HeldVerdict {
            message_id: preconfirmation_net::MessageId::new(&[i]),
            peer: PeerId::random(),
            since,
        }
    }

    fn released_ids(buf: &mut PendingBuffer) -> Vec<(Vec<u8>, GossipVerdict)> {
        buf.take_released()
            .into_iter()
            .map(|(id, _, v)| (id.0, v))
            .collect()
    }

    /// A held gossip verdict is released as Ignore when its entry is evicted, swept, a
    /// duplicate, or held too long (the entry then stays, without a verdict); an entry taken
    /// for validation keeps it for the core to release.
    #[test]
    fn held_verdicts_are_released_as_ignore_when_entries_go_or_wait_too_long() {
        let t0 = Instant::now();
        let mut buf = PendingBuffer::new(limits(2, usize::MAX));
        buf.insert(entry(10, PendingReason::ParentUnknown).holding(held(1, t0)));
        buf.insert(entry(11, PendingReason::ParentUnknown).holding(held(2, t0)));
        assert!(released_ids(&mut buf).is_empty());
        // Over the count cap: the oldest (block 10) is evicted.
        buf.insert(entry(12, PendingReason::ParentUnknown).holding(held(3, t0)));
        assert_eq!(
            released_ids(&mut buf),
            vec![(vec![1], GossipVerdict::Ignore)]
        );
        // An identical commitment is not buffered twice.
        buf.insert(entry(12, PendingReason::ParentUnknown).holding(held(4, t0)));
        assert_eq!(
            released_ids(&mut buf),
            vec![(vec![4], GossipVerdict::Ignore)]
        );
        // Held too long: released, the entry stays.
        let hold = Duration::from_secs(3);
        assert_eq!(
            buf.expire_held(t0 + hold - Duration::from_millis(1), hold),
            0
        );
        assert_eq!(buf.expire_held(t0 + hold, hold), 2);
        let mut expired = released_ids(&mut buf);
        expired.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            expired,
            vec![
                (vec![2], GossipVerdict::Ignore),
                (vec![3], GossipVerdict::Ignore)
            ]
        );
        assert_eq!(buf.len(), 2);
        assert!(buf.take_number(11)[0].held.is_none());
        // Taken for validation: the held verdict goes with the entry, nothing is released.
        buf.insert(entry(13, PendingReason::ParentUnknown).holding(held(5, t0)));
        let taken = buf.take_number(13);
        assert_eq!(
            taken[0].held.as_ref().map(|h| h.message_id.0.clone()),
            Some(vec![5])
        );
        assert!(released_ids(&mut buf).is_empty());
        // Swept (the head passed it): released.
        buf.insert(entry(14, PendingReason::ParentUnknown).holding(held(6, t0)));
        assert_eq!(buf.sweep(14, t0), 2);
        assert_eq!(
            released_ids(&mut buf),
            vec![(vec![6], GossipVerdict::Ignore)]
        );
    }

    #[test]
    fn a_flooding_peer_evicts_only_its_own_entries() {
        let (honest, attacker) = (PeerId::random(), PeerId::random());
        let mut buf = PendingBuffer::new(PendingLimits {
            max_count_per_peer: 50,
            ..limits(100, usize::MAX)
        });
        for n in 0..10 {
            buf.insert(entry_from(n, honest));
        }
        for n in 1_000..11_000 {
            buf.insert(entry_from(n, attacker));
        }
        assert_eq!(buf.count_from(&honest), 10, "the honest entries survive");
        assert_eq!(
            buf.count_from(&attacker),
            50,
            "the attacker is held to its quota"
        );
        // Its newest entries are the ones kept.
        assert_eq!(buf.take_number(10_999).len(), 1);
        assert!(buf.take_number(1_000).is_empty());
    }

    #[test]
    fn when_full_the_heaviest_peer_loses_its_oldest() {
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        let mut buf = PendingBuffer::new(PendingLimits {
            max_count_per_peer: 100,
            ..limits(10, usize::MAX)
        });
        // Peer 0: 2 entries; peers 1 and 2 fill the rest and keep sending.
        buf.insert(entry_from(1, peers[0]));
        buf.insert(entry_from(2, peers[0]));
        for n in 0..40 {
            buf.insert(entry_from(100 + n, peers[1 + (n as usize % 2)]));
        }
        assert_eq!(buf.len(), 10);
        assert_eq!(
            buf.count_from(&peers[0]),
            2,
            "the light peer keeps its entries"
        );
        assert_eq!(buf.count_from(&peers[1]) + buf.count_from(&peers[2]), 8);
        // Sweeping and taking keep the per-peer index in step.
        assert_eq!(buf.sweep(1, Instant::now()), 1);
        assert_eq!(buf.count_from(&peers[0]), 1);
        assert_eq!(buf.take_reason(PendingReason::ScheduleUnknown).len(), 9);
        assert_eq!(buf.count_from(&peers[1]), 0);
        assert!(buf.by_source.is_empty());
    }

    #[test]
    fn evicts_by_bytes() {
        let mut buf = PendingBuffer::new(limits(usize::MAX, PENDING_ENTRY_BYTES * 2));
        for n in 0..5 {
            buf.insert(entry(n, PendingReason::ParentUnknown));
        }
        assert_eq!(buf.len(), 2);
        assert!(buf.bytes() <= PENDING_ENTRY_BYTES * 2);
    }

    #[test]
    fn identical_commitment_is_buffered_once() {
        let mut buf = PendingBuffer::new(limits(10, usize::MAX));
        buf.insert(entry(3, PendingReason::ParentUnknown));
        buf.insert(entry(3, PendingReason::ParentUnknown));
        assert_eq!(buf.len(), 1);
    }

    #[test]
    fn sweeps_by_head_and_age() {
        let mut buf = PendingBuffer::new(PendingLimits {
            max_age: Duration::from_secs(60),
            ..limits(10, usize::MAX)
        });
        for n in 1..=4 {
            buf.insert(entry(n, PendingReason::ParentUnknown));
        }
        assert_eq!(buf.sweep(2, Instant::now()), 2);
        assert_eq!(buf.lowest_number(), Some(3));
        let later = Instant::now() + Duration::from_secs(61);
        assert_eq!(buf.sweep(0, later), 2);
        assert_eq!(buf.len(), 0);
    }

    #[test]
    fn takes_by_reason_in_block_order() {
        let mut buf = PendingBuffer::new(limits(10, usize::MAX));
        buf.insert(entry(9, PendingReason::ScheduleUnknown));
        buf.insert(entry(4, PendingReason::ParentUnknown));
        buf.insert(entry(6, PendingReason::ScheduleUnknown));
        let taken: Vec<u64> = buf
            .take_reason(PendingReason::ScheduleUnknown)
            .iter()
            .map(|e| e.block_number)
            .collect();
        assert_eq!(taken, vec![6, 9]);
        assert_eq!(buf.count(PendingReason::ParentUnknown), 1);
    }

    #[test]
    fn flood_of_100k_stays_under_caps() {
        let caps = PendingLimits::default();
        let mut buf = PendingBuffer::new(caps.clone());
        for n in 0..100_000u64 {
            buf.insert(entry(1_000 + n, PendingReason::ParentUnknown));
            assert!(buf.len() <= caps.max_count);
            assert!(buf.bytes() <= caps.max_bytes);
        }
        assert_eq!(
            buf.len(),
            caps.max_count.min(caps.max_bytes / PENDING_ENTRY_BYTES)
        );
        assert_eq!(
            buf.evicted_total(),
            100_000 - buf.len() as u64,
            "every insert beyond the cap evicted exactly one entry"
        );
    }
}
