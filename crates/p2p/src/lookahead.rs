//! Who may commit when: the [`Lookahead`] schedule (§4.2 items 1 and 3, §5).
//!
//! In production the sidecar bridges its URC / lookahead contract view into this trait. Devnets
//! and tests use [`RotatingLookahead`]: `N` preconfer keys, each owning a window of `K` slots,
//! round robin. There is deliberately no "accept everything" implementation.
//!
//! Time model: L2 slots of `slot_duration` seconds from `genesis`. A block belongs to the slot
//! containing its `timestamp`. A *window* is a run of consecutive slots owned by one preconfer;
//! its `submissionWindowEnd` is the timestamp at which the window ends (exclusive), the same for
//! every block of the window.

use std::sync::atomic::{AtomicU64, Ordering};

use preconfirmation_types::{Address, U256};

/// The schedule entry of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SlotSchedule {
    /// The preconfer elected for the slot.
    pub signer: Address,
    /// `submissionWindowEnd` every commitment of this slot must carry.
    pub window_end: U256,
    /// First slot after the window (the next committer's first slot), for EOP hand-off (§5).
    pub next_window_first_slot: u64,
    /// The coinbase the schedule names for the window, where the chain's schedule source
    /// names one (§4.2 item 5); `None`: not checked.
    pub coinbase: Option<Address>,
    /// The prover the schedule names for the window (`proverAuth`), where the schedule source
    /// names one (§4.2 item 5); `None`: not checked.
    pub prover: Option<Address>,
}

/// The local view of the preconfer schedule.
pub trait Lookahead: Send + Sync + 'static {
    /// The slot containing `timestamp`, or `None` if the timestamp is before genesis or out of
    /// range.
    fn slot_at(&self, timestamp: U256) -> Option<u64>;

    /// The schedule of `slot`, or `None` when it is not known (yet): commitments for such slots
    /// are buffered as "pending schedule" (§4.2), not rejected.
    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule>;

    /// The elected signer of `slot` (§4.2 item 1).
    fn signer_for_slot(&self, slot: u64) -> Option<Address> {
        self.schedule_for_slot(slot).map(|s| s.signer)
    }

    /// The window end of `slot` (§4.2 item 3).
    fn window_end_for_slot(&self, slot: u64) -> Option<U256> {
        self.schedule_for_slot(slot).map(|s| s.window_end)
    }
}

/// Deterministic round-robin schedule: slot `s` belongs to window `s / K`, owned by
/// `signers[(s / K) % N]`.
///
/// The schedule can be limited to a known horizon ([`RotatingLookahead::with_horizon`]) to model
/// a lookahead that is only published an epoch ahead; [`RotatingLookahead::extend_horizon`]
/// reveals more (then tell the SDK with [`crate::P2pSdk::schedule_updated`]).
#[derive(Debug)]
pub struct RotatingLookahead {
    signers: Vec<Address>,
    slots_per_window: u64,
    genesis: u64,
    slot_duration: u64,
    /// Last slot whose schedule is known (inclusive); `u64::MAX` when unbounded.
    horizon: AtomicU64,
}

impl RotatingLookahead {
    /// `signers` rotate every `slots_per_window` slots of `slot_duration` seconds from `genesis`
    /// (unix seconds). Returns `None` if `signers` is empty or a length is zero.
    pub fn new(
        signers: Vec<Address>,
        slots_per_window: u64,
        genesis: u64,
        slot_duration: u64,
    ) -> Option<Self> {
        if signers.is_empty() || slots_per_window == 0 || slot_duration == 0 {
            return None;
        }
        Some(Self {
            signers,
            slots_per_window,
            genesis,
            slot_duration,
            horizon: AtomicU64::new(u64::MAX),
        })
    }

    /// Only slots up to `last_known_slot` (inclusive) are known.
    pub fn with_horizon(self, last_known_slot: u64) -> Self {
        self.horizon.store(last_known_slot, Ordering::Relaxed);
        self
    }

