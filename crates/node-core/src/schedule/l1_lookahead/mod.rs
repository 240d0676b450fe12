//! The `l1_lookahead` schedule source: Taiko's permissionless schedule, the lists
//! `LookaheadStore` posts on L1 (L1-LOOKAHEAD.md), read without trusting the L1 RPC.
//!
//! Each poll, pinned to the L1 head block:
//! 1. the stored hash of the current epoch `E` and the next `N` (`getLookaheadHash`), and of
//!    the past epochs validation asked about (a catching-up node's old blocks);
//! 2. for an epoch whose hash is new, the `LookaheadPosted` logs of the epoch it was posted in
//!    (`eth_getLogs` over those blocks only, found by timestamp); a list counts only if it hashes
//!    to the stored value ([`verify_posted_list`]). Hash zero with the head inside the epoch or
//!    later: never posted, the whole epoch is the fallback's; before it: pending;
//! 3. the fallback preconfer, `PreconfWhitelist.getOperatorForCurrentEpoch()` (for `N`:
//!    `getOperatorForNextEpoch()`), and whether each listed operator is blacklisted
//!    (`isOperatorBlacklisted`), both live state as `checkProposer` reads them.
//!
//! The windows are then computed locally ([`LookaheadSchedule`], `lookahead_window`). An
//! epoch whose list is missing, unverifiable or still pending stays unknown: its commitments
//! wait as "pending schedule" and nobody is scored for them.
//!
//! **Which block each read uses.** Everything of one poll is read at the head block number the
//! poll starts from, not `safe` or `finalized`: the list for `E` is posted during `E − 1`, so
//! when `E` starts it is not safe yet, and a node that waited for finality would have no
//! schedule for its first epochs. Reorgs are caught instead: each poll reads `E`'s and `N`'s
//! hashes again; a changed hash refetches the list, a vanished one forgets it. A replaced list
//! re-validates what waits (`P2pSdk::schedule_updated`) and the blocks already accepted under
//! the old list are checked against the new one: each that no longer fits is counted
//! ([`METRIC_ACCEPTED_UNDER_OLD_LIST`]) and logged at WARN — reported, neither kept silently
//! nor dropped. Past epochs are read with the fallback and blacklist at the epoch's last L1
//! block (the last word on who could propose in it; an archive node for old epochs).
//!
//! **Bounded.** At most `l1.remembered_epochs` epochs are kept and as many wanted, at most
//! `l1.past_epochs_per_poll` past epochs read per poll, `l1.max_calls_per_poll` calls per
//! poll, `l1.max_log_range_blocks` blocks per log query and `l1.max_logs_per_epoch` logs per
//! answer, [`PAST_EPOCH_BLOCK_STEPS`] block
//! lookups per timestamp search. A slow or lying L1
//! delays the schedule; it cannot grow memory or get a peer penalised.

mod reader;
mod schedule;

pub use reader::LookaheadRead;
pub use schedule::LookaheadSchedule;

use std::sync::Arc;

use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use p2p::{Lookahead, P2pSdk};
use parking_lot::RwLock;
use preconfirmation_types::Address;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::config::{L1Config, LookaheadConfig};
use super::lookahead_l1::ILookaheadStore;
use super::lookahead_window::SECONDS_PER_L1_SLOT;
use super::{ScheduleStatus, Source, SourceKind, PAST_EPOCH_BLOCK_STEPS};
use crate::clock::unix_now;
use crate::error::NodeError;

/// Metric: epochs whose verified list an L1 reorg replaced or removed.
pub const METRIC_LISTS_REPLACED: &str = "preconf_l1_lookahead_lists_replaced_total";
/// Metric: stored blocks that a replaced list no longer allows (signer or window end differ).
pub const METRIC_ACCEPTED_UNDER_OLD_LIST: &str =
    "preconf_l1_lookahead_accepted_under_old_list_total";
/// Metric: epochs whose list could not be verified, label `reason`.
pub const METRIC_LISTS_REFUSED: &str = "preconf_l1_lookahead_lists_refused_total";

/// The `l1_lookahead` source: the verified epochs and the reader that fills them.
#[derive(Debug)]
pub struct L1LookaheadSource {
    config: L1Config,
    schedule: Arc<LookaheadSchedule>,
    provider: RootProvider,
    last_read: RwLock<Option<LookaheadRead>>,
    last_error: RwLock<Option<String>>,
    last_refused: RwLock<Option<String>>,
    whitelist: RwLock<Option<Address>>,
}

impl L1LookaheadSource {
    /// A reader of `config.lookahead_store_address` at `config.rpc_url`, L2 slots of
    /// `slot_secs`. No I/O until [`Source::spawn`].
    pub fn new(config: &L1Config, slot_secs: u64) -> Result<Self, NodeError> {
        let url = config
            .rpc_url
            .parse()
            .map_err(|e| NodeError::config("l1.rpc_url", format!("not a URL: {e}")))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .root()
            .clone();
        Ok(Self {
            config: config.clone(),
            schedule: Arc::new(LookaheadSchedule::new(
                slot_secs,
                config.remembered_epochs,
                config.beacon_genesis_timestamp,
            )),
            provider,
            last_read: RwLock::new(None),
            last_error: RwLock::new(None),
            last_refused: RwLock::new(None),
            whitelist: RwLock::new(None),
        })
    }

    /// The schedule the SDK validates with.
    pub fn schedule(&self) -> &Arc<LookaheadSchedule> {
        &self.schedule
    }

