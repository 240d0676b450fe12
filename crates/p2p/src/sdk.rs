//! [`P2pSdk`]: the cheap cloneable handle, and the manager task behind it.
//!
//! The manager owns the [`Core`] (validation state) and is its only writer. It `select!`s over
//! the network events, the caller's commands, results of its own background tasks (catch-up,
//! tx-list fetches) and a 1 s upkeep tick. It never awaits the network driver: verdicts go out
//! with `try_send`, publications and fetches run on spawned tasks, inbound requests are served
//! on the blocking pool straight from storage.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_net::{
    Keypair, MessageId as NetMessageId, NetError, NetworkEvent, NetworkEvents, P2pService,
};
use preconfirmation_types::{
    Address, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetRawTxListRequest,
    GetRawTxListResponse, GossipTopicKind, PreconfHead, RawTxListGossip, ReqRespKind,
    SignedCommitment, TypesError, WireMessage, B256, U256,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::catchup::{self, CatchUpContext, PeerSlots};
use crate::config::P2pSdkConfig;
use crate::error::StorageError;
use crate::error::{P2pSdkError, Result};
use crate::handlers::{BatchResult, Core, Effect};
use crate::lookahead::Lookahead;
use crate::metrics;
use crate::server::serve_inbound;
use crate::storage::SdkStorage;
use crate::types::head_of;
use crate::types::{CommitmentSource, HeadSyncStatus, MessageId, PeerInfo, SdkEvent, SdkStatus};
use crate::validation::{check_txlist, RejectReason, ValidationOutcome, Validator};
use crate::writer::{WriteJob, Writer};

/// Capacity of the channel background tasks report back on.
const INTERNAL_CHANNEL_CAPACITY: usize = 256;
/// Upkeep period: pending sweep, schedule retry, status refresh.
const TICK: Duration = Duration::from_secs(1);
/// Grace period before a missing tx list is requested: it usually arrives on gossip first.
const TXLIST_FETCH_DELAY: Duration = Duration::from_millis(750);

/// What [`P2pSdk::publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// Gossipsub id of the commitment message.
    pub commitment_message_id: NetMessageId,
    /// Gossipsub id of the tx list message, if one was sent.
    pub txlist_message_id: Option<NetMessageId>,
}

