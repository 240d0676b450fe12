//! The process's log output: human-readable or JSON lines on stderr, coloured only on a
//! terminal, filtered by `log_filter` (`run`) or `RUST_LOG` (the other subcommands).

use std::ffi::OsStr;
use std::io::IsTerminal;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

use crate::error::NodeError;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Whether log lines get ANSI colours: only when stderr is a terminal, and never while
/// `NO_COLOR` is set to anything but the empty string (<https://no-color.org>). Files,
/// pipes and journald get plain text.
pub fn use_ansi(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// `filter` (`log_filter`, `RUST_LOG` syntax) as a filter, or a config error naming `key`.
pub fn parse_filter(key: &str, filter: &str) -> Result<EnvFilter, NodeError> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|e| NodeError::Config {
            key: key.into(),
            reason: format!(
                "{filter:?} is not a valid filter ({e}); RUST_LOG syntax, e.g. \"info,p2p=debug\""
            ),
        })
}

/// The logging of `preconf-node run`: `filter` is `log_filter` (`--log-filter`,
/// `PRECONF_LOG_FILTER`, the file; default `info`) and decides alone. `RUST_LOG` is not read;
/// when it is set, a line at start says so, so it is never silently ignored.
pub fn init_node_logging(format: LogFormat, filter: &str) -> Result<(), NodeError> {
    init_logging(format, parse_filter("log_filter", filter)?);
    if let Some(rust_log) = std::env::var_os("RUST_LOG") {
        tracing::info!(
            rust_log = %rust_log.to_string_lossy(),
            log_filter = filter,
            "RUST_LOG is not read by `run`: its log filter is log_filter (--log-filter, \
             PRECONF_LOG_FILTER or the config file)"
        );
    }
    Ok(())
}

/// The logging of the other subcommands (`devnet`, `testbed`, `bench`, …), which have no
/// filter setting of their own: `RUST_LOG` when it is set and valid, else `default`.
pub fn init_tool_logging(format: LogFormat, default: &str) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(rust_log) => EnvFilter::builder().parse(&rust_log).unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG ignored ({e}); logging at {default:?}");
            EnvFilter::new(default)
        }),
        Err(_) => EnvFilter::new(default),
    };
    init_logging(format, filter);
}

/// Installs the process's log subscriber on stderr, coloured only where [`use_ansi`] allows;
/// does nothing when the process already has one.
pub fn init_logging(format: LogFormat, filter: EnvFilter) {
    let no_color = std::env::var_os("NO_COLOR");
    let ansi = use_ansi(std::io::stderr().is_terminal(), no_color.as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;
    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_ansi(true, None));
        assert!(!use_ansi(false, None), "a file, a pipe, journald");
        assert!(!use_ansi(true, Some(OsStr::new("1"))), "NO_COLOR=1");
        assert!(
            use_ansi(true, Some(OsStr::new(""))),
            "an empty NO_COLOR does not count (no-color.org)"
        );
        assert!(!use_ansi(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn a_bad_filter_is_a_config_error_naming_its_key() {
        assert!(parse_filter("log_filter", "info,p2p=debug,discv5=error").is_ok());
        match parse_filter("log_filter", "p2p=loud") {
            Err(NodeError::Config { key, reason }) => {
                assert_eq!(key, "log_filter");
                assert!(reason.contains("p2p=loud"), "{reason}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
