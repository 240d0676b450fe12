//! The `l1_whitelist` schedule source: Taiko's `PreconfWhitelist` contract on L1, read over
//! JSON-RPC with alloy.
//!
//! One window per L1 epoch; the operator the contract names for an epoch signs every L2 slot
//! in it with its *sequencer* address. The reader polls the L1 head; on each poll it reads,
//! pinned to that head block, `getOperatorForCurrentEpoch()`, `getOperatorForNextEpoch()` and
//! each operator's `operators(proposer).sequencerAddress`, records both epochs in a
//! [`LearnedLookahead`] and calls [`P2pSdk::schedule_updated`] when that changed anything, so
//! commitments that waited as "pending schedule" are validated. An epoch it never read stays
//! unknown: its commitments wait (bounded by the SDK's pending buffer) and are never accepted
//! on trust. A failed or slow read (each call is bounded by `l1.request_timeout`) is retried
//! with a doubling wait up to `l1.max_backoff`; gossip never waits for L1.
//!
//! The interface and its meaning come from the public taiko-mono sources,
//! `packages/protocol/contracts/layer1/preconf/impl/PreconfWhitelist.sol` and
//! `iface/IPreconfWhitelist.sol`: an operator is a proposer address (on-chain identity) plus a
//! sequencer address ("used off-chain to identify the address that is emitting
//! preconfirmations"); `getOperatorFor{Current,Next}Epoch` return the proposer for the epoch
//! containing the calling block's timestamp and the one after (epochs of
//! `LibPreconfConstants.SECONDS_IN_EPOCH` = 32 × 12 s from the beacon genesis); the choice is
//! stable within an epoch (randomness from a beacon root two epochs back), but an operator
//! removed by the owner is removed at once, so the next epoch's operator is read again each
//! poll and replaced if it changed.
//!
//! The permissionless schedule (`LookaheadStore`, variable windows) is the `l1_lookahead`
//! source beside this one; it shares this file's bounded call and its whitelist interface.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::eips::BlockId;
use alloy::providers::{Provider, ProviderBuilder, RootProvider};
use alloy::sol;
use p2p::{LearnedLookahead, Lookahead, P2pSdk};
use parking_lot::RwLock;
use preconfirmation_types::Address;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::config::{L1Config, LookaheadConfig};
use super::{ScheduleStatus, Source, SourceKind};
use crate::clock::unix_now;
use crate::error::NodeError;

sol! {
    /// The view functions of Taiko's `PreconfWhitelist` the node reads (see the module docs);
    /// `l1_lookahead` reads its fallback preconfer from them too.
    #[sol(rpc)]
    interface IPreconfWhitelist {
        function getOperatorForCurrentEpoch() external view returns (address);
        function getOperatorForNextEpoch() external view returns (address);
        function operators(address proposer) external view returns (
            uint32 activeSince,
            uint32 inactiveSince,
            uint8 index,
            address sequencerAddress
        );
    }
}

/// One L1 call bounded by `timeout`, its latency recorded and its failure counted
/// ([`METRIC_L1_CALL_SECONDS`], [`METRIC_L1_CALL_ERRORS`]).
pub(super) async fn timed_call<T, E: std::fmt::Display>(
    timeout: Duration,
    name: &'static str,
    call: impl IntoFuture<Output = Result<T, E>>,
) -> Result<T, NodeError> {
    let started = Instant::now();
    let outcome = tokio::time::timeout(timeout, call.into_future()).await;
    metrics::histogram!(METRIC_L1_CALL_SECONDS, "call" => name)
        .record(started.elapsed().as_secs_f64());
    let (kind, reason) = match outcome {
        Ok(Ok(value)) => return Ok(value),
        Ok(Err(e)) => ("rpc", e.to_string()),
        Err(_) => ("timeout", format!("no answer within {timeout:?}")),
    };
    metrics::counter!(METRIC_L1_CALL_ERRORS, "call" => name, "error" => kind).increment(1);
    Err(NodeError::L1 { call: name, reason })
}

