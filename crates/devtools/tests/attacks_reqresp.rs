//! Hostile req/resp peers against real in-process nodes on 127.0.0.1: catch-up peers that lie
//! (bad signatures, gaps, forks, heads they cannot serve) and tx-list amplification, within one
//! connection and across reconnects.
//!
//! Each test asserts that the victim never panics (it keeps answering), stays under the RSS
//! cap, keeps serving honest peers (an honest commitment published during the attack reaches
//! every honest node), penalises and bans the attacker where the protocol says it should, and
//! loses no acknowledged commitment. Each prints a `RELIABILITY` line (run with
//! `--nocapture`) that RELIABILITY.md copies. Harness: [`preconf_devtools::testing::adversary`].

mod adversary;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adversary::*;
use p2p::SdkEvent;
use preconfirmation_types::{SignedCommitment, B256, U256};

/// How a lying catch-up peer lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    BadSignatures,
    Gaps,
    Fork,
    /// The fork, with its own (longer) head claimed: it is the best head, so without a vote
    /// on the first block it would be asked for block 1 first.
    LongerFork,
    /// Claims the fork's head, votes for the honest block 1 (a one-block page) and serves the
    /// fork in any longer page.
    TwoFaced,
    BadTxLists,
    EmptyForever,
    /// Serves the honest chain, and claims this head.
    Head(u64),
}

struct LyingPeer {
    lie: Lie,
    chain: Vec<SignedCommitment>,
    fork: Vec<SignedCommitment>,
}

impl Liar for LyingPeer {
    fn head(&self) -> preconfirmation_types::PreconfHead {
        let n = match self.lie {
            Lie::EmptyForever => 1_000_000,
            Lie::Head(n) => n,
            Lie::LongerFork | Lie::TwoFaced => self.fork.len() as u64,
            _ => self.chain.len() as u64,
        };
        preconfirmation_types::PreconfHead {
            block_number: U256::from(n),
            submission_window_end: U256::ZERO,
        }
    }

    fn page(&self, start: u64, max: u32) -> Vec<SignedCommitment> {
        let from = (start.saturating_sub(1) as usize).min(self.chain.len());
        let to = (from + max as usize).min(self.chain.len());
        match self.lie {
            Lie::EmptyForever => Vec::new(),
            Lie::BadSignatures => self.chain[from..to]
                .iter()
                .cloned()
                .map(|mut c| {
                    c.signature.0[64] = 9;
                    c
                })
                .collect(),
            Lie::Gaps => self.chain[from..to].iter().step_by(2).cloned().collect(),
            Lie::TwoFaced if max == 1 => self.chain[from..to].to_vec(),
            Lie::Fork | Lie::LongerFork | Lie::TwoFaced => {
                self.fork[from.min(self.fork.len())..to.min(self.fork.len())].to_vec()
            }
            Lie::BadTxLists | Lie::Head(_) => self.chain[from..to].to_vec(),
        }
    }

    fn txlist(&self, _hash: B256) -> Vec<u8> {
        b"this does not hash to anything".to_vec()
    }
}

/// `len` blocks on the test chain's schedule and keys, validly signed, whose block 1 hangs off
/// a parent nobody has: a fork a node with no anchor hash cannot tell from the real chain by
/// itself.
fn fork_chain(len: u64) -> Vec<SignedCommitment> {
    let mut b = builder();
    let mut out = Vec::new();
    for i in 0..len {
        let mut c = b.next_unsigned(Some(&[i as u8; 8]));
        if i == 0 {
            c.preconf.parent_preconfirmation_hash = B256::repeat_byte(0x66);
        }
        let signed = b.sign_next(c);
        b.advance(&signed);
        out.push(signed);
    }
    out
}

/// `nodes` honest nodes (under the serial lock) that published 30 blocks, and those blocks.
async fn honest_chain(
    nodes: usize,
) -> (
    tokio::sync::MutexGuard<'static, ()>,
    Honest,
    Vec<SignedCommitment>,
) {
    let serial = serial().await;
    let mut honest = Honest::start(nodes, builder(), |_, _| {}).await;
    for _ in 0..30 {
        honest.publish().await;
    }
    let chain_blocks = honest.acknowledged.clone();
    (serial, honest, chain_blocks)
}

