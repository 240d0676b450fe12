//! Each `preconf-node bench` kind runs end to end with tiny sizes and prints, as its last
//! stdout line, one JSON object with the kind's named keys. Speed is not asserted here (it
//! lives in the benches themselves and BENCHMARKS.md).

use std::process::Command;

fn run_bench(args: &[&str], keys: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_preconf-node"))
        .arg("bench")
        .args(args)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "bench {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout.lines().last().expect("some output");
    let json: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    for key in keys.iter().chain(&["cores", "cpu_model"]) {
        assert!(
            json.get(key).is_some(),
            "bench {args:?}: no key {key} in {last}"
        );
    }
    if !args.contains(&"--json") {
        assert!(
            stdout.contains("machine:"),
            "human output has machine facts"
        );
    }
    json
}

/// `json[key]` as a number; panics (naming the key) if it is not one.
fn number(json: &serde_json::Value, key: &str) -> f64 {
    // `outer.inner` names a key of a nested object.
    let value = key.split('.').fold(json, |v, k| &v[k]);
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is a number in {json}"))
}

/// Every one of `keys` is a positive number.
fn assert_positive(json: &serde_json::Value, keys: &[&str]) {
    for key in keys {
        assert!(number(json, key) > 0.0, "{key} positive in {json}");
    }
}

/// `json[ratio]` is `json[numerator] / json[denominator]`, up to `relative` (the figures are
/// rounded before they are printed) plus 0.01 absolute.
fn assert_ratio(
    json: &serde_json::Value,
    ratio: &str,
    numerator: &str,
    denominator: &str,
    relative: f64,
) {
    let expected = number(json, numerator) / number(json, denominator);
    assert!(
        (number(json, ratio) - expected).abs() <= 0.01 + expected * relative,
        "{ratio} is {numerator} / {denominator} in {json}"
    );
}

/// The SDK's own gossip path accepted every commitment (the bench fails otherwise, and a
/// commitment is only accepted once its recovered signer is the scheduled preconfer) and its
/// figures are sane: positive rates and stages. Which path is faster is not asserted: that is
/// a timing figure, and a loaded debug build once measured the baseline slower than the SDK.
#[test]
fn validate_prints_its_keys() {
    let json = run_bench(
        &["validate", "--count", "200", "--json"],
        &["per_s", "baseline_per_s", "ratio", "sdk_us_per_msg"],
    );
    assert_positive(
        &json,
        &[
            "per_s",
            "baseline_per_s",
            "sdk_us_per_msg",
            "baseline_us_per_msg",
            "stage_recover_signer_us",
            "stage_decode_us",
        ],
    );
    assert_ratio(&json, "ratio", "per_s", "baseline_per_s", 0.01);
    assert_eq!(json["count"], 200);
    // One pair per stretch of each of the runs: 200 messages are one stretch.
    assert_eq!(
        json["paired_stretches"].as_u64(),
        Some(preconf_devtools::bench::validate::REPEATS as u64),
        "{json}"
    );
    assert_positive(&json, &["ratio_paired_median"]);
}

/// `--threads N`: the SDK's batches had their signers recovered on the pool (the bench fails
/// unless every commitment was accepted), with sane rates.
#[test]
fn validate_with_threads_recovers_on_the_pool() {
    let json = run_bench(
        &["validate", "--count", "200", "--threads", "2", "--json"],
        &["per_s", "baseline_per_s", "ratio", "parallel_chunks"],
    );
    assert_eq!(json["threads"], 2);
    assert_positive(&json, &["per_s", "baseline_per_s"]);
    assert!(
        json["parallel_chunks"].as_u64() > Some(0),
        "chunks recovered on the pool: {json}"
    );
}

/// Both networks delivered everything, the SDK ran on redb with the rounds interleaved, and
/// the figures are sane: positive, each network's CPU per delivery is the sum of its split
/// (the SDK's network thread, its runtime and its writer all did work), and each ratio is its
/// two figures'. Which network is faster is a timing figure and is not asserted (see
/// `validate_prints_its_keys`).
#[test]
fn propagation_prints_its_keys() {
    let json = run_bench(
        &[
            "propagation",
            "--nodes",
            "3",
            "--rounds",
            "2",
            "--txlist-rounds",
            "1",
            "--txlist-bytes",
            "2048",
            "--json",
        ],
        &[
            "cpu_us_per_commitment",
            "baseline_cpu_us_per_commitment",
            "cpu_ratio",
            "gossip_transport_cpu_ratio",
            "cpu_us_per_mib_txlist",
            "baseline_cpu_us_per_mib_txlist",
            "harness_cpu_share",
            "p50_ms",
            "p99_ms",
            "max_ms",
            "baseline_p99_ms",
            "ratio_p99",
            "txlist_p99_ms",
        ],
    );
    assert_eq!(json["missing"], 0, "every delivery made: {json}");
    assert_eq!(json["storage"], "redb");
    assert_eq!(json["interleaved"], true);
    assert_positive(
        &json,
        &[
            "cpu_us_per_commitment",
            "baseline_cpu_us_per_commitment",
            "cpu_us_per_mib_txlist",
            "baseline_cpu_us_per_mib_txlist",
            "p50_ms",
            "p99_ms",
            "baseline_p99_ms",
            "txlist_p99_ms",
            // Where an SDK delivery's time went, from the SDK's own metrics.
            "commitment_write_mean_ms",
            "commitment_transaction_mean_ms",
            "gossip_queue_mean_ms",
            // What the shared disk adds, probed after the rounds.
            "fsync_single_ms",
            "fsync_burst_ms",
            // How busy the machine was through a commitment round, each network.
            "round_busy_cores",
            "baseline_round_busy_cores",
        ],
    );
    for (total, split, groups) in [
        (
            "cpu_us_per_commitment",
            "cpu_split_us_per_commitment",
            &["gossip_transport", "sdk", "writer"][..],
        ),
        (
            "baseline_cpu_us_per_commitment",
            "baseline_cpu_split_us_per_commitment",
            &["gossip_transport"][..],
        ),
        (
            "cpu_us_per_mib_txlist",
            "cpu_split_us_per_mib_txlist",
            &["gossip_transport", "sdk", "writer"][..],
        ),
    ] {
        let parts = &json[split];
        for group in groups {
            assert!(
                number(parts, group) > 0.0,
                "{split}.{group} positive in {json}"
            );
        }
        let sum: f64 = groups.iter().map(|g| number(parts, g)).sum();
        // Each part and the total are rounded to 0.1 µs.
        assert!(
            (sum - number(&json, total)).abs() <= 0.1 * (groups.len() as f64 + 1.0),
            "{total} is the sum of {split} in {json}"
        );
    }
    let share = number(&json, "harness_cpu_share");
    assert!((0.0..1.0).contains(&share), "harness_cpu_share in {json}");
    // Each p99 is rounded to 0.01 ms, a few percent of a small figure.
    assert_ratio(&json, "ratio_p99", "p99_ms", "baseline_p99_ms", 0.05);
    assert_ratio(
        &json,
        "cpu_ratio",
        "cpu_us_per_commitment",
        "baseline_cpu_us_per_commitment",
        0.01,
    );
    assert_ratio(
        &json,
        "gossip_transport_cpu_ratio",
        "cpu_split_us_per_commitment.gossip_transport",
        "baseline_cpu_split_us_per_commitment.gossip_transport",
        0.01,
    );
}

