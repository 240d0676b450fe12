//! Gossip size caps (§2, §3, §7) over real TCP on 127.0.0.1: an attacker speaking bare
//! gossipsub with a 10 MiB frame cap sends messages over the victim's per-topic caps; gossipsub
//! refuses them as invalid deliveries (the sender loses score) before the driver counts them,
//! and they never reach the SDK.
//! Its own test binary: it reads the `preconf_net_gossip_*` counters from the process's one global
//! recorder.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::identity::Keypair;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use preconfirmation_net::config::GOSSIP_FRAMING_ALLOWANCE;
use preconfirmation_net::gossip::mesh_config_builder;
use preconfirmation_net::{metrics as m, GossipVerdict};
use preconfirmation_types::{
    GossipTopicKind, RawTxListGossip, WireMessage, MAX_GOSSIP_SIZE_BYTES, SIGNED_COMMITMENT_SSZ_LEN,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;

mod common;
use common::*;

type PublishReply = oneshot::Sender<Result<(), String>>;

/// A bare gossipsub node subscribed to the victim's topics, frame cap `MAX_GOSSIP_SIZE_BYTES`:
/// returns its peer id and a channel of publish commands.
async fn attacker(
    chain_id: u64,
    target: libp2p::Multiaddr,
) -> (
    libp2p::PeerId,
    mpsc::Sender<(GossipTopicKind, Vec<u8>, PublishReply)>,
) {
    let keypair = Keypair::generate_secp256k1();
    let peer = keypair.public().to_peer_id();
    let config = test_config();
    let gs_config = mesh_config_builder(&config.gossip, MAX_GOSSIP_SIZE_BYTES)
        .build()
        .expect("gossipsub config");
    let mut behaviour: gossipsub::Behaviour =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), gs_config)
            .expect("gossipsub");
    let topic = move |k: GossipTopicKind| IdentTopic::new(k.topic(chain_id));
    for k in GossipTopicKind::ALL {
        behaviour.subscribe(&topic(k)).expect("subscribe");
    }
    let mut swarm = bare_swarm_of(keypair, Duration::from_secs(60), |_| behaviour);
    swarm.dial(target).expect("dial");
    let (tx, mut rx) = mpsc::channel::<(GossipTopicKind, Vec<u8>, PublishReply)>(16);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some((kind, data, reply)) => {
                        let res = swarm
                            .behaviour_mut()
                            .publish(topic(kind), data)
                            .map(|_| ())
                            .map_err(|e| e.to_string());
                        let _ = reply.send(res);
                    }
                    None => return,
                },
                _ = swarm.select_next_some() => {}
            }
        }
    });
    (peer, tx)
}

async fn publish(
    tx: &mpsc::Sender<(GossipTopicKind, Vec<u8>, PublishReply)>,
    kind: GossipTopicKind,
    data: Vec<u8>,
) -> Result<(), String> {
    let (reply, rx) = oneshot::channel();
    tx.send((kind, data, reply))
        .await
        .map_err(|e| e.to_string())?;
    rx.await.map_err(|e| e.to_string())?
}

/// Publishes `data` until gossipsub takes it (the victim's subscription may still be on its
/// way); bounded.
async fn publish_until_sent(
    tx: &mpsc::Sender<(GossipTopicKind, Vec<u8>, PublishReply)>,
    kind: GossipTopicKind,
    data: Vec<u8>,
) {
    timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            if publish(tx, kind, data.clone()).await.is_ok() {
                return;
            }
        }
    })
    .await
    .expect("the attacker's message went out");
}

/// Publishes fresh valid messages on `kind` (`make(n)`) until the victim's SDK receives one;
/// bounded. Returns what the SDK got in the meantime.
async fn until_delivered(
    tx: &mpsc::Sender<(GossipTopicKind, Vec<u8>, PublishReply)>,
    sdk: &mut mpsc::Receiver<(GossipTopicKind, Vec<u8>)>,
    kind: GossipTopicKind,
    first: u64,
    make: impl Fn(u64) -> Vec<u8>,
) -> Vec<(GossipTopicKind, Vec<u8>)> {
    let mut got = Vec::new();
    timeout(WAIT, async {
        for n in first.. {
            let _ = publish(tx, kind, make(n)).await;
            if let Ok(Some(msg)) = timeout(Duration::from_millis(200), sdk.recv()).await {
                let done = msg.0 == kind;
                got.push(msg);
                if done {
                    return;
                }
            }
        }
    })
    .await
    .expect("a valid message is delivered after the over-cap one");
    got
}

