//! [`NodeConfig`]: everything `preconf-node run` needs, from three sources.
//!
//! Precedence, lowest first: built-in defaults, the TOML file (`--config`), `PRECONF_*`
//! environment variables, then command-line flags (clap's order: a flag beats its variable,
//! both beat the file). The tree starts as the serialised defaults; the file
//! is merged into it table by table (a table merges key by key, any other value, arrays
//! included, replaces), then variables and flags are applied as dotted-key overrides, and the
//! tree is deserialised once. So any key can be set on its own, from any source, without
//! spelling out the rest of its table. An error names the dotted key and the reason.
//!
//! Environment variables: the named ones in [`OVERRIDES`] (`PRECONF_DATA_DIR`, …), plus a
//! generic form for every key, `PRECONF__SECTION__KEY` (double underscores separate the path,
//! case-insensitive): `PRECONF__SDK__NETWORK__MAX_PEERS=80` sets `sdk.network.max_peers`.
//!
//! Durations are humantime strings (`"30s"`, `"500ms"`). Lists given as a flag or variable are comma-separated.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use p2p::P2pSdkConfig;
use preconfirmation_net::config::duration;
use preconfirmation_types::Address;
use serde::{Deserialize, Serialize};
use toml::Value;

use crate::config_docs;
use crate::error::NodeError;
pub use crate::logging::LogFormat;

/// Configuration of one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Directory of the node's database (`preconf.redb`) and libp2p key (`node.key`).
    pub data_dir: PathBuf,
    /// Log output format: `human` or `json`.
    pub log_format: LogFormat,
    /// Log filter in `RUST_LOG` syntax, e.g. `info,p2p=debug`; checked at start (a bad
    /// directive is a config error). It decides alone: `run` does not read `RUST_LOG` (it
    /// says so at start when `RUST_LOG` is set); set this key, `--log-filter` or
    /// `PRECONF_LOG_FILTER` instead.
    pub log_filter: String,
    /// How often a status line is logged at INFO (head, head age, peers, gossip mesh sizes,
    /// commitments published and received since the last line); `0s` turns it off. Default
    /// 60 s.
    #[serde(with = "duration")]
    pub log_status_interval: Duration,
    /// File holding this node's preconfer secp256k1 secret key as hex (mode 0600). When set,
    /// `preconf_publishCommitment` also accepts unsigned commitments and signs them. Can also
    /// be given as `PRECONF_PRECONFER_KEY` in the environment; never as a flag.
    pub preconfer_key_file: Option<PathBuf>,
    /// HTTP endpoints: `/metrics`, `/health`, `/ready`, `/status`.
    pub http: HttpConfig,
    /// JSON-RPC 2.0 over HTTP and WebSocket for sidecars.
    pub rpc: RpcConfig,
    /// The preconfer schedule (§4.2): who may sign which slot.
    pub lookahead: LookaheadConfig,
    /// The L1 the schedule is read from when `lookahead.source = "l1_whitelist"`.
    pub l1: L1Config,
    /// Local storage retention.
    pub storage: StorageConfig,
    /// The P2P SDK, its network layer and every protocol limit.
    pub sdk: P2pSdkConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./preconf-data"),
            log_format: LogFormat::Human,
            log_filter: "info".into(),
            log_status_interval: Duration::from_secs(60),
            preconfer_key_file: None,
            http: HttpConfig::default(),
            rpc: RpcConfig::default(),
            lookahead: LookaheadConfig::default(),
            l1: L1Config::default(),
            storage: StorageConfig::default(),
            sdk: P2pSdkConfig::default(),
        }
    }
}

/// The HTTP server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether the HTTP server runs.
    pub enabled: bool,
    /// Listen address; port 0 picks a free port. Default `127.0.0.1:9464`.
    pub addr: SocketAddr,
    /// Peers on this chain's gossip topics `/ready` requires. 0 makes a lone node ready: set
    /// it on the first node of a new network (a bootnode nobody has joined yet). Default 1.
    pub ready_min_peers: usize,
    /// Most blocks the local head may lag the best head a connected peer reported for
    /// `/ready` to answer 200. Peers report their head as a block number (`get_head`, asked at
    /// start, on gaps, on new peers and when the head stalls), so the lag is counted in
    /// blocks, not slots. A node ahead of its peers (the preconfer) is never behind. Default 8.
    pub ready_max_blocks_behind: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            ready_min_peers: 1,
            ready_max_blocks_behind: 8,
        }
    }
}

