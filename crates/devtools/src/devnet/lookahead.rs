//! `devnet --l1 --lookahead`: the permissionless schedule on a local L1.
//!
//! Anvil starts with its genesis in the epoch before the current one, so the current epoch's
//! list can be posted where `Inbox.propose` would post it (during the epoch before); L1 time
//! then jumps to the wall clock and follows it, a block a second. The test `LookaheadStore`
//! and whitelist are deployed; each epoch gets a sparse list of opted-in preconfers (a few
//! L1 slots, owners rotating over the devnet's keys) and every fourth epoch none at all (the
//! whitelist's fallback signs it). A poster posts each next epoch's list from slot 1 of the
//! epoch before, as the first proposal would. Nodes run `lookahead.source = "l1_lookahead"`.
//!
//! The driver publishes a block every 2 s L2 slot, signed by the owner of the window holding
//! the slot's time with that window's end, both computed from the lists it posted with the
//! node's own window rules; the report lists each window, its owner and its blocks.

use std::collections::BTreeMap;
use std::time::Duration;

use alloy::primitives::{B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolValue;
use p2p::testkit::{Block, ChainBuilder};
use preconf_node_core::config::{NodeConfig, ScheduleSource};
use preconf_node_core::schedule::lookahead_window::{
    EpochClock, EpochKnowledge, EpochLookahead, KnownEpochs, LookaheadEntry, Resolved,
    SECONDS_PER_EPOCH, SECONDS_PER_L1_SLOT,
};
use preconfirmation_types::{secret_key_to_address, Address};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::error::ToolError;
use crate::l1_dev::LOOKAHEAD_STORE_STUB_BIN;
use crate::l1_dev::{deploy, locate_anvil, provider, Anvil, LookaheadStoreStub, WhitelistStub};

/// L2 slot length of the lookahead devnet, seconds (divides the 12 s L1 slot).
pub(super) const SLOT_SECS: u64 = 2;
/// Every this many epochs one has no opted-in preconfer: the fallback's.
const EMPTY_EPOCH_EVERY: u64 = 4;
/// L1 slots of an epoch that get an entry (before de-duplication).
const ENTRIES_PER_EPOCH: u64 = 4;

/// One window of the run as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevnetWindow {
    /// Exclusive start (unix seconds).
    pub start: u64,
    /// Inclusive end: the blocks' `submissionWindowEnd`.
    pub end: u64,
    /// Who signed it.
    pub signer: Address,
    /// Whether that is the whitelist's fallback.
    pub fallback: bool,
    /// Blocks published in it.
    pub blocks: u64,
}

/// The list the devnet posts for `epoch`: empty every [`EMPTY_EPOCH_EVERY`]th epoch, else a
/// few L1 slots whose owners rotate over `signers`.
pub(super) fn list_for(epoch: u64, signers: &[Address]) -> Vec<LookaheadEntry> {
    let index = epoch / SECONDS_PER_EPOCH;
    if index % EMPTY_EPOCH_EVERY == EMPTY_EPOCH_EVERY - 1 || signers.is_empty() {
        return Vec::new();
    }
    let mut slots: Vec<u64> = (0..ENTRIES_PER_EPOCH)
        .map(|k| (index.wrapping_mul(7) + k * 8 + 3) % 32)
        .collect();
    slots.sort_unstable();
    slots.dedup();
    slots
        .iter()
        .enumerate()
        .map(|(k, slot)| {
            let owner = (index as usize + k) % signers.len();
            LookaheadEntry {
                committer: signers[owner],
                timestamp: U256::from(epoch + slot * SECONDS_PER_L1_SLOT),
                registration_root: B256::with_last_byte(owner as u8 + 1),
                validator_leaf_index: U256::ZERO,
            }
        })
        .collect()
}

/// The whitelist's pick for `epoch`: the signers in turn.
pub(super) fn fallback_for(epoch: u64, signers: &[Address]) -> Address {
    let index = (epoch / SECONDS_PER_EPOCH) as usize;
    signers
        .get(index % signers.len().max(1))
        .copied()
        .unwrap_or_default()
}

