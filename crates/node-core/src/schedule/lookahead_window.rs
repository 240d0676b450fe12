//! Who may preconfirm when under Taiko's permissionless schedule: the windows of an L1 epoch,
//! computed from the lists `LookaheadStore` publishes (L1-LOOKAHEAD.md §1, §3, §4.1).
//!
//! Pure arithmetic, no I/O: the L1 reader fetches and verifies the lists (hash against the
//! store), and this module answers "whose window holds time `t`, where does it start and end"
//! exactly as the contract's `checkProposer` would.
//!
//! - Time: 12 s L1 slots, 32-slot epochs from the beacon genesis of the L1 chain
//!   ([`beacon_genesis`]). An epoch is named by its first second `E`.
//! - A list is sparse: one entry per L1 slot of the epoch whose proposer is an opted-in operator.
//!   Windows are `(start, end]`: an entry owns the time after the previous entry up to its own
//!   slot, the first entry from `E − 12`; time after the last entry belongs to the next epoch's
//!   first entry (the cross-epoch tail) or, if that list is empty, to the fallback preconfer up to
//!   `E + 372`. An empty epoch is the fallback's from `E` (exclusive) to `E + 372`.
//! - A blacklisted entry keeps its window, but the fallback signs it ([`Proposer::signer`]).

use std::collections::{BTreeMap, BTreeSet};

use alloy::primitives::{keccak256, Address, FixedBytes, B256, U256};

/// Seconds per L1 slot (L1-LOOKAHEAD.md §1).
pub const SECONDS_PER_L1_SLOT: u64 = 12;
/// L1 slots per epoch (§1).
pub const L1_SLOTS_PER_EPOCH: u64 = 32;
/// Seconds per L1 epoch (§1).
pub const SECONDS_PER_EPOCH: u64 = SECONDS_PER_L1_SLOT * L1_SLOTS_PER_EPOCH;
/// Offset of an epoch's last L1 slot from its start, the end of every fallback window (§4.1).
pub const LAST_SLOT_OFFSET: u64 = SECONDS_PER_EPOCH - SECONDS_PER_L1_SLOT;
/// Epochs the store's ring buffer holds before a bucket is reused (§2, `lookaheadBufferSize`).
pub const LOOKAHEAD_BUFFER_SIZE: u64 = 503;
/// Storage slot of the store's `lookahead` mapping (§2, `LookaheadStore_Layout.sol`).
pub const LOOKAHEAD_MAPPING_SLOT: u64 = 301;
/// Most entries a list can hold: one per L1 slot of its epoch (§3).
pub const MAX_LOOKAHEAD_ENTRIES: usize = L1_SLOTS_PER_EPOCH as usize;

/// The beacon genesis (unix seconds) epochs count from, by L1 chain id (§1): mainnet, Holesky,
/// Helder and Hoodi have their own; any other chain (Sepolia, anvil, devnets) counts from 0.
pub fn beacon_genesis(l1_chain_id: u64) -> u64 {
    match l1_chain_id {
        1 => 1_606_824_023,
        17_000 => 1_695_902_400,
        7_014_190_335 => 1_718_967_660,
        560_048 => 1_742_213_400,
        _ => 0,
    }
}

/// Epoch arithmetic from one beacon genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochClock {
    genesis: u64,
}

impl EpochClock {
    /// Epochs counted from `genesis` (unix seconds).
    pub fn new(genesis: u64) -> Self {
        Self { genesis }
    }

    /// The genesis epochs count from.
    pub fn genesis(&self) -> u64 {
        self.genesis
    }

    /// The epoch containing `t` (its first second), or `None` before genesis or past `u64`.
    pub fn epoch_of(&self, t: u64) -> Option<u64> {
        let since = t.checked_sub(self.genesis)?;
        self.genesis
            .checked_add(since / SECONDS_PER_EPOCH * SECONDS_PER_EPOCH)
    }

    /// The epoch after `epoch`.
    pub fn next(&self, epoch: u64) -> Option<u64> {
        epoch.checked_add(SECONDS_PER_EPOCH)
    }
}