/// Waits until `v` holds 30 blocks and asserts they are `chain_blocks`.
async fn assert_holds_chain(v: &preconf_node_core::Node, chain_blocks: &[SignedCommitment]) {
    wait_head(v, 30).await;
    for c in chain_blocks {
        let n = u64::try_from(c.preconf().block_number).expect("u64");
        assert_eq!(
            v.sdk().commitment_by_number(n).expect("read").as_ref(),
            Some(c),
            "block {n} is the honest chain's"
        );
    }
}

/// A fresh node with no anchor hash takes its first block's parent on trust, so the first
/// block decides its chain. Two honest nodes hold 30 blocks; a liar serves a validly signed
/// 31-block fork and, claiming the best head, would be asked for block 1 first. The peers vote
/// on block 1 (three against one): the node ends with exactly the honest chain and never
/// announces a fork block. Without the vote it followed the fork. A second liar votes for the
/// honest block 1 and then serves the fork's page: the page is refused for not starting with
/// the agreed block (without that check the fork won again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_longer_fork_does_not_win_the_first_block_without_an_anchor_hash() {
    let (_serial, honest, chain_blocks) = honest_chain(2).await;
    let fork = fork_chain(31);
    let mut liars = Vec::new();
    let mut statics = Vec::new();
    for lie in [Lie::LongerFork, Lie::TwoFaced] {
        let liar = GossipPeer::start(
            &chain(),
            Some(Arc::new(LyingPeer {
                lie,
                chain: chain_blocks.clone(),
                fork: fork.clone(),
            })),
        )
        .await;
        statics.push(liar.p2p_addr().await);
        liars.push(liar);
    }
    statics.push(common::p2p_addr(honest.node(0)).await);
    statics.push(common::p2p_addr(honest.node(1)).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = attack_config(dir.path(), &honest.builder, statics);
    assert_eq!(config.sdk.anchor.preconfirmation_hash, None);
    // All four vote (the default waits for two): with fewer, whether the liars are among them
    // would depend on which connection comes up first.
    config.sdk.catchup.first_block_voters = 4;
    config.sdk.catchup.first_block_wait = common::WAIT;
    let v = common::start(config).await;
    let mut v_events = v.sdk().subscribe();
    assert_holds_chain(&v, &chain_blocks).await;
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), v_events.recv()).await {
        if let SdkEvent::Commitment { commitment, .. } = e {
            assert!(!fork.contains(&commitment), "a fork block was announced");
        }
    }
    assert_eq!(
        v.sdk().status().head_block_number,
        30,
        "the fork's block 31 was not taken"
    );
    v.shutdown().await;
    honest.shutdown().await;
}

/// Two peers claim heads of `u64::MAX - 1` and 2^40 and serve the honest chain below them;
/// an honest peer has 30 blocks. A catch-up round plans its pages from the best claimed head:
/// planned up front, a claim of 2^40 was a plan of 4 billion pages (a 3 GiB allocation, and
/// the process aborted). Planned lazily, the victim's allocations stay within 64 MiB, its
/// round ends (`Live`) within 10 s, and it holds exactly the honest chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_head_is_bounded() {
    let (_serial, honest, chain_blocks) = honest_chain(1).await;
    let mut liars = Vec::new();
    let mut statics = Vec::new();
    for claim in [u64::MAX - 1, 1 << 40] {
        let liar = GossipPeer::start(
            &chain(),
            Some(Arc::new(LyingPeer {
                lie: Lie::Head(claim),
                chain: chain_blocks.clone(),
                fork: Vec::new(),
            })),
        )
        .await;
        statics.push(liar.p2p_addr().await);
        liars.push(liar);
    }
    statics.push(common::p2p_addr(honest.node(0)).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = attack_config(dir.path(), &honest.builder, statics);
    // Every peer is asked for its head, the liars' answers included.
    config.sdk.catchup.head_peers = 4;
    config.sdk.catchup.first_block_voters = 3;
    config.sdk.catchup.first_block_wait = common::WAIT;
    let baseline = allocated_bytes();
    let rss = RssSampler::start();
    let v = common::start(config).await;
    let mut status = v.sdk().watch_status();
    let started = Instant::now();
    let round = tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.sync == p2p::HeadSyncStatus::Live),
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        matches!(round, Ok(Ok(_))),
        "the catch-up round did not end within 10 s: {:?}",
        v.sdk().status().sync
    );
    let grown_mib = (rss.peak_allocated_mib() << 20).saturating_sub(baseline) >> 20;
    println!(
        "RELIABILITY lying_head round_end={:.1}s allocated_growth={grown_mib}MiB rss_peak={}MiB",
        elapsed.as_secs_f64(),
        rss.peak_mib()
    );
    assert!(
        grown_mib < 64,
        "allocations grew {grown_mib} MiB on a lying head claim"
    );
    assert_holds_chain(&v, &chain_blocks).await;
    v.shutdown().await;
    honest.shutdown().await;
}