/// Refuses `[l1]` settings every L1 source needs and that parse but cannot work.
pub(super) fn validate_l1_common(l1: &L1Config) -> Result<(), NodeError> {
    if !(l1.rpc_url.starts_with("http://") || l1.rpc_url.starts_with("https://")) {
        return Err(NodeError::config(
            "l1.rpc_url",
            "must be an http:// or https:// URL",
        ));
    }
    if l1.poll_interval.is_zero() || l1.request_timeout.is_zero() || l1.remembered_epochs < 2 {
        return Err(NodeError::config(
            "l1",
            "poll_interval and request_timeout must be positive, \
             remembered_epochs at least 2",
        ));
    }
    Ok(())
}

/// Metric: L1 JSON-RPC call latency, label `call`.
pub const METRIC_L1_CALL_SECONDS: &str = "preconf_l1_call_seconds";
/// Metric: failed L1 JSON-RPC calls, labels `call` and `error` (`timeout` or `rpc`).
pub const METRIC_L1_CALL_ERRORS: &str = "preconf_l1_call_errors_total";
/// Metric: the L1 block number the schedule was last read at.
pub const METRIC_L1_SCHEDULE_HEAD: &str = "preconf_l1_schedule_head";

/// One successful read of the whitelist, pinned to one L1 block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhitelistRead {
    /// The L1 block read at.
    pub l1_block: u64,
    /// Its timestamp.
    pub l1_timestamp: u64,
    /// The epoch containing it.
    pub epoch: u64,
    /// The current epoch's sequencer, `None` when the contract names no operator.
    pub current: Option<Address>,
    /// The next epoch's sequencer, `None` when the contract names no operator.
    pub next: Option<Address>,
}

/// The `l1_whitelist` source: the learned windows and the reader that fills them.
#[derive(Debug)]
pub struct L1Schedule {
    config: L1Config,
    lookahead: Arc<LearnedLookahead>,
    contract: IPreconfWhitelist::IPreconfWhitelistInstance<RootProvider>,
    last_read: RwLock<Option<WhitelistRead>>,
    last_error: RwLock<Option<String>>,
    reads: AtomicU64,
}

impl L1Schedule {
    /// A reader of `config.whitelist_address` at `config.rpc_url`; L2 slots of
    /// `slot_duration_secs`, one window per L1 epoch.
    pub fn new(config: &L1Config, slot_duration_secs: u64) -> Result<Self, NodeError> {
        let bad = |key: &str, reason: String| NodeError::Config {
            key: key.into(),
            reason,
        };
        let url = config
            .rpc_url
            .parse()
            .map_err(|e| bad("l1.rpc_url", format!("not a URL: {e}")))?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .root()
            .clone();
        let epoch = config.epoch_secs();
        let slots_per_window = epoch.checked_div(slot_duration_secs).unwrap_or(0);
        let lookahead = LearnedLookahead::new(
            slots_per_window,
            config.whitelist_genesis(),
            slot_duration_secs,
            config.remembered_epochs,
        )
        .ok_or_else(|| {
            bad(
                "l1.slots_per_epoch",
                "an L1 epoch must hold a positive number of L2 slots".into(),
            )
        })?;
        Ok(Self {
            config: config.clone(),
            lookahead: Arc::new(lookahead),
            contract: IPreconfWhitelist::new(config.whitelist_address, provider),
            last_read: RwLock::new(None),
            last_error: RwLock::new(None),
            reads: AtomicU64::new(0),
        })
    }

    /// The learned windows the SDK validates with.
    pub fn lookahead(&self) -> &Arc<LearnedLookahead> {
        &self.lookahead
    }

    /// Successful reads so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// The L1 epoch containing unix second `timestamp`.
    pub fn epoch_at(&self, timestamp: u64) -> Option<u64> {
        // One window per epoch (`new` sizes the windows so).
        self.lookahead.window_at(timestamp)
    }

    /// One bounded L1 call, timed and counted.
    async fn call<T, E: std::fmt::Display>(
        &self,
        name: &'static str,
        call: impl IntoFuture<Output = Result<T, E>>,
    ) -> Result<T, NodeError> {
        timed_call(self.config.request_timeout, name, call).await
    }

