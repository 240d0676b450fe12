//! [`P2pSdkConfig`]: every limit of the SDK, named, with a default and a serde form.
//!
//! Durations are humantime strings in config files (`"30s"`, `"500ms"`).

use std::time::Duration;

use preconfirmation_net::config::duration;
use preconfirmation_net::{NetError, NetworkConfig};
use preconfirmation_types::{
    Address, ChainSpec, GossipTopicKind, ReqRespKind, TypesError, B256,
    MAX_COMMITMENTS_PER_RESPONSE,
};
use serde::{Deserialize, Serialize};

/// Why [`P2pSdkConfig::validate`] refused a configuration (the SDK's start returns it as
/// `P2pSdkError::Decode`, `Network` or `Config`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The chain's caps are inconsistent (§3).
    #[error(transparent)]
    Limits(#[from] TypesError),
    /// The network configuration is invalid.
    #[error(transparent)]
    Network(#[from] NetError),
    /// An SDK value is out of range; the message names its key.
    #[error("invalid SDK configuration: {0}")]
    Invalid(String),
}

/// Configuration of a `P2pSdk`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct P2pSdkConfig {
    /// The chain: id, signing domain, slasher and caps (§2, §3, §4.1). The network's
    /// `chain_id` and `limits` are overwritten with these at start.
    pub chain: ChainSpec,
    /// The libp2p layer.
    pub network: NetworkConfig,
    /// Capacity of the caller → SDK command queue; a full queue returns
    /// `P2pSdkError::Backpressure`. Default 1024.
    pub command_channel_capacity: usize,
    /// Capacity of the SDK → subscriber event queue; a subscriber that falls this far behind
    /// loses the oldest events and is told how many (`P2pSdkError::Lagged`). Default 4096.
    pub event_channel_capacity: usize,
    /// Block rules of §4.2 item 5.
    pub rules: BlockRules,
    /// Buffers for commitments that cannot be validated yet (§4.2 "never reject only because
    /// the parent is not known yet").
    pub pending: PendingLimits,
    /// Dedupe caches (§7).
    pub dedupe: DedupeLimits,
    /// How gossiped commitments that arrive together are validated (batches, parallel
    /// signature recovery).
    pub gossip_validation: GossipValidationConfig,
    /// Tx lists seen on gossip before any commitment references them (§6 "gossip cache").
    pub orphan_txlists: OrphanTxListLimits,
    /// Start-up and gap catch-up (§10.3).
    pub catchup: CatchUpConfig,
    /// Where the chain starts when storage is empty: the L2 block the sidecar's execution
    /// engine is synced to (§10.3 "after the L2 execution engine is synced").
    pub anchor: Anchor,
    /// How often the connected peers' scores are exported as `p2p_peer_score_gauge` (their
    /// min, median and max: three series, not one per peer). Default 10 s.
    #[serde(with = "duration")]
    pub peer_score_interval: Duration,
    /// Distinct peers whose commitments must all fail the local schedule's signer (or
    /// window-end) check, with none passing, before the SDK blames its own schedule rather
    /// than them: it then warns once ("is lookahead.preconfers right?") and stops penalising
    /// peers for that rule. Fewer suffice when fewer are connected (one, for a lone static
    /// peer). Default 2.
    pub schedule_disagreement_min_peers: usize,
}

impl Default for P2pSdkConfig {
    fn default() -> Self {
        Self {
            chain: ChainSpec::new(preconfirmation_types::TAIKO_MAINNET_CHAIN_ID, Address::ZERO),
            network: NetworkConfig::default(),
            command_channel_capacity: 1024,
            event_channel_capacity: 4096,
            rules: BlockRules::default(),
            pending: PendingLimits::default(),
            dedupe: DedupeLimits::default(),
            gossip_validation: GossipValidationConfig::default(),
            orphan_txlists: OrphanTxListLimits::default(),
            catchup: CatchUpConfig::default(),
            anchor: Anchor::default(),
            peer_score_interval: Duration::from_secs(10),
            schedule_disagreement_min_peers: 2,
        }
    }
}

