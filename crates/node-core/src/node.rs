//! [`Node`]: one running node — storage, identity, the SDK, the HTTP and JSON-RPC servers and
//! the pruning task — started from a [`NodeConfig`] and stopped with [`Node::shutdown`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use p2p::{P2pSdk, SdkEvents, SdkStorage, StorageError, StorageStats};
use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::{ChainLimits, SignedCommitment, B256};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::identity::{
    load_or_create_node_key, load_preconfer_key, NODE_KEY_FILE, PRECONFER_KEY_ENV,
};
use crate::redb_store::RedbStore;
use crate::schedule::NodeSchedule;
use crate::{http, rpc};

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

/// Health of the store the SDK writes: the last write failure (a full disk, an I/O error),
/// cleared by the next write that succeeds.
///
/// While writes fail the node keeps running: it keeps serving what it stored (reads still
/// work), keeps answering `get_head`, and accepts nothing new — a commitment is acknowledged
/// only once it is durable, so memory never runs ahead of disk. `/ready` answers 503 naming
/// the storage condition (`/health` stays 200: the process is alive and heals itself) and
/// `/status` names the error. Once writes succeed again, the next commitment above the head
/// starts a catch-up that fetches what was missed, and `/ready` returns to 200.
#[derive(Debug, Default)]
pub struct StorageHealth {
    failure: parking_lot::Mutex<Option<String>>,
    failures: std::sync::atomic::AtomicU64,
}

impl StorageHealth {
    /// The last write error, if the last write failed.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Write failures since start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    fn record<T>(&self, result: &Result<T, StorageError>) {
        let mut failure = self.failure.lock();
        match result {
            Ok(_) => {
                if failure.take().is_some() {
                    info!("storage writes succeed again");
                }
            }
            Err(e) => {
                if failure.is_none() {
                    warn!(error = %e, "storage write failed: reporting unhealthy");
                }
                self.failures.fetch_add(1, Ordering::Relaxed);
                *failure = Some(e.to_string());
            }
        }
    }
}

/// The store as the SDK sees it: every write's outcome goes to [`StorageHealth`].
struct HealthCheckedStorage {
    inner: Arc<dyn SdkStorage>,
    health: Arc<StorageHealth>,
}

impl SdkStorage for HealthCheckedStorage {
    fn put_commitments(&self, commitments: &[SignedCommitment]) -> Result<(), StorageError> {
        let result = self.inner.put_commitments(commitments);
        self.health.record(&result);
        result
    }

    fn put_txlist(&self, hash: B256, block_number: u64, txlist: Bytes) -> Result<(), StorageError> {
        let result = self.inner.put_txlist(hash, block_number, txlist);
        self.health.record(&result);
        result
    }

    /// Forwarded as one group, so the store keeps its one-transaction group write (the trait's
    /// default would fall back to one durable write per list).
    fn put_txlists(&self, txlists: &[(B256, u64, Bytes)]) -> Result<(), StorageError> {
        let result = self.inner.put_txlists(txlists);
        self.health.record(&result);
        result
    }

    /// Forwarded whole, so a catch-up page stays one transaction in the store.
    fn put_page(
        &self,
        commitments: &[SignedCommitment],
        txlists: &[(B256, u64, Bytes)],
    ) -> Result<(), StorageError> {
        let result = self.inner.put_page(commitments, txlists);
        self.health.record(&result);
        result
    }

    fn commitment_by_number(
        &self,
        block_number: u64,
    ) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.commitment_by_number(block_number)
    }

    fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.commitment_by_hash(hash)
    }

    fn commitments_from(
        &self,
        start: u64,
        max: usize,
    ) -> Result<Vec<SignedCommitment>, StorageError> {
        self.inner.commitments_from(start, max)
    }

    fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
        self.inner.txlist(hash)
    }

    /// Forwarded, so the store's lookup by key is used (the trait's default would read the
    /// bytes).
    fn has_txlist(&self, hash: &B256) -> Result<bool, StorageError> {
        self.inner.has_txlist(hash)
    }

    fn head(&self) -> Result<Option<SignedCommitment>, StorageError> {
        self.inner.head()
    }

    fn prune_below(&self, block_number: u64) -> Result<u64, StorageError> {
        let result = self.inner.prune_below(block_number);
        self.health.record(&result);
        result
    }

    fn stats(&self) -> Result<StorageStats, StorageError> {
        self.inner.stats()
    }
}

