//! The SDK's view of the permissionless schedule: [`LookaheadSchedule`] answers validation's
//! questions ("who signs the window holding time `t`, and where does it end") from the epochs
//! the L1 reader verified, and remembers the epochs it was asked about but did not know, so
//! the reader fetches what catch-up needs.
//!
//! Windows are `(start, end]` and end on an L1 slot (L1-LOOKAHEAD.md §4.1, §6), so the
//! schedule answers by time, inclusive of the end: a block timed exactly at `end` is the
//! window's, and a commitment's `submissionWindowEnd` is resolved as itself. L2 slots (of
//! `lookahead.slot_duration_secs` from the beacon genesis) are only the keys of per-slot
//! dedupe; a slot's schedule is that of its last second.

use std::collections::BTreeSet;

use p2p::{Lookahead, SlotSchedule, WindowEndOutOfRange};
use parking_lot::{Mutex, RwLock};
use preconfirmation_types::U256;

use crate::clock::unix_now;
use crate::schedule::lookahead_window::{
    EpochClock, EpochKnowledge, KnownEpochs, Learned, Resolved, SECONDS_PER_EPOCH,
};

/// The verified epochs, and the ones validation wanted.
#[derive(Debug)]
pub struct LookaheadSchedule {
    slot_secs: u64,
    max_wanted: usize,
    /// `None` until the beacon genesis is known (configured, or from the L1's chain id).
    epochs: RwLock<Option<KnownEpochs>>,
    wanted: Mutex<BTreeSet<u64>>,
}

impl LookaheadSchedule {
    /// L2 slots of `slot_secs` (positive), at most `capacity` epochs remembered and as many
    /// wanted. With `genesis` unknown nothing resolves until [`Self::set_genesis`].
    pub fn new(slot_secs: u64, capacity: usize, genesis: Option<u64>) -> Self {
        let schedule = Self {
            slot_secs: slot_secs.max(1),
            max_wanted: capacity.max(2),
            epochs: RwLock::new(None),
            wanted: Mutex::new(BTreeSet::new()),
        };
        if let Some(genesis) = genesis {
            schedule.set_genesis(genesis);
        }
        schedule
    }

    /// Fixes the beacon genesis epochs count from; a second call changes nothing.
    pub fn set_genesis(&self, genesis: u64) {
        let mut epochs = self.epochs.write();
        if epochs.is_none() {
            *epochs = Some(KnownEpochs::new(EpochClock::new(genesis), self.max_wanted));
        }
    }

    /// The epoch clock, once the genesis is known.
    pub fn clock(&self) -> Option<EpochClock> {
        self.epochs.read().as_ref().map(KnownEpochs::clock)
    }

    /// Records what the reader verified about one epoch (see [`KnownEpochs::learn`]).
    pub fn learn(&self, knowledge: EpochKnowledge) -> Learned {
        let epoch = knowledge.list.epoch();
        let mut epochs = self.epochs.write();
        let Some(known) = epochs.as_mut() else {
            return Learned::TooOld;
        };
        let learned = known.learn(knowledge);
        drop(epochs);
        if learned != Learned::TooOld {
            self.wanted.lock().remove(&epoch);
        }
        learned
    }

    /// Forgets `epoch` (its post vanished in a reorg, or no longer verifies); returns whether
    /// it was known.
    pub fn forget(&self, epoch: u64) -> bool {
        self.epochs
            .write()
            .as_mut()
            .is_some_and(|known| known.forget(epoch))
    }

    /// What is known of `epoch`.
    pub fn epoch(&self, epoch: u64) -> Option<EpochKnowledge> {
        self.epochs.read().as_ref()?.get(epoch).cloned()
    }

    /// The window and signer of unix second `t`; `None` while unknown (the epochs it needs
    /// are then wanted).
    pub fn resolve(&self, t: u64) -> Option<Resolved> {
        let epochs = self.epochs.read();
        let known = epochs.as_ref()?;
        let resolved = known.resolve(t);
        if resolved.is_none() {
            let clock = known.clock();
            drop(epochs);
            self.want_around(clock, t, unix_now());
        }
        resolved
    }

    /// Wants the epoch of `t` and the one after (a tail needs the next list), unless known,
    /// or beyond the epoch after the clock's (not decided on L1 yet; any peer can name one).
    fn want_around(&self, clock: EpochClock, t: u64, now: u64) {
        let Some(epoch) = clock.epoch_of(t) else {
            return;
        };
        let Some(limit) = clock.epoch_of(now).and_then(|e| clock.next(e)) else {
            return;
        };
        let candidates = [Some(epoch), clock.next(epoch)];
        let unknown: Vec<u64> = {
            let epochs = self.epochs.read();
            candidates
                .into_iter()
                .flatten()
                .filter(|e| *e <= limit)
                .filter(|e| epochs.as_ref().is_none_or(|k| k.get(*e).is_none()))
                .collect()
        };
        let mut wanted = self.wanted.lock();
        wanted.extend(unknown);
        while wanted.len() > self.max_wanted {
            wanted.pop_last();
        }
    }

    /// Takes the epochs validation asked for without an answer, lowest first, at most `max`.
    pub fn take_wanted(&self, max: usize) -> Vec<u64> {
        let mut wanted = self.wanted.lock();
        let taken: Vec<u64> = wanted.iter().take(max).copied().collect();
        for epoch in &taken {
            wanted.remove(epoch);
        }
        taken
    }

    /// Marks `epoch` as wanted again (its read failed).
    pub fn want(&self, epoch: u64) {
        let mut wanted = self.wanted.lock();
        wanted.insert(epoch);
        while wanted.len() > self.max_wanted {
            wanted.pop_last();
        }
    }

    fn genesis(&self) -> u64 {
        self.clock().map_or(0, |c| c.genesis())
    }

    fn slot_schedule(&self, resolved: Resolved) -> SlotSchedule {
        let end = resolved.window.end;
        SlotSchedule {
            signer: resolved.signer,
            window_end: U256::from(end),
            next_window_first_slot: self.slot_of(end.saturating_add(1)).unwrap_or(u64::MAX),
            coinbase: None,
            prover: None,
        }
    }

    fn slot_of(&self, t: u64) -> Option<u64> {
        Some(t.checked_sub(self.genesis())? / self.slot_secs)
    }
}

impl Lookahead for LookaheadSchedule {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        self.slot_of(u64::try_from(timestamp).ok()?)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        let last_second = slot
            .checked_add(1)?
            .checked_mul(self.slot_secs)?
            .checked_add(self.genesis())?
            .checked_sub(1)?;
        self.schedule_at(last_second)
    }

    fn schedule_at(&self, timestamp: u64) -> Option<SlotSchedule> {
        self.resolve(timestamp).map(|r| self.slot_schedule(r))
    }

    fn schedule_for_window_end(
        &self,
        window_end: U256,
    ) -> Result<Option<SlotSchedule>, WindowEndOutOfRange> {
        let end = u64::try_from(window_end).map_err(|_| WindowEndOutOfRange)?;
        if end < self.genesis() {
            return Err(WindowEndOutOfRange);
        }
        Ok(self.schedule_at(end))
    }
}

/// Seconds an epoch's windows reach back before it: the tail of the previous epoch belongs to
/// this epoch's first entry (§4.1 case 3), so a list replaced in a reorg changes times from
/// the previous epoch's start on.
pub(super) const EPOCH_REACH_SECS: u64 = SECONDS_PER_EPOCH;

#[cfg(test)]
mod tests;