/// One entry of a posted list, as the `LookaheadPosted` event carries it (`LookaheadSlot`, §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookaheadEntry {
    /// The operator's committer: the L1 proposer and P2P signer of the window.
    pub committer: Address,
    /// The L1 slot's timestamp; the window's end.
    pub timestamp: U256,
    /// The operator's URC registration root (its id; what the blacklist names).
    pub registration_root: B256,
    /// The validator key's index inside the registration.
    pub validator_leaf_index: U256,
}

/// The 26-byte hash the store keeps per epoch: the first 26 bytes of
/// `keccak256(abi.encode(uint256 epoch, LookaheadSlot[] entries))` (§3).
pub fn lookahead_hash(epoch: u64, entries: &[LookaheadEntry]) -> FixedBytes<26> {
    let mut preimage = Vec::with_capacity(96 + 128 * entries.len());
    preimage.extend_from_slice(&U256::from(epoch).to_be_bytes::<32>());
    preimage.extend_from_slice(&U256::from(0x40u64).to_be_bytes::<32>());
    preimage.extend_from_slice(&U256::from(entries.len()).to_be_bytes::<32>());
    for entry in entries {
        preimage.extend_from_slice(B256::left_padding_from(entry.committer.as_slice()).as_slice());
        preimage.extend_from_slice(&entry.timestamp.to_be_bytes::<32>());
        preimage.extend_from_slice(entry.registration_root.as_slice());
        preimage.extend_from_slice(&entry.validator_leaf_index.to_be_bytes::<32>());
    }
    FixedBytes::from_slice(&keccak256(&preimage)[..26])
}

/// The storage slot of `epoch`'s record in the store's ring buffer (§2): the mapping at
/// [`LOOKAHEAD_MAPPING_SLOT`] keyed by `epoch % 503`.
pub fn lookahead_storage_slot(epoch: u64) -> B256 {
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(&U256::from(epoch % LOOKAHEAD_BUFFER_SIZE).to_be_bytes::<32>());
    preimage[32..].copy_from_slice(&U256::from(LOOKAHEAD_MAPPING_SLOT).to_be_bytes::<32>());
    keccak256(preimage)
}

/// A ring-buffer word read big-endian: `hash26 ‖ uint48 epoch` (§2). Returns `(epoch, hash)`.
pub fn decode_storage_word(word: B256) -> (u64, FixedBytes<26>) {
    let mut epoch = [0u8; 8];
    epoch[2..].copy_from_slice(&word[26..]);
    (
        u64::from_be_bytes(epoch),
        FixedBytes::from_slice(&word[..26]),
    )
}

/// Why a list cannot be an epoch's schedule. The store never accepts such a list, so a reader
/// that meets one was lied to: the epoch stays unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookaheadListError {
    /// More entries than L1 slots in an epoch.
    #[error("{0} entries, more than the {MAX_LOOKAHEAD_ENTRIES} slots of an epoch")]
    TooLong(usize),
    /// An entry's timestamp is not strictly after the one before it.
    #[error("entry {0} is not after the entry before it")]
    NotIncreasing(usize),
    /// An entry's timestamp lies outside `(E − 12, E + 384)`.
    #[error("entry {0} lies outside its epoch")]
    OutsideEpoch(usize),
}

/// One epoch's list, checked: at most 32 entries, strictly increasing timestamps inside
/// `(E − 12, E + 384)` (the store's own rules, §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochLookahead {
    epoch: u64,
    /// `(timestamp, entry)`, the timestamp narrowed to `u64` once.
    entries: Vec<(u64, LookaheadEntry)>,
}

impl EpochLookahead {
    /// Checks `entries` as `epoch`'s list.
    pub fn new(epoch: u64, entries: &[LookaheadEntry]) -> Result<Self, LookaheadListError> {
        if entries.len() > MAX_LOOKAHEAD_ENTRIES {
            return Err(LookaheadListError::TooLong(entries.len()));
        }
        let low = epoch.saturating_sub(SECONDS_PER_L1_SLOT);
        let high = epoch.saturating_add(SECONDS_PER_EPOCH);
        let mut checked = Vec::with_capacity(entries.len());
        let mut previous: Option<u64> = None;
        for (index, entry) in entries.iter().enumerate() {
            let timestamp = u64::try_from(entry.timestamp)
                .ok()
                .filter(|ts| *ts > low && *ts < high)
                .ok_or(LookaheadListError::OutsideEpoch(index))?;
            if previous.is_some_and(|p| timestamp <= p) {
                return Err(LookaheadListError::NotIncreasing(index));
            }
            previous = Some(timestamp);
            checked.push((timestamp, *entry));
        }
        Ok(Self {
            epoch,
            entries: checked,
        })
    }