/// The JSON-RPC server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// Whether the JSON-RPC server runs.
    pub enabled: bool,
    /// Listen address (HTTP and WebSocket on one port); port 0 picks a free port. Default
    /// `127.0.0.1:8552`.
    pub addr: SocketAddr,
    /// Most simultaneous RPC connections. Default 64.
    pub max_connections: u32,
    /// Largest request body in bytes; must hold a hex-encoded tx list (2 × the tx list cap plus
    /// the envelope). Default 5 MiB.
    pub max_request_body_bytes: u32,
    /// Largest response body in bytes; must hold a hex tx list too. Default 5 MiB.
    pub max_response_body_bytes: u32,
    /// Most subscriptions one WebSocket connection may hold. Default 16.
    pub max_subscriptions_per_connection: u32,
    /// Items buffered per subscription before the slow subscriber is dropped. Default 1024.
    pub subscription_buffer: usize,
    /// Bytes of JSON buffered per subscription before the slow subscriber is dropped: a
    /// `rawTxLists` notification carries its tx list in hex (up to 4 MiB), so the item count
    /// alone would let one subscriber pin 4 GiB. Default 32 MiB (eight such notifications).
    pub subscription_buffer_bytes: usize,
    /// File holding the 32-byte hex secret of the JWTs (HS256, `iat` within 60 s, as for an
    /// execution client's engine API) that `preconf_publishCommitment` and
    /// `preconf_publishRawTxList` require when the node holds a preconfer key or this is set
    /// (created, mode 0600, if missing); read-only methods stay open. Unset: publishing is
    /// open without a preconfer key; with one, `<data_dir>/jwt.hex` (created at first start).
    pub jwt_secret_file: Option<PathBuf>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            addr: SocketAddr::from(([127, 0, 0, 1], 8552)),
            max_connections: 64,
            max_request_body_bytes: 5 << 20,
            max_response_body_bytes: 5 << 20,
            max_subscriptions_per_connection: 16,
            subscription_buffer: 1024,
            subscription_buffer_bytes: 32 << 20,
            jwt_secret_file: None,
        }
    }
}

/// Where the preconfer schedule comes from.
///
/// `static`: a round robin from this file — slot `s` (of `slot_duration_secs` from
/// `genesis_timestamp`) belongs to `preconfers[(s / slots_per_window) % len]` (devnets).
/// `l1_whitelist`: read from Taiko's `PreconfWhitelist` contract on L1 (see [`L1Config`]):
/// one window per L1 epoch, L2 slots of `slot_duration_secs` from the beacon genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LookaheadConfig {
    /// Schedule source: `static` (this table's round robin) or `l1_whitelist` (the `[l1]`
    /// table). Default `static`.
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
}

impl ScheduleSource {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Static => "static",
            Self::L1Whitelist => "l1_whitelist",
        }
    }
}

/// 1606824023: the Ethereum mainnet beacon chain's genesis time (unix seconds).
pub const MAINNET_BEACON_GENESIS_TIMESTAMP: u64 = 1_606_824_023;

/// The L1 node and contract the schedule is read from (`lookahead.source = "l1_whitelist"`).
///
/// Every epoch (`slots_per_epoch` L1 slots of `seconds_per_slot` from
/// `beacon_genesis_timestamp`) has one operator, whose sequencer address signs every L2 slot
/// of the epoch; its `submissionWindowEnd` is the first second after the epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// L1 execution node JSON-RPC over HTTP(S). Default `http://127.0.0.1:8545`.
    pub rpc_url: String,
    /// Address of the `PreconfWhitelist` contract. Required for `l1_whitelist`.
    pub whitelist_address: Address,
    /// Unix second of the beacon chain's genesis (slot 0). Default 1606824023 (mainnet).
    pub beacon_genesis_timestamp: u64,
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
}

impl Default for L1Config {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".into(),
            whitelist_address: Address::ZERO,
            beacon_genesis_timestamp: MAINNET_BEACON_GENESIS_TIMESTAMP,
            seconds_per_slot: 12,
            slots_per_epoch: 32,
            poll_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(3),
            max_backoff: Duration::from_secs(30),
            remembered_epochs: 64,
            past_epochs_per_poll: 8,
        }
    }
}

impl L1Config {
    /// Seconds per L1 epoch.
    pub fn epoch_secs(&self) -> u64 {
        self.seconds_per_slot.saturating_mul(self.slots_per_epoch)
    }
}

/// Storage retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Keep this many blocks below the head; older commitments and tx lists are pruned. 0
    /// keeps everything. Default 0.
    pub retain_blocks: u64,
    /// How often pruning runs. Default 60 s.
    #[serde(with = "duration")]
    pub prune_interval: Duration,
    /// Most blocks one pruning transaction removes: a large prune runs as several short
    /// transactions, so the durable writer (gossip, catch-up) never waits for a whole prune.
    /// Default 1024.
    pub prune_chunk_blocks: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            retain_blocks: 0,
            prune_interval: Duration::from_secs(60),
            prune_chunk_blocks: 1024,
        }
    }
}

/// A setting that has a flag and a named environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Override {
    /// Dotted config key.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
}

/// The settings with their own flag (see `preconf-node run --help`) and environment variable.
pub const OVERRIDES: &[Override] = &[
    Override {
        key: "data_dir",
        env: "PRECONF_DATA_DIR",
    },
    Override {
        key: "log_format",
        env: "PRECONF_LOG_FORMAT",
    },
    Override {
        key: "log_filter",
        env: "PRECONF_LOG_FILTER",
    },
    Override {
        key: "preconfer_key_file",
        env: "PRECONF_PRECONFER_KEY_FILE",
    },
    Override {
        key: "http.addr",
        env: "PRECONF_HTTP_ADDR",
    },
    Override {
        key: "rpc.addr",
        env: "PRECONF_RPC_ADDR",
    },
    Override {
        key: "sdk.chain.chain_id",
        env: "PRECONF_CHAIN_ID",
    },
    Override {
        key: "sdk.network.listen_addr",
        env: "PRECONF_LISTEN_ADDR",
    },
    Override {
        key: "sdk.network.static_peers",
        env: "PRECONF_STATIC_PEERS",
    },
    Override {
        key: "sdk.network.bootnodes",
        env: "PRECONF_BOOTNODES",
    },
    Override {
        key: "lookahead.preconfers",
        env: "PRECONF_PRECONFERS",
    },
];

