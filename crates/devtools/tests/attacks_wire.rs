//! Hostile peers at the wire against real in-process nodes on 127.0.0.1: malformed bytes on
//! every protocol, oversize length prefixes, request floods from one and from many peer ids,
//! peer-id churn, inbound slot exhaustion, and the allocation check the harness relies on.
//!
//! Each test asserts that the victim never panics (it keeps answering), stays under the RSS
//! cap, keeps serving honest peers (an honest commitment published during the attack reaches
//! every honest node), penalises and bans the attacker where the protocol says it should, and
//! loses no acknowledged commitment. Each prints a `RELIABILITY` line (run with
//! `--nocapture`) that RELIABILITY.md copies. Harness: [`preconf_devtools::testing::adversary`].
//!
//! Long variant: `cargo test -p preconf-devtools --test attacks_wire peer_id_churn_10k --
//! --ignored --nocapture`.

mod adversary;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adversary::*;
use preconfirmation_types::{
    ChainSpec, GetCommitmentsByNumberRequest, ReqRespKind, WireMessage, U256,
};

/// Garbage and malformed SSZ on every protocol the node speaks (three req/resp protocols,
/// gossipsub, identify push, ping), plus garbage on raw TCP instead of a libp2p handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bytes_on_every_protocol_are_penalised_then_banned() {
    let (_serial, rss, mut honest) = start_scenario(3, |_, _| {}).await;
    let port = tcp_port(honest.node(1)).await;

    // Below libp2p: garbage instead of multistream-select; the node closes each socket.
    let mut tcp_closed = 0;
    for i in 0..20u8 {
        let junk: Vec<u8> = (0..512u16).map(|b| (b as u8) ^ i).collect();
        tcp_closed += usize::from(raw_tcp::garbage(port, &junk).await);
    }
    assert_eq!(tcp_closed, 20, "every garbage TCP connection is closed");

    let (victim, x, banned) = raw_attacker(&honest).await;
    let streams = Counter::default();
    let attack = {
        let (x, streams) = (x.clone(), streams.clone());
        tokio::spawn(async move {
            let scripts: Vec<(Proto, Vec<u8>)> = vec![
                (Proto::GetHead, [varint(5), vec![1, 2, 3, 4, 5]].concat()),
                (Proto::GetCommitments, [varint(3), vec![9, 9, 9]].concat()),
                (Proto::GetCommitments, vec![0xff; 11]), // overlong varint
                (Proto::GetRawTxList, [varint(7), vec![0xab; 7]].concat()),
                (Proto::Meshsub, [varint(64), vec![0xee; 64]].concat()),
                (Proto::IdentifyPush, [varint(32), vec![0x5a; 32]].concat()),
                (Proto::Ping, vec![0x01; 5]),
            ];
            while x.is_connected(&victim) {
                // One stream per script at once; a protocol that keeps its stream open does
                // not hold up the others (each outcome waited for at most 2 s).
                let outcomes: Vec<_> = scripts
                    .iter()
                    .map(|(proto, bytes)| x.send(victim, *proto, vec![Step::Write(bytes.clone())]))
                    .collect();
                for outcome in outcomes {
                    let _ = tokio::time::timeout(Duration::from_secs(2), outcome).await;
                    streams.add(1);
                }
            }
        })
    };
    let (time_to_ban, latencies) =
        traffic_until_banned(&mut honest, banned, &x, victim, attack).await;
    assert_attacker_gone(&honest, 1, x.peer_id).await;
    honest.publish().await;
    let volume = streams.volume("malformed streams over 6 protocols + 20 garbage TCP connections");
    rss.close_scenario(honest, "malformed", time_to_ban, &latencies, volume)
        .await;
}

