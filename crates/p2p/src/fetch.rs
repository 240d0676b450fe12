//! Tx-list and request plumbing shared by live gossip and catch-up: per-peer request slots
//! ([`PeerSlots`]), the peers a run no longer asks ([`Exclusions`]), claims so no tx list is
//! fetched twice at once ([`TxListClaims`]), pacing to a peer's limits, and the fetches
//! themselves — one hash at a time (`get_raw_txlist`, any peer) or batched from peers of ours
//! (`get_raw_txlists`, PROTOCOL-EXT.md), verified against their hash on the blocking pool and
//! stored off the manager task.
//!
//! The manager runs them as *fetch tasks*: one per missing tx list once its gossip grace
//! period ends (at most `catchup.parallel_txlists` at once) and a periodic retry of what is
//! still missing; catch-up (`sync`) fetches each page's tx lists and what no batch
//! peer had with the same functions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use futures::FutureExt;
use libp2p::PeerId;
use preconfirmation_net::{P2pService, RequestError};
use preconfirmation_types::{
    GetRawTxListRequest, GetRawTxListResponse, GetRawTxListsRequest, ReqRespKind, B256,
    MAX_TXLISTS_PER_REQUEST,
};
use rayon::prelude::*;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use crate::config::P2pSdkConfig;
use crate::messages::Internal;
use crate::metrics;
use crate::storage::SdkStorage;
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

    pub(crate) fn liar(&mut self, peer: PeerId) {
        self.liars.insert(peer);
    }

    /// `peer` no longer holds the blocks we need (it serves its head, not below): an honest
    /// peer with a retention limit. Not asked again this run, and not penalised.
    pub(crate) fn pruned(&mut self, peer: PeerId) {
        self.pruned.insert(peer);
    }

    /// `peer` serves a first block other than the one most peers agree on
    /// (`sync::agree_first_block`): not used this run, not penalised (with no anchor hash we
    /// cannot prove which chain is wrong).
    pub(crate) fn forked(&mut self, peer: PeerId) {
        self.forked.insert(peer);
    }

    pub(crate) fn failed(&mut self, peer: PeerId) {
        *self.failures.entry(peer).or_default() += 1;
    }

    pub(crate) fn contains(&self, peer: &PeerId) -> bool {
        self.liars.contains(peer)
            || self.pruned.contains(peer)
            || self.forked.contains(peer)
            || self
                .failures
                .get(peer)
                .is_some_and(|n| *n >= self.max_failures)
    }
}

/// What a fetch task needs: the network, request slots and claims shared with every other
/// task of the SDK, and the way back to the manager.
#[derive(Clone)]
pub(crate) struct FetchContext {
    /// The network handle requests go out on.
    pub(crate) net: P2pService,
    /// The configuration in force.
    pub(crate) config: Arc<P2pSdkConfig>,
    /// Where fetched and stored tx lists are reported to the manager.
    pub(crate) internal: mpsc::Sender<Internal>,
    /// Request slots per peer and protocol, shared by every task and the handle.
    pub(crate) slots: PeerSlots,
    /// The SDK's storage: fetched tx lists (and catch-up's write stage) are written from here,
    /// on the blocking pool, never on the manager task. Weak, so a task still winding down
    /// after the SDK stopped never keeps the store open (a restart in the same process reopens
    /// it).
    pub(crate) storage: std::sync::Weak<dyn SdkStorage>,
    /// Where the next `get_raw_txlists` batch starts in the list of batch peers: batches go
    /// round-robin over the peers across pages, so a page of 4 batches over 3 peers does not
    /// send every page's extra batch to the same first peer (and drain its limits first).
    pub(crate) batch_rotation: Arc<std::sync::atomic::AtomicUsize>,
    /// Tx lists some task of the SDK is fetching right now, shared by all of them.
    pub(crate) txlist_claims: TxListClaims,
}

impl FetchContext {
    /// Penalises a peer that served something false (§7.1), counted by `reason`.
    pub(crate) fn penalise(&self, peer: PeerId, reason: &'static str) {
        metrics::catchup_peer_failure(reason);
        warn!(%peer, reason, "catch-up peer misbehaved");
        let _ = self.net.penalize_peer(peer, reason);
    }
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

/// Runs `request` again while the network layer holds it back to respect the peer's limits
/// ([`RequestError::Throttled`]), sleeping as long as it says, for at most
/// `catchup.max_pacing_wait` in total.
pub(crate) async fn paced<T, F, Fut>(ctx: &FetchContext, mut request: F) -> Result<T, RequestError>
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

/// Who a run asks for tx lists: every useful peer, and which of them speak the batched
/// protocol (`get_raw_txlists`, PROTOCOL-EXT.md).
#[derive(Debug, Clone, Default)]
pub(crate) struct TxListPeers {
    all: Vec<PeerId>,
    extended: HashSet<PeerId>,
}

impl TxListPeers {
    /// `candidates` first, then every other connected peer, without excluded ones.
    pub(crate) async fn snapshot(
        ctx: &FetchContext,
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
    pub(crate) fn batch_peers(&self) -> Vec<PeerId> {
        self.all
            .iter()
            .filter(|p| self.extended.contains(p))
            .copied()
            .collect()
    }
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
    ctx: &FetchContext,
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
    ctx: &FetchContext,
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
pub(crate) async fn fetch_batched(
    ctx: &FetchContext,
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

/// The peer that the `n`-th batch (counted over the whole run, [`FetchContext::batch_rotation`])
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
    ctx: &FetchContext,
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
pub(crate) async fn fetch_one_txlist(ctx: &FetchContext, peers: &[PeerId], hash: B256) {
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
    ctx: &FetchContext,
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
    use preconfirmation_types::U256;

    use super::*;

    #[test]
    fn a_tx_list_is_claimed_by_one_fetch_at_a_time() {
        let claims = TxListClaims::default();
        let [a, b, c] = [1, 2, 3].map(B256::repeat_byte);
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
