//! Catch-up (§10.3): bring the local chain up to the best head among peers, then go live.
//!
//! One round:
//! 1. wait (bounded by `peer_wait`) for a connected peer;
//! 2. ask up to `head_peers` peers for their head (`get_head`, concurrently); with no anchor
//!    hash (the first block's parent taken on trust), first wait briefly for
//!    `first_block_voters` peers and let them vote on the first block: the block most of them
//!    serve is required of the first page, and peers serving another are not used this run;
//! 3. run the range from `local + 1` to the best head through a pipeline of three bounded
//!    stages, so every core and the network stay busy:
//!    - **fetch**: up to `parallel_pages` pages of `page_size` in flight, spread over the
//!      peers whose head covers them, each on its own task: `get_commitments_by_number`, then
//!      at once the page's signatures recovered with rayon on the blocking pool and its tx
//!      lists fetched in batches from peers of ours (`get_raw_txlists`, hashed on the
//!      blocking pool too);
//!    - **validate**: pages in order to the SDK core, which checks chain links and the
//!      schedule and applies them to its in-memory chain (no disk wait on the manager);
//!    - **write**: the SDK's durable writer ([`crate::writer`], shared with gossip) stores
//!      pages' commitments and tx lists in durable transactions ([`SdkStorage::put_page`])
//!      on its own thread, at most `write_queue_pages` pages and `write_queue_bytes`
//!      behind (the permits travel with the page); whatever queued up during one write goes
//!      into the next transaction (group commit), so the writer keeps up however slow each
//!      transaction is; the core announces a page only once it is durable.
//! 4. tx lists no batch peer had are fetched afterwards, one hash at a time from any peer.
//!
//! A peer that answers with an empty page although it claimed a higher head (unless it
//! pruned those blocks), a page that does not start where asked, a bad signature, a broken
//! parent link or a tx list that does not hash to its commitment is a liar: it is penalised
//! (§7.1), dropped for the rest of the run and the work is retried with another peer. A round
//! never loops on an empty page; rounds without progress give up after `max_attempts`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use libp2p::PeerId;
use preconfirmation_net::{P2pService, RequestError};
use preconfirmation_types::{
    preconfirmation_hash, Address, GetCommitmentsByNumberRequest, GetRawTxListRequest,
    GetRawTxListResponse, GetRawTxListsRequest, ReqRespKind, SignedCommitment, TypesError, B256,
    MAX_TXLISTS_PER_REQUEST, U256,
};
use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::config::P2pSdkConfig;
use crate::messages::Internal;
use crate::metrics;
use crate::storage::SdkStorage;
use crate::types::{HeadSyncStatus, SdkStatus};
use crate::validation::check_txlist;

/// At most `per_peer` outbound requests of one protocol in flight to any one peer, shared by
/// every task of the SDK. Peers refuse (and penalise) requests above their per-protocol
/// concurrency limit (§7), so we never send them.
#[derive(Debug, Clone)]
pub(crate) struct PeerSlots {
    slots: Arc<parking_lot::Mutex<SlotMap>>,
    per_peer: usize,
}

/// One semaphore per peer and protocol.
type SlotMap = HashMap<(PeerId, ReqRespKind), Arc<Semaphore>>;

/// When the slot map holds more entries than this, idle ones (no request in flight, nobody
/// waiting) are dropped: entries are normally forgotten when their peer disconnects, and this
/// bounds the map even if that event is lost (the SDK's event channel may drop under load) or
/// many peer ids come and go. 512 is ten times the default `max_peers` × the four protocols'
/// worth of headroom.
const SLOT_MAP_SWEEP_LEN: usize = 512;

impl PeerSlots {
    pub(crate) fn new(per_peer: usize) -> Self {
        Self {
            slots: Arc::default(),
            per_peer: per_peer.max(1),
        }
    }

    /// Waits for a free `kind` request slot towards `peer`.
    pub(crate) async fn acquire(
        &self,
        peer: PeerId,
        kind: ReqRespKind,
    ) -> Option<OwnedSemaphorePermit> {
        let semaphore = {
            let mut slots = self.slots.lock();
            if slots.len() >= SLOT_MAP_SWEEP_LEN {
                // Only the map holds an idle entry's semaphore; permits and waiters clone it.
                slots.retain(|_, s| Arc::strong_count(s) > 1);
            }
            slots
                .entry((peer, kind))
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_peer)))
                .clone()
        };
        semaphore.acquire_owned().await.ok()
    }

    /// Forgets a disconnected peer.
    pub(crate) fn forget(&self, peer: &PeerId) {
        self.slots.lock().retain(|(p, _), _| p != peer);
    }

    /// Entries held (peer, protocol).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.lock().len()
    }
}

/// Peers a catch-up run no longer uses: liars at once, peers that pruned the blocks we need
/// (not penalised) at once, others after repeated failures.
#[derive(Debug, Default)]
pub(crate) struct Exclusions {
    liars: HashSet<PeerId>,
    pruned: HashSet<PeerId>,
    forked: HashSet<PeerId>,
    failures: HashMap<PeerId, usize>,
    max_failures: usize,
}

impl Exclusions {
    pub(crate) fn new(max_failures: usize) -> Self {
        Self {
            max_failures: max_failures.max(1),
            ..Default::default()
        }
    }

    fn liar(&mut self, peer: PeerId) {
        self.liars.insert(peer);
    }

    /// `peer` no longer holds the blocks we need (it serves its head, not below): an honest
    /// peer with a retention limit. Not asked again this run, and not penalised.
    fn pruned(&mut self, peer: PeerId) {
        self.pruned.insert(peer);
    }

    /// `peer` serves a first block other than the one most peers agree on
    /// ([`agree_first_block`]): not used this run, not penalised (with no anchor hash we
    /// cannot prove which chain is wrong).
    fn forked(&mut self, peer: PeerId) {
        self.forked.insert(peer);
    }

    fn failed(&mut self, peer: PeerId) {
        *self.failures.entry(peer).or_default() += 1;
    }

    fn contains(&self, peer: &PeerId) -> bool {
        self.liars.contains(peer)
            || self.pruned.contains(peer)
            || self.forked.contains(peer)
            || self
                .failures
                .get(peer)
                .is_some_and(|n| *n >= self.max_failures)
    }
}

/// What a catch-up task needs.
#[derive(Clone)]
pub(crate) struct CatchUpContext {
    pub(crate) net: P2pService,
    pub(crate) config: Arc<P2pSdkConfig>,
    pub(crate) internal: mpsc::Sender<Internal>,
    pub(crate) status: watch::Receiver<SdkStatus>,
    pub(crate) slots: PeerSlots,
    /// The SDK's storage: the write stage and fetched tx lists are written from here, on the
    /// blocking pool, never on the manager task. Weak, so a task still winding down after the
    /// SDK stopped never keeps the store open (a restart in the same process reopens it).
    pub(crate) storage: std::sync::Weak<dyn SdkStorage>,
    /// Where the next `get_raw_txlists` batch starts in the list of batch peers: batches go
    /// round-robin over the peers across pages, so a page of 4 batches over 3 peers does not
    /// send every page's extra batch to the same first peer (and drain its limits first).
    pub(crate) batch_rotation: Arc<std::sync::atomic::AtomicUsize>,
    /// Tx lists some task of the SDK is fetching right now, shared by all of them.
    pub(crate) txlist_claims: TxListClaims,
    /// Where each round's `get_head` answers go (for readiness: how far behind peers we are).
    pub(crate) peer_heads: crate::peer_view::PeerHeads,
}