/// Varint length prefixes of 4 GiB, u64::MAX and cap + 1 on every req/resp protocol and on
/// gossipsub: refused before any body byte is read (no allocation), penalised, banned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_prefix_is_refused_without_allocating_then_banned() {
    let limits = chain().limits;
    let (_serial, rss, mut honest) = start_scenario(3, |_, _| {}).await;
    let (victim, x, banned) = raw_attacker(&honest).await;
    let streams = Counter::default();
    let attack = {
        let (x, streams) = (x.clone(), streams.clone());
        tokio::spawn(async move {
            let mut prefixes: Vec<(Proto, u64)> = Vec::new();
            for (proto, kind) in [
                (Proto::GetHead, ReqRespKind::GetHead),
                (Proto::GetCommitments, ReqRespKind::GetCommitmentsByNumber),
                (Proto::GetRawTxList, ReqRespKind::GetRawTxList),
            ] {
                prefixes.push((proto, 4 << 30));
                prefixes.push((proto, u64::MAX));
                prefixes.push((proto, limits.max_request_len(kind) as u64 + 1));
            }
            prefixes.push((Proto::Meshsub, 4 << 30));
            while x.is_connected(&victim) {
                for (proto, len) in &prefixes {
                    // The prefix and a few body bytes, then the stream stays open: a node that
                    // trusted the prefix would allocate and wait for 4 GiB.
                    let script = vec![
                        Step::Write([varint(*len), vec![0u8; 16]].concat()),
                        Step::Silence(Duration::from_millis(50)),
                    ];
                    let _ = x.exchange(victim, *proto, script).await;
                    streams.add(1);
                }
            }
        })
    };
    let (time_to_ban, latencies) =
        traffic_until_banned(&mut honest, banned, &x, victim, attack).await;
    let volume = streams.volume("streams announcing 4 GiB / u64::MAX / cap+1 bodies");
    rss.close_scenario(honest, "oversize_prefix", time_to_ban, &latencies, volume)
        .await;
}

/// `get_head` requests far above the rate limit (8 per 10 s) from one peer id: the surplus is
/// refused and penalised, the flooder banned, honest peers still get answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_from_one_peer_id_is_rate_limited_then_banned() {
    let (_serial, rss, mut honest) = start_scenario(3, |_, _| {}).await;
    let (victim, x, banned) = raw_attacker(&honest).await;
    let counts = [Counter::default(), Counter::default()];
    let attack = {
        let (x, counts) = (x.clone(), counts.clone());
        tokio::spawn(async move {
            while x.is_connected(&victim) {
                // 2 in flight at once (the concurrency limit), as fast as answered.
                let a = x.send(victim, Proto::GetHead, vec![Step::Write(varint(0))]);
                let b = x.send(victim, Proto::GetHead, vec![Step::Write(varint(0))]);
                for r in [a, b] {
                    let answered = matches!(r.await, Ok(Ok(ref body)) if !body.is_empty());
                    counts[usize::from(!answered)].add(1);
                }
            }
        })
    };
    let (time_to_ban, latencies) =
        traffic_until_banned(&mut honest, banned, &x, victim, attack).await;
    let answered = counts[0].get();
    let refused = counts[1].get();
    assert!(refused > 0, "requests above the limit were refused");
    assert!(
        answered <= 8 + 2 * time_to_ban.as_secs() + 2,
        "{answered} answered: more than the 8 per 10 s limit allows"
    );
    let volume = || {
        format!(
            "{} get_head requests ({answered} answered, {refused} refused)",
            answered + refused
        )
    };
    rss.close_scenario(honest, "flood_one_id", time_to_ban, &latencies, volume)
        .await;
}