    /// The epoch (its first second).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Whether no operator opted in: the whole epoch is the fallback's.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &LookaheadEntry> {
        self.entries.iter().map(|(_, entry)| entry)
    }
}

/// Who owns a window, before the blacklist and the whitelist are consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proposer {
    /// A list entry's operator.
    Entry {
        /// The committer (the signer unless blacklisted).
        committer: Address,
        /// The operator's registration root, for the blacklist.
        registration_root: B256,
    },
    /// The whitelist's fallback preconfer of this epoch (empty list, or the tail before an
    /// empty next list).
    Fallback,
}

impl Proposer {
    /// The signer: the committer, or the fallback when the list names nobody or the entry's
    /// operator is blacklisted now (§4.1 items 4 and 5). Returns `(signer, is_fallback)`;
    /// `None` when the fallback signs and is not known.
    pub fn signer(&self, blacklisted: bool, fallback: Option<Address>) -> Option<(Address, bool)> {
        match self {
            Self::Entry { committer, .. } if !blacklisted => Some((*committer, false)),
            _ => fallback.map(|fallback| (fallback, true)),
        }
    }

    /// The registration root the blacklist is asked about, if an entry owns the window.
    pub fn registration_root(&self) -> Option<B256> {
        match self {
            Self::Entry {
                registration_root, ..
            } => Some(*registration_root),
            Self::Fallback => None,
        }
    }
}

/// A window: `(start, end]`, its owner, and the epoch whose fallback stands in for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Exclusive start.
    pub start: u64,
    /// Inclusive end: the `submissionWindowEnd` of every commitment in the window (§6).
    pub end: u64,
    /// Who owns it.
    pub proposer: Proposer,
    /// The epoch the window was resolved in: whose whitelist pick is the fallback.
    pub epoch: u64,
}

/// Why a time has no window yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// `t` is not inside the epoch of the list given.
    WrongEpoch,
    /// `t` is after the last entry and the next epoch's list is not known yet (§4.2: pending,
    /// never guessed).
    NeedsNextEpoch,
}

/// The window holding `t` (§4.1): `curr` is the list of `t`'s epoch, `next` the next epoch's
/// list if known. Only the tail after `curr`'s last entry needs `next`.
pub fn window_at(
    t: u64,
    curr: &EpochLookahead,
    next: Option<&EpochLookahead>,
) -> Result<Window, Unresolved> {
    let epoch = curr.epoch;
    if t < epoch || t - epoch >= SECONDS_PER_EPOCH {
        return Err(Unresolved::WrongEpoch);
    }
    let fallback_end = epoch.saturating_add(LAST_SLOT_OFFSET);
    let Some(&(last, _)) = curr.entries.last() else {
        return Ok(Window {
            start: epoch,
            end: fallback_end,
            proposer: Proposer::Fallback,
            epoch,
        });
    };
    let index = curr.entries.partition_point(|(ts, _)| *ts < t);
    if let Some(&(end, entry)) = curr.entries.get(index) {
        let start = match index.checked_sub(1) {
            Some(before) => curr.entries[before].0,
            None => epoch.saturating_sub(SECONDS_PER_L1_SLOT),
        };
        return Ok(Window {
            start,
            end,
            proposer: entry_proposer(&entry),
            epoch,
        });
    }
    let next = next.ok_or(Unresolved::NeedsNextEpoch)?;
    if Some(next.epoch) != epoch.checked_add(SECONDS_PER_EPOCH) {
        return Err(Unresolved::NeedsNextEpoch);
    }
    Ok(match next.entries.first() {
        Some(&(end, entry)) => Window {
            start: last,
            end,
            proposer: entry_proposer(&entry),
            epoch,
        },
        None => Window {
            start: last,
            end: fallback_end,
            proposer: Proposer::Fallback,
            epoch,
        },
    })
}