impl P2pSdkConfig {
    /// A configuration for `chain` with every other value at its default.
    pub fn new(chain: ChainSpec) -> Self {
        Self {
            chain,
            ..Self::default()
        }
    }

    /// Sets the network configuration (builder style).
    pub fn with_network(mut self, network: NetworkConfig) -> Self {
        self.network = network;
        self
    }

    /// Sets the anchor used when storage is empty (builder style).
    pub fn with_anchor(mut self, anchor: Anchor) -> Self {
        self.anchor = anchor;
        self
    }

    /// Gossip topic of `kind` on the configured chain (§2).
    pub fn topic(&self, kind: GossipTopicKind) -> String {
        self.chain.topic(kind)
    }

    /// Req/resp protocol id of `kind` on the configured chain (§10–§11).
    pub fn protocol_id(&self, kind: ReqRespKind) -> String {
        self.chain.protocol_id(kind)
    }

    /// The network configuration with the chain's id and caps applied.
    pub fn effective_network(&self) -> NetworkConfig {
        let mut network = self.network.clone();
        network.chain_id = self.chain.chain_id;
        network.limits = self.chain.limits;
        network
    }

    /// Checks every value; the error names the offending key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.chain.limits.validate()?;
        self.effective_network().validate()?;
        let positive = [
            ("command_channel_capacity", self.command_channel_capacity),
            ("event_channel_capacity", self.event_channel_capacity),
            ("pending.max_count", self.pending.max_count),
            ("pending.max_bytes", self.pending.max_bytes),
            (
                "pending.max_count_per_peer",
                self.pending.max_count_per_peer,
            ),
            ("dedupe.seen_messages", self.dedupe.seen_messages),
            ("dedupe.slot_signers", self.dedupe.slot_signers),
            (
                "gossip_validation.batch_max",
                self.gossip_validation.batch_max,
            ),
            ("gossip_validation.chunk", self.gossip_validation.chunk),
            (
                "gossip_validation.parallel_from",
                self.gossip_validation.parallel_from,
            ),
            (
                "schedule_disagreement_min_peers",
                self.schedule_disagreement_min_peers,
            ),
            ("catchup.head_peers", self.catchup.head_peers),
            (
                "catchup.first_block_voters",
                self.catchup.first_block_voters,
            ),
            ("catchup.page_size", self.catchup.page_size),
            ("catchup.parallel_pages", self.catchup.parallel_pages),
            ("catchup.write_queue_pages", self.catchup.write_queue_pages),
            ("catchup.write_queue_bytes", self.catchup.write_queue_bytes),
            ("catchup.write_group_pages", self.catchup.write_group_pages),
            ("catchup.max_attempts", self.catchup.max_attempts),
            ("catchup.parallel_txlists", self.catchup.parallel_txlists),
            (
                "catchup.max_requests_per_peer",
                self.catchup.max_requests_per_peer,
            ),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid(format!("{key} must be positive")));
            }
        }
        if self.catchup.page_size > self.chain.limits.max_commitments_per_response {
            return Err(ConfigError::Invalid(format!(
                "catchup.page_size = {} exceeds chain.limits.max_commitments_per_response = {}",
                self.catchup.page_size, self.chain.limits.max_commitments_per_response
            )));
        }
        Ok(())
    }
}

/// Block parameter rules (§4.2 item 5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockRules {
    /// Largest gas limit a block may commit to. Default 240 000 000.
    pub max_gas_limit: u64,
    /// How far a block's timestamp may lie ahead of the local clock. Default 12 s.
    #[serde(with = "duration")]
    pub max_future_drift: Duration,
    /// Whether a block's timestamp must not be below its parent's. Default true.
    pub monotonic_timestamps: bool,
    /// The lower time bound of gossip and local publish: a commitment whose window ended
    /// (`submissionWindowEnd`) more than this before the local clock is refused, reason
    /// `window_ended` — reported `Ignore` to gossipsub (not forwarded, not penalised: an
    /// honest relay may be late) and an error to a local publisher. Catch-up is exempt: it
    /// fetches history. Default 12 s, the future drift's mirror (clocks and one L1 slot of
    /// slack). Setups that replay old blocks over gossip (benches, test chains built in the
    /// past) raise it.
    #[serde(with = "duration")]
    pub window_end_grace: Duration,
}

