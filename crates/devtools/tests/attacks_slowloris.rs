//! Slowloris against a real in-process node on 127.0.0.1 (harness:
//! `preconf_devtools::testing::adversary`): one peer id keeps req/resp streams open and silent, or
//! trickles a valid request one byte per second, on every req/resp protocol; a few bare TCP sockets
//! that never start a handshake sit alongside. Asserts that the victim never panics (keeps
//! answering), stays under the RSS cap, keeps serving honest peers (honest commitments published
//! during the attack reach every honest node), penalises the attacker (`slow_request`: every stream
//! still incomplete after the read timeout) and bans it within the documented bound, and loses no
//! acknowledged commitment. Prints a `RELIABILITY` line (run with `--nocapture`) for
//! RELIABILITY.md.
//!
//! `cargo test -p preconf-devtools --test attacks_slowloris -- --nocapture`

mod adversary;
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use adversary::*;
use preconfirmation_types::{
    GetCommitmentsByNumberRequest, GetRawTxListRequest, WireMessage, B256, U256,
};

/// A valid request of `proto`, length prefix included (what the trickle sends, byte by byte).
fn valid_request(proto: Proto) -> Vec<u8> {
    let body = match proto {
        Proto::GetCommitments => GetCommitmentsByNumberRequest {
            start_block_number: U256::from(1u64),
            max_count: 16,
        }
        .to_ssz(),
        Proto::GetRawTxList => GetRawTxListRequest {
            raw_tx_list_hash: B256::repeat_byte(0x42),
        }
        .to_ssz(),
        _ => Vec::new(),
    };
    [varint(body.len() as u64), body].concat()
}

/// Silent streams and one-byte-per-second trickles from one peer id on the three req/resp
/// protocols, plus 8 silent TCP sockets: penalised (`slow_request`) and banned.
///
/// Documented bound: the victim's effective read timeout is `min(request_read_timeout 5 s,
/// request_timeout / 2)` = 1.5 s here (`request_timeout` 3 s in the attack config); each
/// stream still incomplete then costs −1 (at most −4 per 10 s), so the attacker crosses −5 in
/// its second penalty window (≈ 1.5 s + 10 s) and is banned `ban_sustain` (1 s here) later:
/// ≈ 13 s; the test allows 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_silent_and_trickling_streams_are_penalised_then_banned() {
    let rss = RssSampler::start();
    let mut honest = Honest::start(3, builder(), |_, _| {}).await;
    let victim = honest.node(1).sdk().local_peer_id();
    let port = tcp_port(honest.node(1)).await;
    // Below libp2p: half of `max_pending_incoming` (16) held by sockets that never speak.
    let sockets = raw_tcp::silent(port, 8).await;
    assert_eq!(sockets.len(), 8, "silent TCP sockets opened");

    let x = Arc::new(RawPeer::spawn(chain().chain_id));
    x.connect(honest.node(1)).await;
    let started = Instant::now();
    let banned = {
        let mut events = honest.node(1).sdk().subscribe();
        let attacker = x.peer_id;
        tokio::spawn(async move { wait_banned(&mut events, attacker, started).await })
    };
    // Time to the first penalty, observed on the victim's peer list.
    let penalised = {
        let sdk = honest.node(1).sdk().clone();
        let attacker = x.peer_id;
        tokio::spawn(async move {
            tokio::time::timeout(common::WAIT, async {
                // The victim may list the attacker a moment after the attacker sees the
                // connection; gone after being listed means banned before any penalty showed.
                let mut listed = false;
                loop {
                    let peers = sdk.peers().await.expect("peers");
                    match peers.iter().find(|p| p.peer_id == attacker) {
                        Some(p) if p.score < 0.0 => return Some((started.elapsed(), p.score)),
                        None if listed => return None,
                        Some(_) => listed = true,
                        None => {}
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await
            .expect("attacker penalised within the bound")
        })
    };
    let streams = Counter::default();
    let attack = {
        let (x, streams) = (x.clone(), streams.clone());
        tokio::spawn(async move {
            // Every 250 ms, per protocol: one stream that stays silent for 20 s and one that
            // trickles a valid request at one byte per second (get_head's request is a single
            // byte, so it only gets silent streams). Outcomes are not awaited: the raw side
            // learns of a closed stream only when it next writes.
            let mut pace = tokio::time::interval(Duration::from_millis(250));
            while x.is_connected(&victim) {
                pace.tick().await;
                for proto in Proto::REQRESP {
                    drop(x.send(victim, proto, vec![Step::Silence(Duration::from_secs(20))]));
                    streams.add(1);
                    if proto != Proto::GetHead {
                        let trickle = Step::Trickle {
                            bytes: valid_request(proto),
                            every: Duration::from_secs(1),
                        };
                        drop(x.send(victim, proto, vec![trickle]));
                        streams.add(1);
                    }
                }
            }
        })
    };

    let (time_to_ban, mut latencies) =
        traffic_until_banned(&mut honest, banned, &x, victim, attack).await;
    let (time_to_penalty, first_score) = penalised
        .await
        .expect("join")
        .expect("penalised before it was banned");
    assert!(first_score < 0.0);
    assert!(
        time_to_ban < Duration::from_secs(60),
        "banned within the documented bound"
    );
    assert_attacker_gone(&honest, 1, x.peer_id).await;
    assert_serves_head(&honest, 1, 2).await;
    latencies.push(honest.publish().await);
    let lost = honest.assert_nothing_lost().await;

    // The silent sockets: how many has the node closed by now (bounded wait each)?
    let closed = {
        use tokio::io::AsyncReadExt;
        let mut closed = 0;
        for mut s in sockets {
            let mut buf = [0u8; 64];
            let done = tokio::time::timeout(Duration::from_secs(1), async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            closed += usize::from(done.is_ok());
        }
        closed
    };
    let opened = streams.get();
    println!(
        "RELIABILITY slowloris detail: streams_opened={opened} time_to_first_penalty={:.1}s \
         first_score={first_score:.2} time_to_ban={:.1}s silent_tcp_sockets=8 \
         closed_by_node_after_{:.0}s={closed}",
        time_to_penalty.as_secs_f64(),
        time_to_ban.as_secs_f64(),
        started.elapsed().as_secs_f64(),
    );
    let volume = format!(
        "{opened} streams (silent + 1 byte/s trickles on 3 protocols) + 8 silent TCP sockets"
    );
    rss.report("slowloris", &volume, Some(time_to_ban), &latencies, lost);
    honest.shutdown().await;
}