/// The tx lists being fetched, by any task of the SDK (catch-up's owed lists, the fetch after
/// a gossip grace period, the periodic retry): a task fetches only the hashes it could claim,
/// so no tx list is requested twice at once, from one peer or two (the strict reference
/// allows 8 requests per 10 s; a duplicate wastes one of them). A claim ends when its task is
/// done with the hash, found or not.
#[derive(Debug, Clone, Default)]
pub(crate) struct TxListClaims(Arc<parking_lot::Mutex<HashSet<B256>>>);

/// The hashes one task claimed; released when dropped.
#[derive(Debug)]
pub(crate) struct TxListClaim {
    claims: TxListClaims,
    hashes: Vec<B256>,
}

impl TxListClaims {
    /// Claims those of `missing` nobody is fetching; returns them with the claim.
    pub(crate) fn claim(&self, missing: Vec<(B256, u64)>) -> (Vec<(B256, u64)>, TxListClaim) {
        let mut held = self.0.lock();
        let claimed: Vec<(B256, u64)> = missing
            .into_iter()
            .filter(|(hash, _)| held.insert(*hash))
            .collect();
        let hashes = claimed.iter().map(|(h, _)| *h).collect();
        drop(held);
        let claim = TxListClaim {
            claims: self.clone(),
            hashes,
        };
        (claimed, claim)
    }

    /// Hashes claimed right now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().len()
    }
}

impl Drop for TxListClaim {
    fn drop(&mut self) {
        let mut held = self.claims.0.lock();
        for hash in &self.hashes {
            held.remove(hash);
        }
    }
}

type Page = Vec<(SignedCommitment, Result<Address, TypesError>)>;

impl CatchUpContext {
    fn local_head(&self) -> u64 {
        self.status.borrow().head_block_number
    }

    async fn set_sync(&self, sync: HeadSyncStatus) {
        let _ = self.internal.send(Internal::SetSync(sync)).await;
    }

    fn penalise(&self, peer: PeerId, reason: &'static str) {
        metrics::catchup_peer_failure(reason);
        warn!(%peer, reason, "catch-up peer misbehaved");
        let _ = self.net.penalize_peer(peer, reason);
    }
}

/// Runs `request` again while the network layer holds it back to respect the peer's limits
/// ([`RequestError::Throttled`]), sleeping as long as it says, for at most
/// `catchup.max_pacing_wait` in total.
async fn paced<T, F, Fut>(ctx: &CatchUpContext, mut request: F) -> Result<T, RequestError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, RequestError>>,
{
    let deadline = tokio::time::Instant::now() + ctx.config.catchup.max_pacing_wait;
    loop {
        match request().await {
            Err(RequestError::Throttled(retry))
                if tokio::time::Instant::now() + retry <= deadline =>
            {
                tokio::time::sleep(retry).await;
            }
            other => return other,
        }
    }
}

/// Runs catch-up rounds until caught up (or out of attempts), then reports `Live`.
pub(crate) async fn run(ctx: CatchUpContext) {
    let ctx = Arc::new(ctx);
    let started = Instant::now();
    let head_at_start = ctx.local_head();
    let mut excluded = Exclusions::new(ctx.config.catchup.max_attempts);
    let mut attempts = 0;
    loop {
        match round(&ctx, &mut excluded).await {
            RoundResult::CaughtUp => break,
            RoundResult::NoPeers => {
                debug!("no peers to catch up from");
                break;
            }
            RoundResult::ScheduleUnknown => {
                info!(
                    head = ctx.local_head(),
                    "catch-up paused: the schedule for the next blocks is not known yet"
                );
                break;
            }
            RoundResult::Stalled => {
                attempts += 1;
                if attempts >= ctx.config.catchup.max_attempts {
                    warn!(attempts, "catch-up made no progress; going live");
                    break;
                }
                tokio::time::sleep(ctx.config.catchup.retry_backoff).await;
            }
        }
    }
    let head = ctx.local_head();
    let elapsed_ms = started.elapsed().as_millis() as u64;
    // A check that found nothing to fetch (every `stale_head_check` while idle) is not news.
    if head > head_at_start {
        info!(
            head,
            fetched = head - head_at_start,
            elapsed_ms,
            "catch-up done"
        );
    } else {
        debug!(head, elapsed_ms, "catch-up done");
    }
    ctx.set_sync(HeadSyncStatus::Live).await;
}

enum RoundResult {
    CaughtUp,
    NoPeers,
    Stalled,
    /// The next blocks wait for the schedule; the core restarts catch-up once it accepts them.
    ScheduleUnknown,
}

async fn round(ctx: &Arc<CatchUpContext>, excluded: &mut Exclusions) -> RoundResult {
    let Some(peers) = wait_for_peers(ctx, excluded).await else {
        return RoundResult::NoPeers;
    };
    let local = ctx.local_head();
    let mut candidates = best_heads(ctx, peers).await;
    ctx.peer_heads.replace(&candidates);
    candidates.retain(|(_, head)| *head > local);
    let Some(&(_, target)) = candidates.first() else {
        return RoundResult::CaughtUp;
    };
    ctx.set_sync(HeadSyncStatus::Syncing { local, target })
        .await;
    info!(local, target, peers = candidates.len(), "catching up");
    let first = if ctx.status.borrow().head_hash.is_none() {
        agree_first_block(ctx, &candidates, excluded, local + 1).await
    } else {
        None
    };
    loop {
        let local = ctx.local_head();
        candidates.retain(|(_, head)| *head > local);
        if local >= target || candidates.is_empty() {
            return RoundResult::CaughtUp;
        }
        candidates.retain(|(p, _)| !excluded.contains(p));
        if candidates.is_empty() {
            // Peers claim more, but every one of them failed or lied: ask again next round.
            return RoundResult::Stalled;
        }
        match pipeline(ctx, &candidates, excluded, local, target, first).await {
            Batch::Ran => {}
            Batch::NothingToAsk => return RoundResult::CaughtUp,
            Batch::ScheduleUnknown => return RoundResult::ScheduleUnknown,
        }
    }
}

