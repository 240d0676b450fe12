//! The manager: [`Manager::spawn`] starts the network, the durable writer and the manager task,
//! and returns the handle ([`P2pSdk`]) and a first event subscription, as reth's
//! `NetworkManager` builds its `NetworkHandle`.
//!
//! The manager task owns the [`Core`] (validation state) and is its only writer. It `select!`s
//! over the network events, the handle's commands, the reports of its own tasks (sync, tx-list
//! fetches, durable writes) and a 1 s upkeep tick. It never awaits the network driver:
//! verdicts go out with `try_send`, publications and fetches run on spawned tasks, inbound
//! requests are served on the blocking pool straight from storage ([`crate::serve`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::PeerId;
use preconfirmation_net::{
    GossipVerdict, Keypair, MessageId as NetMessageId, NetError, NetworkEvent, NetworkEvents,
    P2pService,
};
use preconfirmation_types::{
    GossipTopicKind, RawTxListGossip, SignedCommitment, WireMessage, B256,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info};

use crate::config::P2pSdkConfig;
use crate::core::{Core, Effect, GossipBatch, GossipCommitment};
use crate::error::{P2pSdkError, Result};
use crate::fetch::{self, Exclusions, FetchContext, PeerSlots, TxListClaims};
use crate::handle::{P2pSdk, SdkEvents, Shared};
use crate::lookahead::Lookahead;
use crate::messages::{Command, Internal, PublishReceipt};
use crate::metrics;
use crate::peer_view::PeerHeads;
use crate::serve::serve_inbound;
use crate::storage::{SdkStorage, StorageError};
use crate::sync::{self, SyncContext};
use crate::types::{head_of, CommitmentSource, HeadSyncStatus, MessageId, SdkEvent, SdkStatus};
use crate::validation::{check_txlist, RejectReason, ValidationOutcome, Validator};
use crate::writer::{GroupPolicy, WriteJob, Writer};

/// Upkeep period: pending sweep, schedule retry, status refresh.
const TICK: Duration = Duration::from_secs(1);

/// Capacity of the internal channel the manager's own tasks (sync, fetches, the writer) report
/// on; a task waits for room, the manager never does.
const INTERNAL_CHANNEL_CAPACITY: usize = 256;

impl P2pSdk {
    /// Starts the network, the manager task and the writer thread. Call it once the L2
    /// execution engine is synced (§10.3): catch-up starts at once from `storage`'s head (or
    /// the configured anchor).
    ///
    /// Returns the handle and a first event subscription (taken before anything can happen,
    /// so no event is missed).
    pub async fn start(
        config: P2pSdkConfig,
        storage: Arc<dyn SdkStorage>,
        lookahead: Arc<dyn Lookahead>,
        keypair: Option<Keypair>,
    ) -> Result<(P2pSdk, SdkEvents)> {
        Manager::spawn(config, storage, lookahead, keypair).await
    }
}

