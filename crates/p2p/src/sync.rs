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
//!      pages' commitments and tx lists in durable transactions
//!      ([`crate::storage::SdkStorage::put_page`])
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

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use libp2p::PeerId;
use preconfirmation_types::{
    preconfirmation_hash, Address, GetCommitmentsByNumberRequest, ReqRespKind, SignedCommitment,
    TypesError, B256, U256,
};
use rayon::prelude::*;
use tokio::sync::{oneshot, watch, Semaphore};
use tracing::{debug, info, warn};

use crate::fetch::{fetch_batched, fetch_txlists, paced, Exclusions, FetchContext, TxListPeers};
use crate::messages::Internal;
use crate::metrics;
use crate::peer_view::PeerHeads;
use crate::types::{HeadSyncStatus, SdkStatus};

/// What a catch-up round needs beyond the fetches: the local head and where to report the
/// peers' heads.
#[derive(Clone)]
pub(crate) struct SyncContext {
    /// The fetches' context: network, slots, claims, storage, the way back to the manager.
    pub(crate) fetch: FetchContext,
    /// The core's status: the local head a round starts from and has reached.
    pub(crate) status: watch::Receiver<SdkStatus>,
    /// Where each round's `get_head` answers go (for readiness: how far behind peers we are).
    pub(crate) peer_heads: PeerHeads,
}

impl SyncContext {
    fn local_head(&self) -> u64 {
        self.status.borrow().head_block_number
    }

    async fn set_sync(&self, sync: HeadSyncStatus) {
        let _ = self.fetch.internal.send(Internal::SetSync(sync)).await;
    }
}

type Page = Vec<(SignedCommitment, Result<Address, TypesError>)>;

/// Runs catch-up rounds until caught up (or out of attempts), then reports `Live`.
pub(crate) async fn run(ctx: SyncContext) {
    let ctx = Arc::new(ctx);
    let started = Instant::now();
    let head_at_start = ctx.local_head();
    let mut excluded = Exclusions::new(ctx.fetch.config.catchup.max_attempts);
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
                if attempts >= ctx.fetch.config.catchup.max_attempts {
                    warn!(attempts, "catch-up made no progress; going live");
                    break;
                }
                tokio::time::sleep(ctx.fetch.config.catchup.retry_backoff).await;
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

async fn round(ctx: &Arc<SyncContext>, excluded: &mut Exclusions) -> RoundResult {
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
async fn wait_for_peers(ctx: &SyncContext, excluded: &Exclusions) -> Option<Vec<PeerId>> {
    let config = &ctx.fetch.config.catchup;
    let deadline = tokio::time::Instant::now() + config.peer_wait;
    let mut voters_deadline = None;
    loop {
        let mut peers = ctx.fetch.net.peers().await.ok()?;
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
async fn best_heads(ctx: &SyncContext, peers: Vec<PeerId>) -> Vec<(PeerId, u64)> {
    let asked = peers.into_iter().take(ctx.fetch.config.catchup.head_peers);
    let mut heads: Vec<(PeerId, u64)> = stream::iter(asked)
        .map(|peer| async move {
            let _slot = ctx.fetch.slots.acquire(peer, ReqRespKind::GetHead).await?;
            let started = Instant::now();
            let result = paced(&ctx.fetch, || ctx.fetch.net.request_head(peer)).await;
            metrics::request_latency(ReqRespKind::GetHead, started.elapsed());
            let head = result.ok()?.block_number;
            let Ok(head) = u64::try_from(head) else {
                metrics::answer(ReqRespKind::GetHead, "outbound", "invalid");
                return None;
            };
            metrics::answer(ReqRespKind::GetHead, "outbound", "ok");
            Some((peer, head))
        })
        .buffer_unordered(ctx.fetch.config.catchup.head_peers)
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
    ctx: &SyncContext,
    candidates: &[(PeerId, u64)],
    excluded: &mut Exclusions,
    first: u64,
) -> Option<(u64, B256)> {
    let asked = candidates
        .iter()
        .filter(|(p, head)| *head >= first && !excluded.contains(p))
        .map(|(p, _)| *p)
        .take(ctx.fetch.config.catchup.head_peers.max(1))
        .collect::<Vec<_>>();
    let answers: Vec<(PeerId, B256)> = stream::iter(asked)
        .map(|peer| async move {
            let page = request_page(ctx, peer, first, 1).await.ok()?;
            let block = page.first()?;
            (block.preconf().block_number == U256::from(first))
                .then(|| (peer, preconfirmation_hash(block.preconf())))
        })
        .buffer_unordered(ctx.fetch.config.catchup.head_peers.max(1))
        .filter_map(|x| async move { x })
        .collect()
        .await;
    let scores: HashMap<PeerId, f64> = ctx
        .fetch
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
    ctx: &Arc<SyncContext>,
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
    let mut plan = PagePlan::new(usable, local, target, ctx.fetch.config.catchup.page_size);
    // The first page decides whether there is anything to ask; the rest are planned lazily,
    // as the fetch stage has room: the target is a peer's claim, and the range it names may
    // be far larger than anything memory could hold a plan for.
    let Some(first_page) = plan.next() else {
        return Batch::NothingToAsk;
    };
    let txlist_peers = Arc::new(TxListPeers::snapshot(&ctx.fetch, candidates, excluded).await);
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
        .buffered(ctx.fetch.config.catchup.parallel_pages.max(1));
    // The write queue: at most `write_queue_pages` pages and `write_queue_bytes` between
    // this stage and the end of their durable write.
    let write_pages = Arc::new(Semaphore::new(
        ctx.fetch.config.catchup.write_queue_pages.max(1),
    ));
    let write_budget = Arc::new(Semaphore::new(
        write_queue_units(&ctx.fetch.config.catchup) as usize
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
                ctx.fetch.penalise(peer, "catchup_empty_page");
                excluded.liar(peer);
            }
            break;
        }
        if page[0].0.preconf().block_number != U256::from(start) {
            ctx.fetch.penalise(peer, "catchup_wrong_start");
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
        let budget = write_queue_units(&ctx.fetch.config.catchup);
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
        if ctx.fetch.internal.send(page).await.is_err() {
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
                ctx.fetch
                    .penalise(peer, preconfirmation_net::CATCHUP_DISAGREEMENT_REASON);
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
    fetch_txlists(&ctx.fetch, candidates, excluded, owed).await;
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
async fn serves_block(ctx: &SyncContext, peer: PeerId, number: u64) -> bool {
    let Some(_slot) = ctx
        .fetch
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
    match paced(&ctx.fetch, || {
        ctx.fetch.net.request_commitments(peer, request)
    })
    .await
    {
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
    ctx: Arc<SyncContext>,
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
    let domain = ctx.fetch.config.chain.domain;
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
        let (found, _left, wrong) = fetch_batched(&ctx.fetch, &batch_peers, hashes).await;
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
    ctx: &SyncContext,
    peer: PeerId,
    start: u64,
    count: u64,
) -> Result<Vec<SignedCommitment>, &'static str> {
    let kind = ReqRespKind::GetCommitmentsByNumber;
    let _slot = ctx
        .fetch
        .slots
        .acquire(peer, kind)
        .await
        .ok_or("shutdown")?;
    let started = Instant::now();
    let request = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(start),
        max_count: u32::try_from(count).unwrap_or(u32::MAX),
    };
    let response = paced(&ctx.fetch, || {
        ctx.fetch.net.request_commitments(peer, request)
    })
    .await;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