enum Command {
    Publish {
        commitment: Box<SignedCommitment>,
        txlist: Option<RawTxListGossip>,
        reply: oneshot::Sender<Result<PublishReceipt>>,
    },
    PublishRawTxList {
        txlist: RawTxListGossip,
        reply: oneshot::Sender<Result<NetMessageId>>,
    },
    ScheduleUpdated,
    CatchUp,
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

/// What the durable writer found for one write ([`crate::writer::PageOutcome`]), or why it
/// was not written.
pub(crate) type WriteOutcome = std::result::Result<crate::writer::PageOutcome, StorageError>;

/// Reports from the SDK's own background tasks to the manager.
pub(crate) enum Internal {
    /// A fetched, signature-recovered catch-up page with the verified tx lists fetched for
    /// it: validate and apply in memory; the reply carries the write for the write stage.
    CatchUpPage {
        peer: PeerId,
        items: Vec<(SignedCommitment, std::result::Result<Address, TypesError>)>,
        txlists: HashMap<B256, Bytes>,
        /// Room in catch-up's write queue, held until the page is written.
        permits: Vec<OwnedSemaphorePermit>,
        /// The validation result, and the write's outcome once it is done (if any was made).
        reply: oneshot::Sender<(BatchResult, Option<oneshot::Receiver<WriteOutcome>>)>,
    },
    /// The durable writer's outcome for write `id`: `Ok` with the write's other referenced tx
    /// lists that storage already held.
    Stored {
        id: u64,
        outcome: std::result::Result<HashSet<B256>, StorageError>,
    },
    TxListFetched {
        hash: B256,
        txlist: Bytes,
    },
    /// Verified tx lists a background task already stored durably: `(hash, block)`.
    TxListsStored(Vec<(B256, u64)>),
    SetSync(HeadSyncStatus),
}

/// The stream of [`SdkEvent`]s for one subscriber.
#[derive(Debug)]
pub struct SdkEvents {
    rx: broadcast::Receiver<SdkEvent>,
}

impl SdkEvents {
    /// The next event. [`P2pSdkError::Lagged`] says this subscriber fell more than
    /// `event_channel_capacity` events behind and lost the oldest (counted in
    /// `p2p_backpressure_total{queue="event"}`); the next call continues with what is left.
    /// [`P2pSdkError::Shutdown`] once the SDK has stopped.
    pub async fn recv(&mut self) -> Result<SdkEvent> {
        match self.rx.recv().await {
            Ok(event) => Ok(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                metrics::backpressure("event");
                Err(P2pSdkError::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => Err(P2pSdkError::Shutdown),
        }
    }

    /// Calls `handler` for every event until the SDK shuts down (lag is logged and skipped).
    pub async fn run_with_handler<F: FnMut(SdkEvent)>(mut self, mut handler: F) {
        loop {
            match self.recv().await {
                Ok(event) => handler(event),
                Err(P2pSdkError::Lagged { missed }) => warn!(missed, "event handler lagged"),
                Err(_) => return,
            }
        }
    }
}

struct Shared {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<SdkEvent>,
    status: watch::Receiver<SdkStatus>,
    net: P2pService,
    storage: Arc<dyn SdkStorage>,
    config: Arc<P2pSdkConfig>,
    slots: PeerSlots,
    task: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

/// Handle to a running SDK. Cheap to clone; every clone talks to the same manager task.
#[derive(Clone)]
pub struct P2pSdk {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for P2pSdk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pSdk")
            .field("peer_id", &self.shared.net.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl P2pSdk {
    /// Starts the network and the SDK. Call it once the L2 execution engine is synced
    /// (§10.3): catch-up starts at once from `storage`'s head (or the configured anchor).
    ///
    /// Returns the handle and a first event subscription (taken before anything can happen,
    /// so no event is missed).
    pub async fn start(
        config: P2pSdkConfig,
        storage: Arc<dyn SdkStorage>,
        lookahead: Arc<dyn Lookahead>,
        keypair: Option<Keypair>,
    ) -> Result<(P2pSdk, SdkEvents)> {
        config.validate()?;
        let config = Arc::new(config);
        let validator = Validator::from_config(&config, lookahead);
        let (events_tx, events_rx) = broadcast::channel(config.event_channel_capacity);
        let (status_tx, status_rx) = watch::channel(SdkStatus {
            head_block_number: 0,
            head_hash: None,
            head_window_end: U256::ZERO,
            sync: HeadSyncStatus::Idle,
            pending_parent: 0,
            pending_schedule: 0,
            orphan_txlists: 0,
            missing_txlists: 0,
        });
        let core = Core::new(
            config.clone(),
            validator,
            storage.clone(),
            events_tx.clone(),
            status_tx,
        )?;
        let (net, net_events) = P2pService::start(config.effective_network(), keypair).await?;
        let (commands_tx, commands_rx) = mpsc::channel(config.command_channel_capacity);
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL_CHANNEL_CAPACITY);
        let (catchup_done_tx, catchup_done_rx) = mpsc::channel(1);
        let slots = PeerSlots::new(config.catchup.max_requests_per_peer);
        let manager = Manager {
            catchup_done: catchup_done_tx,
            ticks: 0,
            last_head: (0, Instant::now()),
            last_head_check: Instant::now(),
            txlist_due: VecDeque::new(),
            writer: Writer::spawn(Arc::downgrade(&storage), internal_tx.clone()),
            durable_waiters: VecDeque::new(),
            core,
            net: net.clone(),
            storage: storage.clone(),
            config: config.clone(),
            status: status_rx.clone(),
            internal_tx,
            catchup_running: false,
            catchup_rerun: false,
            txlist_permits: Arc::new(Semaphore::new(config.catchup.parallel_txlists)),
            slots: slots.clone(),
            last_scores: Instant::now(),
        };
        let task = tokio::spawn(manager.run(commands_rx, internal_rx, catchup_done_rx, net_events));
        info!(peer_id = %net.local_peer_id(), "P2P SDK started");
        let sdk = P2pSdk {
            shared: Arc::new(Shared {
                commands: commands_tx,
                events: events_tx,
                status: status_rx,
                net,
                storage,
                config,
                slots,
                task: parking_lot::Mutex::new(Some(task)),
            }),
        };
        Ok((sdk, SdkEvents { rx: events_rx }))
    }

    /// Another event subscription, starting now.
    pub fn subscribe(&self) -> SdkEvents {
        SdkEvents {
            rx: self.shared.events.subscribe(),
        }
    }

    fn command(&self, command: Command) -> Result<()> {
        self.shared.commands.try_send(command).map_err(|e| {
            let e = P2pSdkError::from(e);
            if matches!(e, P2pSdkError::Backpressure { .. }) {
                metrics::backpressure("command");
            }
            e
        })
    }

    /// Validates locally, stores, then publishes the tx list (if any) and then the commitment
    /// (§6). The tx list's hash must be the commitment's `rawTxListHash`.
    ///
    /// Errors: [`P2pSdkError::Validation`] / [`P2pSdkError::NotReady`] when the commitment
    /// would not be accepted here (nothing is stored or sent); [`P2pSdkError::Backpressure`]
    /// when the command queue is full; `Network(NoPeers)` when nobody is subscribed — the
    /// commitment is then stored and served to catch-up requests all the same.
    pub async fn publish(
        &self,
        commitment: SignedCommitment,
        txlist: Option<Vec<u8>>,
    ) -> Result<PublishReceipt> {
        let txlist = txlist.map(RawTxListGossip::new).transpose()?;
        let (reply, rx) = oneshot::channel();
        self.command(Command::Publish {
            commitment: Box::new(commitment),
            txlist,
            reply,
        })?;
        rx.await?
    }

    /// Publishes a commitment whose tx list was published before (or a pure EOP).
    pub async fn publish_commitment(&self, commitment: SignedCommitment) -> Result<PublishReceipt> {
        self.publish(commitment, None).await
    }

    /// Publishes a tx list on its own (§6: before its commitment).
    pub async fn publish_raw_txlist(&self, txlist: Vec<u8>) -> Result<NetMessageId> {
        let txlist = RawTxListGossip::new(txlist)?;
        let (reply, rx) = oneshot::channel();
        self.command(Command::PublishRawTxList { txlist, reply })?;
        rx.await?
    }

    /// Tells the SDK the lookahead learned more; commitments waiting for their schedule are
    /// validated again.
    pub fn schedule_updated(&self) -> Result<()> {
        self.command(Command::ScheduleUpdated)
    }

    /// Starts a catch-up round now (one already running is followed by another).
    pub fn catch_up(&self) -> Result<()> {
        self.command(Command::CatchUp)
    }

    /// `get_head` from `peer`. Like every request helper, it waits for one of the
    /// `catchup.max_requests_per_peer` request slots of its protocol towards that peer.
    pub async fn request_head(&self, peer: PeerId) -> Result<PreconfHead> {
        let _slot = self.slot(peer, ReqRespKind::GetHead).await?;
        timed(ReqRespKind::GetHead, self.shared.net.request_head(peer)).await
    }

    async fn slot(
        &self,
        peer: PeerId,
        kind: ReqRespKind,
    ) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.shared
            .slots
            .acquire(peer, kind)
            .await
            .ok_or(P2pSdkError::Shutdown)
    }

    /// `get_commitments_by_number` from `peer` (unvalidated; catch-up validates).
    pub async fn request_commitments(
        &self,
        peer: PeerId,
        start_block_number: u64,
        max_count: u32,
    ) -> Result<GetCommitmentsByNumberResponse> {
        let request = GetCommitmentsByNumberRequest {
            start_block_number: U256::from(start_block_number),
            max_count,
        };
        let _slot = self.slot(peer, ReqRespKind::GetCommitmentsByNumber).await?;
        timed(
            ReqRespKind::GetCommitmentsByNumber,
            self.shared.net.request_commitments(peer, request),
        )
        .await
    }

    /// `get_raw_txlist` from `peer`; the bytes are checked against `hash` (§11).
    pub async fn request_raw_txlist(&self, peer: PeerId, hash: B256) -> Result<Bytes> {
        let request = GetRawTxListRequest {
            raw_tx_list_hash: hash,
        };
        let _slot = self.slot(peer, ReqRespKind::GetRawTxList).await?;
        let response: GetRawTxListResponse = timed(
            ReqRespKind::GetRawTxList,
            self.shared.net.request_raw_txlist(peer, request),
        )
        .await?;
        if response.txlist.is_empty() {
            return Err(P2pSdkError::MissingData("tx list"));
        }
        let txlist: Vec<u8> = response.txlist.into();
        check_txlist(&hash, &txlist, &self.shared.config.chain.limits)
            .map_err(P2pSdkError::Validation)?;
        Ok(Bytes::from(txlist))
    }

    /// The current status (head, sync state, buffer sizes).
    pub fn status(&self) -> SdkStatus {
        self.shared.status.borrow().clone()
    }

    /// A watch of the status, to wait for a head or a sync state.
    pub fn watch_status(&self) -> watch::Receiver<SdkStatus> {
        self.shared.status.clone()
    }

    /// The local head (§10.2).
    pub fn head(&self) -> PreconfHead {
        head_of(&self.shared.status.borrow())
    }

    /// The stored commitment for `block_number`.
    pub fn commitment_by_number(&self, block_number: u64) -> Result<Option<SignedCommitment>> {
        Ok(self.shared.storage.commitment_by_number(block_number)?)
    }

    /// The stored commitment whose `preconfirmation_hash` is `hash`.
    pub fn commitment_by_hash(&self, hash: &B256) -> Result<Option<SignedCommitment>> {
        Ok(self.shared.storage.commitment_by_hash(hash)?)
    }

    /// The stored tx list `hash`.
    pub fn raw_txlist(&self, hash: &B256) -> Result<Option<Bytes>> {
        Ok(self.shared.storage.txlist(hash)?)
    }

    /// The storage this SDK writes and serves from.
    pub fn storage(&self) -> Arc<dyn SdkStorage> {
        self.shared.storage.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &P2pSdkConfig {
        &self.shared.config
    }

    /// The network handle underneath (dial, ban, peers…).
    pub fn network(&self) -> &P2pService {
        &self.shared.net
    }

    /// This node's peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.shared.net.local_peer_id()
    }

    /// Addresses the node listens on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>> {
        Ok(self.shared.net.listen_addrs().await?)
    }

    /// Dials `addr`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        Ok(self.shared.net.dial(addr).await?)
    }

    /// Connected peers and their scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>> {
        Ok(self
            .shared
            .net
            .peers()
            .await?
            .into_iter()
            .map(|p| PeerInfo {
                peer_id: p.peer_id,
                score: p.score,
                extended: p.extended,
                ping_rtt: p.ping_rtt,
                served_bytes: p.served_bytes,
            })
            .collect())
    }