/// Connected peers, best-scored first, waiting up to `peer_wait` for the first one. While the
/// first block is still to be voted on (no head hash), it then waits up to
/// `first_block_wait` more for `first_block_voters` peers.
async fn wait_for_peers(ctx: &CatchUpContext, excluded: &Exclusions) -> Option<Vec<PeerId>> {
    let config = &ctx.config.catchup;
    let deadline = tokio::time::Instant::now() + config.peer_wait;
    let mut voters_deadline = None;
    loop {
        let mut peers = ctx.net.peers().await.ok()?;
        peers.retain(|p| !excluded.contains(&p.peer_id));
        let now = tokio::time::Instant::now();
        if !peers.is_empty() {
            let voting = ctx.status.borrow().head_hash.is_none();
            let enough = !voting || peers.len() >= config.first_block_voters;
            let waited = *voters_deadline.get_or_insert(now + config.first_block_wait) <= now;
            if enough || waited {
                peers.sort_by(|a, b| b.score.total_cmp(&a.score));
                return Some(peers.into_iter().map(|p| p.peer_id).collect());
            }
        } else if now >= deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `get_head` from up to `head_peers` peers at once; (peer, head) sorted best first.
async fn best_heads(ctx: &CatchUpContext, peers: Vec<PeerId>) -> Vec<(PeerId, u64)> {
    let asked = peers.into_iter().take(ctx.config.catchup.head_peers);
    let mut heads: Vec<(PeerId, u64)> = stream::iter(asked)
        .map(|peer| async move {
            let _slot = ctx.slots.acquire(peer, ReqRespKind::GetHead).await?;
            let started = Instant::now();
            let result = paced(ctx, || ctx.net.request_head(peer)).await;
            metrics::request_latency(ReqRespKind::GetHead, started.elapsed());
            let head = result.ok()?.block_number;
            let Ok(head) = u64::try_from(head) else {
                metrics::answer(ReqRespKind::GetHead, "outbound", "invalid");
                return None;
            };
            metrics::answer(ReqRespKind::GetHead, "outbound", "ok");
            Some((peer, head))
        })
        .buffer_unordered(ctx.config.catchup.head_peers)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    heads.sort_by_key(|(_, head)| std::cmp::Reverse(*head));
    heads
}

/// With no anchor hash (`Anchor::preconfirmation_hash = None`) the first block's parent is
/// taken on trust, so whoever serves block `first` decides which chain this node follows: a
/// peer serving a validly signed fork would win if its page happened to be validated first.
/// So every candidate whose head covers `first` is asked for that one block, and the block
/// most of them serve wins (a tie goes to the block of the best-scored peer); candidates
/// serving another are excluded from this run ([`Exclusions::forked`]). Returns the agreed
/// block's number and `preconfirmation_hash`, which the pipeline then requires of the page
/// starting there; `None` if nobody answered. A configured anchor hash makes this moot.
async fn agree_first_block(
    ctx: &CatchUpContext,
    candidates: &[(PeerId, u64)],
    excluded: &mut Exclusions,
    first: u64,
) -> Option<(u64, B256)> {
    let asked = candidates
        .iter()
        .filter(|(p, head)| *head >= first && !excluded.contains(p))
        .map(|(p, _)| *p)
        .take(ctx.config.catchup.head_peers.max(1))
        .collect::<Vec<_>>();
    let answers: Vec<(PeerId, B256)> = stream::iter(asked)
        .map(|peer| async move {
            let page = request_page(ctx, peer, first, 1).await.ok()?;
            let block = page.first()?;
            (block.preconf().block_number == U256::from(first))
                .then(|| (peer, preconfirmation_hash(block.preconf())))
        })
        .buffer_unordered(ctx.config.catchup.head_peers.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let scores: HashMap<PeerId, f64> = ctx
        .net
        .peers()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.peer_id, p.score))
        .collect();
    let agreed = pick_first_block(&answers, |p| {
        scores.get(p).copied().unwrap_or(f64::NEG_INFINITY)
    })?;
    let votes = answers.iter().filter(|(_, h)| *h == agreed).count();
    for (peer, hash) in &answers {
        if *hash != agreed {
            metrics::catchup_peer_failure("forked_first_block");
            warn!(%peer, first, %hash, %agreed, "peer serves another first block; not used this run");
            excluded.forked(*peer);
        }
    }
    if votes < 2 && answers.len() >= 2 {
        warn!(first, %agreed, answers = answers.len(), "no two peers agree on the first block; following the best-scored");
    }
    Some((first, agreed))
}

/// The hash most `answers` name; a tie goes to the one named by the peer with the highest
/// `score`.
fn pick_first_block(answers: &[(PeerId, B256)], score: impl Fn(&PeerId) -> f64) -> Option<B256> {
    let mut tally: HashMap<B256, (usize, f64)> = HashMap::new();
    for (peer, hash) in answers {
        let entry = tally.entry(*hash).or_insert((0, f64::NEG_INFINITY));
        entry.0 += 1;
        entry.1 = entry.1.max(score(peer));
    }
    tally
        .into_iter()
        .max_by(|(_, (va, sa)), (_, (vb, sb))| va.cmp(vb).then(sa.total_cmp(sb)))
        .map(|(hash, _)| hash)
}

enum Batch {
    /// The pages ran: the range is done, or a page failed (its peer excluded) or was not
    /// stored; the caller re-plans from the new head.
    Ran,
    NothingToAsk,
    /// The schedule cannot judge the next blocks yet; they wait as pending.
    ScheduleUnknown,
}

/// Aborts a spawned task when dropped: pages fetched ahead of a failure are not wanted.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.0.poll_unpin(cx)
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Who a run asks for tx lists: every useful peer, and which of them speak the batched
/// protocol (`get_raw_txlists`, PROTOCOL-EXT.md).
#[derive(Debug, Clone, Default)]
struct TxListPeers {
    all: Vec<PeerId>,
    extended: HashSet<PeerId>,
}

impl TxListPeers {
    /// `candidates` first, then every other connected peer, without excluded ones.
    async fn snapshot(
        ctx: &CatchUpContext,
        candidates: &[(PeerId, u64)],
        excluded: &Exclusions,
    ) -> Self {
        let mut all: Vec<PeerId> = candidates.iter().map(|(p, _)| *p).collect();
        let snapshot = ctx.net.peers().await.unwrap_or_default();
        for p in &snapshot {
            if !all.contains(&p.peer_id) {
                all.push(p.peer_id);
            }
        }
        all.retain(|p| !excluded.contains(p));
        let extended = snapshot
            .iter()
            .filter(|p| p.extended)
            .map(|p| p.peer_id)
            .collect();
        Self { all, extended }
    }

    /// The peers that answer `get_raw_txlists`.
    fn batch_peers(&self) -> Vec<PeerId> {
        self.all
            .iter()
            .filter(|p| self.extended.contains(p))
            .copied()
            .collect()
    }
}

/// A page out of the fetch stage.
struct FetchedPage {
    peer: PeerId,
    start: u64,
    /// The page with recovered signers, or why it could not be had.
    page: Result<Page, &'static str>,
    /// Verified tx lists of the page's commitments, by hash.
    txlists: HashMap<B256, Bytes>,
    /// Peers that served a tx list not matching its hash (already penalised).
    liars: Vec<PeerId>,
}

/// Runs blocks `local + 1 ..= target` through the fetch → validate → write pipeline (module
/// docs); returns once the range is done or a page failed (the caller re-plans from the new
/// head with the liars and failures excluded).
async fn pipeline(
    ctx: &Arc<CatchUpContext>,
    candidates: &[(PeerId, u64)],
    excluded: &mut Exclusions,
    local: u64,
    target: u64,
    first: Option<(u64, B256)>,
) -> Batch {
    let usable: Vec<(PeerId, u64)> = candidates
        .iter()
        .filter(|(p, _)| !excluded.contains(p))
        .copied()
        .collect();
    let mut plan = PagePlan::new(usable, local, target, ctx.config.catchup.page_size);
    // The first page decides whether there is anything to ask; the rest are planned lazily,
    // as the fetch stage has room: the target is a peer's claim, and the range it names may
    // be far larger than anything memory could hold a plan for.
    let Some(first_page) = plan.next() else {
        return Batch::NothingToAsk;
    };
    let txlist_peers = Arc::new(TxListPeers::snapshot(ctx, candidates, excluded).await);
    let mut pages = stream::iter(std::iter::once(first_page).chain(plan))
        .map(|(peer, start, count)| {
            AbortOnDrop(tokio::spawn(fetch_page(
                ctx.clone(),
                txlist_peers.clone(),
                peer,
                start,
                count,
            )))
        })
        .buffered(ctx.config.catchup.parallel_pages.max(1));
    // The write queue: at most `write_queue_pages` pages and `write_queue_bytes` between
    // this stage and the end of their durable write.
    let write_pages = Arc::new(Semaphore::new(ctx.config.catchup.write_queue_pages.max(1)));
    let write_budget = Arc::new(Semaphore::new(
        write_queue_units(&ctx.config.catchup) as usize
    ));
    let mut writes = Vec::new();
    let mut schedule_unknown = false;
    while let Some(fetched) = pages.next().await {
        let Ok(FetchedPage {
            peer,
            start,
            page,
            txlists,
            liars,
        }) = fetched
        else {
            break;
        };
        for liar in liars {
            excluded.liar(liar);
        }
        let page = match page {
            Ok(page) => page,
            Err(reason) => {
                metrics::catchup_peer_failure(reason);
                debug!(%peer, reason, "page request failed");
                excluded.failed(peer);
                break;
            }
        };
        if page.is_empty() {
            // It claimed a head at or above `start` and has nothing from there: either it
            // pruned those blocks (`retain_blocks`, honest) or it lies about its head. Ask it
            // for the head it claimed: a peer that serves it pruned, one that does not lied.
            let claimed = candidates
                .iter()
                .find(|(p, _)| *p == peer)
                .map_or(start, |(_, head)| *head);
            if serves_block(ctx, peer, claimed).await {
                debug!(%peer, start, claimed, "peer pruned below its head; not asked again this run");
                metrics::catchup_peer_failure("pruned");
                excluded.pruned(peer);
            } else {
                ctx.penalise(peer, "catchup_empty_page");
                excluded.liar(peer);
            }
            break;
        }
        if page[0].0.preconf().block_number != U256::from(start) {
            ctx.penalise(peer, "catchup_wrong_start");
            excluded.liar(peer);
            break;
        }
        if let Some((number, agreed)) = first {
            if start == number && preconfirmation_hash(page[0].0.preconf()) != agreed {
                // Not the first block the peers agreed on (it did not vote, or changed its
                // answer): another chain, taken on trust otherwise.
                metrics::catchup_peer_failure("forked_first_block");
                excluded.forked(peer);
                break;
            }
        }
        // Room in the write queue first (a page larger than the whole byte budget goes
        // alone, once the queue is empty).
        let budget = write_queue_units(&ctx.config.catchup);
        let units = write_units(page_bytes(&page, &txlists)).min(budget);
        let (Ok(page_permit), Ok(byte_permit)) = (
            write_pages.clone().acquire_owned().await,
            write_budget.clone().acquire_many_owned(units).await,
        ) else {
            break;
        };
        let (reply, rx) = oneshot::channel();
        let page = Internal::CatchUpPage {
            peer,
            items: page,
            txlists,
            permits: vec![page_permit, byte_permit],
            reply,
        };
        if ctx.internal.send(page).await.is_err() {
            break;
        }
        let Ok((result, write)) = rx.await else {
            break;
        };
        if let Some(write) = write {
            writes.push(write);
        }
        if result.schedule_unknown {
            // Not the peer's fault: the local schedule cannot judge the page yet (L1 not read,
            // unreachable, or not an archive node). It waits as pending, unscored, and catch-up
            // resumes once the schedule accepts it.
            debug!(%peer, start, "schedule unknown for a page; it waits as pending");
            metrics::catchup_peer_failure("schedule_unknown");
            schedule_unknown = true;
            break;
        }
        if result.failure.is_some() || result.gap {
            // A bad signature, wrong signer, broken parent link or a hole in the page; not the
            // peer's fault when every peer disagrees with the local schedule (peer_view).
            // A static peer is dropped rather than penalised for it (never banned for it).
            if result.schedule_disagreement {
                metrics::catchup_peer_failure("schedule_disagreement");
            } else {
                ctx.penalise(peer, preconfirmation_net::CATCHUP_DISAGREEMENT_REASON);
            }
            excluded.liar(peer);
            break;
        }
    }
    drop(pages);
    // Wait for this round's writes: the tx lists the durable ones still owe.
    let mut owed = Vec::new();
    for write in writes {
        if let Ok(Ok((_, missing))) = write.await {
            owed.extend(missing);
        }
    }
    // What no batch peer had: ask every peer, one hash at a time.
    fetch_txlists(ctx, candidates, excluded, owed).await;
    if schedule_unknown {
        Batch::ScheduleUnknown
    } else {
        Batch::Ran
    }
}

/// The pages of a catch-up range `local + 1 ..= target`, produced one at a time: `(peer, start,
/// count)`, each page going to the next peer (round-robin) whose claimed head covers it.
/// Nothing here is sized by the range: `target` is what a peer claimed (a liar may claim
/// `u64::MAX`), so the plan holds only its cursor, and the fetch stage pulls at most
/// `parallel_pages` pages from it at a time.
#[derive(Debug)]
struct PagePlan {
    /// Usable candidates (not excluded when the plan was made) with their claimed heads.
    peers: Vec<(PeerId, u64)>,
    /// First block of the next page; `None` once the range is done.
    next_start: Option<u64>,
    target: u64,
    page_size: u64,
    /// Pages planned so far (the round-robin position).
    planned: usize,
}

impl PagePlan {
    fn new(peers: Vec<(PeerId, u64)>, local: u64, target: u64, page_size: usize) -> Self {
        Self {
            peers,
            next_start: local.checked_add(1).filter(|start| *start <= target),
            target,
            page_size: (page_size.max(1) as u64),
            planned: 0,
        }
    }
}

impl Iterator for PagePlan {
    type Item = (PeerId, u64, u64);

    fn next(&mut self) -> Option<Self::Item> {
        let start = self.next_start?;
        // At most the candidates' count: O(peers) per page, never O(range).
        let able = self.peers.iter().filter(|(_, head)| *head >= start).count();
        if able == 0 {
            self.next_start = None;
            return None;
        }
        let pick = self.planned % able;
        let peer = self
            .peers
            .iter()
            .filter(|(_, head)| *head >= start)
            .nth(pick)
            .map(|(p, _)| *p)?;
        let count = self.page_size.min(self.target - start + 1);
        self.next_start = start.checked_add(count).filter(|next| *next <= self.target);
        self.planned += 1;
        Some((peer, start, count))
    }
}

/// The write queue's byte budget counts in units of this many bytes (a semaphore holds at
/// most `u32::MAX` permits).
const WRITE_UNIT_BYTES: usize = 1024;

/// Units of `bytes`, rounded up, at least one.
fn write_units(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(WRITE_UNIT_BYTES).max(1)).unwrap_or(u32::MAX)
}

