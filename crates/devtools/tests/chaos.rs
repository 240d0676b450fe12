//! The adversary nobody scripted: a seeded generator draws hostile behaviours at random and
//! drives 1–8 hostile peers with them, over real libp2p on 127.0.0.1, against 3 honest nodes on
//! redb (see `preconf_devtools::testing::adversary` for the peers). After every case it checks
//! the invariants:
//!
//! 1. every honest node is alive and answers another's `get_head` with its head;
//! 2. the process stays under the RSS cap (and its allocations near their baseline after);
//! 3. no honest node scores another below 0 or bans it;
//! 4. every honest block, and its tx list, is on every honest node;
//! 5. no tx list an attacker sent reaches an honest node it did not send it to (nothing is
//!    forwarded that no accepted commitment references), nor is stored anywhere.
//!
//! A failure prints the seed, the case and its action list; the same seed replays it:
//! `CHAOS_SEED=<seed> CHAOS_CASES=<n> cargo test -p preconf-devtools --test chaos -- --nocapture`.
//! `cargo test` runs [`DEFAULT_CASES`] cases from a fixed seed; the `--ignored` soak runs for
//! `CHAOS_SOAK_SECS` (default one hour) from a seed of the clock, printing it first.

mod adversary;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adversary::*;
use libp2p::identity::Keypair;
use p2p::testkit::{preconfer_key, ChainBuilder};
use preconfirmation_types::{
    raw_tx_list_hash, PreconfHead, SignedCommitment, WireMessage, B256, U256,
};

/// Cases `cargo test` runs.
const DEFAULT_CASES: usize = 50;
/// The seed `cargo test` uses (any seed replays with `CHAOS_SEED`).
const DEFAULT_SEED: u64 = 0x5eed_c4a0_5000_0001;
/// How long one case's hostile peers act at most before the invariants are checked.
const CASE_BOUND: Duration = Duration::from_secs(4);
/// Allocations may grow this much over the run (caches fill with honest blocks up to their
/// caps); a leak per case would pass it within a soak.
const ALLOCATION_SLACK_MIB: u64 = 256;

fn builder() -> ChainBuilder {
    ChainBuilder::in_the_past(common::chain(), 3, 4, 20_000)
}

// ------------------------------------------------------------------------------ generator

/// SplitMix64: small, seedable, good enough to draw behaviours.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What a lying catch-up peer serves below the head it claims.
#[derive(Debug, Clone, Copy)]
enum Pages {
    /// The honest chain (then nothing above it).
    Honest,
    Empty,
    /// Every other block.
    Gaps,
    /// The first block of the page, repeated.
    Duplicates,
    /// Blocks whose signature does not recover.
    BadSignatures,
    /// Validly signed blocks on a parent nobody has.
    WrongParent,
}

/// A gossiped commitment of a kind an attacker chooses.
#[derive(Debug, Clone, Copy)]
enum Lie {
    /// The next block, signed by a key the schedule never elected.
    WrongSigner,
    /// A block for a window far in the future, signed by a stranger.
    FarFuture,
    /// An honest block again (an ended window, a duplicate).
    Replay,
    /// Another block for a number the honest preconfer already signed, signed by it.
    Equivocation,
    /// Bytes that are no commitment.
    Garbage,
}

/// One behaviour of a hostile peer.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Claims head `head` on `get_head` and serves `pages`; the victim is made to catch up.
    Liar { head: u64, pages: Pages },
    /// Gossips `count` commitments of kind `lie`.
    Commitments { lie: Lie, count: usize },
    /// Gossips a tx list of `len` bytes (over the cap when `len` is), with a commitment that
    /// references it (signed by a stranger, for a far-future window) or alone.
    TxList { len: usize, referenced: bool },
    /// A req/resp frame whose length prefix says `claimed` bytes and whose body has `body`
    /// (truncated when fewer; over the cap when `claimed` is).
    Frame {
        proto: Proto,
        claimed: u64,
        body: usize,
    },
    /// `count` well-formed requests of `proto` from one id, at and above its limit.
    Requests { proto: Proto, count: usize },
    /// Connects and leaves `times` times, as the same id or a new one each time, asking for
    /// the head each time.
    Reconnects { times: usize, same_id: bool },
    /// Opens a stream and writes a valid request one byte per 200 ms (a slow peer).
    Slow { proto: Proto },
}