    /// Waits until at least `min` peers are subscribed to both topics, or `timeout` passes.
    pub async fn wait_for_gossip_peers(&self, min: usize, timeout: Duration) -> Result<()> {
        let net = &self.shared.net;
        tokio::time::timeout(timeout, async {
            loop {
                let a = net.gossip_peers(GossipTopicKind::Commitments).await?.len();
                let b = net.gossip_peers(GossipTopicKind::RawTxLists).await?.len();
                if a >= min && b >= min {
                    return Ok::<(), P2pSdkError>(());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .map_err(|_| P2pSdkError::Timeout("gossip peers"))?
    }

    /// Stops the manager and the network; storage is left as last written (every accepted
    /// commitment was written before it was announced).
    pub async fn shutdown(&self) -> Result<()> {
        let (reply, rx) = oneshot::channel();
        if self
            .shared
            .commands
            .send(Command::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        let task = self.shared.task.lock().take();
        if let Some(task) = task {
            task.await?;
        }
        Ok(())
    }
}

async fn timed<T, E: Into<P2pSdkError>>(
    kind: ReqRespKind,
    request: impl std::future::Future<Output = std::result::Result<T, E>>,
) -> Result<T> {
    let started = Instant::now();
    let result = request.await;
    metrics::request_latency(kind, started.elapsed());
    metrics::request(
        kind,
        "outbound",
        if result.is_ok() { "ok" } else { "error" },
    );
    result.map_err(Into::into)
}

struct Manager {
    core: Core,
    net: P2pService,
    storage: Arc<dyn SdkStorage>,
    config: Arc<P2pSdkConfig>,
    status: watch::Receiver<SdkStatus>,
    internal_tx: mpsc::Sender<Internal>,
    catchup_running: bool,
    catchup_rerun: bool,
    catchup_done: mpsc::Sender<()>,
    txlist_permits: Arc<Semaphore>,
    slots: PeerSlots,
    last_scores: Instant,
    ticks: u64,
    /// The head seen at the last tick, and since when (for the stale-head check).
    last_head: (u64, Instant),
    /// When the stale-head check last started a catch-up round.
    last_head_check: Instant,
    /// Missing tx lists to fetch once their gossip grace period ends, in due order.
    txlist_due: VecDeque<(Instant, B256, Option<PeerId>)>,
    /// The durable writer.
    writer: Writer,
    /// Local publishes waiting for their write to be durable: `(write id, waiter)`, ascending.
    durable_waiters: VecDeque<(u64, oneshot::Sender<bool>)>,
}

/// Most missing tx lists waiting for their grace period to end; the oldest beyond it are left
/// to the periodic retry (they stay in the awaited set), so a burst of commitments without
/// their tx lists costs a bounded queue, not a task each.
const TXLIST_DUE_MAX: usize = 4096;

/// Missing tx lists are requested again every this many ticks.
const TXLIST_RETRY_TICKS: u64 = 5;
/// At most this many missing tx lists per retry: 16 batched requests to peers of ours, the
/// rest of the awaited set waits for the next retry.
const TXLIST_RETRY_MAX: usize = 16 * preconfirmation_types::MAX_TXLISTS_PER_REQUEST;

/// Sleeps until `due`; forever when nothing is due.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

enum Flow {
    Continue,
    Stop(Option<oneshot::Sender<()>>),
}

impl Manager {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut internal: mpsc::Receiver<Internal>,
        mut catchup_done: mpsc::Receiver<()>,
        mut net_events: NetworkEvents,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if self.config.catchup.enabled {
            self.start_catchup();
        } else {
            self.core.set_sync(HeadSyncStatus::Live);
        }
        let stop = loop {
            let flow = tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => Flow::Stop(None),
                },
                Some(report) = internal.recv() => {
                    self.on_internal(report);
                    Flow::Continue
                }
                event = net_events.recv() => match event {
                    Some(event) => {
                        self.on_network_event(event);
                        Flow::Continue
                    }
                    None => Flow::Stop(None),
                },
                Some(()) = catchup_done.recv() => {
                    self.catchup_running = false;
                    if self.catchup_rerun {
                        self.catchup_rerun = false;
                        self.start_catchup();
                    }
                    Flow::Continue
                }
                _ = tick.tick() => {
                    self.on_tick().await;
                    Flow::Continue
                }
                () = sleep_until_due(self.txlist_due.front().map(|d| d.0)) => {
                    self.fetch_due_txlists();
                    Flow::Continue
                }
            };
            self.run_effects();
            if let Flow::Stop(reply) = flow {
                break reply;
            }
        };
        if let Err(e) = self.net.shutdown().await {
            debug!(error = %e, "network already stopped");
        }
        info!("P2P SDK stopped");
        if let Some(reply) = stop {
            let _ = reply.send(());
        }
    }

    fn on_command(&mut self, command: Command) -> Flow {
        match command {
            Command::Publish {
                commitment,
                txlist,
                reply,
            } => self.publish(*commitment, txlist, reply),
            Command::PublishRawTxList { txlist, reply } => {
                let hash = txlist.raw_tx_list_hash;
                if let Err(reason) = check_txlist(&hash, &txlist.txlist, &self.config.chain.limits)
                {
                    let _ = reply.send(Err(P2pSdkError::Validation(reason)));
                    return Flow::Continue;
                }
                let ssz = txlist.to_ssz();
                self.core
                    .see(MessageId::new(GossipTopicKind::RawTxLists, &ssz));
                self.core
                    .add_txlist(hash, Bytes::from(txlist.txlist.to_vec()));
                let net = self.net.clone();
                tokio::spawn(async move {
                    let _ = reply.send(publish_one(&net, GossipTopicKind::RawTxLists, ssz).await);
                });
            }
            Command::ScheduleUpdated => self.core.retry_schedule_pending(),
            Command::CatchUp => self.start_catchup(),
            Command::Shutdown { reply } => return Flow::Stop(Some(reply)),
        }
        Flow::Continue
    }

    fn publish(
        &mut self,
        commitment: SignedCommitment,
        txlist: Option<RawTxListGossip>,
        reply: oneshot::Sender<Result<PublishReceipt>>,
    ) {
        let fail = |reply: oneshot::Sender<Result<PublishReceipt>>, e| {
            metrics::gossip_published(GossipTopicKind::Commitments, "invalid");
            let _ = reply.send(Err(e));
        };
        if let Some(txlist) = &txlist {
            let hash = txlist.raw_tx_list_hash;
            if hash != commitment.preconf().raw_tx_list_hash {
                return fail(
                    reply,
                    P2pSdkError::Validation(RejectReason::TxListHashMismatch),
                );
            }
            if let Err(reason) = check_txlist(&hash, &txlist.txlist, &self.config.chain.limits) {
                return fail(reply, P2pSdkError::Validation(reason));
            }
        }
        // Validate first without side effects, so an invalid or premature commitment is
        // neither stored nor buffered.
        let signer = self.core.validator().recover_signer(&commitment);
        match self.core.check_local(&commitment, signer.clone()) {
            ValidationOutcome::Accept(_) => {}
            ValidationOutcome::Reject { reason, .. } => {
                return fail(reply, P2pSdkError::Validation(reason));
            }
            ValidationOutcome::Pending(reason) => {
                return fail(reply, P2pSdkError::NotReady(reason.label()));
            }
        }
        let txlist_ssz = txlist.as_ref().map(|t| t.to_ssz());
        if let Some(txlist) = txlist {
            let ssz = txlist_ssz.as_deref().unwrap_or_default();
            self.core
                .see(MessageId::new(GossipTopicKind::RawTxLists, ssz));
            let hash = txlist.raw_tx_list_hash;
            self.core
                .add_txlist(hash, Bytes::from(txlist.txlist.to_vec()));
        }
        let commitment_ssz = commitment.to_ssz();
        self.core.see(MessageId::new(
            GossipTopicKind::Commitments,
            &commitment_ssz,
        ));
        match self
            .core
            .process_commitment(commitment, signer, CommitmentSource::Local, None)
        {
            ValidationOutcome::Accept(_) => {}
            other => {
                let reason = match other {
                    ValidationOutcome::Reject { reason, .. } => reason,
                    _ => RejectReason::Duplicate,
                };
                return fail(reply, P2pSdkError::Validation(reason));
            }
        }
        // Forwarded at once; acknowledged once durable as well.
        let (durable_tx, durable) = oneshot::channel();
        match self.core.last_unstored_write() {
            Some(id) => self.durable_waiters.push_back((id, durable_tx)),
            None => {
                let _ = durable_tx.send(true);
            }
        }
        let net = self.net.clone();
        tokio::spawn(async move {
            let published = async {
                let txlist_message_id = match txlist_ssz {
                    Some(ssz) => Some(publish_one(&net, GossipTopicKind::RawTxLists, ssz).await?),
                    None => None,
                };
                let commitment_message_id =
                    publish_one(&net, GossipTopicKind::Commitments, commitment_ssz).await?;
                Ok(PublishReceipt {
                    commitment_message_id,
                    txlist_message_id,
                })
            }
            .await;
            // Whatever the network said, the answer waits for the write: a caller told "no
            // peers" may read the commitment back from storage at once.
            let result = match durable.await {
                Ok(true) => published,
                _ => Err(P2pSdkError::Storage(StorageError::Backend(
                    "the commitment was accepted but its durable write failed".into(),
                ))),
            };
            let _ = reply.send(result);
        });
    }

    fn on_internal(&mut self, report: Internal) {
        match report {
            Internal::CatchUpPage {
                peer,
                items,
                txlists,
                permits,
                reply,
            } => {
                let (result, write) = self.core.on_catchup_page(peer, items, txlists);
                let done = write.map(|write| {
                    let (done, outcome) = oneshot::channel();
                    self.writer.submit(WriteJob {
                        write,
                        epoch: self.core.epoch(),
                        permits,
                        done: Some(done),
                    });
                    outcome
                });
                let _ = reply.send((result, done));
            }
            Internal::Stored { id, outcome } => self.core.on_stored(id, outcome),
            Internal::TxListFetched { hash, txlist } => {
                if self.core.is_awaited(&hash) {
                    self.core.add_txlist(hash, txlist);
                }
            }
            Internal::TxListsStored(txlists) => self.core.on_txlists_stored(txlists),
            Internal::SetSync(sync) => self.core.set_sync(sync),
        }
    }

    fn on_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip {
                peer,
                topic,
                message_id,
                data,
            } => {
                let verdict = match topic {
                    GossipTopicKind::Commitments => {
                        self.core
                            .on_gossip_commitment(peer, message_id.clone(), &data)
                    }
                    GossipTopicKind::RawTxLists => {
                        self.core.on_gossip_txlist(peer, message_id.clone(), &data)
                    }
                };
                // Verdicts this message released: a held tx list its commitment references
                // goes first, so the tx list is forwarded ahead of its commitment as §6
                // publishes; pending children it unlocked go after it.
                let (children, effects): (Vec<_>, Vec<_>) = self
                    .core
                    .take_effects()
                    .into_iter()
                    .partition(|e| matches!(e, Effect::PendingVerdict { .. }));
                self.run_effects_list(effects);
                // None: held (a tx list waiting for its commitment, a pending commitment);
                // its verdict comes as an effect.
                if let Some(verdict) = verdict {
                    self.report(message_id, peer, verdict);
                }
                self.run_effects_list(children);
            }
            NetworkEvent::InboundRequest(request) => {
                let storage = self.storage.clone();
                let head = head_of(&self.status.borrow());
                let limits = self.config.chain.limits;
                tokio::task::spawn_blocking(move || {
                    serve_inbound(request, storage.as_ref(), head, &limits)
                });
            }
            NetworkEvent::PeerConnected { peer, .. } => {
                self.core.emit(SdkEvent::PeerConnected(peer));
                if self.config.catchup.enabled {
                    self.start_catchup();
                }
            }
            NetworkEvent::PeerDisconnected { peer } => {
                self.slots.forget(&peer);
                self.core.emit(SdkEvent::PeerDisconnected(peer))
            }
            NetworkEvent::PeerBanned { peer, until } => {
                self.core.emit(SdkEvent::PeerBanned { peer, until })
            }
        }
    }