/// Wraps the store before the SDK gets it (see [`Node::start_with_storage_layer`]).
pub type StorageLayer = Box<dyn FnOnce(Arc<dyn SdkStorage>) -> Arc<dyn SdkStorage> + Send>;

/// A node's storage stack, as [`open_node_storage`] builds it.
pub struct NodeStorage {
    /// The redb store itself (its stats, status pages).
    pub store: Arc<RedbStore>,
    /// What the SDK gets: `store`, the optional layer, then health tracking on top.
    pub storage: Arc<dyn SdkStorage>,
    /// Whether writes succeed (fed by `storage`).
    pub health: Arc<StorageHealth>,
}

/// Opens the storage stack a node runs on: the redb store in `data_dir`, `layer` (if any)
/// around it, and [`StorageHealth`] tracking on top. [`Node::start`] and the benches both
/// build their storage here, so a bench runs what a node runs.
pub fn open_node_storage(
    data_dir: &Path,
    limits: ChainLimits,
    layer: Option<StorageLayer>,
) -> Result<NodeStorage, NodeError> {
    let store = Arc::new(RedbStore::open(data_dir, limits)?);
    let mut storage: Arc<dyn SdkStorage> = store.clone();
    if let Some(layer) = layer {
        storage = layer(storage);
    }
    let health = Arc::new(StorageHealth::default());
    let storage: Arc<dyn SdkStorage> = Arc::new(HealthCheckedStorage {
        inner: storage,
        health: health.clone(),
    });
    Ok(NodeStorage {
        store,
        storage,
        health,
    })
}

