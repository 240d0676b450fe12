//! A peer that reads slower than we send loses the gossip its send queue cannot hold, and
//! nothing else: the messages are counted on its snapshot (`gossip_dropped`), and it is never
//! scored for it (§7.1 names no slow-peer penalty), so it is neither pruned nor banned.
//!
//! The slow reader is real: node A reaches node B through a TCP relay on 127.0.0.1 that stops
//! reading A's bytes on command, so A's socket and B's flow-control window fill up and
//! A's gossipsub queue for B ages out.

use std::net::SocketAddr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use preconfirmation_net::{ByteRateLimit, GossipTopicLimit, GossipVerdict, RateLimit};
use preconfirmation_types::GossipTopicKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{timeout, Instant};

mod common;
use common::*;

/// A TCP relay to `target` whose dialler → target direction stops on [`Self::stall`].
struct StallingRelay {
    addr: SocketAddr,
    stalled: watch::Sender<bool>,
}

impl StallingRelay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("relay binds");
        let addr = listener.local_addr().expect("relay address");
        let (stalled, stall) = watch::channel(false);
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let (from_dialler, to_dialler) = inbound.into_split();
                let (from_target, to_target) = outbound.into_split();
                tokio::spawn(pump(from_dialler, to_target, Some(stall.clone())));
                tokio::spawn(pump(from_target, to_dialler, None));
            }
        });
        Self { addr, stalled }
    }

    /// Stops (`true`) or resumes reading what the dialler sends.
    fn stall(&self, stalled: bool) {
        self.stalled.send_replace(stalled);
    }
}

/// Copies `from` to `to` until either closes, pausing while `stall` holds `true`.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut stall: Option<watch::Receiver<bool>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if let Some(stall) = stall.as_mut() {
            if stall.wait_for(|stalled| !*stalled).await.is_err() {
                return;
            }
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The TCP socket address of a `/ip4/…/tcp/…` multiaddr.
fn socket_addr(addr: &Multiaddr) -> SocketAddr {
    let mut ip = None;
    let mut port = None;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(v4) => ip = Some(v4.into()),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    SocketAddr::new(ip.expect("an IPv4 address"), port.expect("a TCP port"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_loses_gossip_but_is_never_scored_for_it() {
    // 64 KiB tx lists, far under the cap; B takes all A sends at once (its own gossip limits
    // are not what this test is about: they would refuse the burst after the stall).
    let txlist_len = 64 * 1024;
    assert!(
        txlist_len
            <= test_config()
                .limits
                .max_gossip_len(GossipTopicKind::RawTxLists)
    );
    let (a, mut a_events) = start(test_config()).await;
    let (b, b_events) = start({
        let mut c = test_config();
        c.gossip_rate_limit.raw_txlists = GossipTopicLimit {
            messages: RateLimit::new(u32::MAX, Duration::from_secs(1)),
            bytes: ByteRateLimit::new(u64::MAX, Duration::from_secs(1)),
        };
        c
    })
    .await;
    let b_id = b.local_peer_id();
    let relay = StallingRelay::start(socket_addr(&addr(&b).await)).await;
    let via_relay = Multiaddr::from(relay.addr.ip())
        .with(Protocol::Tcp(relay.addr.port()))
        .with(Protocol::P2p(b_id));
    a.dial(via_relay).await.expect("dial through the relay");
    wait_connected(&mut a_events, b_id)
        .await
        .expect("connected");
    let _a_rx = spawn_sdk(a.clone(), a_events, GossipVerdict::Accept);
    let mut b_rx = spawn_sdk(b.clone(), b_events, GossipVerdict::Accept);
    wait_gossip_peers(&a, &[b_id]).await;

    // Every tx list B receives, by sequence number (drained as they come, so none is lost to
    // the stand-in's bounded channel).
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some((topic, data)) = b_rx.recv().await {
            if topic == GossipTopicKind::RawTxLists {
                let mut sequence = [0u8; 8];
                sequence.copy_from_slice(&data[..8]);
                let _ = seen_tx.send(u64::from_le_bytes(sequence));
            }
        }
    });

    // B stops reading. A publishes tx lists for longer than gossipsub keeps a published
    // message queued (5 s), so what B's window and A's socket cannot hold ages out.
    relay.stall(true);
    let stalled_at = Instant::now();
    let mut sequence = 0u64;
    while stalled_at.elapsed() < Duration::from_secs(6) {
        sequence += 1;
        // A refusal (every queue full) is fine: the point is a queue that stays full.
        let _ = a
            .publish(GossipTopicKind::RawTxLists, txlist(sequence, txlist_len))
            .await;
        // Pacing of the publisher, not synchronisation.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let last_stalled = sequence;
    relay.stall(false);

    // A drops the aged messages for B at its next heartbeat and counts them; B's score,
    // which gossipsub updates in that same heartbeat, shows no penalty for it.
    let dropped = timeout(WAIT, async {
        loop {
            let peers = a.peers().await.expect("peers");
            let b_seen = peers
                .iter()
                .find(|p| p.peer_id == b_id)
                .expect("B stays connected");
            if b_seen.gossip_dropped > 0 {
                return b_seen.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("A dropped gossip for the stalled B");
    assert!(
        dropped.score >= 0.0,
        "B was scored {} for reading slowly ({} messages dropped)",
        dropped.score,
        dropped.gossip_dropped
    );

    // B is still A's peer on the topic: a tx list A publishes now reaches it.
    timeout(WAIT, async {
        loop {
            sequence += 1;
            let _ = a
                .publish(GossipTopicKind::RawTxLists, txlist(sequence, txlist_len))
                .await;
            let quiet = Instant::now() + Duration::from_millis(500);
            while let Ok(Some(got)) = tokio::time::timeout_at(quiet, seen.recv()).await {
                if got > last_stalled {
                    return;
                }
            }
        }
    })
    .await
    .expect("B receives a tx list A published after the stall");
}

/// A tx list of `len` bytes that starts with `sequence`.
fn txlist(sequence: u64, len: usize) -> Vec<u8> {
    let mut txlist = vec![0u8; len];
    txlist[..8].copy_from_slice(&sequence.to_le_bytes());
    txlist
}