/// Prefix of the generic per-key environment variables (`PRECONF__SDK__NETWORK__MAX_PEERS`).
pub const GENERIC_ENV_PREFIX: &str = "PRECONF__";

/// The config keys `run --nat VALUE` sets, as (dotted key, raw value):
/// - `extip:<IP>` (or `extip:<IPv4>,<IPv6>`): the ENR advertises this public address
///   (`sdk.network.enr.address` / `address6`) and discv5's PONG votes never replace it;
/// - `any` (the default, sets nothing): the ENR takes the listen address, or on a wildcard
///   listen the address this host routes from, and discv5's PONG votes correct it;
/// - `none`: as `any` without the PONG votes (`sdk.network.enr.auto_update = false`).
pub fn nat_overrides(value: &str) -> Result<Vec<(String, String)>, NodeError> {
    let bad = |reason: String| NodeError::Config {
        key: "--nat".into(),
        reason,
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("any") {
        return Ok(Vec::new());
    }
    if value.eq_ignore_ascii_case("none") {
        return Ok(vec![("sdk.network.enr.auto_update".into(), "false".into())]);
    }
    let Some(ips) = value.strip_prefix("extip:") else {
        return Err(bad(format!("{value:?}: expected extip:<IP>, any or none")));
    };
    let mut out = Vec::new();
    for ip in ips.split(',').map(str::trim) {
        let key = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => "sdk.network.enr.address",
            Ok(std::net::IpAddr::V6(_)) => "sdk.network.enr.address6",
            Err(_) => return Err(bad(format!("{ip:?} is not an IP address"))),
        };
        if out.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(bad(format!("two addresses of one IP version in {value:?}")));
        }
        out.push((key.to_string(), ip.to_string()));
    }
    Ok(out)
}

impl NodeConfig {
    /// Loads the configuration: defaults < `file` < `env` < `flags` (dotted key, raw value).
    pub fn load(
        file: Option<&Path>,
        flags: &[(String, String)],
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, NodeError> {
        let defaults = Value::try_from(NodeConfig::default()).map_err(|e| NodeError::Config {
            key: "<defaults>".into(),
            reason: e.to_string(),
        })?;
        let mut tree = match &defaults {
            Value::Table(table) => table.clone(),
            _ => {
                return Err(NodeError::Config {
                    key: "<defaults>".into(),
                    reason: "the defaults do not serialise to a table".into(),
                })
            }
        };
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| NodeError::io(path, e))?;
            let file_tree = text.parse::<toml::Table>().map_err(|e| NodeError::Config {
                key: path.display().to_string(),
                reason: e.message().to_string(),
            })?;
            merge(&mut tree, file_tree);
        }
        for (key, raw) in env_overrides(env)? {
            set_dotted(&mut tree, &defaults, &key, &raw)?;
        }
        for (key, raw) in flags {
            set_dotted(&mut tree, &defaults, key, raw)?;
        }
        config_docs::check_known_keys(&tree)?;
        let config: NodeConfig =
            serde_path_to_error::deserialize(Value::Table(tree)).map_err(|e| {
                NodeError::Config {
                    key: e.path().to_string(),
                    // toml appends "in `key`" on further lines; the key is already named.
                    reason: e
                        .inner()
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                }
            })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), NodeError> {
        let bad = |key: &str, reason: &str| {
            Err(NodeError::Config {
                key: key.into(),
                reason: reason.into(),
            })
        };
        crate::logging::parse_filter("log_filter", &self.log_filter)?;
        if self.lookahead.slot_duration_secs == 0 {
            return bad("lookahead.slot_duration_secs", "must be positive");
        }
        match self.lookahead.source {
            ScheduleSource::Static => {
                if self.lookahead.preconfers.is_empty() {
                    return bad(
                        "lookahead.preconfers",
                        "no preconfer addresses: set the schedule's addresses (rotation order)",
                    );
                }
                if self.lookahead.slots_per_window == 0 {
                    return bad("lookahead.slots_per_window", "must be positive");
                }
            }
            ScheduleSource::L1Whitelist => {
                if self.l1.whitelist_address == Address::ZERO {
                    return bad(
                        "l1.whitelist_address",
                        "lookahead.source = \"l1_whitelist\" needs the contract's address",
                    );
                }
                if !(self.l1.rpc_url.starts_with("http://")
                    || self.l1.rpc_url.starts_with("https://"))
                {
                    return bad("l1.rpc_url", "must be an http:// or https:// URL");
                }
                let epoch = self.l1.epoch_secs();
                if epoch == 0 || !epoch.is_multiple_of(self.lookahead.slot_duration_secs) {
                    return bad(
                        "l1.slots_per_epoch",
                        "an L1 epoch (slots_per_epoch × seconds_per_slot) must be a positive \
                         multiple of lookahead.slot_duration_secs",
                    );
                }
                if self.l1.poll_interval.is_zero()
                    || self.l1.request_timeout.is_zero()
                    || self.l1.remembered_epochs < 2
                {
                    return bad(
                        "l1",
                        "poll_interval and request_timeout must be positive, \
                         remembered_epochs at least 2",
                    );
                }
            }
        }
        if self.rpc.max_connections == 0
            || self.rpc.subscription_buffer == 0
            || self.rpc.subscription_buffer_bytes == 0
        {
            return bad(
                "rpc",
                "max_connections and subscription_buffer must be positive",
            );
        }
        let txlist_hex = 2 * self.sdk.chain.limits.max_txlist_bytes as u64 + 1024;
        if u64::from(self.rpc.max_request_body_bytes) < txlist_hex {
            return bad(
                "rpc.max_request_body_bytes",
                &format!("must hold a hex tx list of the cap: at least {txlist_hex}"),
            );
        }
        if self.storage.prune_chunk_blocks == 0 {
            return bad("storage.prune_chunk_blocks", "must be positive");
        }
        if self.storage.prune_interval.is_zero() {
            return bad("storage.prune_interval", "must be positive");
        }
        self.sdk.validate().map_err(|e| NodeError::Config {
            key: "sdk".into(),
            reason: e.to_string(),
        })
    }

    /// The full default configuration as TOML with a comment above every key.
    pub fn default_toml() -> String {
        config_docs::commented_default()
    }

    /// The ~20 keys an operator sets, at their defaults, as TOML with a note on each.
    pub fn minimal_toml() -> String {
        config_docs::minimal()
    }

    /// What this configuration runs, one `name: value` per line (`config check`): the settings
    /// an operator most often gets wrong, shown so they can be read back.
    pub fn summary(&self) -> String {
        let data_dir =
            std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        let schedule = match self.lookahead.source {
            ScheduleSource::Static => format!(
                "static, {} preconfer(s), {} slot(s) of {} s per window",
                self.lookahead.preconfers.len(),
                self.lookahead.slots_per_window,
                self.lookahead.slot_duration_secs
            ),
            ScheduleSource::L1Whitelist => format!(
                "l1_whitelist, contract {} on {}",
                self.l1.whitelist_address, self.l1.rpc_url
            ),
        };
        let rpc = if self.rpc.enabled {
            self.rpc.addr.to_string()
        } else {
            "off".into()
        };
        [
            format!("chain_id: {}", self.sdk.chain.chain_id),
            format!("data_dir: {}", data_dir.display()),
            format!("listen: {}", self.sdk.network.listen_addr),
            format!(
                "peers: {} static, {} bootnode(s), discovery {}",
                self.sdk.network.static_peers.len(),
                self.sdk.network.bootnodes.len(),
                if self.sdk.network.discovery_enabled {
                    "on"
                } else {
                    "off"
                }
            ),
            format!("schedule: {schedule}"),
            format!("http: {}", self.http.addr),
            format!("rpc: {rpc}"),
            format!(
                "preconfer key: {}",
                match &self.preconfer_key_file {
                    Some(path) => path.display().to_string(),
                    None => "none (follower; PRECONF_PRECONFER_KEY is read at start)".into(),
                }
            ),
        ]
        .join("\n")
    }
}