const HEAD_EDGES: [u64; 8] = [0, 1, 2, 1 << 20, 1 << 32, 1 << 40, u64::MAX - 1, u64::MAX];

const TXLIST_LENS: [usize; 7] = [
    0,
    1,
    1024,
    64 * 1024,
    preconfirmation_types::MAX_TXLIST_BYTES - 1,
    preconfirmation_types::MAX_TXLIST_BYTES,
    preconfirmation_types::MAX_TXLIST_BYTES + 1,
];

const PREFIX_EDGES: [u64; 7] = [0, 1, 4, 48, 1 << 20, 1 << 32, u64::MAX];

fn draw_action(rng: &mut Rng) -> Action {
    match rng.below(7) {
        0 => Action::Liar {
            head: rng.pick(&HEAD_EDGES),
            pages: rng.pick(&[
                Pages::Honest,
                Pages::Empty,
                Pages::Gaps,
                Pages::Duplicates,
                Pages::BadSignatures,
                Pages::WrongParent,
            ]),
        },
        1 => Action::Commitments {
            lie: rng.pick(&[
                Lie::WrongSigner,
                Lie::FarFuture,
                Lie::Replay,
                Lie::Equivocation,
                Lie::Garbage,
            ]),
            count: 1 + rng.below(20) as usize,
        },
        2 => Action::TxList {
            len: rng.pick(&TXLIST_LENS),
            referenced: rng.below(2) == 0,
        },
        3 => Action::Frame {
            proto: rng.pick(&Proto::REQRESP),
            claimed: rng.pick(&PREFIX_EDGES),
            body: rng.pick(&[0usize, 1, 3, 4, 48, 4096]),
        },
        4 => Action::Requests {
            proto: rng.pick(&Proto::REQRESP),
            count: rng.pick(&[8usize, 9, 64, 300]),
        },
        5 => Action::Reconnects {
            times: 2 + rng.below(6) as usize,
            same_id: rng.below(2) == 0,
        },
        _ => Action::Slow {
            proto: rng.pick(&Proto::REQRESP),
        },
    }
}

/// A case: the victim (an honest node's index) and each hostile peer's actions.
#[derive(Debug, Clone)]
struct Case {
    victim: usize,
    peers: Vec<Vec<Action>>,
}

fn draw_case(rng: &mut Rng, honest: usize) -> Case {
    let peers = 1 + rng.below(8) as usize;
    Case {
        victim: rng.below(honest as u64) as usize,
        peers: (0..peers)
            .map(|_| (0..1 + rng.below(3)).map(|_| draw_action(rng)).collect())
            .collect(),
    }
}

// ------------------------------------------------------------------------------ actions

/// A catch-up liar over a snapshot of the honest chain.
struct ChaosLiar {
    head: u64,
    pages: Pages,
    chain: Vec<SignedCommitment>,
    fork: Vec<SignedCommitment>,
}

impl Liar for ChaosLiar {
    fn head(&self) -> PreconfHead {
        PreconfHead {
            block_number: U256::from(self.head),
            submission_window_end: U256::ZERO,
        }
    }

    fn page(&self, start: u64, max: u32) -> Vec<SignedCommitment> {
        let from = (start.saturating_sub(1) as usize).min(self.chain.len());
        let to = from.saturating_add(max as usize).min(self.chain.len());
        let honest = &self.chain[from..to];
        match self.pages {
            Pages::Honest => honest.to_vec(),
            Pages::Empty => Vec::new(),
            Pages::Gaps => honest.iter().step_by(2).cloned().collect(),
            Pages::Duplicates => honest
                .first()
                .map(|c| vec![c.clone(); honest.len().max(2)])
                .unwrap_or_default(),
            Pages::BadSignatures => honest
                .iter()
                .cloned()
                .map(|mut c| {
                    c.signature.0[64] = 7;
                    c
                })
                .collect(),
            Pages::WrongParent => {
                self.fork[from.min(self.fork.len())..to.min(self.fork.len())].to_vec()
            }
        }
    }

    fn txlist(&self, hash: B256) -> Vec<u8> {
        // Half the time a list that does not hash to `hash`, else "not found".
        if hash.0[0].is_multiple_of(2) {
            b"not the list you asked for".to_vec()
        } else {
            Vec::new()
        }
    }
}

