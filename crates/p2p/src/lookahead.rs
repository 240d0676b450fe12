//! Who may commit when: the [`Lookahead`] schedule (§4.2 items 1 and 3, §5).
//!
//! In production the sidecar bridges its URC / lookahead contract view into this trait. Devnets
//! and tests use [`RotatingLookahead`]: `N` preconfer keys, each owning a window of `K` slots,
//! round robin. [`LearnedLookahead`] has the same fixed windows but learns each window's
//! preconfer from a source (the node's L1 whitelist reader): a window nobody has told it
//! about has no schedule, so its commitments wait as "pending schedule" and are never
//! accepted on trust. There is deliberately no "accept everything" implementation.
//!
//! Time model: L2 slots of `slot_duration` seconds from `genesis`. A block belongs to the slot
//! containing its `timestamp`. A *window* is a run of consecutive slots owned by one preconfer;
//! its `submissionWindowEnd` is the timestamp at which the window ends (exclusive), the same for
//! every block of the window. Validation asks by time ([`Lookahead::schedule_at`],
//! [`Lookahead::schedule_for_window_end`]), so a schedule with other window edges — Taiko's
//! L1 lookahead, whose variable windows `(start, end]` end on an L1 slot — implements those
//! two and keeps the slots only as the keys of per-slot dedupe.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use preconfirmation_types::{Address, U256};

/// Seconds since the unix epoch on the local clock: the time the schedule's slots are counted
/// in.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}

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

    /// The schedule of the window unix second `timestamp` (a block's) lies in; `None` when not
    /// known (yet). By default the schedule of the slot containing it. A schedule whose window
    /// edges fall inside slots (Taiko's L1 lookahead: windows `(start, end]` ending on an L1
    /// slot, where a block timed exactly at `end` is still the window's) answers by time.
    fn schedule_at(&self, timestamp: u64) -> Option<SlotSchedule> {
        self.schedule_for_slot(self.slot_at(U256::from(timestamp))?)
    }

    /// The schedule of the window a commitment names by its `submissionWindowEnd` (§4.2 items
    /// 1 and 3: the preconfer of the slot that holds it). `Err` when `window_end` cannot be a
    /// window's end at all (before genesis, past `u64`); `Ok(None)` when not known (yet).
    ///
    /// By default windows end exclusively — the end is the first second after the window, as
    /// the fixed windows here and `testdata/vectors.json` have it — so the window is the one
    /// holding `window_end − 1`. A schedule whose windows end inclusively (the L1 lookahead)
    /// resolves `window_end` itself.
    fn schedule_for_window_end(
        &self,
        window_end: U256,
    ) -> Result<Option<SlotSchedule>, WindowEndOutOfRange> {
        let slot = window_end
            .checked_sub(U256::from(1))
            .and_then(|last_second| self.slot_at(last_second))
            .ok_or(WindowEndOutOfRange)?;
        Ok(self.schedule_for_slot(slot))
    }
}

/// A `submissionWindowEnd` no window of the schedule can have (before genesis, past `u64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowEndOutOfRange;

/// The time geometry both lookaheads share: slots of `slot_duration` seconds from `genesis`,
/// windows of `slots_per_window` slots, a window's end the first second after it.
#[derive(Debug, Clone, Copy)]
struct Windows {
    slots_per_window: u64,
    genesis: u64,
    slot_duration: u64,
}

impl Windows {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        let timestamp = u64::try_from(timestamp).ok()?;
        let since = timestamp.checked_sub(self.genesis)?;
        Some(since / self.slot_duration)
    }

    fn window_of(&self, slot: u64) -> u64 {
        slot / self.slots_per_window
    }

    /// `signer`'s schedule entry for every slot of `window`.
    fn schedule(&self, window: u64, signer: Address) -> Option<SlotSchedule> {
        let next_window_first_slot = window.checked_add(1)?.checked_mul(self.slots_per_window)?;
        let window_end = self
            .genesis
            .checked_add(next_window_first_slot.checked_mul(self.slot_duration)?)?;
        Some(SlotSchedule {
            signer,
            window_end: U256::from(window_end),
            next_window_first_slot,
            coinbase: None,
            prover: None,
        })
    }
}