/// The overrides found in `env`: named variables first, then generic ones.
fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, NodeError> {
    let mut named = Vec::new();
    let mut generic = Vec::new();
    for (name, value) in env {
        if let Some(o) = OVERRIDES.iter().find(|o| o.env == name) {
            named.push((o.key.to_string(), value));
        } else if let Some(path) = name.strip_prefix(GENERIC_ENV_PREFIX) {
            let key = path
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(NodeError::Config {
                    key: name,
                    reason: "empty key segment".into(),
                });
            }
            generic.push((key, value));
        }
    }
    named.sort();
    generic.sort();
    named.extend(generic);
    Ok(named)
}

/// Merges `over` into `base`: a table present in both merges key by key (recursively); any
/// other value of `over`, arrays included, replaces the one in `base`. Keys only `over` has are
/// kept, so unknown keys are still there for [`config_docs::check_known_keys`] to refuse.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match value {
            Value::Table(over_table) => match base.get_mut(&key) {
                Some(Value::Table(base_table)) => merge(base_table, over_table),
                _ => {
                    base.insert(key, Value::Table(over_table));
                }
            },
            other => {
                base.insert(key, other);
            }
        }
    }
}

/// Sets `key` (dotted) in `tree` to `raw`, typed like the default value at that key: strings stay
/// strings, lists are split on commas, anything else is parsed as a TOML value.
fn set_dotted(
    tree: &mut toml::Table,
    defaults: &Value,
    key: &str,
    raw: &str,
) -> Result<(), NodeError> {
    let parts: Vec<&str> = key.split('.').collect();
    let default = parts.iter().try_fold(defaults, |v, p| v.get(p));
    let value = match default {
        None if is_optional_text(key) => Value::String(raw.to_string()),
        _ => typed_value(default, raw),
    };
    let (last, parents) = parts.split_last().ok_or_else(|| NodeError::Config {
        key: key.into(),
        reason: "empty key".into(),
    })?;
    let mut table = tree;
    for part in parents {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Default::default()));
        table = entry.as_table_mut().ok_or_else(|| NodeError::Config {
            key: key.into(),
            reason: format!("`{part}` is not a table"),
        })?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Whether `key` is an `Option` of a type written as a string (a path, a hash): such a key is