/// `len` validly signed blocks of `genesis`'s schedule hanging off a parent nobody has.
fn fork(genesis: &ChainBuilder, len: usize) -> Vec<SignedCommitment> {
    let mut b = genesis.clone();
    (0..len)
        .map(|i| {
            let mut c = b.next_unsigned(Some(&[i as u8; 8]));
            if i == 0 {
                c.preconf.parent_preconfirmation_hash = B256::repeat_byte(0x66);
            }
            let signed = b.sign_next(c);
            b.advance(&signed);
            signed
        })
        .collect()
}

/// What a case needs of the honest side while its peers act.
struct Stage {
    chain: Vec<SignedCommitment>,
    /// The honest chain's builder, positioned at the next block (not advanced by attacks).
    next: ChainBuilder,
    /// A validly signed chain on a parent nobody has, as long as the honest one and more.
    fork: Vec<SignedCommitment>,
}

/// A `get_head` request frame in the 4-byte form the reference sends.
fn get_head_frame() -> Vec<u8> {
    let mut frame = varint(4);
    frame.extend([4, 0, 0, 0]);
    frame
}

/// A well-formed request frame of `proto`.
fn request_frame(proto: Proto, rng: &mut Rng) -> Vec<u8> {
    let body = match proto {
        Proto::GetHead => return get_head_frame(),
        Proto::GetCommitments => preconfirmation_types::GetCommitmentsByNumberRequest {
            start_block_number: U256::from(1 + rng.below(4)),
            max_count: 256,
        }
        .to_ssz(),
        _ => preconfirmation_types::GetRawTxListRequest {
            raw_tx_list_hash: B256::repeat_byte(rng.next() as u8),
        }
        .to_ssz(),
    };
    let mut frame = varint(body.len() as u64);
    frame.extend(body);
    frame
}

/// The SSZ of a `RawTxListGossip` holding `len` bytes, built by hand so it can exceed the cap.
fn txlist_gossip(len: usize, seed: u64) -> (B256, Vec<u8>) {
    let mut txlist = vec![0xa5u8; len];
    for (i, b) in seed.to_le_bytes().iter().enumerate() {
        if let Some(slot) = txlist.get_mut(i) {
            *slot = *b;
        }
    }
    let hash = raw_tx_list_hash(&txlist);
    let mut ssz = hash.0.to_vec();
    ssz.extend(36u32.to_le_bytes());
    ssz.extend(&txlist);
    (hash, ssz)
}

