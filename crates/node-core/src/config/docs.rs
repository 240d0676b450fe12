//! The config's documentation, taken from the doc comments of the config structs themselves so
//! it cannot drift: `preconf-node config --print-default` prints the default TOML with each
//! key's doc comment above it, and unknown keys in a config file are refused by name.
//!
//! The struct sources are compiled in; a small parser reads `pub struct Name {` blocks and
//! their `/// doc` + `pub field: Type,` lines. A table's struct is found from its parent's field
//! type, starting at [`NodeConfig`].

use std::collections::BTreeMap;
use std::fmt::Write;

use toml::Value;

use super::NodeConfig;
use crate::error::NodeError;

/// Sources holding every struct reachable from `NodeConfig`.
const SOURCES: &[&str] = &[
    include_str!("mod.rs"),
    include_str!("../schedule/config.rs"),
    include_str!("../../../p2p/src/config.rs"),
    include_str!("../../../net/src/config/mod.rs"),
    include_str!("../../../net/src/config/rate_limit.rs"),
    include_str!("../../../net/src/config/gossip.rs"),
    include_str!("../../../net/src/config/scoring.rs"),
    include_str!("../../../net/src/config/enr.rs"),
    include_str!("../../../types/src/chain.rs"),
];

const ROOT: &str = "NodeConfig";

/// One documented field.
#[derive(Debug, Clone)]
struct Field {
    doc: String,
    ty: String,
}

/// Struct name → field name → field.
type Structs = BTreeMap<String, BTreeMap<String, Field>>;

fn parse_structs() -> Structs {
    let mut structs = Structs::new();
    for source in SOURCES {
        let mut current: Option<String> = None;
        let mut doc = Vec::new();
        // A `#[serde(skip)]` field is no config key (the SDK sets it): not documented, refused.
        let mut skipped = false;
        for line in source.lines() {
            let trimmed = line.trim();
            if let Some(rest) = line.strip_prefix("pub struct ") {
                if let Some(name) = rest.strip_suffix(" {") {
                    current = Some(name.trim().to_string());
                    doc.clear();
                }
                continue;
            }
            if line == "}" {
                current = None;
                continue;
            }
            let Some(name) = &current else { continue };
            if let Some(text) = trimmed.strip_prefix("///") {
                doc.push(text.trim().to_string());
            } else if trimmed.starts_with("#[serde(skip") {
                skipped = true;
            } else if let Some(rest) = trimmed.strip_prefix("pub ") {
                if let Some((field, ty)) = rest.split_once(':').filter(|_| !skipped) {
                    let ty = ty.trim().trim_end_matches(',').to_string();
                    let entry = Field {
                        doc: doc.join(" "),
                        ty,
                    };
                    structs
                        .entry(name.clone())
                        .or_default()
                        .insert(field.trim().to_string(), entry);
                }
                doc.clear();
                skipped = false;
            } else if !trimmed.starts_with("#[") {
                doc.clear();
            }
        }
    }
    structs
}