/// A flood of full-page requests from 16 peer ids at once (each its own swarm), each with 3
/// in flight — one above the concurrency limit (2 per protocol), so every attacker is refused
/// whatever its speed on shared cores, and above the request and byte limits as fast as it
/// gets answers: every one is limited on its own, penalised and banned; the honest peer's
/// requests are still answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_from_many_peer_ids_bans_each_one() {
    const IDS: usize = 16;
    let (_serial, rss, mut honest) = start_scenario(3, |_, _| {}).await;
    let victim = honest.node(1).sdk().local_peer_id();
    let mut attackers = Vec::new();
    let mut bans = Vec::new();
    let sent = Counter::default();
    for _ in 0..IDS {
        let x = Arc::new(RawPeer::spawn(chain().chain_id));
        x.connect(honest.node(1)).await;
        bans.push(ban_watch(honest.node(1).sdk().subscribe(), x.peer_id));
        let (xc, sent) = (x.clone(), sent.clone());
        attackers.push((
            x,
            tokio::spawn(async move {
                let request = [
                    varint(36),
                    GetCommitmentsByNumberRequest {
                        start_block_number: U256::from(1u64),
                        max_count: 256,
                    }
                    .to_ssz(),
                ]
                .concat();
                while xc.is_connected(&victim) {
                    let in_flight: Vec<_> = (0..3)
                        .map(|_| {
                            let script = vec![Step::Write(request.clone())];
                            xc.send(victim, Proto::GetCommitments, script)
                        })
                        .collect();
                    for r in in_flight {
                        let _ = tokio::time::timeout(Duration::from_secs(30), r).await;
                        sent.add(1);
                    }
                }
            }),
        ));
    }
    let all_banned = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        for b in bans {
            slowest = slowest.max(b.await.expect("join"));
        }
        slowest
    });
    let (time_to_ban, latencies) = honest_traffic_until(&mut honest, all_banned).await;
    for (x, task) in &attackers {
        x.wait_disconnected(victim).await;
        task.abort();
    }
    let what = format!("get_commitments_by_number (256 each) from {IDS} peer ids");
    let volume = sent.volume(&what);
    rss.close_scenario(honest, "flood_many_ids", time_to_ban, &latencies, volume)
        .await;
}

/// The harness's memory check is real: a zeroed 1 GiB allocation that is never touched does
/// not show in RSS (its pages are not resident) but does show in the allocation peak every
/// attack test asserts under the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocation_check_sees_what_rss_cannot() {
    let (_serial, rss) = serial_rss().await;
    let before = rss_kib();
    let untouched = vec![0u8; 1 << 30];
    let allocated = rss.peak_allocated_mib();
    let resident_growth = rss_kib().saturating_sub(before) / 1024;
    drop(std::hint::black_box(untouched));
    assert!(allocated >= 1024, "allocation peak {allocated} MiB");
    assert!(
        resident_growth < 512,
        "RSS grew {resident_growth} MiB: the pages were touched after all"
    );
}

/// What a churning peer id speaks: identify and gossipsub, subscribed to both topics — the
/// per-peer state a real peer makes a node hold (connection, identify, gossipsub
/// subscriptions and scores, rate-limit buckets, the catch-up head request it is sent).
#[derive(libp2p::swarm::NetworkBehaviour)]
struct Churner {
    identify: libp2p::identify::Behaviour,
    gossipsub: libp2p::gossipsub::Behaviour,
}

/// One short-lived peer id: dials `victim`, subscribes to both topics, and stays connected
/// until the returned task is aborted. The receiver gets `true` once the victim's identify
/// answer came back (the connection is up and the victim has seen us), `false` if the
/// connection failed or was closed before that (refused by the victim).
fn churner(
    victim: libp2p::Multiaddr,
    chain: &ChainSpec,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Receiver<bool>,
) {
    let key = libp2p::identity::Keypair::generate_ed25519();
    let mut gossipsub = libp2p::gossipsub::Behaviour::new(
        libp2p::gossipsub::MessageAuthenticity::Signed(key.clone()),
        libp2p::gossipsub::Config::default(),
    )
    .expect("gossipsub");
    for kind in [
        preconfirmation_types::GossipTopicKind::Commitments,
        preconfirmation_types::GossipTopicKind::RawTxLists,
    ] {
        gossipsub
            .subscribe(&libp2p::gossipsub::IdentTopic::new(chain.topic(kind)))
            .expect("subscribe");
    }
    let identify = libp2p::identify::Behaviour::new(libp2p::identify::Config::new(
        preconfirmation_net::IDENTIFY_PROTOCOL.into(),
        key.public(),
    ));
    let mut swarm = tcp_swarm(
        key,
        Churner {
            identify,
            gossipsub,
        },
    );
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        use libp2p::swarm::SwarmEvent;
        let mut ready = Some(ready_tx);
        if swarm.dial(victim).is_err() {
            return;
        }
        loop {
            let outcome = match futures::StreamExt::select_next_some(&mut swarm).await {
                SwarmEvent::Behaviour(ChurnerEvent::Identify(
                    libp2p::identify::Event::Received { .. },
                )) => true,
                SwarmEvent::OutgoingConnectionError { .. }
                | SwarmEvent::ConnectionClosed { .. } => false,
                _ => continue,
            };
            if let Some(tx) = ready.take() {
                let _ = tx.send(outcome);
            }
        }
    });
    (task, ready_rx)
}