/// Runs one hostile peer's actions against `victim`; returns the hashes of the tx lists it
/// sent (they must reach no other honest node).
async fn act(
    actions: Vec<Action>,
    victim: &preconf_node_core::Node,
    stage: Arc<Stage>,
    mut rng: Rng,
) -> Vec<B256> {
    let chain_spec = common::chain();
    let victim_id = victim.sdk().local_peer_id();
    let mut sent = Vec::new();
    for action in actions {
        match action {
            Action::Liar { head, pages } => {
                let liar = GossipPeer::start(
                    &chain_spec,
                    Some(Arc::new(ChaosLiar {
                        head,
                        pages,
                        chain: stage.chain.clone(),
                        fork: stage.fork.clone(),
                    })),
                )
                .await;
                let _ = victim.sdk().dial(liar.p2p_addr().await).await;
                let _ = victim.sdk().catch_up();
                // Let the victim ask it (bounded by the case), then go.
                let mut status = victim.sdk().watch_status();
                let _ = tokio::time::timeout(
                    CASE_BOUND / 2,
                    status.wait_for(|s| matches!(s.sync, p2p::HeadSyncStatus::Syncing { .. })),
                )
                .await;
                let _ = tokio::time::timeout(
                    CASE_BOUND / 2,
                    status.wait_for(|s| s.sync == p2p::HeadSyncStatus::Live),
                )
                .await;
            }
            Action::Commitments { lie, count } => {
                let x = GossipPeer::start(&chain_spec, None).await;
                if !try_join(&x, victim).await {
                    continue;
                }
                for i in 0..count {
                    let bytes = lie_bytes(lie, &stage, &mut rng, i);
                    if !x.publish_commitment(bytes).await {
                        break;
                    }
                }
            }
            Action::TxList { len, referenced } => {
                let x = GossipPeer::start(&chain_spec, None).await;
                if !try_join(&x, victim).await {
                    continue;
                }
                let (hash, ssz) = txlist_gossip(len, rng.next());
                sent.push(hash);
                if referenced {
                    // A far-future window's commitment, signed by a stranger, referencing it.
                    let mut c = stage.next.next_unsigned(Some(b"x"));
                    c.preconf.raw_tx_list_hash = hash;
                    c.preconf.submission_window_end = U256::from(u64::MAX / 2);
                    let signed = stage.next.sign_with(&preconfer_key(77), c);
                    let _ = x.publish_commitment(signed.to_ssz()).await;
                }
                let _ = x.publish_txlist(ssz).await;
            }
            Action::Frame {
                proto,
                claimed,
                body,
            } => {
                let raw = RawPeer::spawn(chain_spec.chain_id);
                if raw.try_connect(victim, CASE_BOUND).await {
                    let mut bytes = varint(claimed);
                    bytes.extend(std::iter::repeat_n(0x11u8, body));
                    let _ = tokio::time::timeout(
                        CASE_BOUND,
                        raw.send(victim_id, proto, vec![Step::Write(bytes)]),
                    )
                    .await;
                }
            }
            Action::Requests { proto, count } => {
                let raw = RawPeer::spawn(chain_spec.chain_id);
                if raw.try_connect(victim, CASE_BOUND).await {
                    let replies: Vec<_> = (0..count)
                        .map(|_| {
                            raw.send(
                                victim_id,
                                proto,
                                vec![Step::Write(request_frame(proto, &mut rng))],
                            )
                        })
                        .collect();
                    let _ =
                        tokio::time::timeout(CASE_BOUND, futures::future::join_all(replies)).await;
                }
            }
            Action::Reconnects { times, same_id } => {
                let key = Keypair::generate_ed25519();
                for _ in 0..times {
                    let key = if same_id {
                        key.clone()
                    } else {
                        Keypair::generate_ed25519()
                    };
                    let raw = RawPeer::spawn_with_key(chain_spec.chain_id, key);
                    if raw.try_connect(victim, CASE_BOUND / 4).await {
                        let _ = tokio::time::timeout(
                            CASE_BOUND / 4,
                            raw.send(
                                victim_id,
                                Proto::GetHead,
                                vec![Step::Write(get_head_frame())],
                            ),
                        )
                        .await;
                    }
                    // Dropped: its connection closes.
                }
            }
            Action::Slow { proto } => {
                let raw = RawPeer::spawn(chain_spec.chain_id);
                if raw.try_connect(victim, CASE_BOUND).await {
                    let frame = request_frame(proto, &mut rng);
                    let _ = tokio::time::timeout(
                        CASE_BOUND,
                        raw.send(
                            victim_id,
                            proto,
                            vec![Step::Trickle {
                                bytes: frame,
                                every: Duration::from_millis(200),
                            }],
                        ),
                    )
                    .await;
                }
            }
        }
    }
    sent
}

/// Connects a gossip peer to `victim`, bounded; whether it joined its topic.
async fn try_join(x: &GossipPeer, victim: &preconf_node_core::Node) -> bool {
    tokio::time::timeout(CASE_BOUND, x.connect(victim))
        .await
        .is_ok()
}

/// The gossip payload of lie `lie` (the `i`-th of its kind in the action).
fn lie_bytes(lie: Lie, stage: &Stage, rng: &mut Rng, i: usize) -> Vec<u8> {
    let next = &stage.next;
    match lie {
        Lie::WrongSigner => {
            let c = next.next_unsigned(Some(&(i as u64).to_le_bytes()));
            next.sign_with(&preconfer_key(50 + i as u32), c).to_ssz()
        }
        Lie::FarFuture => {
            let mut c = next.next_unsigned(Some(&(i as u64).to_le_bytes()));
            c.preconf.submission_window_end = U256::from(u64::MAX - rng.below(1 << 20));
            next.sign_with(&preconfer_key(60 + i as u32), c).to_ssz()
        }
        Lie::Replay => match stage
            .chain
            .get(rng.below(stage.chain.len() as u64) as usize)
        {
            Some(c) => c.to_ssz(),
            None => Vec::new(),
        },
        Lie::Equivocation => {
            let Some(first) = stage.chain.last() else {
                return Vec::new();
            };
            let mut c = first.commitment.clone();
            c.preconf.gas_limit = U256::from(1_000 + i as u64);
            let lookahead = next.lookahead();
            let slot = p2p::Lookahead::slot_at(lookahead.as_ref(), c.preconf.timestamp);
            match slot.and_then(|s| next.key_for_slot(s)) {
                Some(key) => next.sign_with(key, c).to_ssz(),
                None => Vec::new(),
            }
        }
        Lie::Garbage => {
            let len = rng.below(600) as usize;
            (0..len).map(|_| rng.next() as u8).collect()
        }
    }
}

