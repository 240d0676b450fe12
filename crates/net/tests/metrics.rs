//! Every metric the crate documents in `preconfirmation_net::metrics` is recorded where it
//! happens: real nodes over TCP on 127.0.0.1 exchange gossip and a request, penalise, ban,
//! overflow an event channel and ping (answered, refused, unanswered), and the Prometheus
//! rendering shows each `preconf_net_*` name.
//! Its own test binary: a process has one global recorder.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use preconfirmation_net::{metrics as m, GossipVerdict, NetworkConfig, PeerId};
use preconfirmation_types::{GossipTopicKind, WireMessage};
use tokio::time::timeout;

mod common;
use common::*;

/// Every name in `preconfirmation_net::metrics`.
const NAMES: [&str; 15] = [
    m::PEERS_CONNECTED,
    m::GOSSIP_BYTES_IN,
    m::GOSSIP_BYTES_OUT,
    m::GOSSIP_MESSAGES_IN,
    m::REQRESP,
    m::RESPONSE_BYTES_OUT,
    m::REFUSALS_FORGIVEN,
    m::REJECTIONS,
    m::BANS,
    m::PEER_SCORE,
    m::EVENTS_DROPPED,
    m::PING_RTT,
    m::PING_UNSUPPORTED,
    m::PING_FAILURES,
    m::GOSSIP_MESH_PEERS,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documented_metrics_are_recorded() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this binary");
    m::describe();

    let (a, mut a_events) = start(test_config()).await;
    let (b, b_events) = start(test_config()).await;
    connect(&a, &mut a_events, &b).await;
    let _a_rx = spawn_sdk(a.clone(), a_events, GossipVerdict::Accept);
    let mut b_rx = spawn_sdk(b.clone(), b_events, GossipVerdict::Accept);
    wait_gossip_peers(&a, &[b.local_peer_id()]).await;
    wait_gossip_peers(&b, &[a.local_peer_id()]).await;

    // Gossip A → B.
    let signed = commitment(7).to_ssz();
    a.publish(GossipTopicKind::Commitments, signed.clone())
        .await
        .expect("publish");
    let got = timeout(WAIT, b_rx.recv())
        .await
        .expect("gossip in time")
        .expect("open");
    assert_eq!(got, (GossipTopicKind::Commitments, signed.clone()));

    // A request B → A.
    assert_eq!(
        b.request_head(a.local_peer_id()).await.expect("head"),
        head()
    );

    // Pages B → E, a server allowing one page per hour: the first is served (2 commitments,
    // 4 + 2 · 382 bytes), the second refused and, being B's first refusal, forgiven.
    let (e, mut e_events) = start({
        let mut c = test_config();
        c.rate_limit.get_commitments_by_number =
            preconfirmation_net::RateLimit::new(1, Duration::from_secs(3600));
        c
    })
    .await;
    connect(&e, &mut e_events, &b).await;
    wait_peer(&b, e.local_peer_id(), |_| true)
        .await
        .expect("B sees E");
    let _e_rx = spawn_sdk(e.clone(), e_events, GossipVerdict::Accept);
    let page = preconfirmation_types::GetCommitmentsByNumberRequest {
        max_count: 2,
        ..Default::default()
    };
    let served = b
        .request_commitments(e.local_peer_id(), page)
        .await
        .expect("first page");
    assert_eq!(served.commitments.len(), 2);
    assert!(b
        .request_commitments(e.local_peer_id(), page)
        .await
        .is_err());

    // A penalty and a ban.
    b.penalize_peer(a.local_peer_id(), "metrics_test")
        .expect("penalize");
    b.ban(PeerId::random(), Duration::from_secs(60))
        .expect("ban");

    // A node whose SDK never reads its events (capacity 1): the first `PeerBanned` fills the
    // channel, the second is dropped.
    let (c, _c_events_unread) = start(NetworkConfig {
        event_channel_capacity: 1,
        ..test_config()
    })
    .await;
    for _ in 0..2 {
        c.ban(PeerId::random(), Duration::from_secs(60))
            .expect("ban");
    }

    // Pings: A and B time theirs (above); a peer without ping refuses A's; a peer that takes
    // D's ping stream and never answers makes D's ping time out.
    let _no_ping = NoPingPeer::connect(&a).await;
    let (d, _d_events) = start(NetworkConfig {
        ping_timeout: Duration::from_millis(300),
        ..test_config()
    })
    .await;
    let _mute = NoPingPeer::connect_mute(&d).await;

    // Every documented name; labels, and exact counts where only this test's single exchange
    // can have produced them (whole lines; counters only grow, so an overshoot never matches).
    let exact_lines = [
        r#"preconf_net_reqresp_requests_total{protocol="get_head",direction="inbound",outcome="served"} 1"#
            .to_owned(),
        r#"preconf_net_reqresp_requests_total{protocol="get_head",direction="outbound",outcome="ok"} 1"#
            .to_owned(),
        r#"preconf_net_rejections_total{reason="metrics_test"} 1"#.to_owned(),
        r#"preconf_net_reqresp_response_bytes_out_total{protocol="get_commitments_by_number"} 768"#
            .to_owned(),
        r#"preconf_net_reqresp_requests_total{protocol="get_commitments_by_number",direction="inbound",outcome="rate_limited"} 1"#
            .to_owned(),
        r#"preconf_net_reqresp_refusals_forgiven_total{protocol="get_commitments_by_number",reason="rate_limited"} 1"#
            .to_owned(),
        r#"preconf_net_events_dropped_total{kind="peer_banned"} 1"#.to_owned(),
        "preconf_net_bans_total 3".to_owned(),
        "preconf_net_ping_unsupported_total 1".to_owned(),
        format!(
            r#"preconf_net_gossip_bytes_out_total{{topic="commitments"}} {}"#,
            signed.len()
        ),
    ];
    let labelled = [
        r#"preconf_net_gossip_messages_in_total{topic="commitments"} "#,
        r#"preconf_net_gossip_bytes_in_total{topic="commitments"} "#,
        "preconf_net_peers_connected ",
        r#"preconf_net_ping_failures_total{reason="timeout"} "#,
        r#"preconf_net_gossip_mesh_peers{topic="commitments"} "#,
        "preconf_net_ping_rtt_seconds_count ",
    ];
    let expected: Vec<String> = NAMES
        .iter()
        .chain(&labelled)
        .map(|s| s.to_string())
        .chain(exact_lines.iter().map(|l| format!("{l}\n")))
        .collect();
    // The drivers record asynchronously (the peer score on their tick): wait until the
    // rendering shows everything.
    let missing = |text: &str| -> Vec<String> {
        expected
            .iter()
            .filter(|e| !text.contains(e.as_str()))
            .cloned()
            .collect()
    };
    let done = timeout(WAIT, async {
        let mut poll = tokio::time::interval(Duration::from_millis(50));
        loop {
            poll.tick().await;
            if missing(&handle.render()).is_empty() {
                return;
            }
        }
    })
    .await;
    if done.is_err() {
        let text = handle.render();
        panic!("metrics missing: {:?}\n{text}", missing(&text));
    }

    // Each request is counted once, whatever its outcome: B asked A for one head and E for two
    // pages (one served, one refused).
    let text = handle.render();
    let total = |prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for (protocol, direction, count) in [
        ("get_head", "inbound", 1.0),
        ("get_head", "outbound", 1.0),
        ("get_commitments_by_number", "inbound", 2.0),
    ] {
        let prefix = format!(
            r#"{}{{protocol="{protocol}",direction="{direction}","#,
            m::REQRESP
        );
        assert_eq!(total(&prefix), count, "{prefix}\n{text}");
    }
    // Every series the crate exported has its `# HELP` and `# TYPE` (`describe`).
    let undescribed: Vec<&str> = NAMES
        .into_iter()
        .filter(|name| {
            !(text.contains(&format!("# HELP {name} "))
                && text.contains(&format!("# TYPE {name} ")))
        })
        .collect();
    assert!(
        undescribed.is_empty(),
        "no HELP or TYPE for {undescribed:?}:\n{text}"
    );

    for s in [a, b, c, d, e] {
        s.shutdown().await.expect("shutdown");
    }
}