    /// Reveals the schedule up to `last_known_slot` (inclusive).
    pub fn extend_horizon(&self, last_known_slot: u64) {
        self.horizon.fetch_max(last_known_slot, Ordering::Relaxed);
    }

    /// Slots per window (`K`).
    pub fn slots_per_window(&self) -> u64 {
        self.slots_per_window
    }

    /// Slot length in seconds.
    pub fn slot_duration(&self) -> u64 {
        self.slot_duration
    }

    /// Genesis in unix seconds.
    pub fn genesis(&self) -> u64 {
        self.genesis
    }

    /// First timestamp of `slot`.
    pub fn slot_start(&self, slot: u64) -> u64 {
        self.genesis
            .saturating_add(slot.saturating_mul(self.slot_duration))
    }

    /// Whether `slot` is the last slot of its window (where a preconfer sends its EOP).
    pub fn is_last_slot_of_window(&self, slot: u64) -> bool {
        slot % self.slots_per_window == self.slots_per_window - 1
    }
}

impl Lookahead for RotatingLookahead {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        let timestamp = u64::try_from(timestamp).ok()?;
        let since = timestamp.checked_sub(self.genesis)?;
        Some(since / self.slot_duration)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        if slot > self.horizon.load(Ordering::Relaxed) {
            return None;
        }
        let window = slot / self.slots_per_window;
        let index = usize::try_from(window % self.signers.len() as u64).ok()?;
        let next_window_first_slot = window.checked_add(1)?.checked_mul(self.slots_per_window)?;
        let window_end = self
            .genesis
            .checked_add(next_window_first_slot.checked_mul(self.slot_duration)?)?;
        Some(SlotSchedule {
            signer: *self.signers.get(index)?,
            window_end: U256::from(window_end),
            next_window_first_slot,
            coinbase: None,
            prover: None,
        })
    }
}

impl<T: Lookahead + ?Sized> Lookahead for std::sync::Arc<T> {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        (**self).slot_at(timestamp)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        (**self).schedule_for_slot(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(b: u8) -> Address {
        Address::repeat_byte(b)
    }

    #[test]
    fn rotates_every_window() {
        let la = RotatingLookahead::new(vec![addr(1), addr(2), addr(3)], 4, 1000, 2).unwrap();
        assert_eq!(la.slot_at(U256::from(1000)), Some(0));
        assert_eq!(la.slot_at(U256::from(1007)), Some(3));
        assert_eq!(la.slot_at(U256::from(999)), None);
        assert_eq!(la.signer_for_slot(0), Some(addr(1)));
        assert_eq!(la.signer_for_slot(3), Some(addr(1)));
        assert_eq!(la.signer_for_slot(4), Some(addr(2)));
        assert_eq!(la.signer_for_slot(12), Some(addr(1)));
        // Window 0 covers slots 0..4, i.e. timestamps 1000..1008.
        assert_eq!(la.window_end_for_slot(2), Some(U256::from(1008)));
        assert_eq!(la.schedule_for_slot(5).unwrap().next_window_first_slot, 8);
        assert!(la.is_last_slot_of_window(3));
        assert!(!la.is_last_slot_of_window(4));
    }

    #[test]
    fn horizon_hides_and_reveals() {
        let la = RotatingLookahead::new(vec![addr(1)], 2, 0, 1)
            .unwrap()
            .with_horizon(5);
        assert!(la.schedule_for_slot(5).is_some());
        assert!(la.schedule_for_slot(6).is_none());
        la.extend_horizon(10);
        assert!(la.schedule_for_slot(6).is_some());
    }

    #[test]
    fn rejects_degenerate_parameters() {
        assert!(RotatingLookahead::new(vec![], 1, 0, 1).is_none());
        assert!(RotatingLookahead::new(vec![addr(1)], 0, 0, 1).is_none());
        assert!(RotatingLookahead::new(vec![addr(1)], 1, 0, 0).is_none());
    }
}