    fn report(
        &self,
        message_id: NetMessageId,
        peer: PeerId,
        verdict: preconfirmation_net::GossipVerdict,
    ) {
        if let Err(e) = self.net.report_validation(message_id, peer, verdict) {
            metrics::backpressure("network_command");
            debug!(error = %e, "verdict not delivered");
        }
    }

    fn run_effects(&mut self) {
        let effects = self.core.take_effects();
        self.run_effects_list(effects);
    }

    /// Submits the core's queued writes, then runs `effects` in order.
    fn run_effects_list(&mut self, effects: Vec<Effect>) {
        let epoch = self.core.epoch();
        for write in self.core.take_writes() {
            self.writer.submit(WriteJob {
                write,
                epoch,
                permits: Vec::new(),
                done: None,
            });
        }
        for effect in effects {
            match effect {
                Effect::PendingVerdict {
                    message_id,
                    peer,
                    verdict,
                } => self.report(message_id, peer, verdict),
                Effect::Durable { id } => {
                    while self.durable_waiters.front().is_some_and(|(w, _)| *w <= id) {
                        if let Some((_, waiter)) = self.durable_waiters.pop_front() {
                            let _ = waiter.send(true);
                        }
                    }
                }
                Effect::WriteFailed => {
                    for (_, waiter) in self.durable_waiters.drain(..) {
                        let _ = waiter.send(false);
                    }
                }
                Effect::Verdict {
                    message_id,
                    peer,
                    verdict,
                } => self.report(message_id, peer, verdict),
                Effect::Gap { .. } => {
                    if self.config.catchup.enabled {
                        self.start_catchup();
                    }
                }
                Effect::FetchTxList { hash, hint, .. } => {
                    // Due after the gossip grace period; one queue, no task per tx list.
                    self.txlist_due
                        .push_back((Instant::now() + TXLIST_FETCH_DELAY, hash, hint));
                    if self.txlist_due.len() > TXLIST_DUE_MAX {
                        // Still awaited: the periodic retry fetches it.
                        self.txlist_due.pop_front();
                    }
                }
            }
        }
    }