/// The write queue's byte budget (`catchup.write_queue_bytes`) in units, at least one.
fn write_queue_units(config: &crate::config::CatchUpConfig) -> u32 {
    write_units(config.write_queue_bytes)
}

/// Bytes a fetched page holds until it is written: its commitments at their SSZ size and its
/// tx lists.
fn page_bytes(page: &Page, txlists: &HashMap<B256, Bytes>) -> usize {
    page.len() * preconfirmation_types::SIGNED_COMMITMENT_SSZ_LEN
        + txlists.values().map(Bytes::len).sum::<usize>()
}

/// Whether `peer` serves the commitment of block `number` (a one-commitment page).
async fn serves_block(ctx: &CatchUpContext, peer: PeerId, number: u64) -> bool {
    let Some(_slot) = ctx
        .slots
        .acquire(peer, ReqRespKind::GetCommitmentsByNumber)
        .await
    else {
        return false;
    };
    let request = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(number),
        max_count: 1,
    };
    match paced(ctx, || ctx.net.request_commitments(peer, request)).await {
        Ok(r) => r
            .commitments
            .first()
            .is_some_and(|c| c.preconf().block_number == U256::from(number)),
        Err(_) => false,
    }
}

/// The fetch stage for one page: `get_commitments_by_number`, then at once every signature
/// recovered (rayon, blocking pool) and the page's tx lists fetched in batches from peers of
/// ours.
async fn fetch_page(
    ctx: Arc<CatchUpContext>,
    txlist_peers: Arc<TxListPeers>,
    peer: PeerId,
    start: u64,
    count: u64,
) -> FetchedPage {
    let mut fetched = FetchedPage {
        peer,
        start,
        page: Err("request_failed"),
        txlists: HashMap::new(),
        liars: Vec::new(),
    };
    let commitments = match request_page(&ctx, peer, start, count).await {
        Ok(commitments) => commitments,
        Err(reason) => {
            fetched.page = Err(reason);
            return fetched;
        }
    };
    let hashes: Vec<(B256, u64)> = commitments
        .iter()
        .filter_map(|c| {
            let hash = c.preconf().raw_tx_list_hash;
            let number = u64::try_from(c.preconf().block_number).ok()?;
            (hash != B256::ZERO).then_some((hash, number))
        })
        .collect();
    let domain = ctx.config.chain.domain;
    let recover = tokio::task::spawn_blocking(move || {
        commitments
            .into_par_iter()
            .map(|c| {
                let signer = preconfirmation_types::recover_signer(&domain, &c);
                (c, signer)
            })
            .collect::<Page>()
    });
    let batch_peers = txlist_peers.batch_peers();
    let txlists = async {
        if batch_peers.is_empty() || hashes.is_empty() {
            return (Vec::new(), Vec::new());
        }
        // Not looked up in storage first: behind the head a node rarely holds a tx list
        // without its commitment, and the write skips one it already has.
        let (found, _left, wrong) = fetch_batched(&ctx, &batch_peers, hashes).await;
        (found, wrong)
    };
    let (recovered, (found, wrong)) = tokio::join!(recover, txlists);
    fetched.page = recovered.map_err(|_| "verify_task_failed");
    fetched.txlists = found.into_iter().collect();
    fetched.liars = wrong;
    fetched
}