impl Default for BlockRules {
    fn default() -> Self {
        Self {
            max_gas_limit: 240_000_000,
            max_future_drift: Duration::from_secs(12),
            monotonic_timestamps: true,
            window_end_grace: Duration::from_secs(12),
        }
    }
}

/// Caps of the pending buffers (unknown parent, unknown schedule).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PendingLimits {
    /// Most buffered commitments over both buffers; the oldest is evicted first. Default 4096.
    pub max_count: usize,
    /// Most buffered bytes (SSZ size of the commitments). Default 4 MiB.
    pub max_bytes: usize,
    /// Buffered commitments older than this are dropped. Default 120 s.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// A commitment more than this many blocks above the head is not buffered (catch-up fetches
    /// the range instead). Default 1024.
    pub max_blocks_ahead: u64,
    /// Most buffered commitments from one peer: over it, the peer's own oldest entry goes
    /// (never another peer's). While a slot's schedule is unknown any key whose signature
    /// recovers can be buffered, so without a quota one peer id could evict every honest
    /// entry. An honest peer relays one commitment per 2 s L2 slot, so 512 is 17 minutes of
    /// one peer's share. Default 512.
    pub max_count_per_peer: usize,
    /// How long a gossiped commitment's verdict is held while it is pending: `Accept` (it is
    /// forwarded) if it validates within this time, `Ignore` (no penalty; it stays buffered
    /// but is not forwarded) after it. Gossipsub keeps an unvalidated message for its
    /// history window (`history_length` heartbeats) only. Default 3 000 ms.
    #[serde(with = "duration")]
    pub hold_verdict_for: Duration,
}

impl Default for PendingLimits {
    fn default() -> Self {
        Self {
            max_count: 4096,
            max_bytes: 4 * 1024 * 1024,
            max_age: Duration::from_secs(120),
            max_blocks_ahead: 1024,
            max_count_per_peer: 512,
            hold_verdict_for: Duration::from_secs(3),
        }
    }
}

/// Sizes of the dedupe caches (§7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DedupeLimits {
    /// Message ids remembered (own and received). Default 65 536.
    pub seen_messages: usize,
    /// `(slot, signer)` and EOP records remembered for equivocation checks. Default 16 384.
    pub slot_signers: usize,
}

impl Default for DedupeLimits {
    fn default() -> Self {
        Self {
            seen_messages: 65_536,
            slot_signers: 16_384,
        }
    }
}

/// Batching of gossiped commitments. When several are waiting for the SDK at once (a burst, a
/// flood, a node that fell behind), the manager takes up to `batch_max` of them in arrival
/// order and validates them in chunks of `chunk`: one chunk's signers are recovered on the
/// rayon pool (the one costly step, which needs no chain state) while the previous chunk's
/// commitments are checked and applied one by one, in order, on the manager's thread. A
/// message that arrives alone is validated at once, on the manager's thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GossipValidationConfig {
    /// Most gossiped commitments taken in one batch; 1 turns batching off. Default 64 (about
    /// 1 ms of recovery on two cores: the longest a batch holds the manager).
    pub batch_max: usize,
    /// Commitments per chunk of a batch. Default 16.
    pub chunk: usize,
    /// Fewest new commitments in a chunk for their signers to be recovered on the pool: below
    /// it, waking the pool costs more than it saves. Default 4.
    pub parallel_from: usize,
}

impl Default for GossipValidationConfig {
    fn default() -> Self {
        Self {
            batch_max: 64,
            chunk: 16,
            parallel_from: 4,
        }
    }
}