    fn start_catchup(&mut self) {
        if self.catchup_running {
            self.catchup_rerun = true;
            return;
        }
        self.catchup_running = true;
        let ctx = self.catchup_context();
        let done = self.catchup_done.clone();
        tokio::spawn(async move {
            catchup::run(ctx).await;
            let _ = done.send(()).await;
        });
    }

    /// Starts a catch-up round when the head has not moved for `stale_head_check`: without a
    /// later block, a missed gossip message shows no gap, so only asking peers finds it.
    fn check_stale_head(&mut self) {
        let period = self.config.catchup.stale_head_check;
        if !self.config.catchup.enabled || period.is_zero() {
            return;
        }
        let head = self.status.borrow().head_block_number;
        if head != self.last_head.0 {
            self.last_head = (head, Instant::now());
            return;
        }
        if self.catchup_running
            || self.last_head.1.elapsed() < period
            || self.last_head_check.elapsed() < period
        {
            return;
        }
        self.last_head_check = Instant::now();
        debug!(head, "head unchanged for a while; asking peers for theirs");
        self.start_catchup();
    }

    fn catchup_context(&self) -> CatchUpContext {
        CatchUpContext {
            net: self.net.clone(),
            config: self.config.clone(),
            internal: self.internal_tx.clone(),
            status: self.status.clone(),
            slots: self.slots.clone(),
            storage: Arc::downgrade(&self.storage),
        }
    }

