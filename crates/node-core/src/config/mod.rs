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
use serde::{Deserialize, Serialize};
use toml::Value;

use crate::error::NodeError;
mod docs;
mod overrides;
#[cfg(test)]
mod tests;

pub use crate::logging::LogFormat;
pub use crate::schedule::{
    L1Config, LookaheadConfig, ScheduleSource, MAINNET_BEACON_GENESIS_TIMESTAMP,
};
pub use overrides::{nat_overrides, Override, GENERIC_ENV_PREFIX, OVERRIDES};

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
            overrides::merge(&mut tree, file_tree);
        }
        for (key, raw) in overrides::env_overrides(env)? {
            overrides::set_dotted(&mut tree, &defaults, &key, &raw)?;
        }
        for (key, raw) in flags {
            overrides::set_dotted(&mut tree, &defaults, key, raw)?;
        }
        docs::check_known_keys(&tree)?;
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
        crate::logging::parse_filter("log_filter", &self.log_filter)?;
        crate::schedule::validate(&self.lookahead, &self.l1)?;
        if self.rpc.max_connections == 0
            || self.rpc.subscription_buffer == 0
            || self.rpc.subscription_buffer_bytes == 0
        {
            return Err(NodeError::config(
                "rpc",
                "max_connections and subscription_buffer must be positive",
            ));
        }
        let txlist_hex = 2 * self.sdk.chain.limits.max_txlist_bytes as u64 + 1024;
        if u64::from(self.rpc.max_request_body_bytes) < txlist_hex {
            return Err(NodeError::config(
                "rpc.max_request_body_bytes",
                format!("must hold a hex tx list of the cap: at least {txlist_hex}"),
            ));
        }
        if self.storage.prune_chunk_blocks == 0 {
            return Err(NodeError::config(
                "storage.prune_chunk_blocks",
                "must be positive",
            ));
        }
        if self.storage.prune_interval.is_zero() {
            return Err(NodeError::config(
                "storage.prune_interval",
                "must be positive",
            ));
        }
        self.sdk.validate().map_err(|e| NodeError::Config {
            key: "sdk".into(),
            reason: e.to_string(),
        })
    }

    /// The full default configuration as TOML with a comment above every key.
    pub fn default_toml() -> String {
        docs::commented_default()
    }

    /// The ~20 keys an operator sets, at their defaults, as TOML with a note on each.
    pub fn minimal_toml() -> String {
        docs::minimal()
    }

    /// What this configuration runs, one `name: value` per line (`config check`): the settings
    /// an operator most often gets wrong, shown so they can be read back.
    pub fn summary(&self) -> String {
        let data_dir =
            std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone());
        let schedule = crate::schedule::summary(&self.lookahead, &self.l1);
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