/// One `get_commitments_by_number` page from `peer`, paced to its limits.
async fn request_page(
    ctx: &CatchUpContext,
    peer: PeerId,
    start: u64,
    count: u64,
) -> Result<Vec<SignedCommitment>, &'static str> {
    let kind = ReqRespKind::GetCommitmentsByNumber;
    let _slot = ctx.slots.acquire(peer, kind).await.ok_or("shutdown")?;
    let started = Instant::now();
    let request = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(start),
        max_count: u32::try_from(count).unwrap_or(u32::MAX),
    };
    let response = paced(ctx, || ctx.net.request_commitments(peer, request)).await;
    metrics::request_latency(kind, started.elapsed());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            debug!(%peer, error = %e, "get_commitments_by_number failed");
            return Err("request_failed");
        }
    };
    let commitments: Vec<SignedCommitment> = response.commitments.into();
    if commitments.len() as u64 > count {
        metrics::answer(kind, "outbound", "invalid");
        return Err("page_too_long");
    }
    let result = if commitments.is_empty() {
        "empty"
    } else {
        "ok"
    };
    metrics::answer(kind, "outbound", result);
    Ok(commitments)
}

/// Fetched tx lists are stored (on the blocking pool) in groups of at most this many, so a
/// page's tx lists cost one durable write instead of one each.
pub(crate) const TXLIST_STORE_BATCH: usize = 256;

/// ... and of at most this many bytes, so a group of large tx lists (up to 2 MiB each, §3)
/// never piles up in memory: 32 MiB.
pub(crate) const TXLIST_STORE_BATCH_BYTES: usize = 32 << 20;

/// Fetches `missing` tx lists (each referenced by a stored commitment) by hash: batched from
/// peers of ours, then one hash at a time from `candidates` and any connected peer, at most
/// `parallel_txlists` at once; a peer that serves bytes not hashing to the commitment's
/// `rawTxListHash` is penalised and skipped. Works in waves of as many batches as may be in
/// flight, storing each wave before the next, so memory holds one wave's responses (each
/// capped at `MAX_RAW_TXLISTS_RESPONSE_BYTES`) however many tx lists are owed. Verified
/// lists are stored off the manager task, then reported to the core.
pub(crate) async fn fetch_txlists(
    ctx: &CatchUpContext,
    candidates: &[(PeerId, u64)],
    excluded: &mut Exclusions,
    missing: Vec<(B256, u64)>,
) {
    let (missing, _claim) = ctx.txlist_claims.claim(missing);
    if missing.is_empty() {
        return;
    }
    let numbers: HashMap<B256, u64> = missing.iter().copied().collect();
    let mut peers = TxListPeers::snapshot(ctx, candidates, excluded).await;
    let mut bad = Vec::new();
    // Peers of ours answer up to 64 hashes per request (`get_raw_txlists`, PROTOCOL-EXT.md);
    // what they did not have (or did not fit) is asked one hash at a time, of every peer.
    let batch_peers = peers.batch_peers();
    let missing = if batch_peers.is_empty() {
        missing
    } else {
        let wave = batch_peers.len()
            * ctx.config.catchup.max_requests_per_peer.max(1)
            * MAX_TXLISTS_PER_REQUEST;
        let mut left = Vec::new();
        for chunk in missing.chunks(wave) {
            let (found, not_found, wrong) = fetch_batched(ctx, &batch_peers, chunk.to_vec()).await;
            bad.extend(wrong);
            left.extend(not_found);
            store_txlists(ctx, &numbers, found).await;
        }
        peers.all.retain(|p| !bad.contains(p));
        left
    };
    let mut fetched = stream::iter(missing.into_iter().enumerate())
        .map(|(i, (hash, _))| {
            let order = fetch_order(&peers.all, &peers.extended, i);
            async move { (hash, fetch_txlist_from(ctx, &order, hash).await) }
        })
        .buffer_unordered(ctx.config.catchup.parallel_txlists);
    // Each list is stored as soon as it arrives, together with whatever else has arrived by
    // then (group commit): lists that trickle in (a strict peer answers 8 requests per 10 s)
    // are durable at once, so none is fetched twice because a crash lost it unwritten.
    while let Some(first) = fetched.next().await {
        let ready = ready_group(first, &mut fetched, &mut bad);
        store_txlists(ctx, &numbers, ready).await;
    }
    for peer in bad {
        excluded.liar(peer);
    }
}

/// One tx list fetched by hash: the verified bytes, if a peer had them, and the peers that
/// served a wrong one.
type FetchedTxList = (B256, (Option<Bytes>, Vec<PeerId>));