    /// Starts fetches of the missing tx lists whose grace period ended, as many as there are
    /// free tx-list fetch permits (`catchup.parallel_txlists`); the rest stay awaited for the
    /// periodic retry. Never spawns a task that would only wait.
    fn fetch_due_txlists(&mut self) {
        let now = Instant::now();
        while let Some(&(due, hash, hint)) = self.txlist_due.front() {
            if due > now {
                break;
            }
            self.txlist_due.pop_front();
            if !self.core.is_awaited(&hash) {
                continue;
            }
            let Ok(permit) = self.txlist_permits.clone().try_acquire_owned() else {
                debug!(%hash, "no free tx-list fetch slot; left to the retry");
                continue;
            };
            self.spawn_txlist_fetch(hash, hint, permit);
        }
    }

    fn spawn_txlist_fetch(&self, hash: B256, hint: Option<PeerId>, permit: OwnedSemaphorePermit) {
        let ctx = self.catchup_context();
        tokio::spawn(async move {
            let _permit = permit;
            let mut peers: Vec<PeerId> = hint.into_iter().collect();
            if let Ok(connected) = ctx.net.connected_peers().await {
                peers.extend(connected.into_iter().filter(|p| Some(*p) != hint));
            }
            catchup::fetch_one_txlist(&ctx, &peers, hash).await;
        });
    }