/// Deterministic round-robin schedule: slot `s` belongs to window `s / K`, owned by
/// `signers[(s / K) % N]`.
///
/// The schedule can be limited to a known horizon ([`RotatingLookahead::with_horizon`]) to model
/// a lookahead that is only published an epoch ahead; [`RotatingLookahead::extend_horizon`]
/// reveals more (then tell the SDK with `P2pSdk::schedule_updated`).
#[derive(Debug)]
pub struct RotatingLookahead {
    signers: Vec<Address>,
    windows: Windows,
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
            windows: Windows {
                slots_per_window,
                genesis,
                slot_duration,
            },
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
        self.windows.slots_per_window
    }

    /// Slot length in seconds.
    pub fn slot_duration(&self) -> u64 {
        self.windows.slot_duration
    }

    /// Genesis in unix seconds.
    pub fn genesis(&self) -> u64 {
        self.windows.genesis
    }

    /// First timestamp of `slot`.
    pub fn slot_start(&self, slot: u64) -> u64 {
        self.windows
            .genesis
            .saturating_add(slot.saturating_mul(self.windows.slot_duration))
    }

    /// Whether `slot` is the last slot of its window (where a preconfer sends its EOP).
    pub fn is_last_slot_of_window(&self, slot: u64) -> bool {
        slot % self.windows.slots_per_window == self.windows.slots_per_window - 1
    }
}

impl Lookahead for RotatingLookahead {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        self.windows.slot_at(timestamp)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        if slot > self.horizon.load(Ordering::Relaxed) {
            return None;
        }
        let window = self.windows.window_of(slot);
        let index = usize::try_from(window % self.signers.len() as u64).ok()?;
        self.windows.schedule(window, *self.signers.get(index)?)
    }
}

/// Windows of a fixed length whose preconfers are learned, one window at a time, from a
/// schedule source (for Taiko's whitelist: one window per L1 epoch, its operator's sequencer
/// address read from L1).
///
/// Window `w` covers slots `w·K .. (w+1)·K` of `slot_duration` seconds from `genesis`, and its
/// `submissionWindowEnd` is the first second after it — the same convention as
/// [`RotatingLookahead`]. A window without a learned signer has no schedule ([`None`]):
/// commitments for it stay pending until [`LearnedLookahead::learn`] (then tell the SDK with
/// `P2pSdk::schedule_updated`). At most `max_windows` windows are remembered (the
/// highest); learning a window again replaces its signer (an operator removed mid-epoch).
///
/// A lookup of an unknown window is remembered as *wanted*, so the source can fetch the
/// windows validation asked for — a catching-up node validates blocks of past windows the
/// source would otherwise never read. Only windows up to the one after the clock's are wanted
/// (a later one is not decided on L1 yet, and any peer can name one in a commitment); at most
/// `max_windows` are kept, the lowest, and they are taken lowest first: catch-up validates in
/// block order, so the oldest window it waits for is the one it needs next.
#[derive(Debug)]
pub struct LearnedLookahead {
    windows: Windows,
    max_windows: usize,
    signers: RwLock<BTreeMap<u64, Address>>,
    wanted: parking_lot::Mutex<std::collections::BTreeSet<u64>>,
}

impl LearnedLookahead {
    /// Windows of `slots_per_window` slots of `slot_duration` seconds from `genesis` (unix
    /// seconds), remembering at most `max_windows` of them. `None` if a length is zero.
    pub fn new(
        slots_per_window: u64,
        genesis: u64,
        slot_duration: u64,
        max_windows: usize,
    ) -> Option<Self> {
        if slots_per_window == 0 || slot_duration == 0 || max_windows == 0 {
            return None;
        }
        Some(Self {
            windows: Windows {
                slots_per_window,
                genesis,
                slot_duration,
            },
            max_windows,
            signers: RwLock::new(BTreeMap::new()),
            wanted: parking_lot::Mutex::new(std::collections::BTreeSet::new()),
        })
    }

