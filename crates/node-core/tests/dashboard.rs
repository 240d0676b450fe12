//! `dashboards/preconf-node.json` only queries metrics the node exports, every metric the code
//! declares is described (so it gets its `# HELP`) and carries the one `preconf_` prefix, and
//! latency histograms are exported with buckets so the dashboard's `histogram_quantile`
//! queries work.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use metrics_exporter_prometheus::PrometheusHandle;
use preconf_node_core::telemetry::METRIC_PREFIX;

const DASHBOARD: &str = include_str!("../../../dashboards/preconf-node.json");

/// Every file that declares metric names as `pub const X: &str = "preconf_…";`.
const METRIC_SOURCES: &[&str] = &[
    include_str!("../../p2p/src/metrics.rs"),
    include_str!("../../net/src/metrics.rs"),
    include_str!("../src/telemetry.rs"),
    include_str!("../src/schedule/l1_whitelist.rs"),
    include_str!("../src/rpc/metrics.rs"),
    include_str!("../src/rpc/auth.rs"),
];

/// The process's recorder, installed as the node installs it (one per test process).
fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| preconf_node_core::telemetry::install_prometheus().expect("first recorder"))
        .clone()
}

/// Metric names declared as string constants in the sources: lower-case snake case starting
/// with `preconf_` (or the old `p2p_`), the prefix itself left out.
fn declared() -> BTreeSet<String> {
    METRIC_SOURCES
        .iter()
        .flat_map(|src| src.lines())
        .filter(|l| l.trim_start().starts_with("pub const") && l.contains("&str = \""))
        .filter_map(|l| l.split('"').nth(1).map(str::to_string))
        .filter(|name| {
            (name.starts_with("preconf_") || name.starts_with("p2p_"))
                && name.as_str() != METRIC_PREFIX
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .collect()
}

/// Names with a description: the node's, the SDK's and the network layer's lists.
fn described() -> BTreeSet<String> {
    preconf_node_core::telemetry::DESCRIPTIONS
        .iter()
        .chain(p2p::metrics::DESCRIPTIONS)
        .chain(preconfirmation_net::metrics::DESCRIPTIONS)
        .map(|(name, _, _)| name.to_string())
        .collect()
}

/// Names the node exports: every described one, and what the recorder renders at once
/// (build info, process metrics).
fn exported() -> BTreeSet<String> {
    let mut names = described();
    for line in recorder().render().lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                names.insert(name.to_string());
            }
        }
    }
    names
}

/// Metric names in every query of the dashboard, without Prometheus' histogram suffixes:
/// the words with an underscore that are not PromQL's own (`histogram_quantile`) nor a
/// label (inside `by (…)` or before `=`).
fn queried() -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(DASHBOARD).expect("dashboard is JSON");
    let mut names = BTreeSet::new();
    for panel in json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            let mut rest = expr;
            while let Some(i) = rest.find(|c: char| c.is_ascii_lowercase()) {
                let tail = &rest[i..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                let word = &tail[..end];
                let next = tail[end..].trim_start().chars().next();
                let is_label = matches!(next, Some(',' | ')' | '=' | '!'));
                if word.contains('_') && word != "histogram_quantile" && !is_label {
                    let base = ["_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|s| word.strip_suffix(s))
                        .unwrap_or(word);
                    names.insert(base.to_string());
                }
                rest = &tail[end..];
            }
        }
    }
    names
}

/// Every name of `names` is in `known`; `what` names those that are not.
fn assert_within(names: &BTreeSet<String>, known: &BTreeSet<String>, what: &str) {
    let outside: Vec<_> = names.difference(known).collect();
    assert!(outside.is_empty(), "{what}: {outside:?}");
}

#[test]
fn every_dashboard_metric_is_exported_by_the_code() {
    let exported = exported();
    assert!(exported.len() > 40, "{exported:?}");
    let queried = queried();
    assert!(queried.len() > 25, "{queried:?}");
    assert_within(
        &queried,
        &exported,
        "dashboard queries metrics the code does not export",
    );
}

/// A metric declared without a description would be exported without `# HELP`; one without
/// the prefix would break the one-prefix convention.
#[test]
fn every_declared_metric_is_described_and_prefixed() {
    let declared = declared();
    assert!(declared.len() > 40, "{declared:?}");
    let described = described();
    assert_within(&declared, &described, "no description");
    let unprefixed: Vec<_> = declared
        .iter()
        .chain(&described)
        .filter(|n| !n.starts_with(METRIC_PREFIX))
        .collect();
    assert!(
        unprefixed.is_empty(),
        "not `{METRIC_PREFIX}…`: {unprefixed:?}"
    );
}

#[test]
fn latency_histograms_have_buckets() {
    let handle = recorder();
    metrics::histogram!(p2p::metrics::REQRESP_LATENCY, "protocol" => "get_head").record(0.02);
    let text = handle.render();
    assert!(
        text.contains(
            "preconf_reqresp_latency_seconds_bucket{protocol=\"get_head\",le=\"0.025\"} 1"
        ),
        "{text}"
    );
}

/// The recorder the node installs exports its build and its process from the start.
#[test]
fn build_info_and_process_metrics_are_exported() {
    let text = recorder().render();
    let build = format!(
        "preconf_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION"),
        preconf_node_core::telemetry::GIT_COMMIT
    );
    assert!(text.contains(&build), "{build}\n{text}");
    assert!(!preconf_node_core::telemetry::GIT_COMMIT.is_empty());
    for name in [
        "preconf_process_resident_memory_bytes",
        "preconf_process_cpu_seconds_total",
        "preconf_process_start_time_seconds",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        assert!(text.contains(&format!("\n{name} ")), "{name}\n{text}");
    }
}