/// Waits (bounded) for a churner's outcome: `true` identified, `false` refused.
async fn churner_outcome(ready: tokio::sync::oneshot::Receiver<bool>) -> bool {
    tokio::time::timeout(common::WAIT, ready)
        .await
        .expect("the churner's connection settles in time")
        .expect("churner alive")
}

/// Starts `count` churners against `victim` at once (keep `count` under the victim's
/// `max_pending_incoming`, 16) and waits until the victim has identified each; returns their
/// tasks (abort them to disconnect).
async fn identified_churners(
    victim: &libp2p::Multiaddr,
    count: usize,
) -> Vec<tokio::task::JoinHandle<()>> {
    let (tasks, readies): (Vec<_>, Vec<_>) = (0..count)
        .map(|_| churner(victim.clone(), &chain()))
        .unzip();
    for ready in readies {
        assert!(churner_outcome(ready).await, "a churner is identified");
    }
    tasks
}

/// Metric series the node exports: the name and labels of each sample line of `/metrics`
/// (comments and blanks not counted). A label per peer id would add one per churned id.
async fn metric_series(node: &preconf_node_core::Node) -> std::collections::BTreeSet<String> {
    let addr = node.http_addr().expect("HTTP endpoint on");
    let metrics = common::http_get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    metrics
        .body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _value)| series.to_owned()))
        .collect()
}