/// One group of fetched tx lists to store: `first` and whatever else has arrived by now
/// (never waiting for more), up to [`TXLIST_STORE_BATCH`] lists or
/// [`TXLIST_STORE_BATCH_BYTES`] bytes; peers that served a wrong list are added to `bad`.
fn ready_group<S>(
    first: FetchedTxList,
    fetched: &mut S,
    bad: &mut Vec<PeerId>,
) -> Vec<(B256, Bytes)>
where
    S: stream::Stream<Item = FetchedTxList> + Unpin,
{
    let mut ready = Vec::new();
    let mut ready_bytes = 0;
    let mut next = Some(first);
    while let Some((hash, (txlist, wrong))) = next.take() {
        bad.extend(wrong);
        if let Some(txlist) = txlist {
            ready_bytes += txlist.len();
            ready.push((hash, txlist));
        }
        if ready.len() < TXLIST_STORE_BATCH && ready_bytes < TXLIST_STORE_BATCH_BYTES {
            next = fetched.next().now_or_never().flatten();
        }
    }
    ready
}

/// Stores verified tx lists on the blocking pool, one durable write per group of at most
/// [`TXLIST_STORE_BATCH_BYTES`], and tells the core after each (which announces them and stops
/// owing them). On a storage failure the rest stay owed.
async fn store_txlists(
    ctx: &CatchUpContext,
    numbers: &HashMap<B256, u64>,
    found: Vec<(B256, Bytes)>,
) {
    let mut items: Vec<(B256, u64, Bytes)> = found
        .into_iter()
        .filter_map(|(hash, bytes)| numbers.get(&hash).map(|n| (hash, *n, bytes)))
        .collect();
    while !items.is_empty() {
        let mut take = 0;
        let mut bytes = 0;
        while take < items.len()
            && (take == 0 || bytes + items[take].2.len() <= TXLIST_STORE_BATCH_BYTES)
        {
            bytes += items[take].2.len();
            take += 1;
        }
        let rest = items.split_off(take);
        let group = std::mem::replace(&mut items, rest);
        let Some(storage) = ctx.storage.upgrade() else {
            return;
        };
        // The bytes go to the write only; the core is told which lists were stored.
        let stored: Vec<(B256, u64)> = group.iter().map(|(h, n, _)| (*h, *n)).collect();
        match tokio::task::spawn_blocking(move || storage.put_txlists(&group)).await {
            Ok(Ok(())) => {
                let _ = ctx.internal.send(Internal::TxListsStored(stored)).await;
            }
            Ok(Err(e)) => {
                warn!(error = %e, "storing fetched tx lists failed; still owed");
                return;
            }
            Err(e) => {
                warn!(error = %e, "tx-list write task failed; still owed");
                return;
            }
        }
    }
}

/// What one batched fetch gave: verified tx lists, the hashes still missing, and the peers
/// that served a wrong answer.
type BatchedFetch = (Vec<(B256, Bytes)>, Vec<(B256, u64)>, Vec<PeerId>);

/// Fetches `missing` from `peers` (all of ours) with `get_raw_txlists`, up to
/// [`MAX_TXLISTS_PER_REQUEST`] hashes per request, spread evenly over the peers. Every entry
/// is checked on the blocking pool (keccak256 of each tx list, in parallel): a response that is
/// not a prefix of the request in order, or a tx list that does not hash to its entry, makes
/// the peer a liar (penalised, its whole answer dropped).
async fn fetch_batched(
    ctx: &CatchUpContext,
    peers: &[PeerId],
    missing: Vec<(B256, u64)>,
) -> BatchedFetch {
    // Spread over the peers: a few hashes go to several peers at once rather than all to one.
    let per_peer = missing
        .len()
        .div_ceil(peers.len().max(1))
        .clamp(1, MAX_TXLISTS_PER_REQUEST);
    let chunks: Vec<Vec<(B256, u64)>> = missing
        .chunks(per_peer)
        .map(<[(B256, u64)]>::to_vec)
        .collect();
    let in_flight = (peers.len() * ctx.config.catchup.max_requests_per_peer).max(1);
    let first = ctx
        .batch_rotation
        .fetch_add(chunks.len(), std::sync::atomic::Ordering::Relaxed);
    let results: Vec<BatchedFetch> = stream::iter(chunks.into_iter().enumerate())
        .map(|(i, chunk)| {
            let peer = batch_peer(peers, first.wrapping_add(i));
            async move {
                let Some(peer) = peer else {
                    return (Vec::new(), chunk, Vec::new());
                };
                match fetch_batch_from(ctx, peer, &chunk).await {
                    Ok((found, left)) => (found, left, Vec::new()),
                    Err(BatchFailure::Lied) => (Vec::new(), chunk, vec![peer]),
                    Err(BatchFailure::Failed) => (Vec::new(), chunk, Vec::new()),
                }
            }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let mut found = Vec::new();
    let mut left = Vec::new();
    let mut wrong = Vec::new();
    for (f, l, w) in results {
        found.extend(f);
        left.extend(l);
        wrong.extend(w);
    }
    (found, left, wrong)
}

/// The peer that the `n`-th batch (counted over the whole run, [`CatchUpContext::batch_rotation`])
/// goes to: round-robin over `peers`.
fn batch_peer(peers: &[PeerId], n: usize) -> Option<PeerId> {
    peers.get(n.checked_rem(peers.len())?).copied()
}

enum BatchFailure {
    /// No answer (refused, timed out, disconnected): ask elsewhere.
    Failed,
    /// A wrong answer: penalised.
    Lied,
}

/// One `get_raw_txlists` exchange with `peer` for `chunk`: the verified tx lists and the
/// hashes it did not have or did not fit.
async fn fetch_batch_from(
    ctx: &CatchUpContext,
    peer: PeerId,
    chunk: &[(B256, u64)],
) -> Result<(Vec<(B256, Bytes)>, Vec<(B256, u64)>), BatchFailure> {
    let kind = ReqRespKind::GetRawTxLists;
    let hashes: Vec<B256> = chunk.iter().map(|(h, _)| *h).collect();
    let request = GetRawTxListsRequest::new(hashes).map_err(|_| BatchFailure::Failed)?;
    let _slot = ctx
        .slots
        .acquire(peer, kind)
        .await
        .ok_or(BatchFailure::Failed)?;
    let started = Instant::now();
    let response = paced(ctx, || ctx.net.request_raw_txlists(peer, request.clone())).await;
    metrics::request_latency(kind, started.elapsed());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            debug!(%peer, error = %e, "get_raw_txlists failed");
            return Err(BatchFailure::Failed);
        }
    };
    let entries: Vec<GetRawTxListResponse> = response.txlists.into();
    let limits = ctx.config.chain.limits;
    let expected: Vec<B256> = chunk.iter().map(|(h, _)| *h).collect();
    // Verify off the async runtime: one keccak256 per tx list, on every core.
    let verified = tokio::task::spawn_blocking(move || {
        if entries.len() > expected.len()
            || entries
                .iter()
                .zip(&expected)
                .any(|(e, want)| e.raw_tx_list_hash != *want)
        {
            return None;
        }
        entries
            .into_par_iter()
            .map(|e| {
                let txlist: Vec<u8> = e.txlist.into();
                if txlist.is_empty() {
                    // Echoed hash, empty list: not found (§11.2 as the reference answers).
                    return Some(None);
                }
                check_txlist(&e.raw_tx_list_hash, &txlist, &limits)
                    .ok()
                    .map(|()| Some((e.raw_tx_list_hash, Bytes::from(txlist))))
            })
            .collect::<Option<Vec<Option<(B256, Bytes)>>>>()
    })
    .await
    .map_err(|_| BatchFailure::Failed)?;
    let Some(answers) = verified else {
        metrics::answer(kind, "outbound", "invalid");
        ctx.penalise(peer, "catchup_bad_txlist");
        return Err(BatchFailure::Lied);
    };
    metrics::answer(kind, "outbound", "ok");
    let answered = answers.len();
    let mut found = Vec::with_capacity(answered);
    let mut left = Vec::new();
    for (answer, item) in answers.into_iter().zip(chunk) {
        match answer {
            Some(pair) => found.push(pair),
            None => left.push(*item),
        }
    }
    // Past the prefix the response answered: ask again.
    left.extend(chunk.iter().skip(answered).copied());
    Ok((found, left))
}

