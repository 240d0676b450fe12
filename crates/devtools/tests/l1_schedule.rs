//! The schedule read from a real local L1: anvil (pinned, from npm; see
//! `scripts/install-anvil`) runs the test whitelist contract, a node with
//! `lookahead.source = "l1_whitelist"` reads it through a TCP relay the test can cut, and a
//! second node with the same schedule written statically (the truth) gossips to it.
//!
//! Epochs are 6 s (3 L1 slots of 2 s) of six 1 s L2 slots, so a run crosses several epochs in
//! real time; anvil mines a block every second, so L1 timestamps follow the wall clock (no
//! warp: the node validates commitment timestamps against its own clock). Epoch `e` belongs
//! to operator `e % 2`.
//!
//! Skipped, with one line saying so, only when anvil is absent and `CI` is unset; `.ci/run`
//! installs anvil and sets `CI`, so in CI it always runs.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use p2p::testkit::{deterministic_txlist, preconfer_key, ChainBuilder};
use p2p::{Lookahead, P2pSdkError};
use preconf_devtools::l1_dev::{find_anvil, Anvil, WhitelistStub};
use preconf_node_core::config::ScheduleSource;
use preconf_node_core::schedule::L1Schedule;
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_types::{recover_signer, secret_key_to_address, Address, U256};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use common::{chain, node_config, p2p_addr, start, WAIT};

/// L1 slot length (s) and slots per epoch: 6 s epochs.
const L1_SLOT_S: u64 = 2;
const L1_SLOTS_PER_EPOCH: u64 = 3;
const EPOCH_S: u64 = L1_SLOT_S * L1_SLOTS_PER_EPOCH;
/// L2 slot length (s).
const L2_SLOT_S: u64 = 1;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// anvil, or `None` (the test then returns) when it is absent outside CI.
fn anvil_or_skip() -> Option<std::path::PathBuf> {
    match find_anvil() {
        Some(bin) => Some(bin),
        None if std::env::var_os("CI").is_some() => {
            panic!("CI is set but anvil is missing: run scripts/install-anvil (or set ANVIL_BIN)")
        }
        None => {
            eprintln!("skipped: anvil not found (run scripts/install-anvil); CI unset");
            None
        }
    }
}

/// A TCP relay from 127.0.0.1 to the L1 that the test can cut (every connection closed,
/// nothing listening) and restore on the same port: the L1 RPC endpoint going away.
struct Relay {
    addr: SocketAddr,
    target: SocketAddr,
    tasks: Option<JoinSet<()>>,
}

