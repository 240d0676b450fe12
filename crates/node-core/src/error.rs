//! The one error type of the node.

use std::path::{Path, PathBuf};

/// Everything that stops the node or fails one of its operations.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// Another process holds the data dir's database lock.
    #[error("data dir locked: {path} is open in another process")]
    DataDirLocked {
        /// The database file.
        path: PathBuf,
    },
    /// A key file may be read or written by someone other than its owner.
    #[error("key file {path} has mode {mode:o}; it must be private to its owner (chmod 600)")]
    KeyFilePermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// A key file does not hold a valid key.
    #[error("key file {path} does not hold a valid key")]
    KeyFileInvalid {
        /// The key file.
        path: PathBuf,
    },
    /// A configuration value is wrong.
    #[error("config: {key}: {reason}")]
    Config {
        /// The offending key, dotted (`network.max_peers`).
        key: String,
        /// Why it is wrong.
        reason: String,
    },
    /// An I/O operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// Stored bytes do not decode.
    #[error("storage corrupt: {0}")]
    Corrupt(String),
    /// The P2P SDK failed.
    #[error(transparent)]
    Sdk(#[from] p2p::P2pSdkError),
    /// A server (HTTP or JSON-RPC) could not start.
    #[error("{server} on {addr}: {reason}")]
    Server {
        /// Which server.
        server: &'static str,
        /// Its address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// An L1 JSON-RPC call failed, timed out or answered nonsense.
    #[error("L1 {call}: {reason}")]
    L1 {
        /// The call (`eth_blockNumber`, `getOperatorForCurrentEpoch`, …).
        call: &'static str,
        /// Why.
        reason: String,
    },
}

impl NodeError {
    /// The process exit code for this error: 2 for bad configuration, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Config { .. } => 2,
            _ => 1,
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// A wrong configuration value: its dotted `key` and why.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// An L1 JSON-RPC failure of `call`.
    pub fn l1(call: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::L1 {
            call,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn storage(error: impl std::fmt::Display) -> Self {
        Self::Storage(error.to_string())
    }
}
