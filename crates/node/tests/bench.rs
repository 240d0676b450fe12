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

#[test]
fn validate_prints_its_keys() {
    run_bench(
        &["validate", "--count", "50"],
        &["per_s", "baseline_per_s", "ratio"],
    );
}

#[test]
fn propagation_prints_its_keys() {
    run_bench(
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
            "p50_ms",
            "p99_ms",
            "max_ms",
            "baseline_p99_ms",
            "ratio_p99",
            "txlist_p99_ms",
        ],
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
    ];
    let raised = run_bench(&["catchup", "--commitments", "100", "--json"], &keys);
    assert_eq!(raised["defaults"], false);
    // Every node on default settings: completes, and nobody penalised the catching-up node.
    let defaults = run_bench(
        &["catchup", "--commitments", "300", "--defaults", "--json"],
        &keys,
    );
    assert_eq!(defaults["defaults"], true);
    assert_eq!(defaults["penalties"], 0);
    assert!(defaults["per_s"].as_f64().is_some_and(|v| v > 0.0));
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
