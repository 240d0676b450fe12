//! One poll of the L1: the reads of the module docs, each counted against the poll's call
//! budget, and the check of stored blocks when a reorg replaced a list.

use std::collections::{BTreeSet, HashMap};
use std::future::IntoFuture;

use alloy::eips::BlockId;
use alloy::primitives::{FixedBytes, B256, U256};
use alloy::providers::{Provider, RootProvider};
use p2p::P2pSdk;
use preconfirmation_types::{preconfirmation_hash, recover_signer, Address, SignedCommitment};
use tracing::{debug, warn};

use super::schedule::{LookaheadSchedule, EPOCH_REACH_SECS};
use super::{
    now, METRIC_ACCEPTED_UNDER_OLD_LIST, METRIC_LISTS_REFUSED, METRIC_LISTS_REPLACED,
    PAST_EPOCH_BLOCK_STEPS,
};
use crate::error::NodeError;
use crate::schedule::config::L1Config;
use crate::schedule::l1_whitelist::{timed_call, IPreconfWhitelist};
use crate::schedule::lookahead_l1::{
    posted_filter, verify_posted_list, ILookaheadStore, PostedList, PostedLog,
};
use crate::schedule::lookahead_window::{
    beacon_genesis, EpochClock, EpochKnowledge, EpochLookahead, Learned, SECONDS_PER_EPOCH,
    SECONDS_PER_L1_SLOT,
};
use crate::schedule::METRIC_L1_SCHEDULE_HEAD;

/// What one poll read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookaheadRead {
    /// The L1 head block the poll read at.
    pub l1_block: u64,
    /// Its timestamp.
    pub l1_timestamp: u64,
    /// Its hash: a poll that finds the same head block (number and hash) reads nothing again.
    pub l1_block_hash: B256,
    /// The epoch containing it (its first second).
    pub epoch: u64,
    /// Whether the schedule changed.
    pub changed: bool,
}

impl Reader<'_> {
    /// The last list the poll refused (a log that does not match the stored hash, …).
    pub(super) fn refused(&self) -> Option<&str> {
        self.refused.as_deref()
    }

    /// The whitelist address, if the poll knows it.
    pub(super) fn whitelist_address(&self) -> Option<Address> {
        self.whitelist
    }
}

/// The block a group of reads is pinned to.
#[derive(Debug, Clone, Copy)]
struct At {
    number: u64,
    timestamp: u64,
}

/// Which whitelist call names an epoch's fallback, as seen from the block read at.
#[derive(Debug, Clone, Copy)]
enum FallbackOf {
    /// The epoch of the block.
    CurrentEpoch,
    /// The epoch after it.
    NextEpoch,
}

