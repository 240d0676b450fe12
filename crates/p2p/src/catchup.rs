//! Catch-up (§10.3): bring the local chain up to the best head among peers, then go live.
//!
//! One round:
//! 1. wait (bounded by `peer_wait`) for a connected peer;
//! 2. ask up to `head_peers` peers for their head (`get_head`, concurrently);
//! 3. page `get_commitments_by_number` from `local + 1` in pages of `page_size`, up to
//!    `parallel_pages` pages at once spread over the peers whose head covers the page;
//! 4. recover every signature of a page on the blocking pool with rayon, then hand the page to
//!    the SDK core, which validates the chain link and schedule and stores it in one write;
//! 5. fetch the tx lists the new commitments reference, by hash, from any peer that has them.
//!
//! A peer that answers with an empty page although it claimed a higher head, a page that does
//! not start where asked, a bad signature, a broken parent link or a tx list that does not hash
//! to its commitment is a liar: it is penalised (§7.1), dropped for the rest of the round and
//! the work is retried with another peer. A round never loops on an empty page; rounds without
//! progress give up after `max_attempts`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use libp2p::PeerId;
use preconfirmation_net::{P2pService, RequestError};
use preconfirmation_types::{
    Address, GetCommitmentsByNumberRequest, GetRawTxListRequest, GetRawTxListResponse,
    GetRawTxListsRequest, ReqRespKind, SignedCommitment, TypesError, B256, MAX_TXLISTS_PER_REQUEST,
    U256,
};
use rayon::prelude::*;
use tokio::sync::{mpsc, oneshot, watch, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, info, warn};

use crate::config::P2pSdkConfig;
use crate::handlers::BatchResult;
use crate::metrics;
use crate::sdk::Internal;
use crate::types::{HeadSyncStatus, SdkStatus};
use crate::validation::check_txlist;

/// At most `per_peer` outbound requests in flight to any one peer, shared by every task of
/// the SDK. Peers refuse (and penalise) requests above their concurrency limit (§7), so we
/// never send them.
#[derive(Debug, Clone)]
pub(crate) struct PeerSlots {
    slots: Arc<parking_lot::Mutex<HashMap<PeerId, Arc<Semaphore>>>>,
    per_peer: usize,
}

impl PeerSlots {
    pub(crate) fn new(per_peer: usize) -> Self {
        Self {
            slots: Arc::default(),
            per_peer: per_peer.max(1),
        }
    }

    /// Waits for a free request slot towards `peer`.
    pub(crate) async fn acquire(&self, peer: PeerId) -> Option<OwnedSemaphorePermit> {
        let semaphore = self
            .slots
            .lock()
            .entry(peer)
            .or_insert_with(|| Arc::new(Semaphore::new(self.per_peer)))
            .clone();
        semaphore.acquire_owned().await.ok()
    }

    /// Forgets a disconnected peer.
    pub(crate) fn forget(&self, peer: &PeerId) {
        self.slots.lock().remove(peer);
    }
}

/// Peers a catch-up run no longer uses: liars at once, peers that pruned the blocks we need
/// (not penalised) at once, others after repeated failures.
#[derive(Debug, Default)]
pub(crate) struct Exclusions {
    liars: HashSet<PeerId>,
    pruned: HashSet<PeerId>,
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

    fn failed(&mut self, peer: PeerId) {
        *self.failures.entry(peer).or_default() += 1;
    }

    fn contains(&self, peer: &PeerId) -> bool {
        self.liars.contains(peer)
            || self.pruned.contains(peer)
            || self
                .failures
                .get(peer)
                .is_some_and(|n| *n >= self.max_failures)
    }
}