fn entry_proposer(entry: &LookaheadEntry) -> Proposer {
    Proposer::Entry {
        committer: entry.committer,
        registration_root: entry.registration_root,
    }
}

/// What the node verified about one epoch: its list, the whitelist's fallback preconfer, and
/// which of the list's operators were blacklisted when it last looked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochKnowledge {
    /// The verified list (empty: the fallback's epoch).
    pub list: EpochLookahead,
    /// The stored hash the list was verified against (zero: never posted).
    pub hash: FixedBytes<26>,
    /// The whitelist's pick for the epoch; `None` until read (windows it would sign stay
    /// unknown).
    pub fallback: Option<Address>,
    /// Registration roots blacklisted at the last read.
    pub blacklisted: BTreeSet<B256>,
}

/// What [`KnownEpochs::learn`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Nothing new.
    Unchanged,
    /// The epoch was unknown, or only its fallback or blacklist changed.
    Updated,
    /// The epoch's list itself changed (an L1 reorg replaced it): what was accepted under the
    /// old list needs a second look.
    ListReplaced,
    /// Not kept: older than every remembered epoch while the memory is full.
    TooOld,
}

/// A resolved time: its window and who signs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The window holding the time.
    pub window: Window,
    /// Who signs it.
    pub signer: Address,
    /// Whether that is the whitelist's fallback.
    pub is_fallback: bool,
}

/// The epochs the node knows, at most `capacity` of them (the newest).
#[derive(Debug, Clone)]
pub struct KnownEpochs {
    clock: EpochClock,
    capacity: usize,
    epochs: BTreeMap<u64, EpochKnowledge>,
}

impl KnownEpochs {
    /// Remembers at most `capacity` epochs (at least 2: the current and the next).
    pub fn new(clock: EpochClock, capacity: usize) -> Self {
        Self {
            clock,
            capacity: capacity.max(2),
            epochs: BTreeMap::new(),
        }
    }

    /// The epoch clock.
    pub fn clock(&self) -> EpochClock {
        self.clock
    }

    /// Records what was verified about `knowledge.list.epoch()`; the oldest epoch goes when
    /// more than `capacity` are known.
    pub fn learn(&mut self, knowledge: EpochKnowledge) -> Learned {
        let epoch = knowledge.list.epoch();
        let outcome = match self.epochs.get(&epoch) {
            Some(old) if *old == knowledge => return Learned::Unchanged,
            Some(old) if old.list != knowledge.list => Learned::ListReplaced,
            _ => Learned::Updated,
        };
        // Older than the oldest remembered: not a known epoch, so nothing is replaced.
        if self.epochs.len() >= self.capacity
            && self
                .epochs
                .keys()
                .next()
                .is_some_and(|oldest| epoch < *oldest)
        {
            return Learned::TooOld;
        }
        self.epochs.insert(epoch, knowledge);
        while self.epochs.len() > self.capacity {
            self.epochs.pop_first();
        }
        outcome
    }

    /// Forgets `epoch` (its record vanished in a reorg); returns whether it was known.
    pub fn forget(&mut self, epoch: u64) -> bool {
        self.epochs.remove(&epoch).is_some()
    }

    /// What is known of `epoch`.
    pub fn get(&self, epoch: u64) -> Option<&EpochKnowledge> {
        self.epochs.get(&epoch)
    }

    /// How many epochs are remembered.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// The window and signer of time `t`; `None` while anything it depends on is unknown (its
    /// epoch's list, the next list for a tail, the fallback where the fallback signs).
    pub fn resolve(&self, t: u64) -> Option<Resolved> {
        let epoch = self.clock.epoch_of(t)?;
        let curr = self.epochs.get(&epoch)?;
        let next = self
            .clock
            .next(epoch)
            .and_then(|n| self.epochs.get(&n))
            .map(|k| &k.list);
        let window = window_at(t, &curr.list, next).ok()?;
        let blacklisted = window
            .proposer
            .registration_root()
            .is_some_and(|root| curr.blacklisted.contains(&root));
        let (signer, is_fallback) = window.proposer.signer(blacklisted, curr.fallback)?;
        Some(Resolved {
            window,
            signer,
            is_fallback,
        })
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod vectors;
