//! [`NodeContext`]: what the HTTP and JSON-RPC servers, the status line and the operator page
//! share of a running node.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use p2p::P2pSdk;
use preconfirmation_types::reexports::secp256k1::SecretKey;

use crate::config::NodeConfig;
use crate::schedule::NodeSchedule;
use crate::storage::{RedbStore, StorageHealth};

/// What the HTTP and RPC servers share: the SDK handle and a few facts about the node.
#[derive(Clone)]
pub struct NodeContext {
    /// The running SDK.
    pub sdk: P2pSdk,
    /// The node's store (the same one the SDK writes).
    pub store: Arc<RedbStore>,
    /// Prometheus text renderer, when this process installed the recorder.
    pub prometheus: Option<PrometheusHandle>,
    /// The preconfer key, when configured: lets RPC sign unsigned commitments.
    pub preconfer: Option<Arc<SecretKey>>,
    /// When the node started.
    pub started: Instant,
    /// True once the swarm listens, false again once the node stops: `/health` (alive)
    /// answers 200 only meanwhile.
    pub serving: Arc<AtomicBool>,
    /// The node's configuration.
    pub config: Arc<NodeConfig>,
    /// Whether the store takes writes; `/ready` answers 503 while it does not.
    pub storage_health: Arc<StorageHealth>,
    /// The preconfer schedule's source (static or read from L1).
    pub schedule: NodeSchedule,
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("sdk", &self.sdk)
            .field("preconfer", &self.preconfer.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}
