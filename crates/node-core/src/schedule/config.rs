//! The settings of the schedule sources: `[lookahead]` (which source, and the static
//! rotation) and `[l1]` (the L1 the `l1_whitelist` and `l1_lookahead` sources read).

use std::time::Duration;

use preconfirmation_net::config::duration;
use preconfirmation_types::Address;
use serde::{Deserialize, Serialize};

/// Where the preconfer schedule comes from.
///
/// `static`: a round robin from this file — slot `s` (of `slot_duration_secs` from
/// `genesis_timestamp`) belongs to `preconfers[(s / slots_per_window) % len]` (devnets).
/// `l1_whitelist`: read from Taiko's `PreconfWhitelist` contract on L1 (see [`L1Config`]):
/// one window per L1 epoch, L2 slots of `slot_duration_secs` from the beacon genesis.
/// `l1_lookahead`: Taiko's permissionless schedule, the lists `LookaheadStore` posts on L1,
/// verified against the store's hashes, with the whitelist's operator as the fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookaheadConfig {
    /// Schedule source: `static` (this table's round robin), `l1_whitelist` or
    /// `l1_lookahead` (both read the L1 of the `[l1]` table). Default `static`.
    pub source: ScheduleSource,
    /// `static` only: preconfer addresses in rotation order. Required for `static`: the node
    /// refuses to start without.
    pub preconfers: Vec<Address>,
    /// `static` only: slots each preconfer owns in a row. Default 4.
    pub slots_per_window: u64,
    /// `static` only: unix second of slot 0 (`l1_whitelist` uses
    /// `l1.beacon_genesis_timestamp`). Default 0.
    pub genesis_timestamp: u64,
    /// L2 slot length in seconds (both sources; with `l1_whitelist` it must divide the L1
    /// epoch). Default 2.
    pub slot_duration_secs: u64,
}

impl Default for LookaheadConfig {
    fn default() -> Self {
        Self {
            source: ScheduleSource::Static,
            preconfers: Vec::new(),
            slots_per_window: 4,
            genesis_timestamp: 0,
            slot_duration_secs: 2,
        }
    }
}

/// Where the preconfer schedule comes from (`lookahead.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleSource {
    /// The round robin of `lookahead.preconfers`.
    Static,
    /// Taiko's `PreconfWhitelist` contract on L1.
    L1Whitelist,
    /// Taiko's `LookaheadStore` on L1 (permissionless: URC operators' variable windows).
    L1Lookahead,
}

/// 1606824023: the Ethereum mainnet beacon chain's genesis time (unix seconds).
pub const MAINNET_BEACON_GENESIS_TIMESTAMP: u64 = 1_606_824_023;