// ------------------------------------------------------------------------------ invariants

/// `future`'s output, or its panic as an error (the harness's waits panic on their bound).
async fn unpanicked<T>(future: impl std::future::Future<Output = T>) -> Result<T, String> {
    futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(future))
        .await
        .map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a panic".into())
        })
}

/// Checks the invariants after a case; `Err` names the first one broken. `orphans_before`:
/// each node's unreferenced tx lists before the case.
async fn check(
    honest: &mut Honest,
    victim: usize,
    sent: &[B256],
    orphans_before: &[usize],
    rss: &RssSampler,
    baseline_allocated: u64,
) -> Result<(), String> {
    let n = honest.nodes.len();
    // 4 (and liveness): an honest block from a node other than the victim reaches everyone.
    let from = (victim + 1) % n;
    let all: Vec<usize> = (0..n).collect();
    unpanicked(honest.publish_from(from, &all))
        .await
        .map_err(|e| format!("an honest block did not reach every honest node: {e}"))?;
    // 1: every node answers another's get_head with its head.
    for i in 0..n {
        let asker = honest.node((i + 1) % n);
        let id = honest.node(i).sdk().local_peer_id();
        let ask = async {
            loop {
                match asker.sdk().request_head(id).await {
                    // Our own pacing holds the request back (the peer's limits): ask later.
                    Err(p2p::P2pSdkError::Request(
                        preconfirmation_net::RequestError::Throttled(wait),
                    )) => tokio::time::sleep(wait).await,
                    other => return other,
                }
            }
        };
        match tokio::time::timeout(common::WAIT, ask).await {
            Ok(Ok(head))
                if head.block_number
                    == U256::from(honest.node(i).sdk().status().head_block_number) => {}
            other => return Err(format!("node {i} did not answer get_head: {other:?}")),
        }
    }
    // 3: no honest peer below 0 or banned (gone from the peer list).
    for i in 0..n {
        let peers = honest
            .node(i)
            .sdk()
            .peers()
            .await
            .map_err(|e| e.to_string())?;
        for j in (0..n).filter(|j| *j != i) {
            let id = honest.node(j).sdk().local_peer_id();
            match peers.iter().find(|p| p.peer_id == id) {
                Some(p) if p.score >= 0.0 => {}
                Some(p) => return Err(format!("node {i} scores honest node {j} {}", p.score)),
                None => return Err(format!("node {i} dropped honest node {j}")),
            }
        }
    }
    // 4: every acknowledged block and tx list everywhere.
    unpanicked(honest.assert_nothing_lost())
        .await
        .map_err(|e| format!("an acknowledged block or tx list went missing: {e}"))?;
    // 5: the attackers' tx lists: stored nowhere, and no node but the victim holds more
    //    unreferenced lists than before the case (the holding area only grows by arrivals).
    for (i, before) in orphans_before.iter().enumerate() {
        let sdk = honest.node(i).sdk();
        for hash in sent {
            if matches!(sdk.raw_txlist(hash), Ok(Some(_))) {
                return Err(format!("node {i} stored an attacker's tx list {hash}"));
            }
        }
        let orphans = sdk.status().orphan_txlists;
        if i != victim && orphans > *before {
            return Err(format!(
                "node {i} holds {orphans} unreferenced tx lists, {before} before the case: one \
                 was forwarded"
            ));
        }
    }
    // 2: memory.
    let peak = rss.peak_mib();
    if peak >= RSS_CAP_MIB {
        return Err(format!(
            "RSS peak {peak} MiB over the {RSS_CAP_MIB} MiB cap"
        ));
    }
    let grown = (allocated_bytes().saturating_sub(baseline_allocated)) >> 20;
    if grown > ALLOCATION_SLACK_MIB {
        return Err(format!("allocations grew {grown} MiB over the run"));
    }
    Ok(())
}