/// One poll's state: the calls it may still make and the block timestamps it learned.
pub(super) struct Reader<'a> {
    config: &'a L1Config,
    provider: &'a RootProvider,
    schedule: &'a LookaheadSchedule,
    store: ILookaheadStore::ILookaheadStoreInstance<RootProvider>,
    calls_left: usize,
    timestamps: HashMap<u64, u64>,
    /// The last list this poll refused, for `/status`.
    refused: Option<String>,
    /// The previous poll's head: unchanged, the current and next epochs are not read again.
    previous: Option<LookaheadRead>,
    /// The whitelist address, once known (configured, or read from the store once).
    whitelist: Option<Address>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(
        config: &'a L1Config,
        provider: &'a RootProvider,
        schedule: &'a LookaheadSchedule,
        store: ILookaheadStore::ILookaheadStoreInstance<RootProvider>,
        previous: Option<LookaheadRead>,
        whitelist: Option<Address>,
    ) -> Self {
        Self {
            config,
            provider,
            schedule,
            store,
            calls_left: config.max_calls_per_poll,
            timestamps: HashMap::new(),
            refused: None,
            previous,
            whitelist: whitelist.or(Some(config.whitelist_address).filter(|a| *a != Address::ZERO)),
        }
    }

    /// One call, bounded in time and counted against the poll's budget.
    async fn call<T, E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        call: impl IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, NodeError> {
        if self.calls_left == 0 {
            return Err(NodeError::l1(
                name,
                "this poll's calls (l1.max_calls_per_poll) are spent; the rest waits for the next",
            ));
        }
        self.calls_left -= 1;
        timed_call(self.config.request_timeout, name, call).await
    }

    /// Block `number`'s timestamp and hash (the timestamp remembered for this poll).
    async fn block(&mut self, number: u64) -> Result<(u64, B256), NodeError> {
        let provider = self.provider.clone();
        let block = self
            .call(
                "eth_getBlockByNumber",
                provider.get_block_by_number(number.into()),
            )
            .await?
            .ok_or_else(|| {
                NodeError::l1("eth_getBlockByNumber", format!("block {number} not found"))
            })?;
        let ts = block.header.timestamp;
        if self.timestamps.len() < 4 * PAST_EPOCH_BLOCK_STEPS {
            self.timestamps.insert(number, ts);
        }
        Ok((ts, block.header.hash))
    }

    async fn block_timestamp(&mut self, number: u64) -> Result<u64, NodeError> {
        match self.timestamps.get(&number) {
            Some(ts) => Ok(*ts),
            None => Ok(self.block(number).await?.0),
        }
    }

    /// The poll: the head, the current and next epochs, then the past epochs validation wants.
    pub(super) async fn poll(&mut self, sdk: Option<&P2pSdk>) -> Result<LookaheadRead, NodeError> {
        let clock = match self.schedule.clock() {
            Some(clock) => clock,
            None => {
                let provider = self.provider.clone();
                let id = self.call("eth_chainId", provider.get_chain_id()).await?;
                self.schedule.set_genesis(beacon_genesis(id));
                self.schedule
                    .clock()
                    .ok_or_else(|| NodeError::l1("eth_chainId", "no epoch clock"))?
            }
        };
        let provider = self.provider.clone();
        let number = self
            .call("eth_blockNumber", provider.get_block_number())
            .await?;
        let (timestamp, hash) = self.block(number).await?;
        let local = now();
        if timestamp > local.saturating_add(SECONDS_PER_L1_SLOT) {
            return Err(NodeError::l1(
                "eth_getBlockByNumber",
                format!("L1 head {number} is from the future (timestamp {timestamp}, now {local})"),
            ));
        }
        let epoch = clock.epoch_of(timestamp).ok_or_else(|| {
            NodeError::l1(
                "eth_getBlockByNumber",
                "the L1 head is before the beacon genesis",
            )
        })?;
        metrics::gauge!(METRIC_L1_SCHEDULE_HEAD).set(number as f64);
        let head = At { number, timestamp };
        let whitelist = self.whitelist(head).await?;
        let mut changed = false;
        let same_head = self
            .previous
            .is_some_and(|p| p.l1_block == number && p.l1_block_hash == hash);
        if !same_head {
            changed |= self
                .refresh(epoch, head, FallbackOf::CurrentEpoch, whitelist, sdk)
                .await?;
            if let Some(next) = clock.next(epoch) {
                changed |= self
                    .refresh(next, head, FallbackOf::NextEpoch, whitelist, sdk)
                    .await?;
            }
        }
        for past in self.schedule.take_wanted(self.config.past_epochs_per_poll) {
            if past >= epoch {
                continue; // the head's reads cover it (or it is not decided yet)
            }
            match self.refresh_past(clock, past, head, whitelist, sdk).await {
                Ok(c) => changed |= c,
                Err(e) => {
                    self.schedule.want(past);
                    warn!(epoch = past, error = %e, "reading a past epoch's lookahead failed");
                    if self.calls_left == 0 {
                        break;
                    }
                }
            }
        }
        Ok(LookaheadRead {
            l1_block: number,
            l1_timestamp: timestamp,
            l1_block_hash: hash,
            epoch,
            changed,
        })
    }

    /// The whitelist the fallback comes from: the configured one, else the store's (an
    /// immutable of the store: read once).
    async fn whitelist(&mut self, head: At) -> Result<Address, NodeError> {
        if let Some(address) = self.whitelist {
            return Ok(address);
        }
        let store = self.store.clone();
        let address = self
            .call(
                "preconfWhitelist",
                store
                    .preconfWhitelist()
                    .block(BlockId::number(head.number))
                    .call(),
            )
            .await?;
        self.whitelist = Some(address);
        Ok(address)
    }

    /// Reads `epoch` at block `at` and teaches the schedule; returns whether it changed.
    async fn refresh(
        &mut self,
        epoch: u64,
        at: At,
        fallback_of: FallbackOf,
        whitelist: Address,
        sdk: Option<&P2pSdk>,
    ) -> Result<bool, NodeError> {
        let block = BlockId::number(at.number);
        let store = self.store.clone();
        let stored = self
            .call(
                "getLookaheadHash",
                store
                    .getLookaheadHash(U256::from(epoch))
                    .block(block)
                    .call(),
            )
            .await?;
        let known = self.schedule.epoch(epoch);
        let list = match &known {
            Some(k) if k.hash == stored => k.list.clone(),
            _ => {
                let logs = if stored == FixedBytes::ZERO {
                    Vec::new()
                } else {
                    self.posted_logs(epoch, at).await?
                };
                match verify_posted_list(
                    epoch,
                    stored,
                    at.timestamp,
                    &logs,
                    self.config.max_logs_per_epoch,
                ) {
                    Ok(PostedList::Verified(list)) => list,
                    Ok(PostedList::NeverPosted) => EpochLookahead::new(epoch, &[])
                        .map_err(|e| NodeError::l1("getLookaheadHash", e))?,
                    Ok(PostedList::Pending) => {
                        return Ok(self.unlearn(epoch, known.is_some(), sdk));
                    }
                    Err(problem) => {
                        let reason = match &problem {
                            crate::schedule::lookahead_l1::ListProblem::TooManyLogs(_) => {
                                "too_many_logs"
                            }
                            crate::schedule::lookahead_l1::ListProblem::NoMatchingLog {
                                ..
                            } => "no_matching_log",
                            crate::schedule::lookahead_l1::ListProblem::Malformed(_) => "malformed",
                        };
                        metrics::counter!(METRIC_LISTS_REFUSED, "reason" => reason).increment(1);
                        warn!(epoch, error = %problem, "an epoch's lookahead does not verify; it stays unknown");
                        self.refused = Some(format!("epoch {epoch}: {problem}"));
                        return Ok(self.unlearn(epoch, known.is_some(), sdk));
                    }
                }
            }
        };
        let whitelist = IPreconfWhitelist::new(whitelist, self.provider.clone());
        let fallback = match fallback_of {
            FallbackOf::CurrentEpoch => {
                self.call(
                    "getOperatorForCurrentEpoch",
                    whitelist.getOperatorForCurrentEpoch().block(block).call(),
                )
                .await?
            }
            FallbackOf::NextEpoch => {
                self.call(
                    "getOperatorForNextEpoch",
                    whitelist.getOperatorForNextEpoch().block(block).call(),
                )
                .await?
            }
        };
        let roots: BTreeSet<_> = list.entries().map(|e| e.registration_root).collect();
        let mut blacklisted = BTreeSet::new();
        for root in roots {
            let listed = self
                .call(
                    "isOperatorBlacklisted",
                    store.isOperatorBlacklisted(root).block(block).call(),
                )
                .await?;
            if listed {
                blacklisted.insert(root);
            }
        }
        let knowledge = EpochKnowledge {
            list,
            hash: stored,
            fallback: Some(fallback).filter(|f| *f != Address::ZERO),
            blacklisted,
        };
        Ok(match self.schedule.learn(knowledge) {
            Learned::Unchanged | Learned::TooOld => false,
            Learned::Updated => true,
            Learned::ListReplaced => {
                metrics::counter!(METRIC_LISTS_REPLACED).increment(1);
                warn!(epoch, "an L1 reorg replaced an epoch's lookahead");
                if let Some(sdk) = sdk {
                    self.report_old_acceptances(epoch, sdk);
                }
                true
            }
        })
    }

    /// Forgets `epoch` when it was known (its post vanished or no longer verifies) and
    /// reports the blocks accepted under it; returns whether the schedule changed.
    fn unlearn(&self, epoch: u64, was_known: bool, sdk: Option<&P2pSdk>) -> bool {
        if !was_known || !self.schedule.forget(epoch) {
            return false;
        }
        metrics::counter!(METRIC_LISTS_REPLACED).increment(1);
        warn!(
            epoch,
            "an epoch's verified lookahead is gone from L1 (reorg); it is unknown again"
        );
        if let Some(sdk) = sdk {
            self.report_old_acceptances(epoch, sdk);
        }
        true
    }

    /// The `LookaheadPosted` logs of `epoch`: they lie in the blocks of the epoch before it
    /// (§3), found by timestamp below `at`.
    async fn posted_logs(&mut self, epoch: u64, at: At) -> Result<Vec<PostedLog>, NodeError> {
        let posting_start = epoch.saturating_sub(SECONDS_PER_EPOCH);
        let from = self.first_block_at_or_after(posting_start, at).await?;
        let to = self
            .first_block_at_or_after(epoch, at)
            .await?
            .saturating_sub(1)
            .min(at.number)
            .min(from.saturating_add(self.config.max_log_range_blocks.saturating_sub(1)));
        if to < from {
            return Ok(Vec::new());
        }
        let filter = posted_filter(self.config.lookahead_store_address, epoch, from, to);
        let provider = self.provider.clone();
        let logs = self.call("eth_getLogs", provider.get_logs(&filter)).await?;
        Ok(logs.iter().filter_map(PostedLog::decode).collect())
    }

    /// The lowest block number at or below `at` whose timestamp is at least `t` (`at + 1`
    /// when none is): an interpolation search, every other step a bisection, at most
    /// [`PAST_EPOCH_BLOCK_STEPS`] lookups.
    async fn first_block_at_or_after(&mut self, t: u64, at: At) -> Result<u64, NodeError> {
        if at.timestamp < t {
            return Ok(at.number.saturating_add(1));
        }
        // On Ethereum a block is at least one 12 s slot after its parent, so this many blocks
        // back is before `t`; on faster chains it may not be, and the search widens to 0.
        let back = (at.timestamp - t) / SECONDS_PER_L1_SLOT + 1;
        let (mut hi, mut hi_ts) = (at.number, at.timestamp);
        let mut lo = at.number.saturating_sub(back);
        let mut lo_ts = self.block_timestamp(lo).await?;
        if lo_ts >= t {
            if lo == 0 {
                return Ok(0);
            }
            (hi, hi_ts) = (lo, lo_ts);
            lo = 0;
            lo_ts = self.block_timestamp(0).await?;
            if lo_ts >= t {
                return Ok(0);
            }
        }
        for step in 0..PAST_EPOCH_BLOCK_STEPS {
            if hi - lo <= 1 {
                return Ok(hi);
            }
            let span = hi - lo;
            let guess = if step % 2 == 0 && hi_ts > lo_ts {
                let offset =
                    (u128::from(span) * u128::from(t - lo_ts) / u128::from(hi_ts - lo_ts)) as u64;
                lo + offset.clamp(1, span - 1)
            } else {
                lo + span / 2
            };
            let ts = self.block_timestamp(guess).await?;
            if ts >= t {
                (hi, hi_ts) = (guess, ts);
            } else {
                (lo, lo_ts) = (guess, ts);
            }
        }
        if hi - lo <= 1 {
            return Ok(hi);
        }
        Err(NodeError::l1(
            "eth_getBlockByNumber",
            format!("no L1 block boundary at time {t} within {PAST_EPOCH_BLOCK_STEPS} lookups"),
        ))
    }

    /// Reads past `epoch` (wanted by validation) at its last L1 block.
    async fn refresh_past(
        &mut self,
        clock: EpochClock,
        epoch: u64,
        head: At,
        whitelist: Address,
        sdk: Option<&P2pSdk>,
    ) -> Result<bool, NodeError> {
        let end = clock
            .next(epoch)
            .ok_or_else(|| NodeError::l1("eth_getBlockByNumber", "epoch out of range"))?;
        let after = self.first_block_at_or_after(end, head).await?;
        let last = after.saturating_sub(1);
        let at = At {
            number: last,
            timestamp: self.block_timestamp(last).await?,
        };
        if at.timestamp < epoch {
            debug!(epoch, "no L1 block inside a past epoch");
        }
        self.refresh(epoch, at, FallbackOf::CurrentEpoch, whitelist, sdk)
            .await
    }

    /// After `epoch`'s list changed: the stored blocks accepted under the old list that the
    /// new one does not allow are counted ([`METRIC_ACCEPTED_UNDER_OLD_LIST`]) and logged.
    fn report_old_acceptances(&self, epoch: u64, sdk: &P2pSdk) {
        let Ok(head) = u64::try_from(sdk.head().block_number) else {
            return;
        };
        let misfits = misfits(
            self.schedule,
            epoch,
            head,
            &sdk.config().chain.domain,
            self.config.reorg_recheck_blocks,
            |number| sdk.commitment_by_number(number).ok().flatten(),
        );
        for (block_number, hash, timestamp) in misfits {
            metrics::counter!(METRIC_ACCEPTED_UNDER_OLD_LIST).increment(1);
            warn!(
                block_number,
                %hash,
                timestamp,
                epoch,
                "a block accepted under an epoch's old lookahead does not fit the new one"
            );
        }
    }
}