/// The order in which the `i`-th tx list of a batch asks `peers`: peers of ours (`extended`,
/// whose limits are 64× the strict reference's) first, then the others as a fallback; each
/// group rotated by `i` so the lists spread over the peers.
fn fetch_order(peers: &[PeerId], extended: &HashSet<PeerId>, i: usize) -> Vec<PeerId> {
    let (mut ours, mut others): (Vec<PeerId>, Vec<PeerId>) =
        peers.iter().partition(|p| extended.contains(p));
    for group in [&mut ours, &mut others] {
        if !group.is_empty() {
            let len = group.len();
            group.rotate_left(i % len);
        }
    }
    ours.extend(others);
    ours
}

/// Tries `peers` in order for tx list `hash` and hands it to the SDK core (a peer that
/// serves a wrong one is penalised by [`fetch_txlist_from`]).
pub(crate) async fn fetch_one_txlist(ctx: &CatchUpContext, peers: &[PeerId], hash: B256) {
    let (claimed, _claim) = ctx.txlist_claims.claim(vec![(hash, 0)]);
    if claimed.is_empty() {
        // Another task is fetching it.
        return;
    }
    let (txlist, _liars) = fetch_txlist_from(ctx, peers, hash).await;
    if let Some(txlist) = txlist {
        let _ = ctx
            .internal
            .send(Internal::TxListFetched { hash, txlist })
            .await;
    }
}