/// What a catch-up task needs.
pub(crate) struct CatchUpContext {
    pub(crate) net: P2pService,
    pub(crate) config: Arc<P2pSdkConfig>,
    pub(crate) internal: mpsc::Sender<Internal>,
    pub(crate) status: watch::Receiver<SdkStatus>,
    pub(crate) slots: PeerSlots,
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
    let started = Instant::now();
    let mut liars = Exclusions::new(ctx.config.catchup.max_attempts);
    let mut attempts = 0;
    loop {
        match round(&ctx, &mut liars).await {
            RoundResult::CaughtUp => break,
            RoundResult::NoPeers => {
                debug!("no peers to catch up from");
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
    info!(
        head = ctx.local_head(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "catch-up done"
    );
    ctx.set_sync(HeadSyncStatus::Live).await;
}

enum RoundResult {
    CaughtUp,
    NoPeers,
    Stalled,
}

async fn round(ctx: &CatchUpContext, liars: &mut Exclusions) -> RoundResult {
    let Some(peers) = wait_for_peers(ctx, liars).await else {
        return RoundResult::NoPeers;
    };
    let local = ctx.local_head();
    let mut candidates = best_heads(ctx, peers).await;
    candidates.retain(|(_, head)| *head > local);
    let Some(&(_, target)) = candidates.first() else {
        return RoundResult::CaughtUp;
    };
    ctx.set_sync(HeadSyncStatus::Syncing { local, target })
        .await;
    info!(local, target, peers = candidates.len(), "catching up");
    loop {
        let local = ctx.local_head();
        candidates.retain(|(_, head)| *head > local);
        if local >= target || candidates.is_empty() {
            return RoundResult::CaughtUp;
        }
        candidates.retain(|(p, _)| !liars.contains(p));
        if candidates.is_empty() {
            // Peers claim more, but every one of them failed or lied: ask again next round.
            return RoundResult::Stalled;
        }
        match batch(ctx, &candidates, liars, local, target).await {
            Batch::Progress | Batch::Failed => {}
            Batch::NothingToAsk => return RoundResult::CaughtUp,
        }
    }
}

/// Connected peers, waiting up to `peer_wait` for the first one.
async fn wait_for_peers(ctx: &CatchUpContext, liars: &Exclusions) -> Option<Vec<PeerId>> {
    let deadline = tokio::time::Instant::now() + ctx.config.catchup.peer_wait;
    loop {
        let mut peers = ctx.net.peers().await.ok()?;
        peers.retain(|p| !liars.contains(&p.peer_id));
        if !peers.is_empty() {
            peers.sort_by(|a, b| b.score.total_cmp(&a.score));
            return Some(peers.into_iter().map(|p| p.peer_id).collect());
        }
        if tokio::time::Instant::now() >= deadline {
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
            let _slot = ctx.slots.acquire(peer).await?;
            let started = Instant::now();
            let result = paced(ctx, || ctx.net.request_head(peer)).await;
            metrics::request_latency(ReqRespKind::GetHead, started.elapsed());
            let outcome = if result.is_ok() { "ok" } else { "error" };
            metrics::request(ReqRespKind::GetHead, "outbound", outcome);
            let head = u64::try_from(result.ok()?.block_number).ok()?;
            Some((peer, head))
        })
        .buffer_unordered(ctx.config.catchup.head_peers)
        .filter_map(|x| async move { x })
        .collect()
        .await;
    heads.sort_by_key(|(_, head)| std::cmp::Reverse(*head));
    heads
}

enum Batch {
    Progress,
    Failed,
    NothingToAsk,
}

/// Fetches up to `parallel_pages` pages from `local + 1`, applies them in order.
async fn batch(
    ctx: &CatchUpContext,
    candidates: &[(PeerId, u64)],
    liars: &mut Exclusions,
    local: u64,
    target: u64,
) -> Batch {
    let page_size = ctx.config.catchup.page_size as u64;
    let mut plan = Vec::new();
    for i in 0..ctx.config.catchup.parallel_pages as u64 {
        let start = local + 1 + i * page_size;
        if start > target {
            break;
        }
        let count = page_size.min(target - start + 1);
        let able: Vec<PeerId> = candidates
            .iter()
            .filter(|(_, head)| *head >= start)
            .map(|(p, _)| *p)
            .collect();
        let Some(peer) = able.get(i as usize % able.len().max(1)).copied() else {
            break;
        };
        plan.push((peer, start, count));
    }
    if plan.is_empty() {
        return Batch::NothingToAsk;
    }
    let pages = futures::future::join_all(
        plan.iter()
            .map(|&(peer, start, count)| fetch_page(ctx, peer, start, count)),
    )
    .await;
    let mut applied_any = false;
    for ((peer, start, _), page) in plan.into_iter().zip(pages) {
        let page = match page {
            Ok(page) => page,
            Err(reason) => {
                metrics::catchup_peer_failure(reason);
                debug!(%peer, reason, "page request failed");
                liars.failed(peer);
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
                debug!(%peer, start, claimed, "peer pruned below its head; not asked again this round");
                metrics::catchup_peer_failure("pruned");
                liars.pruned(peer);
            } else {
                ctx.penalise(peer, "catchup_empty_page");
                liars.liar(peer);
            }
            break;
        }
        if page[0].0.preconf().block_number != U256::from(start) {
            ctx.penalise(peer, "catchup_wrong_start");
            liars.liar(peer);
            break;
        }
        let (reply, rx) = oneshot::channel();
        if ctx
            .internal
            .send(Internal::CatchUpBatch {
                peer,
                items: page,
                reply,
            })
            .await
            .is_err()
        {
            return Batch::Failed;
        }
        let Ok(result) = rx.await else {
            return Batch::Failed;
        };
        let BatchResult {
            applied,
            failure,
            gap,
            missing_txlists,
        } = result;
        applied_any |= applied > 0;
        fetch_txlists(ctx, candidates, liars, missing_txlists).await;
        if failure.is_some() || gap {
            // A bad signature, wrong signer, broken parent link or a hole in the page.
            ctx.penalise(peer, "catchup_invalid_commitment");
            liars.liar(peer);
            break;
        }
    }
    if applied_any {
        Batch::Progress
    } else {
        Batch::Failed
    }
}

/// Whether `peer` serves the commitment of block `number` (a one-commitment page).
async fn serves_block(ctx: &CatchUpContext, peer: PeerId, number: u64) -> bool {
    let Some(_slot) = ctx.slots.acquire(peer).await else {
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

/// One `get_commitments_by_number` page with every signature recovered (in parallel).
async fn fetch_page(
    ctx: &CatchUpContext,
    peer: PeerId,
    start: u64,
    count: u64,
) -> Result<Page, &'static str> {
    let kind = ReqRespKind::GetCommitmentsByNumber;
    let _slot = ctx.slots.acquire(peer).await.ok_or("shutdown")?;
    let started = Instant::now();
    let request = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(start),
        max_count: u32::try_from(count).unwrap_or(u32::MAX),
    };
    let response = paced(ctx, || ctx.net.request_commitments(peer, request)).await;
    metrics::request_latency(kind, started.elapsed());
    let response = match response {
        Ok(r) => {
            metrics::request(kind, "outbound", "ok");
            r
        }
        Err(e) => {
            metrics::request(kind, "outbound", "error");
            debug!(%peer, error = %e, "get_commitments_by_number failed");
            return Err("request_failed");
        }
    };
    let commitments: Vec<SignedCommitment> = response.commitments.into();
    if commitments.len() as u64 > count {
        return Err("page_too_long");
    }
    let domain = ctx.config.chain.domain;
    tokio::task::spawn_blocking(move || {
        commitments
            .into_par_iter()
            .map(|c| {
                let signer = preconfirmation_types::recover_signer(&domain, &c);
                (c, signer)
            })
            .collect::<Page>()
    })
    .await
    .map_err(|_| "verify_task_failed")
}

/// Fetched tx lists are handed to the SDK core (and so to storage, in one write) in groups of
/// at most this many, so a page's tx lists cost one durable write instead of one each.
pub(crate) const TXLIST_STORE_BATCH: usize = 256;

/// Fetches `missing` tx lists by hash from `candidates` (then any connected peer), at most
/// `parallel_txlists` at once; a peer that serves bytes not hashing to the commitment's
/// `rawTxListHash` is penalised and skipped. Verified lists are stored in groups of
/// [`TXLIST_STORE_BATCH`].
pub(crate) async fn fetch_txlists(
    ctx: &CatchUpContext,
    candidates: &[(PeerId, u64)],
    liars: &mut Exclusions,
    missing: Vec<(B256, u64)>,
) {
    if missing.is_empty() {
        return;
    }
    let mut peers: Vec<PeerId> = candidates.iter().map(|(p, _)| *p).collect();
    let snapshot = ctx.net.peers().await.unwrap_or_default();
    for p in &snapshot {
        if !peers.contains(&p.peer_id) {
            peers.push(p.peer_id);
        }
    }
    peers.retain(|p| !liars.contains(p));
    let extended: HashSet<PeerId> = snapshot
        .iter()
        .filter(|p| p.extended)
        .map(|p| p.peer_id)
        .collect();
    let mut ready = Vec::new();
    let mut bad = Vec::new();
    // Peers of ours answer up to 64 hashes per request (`get_raw_txlists`, PROTOCOL-EXT.md);
    // what they did not have (or did not fit) is asked one hash at a time, of every peer.
    let batch_peers: Vec<PeerId> = peers
        .iter()
        .filter(|p| extended.contains(p))
        .copied()
        .collect();
    let missing = if batch_peers.is_empty() {
        missing
    } else {
        let (found, left, wrong) = fetch_batched(ctx, &batch_peers, missing).await;
        bad.extend(wrong);
        peers.retain(|p| !bad.contains(p));
        for chunk in found.chunks(TXLIST_STORE_BATCH) {
            let _ = ctx
                .internal
                .send(Internal::TxListsFetched(chunk.to_vec()))
                .await;
        }
        left
    };
    let mut fetched = stream::iter(missing.into_iter().enumerate())
        .map(|(i, (hash, _))| {
            let order = fetch_order(&peers, &extended, i);
            async move { (hash, fetch_txlist_from(ctx, &order, hash).await) }
        })
        .buffer_unordered(ctx.config.catchup.parallel_txlists);
    while let Some((hash, (txlist, wrong))) = fetched.next().await {
        bad.extend(wrong);
        if let Some(txlist) = txlist {
            ready.push((hash, txlist));
        }
        if ready.len() >= TXLIST_STORE_BATCH {
            let batch = std::mem::take(&mut ready);
            let _ = ctx.internal.send(Internal::TxListsFetched(batch)).await;
        }
    }
    if !ready.is_empty() {
        let _ = ctx.internal.send(Internal::TxListsFetched(ready)).await;
    }
    for peer in bad {
        liars.liar(peer);
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
    let results: Vec<BatchedFetch> = stream::iter(chunks.into_iter().enumerate())
        .map(|(i, chunk)| {
            let peer = peers[i % peers.len()];
            async move {
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
    let _slot = ctx.slots.acquire(peer).await.ok_or(BatchFailure::Failed)?;
    let started = Instant::now();
    let response = paced(ctx, || ctx.net.request_raw_txlists(peer, request.clone())).await;
    metrics::request_latency(kind, started.elapsed());
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            metrics::request(kind, "outbound", "error");
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
        metrics::request(kind, "outbound", "invalid");
        ctx.penalise(peer, "catchup_bad_txlist");
        return Err(BatchFailure::Lied);
    };
    metrics::request(kind, "outbound", "ok");
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

/// Tries `peers` in order for tx list `hash` and hands it to the SDK core; returns the peers
/// that served a wrong one.
pub(crate) async fn fetch_one_txlist(
    ctx: &CatchUpContext,
    peers: &[PeerId],
    hash: B256,
) -> Vec<PeerId> {
    let (txlist, liars) = fetch_txlist_from(ctx, peers, hash).await;
    if let Some(txlist) = txlist {
        let _ = ctx
            .internal
            .send(Internal::TxListFetched { hash, txlist })
            .await;
    }
    liars
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
            let Some(_slot) = ctx.slots.acquire(peer).await else {
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
                    metrics::request(kind, "outbound", "error");
                    continue;
                }
            };
            metrics::request_latency(kind, started.elapsed());
            if response.txlist.is_empty() {
                metrics::request(kind, "outbound", "not_found");
                continue;
            }
            let txlist: Vec<u8> = response.txlist.into();
            if check_txlist(&hash, &txlist, &ctx.config.chain.limits).is_err() {
                metrics::request(kind, "outbound", "invalid");
                ctx.penalise(peer, "catchup_bad_txlist");
                liars.push(peer);
                continue;
            }
            metrics::request(kind, "outbound", "ok");
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