    /// The window containing unix second `timestamp`, `None` before genesis.
    pub fn window_at(&self, timestamp: u64) -> Option<u64> {
        let slot = self.windows.slot_at(U256::from(timestamp))?;
        Some(self.windows.window_of(slot))
    }

    /// Records `signer` as the preconfer of `window`; returns whether that changed anything.
    /// The lowest windows are forgotten beyond `max_windows`.
    pub fn learn(&self, window: u64, signer: Address) -> bool {
        self.wanted.lock().remove(&window);
        let mut signers = self.signers.write();
        let changed = signers.insert(window, signer) != Some(signer);
        while signers.len() > self.max_windows {
            signers.pop_first();
        }
        changed
    }

    /// Forgets what was learned about `window` (the source says it has no preconfer):
    /// commitments for it wait again. Returns whether a signer was known.
    pub fn forget(&self, window: u64) -> bool {
        self.signers.write().remove(&window).is_some()
    }

    /// The learned signer of `window`.
    pub fn signer_of_window(&self, window: u64) -> Option<Address> {
        self.signers.read().get(&window).copied()
    }

    /// Marks `window` as wanted (the source fetches it with the ones validation asked for),
    /// unless it is known already or lies beyond the window after the clock's (see the type's
    /// docs). At most `max_windows` are wanted (the lowest).
    pub fn want(&self, window: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.want_at(window, now);
    }

    /// [`Self::want`] with the clock at unix second `now`.
    fn want_at(&self, window: u64, now: u64) {
        // Before genesis no window is decided yet.
        let Some(current) = self.window_at(now) else {
            return;
        };
        if window > current.saturating_add(1) || self.signer_of_window(window).is_some() {
            return;
        }
        let mut wanted = self.wanted.lock();
        wanted.insert(window);
        while wanted.len() > self.max_windows {
            wanted.pop_last();
        }
    }

    /// Takes the windows validation looked up without an answer, lowest first, at most `max`
    /// (the rest stay wanted).
    pub fn take_wanted(&self, max: usize) -> Vec<u64> {
        let mut wanted = self.wanted.lock();
        let taken: Vec<u64> = wanted.iter().take(max).copied().collect();
        for w in &taken {
            wanted.remove(w);
        }
        taken
    }

    /// Every learned window and its signer, lowest first.
    pub fn learned(&self) -> Vec<(u64, Address)> {
        self.signers.read().iter().map(|(w, a)| (*w, *a)).collect()
    }
}

impl Lookahead for LearnedLookahead {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        self.windows.slot_at(timestamp)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        let window = self.windows.window_of(slot);
        let Some(signer) = self.signer_of_window(window) else {
            self.want(window);
            return None;
        };
        self.windows.schedule(window, signer)
    }
}