/// The schedule the driver signs by, from the lists it posts (the node's own window rules).
pub(super) fn schedule(signers: &[Address], first_epoch: u64, epochs: u64) -> KnownEpochs {
    let mut known = KnownEpochs::new(EpochClock::new(0), epochs as usize + 2);
    for k in 0..epochs {
        let epoch = first_epoch + k * SECONDS_PER_EPOCH;
        if let Ok(list) = EpochLookahead::new(epoch, &list_for(epoch, signers)) {
            known.learn(EpochKnowledge {
                list,
                hash: Default::default(),
                fallback: Some(fallback_for(epoch, signers)),
                blacklisted: Default::default(),
            });
        }
    }
    known
}

/// The local L1 of `devnet --l1 --lookahead`: anvil, the store and the whitelist, and the
/// poster that posts each next epoch's list.
pub(super) struct LookaheadL1 {
    pub(super) anvil: Anvil,
    pub(super) store: Address,
    poster: JoinHandle<()>,
    stop: CancellationToken,
}

impl LookaheadL1 {
    /// Starts anvil in the epoch before now, deploys the contracts, posts the current epoch's
    /// list there, moves L1 to the wall clock and starts the poster; `epochs` epochs get a
    /// whitelist pick.
    pub(super) async fn start(signers: &[Address], epochs: u64) -> Result<Self, ToolError> {
        let bin = locate_anvil()
            .map_err(|reason| ToolError::config("devnet --l1 --lookahead", reason))?;
        let now = preconf_node_core::clock::unix_now();
        let current = now - now % SECONDS_PER_EPOCH;
        let anvil =
            Anvil::start_at(&bin, current - SECONDS_PER_EPOCH + SECONDS_PER_L1_SLOT).await?;
        let whitelist = WhitelistStub::deploy(&anvil, 0, SECONDS_PER_EPOCH).await?;
        let operators: Vec<(Address, Address)> = signers.iter().map(|s| (*s, *s)).collect();
        let picks: Vec<(u64, Address)> = (0..epochs)
            .map(|k| {
                let epoch = current + k * SECONDS_PER_EPOCH;
                (epoch / SECONDS_PER_EPOCH, fallback_for(epoch, signers))
            })
            .collect();
        whitelist.setup(&operators, &picks).await?;
        let store = deploy(
            &anvil,
            LOOKAHEAD_STORE_STUB_BIN,
            &whitelist.address.abi_encode(),
        )
        .await?;
        post(&anvil, store, current, signers).await?;
        anvil.warp_to(preconf_node_core::clock::unix_now()).await?;
        provider(&anvil.url)?
            .raw_request::<_, serde_json::Value>("evm_setIntervalMining".into(), (1,))
            .await
            .map_err(|e| preconf_node_core::NodeError::l1("evm_setIntervalMining", e))?;
        post(&anvil, store, current + SECONDS_PER_EPOCH, signers).await?;
        let stop = CancellationToken::new();
        let poster = tokio::spawn(poster(
            anvil.url.clone(),
            anvil.owner,
            store,
            signers.to_vec(),
            current + SECONDS_PER_EPOCH,
            stop.clone(),
        ));
        info!(url = %anvil.url, store = %store, "devnet lookahead L1 ready");
        Ok(Self {
            anvil,
            store,
            poster,
            stop,
        })
    }

    /// Stops the poster and anvil.
    pub(super) async fn stop(self) {
        self.stop.cancel();
        let _ = self.poster.await;
        self.anvil.stop().await;
    }
}

async fn post(
    anvil: &Anvil,
    store: Address,
    epoch: u64,
    signers: &[Address],
) -> Result<(), ToolError> {
    post_at(&anvil.url, anvil.owner, store, epoch, signers).await
}

async fn post_at(
    url: &str,
    owner: Address,
    store: Address,
    epoch: u64,
    signers: &[Address],
) -> Result<(), ToolError> {
    let slots: Vec<LookaheadStoreStub::LookaheadSlot> = list_for(epoch, signers)
        .iter()
        .map(|e| LookaheadStoreStub::LookaheadSlot {
            committer: e.committer,
            timestamp: e.timestamp,
            registrationRoot: e.registration_root,
            validatorLeafIndex: e.validator_leaf_index,
        })
        .collect();
    let contract = LookaheadStoreStub::new(store, provider(url)?);
    let pending = contract
        .postLookahead(U256::from(epoch), slots)
        .from(owner)
        .send()
        .await
        .map_err(|e| preconf_node_core::NodeError::l1("postLookahead", e))?;
    tokio::time::timeout(crate::l1_dev::L1_WAIT, pending.watch())
        .await
        .map_err(|_| preconf_node_core::NodeError::l1("postLookahead", "not mined in time"))?
        .map_err(|e| preconf_node_core::NodeError::l1("postLookahead", e))?;
    info!(epoch, "devnet posted a lookahead");
    Ok(())
}