/// Waits (bounded) until `victim`'s per-peer state and connected count satisfy `done`.
async fn wait_sizes(
    victim: &preconfirmation_net::P2pService,
    within: Duration,
    done: impl Fn(&preconfirmation_net::PeerStateSizes) -> bool,
) -> Result<preconfirmation_net::PeerStateSizes, preconfirmation_net::PeerStateSizes> {
    let deadline = Instant::now() + within;
    loop {
        let sizes = victim.peer_state_sizes().await.expect("sizes");
        if done(&sizes) {
            return Ok(sizes);
        }
        if Instant::now() >= deadline {
            return Err(sizes);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether every per-peer map holds no more than the connected peers can own: one app score,
/// byte budget and pacing entry each, a request bucket per protocol and a gossip bucket per
/// topic each, nothing in flight, no refusal window, ban timer or ban.
fn only_connected_peers_state(s: &preconfirmation_net::PeerStateSizes) -> bool {
    let n = s.connected;
    let m = &s.peer_manager_maps;
    m.app_scores <= n
        && m.byte_buckets <= n
        && m.request_buckets <= n * ReqRespKind::ALL.len()
        && m.gossip_buckets <= n * 2
        && m.departed_rate_limited == 0
        && m.inflight == 0
        && m.refusal_windows == 0
        && m.below_ban_threshold == 0
        && m.banned == 0
        && m.connected <= n * 3
        && s.pacer <= n
        && s.outbound_requests == 0
        && s.connection_limits.peers == n
}

/// Peer-id churn: `ids` fresh peer ids (identify + gossipsub on both topics) connect to the
/// victim in batches, are identified and sent the victim's catch-up `get_head`, and leave.
/// Every per-peer map of the victim's network layer (peer manager, pacer, connection limits,
/// outbound requests, connected set) and the number of metric series it exports return to
/// their baseline; no metric carries a peer-id label. Honest blocks keep propagating
/// meanwhile. Not banned, by design: connecting and leaving is what honest peers do.
async fn peer_id_churn(ids: usize) {
    // Under `max_pending_incoming` (16) and the 35 inbound slots: a batch dials at once.
    const BATCH: usize = 12;
    let _serial = serial().await;
    // Gossipsub keeps a departed peer's score for `retain_score` (default 60 s): shortened
    // here, as the other windows are, so what is left afterwards is what would leak.
    let retain = Duration::from_secs(5);
    let mut honest = Honest::start(3, builder(), |i, c| {
        if i == 1 {
            c.sdk.network.scoring.retain_score = retain;
        }
    })
    .await;
    honest.publish().await;
    let victim = honest.node(1).sdk().network().clone();
    let victim_addr = common::p2p_addr(honest.node(1)).await;
    // Baseline: the victim at rest (no request in flight, two samples 200 ms apart agree).
    let mut baseline = victim.peer_state_sizes().await.expect("sizes");
    tokio::time::timeout(common::WAIT, async {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let now = victim.peer_state_sizes().await.expect("sizes");
            if now == baseline && now.outbound_requests == 0 {
                break;
            }
            baseline = now;
        }
    })
    .await
    .expect("the victim comes to rest");
    assert!(only_connected_peers_state(&baseline), "{baseline:?}");
    let run_batch = {
        let (victim, victim_addr) = (victim.clone(), victim_addr.clone());
        move |count: usize| {
            let (victim, victim_addr) = (victim.clone(), victim_addr.clone());
            async move {
                let tasks = identified_churners(&victim_addr, count).await;
                let up = wait_sizes(&victim, common::WAIT, |s| {
                    s.connected >= baseline.connected + count
                })
                .await
                .unwrap_or_else(|s| panic!("batch not connected: {s:?}"));
                for task in tasks {
                    task.abort();
                }
                wait_sizes(&victim, common::WAIT, |s| s.connected == baseline.connected)
                    .await
                    .unwrap_or_else(|s| panic!("batch did not leave: {s:?}"));
                up
            }
        }
    };
    // One batch first, so every series a connection and a disconnection create exists.
    run_batch(BATCH).await;
    let series_before = metric_series(honest.node(1)).await;
    let allocated_before = allocated_bytes();
    let rss = RssSampler::start();
    let churn = tokio::spawn(async move {
        let mut peak = baseline;
        let mut done = BATCH;
        while done < ids {
            let count = BATCH.min(ids - done);
            let up = run_batch(count).await;
            peak.connected = peak.connected.max(up.connected);
            peak.peer_manager = peak.peer_manager.max(up.peer_manager);
            peak.pacer = peak.pacer.max(up.pacer);
            peak.connection_limits.peers =
                peak.connection_limits.peers.max(up.connection_limits.peers);
            done += count;
        }
        peak
    });
    let started = Instant::now();
    let (peak, latencies) = honest_traffic_until(&mut honest, churn).await;
    let churn_secs = started.elapsed().as_secs_f64();
    // Everything grew with the peers …
    assert!(peak.connected >= baseline.connected + BATCH, "{peak:?}");
    assert!(
        peak.peer_manager >= baseline.peer_manager + BATCH,
        "{peak:?}"
    );
    // … and once the longest per-peer window (pacing, rate-limit refill) has passed, what
    // is left belongs to the peers still connected (the honest ones, whose own entries may
    // have grown with the honest traffic meanwhile): nothing of the churned ids.
    let after = wait_sizes(&victim, Duration::from_secs(90), |s| {
        s.connected == baseline.connected && only_connected_peers_state(s)
    })
    .await
    .unwrap_or_else(|s| panic!("per-peer state {s:?} holds more than its connected peers'"));
    let series_after = metric_series(honest.node(1)).await;
    // New series appear as honest traffic exercises new (protocol, outcome) label sets; a
    // label per peer id would add one or more per churned id, and carry the id.
    let new_series: Vec<_> = series_after.difference(&series_before).collect();
    assert!(
        new_series.len() < ids / 4,
        "metric series grew with {ids} peer ids: {new_series:?}"
    );
    assert!(
        !series_after
            .iter()
            .any(|s| s.contains("12D3KooW") || s.contains("16Uiu2")),
        "a metric is labelled by peer id: {new_series:?}"
    );
    // Reported, not asserted: what the process allocated more than before the churn. Honest
    // blocks published meanwhile fill caches up to their caps (redb's page cache, seen
    // message ids, metric summaries), so the figure grows with the honest traffic as well as
    // with anything a churned id left behind (10 000 ids with gossipsub's default hour of
    // retained scores: 17.2 MiB; with `retain_score`: 12.4 MiB, see RELIABILITY.md).
    let growth = allocated_bytes().saturating_sub(allocated_before);
    let allocated_growth_kib = growth >> 10;
    let volume = || {
        format!(
            "{ids} peer ids in {churn_secs:.0} s (batches of {BATCH}); victim per-peer state \
         back to {after:?}; metric series {} → {}; allocated \
         growth {allocated_growth_kib} KiB",
            series_before.len(),
            series_after.len()
        )
    };
    rss.close_scenario(honest, "peer_id_churn", None, &latencies, volume)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_id_churn_short() {
    peer_id_churn(240).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: 10 000 peer ids"]
async fn peer_id_churn_10k() {
    peer_id_churn(10_000).await;
}

/// Inbound slot exhaustion: peer ids fill every inbound slot of a victim that runs the default
/// slots (35 inbound, 15 outbound). More inbound connections are refused, yet the victim dials
/// a new honest node, which joins its mesh and receives honest blocks through it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_slot_exhaustion() {
    let _serial = serial().await;
    let mut honest = Honest::start(3, builder(), |_, _| {}).await;
    honest.publish().await;
    let victim = honest.node(1).sdk().network().clone();
    let victim_addr = common::p2p_addr(honest.node(1)).await;
    let max_inbound = preconfirmation_net::NetworkConfig::default().max_inbound_peers as usize;
    let inbound_now = victim
        .peers()
        .await
        .expect("peers")
        .iter()
        .filter(|p| p.direction == preconfirmation_net::Direction::Inbound)
        .count();
    let rss = RssSampler::start();
    // Fill the free inbound slots …
    // (in batches under `max_pending_incoming`, 16: more pending handshakes are refused).
    let mut fillers = Vec::new();
    let mut free = max_inbound - inbound_now;
    while free > 0 {
        let batch = free.min(12);
        fillers.extend(identified_churners(&victim_addr, batch).await);
        free -= batch;
    }
    // … then as many more as the total peer limit would still admit are refused, one at a
    // time: inbound peers cannot take the slots the victim keeps for its own dials.
    let max_peers = preconfirmation_net::NetworkConfig::default().max_peers as usize;
    let mut refused = 0;
    for _ in max_inbound..max_peers {
        let (task, ready) = churner(victim_addr.clone(), &chain());
        fillers.push(task);
        assert!(
            !churner_outcome(ready).await,
            "a connection beyond the inbound slots was accepted"
        );
        refused += 1;
    }
    let full = wait_sizes(&victim, common::WAIT, |s| s.connected > max_inbound)
        .await
        .unwrap_or_else(|s| panic!("inbound slots not filled: {s:?}"));
    // The victim dials a new honest node, which has no other peer.
    let newcomer_cfg = attack_config(&honest.dir.path().join("newcomer"), &honest.builder, vec![]);
    let newcomer = common::start(newcomer_cfg).await;
    let newcomer_id = newcomer.sdk().local_peer_id();
    honest
        .node(1)
        .sdk()
        .dial(common::p2p_addr(&newcomer).await)
        .await
        .expect("dial out");
    newcomer
        .sdk()
        .wait_for_gossip_peers(1, common::WAIT)
        .await
        .expect("the newcomer joins the victim's mesh");
    let peers = victim.peers().await.expect("peers");
    let newcomer_peer = peers
        .iter()
        .find(|p| p.peer_id == newcomer_id)
        .expect("the victim is connected to the newcomer");
    assert_eq!(
        newcomer_peer.direction,
        preconfirmation_net::Direction::Outbound,
        "the victim dialled out"
    );
    let inbound = peers
        .iter()
        .filter(|p| p.direction == preconfirmation_net::Direction::Inbound)
        .count();
    assert_eq!(
        inbound, max_inbound,
        "every inbound slot is taken, none more"
    );
    // Honest blocks reach the newcomer through the victim, with every inbound slot taken.
    let mut latencies = Vec::new();
    for _ in 0..5 {
        latencies.push(honest.publish().await);
        let head = honest.node(0).sdk().status().head_block_number;
        wait_head(&newcomer, head).await;
    }
    for task in fillers {
        task.abort();
    }
    assert_serves_head(&honest, 1, 2).await;
    let lost = honest.assert_nothing_lost().await;
    let volume = format!(
        "{} inbound peer ids fill the default {max_inbound} slots, {refused} more refused; victim \
         connected to {} peers; it dials out to a new node that gets 5 blocks through it",
        max_inbound - inbound_now,
        full.connected
    );
    rss.report("inbound_slot_exhaustion", &volume, None, &latencies, lost);
    newcomer.shutdown().await;
    honest.shutdown().await;
}
