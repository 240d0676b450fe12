//! What `contrib/` ships and the release profile promise: the systemd unit passes
//! `systemd-analyze verify` without a warning, the Dockerfile is multi-stage, runs as a
//! non-root user with a data volume and checks `/ready`, and a release build carries no debug
//! info or symbols (the binary stays under 40 MiB; `--profile profiling` keeps line tables and
//! symbols for perf).

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_preconf-node");
const UNIT: &str = include_str!("../../../contrib/preconf-node.service");
const DOCKERFILE: &str = include_str!("../../../contrib/Dockerfile");
const WORKSPACE_MANIFEST: &str = include_str!("../../../Cargo.toml");

#[test]
fn the_systemd_unit_verifies_cleanly() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs systemd (.ci/run): systemd-analyze must be there"
        );
        eprintln!("skipped: no systemd-analyze (apt-get install systemd)");
        return;
    }
    let installed = "/usr/local/bin/preconf-node";
    assert!(
        UNIT.contains(&format!("ExecStart={installed} run ")),
        "{UNIT}"
    );
    // verify checks that ExecStart's binary exists: point it at this build.
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = dir.path().join("preconf-node.service");
    std::fs::write(&unit, UNIT.replace(installed, BIN)).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // Unknown keys and bad values are only warnings: there must be none.
    assert!(said.trim().is_empty(), "systemd-analyze warns: {said}");

    // The flags ExecStart passes are ones `run` takes: with a missing config file the node
    // names the file, not a usage error.
    let exec = UNIT
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let args: Vec<String> = exec
        .split_whitespace()
        .skip(1)
        .map(|a| a.replace("/etc/preconf-node/node.toml", "/nonexistent/node.toml"))
        .collect();
    let out = Command::new(BIN).args(&args).output().expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/node.toml"), "{err}");
    assert_ne!(
        out.status.code(),
        Some(2),
        "clap refused the unit's flags: {err}"
    );
}

#[test]
fn the_dockerfile_is_multi_stage_non_root_with_a_volume_and_a_readiness_check() {
    let lines: Vec<&str> = DOCKERFILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let from = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(from >= 2, "multi-stage: {from} FROM lines");
    assert!(
        lines.iter().any(|l| l.starts_with("COPY --from=build ")),
        "the final stage takes only the binary"
    );
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("a USER line");
    assert!(!["root", "0"].contains(&user.trim()), "runs as {user}");
    assert!(
        lines.iter().any(|l| l.starts_with("VOLUME ")),
        "a data volume"
    );
    assert!(
        DOCKERFILE.contains("HEALTHCHECK") && DOCKERFILE.contains("/ready"),
        "HEALTHCHECK on /ready"
    );
    assert!(DOCKERFILE.contains("EXPOSE 9222/tcp 9222/udp"), "p2p ports");
}

/// The `[profile.NAME]` table of the workspace manifest.
fn profile(name: &str) -> toml::Table {
    let manifest: toml::Table = WORKSPACE_MANIFEST.parse().expect("Cargo.toml parses");
    manifest["profile"][name]
        .as_table()
        .cloned()
        .unwrap_or_else(|| panic!("[profile.{name}]"))
}

#[test]
fn a_release_build_carries_no_debug_info_and_profiling_keeps_line_tables() {
    let release = profile("release");
    let debug = release.get("debug").cloned();
    assert!(
        matches!(
            debug,
            None | Some(toml::Value::Boolean(false)) | Some(toml::Value::Integer(0))
        ) || debug.as_ref().and_then(|d| d.as_str()) == Some("none"),
        "release debug = {debug:?}: debug info made the binary 187 MB"
    );
    // Symbols alone are 9 MiB: without stripping them the binary is 40.7 MiB.
    let strip = release.get("strip").cloned();
    assert!(
        strip == Some(toml::Value::Boolean(true))
            || strip.as_ref().and_then(|s| s.as_str()) == Some("symbols"),
        "release strip = {strip:?}"
    );
    let profiling = profile("profiling");
    assert_eq!(profiling["inherits"].as_str(), Some("release"));
    assert_eq!(profiling["debug"].as_str(), Some("line-tables-only"));
}
