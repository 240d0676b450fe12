//! [`Node`]: one running node — storage, identity, the SDK, the HTTP and JSON-RPC servers and
//! the pruning task — started from a [`NodeConfig`] and stopped with [`Node::shutdown`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use metrics_exporter_prometheus::PrometheusHandle;
use p2p::{P2pSdk, SdkEvents};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::context::NodeContext;
use crate::error::NodeError;
use crate::identity::{
    load_or_create_node_key, load_preconfer_key, NODE_KEY_FILE, PRECONFER_KEY_ENV,
};
use crate::schedule::NodeSchedule;
use crate::storage::{open_node_storage, prune_in_chunks, NodeStorage, StorageLayer};
use crate::{http, rpc};

/// A running node.
#[derive(Debug)]
pub struct Node {
    context: NodeContext,
    events: Option<SdkEvents>,
    http_addr: Option<SocketAddr>,
    rpc_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens storage and identity in `config.data_dir`, starts the SDK (which starts catching
    /// up at once) and the configured servers.
    pub async fn start(
        config: NodeConfig,
        prometheus: Option<PrometheusHandle>,
    ) -> Result<Self, NodeError> {
        Self::start_with_storage_layer(config, prometheus, None).await
    }

    /// [`Node::start`] with `layer` wrapped around the redb store the SDK writes (fault
    /// injection in tests: a full disk, failing writes). The layer sits below the node's
    /// storage health tracking.
    pub async fn start_with_storage_layer(
        config: NodeConfig,
        prometheus: Option<PrometheusHandle>,
        layer: Option<StorageLayer>,
    ) -> Result<Self, NodeError> {
        config.validate()?;
        let NodeStorage {
            store,
            storage,
            health: storage_health,
        } = open_node_storage(&config.data_dir, config.sdk.chain.limits, layer)?;
        // A new identity is unknown to every peer: no strict peer holds a window of ours.
        let fresh_identity = !config.data_dir.join(NODE_KEY_FILE).exists();
        let node_key = load_or_create_node_key(&config.data_dir)?;
        let preconfer = load_preconfer_key(
            config.preconfer_key_file.as_deref(),
            std::env::var(PRECONFER_KEY_ENV).ok(),
        )?
        .map(Arc::new);
        let schedule = NodeSchedule::from_config(&config.lookahead, &config.l1)?;
        let mut sdk_config = config.sdk.clone();
        if fresh_identity {
            sdk_config.network.politeness.strict_window_spent_at_start = false;
        }
        let (sdk, events) =
            P2pSdk::start(sdk_config, storage, schedule.lookahead(), Some(node_key)).await?;
        let context = NodeContext {
            sdk: sdk.clone(),
            store,
            prometheus,
            preconfer,
            started: Instant::now(),
            serving: Arc::new(AtomicBool::new(false)),
            config: Arc::new(config),
            storage_health,
            schedule,
        };
        let shutdown = CancellationToken::new();
        let mut node = Node {
            context: context.clone(),
            events: Some(events),
            http_addr: None,
            rpc_addr: None,
            shutdown: shutdown.clone(),
            tasks: Vec::new(),
        };
        if context.config.http.enabled {
            let (addr, task) = http::serve(context.clone(), shutdown.clone()).await?;
            node.http_addr = Some(addr);
            node.tasks.push(task);
        }
        if context.config.rpc.enabled {
            let (addr, task) = rpc::serve(context.clone(), shutdown.clone()).await?;
            node.rpc_addr = Some(addr);
            node.tasks.push(task);
        }
        if let Some(task) = context.schedule.spawn(sdk.clone(), shutdown.clone()) {
            node.tasks.push(task);
        }
        if !context.config.log_status_interval.is_zero() {
            node.tasks.push(tokio::spawn(crate::telemetry::status_lines(
                context.clone(),
                context.config.log_status_interval,
                shutdown.clone(),
            )));
        }
        if context.config.storage.retain_blocks > 0 {
            node.tasks
                .push(tokio::spawn(prune_loop(context.clone(), shutdown.clone())));
        }
        let listen = sdk.listen_addrs().await?;
        context.serving.store(true, Ordering::Release);
        let shown =
            |addr: Option<SocketAddr>| addr.map_or_else(|| "off".to_string(), |a| a.to_string());
        info!(
            peer_id = %sdk.local_peer_id(),
            listen = %listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            http = %shown(node.http_addr),
            rpc = %shown(node.rpc_addr),
            head = context.sdk.status().head_block_number,
            data_dir = %context.config.data_dir.display(),
            "node started"
        );
        Ok(node)
    }

    /// The shared context (SDK handle, store, …).
    pub fn context(&self) -> &NodeContext {
        &self.context
    }

    /// The SDK handle.
    pub fn sdk(&self) -> &P2pSdk {
        &self.context.sdk
    }

    /// The event subscription taken at start (no event is missed); `None` once taken.
    pub fn take_events(&mut self) -> Option<SdkEvents> {
        self.events.take()
    }

    /// Address of the HTTP server, if it runs.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Address of the JSON-RPC server, if it runs.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// Stops the servers, then the SDK (which stops the network). Every acknowledged write is
    /// already durable (see [`crate::storage::RedbStore`]); dropping the store closes the database cleanly.
    pub async fn shutdown(self) {
        self.context.serving.store(false, Ordering::Release);
        self.shutdown.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        if let Err(e) = self.context.sdk.shutdown().await {
            warn!(error = %e, "SDK shutdown");
        }
        info!("node stopped");
    }
}

async fn prune_loop(context: NodeContext, shutdown: CancellationToken) {
    let retain = context.config.storage.retain_blocks;
    let mut tick = tokio::time::interval(context.config.storage.prune_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let head = context.sdk.head();
        let Ok(head) = u64::try_from(head.block_number) else {
            continue;
        };
        let below = head.saturating_sub(retain);
        if below == 0 {
            continue;
        }
        let store = context.sdk.storage();
        let chunk = context.config.storage.prune_chunk_blocks;
        match tokio::task::spawn_blocking(move || prune_in_chunks(store.as_ref(), below, chunk))
            .await
        {
            Ok(Ok(removed)) if removed > 0 => info!(below, removed, "pruned storage"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "pruning failed"),
            Err(e) => warn!(error = %e, "pruning task failed"),
        }
    }
}