/// The value of counter `name{topic="<label>"}` in a Prometheus rendering (0 if absent).
fn counter(handle: &PrometheusHandle, name: &str, kind: GossipTopicKind) -> u64 {
    let prefix = format!("{name}{{topic=\"{}\"}} ", kind.label());
    handle
        .render()
        .lines()
        .find_map(|l| l.strip_prefix(&prefix).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_cap_gossip_is_refused_before_the_sdk() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this binary");
    // A chain whose tx lists are capped at 64 KiB: the raw-txlists topic then has its own cap
    // (64 KiB + 36 + framing), far under the frame cap, like the commitments topic (382 +
    // framing). The frame cap itself is pinned by the unit test `frame_caps_come_from_the_chain_caps`.
    let mut config = test_config();
    config.limits.max_txlist_bytes = 64 * 1024;
    let chain_id = config.chain_id;
    let txlist_topic_cap = config.limits.max_gossip_len(GossipTopicKind::RawTxLists);
    let (victim, victim_events) = start(config).await;
    let mut sdk = spawn_sdk(victim.clone(), victim_events, GossipVerdict::Accept);
    let (attacker_id, tx) = attacker(chain_id, addr(&victim).await).await;
    wait_gossip_peers(&victim, &[attacker_id]).await;

    // One message over each topic's cap, far under any frame cap: gossipsub drops each as an
    // invalid delivery on its topic (§7.1 weight −2 each, so −4 in all).
    let over_commitment_cap = vec![7u8; SIGNED_COMMITMENT_SSZ_LEN + GOSSIP_FRAMING_ALLOWANCE + 1];
    publish_until_sent(&tx, GossipTopicKind::Commitments, over_commitment_cap).await;
    let over_txlist_cap = vec![9u8; txlist_topic_cap + GOSSIP_FRAMING_ALLOWANCE + 1];
    publish_until_sent(&tx, GossipTopicKind::RawTxLists, over_txlist_cap).await;
    wait_peer(&victim, attacker_id, |p| p.score < -3.0)
        .await
        .expect("both over-cap messages are penalised as invalid deliveries");

    // Valid messages sent after them still arrive (gossip is ordered per stream, so anything
    // refused above was handled first): the sync point of the checks below.
    let txlist = |n: u64| {
        RawTxListGossip::new(n.to_le_bytes().to_vec())
            .expect("txlist")
            .to_ssz()
    };
    let txlist_len = txlist(0).len() as u64;
    let mut got = until_delivered(&tx, &mut sdk, GossipTopicKind::RawTxLists, 0, txlist).await;
    got.extend(
        until_delivered(&tx, &mut sdk, GossipTopicKind::Commitments, 0, |n| {
            commitment(n).to_ssz()
        })
        .await,
    );
    // Nothing over a cap reached the SDK …
    for (kind, data) in &got {
        let cap = match kind {
            GossipTopicKind::Commitments => SIGNED_COMMITMENT_SSZ_LEN,
            GossipTopicKind::RawTxLists => txlist_len as usize,
        };
        assert_eq!(data.len(), cap, "only valid messages are delivered");
    }
    // … nor even the driver: every payload it counted is a valid one.
    for (kind, len) in [
        (GossipTopicKind::RawTxLists, txlist_len),
        (
            GossipTopicKind::Commitments,
            SIGNED_COMMITMENT_SSZ_LEN as u64,
        ),
    ] {
        let messages = counter(&handle, m::GOSSIP_MESSAGES_IN, kind);
        let bytes = counter(&handle, m::GOSSIP_BYTES_IN, kind);
        assert!(messages >= 1, "{kind:?}: the valid messages were counted");
        assert_eq!(
            bytes,
            messages * len,
            "{kind:?}: an over-cap payload reached the driver"
        );
    }
    victim.shutdown().await.expect("shutdown");
}