/// The stored blocks, from `head` down, in the times `epoch`'s list decides (the epoch and the
/// tail before it), whose signer or window end the schedule as it is now does not allow
/// (or cannot judge any more): `(block number, preconfirmation hash, timestamp)`. At most
/// `max_blocks` are read (`lookup`), newest first; the walk ends below those times.
pub(super) fn misfits(
    schedule: &LookaheadSchedule,
    epoch: u64,
    head: u64,
    domain: &B256,
    max_blocks: u64,
    lookup: impl Fn(u64) -> Option<SignedCommitment>,
) -> Vec<(u64, B256, u64)> {
    let low = epoch.saturating_sub(EPOCH_REACH_SECS);
    let high = epoch.saturating_add(SECONDS_PER_EPOCH);
    let mut found = Vec::new();
    let mut number = head;
    for _ in 0..max_blocks {
        let Some(commitment) = lookup(number) else {
            break;
        };
        let preconf = commitment.preconf();
        let Ok(timestamp) = u64::try_from(preconf.timestamp) else {
            break;
        };
        if timestamp <= low {
            break;
        }
        if timestamp < high {
            let fits = match (
                recover_signer(domain, &commitment),
                schedule.resolve(timestamp),
            ) {
                (Ok(signer), Some(now)) => {
                    now.signer == signer
                        && preconf.submission_window_end == U256::from(now.window.end)
                }
                _ => false,
            };
            if !fits {
                found.push((number, preconfirmation_hash(preconf), timestamp));
            }
        }
        let Some(previous) = number.checked_sub(1) else {
            break;
        };
        number = previous;
    }
    found
}

#[cfg(test)]
mod tests;