    /// The sequencer of `proposer` at `at`, `None` for the zero address.
    async fn sequencer(
        &self,
        proposer: Address,
        at: BlockId,
    ) -> Result<Option<Address>, NodeError> {
        if proposer == Address::ZERO {
            return Ok(None);
        }
        let info = self
            .call(
                "operators",
                self.contract.operators(proposer).block(at).call(),
            )
            .await?;
        Ok(Some(info.sequencerAddress).filter(|a| *a != Address::ZERO))
    }

    /// The timestamp of L1 block `number`.
    async fn block_timestamp(&self, number: u64) -> Result<u64, NodeError> {
        let provider = self.contract.provider();
        let block = self
            .call(
                "eth_getBlockByNumber",
                provider.get_block_by_number(number.into()),
            )
            .await?
            .ok_or_else(|| {
                NodeError::l1("eth_getBlockByNumber", format!("block {number} not found"))
            })?;
        Ok(block.header.timestamp)
    }

    /// The sequencer of the operator the contract names for the epoch of block `at`.
    async fn current_sequencer(&self, at: BlockId) -> Result<Option<Address>, NodeError> {
        let proposer = self
            .call(
                "getOperatorForCurrentEpoch",
                self.contract.getOperatorForCurrentEpoch().block(at).call(),
            )
            .await?;
        self.sequencer(proposer, at).await
    }

    /// Reads both epochs' operators at the L1 head. Refuses a head whose timestamp is ahead of
    /// the local clock by more than one L1 slot (a lying or misconfigured L1 node).
    pub async fn read_once(&self) -> Result<WhitelistRead, NodeError> {
        let number = self
            .call(
                "eth_blockNumber",
                self.contract.provider().get_block_number(),
            )
            .await?;
        let l1_timestamp = self.block_timestamp(number).await?;
        let now = unix_now();
        if l1_timestamp > now.saturating_add(self.config.seconds_per_slot) {
            return Err(NodeError::l1(
                "eth_getBlockByNumber",
                format!(
                    "L1 head {number} is from the future (timestamp {l1_timestamp}, now {now})"
                ),
            ));
        }
        let epoch = self.epoch_at(l1_timestamp).ok_or_else(|| {
            NodeError::l1(
                "eth_getBlockByNumber",
                format!("L1 head {number} is before the beacon genesis"),
            )
        })?;
        let at = BlockId::number(number);
        let current = self.current_sequencer(at).await?;
        let next = self
            .call(
                "getOperatorForNextEpoch",
                self.contract.getOperatorForNextEpoch().block(at).call(),
            )
            .await?;
        Ok(WhitelistRead {
            l1_block: number,
            l1_timestamp,
            epoch,
            current,
            next: self.sequencer(next, at).await?,
        })
    }

    /// The sequencer of past `epoch`, read at the last L1 block inside it (found from `head`
    /// by timestamp, at most [`PAST_EPOCH_BLOCK_STEPS`] block lookups): what a catching-up
    /// node needs to validate old blocks. The last block holds the epoch's final word (an
    /// operator removed during the epoch is gone). Needs an L1 node that still holds that
    /// block's state (an archive node for epochs older than its state window).
    pub async fn read_past_epoch(
        &self,
        epoch: u64,
        head: &WhitelistRead,
    ) -> Result<Option<Address>, NodeError> {
        let epoch_secs = self.config.epoch_secs();
        let slot_secs = self.config.seconds_per_slot.max(1);
        let start = epoch
            .checked_mul(epoch_secs)
            .and_then(|s| s.checked_add(self.config.whitelist_genesis()))
            .ok_or_else(|| NodeError::l1("eth_getBlockByNumber", "epoch out of range"))?;
        let end = start.saturating_add(epoch_secs);
        let last_second = end - 1;
        let mut number = head
            .l1_block
            .saturating_sub(head.l1_timestamp.saturating_sub(last_second) / slot_secs);
        for _ in 0..PAST_EPOCH_BLOCK_STEPS {
            let ts = self.block_timestamp(number).await?;
            if (start..end).contains(&ts) {
                return self.current_sequencer(BlockId::number(number)).await;
            }
            let step = (ts.abs_diff(last_second) / slot_secs).max(1);
            number = if ts < start {
                number.saturating_add(step)
            } else {
                number.saturating_sub(step)
            };
        }
        Err(NodeError::l1(
            "eth_getBlockByNumber",
            format!("no L1 block found inside epoch {epoch}"),
        ))
    }