// ------------------------------------------------------------------------------ runner

/// Runs cases from `seed` until `cases` are done or `until` passes; panics with the seed, the
/// case and its actions on the first broken invariant. Returns (cases, actions) run.
async fn run(seed: u64, cases: usize, until: Option<Instant>) -> (usize, usize) {
    println!("CHAOS seed={seed:#x} cases={cases}");
    let rss = RssSampler::start();
    let genesis = builder();
    let mut honest = Honest::start(3, genesis.clone(), |_, _| {}).await;
    for _ in 0..3 {
        honest.publish().await;
    }
    let baseline_allocated = allocated_bytes();
    let mut rng = Rng(seed);
    let mut actions = 0;
    let mut done = 0;
    while done < cases && until.is_none_or(|t| Instant::now() < t) {
        let case = draw_case(&mut rng, honest.nodes.len());
        actions += case.peers.iter().map(Vec::len).sum::<usize>();
        let stage = Arc::new(Stage {
            chain: honest.acknowledged.clone(),
            next: honest.builder.clone(),
            fork: fork(&genesis, honest.acknowledged.len() + 2),
        });
        let victim = case.victim;
        let n = honest.nodes.len();
        let orphans_before: Vec<usize> = (0..n)
            .map(|i| honest.node(i).sdk().status().orphan_txlists)
            .collect();
        // Honest traffic meanwhile: the next block, from a node other than the victim.
        let from = (victim + 1) % n;
        let number = honest.builder.next_number();
        let block = honest
            .builder
            .next_block(Some(p2p::testkit::deterministic_txlist(number, 256)));
        let sent: Vec<B256> = {
            let tasks = case.peers.iter().cloned().map(|peer_actions| {
                act(
                    peer_actions,
                    honest.node(victim),
                    stage.clone(),
                    Rng(rng.next()),
                )
            });
            let attacks = tokio::time::timeout(CASE_BOUND * 3, futures::future::join_all(tasks));
            let publish = honest.node(from).sdk().publish(
                block.commitment.clone(),
                block.txlist.as_ref().map(|t| t.txlist.to_vec()),
            );
            let (attacked, published) = tokio::join!(attacks, publish);
            if let Err(e) = published {
                panic!("CHAOS: the honest publish failed: {e} (seed {seed:#x}, case {done})");
            }
            attacked.unwrap_or_default().into_iter().flatten().collect()
        };
        honest.acknowledged.push(block.commitment);
        let checked = check(
            &mut honest,
            victim,
            &sent,
            &orphans_before,
            &rss,
            baseline_allocated,
        )
        .await;
        if let Err(broken) = checked {
            panic!(
                "CHAOS violation: {broken}\n  replay: CHAOS_SEED={seed:#x} CHAOS_CASES={}\n  \
                 case {done}: {case:#?}",
                done + 1
            );
        }
        done += 1;
    }
    println!(
        "CHAOS done seed={seed:#x} cases={done} actions={actions} rss_peak={}MiB \
         allocated_peak={}MiB violations=0",
        rss.peak_mib(),
        rss.peak_allocated_mib()
    );
    honest.shutdown().await;
    (done, actions)
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    let value = value.trim();
    match value.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => value.parse().ok(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_cases_keep_every_invariant() {
    let seed = env_u64("CHAOS_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_u64("CHAOS_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    let (done, actions) = run(seed, cases, None).await;
    assert_eq!(done, cases);
    assert!(actions >= cases, "every case acted");
}

/// `cargo test -p preconf-devtools --test chaos chaos_soak -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "soak: an hour of random cases"]
async fn chaos_soak() {
    let seed = env_u64("CHAOS_SEED").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let secs = env_u64("CHAOS_SOAK_SECS").unwrap_or(3600);
    let started = Instant::now();
    let (done, actions) = run(seed, usize::MAX, Some(started + Duration::from_secs(secs))).await;
    println!(
        "RELIABILITY chaos_soak seed={seed:#x} secs={} cases={done} actions={actions} violations=0",
        started.elapsed().as_secs()
    );
}