impl Relay {
    /// A relay to `anvil`'s RPC port.
    async fn to_anvil(anvil: &Anvil) -> Self {
        let target: SocketAddr = anvil
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("anvil addr");
        Relay::start(target).await
    }

    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let mut relay = Relay {
            addr,
            target,
            tasks: None,
        };
        relay.serve(listener);
        relay
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                conns.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        self.tasks = Some(tasks);
    }

    /// Closes the listener and every relayed connection.
    async fn cut(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.shutdown().await;
        }
    }

    /// Listens on the same port but never answers: a slow L1 (connections are accepted and
    /// held, nothing is relayed).
    async fn stall(&mut self) {
        self.cut().await;
        let listener = TcpListener::bind(self.addr).await.expect("rebind relay");
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        self.tasks = Some(tasks);
    }

    /// Listens again on the same port.
    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.addr).await.expect("rebind relay");
        self.serve(listener);
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Waits until `node`'s head is `number`.
async fn wait_head(node: &Node, number: u64, what: &str) {
    let mut status = node.sdk().watch_status();
    tokio::time::timeout(WAIT, async {
        loop {
            if status.borrow_and_update().head_block_number >= number {
                return;
            }
            if status.changed().await.is_err() {
                panic!("SDK stopped");
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: head never reached {number}"));
}

/// Waits until `cond` holds, polling every 50 ms.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the wall clock to reach unix second `t`.
async fn wait_clock(t: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let target = Duration::from_secs(t);
    if target > now {
        tokio::time::sleep(target - now).await;
    }
}

/// Moves `builder` to the slot containing now.
fn to_current_slot(builder: &mut ChainBuilder, genesis: u64) {
    let slot = (unix_now() - genesis) / L2_SLOT_S;
    while builder.next_slot() < slot {
        builder.skip_slot();
    }
}

/// Builds the block of the slot containing now (a `seed`ed 200-byte tx list) and publishes
/// it through `via`.
async fn publish_now(via: &Node, builder: &mut ChainBuilder, genesis: u64, seed: u64, what: &str) {
    to_current_slot(builder, genesis);
    let block = builder.next_block(Some(deterministic_txlist(seed, 200)));
    via.sdk()
        .publish(block.commitment, block.txlist.map(|t| t.txlist.to_vec()))
        .await
        .unwrap_or_else(|e| panic!("{what}: {e}"));
}

/// `base` turned into a node in `dir` that reads its schedule from `stub` at `rpc_url`, with
/// the test's 6 s epochs and fast polls.
fn l1_config(
    base: &NodeConfig,
    dir: &std::path::Path,
    rpc_url: String,
    stub: &WhitelistStub,
    genesis: u64,
) -> NodeConfig {
    let mut config = base.clone();
    config.data_dir = dir.to_path_buf();
    config.lookahead.source = ScheduleSource::L1Whitelist;
    config.lookahead.preconfers = Vec::new();
    config.lookahead.slot_duration_secs = L2_SLOT_S;
    config.l1.rpc_url = rpc_url;
    config.l1.whitelist_address = stub.address;
    config.l1.beacon_genesis_timestamp = Some(genesis);
    config.l1.seconds_per_slot = L1_SLOT_S;
    config.l1.slots_per_epoch = L1_SLOTS_PER_EPOCH;
    config.l1.poll_interval = Duration::from_millis(200);
    config.l1.request_timeout = Duration::from_millis(500);
    config.l1.max_backoff = Duration::from_millis(800);
    config
}

/// Starts anvil with the whitelist stub, epochs aligned to a genesis 60 s ago and operator
/// `e % 2` assigned for the next 12 epochs; returns anvil, the stub, the genesis, the proposers
/// and their sequencers, or `None` (the test skips) where there is no anvil binary.
async fn whitelist_on_anvil() -> Option<(Anvil, WhitelistStub, u64, [Address; 2], [Address; 2])> {
    let anvil_bin = anvil_or_skip()?;
    let anvil = Anvil::start(&anvil_bin, 1).await.expect("anvil starts");
    let genesis = unix_now() - 60;
    let stub = WhitelistStub::deploy(&anvil, genesis, EPOCH_S)
        .await
        .expect("contract deploys");
    let proposers = [Address::repeat_byte(0xa1), Address::repeat_byte(0xb2)];
    let sequencers = [0, 1].map(|i| secret_key_to_address(&preconfer_key(i)));
    let epoch_now = (unix_now() - genesis) / EPOCH_S;
    let assignments: Vec<(u64, Address)> = (epoch_now..epoch_now + 12)
        .map(|e| (e, proposers[(e % 2) as usize]))
        .collect();
    stub.setup(
        &[(proposers[0], sequencers[0]), (proposers[1], sequencers[1])],
        &assignments,
    )
    .await
    .expect("operators set");
    Some((anvil, stub, genesis, proposers, sequencers))
}

/// With the L1 RPC unreachable, a catching-up node cannot name the signers of its peer's pages;
/// the pages wait as pending, unscored, rather than counting as invalid: a late node whose L1
/// is cut is served 3 epochs by an honest peer, whose score never drops below 0 and which is
/// never banned (ban after 1 s below the threshold); once L1 is back the node catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_l1_never_costs_an_honest_peer_its_score() {
    let Some((anvil, stub, genesis, _, _)) = whitelist_on_anvil().await else {
        return;
    };
    let mut builder = ChainBuilder::new(chain(), 2, EPOCH_S / L2_SLOT_S, genesis, L2_SLOT_S);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let honest = start(node_config(dirs[0].path(), &builder, vec![])).await;
    // One block in each of 3 epochs, each signed by its epoch's operator.
    let first_epoch = (unix_now() - genesis) / EPOCH_S + 1;
    for (i, epoch) in (first_epoch..first_epoch + 3).enumerate() {
        wait_clock(genesis + epoch * EPOCH_S).await;
        to_current_slot(&mut builder, genesis);
        let block = builder.next_block(Some(deterministic_txlist(i as u64, 200)));
        // Nobody is subscribed yet: stored and served all the same.
        let published = honest
            .sdk()
            .publish(block.commitment, block.txlist.map(|t| t.txlist.to_vec()))
            .await;
        assert!(
            matches!(published, Ok(_) | Err(P2pSdkError::Network(_))),
            "{published:?}"
        );
    }
    assert_eq!(honest.sdk().status().head_block_number, 3);
    let mut relay = Relay::to_anvil(&anvil).await;
    relay.cut().await;
    let mut base = node_config(dirs[1].path(), &builder, vec![p2p_addr(&honest).await]);
    base.sdk.network.ban_sustain = Duration::from_secs(1);
    let late = start(l1_config(
        &base,
        dirs[1].path(),
        relay.url(),
        &stub,
        genesis,
    ))
    .await;
    let honest_id = honest.sdk().local_peer_id();
    let honest_score = || async {
        late.sdk()
            .peers()
            .await
            .expect("peers")
            .into_iter()
            .find(|p| p.peer_id == honest_id)
            .map(|p| p.score)
    };
    wait_until("the served page pending its schedule", || {
        late.sdk().status().pending_schedule >= 1
    })
    .await;
    assert_eq!(
        late.sdk().status().head_block_number,
        0,
        "nothing taken on trust"
    );
    // More catch-up rounds while L1 stays away: each finds the schedule still unknown. The
    // honest peer keeps its score and its connection throughout.
    for _ in 0..3 {
        late.sdk().catch_up().expect("catch-up starts");
        let mut status = late.sdk().watch_status();
        tokio::time::timeout(
            WAIT,
            status.wait_for(|s| s.sync == p2p::HeadSyncStatus::Live),
        )
        .await
        .expect("the round ends")
        .expect("status");
        let score = honest_score().await;
        assert!(
            score.is_some_and(|s| s >= 0.0),
            "the honest peer is scored {score:?} (None: disconnected or banned)"
        );
    }
    relay.restore().await;
    wait_head(&late, 3, "the late node catches up once L1 is back").await;
    let score = honest_score().await;
    assert!(score.is_some_and(|s| s >= 0.0), "{score:?}");
    late.shutdown().await;
    honest.shutdown().await;
    anvil.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_follows_the_l1_whitelist_across_epochs_and_outages() {
    let Some((anvil, stub, genesis, proposers, sequencers)) = whitelist_on_anvil().await else {
        return;
    };

    let mut relay = Relay::to_anvil(&anvil).await;

    // The truth, written statically: windows of 6 one-second slots, operator e % 2.
    let mut builder = ChainBuilder::new(chain(), 2, EPOCH_S / L2_SLOT_S, genesis, L2_SLOT_S);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let relay_node = start(node_config(dirs[0].path(), &builder, vec![])).await;
    let relay_addr = p2p_addr(&relay_node).await;
    let base = node_config(dirs[1].path(), &builder, vec![relay_addr]);
    let l1_config =
        |dir: &std::path::Path, rpc_url: String| l1_config(&base, dir, rpc_url, &stub, genesis);
    let node = start(l1_config(dirs[1].path(), relay.url())).await;
    relay_node
        .sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("the two nodes mesh");
    let schedule = node.context().schedule.clone();

    // 1. The node learns the current and the next epoch from L1, and accepts a commitment
    //    of the current operator.
    let epoch = (unix_now() - genesis) / EPOCH_S;
    wait_until("the current and next operator read from L1", || {
        let s = schedule.status(unix_now());
        s.current_window == Some(epoch)
            && s.current_preconfer == Some(sequencers[(epoch % 2) as usize])
            && s.next_preconfer == Some(sequencers[((epoch + 1) % 2) as usize])
            && s.l1_head.is_some()
    })
    .await;
    let status = common::http_get(node.http_addr().expect("http"), "/status").await;
    let status: serde_json::Value = serde_json::from_str(&status.body).expect("JSON");
    assert_eq!(status["schedule"]["source"], "l1_whitelist");
    assert_eq!(
        status["schedule"]["current_preconfer"],
        serde_json::json!(sequencers[(epoch % 2) as usize])
    );
    assert!(status["schedule"]["l1_head"].as_u64().is_some(), "{status}");
    let metrics = common::http_get(node.http_addr().expect("http"), "/metrics").await;
    assert!(
        metrics.body.contains("preconf_l1_call_seconds")
            && metrics.body.contains("call=\"getOperatorForNextEpoch\""),
        "L1 call metrics exported"
    );
    publish_now(
        &relay_node,
        &mut builder,
        genesis,
        1,
        "the current operator publishes",
    )
    .await;
    wait_head(&node, 1, "the current operator's commitment").await;

    // 2. Hand-over: one block per slot up to the second slot of the next epoch; each is
    //    accepted as it comes (the next operator was known before its epoch began).
    let handover_epoch = (unix_now() - genesis) / EPOCH_S + 1;
    let last_slot = (handover_epoch * EPOCH_S + L2_SLOT_S) / L2_SLOT_S;
    let mut number = 1;
    loop {
        let slot = (unix_now() - genesis) / L2_SLOT_S;
        if slot > last_slot {
            break;
        }
        if builder.next_slot() <= slot {
            publish_now(
                &relay_node,
                &mut builder,
                genesis,
                100 + slot,
                "the elected operator publishes",
            )
            .await;
            number += 1;
            wait_head(&node, number, "a commitment around the hand-over").await;
        }
        wait_clock(genesis + (slot + 1) * L2_SLOT_S).await;
    }
    let handed_over = node
        .sdk()
        .commitment_by_number(number)
        .expect("read")
        .expect("stored");
    let lookahead = schedule.lookahead();
    let slot = lookahead
        .slot_at(handed_over.preconf().timestamp)
        .expect("slot");
    assert!(
        slot >= handover_epoch * EPOCH_S / L2_SLOT_S,
        "crossed the boundary"
    );
    assert_eq!(
        recover_signer(&chain().domain, &handed_over).ok(),
        Some(sequencers[(handover_epoch % 2) as usize]),
        "the new epoch's operator signed it"
    );

    // 3. The previous operator, after its epoch ended, is refused.
    let previous = ((handover_epoch + 1) % 2) as u32;
    to_current_slot(&mut builder, genesis);
    let txlist = deterministic_txlist(7_777, 200);
    let unsigned = builder.next_unsigned(Some(&txlist));
    let stale = builder.sign_with(&preconfer_key(previous), unsigned);
    let refused = node.sdk().publish(stale, Some(txlist)).await;
    assert!(
        matches!(refused, Err(P2pSdkError::Validation(_))),
        "the previous operator is refused: {refused:?}"
    );

    // 4. L1 is slow (answers nothing: every call times out), then goes away. An epoch the
    //    node never read stays pending; once L1 is back, the commitment waiting for it is
    //    accepted.
    relay.stall().await;
    let dark_epoch = (unix_now() - genesis) / EPOCH_S + 2;
    wait_until("a slow L1 shown in /status", || {
        schedule
            .status(unix_now())
            .last_error
            .is_some_and(|e| e.contains("no answer within"))
    })
    .await;
    relay.cut().await;
    wait_until("a refused L1 shown in /status", || {
        schedule
            .status(unix_now())
            .last_error
            .is_some_and(|e| !e.contains("no answer within"))
    })
    .await;
    wait_clock(genesis + dark_epoch * EPOCH_S).await;
    assert_eq!(
        schedule.status(unix_now()).current_preconfer,
        None,
        "an epoch never read from L1 has no preconfer"
    );
    publish_now(
        &relay_node,
        &mut builder,
        genesis,
        9_999,
        "the relay node accepts it (static schedule)",
    )
    .await;
    number += 1;
    wait_until("the commitment pending its schedule", || {
        node.sdk().status().pending_schedule >= 1
    })
    .await;
    assert_eq!(
        node.sdk().status().head_block_number,
        number - 1,
        "not accepted on trust while L1 is down"
    );
    relay.restore().await;
    wait_head(&node, number, "the pending commitment once L1 is back").await;
    assert_eq!(node.sdk().status().pending_schedule, 0);
    let s = schedule.status(unix_now());
    assert_eq!(
        s.current_preconfer,
        Some(sequencers[(dark_epoch % 2) as usize])
    );
    assert!(s.last_error.is_none(), "{s:?}");
    assert_eq!(
        lookahead
            .schedule_for_slot(dark_epoch * EPOCH_S / L2_SLOT_S)
            .map(|s| s.window_end),
        Some(U256::from(genesis + (dark_epoch + 1) * EPOCH_S))
    );

    // 5. A node started now catches up on blocks of epochs that are over: it reads each past
    //    epoch's operator at an L1 block inside that epoch.
    let late_dir = tempfile::tempdir().unwrap();
    let late = start(l1_config(late_dir.path(), anvil.url.clone())).await;
    wait_head(&late, number, "the late node's catch-up over past epochs").await;
    let epochs: std::collections::BTreeSet<u64> = (1..=number)
        .map(|n| {
            let c = late
                .sdk()
                .commitment_by_number(n)
                .expect("read")
                .expect("stored");
            let t = u64::try_from(c.preconf().timestamp).expect("u64");
            (t - genesis) / EPOCH_S
        })
        .collect();
    assert!(
        epochs.len() >= 3,
        "the catch-up spanned past epochs: {epochs:?}"
    );

    // 6. An L1 that lies about time (its head an hour ahead of our clock) is not believed:
    //    the read is refused and shown, and no epoch of that future is learned.
    let late_source = late.context().schedule.clone();
    let late_schedule = late_source
        .source::<L1Schedule>()
        .expect("the late node reads L1");
    let warped = unix_now() + 3600;
    let future_epoch = (warped - genesis) / EPOCH_S;
    stub.setup(&[], &[(future_epoch, proposers[0])])
        .await
        .expect("an operator for the future epoch");
    anvil.warp_to(warped).await.expect("warp");
    wait_until("the future L1 head refused", || {
        late.context()
            .schedule
            .status(unix_now())
            .last_error
            .is_some_and(|e| e.contains("from the future"))
    })
    .await;
    assert_eq!(
        late_schedule.lookahead().signer_of_window(future_epoch),
        None,
        "nothing learned from a head in the future"
    );

    late.shutdown().await;
    node.shutdown().await;
    relay_node.shutdown().await;
    anvil.stop().await;
}

/// `devnet --l1`: anvil started by the devnet, the contract deployed, every node reading the
/// rotation from L1; the network converges and the late joiner catches up over past epochs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_l1_converges_with_a_late_joiner() {
    if anvil_or_skip().is_none() {
        return;
    }
    let args = preconf_devtools::devnet::DevnetArgs {
        nodes: 3,
        preconfers: 2,
        blocks: 12,
        late_joiners: 1,
        txlist_bytes: 1024,
        slots_per_window: 3,
        seed: Some(11),
        converge_timeout_secs: 60,
        l1: true,
        ..Default::default()
    };
    let report = preconf_devtools::devnet::run_devnet(&args, None, false)
        .await
        .expect("devnet --l1 runs");
    assert_eq!(report.schedule, "l1_whitelist");
    assert!(report.converged, "{report:?}");
    assert!(report.late_joiner_caught_up, "{report:?}");
    assert_eq!(report.heads, vec![12; 3]);
    assert_eq!(report.invalid_accepted, 0);
}