/// A fresh node catches up while five liars serve bad signatures, pages with gaps, a forked
/// chain (validly signed, not attached to the anchor), tx lists that do not hash, and empty
/// pages forever behind a head of 1 000 000. It ends with exactly the honest chain and tx
/// lists, every liar is penalised, and the one that keeps claiming a higher head is banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_peer_pages_are_refused_liars_penalised_and_banned() {
    let (_serial, rss, mut honest) = start_scenario(2, |_, _| {}).await;
    let mut latencies = Vec::new();
    for _ in 0..30 {
        latencies.push(honest.publish().await);
    }
    let chain_blocks = honest.acknowledged.clone();
    let fork = fork_chain(30);
    let lies = [
        Lie::BadSignatures,
        Lie::Gaps,
        Lie::Fork,
        Lie::BadTxLists,
        Lie::EmptyForever,
    ];
    let mut liars = Vec::new();
    let mut statics = Vec::new();
    for lie in lies {
        let liar: Arc<dyn Liar> = Arc::new(LyingPeer {
            lie,
            chain: chain_blocks.clone(),
            fork: fork.clone(),
        });
        let peer = GossipPeer::start(&chain(), Some(liar)).await;
        statics.push(peer.p2p_addr().await);
        liars.push((lie, peer));
    }
    statics.push(common::p2p_addr(honest.node(0)).await);
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut config = attack_config(dir.path(), &honest.builder, statics);
    config.sdk.catchup.head_peers = 8;
    let v = common::start(config).await;
    let mut v_events = v.sdk().subscribe();
    wait_head(&v, 30).await;
    let caught_up = started.elapsed();
    for c in &chain_blocks {
        let n = u64::try_from(c.preconf().block_number).expect("u64");
        assert_eq!(
            v.sdk().commitment_by_number(n).expect("read").as_ref(),
            Some(c)
        );
    }
    // Every tx list arrives and hashes (the bad ones were refused).
    tokio::time::timeout(common::WAIT, async {
        let mut status = v.sdk().watch_status();
        status
            .wait_for(|s| s.missing_txlists == 0)
            .await
            .map(|_| ())
    })
    .await
    .expect("all tx lists fetched")
    .expect("status");
    // The empty-forever liar keeps claiming more: keep catching up until it is banned.
    let empty = liars
        .iter()
        .find(|(l, _)| matches!(l, Lie::EmptyForever))
        .map(|(_, p)| p.peer_id)
        .expect("empty liar");
    let ban_started = Instant::now();
    let banned = {
        let sdk = v.sdk().clone();
        let mut events = v.sdk().subscribe();
        let wait = tokio::spawn(async move { wait_banned(&mut events, empty, ban_started).await });
        let driver = tokio::spawn(async move {
            loop {
                let _ = sdk.catch_up();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        let t = wait.await.expect("join");
        driver.abort();
        t
    };
    let mut penalised = 0;
    let peers = v.sdk().peers().await.expect("peers");
    for (lie, p) in &liars {
        let score = peers
            .iter()
            .find(|i| i.peer_id == p.peer_id)
            .map(|i| i.score);
        println!("RELIABILITY lying_peer lie={lie:?} score={score:?}");
        penalised += usize::from(score.is_none_or(|s| s < 0.0));
    }
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(50), v_events.recv()).await {
        if let SdkEvent::Commitment { commitment, .. } = e {
            assert!(chain_blocks.contains(&commitment), "a lie was accepted");
        }
    }
    assert!(penalised >= 4, "{penalised} of 5 liars penalised");
    let lost = honest.assert_nothing_lost().await;
    println!(
        "RELIABILITY lying_peer caught_up={:.1}s",
        caught_up.as_secs_f64()
    );
    rss.report("lying_peer", "5 liars (bad signatures, gaps, fork, bad tx lists, empty pages behind head 1e6) vs 1 honest, 30 blocks", Some(banned), &latencies, lost);
    v.shutdown().await;
    honest.shutdown().await;
}

/// The amplification tests' victim, node 1, gets an 8 MiB per 10 s response-byte budget
/// (default 64 MiB: a debug-build attacker on two shared cores pulls less than the default's
/// refill).
fn small_budget_on_node_1(i: usize, c: &mut preconf_node_core::NodeConfig) {
    if i == 1 {
        c.sdk.network.rate_limit.response_bytes =
            preconfirmation_net::ByteRateLimit::new(8 << 20, Duration::from_secs(10));
    }
}

/// The most a byte budget lets one peer receive over `elapsed` seconds: a full bucket, its
/// refill, and one response in flight on each of two streams.
fn egress_bound(budget: preconfirmation_net::ByteRateLimit, elapsed: f64) -> f64 {
    let rate = budget.burst_bytes as f64 / budget.period.as_secs_f64();
    budget.burst_bytes as f64 + rate * elapsed + 2.0 * (3 << 20) as f64
}

/// A `get_raw_txlist` request body for `hash`.
fn txlist_request(hash: B256) -> Vec<u8> {
    let mut request = varint(32);
    request.extend_from_slice(hash.as_slice());
    request
}

/// `request` on `get_raw_txlist` from `x` to `victim`, twice at once; the two replies.
fn two_txlist_requests(
    x: &RawPeer,
    victim: libp2p::PeerId,
    request: &[u8],
) -> [tokio::sync::oneshot::Receiver<Result<Vec<u8>, String>>; 2] {
    [(); 2].map(|()| {
        x.send(
            victim,
            Proto::GetRawTxList,
            vec![Step::Write(request.to_vec())],
        )
    })
}

/// Publishes from node 0 a block whose tx list is at the 2 MiB cap and waits until node
/// `victim` stores the list; returns the list's hash and the victim's response-byte budget.
async fn store_largest_txlist(
    honest: &mut Honest,
    victim: usize,
) -> (B256, preconfirmation_net::ByteRateLimit) {
    let big = vec![0x42u8; preconfirmation_types::MAX_TXLIST_BYTES];
    let block = honest.builder.next_block(Some(big));
    let hash = block.commitment.preconf().raw_tx_list_hash;
    let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
    let _ = honest
        .node(0)
        .sdk()
        .publish(block.commitment.clone(), txlist)
        .await;
    for i in 0..honest.nodes.len() {
        wait_head(honest.node(i), 1).await;
    }
    honest.acknowledged.push(block.commitment);
    tokio::time::timeout(common::WAIT, async {
        while !matches!(honest.node(victim).sdk().raw_txlist(&hash), Ok(Some(_))) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the victim stores the 2 MiB tx list");
    let budget = honest
        .node(victim)
        .sdk()
        .config()
        .network
        .rate_limit
        .response_bytes;
    (hash, budget)
}

/// Tx-list amplification: a 32-byte `get_raw_txlist` request for a stored 2 MiB tx list, sent
/// by one peer id as fast as it is answered (2 in flight). What the victim sends that peer is
/// held to its response-byte budget (`rate_limit.response_bytes`, reserved before serving),
/// whatever the request rate; the flooder is refused, penalised and banned. The victim's
/// budget is 8 MiB per 10 s here (default 64 MiB): a debug-build attacker on two shared cores
/// pulls less than the default's 6.4 MiB/s refill, which it would be allowed to keep doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txlist_amplification() {
    let (_serial, rss, mut honest) = start_scenario(3, small_budget_on_node_1).await;
    // A block whose tx list is at the 2 MiB cap, stored on the victim.
    let (hash, budget) = store_largest_txlist(&mut honest, 1).await;
    let (victim, x, banned) = raw_attacker(&honest).await;
    let received = Counter::default();
    let requests = Counter::default();
    let started = Instant::now();
    let attack = {
        let (x, received, requests) = (x.clone(), received.clone(), requests.clone());
        tokio::spawn(async move {
            let request = txlist_request(hash);
            while x.is_connected(&victim) {
                for r in two_txlist_requests(&x, victim, &request) {
                    requests.add(1);
                    if let Ok(Ok(body)) = r.await {
                        received.add(body.len() as u64);
                    }
                }
            }
        })
    };
    let (time_to_ban, latencies) =
        traffic_until_banned(&mut honest, banned, &x, victim, attack).await;
    let elapsed = started.elapsed().as_secs_f64();
    let received = received.get();
    let requests = requests.get();
    let allowed = egress_bound(budget, elapsed);
    assert!(received > 0, "some tx lists were served before the limit");
    assert!(
        (received as f64) <= allowed,
        "egress {received} B over the byte budget's {allowed:.0} B in {elapsed:.1} s"
    );
    let volume = || {
        format!(
            "{requests} get_raw_txlist requests of 32 B for a 2 MiB tx list; {:.1} MiB served \
             in {elapsed:.1} s (budget {} MiB per {} s)",
            received as f64 / (1 << 20) as f64,
            budget.burst_bytes >> 20,
            budget.period.as_secs()
        )
    };
    rss.close_scenario(
        honest,
        "txlist_amplification",
        time_to_ban,
        &latencies,
        volume,
    )
    .await;
}

/// A peer's byte budget outlives its connection: an amplifier that redials with the same key
/// whenever its budget runs dry gets no fresh burst, so PROTOCOL-EXT's per-peer egress cap
/// holds. The same 2 MiB list, the same 8 MiB per 10 s budget; the attacker reconnects (same
/// key) after every refusal, for 8 s or until it can no longer connect: what it receives stays
/// within burst + rate × time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txlist_amplification_across_reconnects() {
    let _serial = serial().await;
    let mut honest = Honest::start(2, builder(), small_budget_on_node_1).await;
    let (hash, budget) = store_largest_txlist(&mut honest, 1).await;
    let victim = honest.node(1).sdk().local_peer_id();
    let key = libp2p::identity::Keypair::generate_ed25519();
    let request = txlist_request(hash);
    let started = Instant::now();
    let mut received = 0u64;
    let mut connections = 0;
    while started.elapsed() < Duration::from_secs(8) {
        let x = RawPeer::spawn_with_key(chain().chain_id, key.clone());
        if !x.try_connect(honest.node(1), Duration::from_secs(2)).await {
            break; // banned
        }
        connections += 1;
        // Two at a time until one is refused: the budget is empty.
        loop {
            let mut refused = false;
            for r in two_txlist_requests(&x, victim, &request) {
                match tokio::time::timeout(common::WAIT, r).await {
                    Ok(Ok(Ok(body))) if !body.is_empty() => received += body.len() as u64,
                    _ => refused = true,
                }
            }
            if refused || started.elapsed() >= Duration::from_secs(8) {
                break;
            }
        }
        // Dropped: the connection closes, and the next one comes back as the same id.
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = egress_bound(budget, elapsed);
    println!(
        "RELIABILITY amplification_reconnects connections={connections} received={:.1}MiB \
         allowed={:.1}MiB elapsed={elapsed:.1}s",
        received as f64 / (1 << 20) as f64,
        allowed / (1 << 20) as f64
    );
    assert!(connections >= 2, "the attacker reconnected");
    assert!(
        (received as f64) <= allowed,
        "egress {received} B over the byte budget's {allowed:.0} B in {elapsed:.1} s across \
         {connections} connections"
    );
    assert_serves_head(&honest, 1, 0).await;
    honest.assert_nothing_lost().await;
    honest.shutdown().await;
}
