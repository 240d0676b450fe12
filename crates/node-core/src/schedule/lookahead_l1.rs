//! Reading one epoch's list from Taiko's `LookaheadStore` on L1 without trusting the RPC
//! (L1-LOOKAHEAD.md §5): the `LookaheadPosted` log carries the list, the store keeps only its
//! 26-byte hash, and a list counts only when its recomputed hash equals the stored one.
//!
//! Which block each read uses, and why:
//! - the stored hash, the blacklist and the fallback operator are read **pinned to one block
//!   number**, the L1 head of the poll, so every answer of a poll describes the same state; the
//!   head (not `safe` or `finalized`) because the list for epoch `E` is posted during `E − 1`
//!   and is neither safe nor final when `E` starts. A reorg is caught by reading the hash again
//!   at later heads (the caller does, each poll) and re-fetching the list when it changed;
//! - logs are fetched over a bounded block range (the posting epoch's blocks) and filtered by
//!   the epoch topic; a log marked `removed`, or whose list does not hash to the stored value,
//!   is never used.
//!
//! Nothing here guesses: an epoch whose hash is zero while the head is still before it is
//! pending; a hash no log matches leaves the epoch unknown (its commitments wait, no peer is
//! scored for them).

use alloy::primitives::{Address, FixedBytes, B256, U256};
use alloy::rpc::types::{Filter, Log};
use alloy::sol;
use alloy::sol_types::SolEvent;

use super::lookahead_window::{lookahead_hash, EpochLookahead, LookaheadEntry, LookaheadListError};

sol! {
    /// The parts of Taiko's `LookaheadStore` the node reads (L1-LOOKAHEAD.md §2).
    #[sol(rpc)]
    interface ILookaheadStore {
        /// One list entry.
        struct LookaheadSlot {
            address committer;
            uint256 timestamp;
            bytes32 registrationRoot;
            uint256 validatorLeafIndex;
        }

        /// A list was stored for `epochTimestamp`.
        event LookaheadPosted(uint256 indexed epochTimestamp, bytes32 lookaheadHash, LookaheadSlot[] lookaheadSlots);

        function getLookaheadHash(uint256 epochTimestamp) external view returns (bytes26);
        function isOperatorBlacklisted(bytes32 operatorRegistrationRoot) external view returns (bool);
        function preconfWhitelist() external view returns (address);
    }
}

/// Default of `l1.max_logs_per_epoch`, the most `LookaheadPosted` logs one answer may carry:
/// an honest answer for one epoch carries one (two or three around a reorg). A longer answer
/// is refused whole.
pub const MAX_LOGS_PER_EPOCH: usize = 8;

/// What the store says about one epoch, after checking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostedList {
    /// A list whose hash matches the stored hash (possibly empty: the fallback's epoch).
    Verified(EpochLookahead),
    /// No record and the head is at or past the epoch's start: nobody will post it any more
    /// (§3), the whole epoch is the fallback's.
    NeverPosted,
    /// No record and the head is before the epoch: may still be posted.
    Pending,
}

/// Why an epoch's list could not be verified. The epoch stays unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListProblem {
    /// The RPC returned more logs than an epoch can have.
    #[error("{0} LookaheadPosted logs for one epoch, more than allowed (l1.max_logs_per_epoch)")]
    TooManyLogs(usize),
    /// No log's list hashes to the stored hash (a stale or lying log source).
    #[error("no LookaheadPosted log matches the stored hash {stored}")]
    NoMatchingLog {
        /// The hash the store holds.
        stored: FixedBytes<26>,
    },
    /// The matching list breaks the store's own rules.
    #[error("the posted list is malformed: {0}")]
    Malformed(#[from] LookaheadListError),
}

/// A `LookaheadPosted` log, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedLog {
    /// The epoch topic.
    pub epoch: U256,
    /// Whether the node reported it as removed by a reorg.
    pub removed: bool,
    /// The list.
    pub entries: Vec<LookaheadEntry>,
}

impl PostedLog {
    /// Decodes an RPC log; `None` for anything that is not a well-formed `LookaheadPosted`.
    pub fn decode(log: &Log) -> Option<Self> {
        let decoded = ILookaheadStore::LookaheadPosted::decode_log(&log.inner).ok()?;
        let entries = decoded
            .data
            .lookaheadSlots
            .iter()
            .map(|slot| LookaheadEntry {
                committer: slot.committer,
                timestamp: slot.timestamp,
                registration_root: slot.registrationRoot,
                validator_leaf_index: slot.validatorLeafIndex,
            })
            .collect();
        Some(Self {
            epoch: decoded.data.epochTimestamp,
            removed: log.removed,
            entries,
        })
    }
}