/// Posts the list of the epoch after the clock's from slot 1 of the clock's epoch on, once.
async fn poster(
    url: String,
    owner: Address,
    store: Address,
    signers: Vec<Address>,
    mut posted: u64,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = preconf_node_core::clock::unix_now();
        let current = now - now % SECONDS_PER_EPOCH;
        let next = current + SECONDS_PER_EPOCH;
        if next > posted && now >= current + SECONDS_PER_L1_SLOT {
            match post_at(&url, owner, store, next, &signers).await {
                Ok(()) => posted = next,
                Err(e) => warn!(epoch = next, error = %e, "devnet lookahead post failed"),
            }
        }
    }
}

/// Node settings for the lookahead devnet: the source on the local L1.
pub(super) fn configure(config: &mut NodeConfig, l1: &LookaheadL1) {
    config.lookahead.source = ScheduleSource::L1Lookahead;
    config.lookahead.preconfers = Vec::new();
    config.lookahead.slot_duration_secs = SLOT_SECS;
    config.l1.rpc_url = l1.anvil.url.clone();
    config.l1.lookahead_store_address = l1.store;
    config.l1.whitelist_address = Address::ZERO;
    config.l1.beacon_genesis_timestamp = None;
    config.l1.poll_interval = Duration::from_millis(250);
    config.l1.request_timeout = Duration::from_secs(1);
    config.l1.max_backoff = Duration::from_secs(2);
    // One L1 block a second: an epoch's post lies within 384 blocks.
    config.l1.max_log_range_blocks = 1024;
    config.sdk.rules.window_end_grace = NodeConfig::default().sdk.rules.window_end_grace;
}

/// The block of L2 slot time `t`: signed by the owner of the window holding `t` with its end;
/// `None` when the driver's schedule does not know `t` or holds no key for its owner.
pub(super) fn block_at(
    builder: &mut ChainBuilder,
    schedule: &KnownEpochs,
    t: u64,
    txlist: Vec<u8>,
) -> Option<(Block, Resolved, usize)> {
    let resolved = schedule.resolve(t)?;
    let key_index = builder
        .keys()
        .iter()
        .position(|k| secret_key_to_address(k) == resolved.signer)?;
    let key = builder.keys()[key_index];
    let mut unsigned = builder.next_unsigned(Some(&txlist));
    unsigned.preconf.eop = false;
    unsigned.preconf.timestamp = U256::from(t);
    unsigned.preconf.coinbase = resolved.signer;
    unsigned.preconf.submission_window_end = U256::from(resolved.window.end);
    let commitment = builder.sign_with(&key, unsigned);
    builder.advance(&commitment);
    let txlist = preconfirmation_types::RawTxListGossip::new(txlist).ok();
    Some((Block { commitment, txlist }, resolved, key_index))
}

/// Adds a block published in `resolved`'s window to `windows` (keyed by the window's end).
pub(super) fn record(windows: &mut BTreeMap<u64, DevnetWindow>, resolved: &Resolved) {
    windows
        .entry(resolved.window.end)
        .or_insert(DevnetWindow {
            start: resolved.window.start,
            end: resolved.window.end,
            signer: resolved.signer,
            fallback: resolved.is_fallback,
            blocks: 0,
        })
        .blocks += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_valid_sparse_and_every_fourth_epoch_is_empty() {
        let signers = [Address::with_last_byte(1), Address::with_last_byte(2)];
        let mut empty = 0;
        for k in 0..8u64 {
            let epoch = 10_000 * SECONDS_PER_EPOCH + k * SECONDS_PER_EPOCH;
            let list = list_for(epoch, &signers);
            assert!(EpochLookahead::new(epoch, &list).is_ok(), "epoch {epoch}");
            assert!(list.len() <= ENTRIES_PER_EPOCH as usize);
            empty += usize::from(list.is_empty());
        }
        assert_eq!(empty, 2);
        let known = schedule(&signers, 10_000 * SECONDS_PER_EPOCH, 8);
        for t in (10_000 * SECONDS_PER_EPOCH..10_007 * SECONDS_PER_EPOCH).step_by(2) {
            assert!(known.resolve(t).is_some(), "t = {t} has an owner");
        }
    }
}