    /// Reads the past epochs validation asked for (at most `l1.past_epochs_per_poll`);
    /// returns whether the schedule changed. A failed epoch is wanted again on its next
    /// lookup.
    async fn read_wanted(&self, head: &WhitelistRead) -> bool {
        let mut changed = false;
        for epoch in self.lookahead.take_wanted(self.config.past_epochs_per_poll) {
            if epoch > head.epoch.saturating_add(1) {
                continue; // not decided on L1 yet: the head read covers it when it is
            }
            match self.read_past_epoch(epoch, head).await {
                Ok(Some(signer)) => changed |= self.lookahead.learn(epoch, signer),
                Ok(None) => debug!(epoch, "no operator for a past epoch"),
                Err(e) => warn!(epoch, error = %e, "reading a past epoch from L1 failed"),
            }
        }
        changed
    }

    /// Records `read` unless an L1 block at least as new was applied already; returns whether
    /// the schedule changed.
    pub fn apply(&self, read: WhitelistRead) -> bool {
        {
            let mut last = self.last_read.write();
            if last.is_some_and(|l| l.l1_timestamp > read.l1_timestamp) {
                return false;
            }
            *last = Some(read);
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        metrics::gauge!(METRIC_L1_SCHEDULE_HEAD).set(read.l1_block as f64);
        let mut changed = false;
        for (epoch, signer) in [
            (Some(read.epoch), read.current),
            (read.epoch.checked_add(1), read.next),
        ] {
            let Some(epoch) = epoch else { continue };
            changed |= match signer {
                Some(signer) => self.lookahead.learn(epoch, signer),
                None => self.lookahead.forget(epoch),
            };
        }
        changed
    }

    /// The reader: polls until `shutdown`, backing off while L1 fails.
    async fn run(self: Arc<Self>, sdk: P2pSdk, shutdown: CancellationToken) {
        let mut wait = Duration::ZERO;
        let mut first = true;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            match self.read_once().await {
                Ok(read) => {
                    *self.last_error.write() = None;
                    if std::mem::take(&mut first) {
                        // A node (re)starting catches up on recent blocks first: read the
                        // epochs before this one without waiting for validation to ask.
                        let depth = self.config.past_epochs_per_poll as u64;
                        for epoch in read.epoch.saturating_sub(depth)..read.epoch {
                            self.lookahead.want(epoch);
                        }
                    }
                    let past = self.read_wanted(&read).await;
                    if self.apply(read) | past {
                        info!(
                            l1_block = read.l1_block,
                            epoch = read.epoch,
                            current = ?read.current,
                            next = ?read.next,
                            "L1 schedule updated"
                        );
                        if let Err(e) = sdk.schedule_updated() {
                            debug!(error = %e, "SDK stopped; L1 reader ends");
                            return;
                        }
                    }
                    wait = self.config.poll_interval;
                }
                Err(e) => {
                    warn!(error = %e, retry_in = ?wait, "L1 schedule read failed");
                    *self.last_error.write() = Some(e.to_string());
                    wait = self.config.backoff_after(wait);
                }
            }
        }
    }
}

impl Source for L1Schedule {
    fn lookahead(&self) -> Arc<dyn Lookahead> {
        self.lookahead.clone()
    }

    fn spawn(self: Arc<Self>, sdk: P2pSdk, shutdown: CancellationToken) -> Option<JoinHandle<()>> {
        Some(tokio::spawn(self.run(sdk, shutdown)))
    }

    fn status(&self, now: u64) -> ScheduleStatus {
        let read = *self.last_read.read();
        let current_window = self.epoch_at(now);
        let signer = |w: Option<u64>| w.and_then(|w| self.lookahead.signer_of_window(w));
        ScheduleStatus {
            source: L1Whitelist.name(),
            current_window,
            current_preconfer: signer(current_window),
            next_preconfer: signer(current_window.and_then(|w| w.checked_add(1))),
            current_window_end: current_window
                .and_then(|w| w.checked_add(1))
                .and_then(|w| w.checked_mul(self.config.epoch_secs()))
                .and_then(|s| s.checked_add(self.config.whitelist_genesis())),
            current_is_fallback: None,
            l1_head: read.map(|r| r.l1_block),
            l1_head_timestamp: read.map(|r| r.l1_timestamp),
            last_error: self.last_error.read().clone(),
        }
    }
}