/// Caps of the holding area: tx lists no accepted commitment references yet (a gossiped one is
/// held, its gossip verdict with it, until its commitment arrives — §6 publishes the tx list
/// first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OrphanTxListLimits {
    /// Most held tx lists. Default 256.
    pub max_count: usize,
    /// Most held bytes. Default 64 MiB (32 tx lists at the 2 MiB cap, §3).
    pub max_bytes: usize,
    /// Most bytes held for one peer (the propagation source): a peer over it evicts its own
    /// oldest lists, never another peer's. An honest peer's lists are claimed by their
    /// commitment within milliseconds, so four lists at the 2 MiB cap is room enough.
    /// Default 8 MiB.
    pub max_bytes_per_peer: usize,
    /// How long a gossiped tx list's verdict is held for its commitment before it is reported
    /// `Ignore` (not forwarded, no penalty). Must stay below gossipsub's message-cache window
    /// (`history_length` × `heartbeat_interval`, 12 × 500 ms by default), after which the
    /// verdict no longer matters. Default 3 s (one and a half L2 slots).
    #[serde(with = "duration")]
    pub hold_verdict_for: Duration,
}

impl Default for OrphanTxListLimits {
    fn default() -> Self {
        Self {
            max_count: 256,
            max_bytes: 64 * 1024 * 1024,
            max_bytes_per_peer: 8 * 1024 * 1024,
            hold_verdict_for: Duration::from_secs(3),
        }
    }
}