/// absent from the defaults, so it cannot be typed from them, and parsing its raw value as TOML
/// would turn `0x00…01` or `123` into an integer.
fn is_optional_text(key: &str) -> bool {
    const TEXT: &[&str] = &[
        "String",
        "PathBuf",
        "B256",
        "Address",
        "Multiaddr",
        "SocketAddr",
    ];
    config_docs::field_type(key)
        .and_then(|ty| {
            ty.strip_prefix("Option<")
                .and_then(|t| t.strip_suffix('>'))
                .map(|inner| TEXT.contains(&inner))
        })
        .unwrap_or(false)
}

fn typed_value(default: Option<&Value>, raw: &str) -> Value {
    match default {
        Some(Value::String(_)) => Value::String(raw.to_string()),
        Some(Value::Array(items)) => {
            let element = items.first();
            Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| match element {
                        None | Some(Value::String(_)) => Value::String(s.to_string()),
                        other => typed_value(other, s),
                    })
                    .collect(),
            )
        }
        _ => format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preconfers_toml() -> &'static str {
        "[lookahead]\npreconfers = [\"0x00000000000000000000000000000000000000aa\"]\n"
    }

    fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("node.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn nat_extip_sets_the_enr_address_and_the_defaults_listen_everywhere() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, preconfers_toml());
        let load = |flags: Vec<(String, String)>| {
            NodeConfig::load(Some(&path), &flags, Vec::<(String, String)>::new())
        };
        let c = load(Vec::new()).unwrap();
        assert_eq!(
            c.sdk.network.listen_addr.to_string(),
            "/ip4/0.0.0.0/tcp/9222"
        );
        assert_eq!(c.sdk.network.discv5_port, None, "UDP takes the TCP port");
        assert_eq!(c.http.addr.ip().to_string(), "127.0.0.1");
        assert_eq!(c.rpc.addr.ip().to_string(), "127.0.0.1");
        assert_eq!(c.sdk.network.enr.address, None);

        let c = load(nat_overrides("extip:203.0.113.9").unwrap()).unwrap();
        assert_eq!(
            c.sdk.network.enr.address,
            Some("203.0.113.9".parse().unwrap())
        );
        assert!(!c.sdk.network.enr.votes_update());
        let c = load(nat_overrides("extip:203.0.113.9,2001:db8::9").unwrap()).unwrap();
        assert_eq!(
            c.sdk.network.enr.address6,
            Some("2001:db8::9".parse().unwrap())
        );
        let c = load(nat_overrides("none").unwrap()).unwrap();
        assert!(!c.sdk.network.enr.auto_update);
        assert!(nat_overrides("any").unwrap().is_empty());
        for bad in [
            "extip:",
            "extip:host.example",
            "upnp",
            "extip:1.2.3.4,5.6.7.8",
        ] {
            let err = nat_overrides(bad).unwrap_err().to_string();
            assert!(err.contains("--nat"), "{bad}: {err}");
        }
        // The ENR keys are checked at load: 0.0.0.0 is nobody's address.
        let err = load(nat_overrides("extip:0.0.0.0").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("enr.address 0.0.0.0"), "{err}");
        let err = load(vec![("sdk.network.enr.tcp_port".into(), "0".into())])
            .unwrap_err()
            .to_string();
        assert!(err.contains("enr.tcp_port"), "{err}");
    }

    #[test]
    fn file_then_env_then_flag() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &format!(
                "{}[sdk.network]\nmax_peers = 10\ntarget_peers = 11\nmax_pending_incoming = 12\n",
                preconfers_toml()
            ),
        );
        let flags = vec![(
            "sdk.network.max_pending_incoming".to_string(),
            "22".to_string(),
        )];
        let env = vec![
            (
                "PRECONF__SDK__NETWORK__TARGET_PEERS".to_string(),
                "31".to_string(),
            ),
            (
                "PRECONF__SDK__NETWORK__MAX_PENDING_INCOMING".to_string(),
                "32".to_string(),
            ),
            ("UNRELATED".to_string(), "x".to_string()),
        ];
        let config = NodeConfig::load(Some(&path), &flags, env).unwrap();
        assert_eq!(config.sdk.network.max_peers, 10, "file beats default");
        assert_eq!(config.sdk.network.target_peers, 31, "env beats file");
        assert_eq!(
            config.sdk.network.max_pending_incoming, 22,
            "flag beats env"
        );
    }

    #[test]
    fn named_env_and_typed_values() {
        let env = vec![
            ("PRECONF_HTTP_ADDR".to_string(), "127.0.0.1:1234".to_string()),
            (
                "PRECONF_PRECONFERS".to_string(),
                "0x00000000000000000000000000000000000000aa, 0x00000000000000000000000000000000000000bb"
                    .to_string(),
            ),
            ("PRECONF_DATA_DIR".to_string(), "/tmp/x".to_string()),
        ];
        let config = NodeConfig::load(None, &[], env).unwrap();
        assert_eq!(config.http.addr, "127.0.0.1:1234".parse().unwrap());
        assert_eq!(config.lookahead.preconfers.len(), 2);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_value_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &format!("{}[sdk.network]\nmax_peers = \"many\"\n", preconfers_toml()),
        );
        let err = NodeConfig::load(Some(&path), &[], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("sdk.network.max_peers"), "{err}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            &format!("{}[sdk.network]\nmax_peer = 3\n", preconfers_toml()),
        );
        let err = NodeConfig::load(Some(&path), &[], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("sdk.network.max_peer"), "{err}");
    }

    #[test]
    fn missing_preconfers_is_a_clear_error() {
        let err = NodeConfig::load(None, &[], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("lookahead.preconfers"), "{err}");
    }

    #[test]
    fn broken_toml_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "[sdk\nmax = ");
        assert!(matches!(
            NodeConfig::load(Some(&path), &[], Vec::new()),
            Err(NodeError::Config { .. })
        ));
    }

    #[test]
    fn file_tables_merge_and_other_values_replace() {
        let mut base: toml::Table = "a = { x = 1, y = [1, 2], t = { z = 1 } }\nb = 1"
            .parse()
            .unwrap();
        let over: toml::Table = "a = { y = [3], t = 5 }\nc = { d = 1 }".parse().unwrap();
        merge(&mut base, over);
        let want: toml::Table = "a = { x = 1, y = [3], t = 5 }\nb = 1\nc = { d = 1 }"
            .parse()
            .unwrap();
        assert_eq!(base, want);
    }

    #[test]
    fn unknown_key_from_a_flag_or_variable_is_refused() {
        let flags = vec![("sdk.network.max_peer".to_string(), "3".to_string())];
        let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
        assert_eq!(err.to_string(), "config: sdk.network.max_peer: unknown key");
        let env = vec![("PRECONF__SDK__BOGUS".to_string(), "1".to_string())];
        let err = NodeConfig::load(None, &[], env).unwrap_err();
        assert_eq!(err.to_string(), "config: sdk.bogus: unknown key");
    }

    #[test]
    fn one_setting_has_one_key() {
        // The network's chain id and caps are the SDK's chain's: a second key for them would be
        // accepted and silently overwritten at start.
        for key in [
            "sdk.network.chain_id",
            "sdk.network.limits.max_txlist_bytes",
        ] {
            let flags = vec![(key.to_string(), "5".to_string())];
            let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
            assert!(err.to_string().contains("unknown key"), "{key}: {err}");
        }
        let flags = vec![
            ("sdk.chain.chain_id".to_string(), "5".to_string()),
            (
                "lookahead.preconfers".to_string(),
                "0x00000000000000000000000000000000000000aa".to_string(),
            ),
        ];
        let config = NodeConfig::load(None, &flags, Vec::new()).unwrap();
        assert_eq!(config.sdk.effective_network().chain_id, 5);
    }

    #[test]
    fn durations_are_written_with_a_unit() {
        let flags = vec![
            ("l1.poll_interval".to_string(), "1m 30s".to_string()),
            (
                "lookahead.preconfers".to_string(),
                "0x00000000000000000000000000000000000000aa".to_string(),
            ),
        ];
        let config = NodeConfig::load(None, &flags, Vec::new()).unwrap();
        assert_eq!(config.l1.poll_interval, Duration::from_secs(90));
        let flags = vec![("l1.poll_interval".to_string(), "2000".to_string())];
        let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
        assert!(
            err.to_string().starts_with("config: l1.poll_interval:")
                && err.to_string().contains("500ms"),
            "{err}"
        );
    }

    #[test]
    fn a_lone_key_keeps_the_rest_of_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let partial = write(
            &dir,
            &format!("{}[sdk.chain]\nchain_id = 5\n", preconfers_toml()),
        );
        let other = tempfile::tempdir().unwrap();
        let full = write(&other, preconfers_toml());
        let chain_id = || vec![("sdk.chain.chain_id".to_string(), "5".to_string())];
        for (source, config) in [
            ("file", NodeConfig::load(Some(&partial), &[], Vec::new())),
            (
                "flag",
                NodeConfig::load(Some(&full), &chain_id(), Vec::new()),
            ),
            (
                "env",
                NodeConfig::load(
                    Some(&full),
                    &[],
                    vec![("PRECONF_CHAIN_ID".to_string(), "5".to_string())],
                ),
            ),
        ] {
            let config = config.unwrap_or_else(|e| panic!("{source}: {e}"));
            let mut want = NodeConfig::default().sdk.chain;
            want.chain_id = 5;
            assert_eq!(config.sdk.chain, want, "{source}");
        }
    }

    #[test]
    fn optional_text_keys_stay_strings() {
        let hash = format!("0x{}1", "0".repeat(63));
        let flags = vec![
            ("sdk.anchor.preconfirmation_hash".to_string(), hash.clone()),
            (
                "lookahead.preconfers".to_string(),
                "0x0000000000000000000000000000000000000011".to_string(),
            ),
        ];
        let env = vec![("PRECONF_PRECONFER_KEY_FILE".to_string(), "123".to_string())];
        let config = NodeConfig::load(None, &flags, env).unwrap();
        assert_eq!(
            config.sdk.anchor.preconfirmation_hash,
            Some(hash.parse().unwrap())
        );
        assert_eq!(config.preconfer_key_file, Some(PathBuf::from("123")));
    }

    /// Base of every case: the one key without a usable default (`validate` refuses an empty
    /// schedule), given in the file. Digits only, so the checksummed form is the same text.
    const BASE_PRECONFER: &str = "0x0000000000000000000000000000000000000011";

    /// Keys whose new value cannot be derived from the default's type, as TOML literals: an
    /// enum, arrays that are empty by default, and `Option`s (absent from the defaults).
    const SPECIAL: &[(&str, &str)] = &[
        ("log_format", r#""json""#),
        ("preconfer_key_file", r#""/tmp/preconfer.key""#),
        ("rpc.jwt_secret_file", r#""/tmp/jwt.hex""#),
        (
            "lookahead.preconfers",
            r#"["0x0000000000000000000000000000000000000022"]"#,
        ),
        ("sdk.network.static_peers", r#"["/ip4/127.0.0.1/tcp/9000"]"#),
        ("sdk.network.bootnodes", r#"["enr:-test"]"#),
        // The discv5 port and the ENR's address and ports are unset by default.
        ("sdk.network.discv5_port", "9300"),
        ("sdk.network.enr.address", r#""203.0.113.9""#),
        ("sdk.network.enr.address6", r#""2001:db8::9""#),
        ("sdk.network.enr.tcp_port", "30303"),
        ("sdk.network.enr.udp_port", "30304"),
        // Up: the default is the smallest valid frame cap (the largest message + framing).
        ("sdk.network.gossip.max_transmit_size", "2098213"),
        // A share between 0 and 1 whose default is 0: up, not down.
        ("sdk.network.gossip.gossip_factor", "0.25"),
        // Leading zeros: a raw `--set`/env value must stay a string, not become the integer 1.
        (
            "sdk.anchor.preconfirmation_hash",
            r#""0x0000000000000000000000000000000000000000000000000000000000000001""#,
        ),
    ];

    /// Keys no single override can change to a valid config, so they are not covered.
    const NOT_ALONE: &[&str] = &[
        // The default is the protocol maximum (higher is refused) and equals the default
        // `sdk.catchup.page_size`, which must not exceed it (lower is refused).
        "sdk.chain.limits.max_commitments_per_response",
        // The only other value, `l1_whitelist`, also needs `l1.whitelist_address` (refused
        // without it, as `l1_whitelist_needs_the_contract` checks).
        "lookahead.source",
    ];

    /// A valid value different from `default`, derived from its type.
    fn new_value(key: &str, default: Option<&Value>) -> Value {
        if let Some((_, literal)) = SPECIAL.iter().find(|(k, _)| *k == key) {
            let mut t: toml::Table = format!("v = {literal}").parse().unwrap();
            return t.remove("v").unwrap();
        }
        match default {
            Some(Value::Boolean(b)) => Value::Boolean(!b),
            // Down rather than up: several integers are capped at their default. 0 and 1 go up,
            // as many must be positive.
            Some(Value::Integer(i)) => Value::Integer(if *i > 1 { i - 1 } else { i + 1 }),
            // Durations move by one millisecond, down where they can (as integers do).
            Some(Value::String(s)) if duration::parse(s).is_ok() => {
                let d = duration::parse(s).unwrap();
                let ms = Duration::from_millis(1);
                let moved = if d > ms { d - ms } else { d + ms };
                Value::String(humantime::format_duration(moved).to_string())
            }
            // Scaling keeps signs and the order of the scoring thresholds.
            Some(Value::Float(f)) => Value::Float(if *f == 0.0 { -0.5 } else { f * 0.75 }),
            Some(Value::String(s)) => Value::String(bump(s)),
            other => panic!("{key}: no value derivable from {other:?}; add it to SPECIAL"),
        }
    }

    /// `s` with its last digit incremented (ports, ids, hex), else with `x` appended (paths).
    fn bump(s: &str) -> String {
        let mut out = s.to_string();
        let last = out.pop().unwrap();
        match last.to_digit(16) {
            Some(d) if last.is_ascii_digit() => {
                out.push(char::from_digit((d + 1) % 10, 10).unwrap())
            }
            Some(d) if s.starts_with("0x") => out.push(char::from_digit((d + 1) % 16, 16).unwrap()),
            _ => {
                out.push(last);
                out.push('x');
            }
        }
        out
    }

    /// The raw text of `value` as a flag or variable takes it.
    fn raw(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Array(items) => items.iter().map(raw).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }

    fn lookup<'a>(tree: &'a toml::Table, key: &str) -> Option<&'a Value> {
        let (last, parents) = key
            .rsplit_once('.')
            .map_or((key, None), |(p, l)| (l, Some(p)));
        let table = match parents {
            None => tree,
            Some(p) => p
                .split('.')
                .try_fold(tree, |t, part| t.get(part)?.as_table())?,
        };
        table.get(last)
    }

    fn insert(tree: &mut toml::Table, key: &str, value: Value) {
        let parts: Vec<&str> = key.split('.').collect();
        let (last, parents) = parts.split_last().unwrap();
        let mut table = tree;
        for part in parents {
            table = table
                .entry(part.to_string())
                .or_insert_with(|| Value::Table(Default::default()))
                .as_table_mut()
                .unwrap();
        }
        table.insert(last.to_string(), value);
    }

    fn leaves(table: &toml::Table, path: &str, out: &mut Vec<(String, Value)>) {
        for (key, value) in table {
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            match value {
                Value::Table(t) => leaves(t, &full, out),
                v => out.push((full, v.clone())),
            }
        }
    }

    /// One load: source name, file, flags, environment.
    type Case<'a> = (
        String,
        &'a Path,
        Vec<(String, String)>,
        Vec<(String, String)>,
    );

    #[test]
    fn l1_whitelist_needs_the_contract() {
        let mut config = NodeConfig::default();
        config.lookahead.source = ScheduleSource::L1Whitelist;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("l1.whitelist_address"), "{err}");
        config.l1.whitelist_address = Address::repeat_byte(1);
        assert!(config.validate().is_ok(), "no static preconfers needed");
        config.lookahead.slot_duration_secs = 5;
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.contains("l1.slots_per_epoch"),
            "384 s is no multiple of 5: {err}"
        );
        config.lookahead.slot_duration_secs = 2;
        config.l1.rpc_url = "127.0.0.1:8545".into();
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("l1.rpc_url"));
    }

    /// Sets every leaf key on its own from every source (a file holding that key, plus
    /// `BASE_PRECONFER` in its own table; the named flag; `--set`; the named and the generic
    /// variable) and checks that it loads, that the key has the new value and that every other
    /// key keeps its default. A key that cannot be covered fails the test unless it is listed,
    /// with its reason, in `NOT_ALONE`.
    #[test]
    fn every_config_key_overrides_alone() {
        let Ok(Value::Table(defaults)) = Value::try_from(NodeConfig::default()) else {
            panic!("defaults serialise to a table")
        };
        let preconfers = Value::Array(vec![Value::String(BASE_PRECONFER.into())]);
        let mut base = toml::Table::new();
        insert(&mut base, "lookahead.preconfers", preconfers.clone());
        let mut base_tree = defaults.clone();
        insert(&mut base_tree, "lookahead.preconfers", preconfers);

        let keys = config_docs::leaf_keys();
        let mut default_leaves = Vec::new();
        leaves(&defaults, "", &mut default_leaves);
        assert!(keys.len() > 40, "expected the whole tree, got {keys:?}");
        for (key, _) in &default_leaves {
            assert!(
                keys.contains(key),
                "{key} is a default key but not documented"
            );
        }
        for key in NOT_ALONE
            .iter()
            .chain(SPECIAL.iter().map(|(k, _)| k))
            .chain(OVERRIDES.iter().map(|o| &o.key))
        {
            assert!(keys.iter().any(|k| k == key), "stale exception {key}");
        }

        let dir = tempfile::tempdir().unwrap();
        let base_path = write(&dir, &toml::to_string(&base).unwrap());
        let base_path = base_path.as_path();
        let mut covered = 0;
        let mut loads = 0;
        for key in &keys {
            if NOT_ALONE.contains(&key.as_str()) {
                continue;
            }
            let value = new_value(key, lookup(&defaults, key));
            assert_ne!(
                lookup(&base_tree, key),
                Some(&value),
                "{key}: value not new"
            );
            let mut expected = base_tree.clone();
            insert(&mut expected, key, value.clone());

            let mut file = if key == "lookahead.preconfers" {
                toml::Table::new()
            } else {
                base.clone()
            };
            insert(&mut file, key, value.clone());
            let file_path = dir.path().join("key.toml");
            std::fs::write(&file_path, toml::to_string(&file).unwrap()).unwrap();
            let file_path = file_path.as_path();

            let pair = || vec![(key.clone(), raw(&value))];
            let generic = format!(
                "{GENERIC_ENV_PREFIX}{}",
                key.replace('.', "__").to_uppercase()
            );
            let mut cases: Vec<Case<'_>> = vec![
                ("file".into(), file_path, vec![], vec![]),
                ("--set".into(), base_path, pair(), vec![]),
                (
                    generic.clone(),
                    base_path,
                    vec![],
                    vec![(generic, raw(&value))],
                ),
            ];
            if let Some(o) = OVERRIDES.iter().find(|o| o.key == key) {
                // The binary turns the named flag into this very pair (main.rs `overrides`).
                cases.push(("named flag".into(), base_path, pair(), vec![]));
                cases.push((
                    o.env.into(),
                    base_path,
                    vec![],
                    vec![(o.env.into(), raw(&value))],
                ));
            }
            for (source, path, flags, env) in cases {
                let config = NodeConfig::load(Some(path), &flags, env)
                    .unwrap_or_else(|e| panic!("{key} = {value} from {source}: {e}"));
                let Ok(Value::Table(got)) = Value::try_from(&config) else {
                    panic!("config serialises to a table")
                };
                assert_eq!(lookup(&got, key), Some(&value), "{key} from {source}");
                let mut got_leaves = Vec::new();
                leaves(&got, "", &mut got_leaves);
                let mut want_leaves = Vec::new();
                leaves(&expected, "", &mut want_leaves);
                let changed: Vec<_> = got_leaves
                    .iter()
                    .filter(|l| !want_leaves.contains(l))
                    .chain(want_leaves.iter().filter(|l| !got_leaves.contains(l)))
                    .collect();
                assert!(
                    changed.is_empty(),
                    "{key} from {source} changed others: {changed:?}"
                );
                loads += 1;
            }
            covered += 1;
        }
        assert_eq!(
            covered,
            keys.len() - NOT_ALONE.len(),
            "every key but the commented exceptions is covered"
        );
        // file, --set and the generic variable for every key; the named flag and variable
        // for each of OVERRIDES.
        assert_eq!(
            loads,
            3 * covered + 2 * OVERRIDES.len(),
            "every source was loaded"
        );
    }
}