/// Tries `peers` in order for tx list `hash`: the verified bytes, if a peer had them, and
/// the peers that served a wrong one.
async fn fetch_txlist_from(
    ctx: &CatchUpContext,
    peers: &[PeerId],
    hash: B256,
) -> (Option<Bytes>, Vec<PeerId>) {
    let kind = ReqRespKind::GetRawTxList;
    let mut liars = Vec::new();
    let deadline = tokio::time::Instant::now() + ctx.config.catchup.max_pacing_wait;
    let mut asking: Vec<PeerId> = peers
        .iter()
        .take(ctx.config.catchup.max_attempts)
        .copied()
        .collect();
    // Peers that held the request back (their limits) are asked again after the shortest
    // wait, within `max_pacing_wait`; the others once.
    while !asking.is_empty() {
        let mut held = Vec::new();
        let mut retry_after: Option<std::time::Duration> = None;
        for peer in asking {
            let Some(_slot) = ctx.slots.acquire(peer, kind).await else {
                return (None, liars);
            };
            let started = Instant::now();
            let response = ctx
                .net
                .request_raw_txlist(
                    peer,
                    GetRawTxListRequest {
                        raw_tx_list_hash: hash,
                    },
                )
                .await;
            let response = match response {
                Ok(response) => response,
                Err(RequestError::Throttled(retry)) => {
                    retry_after = Some(retry_after.map_or(retry, |r| r.min(retry)));
                    held.push(peer);
                    continue;
                }
                Err(_) => {
                    metrics::request_latency(kind, started.elapsed());
                    continue;
                }
            };
            metrics::request_latency(kind, started.elapsed());
            if response.txlist.is_empty() {
                metrics::answer(kind, "outbound", "not_found");
                continue;
            }
            let txlist: Vec<u8> = response.txlist.into();
            if check_txlist(&hash, &txlist, &ctx.config.chain.limits).is_err() {
                metrics::answer(kind, "outbound", "invalid");
                ctx.penalise(peer, "catchup_bad_txlist");
                liars.push(peer);
                continue;
            }
            metrics::answer(kind, "outbound", "ok");
            return (Some(Bytes::from(txlist)), liars);
        }
        match retry_after {
            Some(wait) if tokio::time::Instant::now() + wait <= deadline => {
                tokio::time::sleep(wait).await;
            }
            _ => break,
        }
        asking = held;
    }
    (None, liars)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tx_list_is_claimed_by_one_fetch_at_a_time() {
        let claims = TxListClaims::default();
        let (a, b, c) = (
            B256::repeat_byte(1),
            B256::repeat_byte(2),
            B256::repeat_byte(3),
        );
        let (first, first_claim) = claims.claim(vec![(a, 1), (b, 2)]);
        assert_eq!(first, vec![(a, 1), (b, 2)]);
        let (second, second_claim) = claims.claim(vec![(b, 2), (c, 3)]);
        assert_eq!(second, vec![(c, 3)], "b is being fetched already");
        assert_eq!(claims.len(), 3);
        drop(first_claim);
        assert_eq!(claims.len(), 1, "released when the fetch is done");
        let (third, _third_claim) = claims.claim(vec![(a, 1), (c, 3)]);
        assert_eq!(third, vec![(a, 1)]);
        drop(second_claim);
        let (fourth, _) = claims.claim(vec![(c, 3)]);
        assert_eq!(fourth, vec![(c, 3)]);
    }

    #[test]
    fn a_claimed_head_of_u64_max_plans_lazily_and_ends_without_overflow() {
        let liar = PeerId::random();
        let honest = PeerId::random();
        let mut plan = PagePlan::new(vec![(liar, u64::MAX), (honest, 300)], 0, u64::MAX, 256);
        // A plan's size is its cursor, whatever the range.
        assert!(std::mem::size_of::<PagePlan>() < 128);
        assert_eq!(
            plan.next(),
            Some((liar, 1, 256)),
            "round-robin starts at the first"
        );
        assert_eq!(
            plan.next(),
            Some((honest, 257, 256)),
            "then the next able peer"
        );
        // Only the liar covers 513 and beyond.
        assert_eq!(plan.next(), Some((liar, 513, 256)));
        assert_eq!(plan.next(), Some((liar, 769, 256)));
        // At the top of the range: the last page ends at u64::MAX, then nothing.
        let mut top = PagePlan::new(vec![(liar, u64::MAX)], u64::MAX - 300, u64::MAX, 256);
        assert_eq!(top.next(), Some((liar, u64::MAX - 299, 256)));
        assert_eq!(top.next(), Some((liar, u64::MAX - 43, 44)));
        assert_eq!(top.next(), None);
        assert_eq!(top.next(), None, "stays done");
        assert_eq!(
            PagePlan::new(vec![(liar, u64::MAX)], u64::MAX, u64::MAX, 256).next(),
            None,
            "local at u64::MAX has nothing to ask"
        );
    }

    #[test]
    fn a_plan_covers_exactly_the_range_and_stops_where_no_peer_reaches() {
        let a = PeerId::random();
        let b = PeerId::random();
        let pages: Vec<_> = PagePlan::new(vec![(a, 10), (b, 5)], 2, 10, 3).collect();
        // b claims only 5, so from 6 on every page is a's.
        assert_eq!(pages, vec![(a, 3, 3), (a, 6, 3), (a, 9, 2)]);
        // No peer claims beyond 5: the plan ends there though the target is higher.
        let short: Vec<_> = PagePlan::new(vec![(b, 5)], 0, 10, 4).collect();
        assert_eq!(short, vec![(b, 1, 4), (b, 5, 4)]);
        assert_eq!(PagePlan::new(vec![(a, 10)], 10, 10, 4).next(), None);
        assert_eq!(
            PagePlan::new(vec![(a, 10)], 3, 2, 4).next(),
            None,
            "target below local"
        );
        assert_eq!(
            PagePlan::new(vec![(a, 10)], 0, 3, 0).collect::<Vec<_>>(),
            vec![(a, 1, 1), (a, 2, 1), (a, 3, 1)],
            "page size 0 is taken as 1"
        );
    }

    #[tokio::test]
    async fn slot_map_stays_bounded_as_peer_ids_churn_and_busy_slots_survive() {
        let slots = PeerSlots::new(1);
        let kind = ReqRespKind::GetRawTxLists;
        let busy = PeerId::random();
        let held = slots.acquire(busy, kind).await.expect("slot");
        // 3 000 peer ids each make one request and vanish without a disconnect event.
        for _ in 0..3_000 {
            let permit = slots.acquire(PeerId::random(), kind).await.expect("slot");
            drop(permit);
        }
        assert!(slots.len() <= SLOT_MAP_SWEEP_LEN, "{} entries", slots.len());
        // The busy peer's slot was kept: its one request is still counted.
        use futures::FutureExt;
        assert!(
            slots.acquire(busy, kind).now_or_never().is_none(),
            "a second request to a busy peer waits"
        );
        drop(held);
        assert!(slots.acquire(busy, kind).await.is_some());
    }

    #[test]
    fn batches_go_round_robin_across_pages() {
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        // 30 pages of 4 batches each (256 hashes, 64 per batch) over 3 peers.
        let mut counts = HashMap::new();
        let mut next = 0usize;
        for _page in 0..30 {
            for i in 0..4 {
                let peer = batch_peer(&peers, next + i).expect("a peer");
                *counts.entry(peer).or_insert(0) += 1;
            }
            next += 4;
        }
        for peer in &peers {
            assert_eq!(counts[peer], 40, "every peer gets a third of the batches");
        }
        assert_eq!(batch_peer(&[], 7), None);
        assert_eq!(batch_peer(&peers, usize::MAX), Some(peers[usize::MAX % 3]));
    }

    #[test]
    fn the_first_block_most_peers_serve_wins_and_a_tie_goes_to_the_best_scored() {
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let (honest, fork) = (B256::repeat_byte(1), B256::repeat_byte(2));
        // The fork's peer has the best score, but two peers serve the other block.
        let score = |p: &PeerId| if *p == c { 10.0 } else { 0.0 };
        let answers = [(a, honest), (c, fork), (b, honest)];
        assert_eq!(pick_first_block(&answers, score), Some(honest));
        // One against one: the best-scored peer's block, in either order.
        assert_eq!(
            pick_first_block(&[(a, honest), (c, fork)], score),
            Some(fork)
        );
        assert_eq!(
            pick_first_block(&[(c, fork), (a, honest)], score),
            Some(fork)
        );
        let score_a = |p: &PeerId| if *p == a { 10.0 } else { 0.0 };
        assert_eq!(
            pick_first_block(&[(c, fork), (a, honest)], score_a),
            Some(honest)
        );
        assert_eq!(pick_first_block(&[], score), None);
    }

    #[test]
    fn write_units_round_up_and_never_reach_zero() {
        assert_eq!(write_units(0), 1);
        assert_eq!(write_units(1), 1);
        assert_eq!(write_units(WRITE_UNIT_BYTES), 1);
        assert_eq!(write_units(WRITE_UNIT_BYTES + 1), 2);
        assert_eq!(write_units(64 << 20), 65_536);
        assert_eq!(write_units(usize::MAX), u32::MAX);
    }

    #[test]
    fn the_write_budget_comes_from_the_config() {
        let mut config = crate::config::CatchUpConfig::default();
        assert_eq!(write_queue_units(&config), 65_536);
        config.write_queue_bytes = 3 * WRITE_UNIT_BYTES;
        assert_eq!(write_queue_units(&config), 3);
    }

    /// Group commit of fetched tx lists: a group takes the first list and every one already
    /// arrived, up to `TXLIST_STORE_BATCH` lists or `TXLIST_STORE_BATCH_BYTES` bytes, and never
    /// waits for one still in flight. Lists nobody had count for nothing; peers that served a
    /// wrong list are collected.
    #[test]
    fn a_store_group_takes_what_has_arrived_up_to_its_bounds() {
        let found = |i: u32, bytes: &Bytes| -> FetchedTxList {
            (B256::from(U256::from(i)), (Some(bytes.clone()), vec![]))
        };
        // By count: 300 small lists, all arrived.
        let small = Bytes::from_static(b"tx");
        let mut arrived = stream::iter((1..300).map(|i| found(i, &small)));
        let mut bad = Vec::new();
        let group = ready_group(found(0, &small), &mut arrived, &mut bad);
        assert_eq!(group.len(), TXLIST_STORE_BATCH);
        assert_eq!(group[0].0, B256::ZERO, "the first list leads its group");
        let next = futures::executor::block_on(arrived.next()).expect("the rest wait");
        assert_eq!(next.0, B256::from(U256::from(TXLIST_STORE_BATCH)));

        // By bytes: lists of half the byte bound (one buffer, shared): two fill a group.
        let half = Bytes::from(vec![0u8; TXLIST_STORE_BATCH_BYTES / 2]);
        let mut arrived = stream::iter((1..4).map(|i| found(i, &half)));
        let group = ready_group(found(0, &half), &mut arrived, &mut bad);
        assert_eq!(group.len(), 2, "two halves reach the byte bound");
        let group = ready_group(
            found(9, &small),
            &mut stream::iter(vec![found(10, &half)]),
            &mut bad,
        );
        assert_eq!(group.len(), 2, "below the byte bound the next one joins");

        // Lists nobody had and wrong answers: not stored, their liars noted.
        let liar = PeerId::random();
        let mut arrived = stream::iter(vec![
            (B256::repeat_byte(1), (None, vec![liar])),
            found(2, &small),
        ]);
        let group = ready_group(
            (B256::repeat_byte(3), (None, vec![])),
            &mut arrived,
            &mut bad,
        );
        assert_eq!(group, vec![(B256::from(U256::from(2)), small.clone())]);
        assert_eq!(bad, vec![liar]);

        // Nothing more has arrived: the group is what there is, without waiting.
        let (tx, rx) = futures::channel::mpsc::unbounded::<FetchedTxList>();
        let mut in_flight = rx;
        let group = ready_group(found(5, &small), &mut in_flight, &mut bad);
        assert_eq!(group.len(), 1);
        drop(tx);
    }
}
