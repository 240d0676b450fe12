//! Settings from flags and environment variables, as dotted-key overrides of the config tree:
//! the named flags and variables ([`OVERRIDES`]), the generic `PRECONF__SECTION__KEY` form,
//! `run --nat`, and how a raw value is typed and merged into the tree.

use toml::Value;

use super::docs;
use crate::error::NodeError;

/// A setting that has a flag and a named environment variable.
#[derive(Debug, Clone, Copy)]
pub struct Override {
    /// Dotted config key.
    pub key: &'static str,
    /// Environment variable.
    pub env: &'static str,
}

/// The settings with their own flag (see `preconf-node run --help`) and environment variable.
pub const OVERRIDES: &[Override] = &[
    Override {
        key: "data_dir",
        env: "PRECONF_DATA_DIR",
    },
    Override {
        key: "log_format",
        env: "PRECONF_LOG_FORMAT",
    },
    Override {
        key: "log_filter",
        env: "PRECONF_LOG_FILTER",
    },
    Override {
        key: "preconfer_key_file",
        env: "PRECONF_PRECONFER_KEY_FILE",
    },
    Override {
        key: "http.addr",
        env: "PRECONF_HTTP_ADDR",
    },
    Override {
        key: "rpc.addr",
        env: "PRECONF_RPC_ADDR",
    },
    Override {
        key: "sdk.chain.chain_id",
        env: "PRECONF_CHAIN_ID",
    },
    Override {
        key: "sdk.network.listen_addr",
        env: "PRECONF_LISTEN_ADDR",
    },
    Override {
        key: "sdk.network.static_peers",
        env: "PRECONF_STATIC_PEERS",
    },
    Override {
        key: "sdk.network.bootnodes",
        env: "PRECONF_BOOTNODES",
    },
    Override {
        key: "lookahead.preconfers",
        env: "PRECONF_PRECONFERS",
    },
];

/// Prefix of the generic per-key environment variables (`PRECONF__SDK__NETWORK__MAX_PEERS`).
pub const GENERIC_ENV_PREFIX: &str = "PRECONF__";

/// The config keys `run --nat VALUE` sets, as (dotted key, raw value):
/// - `extip:<IP>` (or `extip:<IPv4>,<IPv6>`): the ENR advertises this public address
///   (`sdk.network.enr.address` / `address6`) and discv5's PONG votes never replace it;
/// - `any` (the default, sets nothing): the ENR takes the listen address, or on a wildcard
///   listen the address this host routes from, and discv5's PONG votes correct it;
/// - `none`: as `any` without the PONG votes (`sdk.network.enr.auto_update = false`).
pub fn nat_overrides(value: &str) -> Result<Vec<(String, String)>, NodeError> {
    let bad = |reason: String| NodeError::Config {
        key: "--nat".into(),
        reason,
    };
    let value = value.trim();
    if value.eq_ignore_ascii_case("any") {
        return Ok(Vec::new());
    }
    if value.eq_ignore_ascii_case("none") {
        return Ok(vec![("sdk.network.enr.auto_update".into(), "false".into())]);
    }
    let Some(ips) = value.strip_prefix("extip:") else {
        return Err(bad(format!("{value:?}: expected extip:<IP>, any or none")));
    };
    let mut out = Vec::new();
    for ip in ips.split(',').map(str::trim) {
        let key = match ip.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(_)) => "sdk.network.enr.address",
            Ok(std::net::IpAddr::V6(_)) => "sdk.network.enr.address6",
            Err(_) => return Err(bad(format!("{ip:?} is not an IP address"))),
        };
        if out.iter().any(|(k, _): &(String, String)| k == key) {
            return Err(bad(format!("two addresses of one IP version in {value:?}")));
        }
        out.push((key.to_string(), ip.to_string()));
    }
    Ok(out)
}

/// The overrides found in `env`: named variables first, then generic ones.
pub(super) fn env_overrides(
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<(String, String)>, NodeError> {
    let mut named = Vec::new();
    let mut generic = Vec::new();
    for (name, value) in env {
        if let Some(o) = OVERRIDES.iter().find(|o| o.env == name) {
            named.push((o.key.to_string(), value));
        } else if let Some(path) = name.strip_prefix(GENERIC_ENV_PREFIX) {
            let key = path
                .split("__")
                .map(str::to_ascii_lowercase)
                .collect::<Vec<_>>()
                .join(".");
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(NodeError::Config {
                    key: name,
                    reason: "empty key segment".into(),
                });
            }
            generic.push((key, value));
        }
    }
    named.sort();
    generic.sort();
    named.extend(generic);
    Ok(named)
}

/// Merges `over` into `base`: a table present in both merges key by key (recursively); any
/// other value of `over`, arrays included, replaces the one in `base`. Keys only `over` has are
/// kept, so unknown keys are still there for [`docs::check_known_keys`] to refuse.
pub(super) fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match value {
            Value::Table(over_table) => match base.get_mut(&key) {
                Some(Value::Table(base_table)) => merge(base_table, over_table),
                _ => {
                    base.insert(key, Value::Table(over_table));
                }
            },
            other => {
                base.insert(key, other);
            }
        }
    }
}

/// Sets `key` (dotted) in `tree` to `raw`, typed like the default value at that key: strings stay
/// strings, lists are split on commas, anything else is parsed as a TOML value.
pub(super) fn set_dotted(
    tree: &mut toml::Table,
    defaults: &Value,
    key: &str,
    raw: &str,
) -> Result<(), NodeError> {
    let parts: Vec<&str> = key.split('.').collect();
    let default = parts.iter().try_fold(defaults, |v, p| v.get(p));
    let value = match default {
        None if is_optional_text(key) => Value::String(raw.to_string()),
        _ => typed_value(default, raw),
    };
    let (last, parents) = parts.split_last().ok_or_else(|| NodeError::Config {
        key: key.into(),
        reason: "empty key".into(),
    })?;
    let mut table = tree;
    for part in parents {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Default::default()));
        table = entry.as_table_mut().ok_or_else(|| NodeError::Config {
            key: key.into(),
            reason: format!("`{part}` is not a table"),
        })?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Whether `key` is an `Option` of a type written as a string (a path, a hash): such a key is
/// absent from the defaults, so it cannot be typed from them, and parsing its raw value as TOML
/// would turn `0x00…01` or `123` into an integer.
fn is_optional_text(key: &str) -> bool {
    const TEXT: &[&str] = &[
        "String",
        "PathBuf",
        "B256",
        "Address",
        "Multiaddr",
        "SocketAddr",
    ];
    docs::field_type(key)
        .and_then(|ty| {
            ty.strip_prefix("Option<")
                .and_then(|t| t.strip_suffix('>'))
                .map(|inner| TEXT.contains(&inner))
        })
        .unwrap_or(false)
}

fn typed_value(default: Option<&Value>, raw: &str) -> Value {
    match default {
        Some(Value::String(_)) => Value::String(raw.to_string()),
        Some(Value::Array(items)) => {
            let element = items.first();
            Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| match element {
                        None | Some(Value::String(_)) => Value::String(s.to_string()),
                        other => typed_value(other, s),
                    })
                    .collect(),
            )
        }
        _ => format!("v = {raw}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| Value::String(raw.to_string())),
    }
}
