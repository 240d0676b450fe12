//! The one error type of the SDK, [`P2pSdkError`]: what its calls return.

use preconfirmation_net::{NetError, RequestError};
use preconfirmation_types::TypesError;

use crate::config::ConfigError;
use crate::storage::StorageError;
use crate::validation::RejectReason;

/// Everything that can go wrong in the SDK.
#[derive(Debug, thiserror::Error)]
pub enum P2pSdkError {
    /// A commitment or tx list failed local validation (§4–§5) and was not published.
    #[error("validation failed: {0}")]
    Validation(RejectReason),
    /// The commitment cannot be validated yet (its parent or its schedule is unknown); it was
    /// not published.
    #[error("cannot validate yet: {0}")]
    NotReady(&'static str),
    /// The network layer refused a command.
    #[error(transparent)]
    Network(#[from] NetError),
    /// An outbound request failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A wire type could not be built or decoded.
    #[error(transparent)]
    Decode(#[from] TypesError),
    /// A bounded queue is full; the call was not queued. Retry later or slow down.
    #[error("the {queue} queue is full")]
    Backpressure {
        /// Which queue: `command` (caller → SDK) or `event` (SDK → subscriber, events were lost).
        queue: &'static str,
    },
    /// An event subscriber fell behind and `missed` events were dropped for it.
    #[error("subscriber lagged; {missed} events were dropped")]
    Lagged {
        /// How many events were lost.
        missed: u64,
    },
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// No connected peer can serve the request.
    #[error("no peer available: {0}")]
    MissingPeer(&'static str),
    /// The wanted data is not stored here.
    #[error("not found: {0}")]
    MissingData(&'static str),
    /// The configuration is inconsistent.
    #[error("invalid SDK configuration: {0}")]
    Config(String),
    /// The SDK has shut down.
    #[error("the SDK is shut down")]
    Shutdown,
    /// A background task panicked or was cancelled.
    #[error("background task failed: {0}")]
    Join(String),
}

impl From<ConfigError> for P2pSdkError {
    fn from(e: ConfigError) -> Self {
        match e {
            ConfigError::Limits(e) => P2pSdkError::Decode(e),
            ConfigError::Network(e) => P2pSdkError::Network(e),
            ConfigError::Invalid(reason) => P2pSdkError::Config(reason),
        }
    }
}

impl From<tokio::task::JoinError> for P2pSdkError {
    fn from(e: tokio::task::JoinError) -> Self {
        P2pSdkError::Join(e.to_string())
    }
}

impl From<tokio::time::error::Elapsed> for P2pSdkError {
    fn from(_: tokio::time::error::Elapsed) -> Self {
        P2pSdkError::Timeout("operation")
    }
}

impl<T> From<tokio::sync::mpsc::error::TrySendError<T>> for P2pSdkError {
    fn from(e: tokio::sync::mpsc::error::TrySendError<T>) -> Self {
        match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => {
                P2pSdkError::Backpressure { queue: "command" }
            }
            tokio::sync::mpsc::error::TrySendError::Closed(_) => P2pSdkError::Shutdown,
        }
    }
}

impl From<tokio::sync::oneshot::error::RecvError> for P2pSdkError {
    fn from(_: tokio::sync::oneshot::error::RecvError) -> Self {
        P2pSdkError::Shutdown
    }
}

/// Result alias of the SDK.
pub type Result<T, E = P2pSdkError> = std::result::Result<T, E>;