    /// The last successful poll.
    pub fn last_read(&self) -> Option<LookaheadRead> {
        *self.last_read.read()
    }

    /// The list the last poll refused, if it refused one (the epoch stays unknown).
    pub fn last_refused(&self) -> Option<String> {
        self.last_refused.read().clone()
    }

    /// One poll (see the module docs); returns what it read. The schedule is updated as the
    /// poll goes, so what it verified before a failure counts.
    pub async fn poll_once(&self, sdk: Option<&P2pSdk>) -> Result<LookaheadRead, NodeError> {
        let mut reader = reader::Reader::new(
            &self.config,
            &self.provider,
            &self.schedule,
            ILookaheadStore::new(self.config.lookahead_store_address, self.provider.clone()),
            self.last_read(),
            *self.whitelist.read(),
        );
        let polled = reader.poll(sdk).await;
        *self.whitelist.write() = reader.whitelist_address();
        let read = polled?;
        *self.last_read.write() = Some(read);
        *self.last_refused.write() = reader.refused().map(str::to_string);
        Ok(read)
    }

    /// The reader: polls until `shutdown`, backing off while L1 fails.
    async fn run(self: Arc<Self>, sdk: P2pSdk, shutdown: CancellationToken) {
        let mut wait = std::time::Duration::ZERO;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.poll_once(Some(&sdk)).await {
                Ok(read) => {
                    *self.last_error.write() = None;
                    if read.changed {
                        info!(
                            l1_block = read.l1_block,
                            epoch = read.epoch,
                            "L1 lookahead updated"
                        );
                        if sdk.schedule_updated().is_err() {
                            return;
                        }
                    }
                    wait = self.config.poll_interval;
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?wait, "L1 lookahead read failed");
                    *self.last_error.write() = Some(e.to_string());
                    // What the failed poll did verify is in the schedule already.
                    if sdk.schedule_updated().is_err() {
                        return;
                    }
                    wait = self.config.backoff_after(wait);
                }
            }
        }
    }
}

impl Source for L1LookaheadSource {
    fn lookahead(&self) -> Arc<dyn Lookahead> {
        self.schedule.clone()
    }

    fn spawn(self: Arc<Self>, sdk: P2pSdk, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        Some(tokio::spawn(self.run(sdk, shutdown)))
    }

    fn status(&self, now: u64) -> ScheduleStatus {
        let read = self.last_read();
        let current = self.schedule.resolve(now);
        let next = current.and_then(|c| self.schedule.resolve(c.window.end.saturating_add(1)));
        ScheduleStatus {
            source: L1LookaheadKind.name(),
            current_window: self.schedule.clock().and_then(|c| c.epoch_of(now)),
            current_preconfer: current.map(|c| c.signer),
            next_preconfer: next.map(|n| n.signer),
            current_window_end: current.map(|c| c.window.end),
            current_is_fallback: current.map(|c| c.is_fallback),
            l1_head: read.map(|r| r.l1_block),
            l1_head_timestamp: read.map(|r| r.l1_timestamp),
            last_error: self
                .last_error
                .read()
                .clone()
                .or_else(|| self.last_refused()),
        }
    }
}

/// `lookahead.source = "l1_lookahead"`: the `[l1]` table names the L1 and the store.
#[derive(Debug)]
pub(super) struct L1LookaheadKind;

impl SourceKind for L1LookaheadKind {
    fn name(&self) -> &'static str {
        "l1_lookahead"
    }

    fn validate(&self, lookahead: &LookaheadConfig, l1: &L1Config) -> Result<(), NodeError> {
        if l1.lookahead_store_address == Address::ZERO {
            return Err(NodeError::config(
                "l1.lookahead_store_address",
                "lookahead.source = \"l1_lookahead\" needs the LookaheadStore's address",
            ));
        }
        super::l1_whitelist::validate_l1_common(l1)?;
        if !SECONDS_PER_L1_SLOT.is_multiple_of(lookahead.slot_duration_secs) {
            return Err(NodeError::config(
                "lookahead.slot_duration_secs",
                "must divide the 12 s L1 slot, so that L2 slots never straddle a window's end",
            ));
        }
        if l1.max_logs_per_epoch == 0 {
            return Err(NodeError::config(
                "l1.max_logs_per_epoch",
                "must be positive: an epoch's post is one log",
            ));
        }
        if l1.max_calls_per_poll < 8 || l1.max_log_range_blocks < 32 {
            return Err(NodeError::config(
                "l1",
                "max_calls_per_poll must be at least 8 (one epoch's reads) and \
                 max_log_range_blocks at least 32 (one epoch of L1 blocks)",
            ));
        }
        Ok(())
    }

    fn summary(&self, _lookahead: &LookaheadConfig, l1: &L1Config) -> String {
        let genesis = l1
            .beacon_genesis_timestamp
            .map_or("by the L1's chain id".to_string(), |g| g.to_string());
        format!(
            "l1_lookahead, LookaheadStore {} on {}, beacon genesis {genesis}",
            l1.lookahead_store_address, l1.rpc_url
        )
    }

    fn build(
        &self,
        lookahead: &LookaheadConfig,
        l1: &L1Config,
    ) -> Result<Arc<dyn Source>, NodeError> {
        Ok(Arc::new(L1LookaheadSource::new(
            l1,
            lookahead.slot_duration_secs,
        )?))
    }
}

/// Unix seconds now, for the head-from-the-future check.
fn now() -> u64 {
    unix_now()
}