/// The L1 node and contracts the schedule is read from (`lookahead.source = "l1_whitelist"`
/// or `"l1_lookahead"`).
///
/// `l1_whitelist`: every epoch (`slots_per_epoch` L1 slots of `seconds_per_slot` from
/// `beacon_genesis_timestamp`) has one operator, whose sequencer address signs every L2 slot
/// of the epoch; its `submissionWindowEnd` is the first second after the epoch.
///
/// `l1_lookahead`: the lists of `lookahead_store_address`, 12 s slots and 32-slot epochs as
/// on every Ethereum chain; each window `(start, end]` ends on its owner's L1 slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// L1 execution node JSON-RPC over HTTP(S). Default `http://127.0.0.1:8545`.
    pub rpc_url: String,
    /// Address of the `PreconfWhitelist` contract. Required for `l1_whitelist`; for
    /// `l1_lookahead` unset means the one the store names (`preconfWhitelist()`).
    pub whitelist_address: Address,
    /// Address of Taiko's `LookaheadStore` (its proxy). Required for `l1_lookahead`.
    pub lookahead_store_address: Address,
    /// Unix second of the beacon chain's genesis (slot 0), the origin of epochs and slots.
    /// Unset: by the chain id the L1 node reports (mainnet, Holesky, Helder and Hoodi have
    /// their own; any other chain, anvil included, counts from 0) for `l1_lookahead`, and
    /// mainnet's 1606824023 for `l1_whitelist`.
    pub beacon_genesis_timestamp: Option<u64>,
    /// L1 slot length in seconds. Default 12.
    pub seconds_per_slot: u64,
    /// L1 slots per epoch. Default 32.
    pub slots_per_epoch: u64,
    /// How often the L1 head is polled; a new epoch is read within one poll of its first L1
    /// block. Default 2000 ms.
    #[serde(with = "duration")]
    pub poll_interval: Duration,
    /// Longest wait for one L1 JSON-RPC call. Default 3000 ms.
    #[serde(with = "duration")]
    pub request_timeout: Duration,
    /// Longest wait between retries after failed reads (the wait doubles from
    /// `poll_interval` up to this). Default 30 000 ms.
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// Epochs whose operator is remembered (the newest). Default 64.
    pub remembered_epochs: usize,
    /// Past epochs read per poll for validation that asked for them (a catching-up node's
    /// old blocks), each at an L1 block inside the epoch: the L1 node must still hold that
    /// state (an archive node for old epochs). Default 8.
    pub past_epochs_per_poll: usize,
    /// `l1_lookahead`: most L1 JSON-RPC calls one poll makes; what is left waits for the next
    /// poll, so a slow or lying L1 delays the schedule but cannot make the node flood it.
    /// A poll on a new L1 head needs 3 + 2 × (2 + the operators listed) for the current
    /// and next epochs (a poll on an unchanged head none of those). Default 128.
    pub max_calls_per_poll: usize,
    /// `l1_lookahead`: most blocks one `eth_getLogs` spans (an epoch's post lies in the 32
    /// blocks of the epoch before it; more only on chains with faster blocks). Default 256.
    pub max_log_range_blocks: u64,
    /// `l1_lookahead`: most `LookaheadPosted` logs one `eth_getLogs` answer may carry for an
    /// epoch; a longer answer is refused whole (an honest one carries one, a few around a
    /// reorg). Default 8.
    pub max_logs_per_epoch: usize,
    /// `l1_lookahead`: most stored blocks looked at again when an L1 reorg replaces an
    /// epoch's list, to report those accepted under the old one. Default 512.
    pub reorg_recheck_blocks: u64,
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            whitelist_address: Address::ZERO,
            lookahead_store_address: Address::ZERO,
            beacon_genesis_timestamp: None,
            seconds_per_slot: 12,
            slots_per_epoch: 32,
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(3),
            max_backoff: Duration::from_secs(30),
            remembered_epochs: 64,
            past_epochs_per_poll: 8,
            max_calls_per_poll: 128,
            max_log_range_blocks: 256,
            max_logs_per_epoch: super::lookahead_l1::MAX_LOGS_PER_EPOCH,
            reorg_recheck_blocks: 512,
        }
    }
}

impl L1Config {
    /// The wait before the next read after a failed one that followed a wait of `wait`:
    /// doubled, at least `poll_interval`, at most `max_backoff` (or `poll_interval` if that
    /// is longer).
    pub fn backoff_after(&self, wait: Duration) -> Duration {
        wait.max(self.poll_interval)
            .saturating_mul(2)
            .min(self.max_backoff.max(self.poll_interval))
    }

    /// Seconds per L1 epoch.
    pub fn epoch_secs(&self) -> u64 {
        self.seconds_per_slot.saturating_mul(self.slots_per_epoch)
    }

    /// The beacon genesis `l1_whitelist` counts epochs from: the configured one, else
    /// mainnet's.
    pub fn whitelist_genesis(&self) -> u64 {
        self.beacon_genesis_timestamp
            .unwrap_or(MAINNET_BEACON_GENESIS_TIMESTAMP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_from_the_poll_interval_up_to_its_cap() {
        let config = L1Config {
            poll_interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(10),
            ..L1Config::default()
        };
        let mut wait = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..5 {
            wait = config.backoff_after(wait);
            seen.push(wait.as_secs());
        }
        assert_eq!(seen, vec![4, 8, 10, 10, 10]);
        // A cap below the poll interval never waits less than the poll interval.
        let config = L1Config {
            poll_interval: Duration::from_secs(20),
            max_backoff: Duration::from_secs(5),
            ..L1Config::default()
        };
        assert_eq!(
            config.backoff_after(Duration::ZERO),
            Duration::from_secs(20)
        );
    }
}
