//! Build facts for `--version` and the `preconf_build_info` metric, as compile-time variables:
//!
//! - `PRECONF_GIT_COMMIT`: the commit built (`git rev-parse --short=12 HEAD`); the variable of
//!   the same name when set in the build's environment (a build from a source tarball or a
//!   container without `.git`); `unknown` otherwise.
//! - `PRECONF_BUILD_DATE`: the build's UTC date (`YYYY-MM-DD`), from `SOURCE_DATE_EPOCH` when
//!   set (reproducible builds), else the clock when this script ran.
//!
//! The script reruns when `HEAD` or the branch it points to moves, not at every source change.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PRECONF_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let commit = std::env::var("PRECONF_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=PRECONF_GIT_COMMIT={}", commit.trim());
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
    println!("cargo:rustc-env=PRECONF_BUILD_DATE={}", utc_date(epoch));
}

/// Output of `git args…` run in this crate's directory, trimmed; `None` on any failure.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// The commit `HEAD` names, watching the files that move it.
fn git_commit() -> Option<String> {
    let commit = git(&["rev-parse", "--short=12", "HEAD"])?;
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        watch(&git_dir.join("HEAD"));
        // Refs live in the common directory (the same one, except in a linked worktree).
        let refs = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
            .map_or(git_dir, PathBuf::from);
        watch(&refs.join("packed-refs"));
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch(&refs.join(branch));
        }
    }
    Some(commit)
}

fn watch(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `YYYY-MM-DD` (UTC) of a Unix time (days to civil date, proleptic Gregorian calendar).
fn utc_date(epoch_secs: u64) -> String {
    let days = (epoch_secs / 86_400) as i64;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