/// The list of `epoch` given the hash the store holds (read at `head_timestamp`) and the logs
/// the RPC returned (at most `max_logs`): the first log that is for this epoch, not removed,
/// and hashes to `stored`.
pub fn verify_posted_list(
    epoch: u64,
    stored: FixedBytes<26>,
    head_timestamp: u64,
    logs: &[PostedLog],
    max_logs: usize,
) -> Result<PostedList, ListProblem> {
    if stored == FixedBytes::ZERO {
        return Ok(if head_timestamp >= epoch {
            PostedList::NeverPosted
        } else {
            PostedList::Pending
        });
    }
    if logs.len() > max_logs {
        return Err(ListProblem::TooManyLogs(logs.len()));
    }
    let matching = logs.iter().find(|log| {
        !log.removed
            && log.epoch == U256::from(epoch)
            && lookahead_hash(epoch, &log.entries) == stored
    });
    match matching {
        Some(log) => Ok(PostedList::Verified(EpochLookahead::new(
            epoch,
            &log.entries,
        )?)),
        None => Err(ListProblem::NoMatchingLog { stored }),
    }
}

/// The log filter for `epoch`'s post in blocks `from..=to` of the store at `store`.
pub fn posted_filter(store: Address, epoch: u64, from: u64, to: u64) -> Filter {
    Filter::new()
        .address(store)
        .event_signature(ILookaheadStore::LookaheadPosted::SIGNATURE_HASH)
        .topic1(B256::from(U256::from(epoch)))
        .from_block(from)
        .to_block(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, LogData};
    use alloy::sol_types::SolCall;

    fn entry(committer: u8, timestamp: u64) -> LookaheadEntry {
        LookaheadEntry {
            committer: Address::with_last_byte(committer),
            timestamp: U256::from(timestamp),
            registration_root: B256::with_last_byte(committer),
            validator_leaf_index: U256::from(committer),
        }
    }

    fn log(epoch: u64, entries: Vec<LookaheadEntry>) -> PostedLog {
        PostedLog {
            epoch: U256::from(epoch),
            removed: false,
            entries,
        }
    }

    #[test]
    fn selectors_and_topic_are_the_stores() {
        // L1-LOOKAHEAD.md §2.
        assert_eq!(
            ILookaheadStore::LookaheadPosted::SIGNATURE_HASH.to_string(),
            "0xae9b6437ad267553afbf07550405458fc43f11f8c50037a3f6b4d7937064cc0a"
        );
        assert_eq!(
            ILookaheadStore::getLookaheadHashCall::SELECTOR,
            [0xae, 0x41, 0x50, 0x1a]
        );
        assert_eq!(
            ILookaheadStore::isOperatorBlacklistedCall::SELECTOR,
            [0xfd, 0x40, 0xa5, 0xfe]
        );
        assert_eq!(
            ILookaheadStore::preconfWhitelistCall::SELECTOR,
            [0xd9, 0x1f, 0x24, 0xf1]
        );
    }

    #[test]
    fn a_list_counts_only_when_it_hashes_to_the_stored_hash() {
        let epoch = 384 * 10;
        let list = vec![entry(1, epoch + 12), entry(2, epoch + 48)];
        let stored = lookahead_hash(epoch, &list);
        let forged = log(epoch, vec![entry(3, epoch + 12)]);
        let honest = log(epoch, list.clone());
        let verified = verify_posted_list(
            epoch,
            stored,
            epoch,
            &[forged.clone(), honest.clone()],
            MAX_LOGS_PER_EPOCH,
        );
        assert_eq!(
            verified,
            Ok(PostedList::Verified(
                EpochLookahead::new(epoch, &list).unwrap()
            ))
        );
        assert_eq!(
            verify_posted_list(
                epoch,
                stored,
                epoch,
                std::slice::from_ref(&forged),
                MAX_LOGS_PER_EPOCH
            ),
            Err(ListProblem::NoMatchingLog { stored })
        );
        // Removed by a reorg, or for another epoch: never used.
        let mut removed = honest.clone();
        removed.removed = true;
        assert!(verify_posted_list(epoch, stored, epoch, &[removed], MAX_LOGS_PER_EPOCH).is_err());
        let mut other_epoch = honest.clone();
        other_epoch.epoch = U256::from(epoch + 384);
        assert!(
            verify_posted_list(epoch, stored, epoch, &[other_epoch], MAX_LOGS_PER_EPOCH).is_err()
        );
        assert!(verify_posted_list(epoch, stored, epoch, &[], MAX_LOGS_PER_EPOCH).is_err());
    }

    #[test]
    fn no_record_is_pending_before_the_epoch_and_the_fallbacks_from_its_start() {
        let epoch = 384 * 10;
        let none = FixedBytes::ZERO;
        let list = [log(epoch, vec![entry(1, epoch)])];
        assert_eq!(
            verify_posted_list(epoch, none, epoch - 1, &list, MAX_LOGS_PER_EPOCH),
            Ok(PostedList::Pending)
        );
        assert_eq!(
            verify_posted_list(epoch, none, epoch, &list, MAX_LOGS_PER_EPOCH),
            Ok(PostedList::NeverPosted)
        );
        assert_eq!(
            verify_posted_list(epoch, none, epoch + 1, &[], MAX_LOGS_PER_EPOCH),
            Ok(PostedList::NeverPosted)
        );
        // Posted empty: verified, and empty.
        let empty = lookahead_hash(epoch, &[]);
        let posted = verify_posted_list(
            epoch,
            empty,
            epoch - 100,
            &[log(epoch, vec![])],
            MAX_LOGS_PER_EPOCH,
        );
        assert!(matches!(posted, Ok(PostedList::Verified(l)) if l.is_empty()));
    }

    #[test]
    fn an_answer_with_too_many_logs_or_a_malformed_list_is_refused() {
        let epoch = 384 * 10;
        let list = vec![entry(1, epoch + 12)];
        let stored = lookahead_hash(epoch, &list);
        let flood = vec![log(epoch, list.clone()); MAX_LOGS_PER_EPOCH + 1];
        assert_eq!(
            verify_posted_list(epoch, stored, epoch, &flood, MAX_LOGS_PER_EPOCH),
            Err(ListProblem::TooManyLogs(MAX_LOGS_PER_EPOCH + 1))
        );
        let just_enough = vec![log(epoch, list.clone()); MAX_LOGS_PER_EPOCH];
        assert!(verify_posted_list(epoch, stored, epoch, &just_enough, MAX_LOGS_PER_EPOCH).is_ok());
        let backwards = vec![entry(1, epoch + 24), entry(2, epoch + 12)];
        let stored = lookahead_hash(epoch, &backwards);
        assert_eq!(
            verify_posted_list(
                epoch,
                stored,
                epoch,
                &[log(epoch, backwards)],
                MAX_LOGS_PER_EPOCH
            ),
            Err(ListProblem::Malformed(LookaheadListError::NotIncreasing(1)))
        );
    }

    #[test]
    fn a_log_decodes_into_its_epoch_and_list_and_junk_does_not() {
        let epoch = 384 * 10;
        let slots = vec![ILookaheadStore::LookaheadSlot {
            committer: Address::with_last_byte(7),
            timestamp: U256::from(epoch + 12),
            registrationRoot: B256::with_last_byte(8),
            validatorLeafIndex: U256::from(9),
        }];
        let event = ILookaheadStore::LookaheadPosted {
            epochTimestamp: U256::from(epoch),
            lookaheadHash: B256::ZERO,
            lookaheadSlots: slots,
        };
        let mut rpc_log = Log::default();
        rpc_log.inner.data = event.encode_log_data();
        rpc_log.removed = true;
        let decoded = PostedLog::decode(&rpc_log).expect("decodes");
        assert_eq!(decoded.epoch, U256::from(epoch));
        assert!(decoded.removed);
        assert_eq!(
            decoded.entries,
            vec![LookaheadEntry {
                committer: Address::with_last_byte(7),
                timestamp: U256::from(epoch + 12),
                registration_root: B256::with_last_byte(8),
                validator_leaf_index: U256::from(9),
            }]
        );
        let mut junk = Log::default();
        junk.inner.data = LogData::new_unchecked(
            vec![ILookaheadStore::LookaheadPosted::SIGNATURE_HASH],
            Bytes::from_static(&[1, 2, 3]),
        );
        assert_eq!(PostedLog::decode(&junk), None);
    }

    #[test]
    fn the_filter_names_the_store_the_event_and_the_epoch() {
        let store = Address::with_last_byte(5);
        let filter = posted_filter(store, 3_840_000, 10, 20);
        assert!(filter.address.matches(&store));
        assert!(filter.topics[0].matches(&ILookaheadStore::LookaheadPosted::SIGNATURE_HASH));
        assert!(filter.topics[1].matches(&B256::from(U256::from(3_840_000u64))));
        assert_eq!(filter.get_from_block(), Some(10));
        assert_eq!(filter.get_to_block(), Some(20));
    }
}