/// Catch-up (§10.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CatchUpConfig {
    /// Whether catch-up runs at start, on reconnect and on gaps. Default true.
    pub enabled: bool,
    /// How many peers are asked for their head. Default 4.
    pub head_peers: usize,
    /// With no anchor hash (`anchor.preconfirmation_hash` unset, empty storage) the first
    /// block's parent is taken on trust, so the peers vote on block `anchor + 1` and the block
    /// most of them serve is followed (a peer serving another is not used for the run).
    /// Catch-up waits (at most `first_block_wait`) until this many peers are connected before
    /// that vote. Default 2: one peer alone cannot choose the chain when another is coming.
    pub first_block_voters: usize,
    /// How long catch-up waits after its first peer for `first_block_voters` peers, then
    /// votes with those it has. Default 2 s.
    #[serde(with = "duration")]
    pub first_block_wait: Duration,
    /// `maxCount` of each `get_commitments_by_number` page; at most the chain's cap.
    /// Default 256 (§10.2 `MAX_COMMITMENTS_PER_RESPONSE`).
    pub page_size: usize,
    /// Pages in the fetch stage at once (fetched, signatures recovered, tx lists fetched),
    /// spread over the best peers. Default 8.
    pub parallel_pages: usize,
    /// Validated pages waiting for their durable write, at most; whatever waits when a write
    /// ends goes into the next transaction together (group commit), so this is also the most
    /// pages one transaction holds. A transaction costs about the same for one page as for
    /// many (a page's random-keyed index entries touch most of the index's leaves anyway, and
    /// one sync covers them all), so grouping is what lets the writer keep up: measured with
    /// 256-commitment pages on redb, 11 000 commitments/s written one page per transaction,
    /// 28 000/s sixteen at a time (BENCHMARKS.md). The fetch stage waits when the
    /// queue is full. Twice `write_group_pages`, so the next group fills while one is
    /// written. Default 32.
    pub write_queue_pages: usize,
    /// Bytes those waiting pages may hold, at most (commitments at their SSZ size plus tx
    /// lists), so a queue of pages with large tx lists stays bounded; a single page larger
    /// than this waits for the queue to empty and is written alone. Default 64 MiB.
    pub write_queue_bytes: usize,
    /// Pages a transaction that holds only catch-up pages gathers before it is written: the
    /// writer waits up to `write_group_linger` for more when fewer are queued. The
    /// commitment and tx-list hash indexes are random-keyed, so every transaction rewrites
    /// most of their leaf pages whatever it holds; fewer, larger transactions rewrite them
    /// fewer times (a 100 000-block catch-up: 126 transactions of 1–4 pages each without the
    /// wait; catch-up of 100 000 blocks at 22 900/s without it, 26 100/s with 16 pages,
    /// BENCHMARKS.md). At most `write_queue_pages`. Default 16.
    pub write_group_pages: usize,
    /// How long the writer waits for `write_group_pages` catch-up pages at most, so a slow
    /// catch-up is written as it comes. A gossip or published write never waits, and ends
    /// the wait for the pages queued with it. Default 100 ms.
    #[serde(with = "duration")]
    pub write_group_linger: Duration,
    /// Tx list requests in flight at once. Default 8.
    pub parallel_txlists: usize,
    /// How long after a commitment is accepted without its tx list the node waits for the tx
    /// list on gossip before it requests it from a peer (§6 "gossip cache, else
    /// `get_raw_txlist`"). The request duplicates a download already under way: a 1 MiB tx
    /// list crossing 50 Mbit/s links takes longer than a small commitment (testbed: with
    /// 750 ms, nodes fetched lists still on their way and their uplinks carried them twice).
    /// Default 4 s, two L2 slots.
    #[serde(with = "duration")]
    pub txlist_gossip_grace: Duration,
    /// Outbound requests of one protocol in flight to one peer. Must not exceed the peers'
    /// `max_concurrent_inbound_per_protocol` (default 2), or they refuse and penalise.
    /// Default 2.
    pub max_requests_per_peer: usize,
    /// Attempts per page or tx list before the round gives up. Default 5.
    pub max_attempts: usize,
    /// How long catch-up waits for a first peer before going live without one. Default 5 s.
    #[serde(with = "duration")]
    pub peer_wait: Duration,
    /// Pause before retrying a round that could not finish. Default 1 s.
    #[serde(with = "duration")]
    pub retry_backoff: Duration,
    /// When the local head has not moved for this long, catch-up asks peers for their heads
    /// again (§10.3), so a node that missed the last gossip message (and so sees no gap) still
    /// fetches it. One `get_head` per asked peer per period. Zero disables. Default 12 s (six
    /// 2 s L2 slots).
    #[serde(with = "duration")]
    pub stale_head_check: Duration,
    /// How long one page or tx-list fetch waits, in total, for peers' rate limits when the
    /// network layer holds its requests back (`RequestError::Throttled`: the strict reference
    /// allows 8 requests per protocol per 10 s). Default 11 s, one strict window and margin.
    #[serde(with = "duration")]
    pub max_pacing_wait: Duration,
    /// At start, how many commitments below and at the head are checked for tx lists that
    /// were owed when the node stopped (crash, storage failure, no peer had them); those are
    /// fetched again. Default 16 384 (about 9 hours of 2 s blocks). Zero disables.
    pub owed_txlist_scan_blocks: u64,
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            head_peers: 4,
            first_block_voters: 2,
            first_block_wait: Duration::from_secs(2),
            page_size: MAX_COMMITMENTS_PER_RESPONSE,
            parallel_pages: 8,
            write_queue_pages: 32,
            write_queue_bytes: 64 << 20,
            write_group_pages: 16,
            write_group_linger: Duration::from_millis(100),
            parallel_txlists: 8,
            txlist_gossip_grace: Duration::from_secs(4),
            max_requests_per_peer: 2,
            max_attempts: 5,
            peer_wait: Duration::from_secs(5),
            retry_backoff: Duration::from_secs(1),
            stale_head_check: Duration::from_secs(12),
            max_pacing_wait: Duration::from_secs(11),
            owed_txlist_scan_blocks: 16_384,
        }
    }
}

/// The trusted starting point when storage is empty.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Anchor {
    /// Block number the local chain is synced to; commitments start at `block_number + 1`.
    pub block_number: u64,
    /// `preconfirmation_hash` of that block if known; when `None`, the first commitment's
    /// parent hash is taken on trust (its signature and schedule are still checked).
    pub preconfirmation_hash: Option<B256>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        P2pSdkConfig::default().validate().unwrap();
    }

    #[test]
    fn zero_capacity_names_the_key() {
        let config = P2pSdkConfig {
            command_channel_capacity: 0,
            ..Default::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("command_channel_capacity"), "{err}");
    }

    #[test]
    fn page_size_above_cap_is_refused() {
        let mut config = P2pSdkConfig::default();
        config.chain.limits.max_commitments_per_response = 16;
        config.catchup.page_size = 17;
        assert!(config.validate().is_err());
    }

    #[test]
    fn round_trips_through_json() {
        let config = P2pSdkConfig::default();
        let json = serde_json::to_string(&config).unwrap();
        let back: P2pSdkConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back, config);
    }
}