/// Rustdoc links and markup read poorly in TOML comments: `[`X`]` → `X`, `[text](link)` → text.
fn plain(doc: &str) -> String {
    let mut out = String::with_capacity(doc.len());
    let mut rest = doc;
    while let Some(start) = rest.find('[') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find(']') {
            Some(end) => {
                out.push_str(&after[..end]);
                rest = &after[end + 1..];
                if let Some(link) = rest.strip_prefix('(') {
                    rest = link.find(')').map_or(link, |e| &link[e + 1..]);
                }
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.replace("Self::", "").replace("crate::", "")
}

fn comment(out: &mut String, doc: &str) {
    let doc = plain(doc);
    let mut line = String::from("#");
    for word in doc.split_whitespace() {
        if line.len() + word.len() > 98 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The default configuration as TOML, every key preceded by its doc comment.
pub(crate) fn commented_default() -> String {
    let structs = parse_structs();
    let defaults = match Value::try_from(NodeConfig::default()) {
        Ok(Value::Table(t)) => t,
        _ => return String::new(),
    };
    let mut out = String::from(
        "# preconf-node configuration. Every key is optional; the values below are the defaults.\n\
         # Durations are strings with a unit (\"30s\", \"500ms\", \"10min\"). Precedence: this file < flags < PRECONF_* env.\n",
    );
    write_table(&mut out, &structs, ROOT, "", &defaults);
    out
}

/// The keys an operator sets, in the order printed, each with a one-line note. Values are the
/// defaults, so the list cannot drift from them; `Option` keys without a default are printed
/// commented out. Everything else: `config --print-default`.
const MINIMAL: &[(&str, &str)] = &[
    (
        "data_dir",
        "database and node key: persistent storage, not a temp dir",
    ),
    ("log_format", "\"json\" for log shippers"),
    ("log_filter", "RUST_LOG syntax, e.g. \"info,p2p=debug\""),
    (
        "preconfer_key_file",
        "preconfers only: secp256k1 secret key as hex, mode 0600",
    ),
    (
        "http.addr",
        "/metrics /health /ready /status: keep it private",
    ),
    ("rpc.addr", "the sidecar's JSON-RPC: keep it private"),
    (
        "rpc.jwt_secret_file",
        "publishing needs this JWT secret; default <data_dir>/jwt.hex",
    ),
    ("sdk.chain.chain_id", "167000 Taiko mainnet, 167009 Hekla"),
    (
        "sdk.network.listen_addr",
        "libp2p TCP; open this port (and discv5's UDP) to peers",
    ),
    (
        "sdk.network.static_peers",
        "\"/ip4/IP/tcp/PORT/p2p/PEER_ID\", always dialled",
    ),
    ("sdk.network.bootnodes", "discv5 bootnode ENRs, \"enr:-…\""),
    (
        "sdk.network.enr.address",
        "public IP other nodes dial (run --nat extip:IP); unset: found",
    ),
    (
        "lookahead.source",
        "\"l1_lookahead\" or \"l1_whitelist\" on a real network, \"static\" on a devnet",
    ),
    (
        "lookahead.preconfers",
        "static source only: addresses in rotation order",
    ),
    ("lookahead.slot_duration_secs", "L2 slot length"),
    (
        "l1.rpc_url",
        "l1_whitelist: your L1 execution node's JSON-RPC",
    ),
    (
        "l1.whitelist_address",
        "l1_whitelist: the chain's PreconfWhitelist contract",
    ),
    (
        "l1.lookahead_store_address",
        "l1_lookahead: the chain's LookaheadStore (proxy)",
    ),
    (
        "l1.beacon_genesis_timestamp",
        "your L1's beacon genesis (unset: by chain id; l1_whitelist: mainnet's)",
    ),
];

/// The value at dotted `key` in `table`.
fn lookup<'a>(table: &'a toml::Table, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => table.get(key),
        Some((first, rest)) => lookup(table.get(first)?.as_table()?, rest),
    }
}

/// The few keys an operator sets (`config --print-minimal`), with their defaults as values.
pub(crate) fn minimal() -> String {
    let defaults = match Value::try_from(NodeConfig::default()) {
        Ok(Value::Table(t)) => t,
        _ => return String::new(),
    };
    let mut out = String::from(
        "# preconf-node: the keys an operator sets, at their defaults. Every other key is\n\
         # optional and listed with its doc by `preconf-node config --print-default`.\n\
         # Check a file with `preconf-node config check FILE`.\n",
    );
    let mut table = "";
    for (key, note) in MINIMAL {
        let (parent, leaf) = key.rsplit_once('.').unwrap_or(("", key));
        if parent != table {
            let _ = writeln!(out, "\n[{parent}]");
            table = parent;
        }
        match lookup(&defaults, key) {
            Some(value) => {
                let _ = writeln!(out, "{leaf} = {value}  # {note}");
            }
            None => {
                let _ = writeln!(out, "# {leaf} = \"…\"  # {note}");
            }
        }
    }
    out
}

fn write_table(out: &mut String, structs: &Structs, name: &str, path: &str, table: &toml::Table) {
    let Some(fields) = structs.get(name) else {
        return;
    };
    let mut subtables = Vec::new();
    for (field, info) in fields {
        if structs.contains_key(&info.ty) {
            subtables.push((field, info));
            continue;
        }
        out.push('\n');
        comment(out, &info.doc);
        match table.get(field) {
            Some(value) => {
                let _ = writeln!(out, "{field} = {value}");
            }
            None => {
                let _ = writeln!(out, "# {field} = (unset)");
            }
        }
    }
    for (field, info) in subtables {
        let sub_path = if path.is_empty() {
            field.clone()
        } else {
            format!("{path}.{field}")
        };
        out.push('\n');
        comment(out, &info.doc);
        let _ = writeln!(out, "[{sub_path}]");
        let empty = toml::Table::new();
        let sub = table.get(field).and_then(Value::as_table).unwrap_or(&empty);
        write_table(out, structs, &info.ty, &sub_path, sub);
    }
}

/// Refuses keys no config struct has, naming the first one found.
pub(crate) fn check_known_keys(tree: &toml::Table) -> Result<(), NodeError> {
    let structs = parse_structs();
    check_table(&structs, ROOT, "", tree)
}

fn check_table(
    structs: &Structs,
    name: &str,
    path: &str,
    table: &toml::Table,
) -> Result<(), NodeError> {
    let Some(fields) = structs.get(name) else {
        return Ok(());
    };
    for (key, value) in table {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some(field) = fields.get(key) else {
            return Err(NodeError::Config {
                key: full,
                reason: "unknown key".into(),
            });
        };
        if let (Some(_), Value::Table(sub)) = (structs.get(&field.ty), value) {
            check_table(structs, &field.ty, &full, sub)?;
        }
    }
    Ok(())
}

/// The Rust type of the field at dotted `key` as written in its struct (`Option<PathBuf>`), or
/// `None` for a key no config struct has.
pub(crate) fn field_type(key: &str) -> Option<String> {
    let structs = parse_structs();
    let mut name = ROOT.to_string();
    for part in key.split('.') {
        name = structs.get(&name)?.get(part)?.ty.clone();
    }
    Some(name)
}

/// Every leaf key of the config structs, dotted, `Option` fields included (they are absent from
/// the serialised defaults).
#[cfg(test)]
pub(crate) fn leaf_keys() -> Vec<String> {
    fn walk(structs: &Structs, name: &str, path: &str, out: &mut Vec<String>) {
        let Some(fields) = structs.get(name) else {
            return;
        };
        for (field, info) in fields {
            let full = if path.is_empty() {
                field.clone()
            } else {
                format!("{path}.{field}")
            };
            if structs.contains_key(&info.ty) {
                walk(structs, &info.ty, &full, out);
            } else {
                out.push(full);
            }
        }
    }
    let mut out = Vec::new();
    walk(&parse_structs(), ROOT, "", &mut out);
    out
}

/// Every leaf of `table` under `path`, as (dotted key, value).
#[cfg(test)]
pub(crate) fn table_leaves(table: &toml::Table, path: &str, out: &mut Vec<(String, Value)>) {
    for (key, value) in table {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        match value {
            Value::Table(t) => table_leaves(t, &full, out),
            v => out.push((full, v.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_key_is_documented() {
        let structs = parse_structs();
        let Ok(Value::Table(defaults)) = Value::try_from(NodeConfig::default()) else {
            panic!("defaults serialise to a table")
        };
        let mut leaves = Vec::new();
        table_leaves(&defaults, "", &mut leaves);
        let keys: Vec<String> = leaves.into_iter().map(|(key, _)| key).collect();
        assert!(keys.len() > 40, "expected the whole tree, got {keys:?}");
        for key in keys {
            let mut name = ROOT.to_string();
            let parts: Vec<&str> = key.split('.').collect();
            let mut field = None;
            for part in &parts {
                let fields = structs
                    .get(&name)
                    .unwrap_or_else(|| panic!("{key}: no struct {name}"));
                let f = fields
                    .get(*part)
                    .unwrap_or_else(|| panic!("{key}: {name} has no {part}"));
                name = f.ty.clone();
                field = Some(f.clone());
            }
            let doc = field.map(|f| f.doc).unwrap_or_default();
            assert!(!doc.is_empty(), "{key} has no doc comment");
        }
    }

    #[test]
    fn printed_default_round_trips_to_the_default() {
        let text = commented_default();
        assert!(text.contains("[sdk.network]"));
        assert!(text.contains("# Most connected peers"));
        let parsed: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(parsed, NodeConfig::default());
    }

    #[test]
    fn minimal_keys_exist_and_print_their_defaults() {
        for (key, _) in MINIMAL {
            assert!(field_type(key).is_some(), "{key} is no config key");
        }
        let text = minimal();
        let lines = text.lines().filter(|l| l.contains(" = ")).count();
        assert_eq!(lines, MINIMAL.len(), "{text}");
        assert!(lines <= 25, "an operator's file stays short: {lines} keys");
        // As printed it loads, and it is the default config: nothing in it is a new value. The
        // static schedule needs its addresses, as a node started from it would say.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, &text).unwrap();
        let err = NodeConfig::load(Some(&path), &[], Vec::new()).unwrap_err();
        assert!(err.to_string().contains("lookahead.preconfers"), "{err}");
        let preconfer = "0x00000000000000000000000000000000000000aa";
        let flags = [("lookahead.preconfers".to_string(), preconfer.to_string())];
        let loaded = NodeConfig::load(Some(&path), &flags, Vec::new()).unwrap();
        let mut expected = NodeConfig::default();
        expected.lookahead.preconfers = vec![preconfer.parse().unwrap()];
        assert_eq!(loaded, expected);
        assert!(text.contains("# preconfer_key_file = "), "{text}");
        assert!(text.contains("[sdk.network]\nlisten_addr = "), "{text}");
    }

    #[test]
    fn a_skipped_field_is_no_key() {
        assert_eq!(field_type("sdk.network.chain_id"), None);
        assert_eq!(field_type("sdk.network.limits"), None);
        assert_eq!(field_type("sdk.chain.chain_id").as_deref(), Some("u64"));
        let text = commented_default();
        assert!(!text.contains("[sdk.network.limits]"), "{text}");
    }

    #[test]
    fn links_are_flattened() {
        assert_eq!(
            plain("see [`Self::ban_threshold`] and [x](y)."),
            "see `ban_threshold` and x."
        );
    }
}