/// The figures every catch-up run reports beyond speed: tx-list MiB/s against a bare TCP copy,
/// and the serving peers' CPU and MiB/s out, all measured.
fn check_catchup_figures(json: &serde_json::Value) {
    let f = |key: &str| number(json, key);
    assert_positive(
        json,
        &[
            "per_s",
            "txlist_mib_per_s",
            "tcp_copy_mib_per_s",
            "tcp_ratio",
            "server_mib_per_s_out",
        ],
    );
    let expected = f("txlist_mib_per_s") / f("tcp_copy_mib_per_s");
    assert!(
        (f("tcp_ratio") - expected).abs() <= expected * 0.01,
        "tcp_ratio is txlist_mib_per_s / tcp_copy_mib_per_s in {json}"
    );
    assert!(f("server_cpu_share") >= 0.0, "server_cpu_share in {json}");
    let mean = (f("limit_before_per_s") + f("limit_after_per_s")) / 2.0;
    assert!(
        f("limit_before_per_s") > 0.0 && f("limit_after_per_s") > 0.0,
        "both limits measured in {json}"
    );
    assert!(
        (f("limit_per_s") - mean).abs() <= 1.0,
        "limit_per_s is the mean of before and after in {json}"
    );
    let servers = json["servers"]
        .as_array()
        .unwrap_or_else(|| panic!("servers is a list in {json}"));
    assert_eq!(servers.len(), 3, "one entry per serving peer in {json}");
    let mut max_cpu: f64 = 0.0;
    let mut max_out: f64 = 0.0;
    for s in servers {
        let cpu = number(s, "cpu_share");
        let out = number(s, "mib_per_s_out");
        assert!(cpu >= 0.0 && out >= 0.0, "server figures in {json}");
        max_cpu = max_cpu.max(cpu);
        max_out = max_out.max(out);
    }
    assert_eq!(
        f("server_cpu_share"),
        max_cpu,
        "the busiest server in {json}"
    );
    assert_eq!(
        f("server_mib_per_s_out"),
        max_out,
        "the busiest server in {json}"
    );
}

#[test]
fn catchup_prints_its_keys() {
    let keys = [
        "per_s",
        "limit_per_s",
        "ratio",
        "elapsed_s",
        "penalties",
        "defaults",
        "txlist_mib_per_s",
        "tcp_copy_mib_per_s",
        "tcp_ratio",
        "server_cpu_share",
        "server_mib_per_s_out",
        "servers",
    ];
    let raised = run_bench(&["catchup", "--commitments", "100", "--json"], &keys);
    assert_eq!(raised["defaults"], false);
    check_catchup_figures(&raised);
    // Every node on default settings: completes, and nobody penalised the catching-up node.
    let defaults = run_bench(
        &["catchup", "--commitments", "300", "--defaults", "--json"],
        &keys,
    );
    assert_eq!(defaults["defaults"], true);
    assert_eq!(defaults["penalties"], 0);
    check_catchup_figures(&defaults);
    // Large tx lists: their bytes are what the serving peers send.
    let large = run_bench(
        &[
            "catchup",
            "--commitments",
            "50",
            "--txlist-bytes",
            "65536",
            "--json",
        ],
        &keys,
    );
    check_catchup_figures(&large);
    let txlist_mib = 50.0 * 65536.0 / (1024.0 * 1024.0);
    let served_mib: f64 = large["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| number(s, "mib_per_s_out"))
        .sum::<f64>()
        * number(&large, "elapsed_s");
    assert!(
        served_mib >= txlist_mib * 0.95,
        "the servers sent every tx list: {served_mib} of {txlist_mib} MiB in {large}"
    );
}

#[test]
fn memory_prints_its_keys() {
    run_bench(
        &[
            "memory",
            "--messages",
            "100",
            "--commitments",
            "50",
            "--json",
        ],
        &["peak_rss_mib", "cap_mib", "within_caps"],
    );
}