impl<T: Lookahead + ?Sized> Lookahead for std::sync::Arc<T> {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        (**self).slot_at(timestamp)
    }

    fn schedule_for_slot(&self, slot: u64) -> Option<SlotSchedule> {
        (**self).schedule_for_slot(slot)
    }

    fn schedule_at(&self, timestamp: u64) -> Option<SlotSchedule> {
        (**self).schedule_at(timestamp)
    }

    fn schedule_for_window_end(
        &self,
        window_end: U256,
    ) -> Result<Option<SlotSchedule>, WindowEndOutOfRange> {
        (**self).schedule_for_window_end(window_end)
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
    fn learned_windows_only() {
        // Windows of 4 slots of 2 s from 1000: window 0 is 1000..1008, window 1 1008..1016.
        let la = LearnedLookahead::new(4, 1000, 2, 2).unwrap();
        assert_eq!(la.slot_at(U256::from(1009)), Some(4));
        assert_eq!(la.window_at(1009), Some(1));
        assert_eq!(la.window_at(999), None);
        assert!(
            la.schedule_for_slot(4).is_none(),
            "nothing learned: pending"
        );
        assert!(la.learn(1, addr(2)));
        assert!(
            !la.learn(1, addr(2)),
            "the same signer again changes nothing"
        );
        let s = la.schedule_for_slot(4).unwrap();
        assert_eq!(s.signer, addr(2));
        assert_eq!(s.window_end, U256::from(1016));
        assert_eq!(s.next_window_first_slot, 8);
        assert_eq!(la.signer_for_slot(7), Some(addr(2)));
        assert!(la.schedule_for_slot(3).is_none() && la.schedule_for_slot(8).is_none());
        // Replaced, then bounded: the lowest window goes first.
        assert!(la.learn(1, addr(3)));
        assert_eq!(la.signer_for_slot(5), Some(addr(3)));
        la.learn(2, addr(4));
        la.learn(3, addr(5));
        assert_eq!(la.learned(), vec![(2, addr(4)), (3, addr(5))]);
        assert!(la.forget(3) && !la.forget(3));
        assert!(la.schedule_for_slot(12).is_none());
        // Unknown windows looked up are wanted (bounded, lowest kept), until learned.
        assert!(la.schedule_for_slot(0).is_none() && la.schedule_for_slot(17).is_none());
        assert_eq!(
            la.take_wanted(1),
            vec![0],
            "lowest first; at most max_windows kept"
        );
        assert_eq!(la.take_wanted(8), vec![3], "window 4 was over the cap");
        assert!(la.take_wanted(8).is_empty());
        assert!(la.schedule_for_slot(20).is_none());
        la.learn(5, addr(6));
        assert!(
            la.take_wanted(8).is_empty(),
            "learning a window satisfies it"
        );
        la.want(5);
        la.want(6);
        assert_eq!(la.take_wanted(8), vec![6], "a known window is not wanted");
        assert!(LearnedLookahead::new(0, 0, 1, 1).is_none());
        assert!(LearnedLookahead::new(1, 0, 0, 1).is_none());
        assert!(LearnedLookahead::new(1, 0, 1, 0).is_none());
    }

    /// A catching-up node wants epochs 10–12 while a peer's commitments name 8 far-future
    /// windows (around 10^6) on every recheck: the reader (8 epochs a poll) still gets 10–12
    /// at its first poll. Highest-first, the far-future windows were taken every poll and the
    /// old epochs never.
    #[test]
    fn far_future_lookups_do_not_starve_the_past_windows_catch_up_needs() {
        let now = 1_000_000_000;
        // 4 slots of 12 s a window; the clock is in window 12.
        let genesis = now - 12 * 48 - 10;
        let la = LearnedLookahead::new(4, genesis, 12, 64).unwrap();
        assert_eq!(la.window_at(now), Some(12));
        for epoch in 10..=12 {
            la.want_at(epoch, now);
        }
        let mut read = Vec::new();
        for _poll in 0..2 {
            for i in 0..8 {
                la.want_at(1_000_000 + i, now);
            }
            read.extend(la.take_wanted(8));
        }
        assert_eq!(
            read,
            vec![10, 11, 12],
            "only the decidable windows, oldest first"
        );
        // The window after the clock's is decided on L1 already (the next epoch's operator).
        la.want_at(13, now);
        la.want_at(14, now);
        assert_eq!(la.take_wanted(8), vec![13]);
        // Before genesis nothing is wanted.
        la.want_at(0, genesis - 1);
        assert!(la.take_wanted(8).is_empty());
    }

    #[test]
    fn rejects_degenerate_parameters() {
        assert!(RotatingLookahead::new(vec![], 1, 0, 1).is_none());
        assert!(RotatingLookahead::new(vec![addr(1)], 0, 0, 1).is_none());
        assert!(RotatingLookahead::new(vec![addr(1)], 1, 0, 0).is_none());
    }
}