impl std::fmt::Debug for NodeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeContext")
            .field("sdk", &self.sdk)
            .field("preconfer", &self.preconfer.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

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
    /// already durable (see [`RedbStore`]); dropping the store closes the database cleanly.
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

/// Prunes everything below `below`, at most `chunk` blocks per call (one transaction each),
/// lowest first; returns the commitments removed.
fn prune_in_chunks(store: &dyn SdkStorage, below: u64, chunk: u64) -> Result<u64, StorageError> {
    let mut removed = 0;
    loop {
        let Some(lowest) = store.stats()?.lowest_block.filter(|l| *l < below) else {
            return Ok(removed);
        };
        let upto = below.min(lowest.saturating_add(chunk.max(1)));
        removed += store.prune_below(upto)?;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use p2p::{MemoryStorage, StorageStats};

    use super::*;

    /// Counts group writes and single writes reaching the inner store.
    #[derive(Default)]
    struct Counting {
        inner: MemoryStorage,
        groups: AtomicUsize,
        singles: AtomicUsize,
        pages: AtomicUsize,
        prunes: std::sync::Mutex<Vec<u64>>,
    }

    impl SdkStorage for Counting {
        fn put_commitments(&self, c: &[SignedCommitment]) -> Result<(), StorageError> {
            self.inner.put_commitments(c)
        }
        fn put_txlist(&self, hash: B256, n: u64, txlist: Bytes) -> Result<(), StorageError> {
            self.singles.fetch_add(1, Ordering::Relaxed);
            self.inner.put_txlist(hash, n, txlist)
        }
        fn put_txlists(&self, txlists: &[(B256, u64, Bytes)]) -> Result<(), StorageError> {
            self.groups.fetch_add(1, Ordering::Relaxed);
            for (hash, n, txlist) in txlists {
                self.inner.put_txlist(*hash, *n, txlist.clone())?;
            }
            Ok(())
        }
        fn put_page(
            &self,
            c: &[SignedCommitment],
            txlists: &[(B256, u64, Bytes)],
        ) -> Result<(), StorageError> {
            self.pages.fetch_add(1, Ordering::Relaxed);
            self.inner.put_page(c, txlists)
        }
        fn commitment_by_number(&self, n: u64) -> Result<Option<SignedCommitment>, StorageError> {
            self.inner.commitment_by_number(n)
        }
        fn commitment_by_hash(&self, h: &B256) -> Result<Option<SignedCommitment>, StorageError> {
            self.inner.commitment_by_hash(h)
        }
        fn commitments_from(
            &self,
            start: u64,
            max: usize,
        ) -> Result<Vec<SignedCommitment>, StorageError> {
            self.inner.commitments_from(start, max)
        }
        fn txlist(&self, hash: &B256) -> Result<Option<Bytes>, StorageError> {
            self.inner.txlist(hash)
        }
        fn head(&self) -> Result<Option<SignedCommitment>, StorageError> {
            self.inner.head()
        }
        fn prune_below(&self, n: u64) -> Result<u64, StorageError> {
            self.prunes.lock().expect("lock").push(n);
            self.inner.prune_below(n)
        }
        fn stats(&self) -> Result<StorageStats, StorageError> {
            self.inner.stats()
        }
    }

    /// A large prune runs as one short transaction per chunk, lowest blocks first, and
    /// removes everything below the bound.
    #[test]
    fn pruning_runs_in_bounded_chunks() {
        let store = Counting::default();
        let chain = preconfirmation_types::ChainSpec::new(
            167_001,
            preconfirmation_types::Address::repeat_byte(0x51),
        );
        let mut builder = p2p::testkit::ChainBuilder::in_the_past(chain, 2, 4, 10_000);
        let blocks: Vec<SignedCommitment> = builder
            .blocks(2_500, 8)
            .into_iter()
            .map(|b| b.commitment)
            .collect();
        store.put_commitments(&blocks).expect("seed");
        assert_eq!(prune_in_chunks(&store, 2_101, 1_000).expect("prune"), 2_100);
        assert_eq!(
            *store.prunes.lock().expect("lock"),
            vec![1_001, 2_001, 2_101]
        );
        assert_eq!(store.stats().expect("stats").lowest_block, Some(2_101));
        // Nothing below the bound: no transaction at all.
        store.prunes.lock().expect("lock").clear();
        assert_eq!(prune_in_chunks(&store, 2_101, 1_000).expect("prune"), 0);
        assert!(store.prunes.lock().expect("lock").is_empty());
    }

    #[test]
    fn health_checked_storage_keeps_group_writes_whole() {
        let inner = Arc::new(Counting::default());
        let checked = HealthCheckedStorage {
            inner: inner.clone(),
            health: Arc::default(),
        };
        let group: Vec<(B256, u64, Bytes)> = (1..=3u8)
            .map(|i| {
                let bytes = vec![i; 8];
                (
                    preconfirmation_types::raw_tx_list_hash(&bytes),
                    u64::from(i),
                    Bytes::from(bytes),
                )
            })
            .collect();
        checked.put_txlists(&group).expect("stored");
        assert_eq!(inner.groups.load(Ordering::Relaxed), 1);
        assert_eq!(inner.singles.load(Ordering::Relaxed), 0);
        for (hash, _, bytes) in &group {
            assert_eq!(checked.txlist(hash).expect("read"), Some(bytes.clone()));
        }
        // A catch-up page (commitments and tx lists) reaches the store as one page write.
        let mut builder = p2p::testkit::ChainBuilder::in_the_past(
            preconfirmation_types::ChainSpec::new(1, preconfirmation_types::Address::ZERO),
            1,
            1,
            4,
        );
        let blocks = builder.blocks(2, 16);
        let commitments: Vec<SignedCommitment> =
            blocks.iter().map(|b| b.commitment.clone()).collect();
        checked.put_page(&commitments, &group).expect("page stored");
        assert_eq!(inner.pages.load(Ordering::Relaxed), 1);
        assert_eq!(
            inner.groups.load(Ordering::Relaxed),
            1,
            "not split into groups"
        );
        assert_eq!(checked.stats().expect("stats").commitments, 2);
    }
}
