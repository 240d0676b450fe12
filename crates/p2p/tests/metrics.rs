//! Every metric of the plan's Task 13 is recorded where it happens: two real nodes exchange
//! gossip and requests, a bad peer sends an invalid commitment, and the Prometheus rendering
//! shows each name. (Its own test binary: it installs the global recorder.)

mod common;

use std::time::Duration;

use common::*;
use metrics_exporter_prometheus::PrometheusBuilder;
use p2p::testkit::ChainBuilder;
use preconfirmation_types::{GossipTopicKind, SignedCommitment, WireMessage};

const NAMES: [&str; 9] = [
    "preconf_gossip_received_total",
    "preconf_gossip_publish_total",
    "preconf_reqresp_answers_total",
    "preconf_reqresp_latency_seconds",
    "preconf_cache_hits_total",
    "preconf_validation_failures_total",
    "preconf_peer_score_gauge",
    "preconf_gossip_queue_seconds",
    "preconf_durable_write_seconds",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_metrics_are_recorded() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).expect("first recorder");
    p2p::metrics::describe();

    let mut builder = ChainBuilder::in_the_past(chain(), 2, 4, 50);
    let mut config = sdk_config();
    config.peer_score_interval = Duration::from_millis(200);
    let a = start_node(config.clone(), &builder).await;
    let b = start_node(config, &builder).await;
    let (x, _x_events) = raw_node().await;
    connect(&b.sdk, &a.sdk).await;
    connect_raw(&b.sdk, &x).await;
    a.sdk.wait_for_gossip_peers(1, WAIT).await.unwrap();
    b.sdk.wait_for_gossip_peers(2, WAIT).await.unwrap();

    let block = builder.next_block(Some(b"txs".to_vec()));
    let block_window_end = block.commitment.preconf().submission_window_end;
    a.sdk
        .publish(block.commitment, Some(b"txs".to_vec()))
        .await
        .unwrap();
    wait_head(&b.sdk, 1).await;
    b.sdk.request_head(a.sdk.local_peer_id()).await.unwrap();
    // An invalid commitment from X (no valid signature; a window end of now, so it is not
    // refused first for a window that ended): a validation failure on B.
    let mut junk = SignedCommitment::default();
    junk.commitment.preconf.submission_window_end = block_window_end;
    x.publish(GossipTopicKind::Commitments, junk.to_ssz())
        .await
        .unwrap();

    let rendered = tokio::time::timeout(WAIT, async {
        loop {
            let text = handle.render();
            if NAMES.iter().all(|n| text.contains(n))
                && text.contains("preconf_validation_failures_total{reason=")
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let text = handle.render();
        let missing: Vec<_> = NAMES.iter().filter(|n| !text.contains(*n)).collect();
        panic!("metrics missing: {missing:?}\n{text}")
    });
    assert!(
        rendered
            .contains(r#"preconf_gossip_received_total{topic="commitments",outcome="accept"} 1"#),
        "{rendered}"
    );
    assert!(
        rendered.contains(r#"preconf_gossip_publish_total{topic="commitments",outcome="ok"} 1"#),
        "{rendered}"
    );
    // Peer scores are three bounded series, never one per peer id.
    for stat in ["min", "median", "max"] {
        assert!(
            rendered.contains(&format!(r#"preconf_peer_score_gauge{{stat="{stat}"}}"#)),
            "{rendered}"
        );
    }
    let score_series = rendered
        .lines()
        .filter(|l| l.starts_with("preconf_peer_score_gauge{"))
        .count();
    assert_eq!(score_series, 3, "{rendered}");
    assert!(
        !rendered.contains("peer=\""),
        "no metric is labelled by peer id"
    );
    // B's `get_head` to A: its answer, on each side, is counted by what it held.
    for line in [
        r#"preconf_reqresp_answers_total{protocol="get_head",direction="outbound",result="ok"}"#,
        r#"preconf_reqresp_answers_total{protocol="get_head",direction="inbound",result="served"}"#,
    ] {
        assert!(rendered.contains(line), "{line}\n{rendered}");
    }
    // Every name has its `# HELP` and `# TYPE` (`p2p::metrics::describe`), the network
    // layer's too.
    for name in NAMES
        .iter()
        .chain(&[preconfirmation_net::metrics::PEERS_CONNECTED])
    {
        for header in ["HELP", "TYPE"] {
            assert!(
                rendered.contains(&format!("# {header} {name} ")),
                "no {header} for {name}:\n{rendered}"
            );
        }
    }
    a.sdk.shutdown().await.unwrap();
    b.sdk.shutdown().await.unwrap();
}
