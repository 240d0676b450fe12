//! The one error type of the tools.

use preconf_node_core::NodeError;

/// Why a tool could not run, or what it found wrong.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A node, or the node library, failed (bad configuration, I/O, the SDK, a server).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The devnet did not converge or could not run (and a bench could not run).
    #[error("devnet: {0}")]
    Devnet(String),
    /// The testbed could not build its network or run its nodes.
    #[error("testbed: {0}")]
    Testbed(String),
    /// `preconf-node publish` could not publish.
    #[error("publish: {0}")]
    Publish(String),
    /// Stopped by SIGINT or SIGTERM before it finished.
    #[error("interrupted")]
    Interrupted,
}

impl ToolError {
    /// The process exit code for this error: the node's ([`NodeError::exit_code`]: 2 for bad
    /// configuration), 130 when interrupted, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Self::Node(e) => e.exit_code(),
            Self::Interrupted => 130,
            _ => 1,
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        NodeError::io(path, source).into()
    }

    /// A configuration value of the tool is wrong: `key` and why.
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        NodeError::config(key, reason).into()
    }
}

impl From<p2p::P2pSdkError> for ToolError {
    fn from(e: p2p::P2pSdkError) -> Self {
        Self::Node(e.into())
    }
}