    /// Fetches `missing` tx lists as catch-up does (batched from peers of ours, one by one
    /// from the others), holding every tx-list fetch permit so retries never overlap each
    /// other or the per-hash fetches.
    fn spawn_txlist_retry(&self, missing: Vec<(B256, u64)>) {
        let permits = self.txlist_permits.clone();
        let all = u32::try_from(self.config.catchup.parallel_txlists).unwrap_or(u32::MAX);
        let ctx = self.catchup_context();
        tokio::spawn(async move {
            let Ok(_permits) = permits.acquire_many_owned(all).await else {
                return;
            };
            let mut excluded = catchup::Exclusions::new(ctx.config.catchup.max_attempts);
            catchup::fetch_txlists(&ctx, &[], &mut excluded, missing).await;
        });
    }

    async fn on_tick(&mut self) {
        self.core.tick();
        self.core.retry_schedule_pending();
        // Retry tx lists still missing (e.g. no peer had them at first).
        self.ticks += 1;
        if self.ticks.is_multiple_of(TXLIST_RETRY_TICKS)
            && self.txlist_permits.available_permits() == self.config.catchup.parallel_txlists
        {
            let mut missing = self.core.awaited();
            missing.truncate(TXLIST_RETRY_MAX);
            if !missing.is_empty() {
                self.spawn_txlist_retry(missing);
            }
        }
        self.check_stale_head();
        if self.last_scores.elapsed() >= self.config.peer_score_interval {
            self.last_scores = Instant::now();
            let net = self.net.clone();
            tokio::spawn(async move {
                if let Ok(peers) = net.peers().await {
                    metrics::peer_scores(peers.iter().map(|p| p.score).collect());
                }
            });
        }
    }
}

async fn publish_one(
    net: &P2pService,
    topic: GossipTopicKind,
    ssz: Vec<u8>,
) -> Result<NetMessageId> {
    match net.publish(topic, ssz).await {
        Ok(id) => {
            metrics::gossip_published(topic, "ok");
            Ok(id)
        }
        Err(NetError::NoPeers) => {
            metrics::gossip_published(topic, "no_peers");
            Err(P2pSdkError::Network(NetError::NoPeers))
        }
        Err(e) => {
            metrics::gossip_published(topic, "error");
            Err(e.into())
        }
    }
}