/// The manager task's state: the core, the durable writer's handle, and the bookkeeping of the
/// tasks it spawned (sync, fetches, waiting publishes).
pub(crate) struct Manager {
    /// The single-writer state machine.
    core: Core,
    /// The network handle.
    net: P2pService,
    /// What the SDK writes (through the writer) and serves.
    storage: Arc<dyn SdkStorage>,
    /// The configuration in force.
    config: Arc<P2pSdkConfig>,
    /// The core's status: the head served to `get_head` and watched for staleness.
    status: watch::Receiver<SdkStatus>,
    /// Where the manager's tasks report; a clone goes with each.
    internal_tx: mpsc::Sender<Internal>,
    /// A catch-up round is running (one at a time).
    catchup_running: bool,
    /// Another round was asked for while one ran: it starts when that one ends.
    catchup_rerun: bool,
    /// A round signals its end here.
    catchup_done: mpsc::Sender<()>,
    /// Tx-list fetches in flight, at most `catchup.parallel_txlists`.
    txlist_permits: Arc<Semaphore>,
    /// Request slots per peer and protocol, shared with the handle.
    slots: PeerSlots,
    /// The tx lists being fetched right now, by any task ([`TxListClaims`]).
    txlist_claims: TxListClaims,
    /// When the peers' scores were last sampled for the metrics.
    last_scores: Instant,
    /// Ticks so far (the periodic tx-list retry runs every [`TXLIST_RETRY_TICKS`]).
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
    /// The heads peers reported in the last catch-up round (shared with the handle).
    peer_heads: PeerHeads,
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
    /// Starts the network, the core on `storage`'s head, the durable writer's thread and the
    /// manager task; returns the handle and a first event subscription.
    pub(crate) async fn spawn(
        config: P2pSdkConfig,
        storage: Arc<dyn SdkStorage>,
        lookahead: Arc<dyn Lookahead>,
        keypair: Option<Keypair>,
    ) -> Result<(P2pSdk, SdkEvents)> {
        config.validate()?;
        let config = Arc::new(config);
        let validator = Validator::from_config(&config, lookahead);
        let (events_tx, events_rx) = broadcast::channel(config.event_channel_capacity);
        let (status_tx, status_rx) = watch::channel(SdkStatus::starting(HeadSyncStatus::Idle));
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
        let peer_heads = PeerHeads::default();
        let schedule_disagreement = core.schedule_disagreement();
        let manager = Manager {
            catchup_done: catchup_done_tx,
            ticks: 0,
            last_head: (0, Instant::now()),
            last_head_check: Instant::now(),
            txlist_due: VecDeque::new(),
            writer: Writer::spawn(
                Arc::downgrade(&storage),
                internal_tx.clone(),
                GroupPolicy::from_config(&config.catchup),
            )?,
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
            txlist_claims: Default::default(),
            last_scores: Instant::now(),
            peer_heads: peer_heads.clone(),
        };
        let task = tokio::spawn(manager.run(commands_rx, internal_rx, catchup_done_rx, net_events));
        info!(peer_id = %net.local_peer_id(), "P2P SDK started");
        let sdk = P2pSdk::new(Shared {
            commands: commands_tx,
            events: events_tx,
            status: status_rx,
            net,
            storage,
            config,
            slots,
            peer_heads,
            schedule_disagreement,
            task: parking_lot::Mutex::new(Some(task)),
        });
        Ok((sdk, SdkEvents::new(events_rx)))
    }

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
                        self.on_network_events(event, &mut net_events).await;
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
        // Durable first, then gossiped: once a peer holds our commitment for block N, our
        // disk does too, so a node restarted after a crash knows it signed N and refuses to
        // sign another commitment for it (two would be slashing evidence). Relayed gossip
        // keeps its verdict before the write; only our own signature waits for the disk.
        let (durable_tx, durable) = oneshot::channel();
        match self.core.last_unstored_write() {
            Some(id) => self.durable_waiters.push_back((id, durable_tx)),
            None => {
                let _ = durable_tx.send(true);
            }
        }
        let net = self.net.clone();
        tokio::spawn(async move {
            if !matches!(durable.await, Ok(true)) {
                let _ = reply.send(Err(P2pSdkError::Storage(StorageError::Backend(
                    "the commitment was accepted but its durable write failed; not published"
                        .into(),
                ))));
                return;
            }
            let published = async {
                let txlist_message_id = match txlist_ssz {
                    Some(ssz) => match publish_one(&net, GossipTopicKind::RawTxLists, ssz).await {
                        Ok(id) => Some(id),
                        // The same bytes went out within gossipsub's duplicate window (another
                        // block with an identical tx list): peers hold the list under its hash
                        // already, and the commitment must still go out.
                        Err(P2pSdkError::Network(NetError::Duplicate)) => None,
                        Err(e) => return Err(e),
                    },
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
            let _ = reply.send(published);
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

    /// `first` and, when it is a gossiped commitment, the gossiped commitments queued right
    /// behind it (up to `gossip_validation.batch_max`), validated as one batch
    /// ([`GossipBatch`]); the first other event taken from the queue is handled after the
    /// batch, so events keep their order. `batch_max` 1: each commitment on its own.
    async fn on_network_events(&mut self, first: NetworkEvent, queued: &mut NetworkEvents) {
        let batch_max = self.config.gossip_validation.batch_max;
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(event) = next.take() {
            match event {
                NetworkEvent::Gossip {
                    peer,
                    topic: topic @ GossipTopicKind::Commitments,
                    message_id,
                    data,
                    received_at,
                } if batch_max > 1 => {
                    metrics::gossip_queued(topic, received_at.elapsed());
                    batch.push((peer, message_id, data));
                    if batch.len() < batch_max {
                        next = queued.try_recv();
                    }
                }
                other => {
                    self.on_gossip_commitments(std::mem::take(&mut batch)).await;
                    self.on_network_event(other);
                }
            }
        }
        self.on_gossip_commitments(batch).await;
    }

    /// Gossiped commitments that arrived together, in order (see [`Self::on_network_events`]).
    /// A commitment that arrived alone takes the direct path (the one `bench validate`
    /// measures on one core).
    async fn on_gossip_commitments(&mut self, mut batch: Vec<GossipCommitment>) {
        if batch.len() <= 1 {
            if let Some((peer, message_id, data)) = batch.pop() {
                let verdict = self
                    .core
                    .on_gossip_commitment(peer, message_id.clone(), &data);
                self.after_gossip(peer, message_id, verdict);
            }
            return;
        }
        let mut batch = GossipBatch::start(&mut self.core, batch);
        while let Some(staged) = batch.next().await {
            let (peer, message_id) = (staged.peer, staged.message_id.clone());
            let verdict = self.core.finish_gossip_commitment(staged);
            self.after_gossip(peer, message_id, verdict);
        }
    }

    /// Reports a gossip message's verdict and runs the effects its handling left.
    fn after_gossip(
        &mut self,
        peer: PeerId,
        message_id: NetMessageId,
        verdict: Option<GossipVerdict>,
    ) {
        // Verdicts this message released: a held tx list its commitment references goes
        // first, so the tx list is forwarded ahead of its commitment as §6 publishes; pending
        // children it unlocked go after it.
        let (children, effects): (Vec<_>, Vec<_>) = self
            .core
            .take_effects()
            .into_iter()
            .partition(|e| matches!(e, Effect::PendingVerdict { .. }));
        self.run_effects_list(effects);
        // None: held (a tx list waiting for its commitment, a pending commitment); its
        // verdict comes as an effect.
        if let Some(verdict) = verdict {
            self.report(message_id, peer, verdict);
        }
        self.run_effects_list(children);
    }

    fn on_network_event(&mut self, event: NetworkEvent) {
        match event {
            NetworkEvent::Gossip {
                peer,
                topic,
                message_id,
                data,
                received_at,
            } => {
                // (Commitments taken into a batch were counted there.)
                metrics::gossip_queued(topic, received_at.elapsed());
                let verdict = match topic {
                    GossipTopicKind::Commitments => {
                        self.core
                            .on_gossip_commitment(peer, message_id.clone(), &data)
                    }
                    GossipTopicKind::RawTxLists => {
                        self.core.on_gossip_txlist(peer, message_id.clone(), &data)
                    }
                };
                self.after_gossip(peer, message_id, verdict);
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
                self.core.peer_connected(peer);
                self.core.emit(SdkEvent::PeerConnected(peer));
                if self.config.catchup.enabled {
                    self.start_catchup();
                }
            }
            NetworkEvent::PeerDisconnected { peer } => {
                self.slots.forget(&peer);
                self.peer_heads.forget(&peer);
                self.core.peer_disconnected(&peer);
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
                    let due = Instant::now() + self.config.catchup.txlist_gossip_grace;
                    self.txlist_due.push_back((due, hash, hint));
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
        let ctx = self.sync_context();
        let done = self.catchup_done.clone();
        tokio::spawn(async move {
            sync::run(ctx).await;
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

    /// What a fetch task needs; each task starts its own batch rotation.
    fn fetch_context(&self) -> FetchContext {
        FetchContext {
            net: self.net.clone(),
            config: self.config.clone(),
            internal: self.internal_tx.clone(),
            slots: self.slots.clone(),
            storage: Arc::downgrade(&self.storage),
            batch_rotation: Default::default(),
            txlist_claims: self.txlist_claims.clone(),
        }
    }

    /// What a catch-up round needs.
    fn sync_context(&self) -> SyncContext {
        SyncContext {
            fetch: self.fetch_context(),
            status: self.status.clone(),
            peer_heads: self.peer_heads.clone(),
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
        let ctx = self.fetch_context();
        tokio::spawn(async move {
            let _permit = permit;
            let mut peers: Vec<PeerId> = hint.into_iter().collect();
            if let Ok(connected) = ctx.net.connected_peers().await {
                peers.extend(connected.into_iter().filter(|p| Some(*p) != hint));
            }
            fetch::fetch_one_txlist(&ctx, &peers, hash).await;
        });
    }

    /// Fetches `missing` tx lists as catch-up does (batched from peers of ours, one by one
    /// from the others), holding every tx-list fetch permit so retries never overlap each
    /// other or the per-hash fetches.
    fn spawn_txlist_retry(&self, missing: Vec<(B256, u64)>) {
        let permits = self.txlist_permits.clone();
        let all = u32::try_from(self.config.catchup.parallel_txlists).unwrap_or(u32::MAX);
        let ctx = self.fetch_context();
        tokio::spawn(async move {
            let Ok(_permits) = permits.acquire_many_owned(all).await else {
                return;
            };
            let mut excluded = Exclusions::new(ctx.config.catchup.max_attempts);
            fetch::fetch_txlists(&ctx, &[], &mut excluded, missing).await;
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
            let mut missing = past_grace(self.core.awaited(), &self.txlist_due, Instant::now());
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

/// The awaited tx lists whose gossip grace period is over: those still queued with a due time
/// in the future are on their way over gossip, and fetching them now would download them
/// twice (on slow links, the fetch itself then slows every other transfer).
fn past_grace(
    awaited: Vec<(B256, u64)>,
    due: &VecDeque<(Instant, B256, Option<PeerId>)>,
    now: Instant,
) -> Vec<(B256, u64)> {
    let waiting: std::collections::HashSet<B256> = due
        .iter()
        .filter(|(at, _, _)| *at > now)
        .map(|(_, hash, _)| *hash)
        .collect();
    awaited
        .into_iter()
        .filter(|(hash, _)| !waiting.contains(hash))
        .collect()
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
        Err(NetError::Duplicate) => {
            metrics::gossip_published(topic, "duplicate");
            Err(P2pSdkError::Network(NetError::Duplicate))
        }
        Err(e) => {
            metrics::gossip_published(topic, "error");
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_periodic_retry_leaves_tx_lists_in_their_grace_period_alone() {
        let now = Instant::now();
        let [fresh, late, unqueued] = [1, 2, 3].map(B256::repeat_byte);
        let due: VecDeque<_> = [
            (now + Duration::from_secs(2), fresh, None),
            (now - Duration::from_millis(1), late, None),
        ]
        .into();
        let awaited = vec![(fresh, 10), (late, 11), (unqueued, 12)];
        assert_eq!(
            past_grace(awaited, &due, now),
            vec![(late, 11), (unqueued, 12)]
        );
    }
}
