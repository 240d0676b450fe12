//! `dashboards/preconf-node.json` only queries metrics the code exports, and latency
//! histograms are exported with buckets so its `histogram_quantile` queries work.

use std::collections::BTreeSet;

const DASHBOARD: &str = include_str!("../../../dashboards/preconf-node.json");
const METRIC_SOURCES: &[&str] = &[
    include_str!("../../p2p/src/metrics.rs"),
    include_str!("../../net/src/metrics.rs"),
];

/// Metric names declared as string constants (`pub const X: &str = "p2p_…";`).
fn declared() -> BTreeSet<String> {
    METRIC_SOURCES
        .iter()
        .flat_map(|src| src.lines())
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains("&str"))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .filter(|name| name.starts_with("p2p_"))
        .collect()
}

/// `p2p_*` names in every query of the dashboard, without Prometheus' histogram suffixes.
fn queried() -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let mut names = BTreeSet::new();
    for panel in json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find("p2p_") {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(name);
                names.insert(base.to_string());
                rest = &tail[end..];
            }
        }
    }
    names
}

#[test]
fn every_dashboard_metric_is_exported_by_the_code() {
    let declared = declared();
    assert!(declared.len() > 20, "{declared:?}");
    let queried = queried();
    assert!(queried.len() > 15, "{queried:?}");
    let unknown: Vec<_> = queried.difference(&declared).collect();
    assert!(
        unknown.is_empty(),
        "dashboard queries metrics the code does not export: {unknown:?}"
    );
}

#[test]
fn latency_histograms_have_buckets() {
    let handle = preconf_node::telemetry::install_prometheus().expect("first recorder");
    metrics::histogram!("p2p_reqresp_latency_seconds", "protocol" => "get_head").record(0.02);
    let text = handle.render();
    assert!(
        text.contains("p2p_reqresp_latency_seconds_bucket{protocol=\"get_head\",le=\"0.025\"} 1"),
        "{text}"
    );
}