/// `lookahead.source = "l1_whitelist"`: the `[l1]` table names the L1 and the contract.
#[derive(Debug)]
pub(super) struct L1Whitelist;

impl SourceKind for L1Whitelist {
    fn name(&self) -> &'static str {
        "l1_whitelist"
    }

    fn validate(&self, lookahead: &LookaheadConfig, l1: &L1Config) -> Result<(), NodeError> {
        if l1.whitelist_address == Address::ZERO {
            return Err(NodeError::config(
                "l1.whitelist_address",
                "lookahead.source = \"l1_whitelist\" needs the contract's address",
            ));
        }
        validate_l1_common(l1)?;
        let epoch = l1.epoch_secs();
        if epoch == 0 || !epoch.is_multiple_of(lookahead.slot_duration_secs) {
            return Err(NodeError::config(
                "l1.slots_per_epoch",
                "an L1 epoch (slots_per_epoch × seconds_per_slot) must be a positive \
                 multiple of lookahead.slot_duration_secs",
            ));
        }
        Ok(())
    }

    fn summary(&self, _lookahead: &LookaheadConfig, l1: &L1Config) -> String {
        format!(
            "l1_whitelist, contract {} on {}",
            l1.whitelist_address, l1.rpc_url
        )
    }

    fn build(
        &self,
        lookahead: &LookaheadConfig,
        l1: &L1Config,
    ) -> Result<Arc<dyn Source>, NodeError> {
        Ok(Arc::new(L1Schedule::new(l1, lookahead.slot_duration_secs)?))
    }
}

/// Most block lookups to find an L1 block inside a past epoch.
pub const PAST_EPOCH_BLOCK_STEPS: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> L1Schedule {
        let config = L1Config {
            whitelist_address: Address::repeat_byte(9),
            beacon_genesis_timestamp: Some(1000),
            seconds_per_slot: 2,
            slots_per_epoch: 4,
            ..L1Config::default()
        };
        L1Schedule::new(&config, 2).unwrap()
    }

    fn read(block: u64, epoch: u64, current: Option<u8>, next: Option<u8>) -> WhitelistRead {
        WhitelistRead {
            l1_block: block,
            l1_timestamp: 1000 + epoch * 8,
            epoch,
            current: current.map(Address::repeat_byte),
            next: next.map(Address::repeat_byte),
        }
    }

    #[test]
    fn a_read_teaches_both_epochs_and_an_older_read_is_ignored() {
        let s = schedule();
        assert_eq!(s.epoch_at(1015), Some(1));
        assert!(s.lookahead.schedule_for_slot(4).is_none());
        assert!(s.apply(read(10, 1, Some(1), Some(2))));
        // Epoch 1 is slots 4..8, epoch 2 slots 8..12.
        assert_eq!(
            s.lookahead.signer_for_slot(4),
            Some(Address::repeat_byte(1))
        );
        assert_eq!(
            s.lookahead.signer_for_slot(8),
            Some(Address::repeat_byte(2))
        );
        assert!(!s.apply(read(10, 1, Some(1), Some(2))), "nothing new");
        assert!(!s.apply(read(9, 0, Some(7), Some(7))), "older head ignored");
        assert_eq!(
            s.lookahead.signer_for_slot(4),
            Some(Address::repeat_byte(1))
        );
        // The next epoch's operator was removed: it has none, its commitments wait again.
        assert!(s.apply(read(11, 1, Some(1), None)));
        assert!(s.lookahead.schedule_for_slot(8).is_none());
        let status = s.status(1000 + 8);
        assert_eq!(status.current_window, Some(1));
        assert_eq!(status.current_preconfer, Some(Address::repeat_byte(1)));
        assert_eq!(status.next_preconfer, None);
        assert_eq!(status.l1_head, Some(11));
        assert_eq!(s.reads(), 3);
    }
}
