//! [`P2pSdk`]: the cheap cloneable handle a sidecar holds. It only sends: every call becomes a
//! [`Command`] to the manager task that owns the state, a request on the network handle, or a
//! read of what the manager shares (status, storage, peer heads). The manager builds it
//! (`P2pSdk::start`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libp2p::{Multiaddr, PeerId};
use preconfirmation_net::{MessageId as NetMessageId, P2pService};
use preconfirmation_types::{
    GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse, GetRawTxListRequest,
    GetRawTxListResponse, GossipTopicKind, PreconfHead, RawTxListGossip, ReqRespKind,
    SignedCommitment, B256, U256,
};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::P2pSdkConfig;
use crate::error::{P2pSdkError, Result};
use crate::fetch::PeerSlots;
use crate::messages::{Command, PublishReceipt};
use crate::metrics;
use crate::peer_view::{PeerHead, PeerHeads, ScheduleDisagreement};
use crate::storage::SdkStorage;
use crate::types::{head_of, PeerInfo, SdkEvent, SdkStatus};
use crate::validation::check_txlist;

/// The stream of [`SdkEvent`]s for one subscriber.
#[derive(Debug)]
pub struct SdkEvents {
    rx: broadcast::Receiver<SdkEvent>,
}

impl SdkEvents {
    /// A subscription on `rx`.
    pub(crate) fn new(rx: broadcast::Receiver<SdkEvent>) -> Self {
        Self { rx }
    }

    /// The next event. [`P2pSdkError::Lagged`] says this subscriber fell more than
    /// `event_channel_capacity` events behind and lost the oldest (counted in
    /// `preconf_backpressure_total{queue="event"}`); the next call continues with what is left.
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

/// What every clone of the handle shares: the manager's inbox and what the manager publishes
/// for reading (status, events, peer heads, schedule disagreement).
pub(crate) struct Shared {
    /// The manager's command channel (bounded: `command_channel_capacity`).
    pub(crate) commands: mpsc::Sender<Command>,
    /// Where the manager's core emits events; new subscriptions start here.
    pub(crate) events: broadcast::Sender<SdkEvent>,
    /// The core's status, updated on every change.
    pub(crate) status: watch::Receiver<SdkStatus>,
    /// The network handle.
    pub(crate) net: P2pService,
    /// The storage the SDK writes and serves from.
    pub(crate) storage: Arc<dyn SdkStorage>,
    /// The configuration in force.
    pub(crate) config: Arc<P2pSdkConfig>,
    /// Request slots per peer and protocol, shared with the manager's fetches.
    pub(crate) slots: PeerSlots,
    /// The heads peers reported in the last catch-up round.
    pub(crate) peer_heads: PeerHeads,
    /// Whether every peer disagrees with the local schedule.
    pub(crate) schedule_disagreement: Arc<parking_lot::Mutex<Option<ScheduleDisagreement>>>,
    /// The manager task, awaited once at shutdown.
    pub(crate) task: parking_lot::Mutex<Option<JoinHandle<()>>>,
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
    /// The handle on what a freshly spawned manager shares.
    pub(crate) fn new(shared: Shared) -> Self {
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Another event subscription, starting now.
    pub fn subscribe(&self) -> SdkEvents {
        SdkEvents::new(self.shared.events.subscribe())
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

    /// Validates locally, stores durably, then publishes the tx list (if any) and then the
    /// commitment (§6): nothing we sign reaches a peer before our own disk holds it, so a
    /// node restarted after a crash never signs a second commitment for the same block. The
    /// tx list's hash must be the commitment's `rawTxListHash`.
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

    /// The highest head a connected peer reported in the last catch-up round (catch-up asks
    /// up to `catchup.head_peers` peers at start, on a gap, on a new peer and when the local
    /// head has not moved for `catchup.stale_head_check`): how far behind the network this
    /// node is. `None` before any peer answered.
    pub async fn best_peer_head(&self) -> Result<Option<PeerHead>> {
        let connected: HashSet<PeerId> = self
            .shared
            .net
            .connected_peers()
            .await?
            .into_iter()
            .collect();
        Ok(self.shared.peer_heads.best(|peer| connected.contains(peer)))
    }

    /// `Some` while every connected peer that delivered a commitment disagrees with the local
    /// schedule (the peers' signer is not the one the schedule elects): the local schedule is
    /// the likely culprit, and peers are not penalised for it.
    pub fn schedule_disagreement(&self) -> Option<ScheduleDisagreement> {
        self.shared.schedule_disagreement.lock().clone()
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
                gossip_dropped: p.gossip_dropped,
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
    // A failure on the wire is counted by the network layer alone (each request once).
    if result.is_ok() {
        metrics::answer(kind, "outbound", "ok");
    }
    result.map_err(Into::into)
}
