//! Tests of loading a [`NodeConfig`]: sources and their precedence, typed values, unknown and
//! bad keys, and every key set alone from every source.

use preconfirmation_types::Address;

use super::overrides::merge;
use super::*;

fn preconfers_toml() -> &'static str {
    "[lookahead]\npreconfers = [\"0x00000000000000000000000000000000000000aa\"]\n"
}

fn write(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Loads `text` as the config file, with no flags and no environment.
fn load_file(text: &str) -> Result<NodeConfig, NodeError> {
    let dir = tempfile::tempdir().unwrap();
    NodeConfig::load(Some(&write(&dir, text)), &[], Vec::new())
}

/// A config file whose `[sdk.network]` holds `line` is refused with an error naming `key`.
fn assert_network_line_refused(line: &str, key: &str) {
    let err = load_file(&format!("{}[sdk.network]\n{line}\n", preconfers_toml())).unwrap_err();
    assert!(err.to_string().contains(key), "{err}");
}

#[test]
fn nat_extip_sets_the_enr_address_and_the_defaults_listen_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, preconfers_toml());
    let load = |flags: Vec<(String, String)>| {
        NodeConfig::load(Some(&path), &flags, Vec::<(String, String)>::new())
    };
    let c = load(Vec::new()).unwrap();
    assert_eq!(
        c.sdk.network.listen_addr.to_string(),
        "/ip4/0.0.0.0/tcp/9222"
    );
    assert_eq!(c.sdk.network.discv5_port, None, "UDP takes the TCP port");
    assert_eq!(c.http.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(c.rpc.addr.ip().to_string(), "127.0.0.1");
    assert_eq!(c.sdk.network.enr.address, None);

    let c = load(nat_overrides("extip:203.0.113.9").unwrap()).unwrap();
    assert_eq!(
        c.sdk.network.enr.address,
        Some("203.0.113.9".parse().unwrap())
    );
    assert!(!c.sdk.network.enr.votes_update());
    let c = load(nat_overrides("extip:203.0.113.9,2001:db8::9").unwrap()).unwrap();
    assert_eq!(
        c.sdk.network.enr.address6,
        Some("2001:db8::9".parse().unwrap())
    );
    let c = load(nat_overrides("none").unwrap()).unwrap();
    assert!(!c.sdk.network.enr.auto_update);
    assert!(nat_overrides("any").unwrap().is_empty());
    for bad in [
        "extip:",
        "extip:host.example",
        "upnp",
        "extip:1.2.3.4,5.6.7.8",
    ] {
        let err = nat_overrides(bad).unwrap_err().to_string();
        assert!(err.contains("--nat"), "{bad}: {err}");
    }
    // The ENR keys are checked at load: 0.0.0.0 is nobody's address.
    let err = load(nat_overrides("extip:0.0.0.0").unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("enr.address 0.0.0.0"), "{err}");
    let err = load(vec![("sdk.network.enr.tcp_port".into(), "0".into())])
        .unwrap_err()
        .to_string();
    assert!(err.contains("enr.tcp_port"), "{err}");
}

#[test]
fn file_then_env_then_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        &format!(
            "{}[sdk.network]\nmax_peers = 10\ntarget_peers = 11\nmax_pending_incoming = 12\n",
            preconfers_toml()
        ),
    );
    let flags = vec![(
        "sdk.network.max_pending_incoming".to_string(),
        "22".to_string(),
    )];
    let env = vec![
        (
            "PRECONF__SDK__NETWORK__TARGET_PEERS".to_string(),
            "31".to_string(),
        ),
        (
            "PRECONF__SDK__NETWORK__MAX_PENDING_INCOMING".to_string(),
            "32".to_string(),
        ),
        ("UNRELATED".to_string(), "x".to_string()),
    ];
    let config = NodeConfig::load(Some(&path), &flags, env).unwrap();
    assert_eq!(config.sdk.network.max_peers, 10, "file beats default");
    assert_eq!(config.sdk.network.target_peers, 31, "env beats file");
    assert_eq!(
        config.sdk.network.max_pending_incoming, 22,
        "flag beats env"
    );
}

#[test]
fn named_env_and_typed_values() {
    let env = vec![
        ("PRECONF_HTTP_ADDR".to_string(), "127.0.0.1:1234".to_string()),
        (
            "PRECONF_PRECONFERS".to_string(),
            "0x00000000000000000000000000000000000000aa, 0x00000000000000000000000000000000000000bb"
                .to_string(),
        ),
        ("PRECONF_DATA_DIR".to_string(), "/tmp/x".to_string()),
    ];
    let config = NodeConfig::load(None, &[], env).unwrap();
    assert_eq!(config.http.addr, "127.0.0.1:1234".parse().unwrap());
    assert_eq!(config.lookahead.preconfers.len(), 2);
    assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
}

#[test]
fn bad_value_names_the_key() {
    assert_network_line_refused("max_peers = \"many\"", "sdk.network.max_peers");
}

#[test]
fn unknown_key_is_refused() {
    assert_network_line_refused("max_peer = 3", "sdk.network.max_peer");
}

#[test]
fn missing_preconfers_is_a_clear_error() {
    let err = NodeConfig::load(None, &[], Vec::new()).unwrap_err();
    assert!(err.to_string().contains("lookahead.preconfers"), "{err}");
}

#[test]
fn broken_toml_is_an_error_not_a_panic() {
    assert!(matches!(
        load_file("[sdk\nmax = "),
        Err(NodeError::Config { .. })
    ));
}

#[test]
fn file_tables_merge_and_other_values_replace() {
    let mut base: toml::Table = "a = { x = 1, y = [1, 2], t = { z = 1 } }\nb = 1"
        .parse()
        .unwrap();
    let over: toml::Table = "a = { y = [3], t = 5 }\nc = { d = 1 }".parse().unwrap();
    merge(&mut base, over);
    let want: toml::Table = "a = { x = 1, y = [3], t = 5 }\nb = 1\nc = { d = 1 }"
        .parse()
        .unwrap();
    assert_eq!(base, want);
}

#[test]
fn unknown_key_from_a_flag_or_variable_is_refused() {
    let flags = vec![("sdk.network.max_peer".to_string(), "3".to_string())];
    let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
    assert_eq!(err.to_string(), "config: sdk.network.max_peer: unknown key");
    let env = vec![("PRECONF__SDK__BOGUS".to_string(), "1".to_string())];
    let err = NodeConfig::load(None, &[], env).unwrap_err();
    assert_eq!(err.to_string(), "config: sdk.bogus: unknown key");
}

#[test]
fn one_setting_has_one_key() {
    // The network's chain id and caps are the SDK's chain's: a second key for them would be
    // accepted and silently overwritten at start.
    for key in [
        "sdk.network.chain_id",
        "sdk.network.limits.max_txlist_bytes",
    ] {
        let flags = vec![(key.to_string(), "5".to_string())];
        let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("unknown key"), "{key}: {err}");
    }
    let flags = vec![
        ("sdk.chain.chain_id".to_string(), "5".to_string()),
        (
            "lookahead.preconfers".to_string(),
            "0x00000000000000000000000000000000000000aa".to_string(),
        ),
    ];
    let config = NodeConfig::load(None, &flags, Vec::new()).unwrap();
    assert_eq!(config.sdk.effective_network().chain_id, 5);
}

#[test]
fn durations_are_written_with_a_unit() {
    let flags = vec![
        ("l1.poll_interval".to_string(), "1m 30s".to_string()),
        (
            "lookahead.preconfers".to_string(),
            "0x00000000000000000000000000000000000000aa".to_string(),
        ),
    ];
    let config = NodeConfig::load(None, &flags, Vec::new()).unwrap();
    assert_eq!(config.l1.poll_interval, Duration::from_secs(90));
    let flags = vec![("l1.poll_interval".to_string(), "2000".to_string())];
    let err = NodeConfig::load(None, &flags, Vec::new()).unwrap_err();
    assert!(
        err.to_string().starts_with("config: l1.poll_interval:")
            && err.to_string().contains("500ms"),
        "{err}"
    );
}

#[test]
fn a_lone_key_keeps_the_rest_of_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let partial = write(
        &dir,
        &format!("{}[sdk.chain]\nchain_id = 5\n", preconfers_toml()),
    );
    let other = tempfile::tempdir().unwrap();
    let full = write(&other, preconfers_toml());
    let chain_id = || vec![("sdk.chain.chain_id".to_string(), "5".to_string())];
    for (source, config) in [
        ("file", NodeConfig::load(Some(&partial), &[], Vec::new())),
        (
            "flag",
            NodeConfig::load(Some(&full), &chain_id(), Vec::new()),
        ),
        (
            "env",
            NodeConfig::load(
                Some(&full),
                &[],
                vec![("PRECONF_CHAIN_ID".to_string(), "5".to_string())],
            ),
        ),
    ] {
        let config = config.unwrap_or_else(|e| panic!("{source}: {e}"));
        let mut want = NodeConfig::default().sdk.chain;
        want.chain_id = 5;
        assert_eq!(config.sdk.chain, want, "{source}");
    }
}

#[test]
fn optional_text_keys_stay_strings() {
    let hash = format!("0x{}1", "0".repeat(63));
    let flags = vec![
        ("sdk.anchor.preconfirmation_hash".to_string(), hash.clone()),
        (
            "lookahead.preconfers".to_string(),
            "0x0000000000000000000000000000000000000011".to_string(),
        ),
    ];
    let env = vec![("PRECONF_PRECONFER_KEY_FILE".to_string(), "123".to_string())];
    let config = NodeConfig::load(None, &flags, env).unwrap();
    assert_eq!(
        config.sdk.anchor.preconfirmation_hash,
        Some(hash.parse().unwrap())
    );
    assert_eq!(config.preconfer_key_file, Some(PathBuf::from("123")));
}

/// Base of every case: the one key without a usable default (`validate` refuses an empty
/// schedule), given in the file. Digits only, so the checksummed form is the same text.
const BASE_PRECONFER: &str = "0x0000000000000000000000000000000000000011";

/// Keys whose new value cannot be derived from the default's type, as TOML literals: an
/// enum, arrays that are empty by default, and `Option`s (absent from the defaults).
const SPECIAL: &[(&str, &str)] = &[
    ("log_format", r#""json""#),
    ("preconfer_key_file", r#""/tmp/preconfer.key""#),
    ("rpc.jwt_secret_file", r#""/tmp/jwt.hex""#),
    (
        "lookahead.preconfers",
        r#"["0x0000000000000000000000000000000000000022"]"#,
    ),
    ("sdk.network.static_peers", r#"["/ip4/127.0.0.1/tcp/9000"]"#),
    ("sdk.network.bootnodes", r#"["enr:-test"]"#),
    // The discv5 port and the ENR's address and ports are unset by default.
    ("sdk.network.discv5_port", "9300"),
    ("sdk.network.enr.address", r#""203.0.113.9""#),
    ("sdk.network.enr.address6", r#""2001:db8::9""#),
    ("sdk.network.enr.tcp_port", "30303"),
    ("sdk.network.enr.udp_port", "30304"),
    // Unset by default (taken from the L1's chain id).
    ("l1.beacon_genesis_timestamp", "1742213400"),
    // Up: the default is the smallest valid frame cap (the largest message + framing).
    ("sdk.network.gossip.max_transmit_size", "2098213"),
    // A share between 0 and 1 whose default is 0: up, not down.
    ("sdk.network.gossip.gossip_factor", "0.25"),
    // Leading zeros: a raw `--set`/env value must stay a string, not become the integer 1.
    (
        "sdk.anchor.preconfirmation_hash",
        r#""0x0000000000000000000000000000000000000000000000000000000000000001""#,
    ),
];

/// Keys no single override can change to a valid config, so they are not covered.
const NOT_ALONE: &[&str] = &[
    // The default is the protocol maximum (higher is refused) and equals the default
    // `sdk.catchup.page_size`, which must not exceed it (lower is refused).
    "sdk.chain.limits.max_commitments_per_response",
    // The other values need their contract's address too (`l1_whitelist_needs_the_contract`,
    // `l1_lookahead_needs_the_store_and_slots_that_divide_an_l1_slot` check them).
    "lookahead.source",
];

/// A valid value different from `default`, derived from its type.
fn new_value(key: &str, default: Option<&Value>) -> Value {
    if let Some((_, literal)) = SPECIAL.iter().find(|(k, _)| *k == key) {
        let mut t: toml::Table = format!("v = {literal}").parse().unwrap();
        return t.remove("v").unwrap();
    }
    match default {
        Some(Value::Boolean(b)) => Value::Boolean(!b),
        // Down rather than up: several integers are capped at their default. 0 and 1 go up,
        // as many must be positive.
        Some(Value::Integer(i)) => Value::Integer(if *i > 1 { i - 1 } else { i + 1 }),
        // Durations move by one millisecond, down where they can (as integers do).
        Some(Value::String(s)) if duration::parse(s).is_ok() => {
            let d = duration::parse(s).unwrap();
            let ms = Duration::from_millis(1);
            let moved = if d > ms { d - ms } else { d + ms };
            Value::String(humantime::format_duration(moved).to_string())
        }
        // Scaling keeps signs and the order of the scoring thresholds.
        Some(Value::Float(f)) => Value::Float(if *f == 0.0 { -0.5 } else { f * 0.75 }),
        Some(Value::String(s)) => Value::String(bump(s)),
        other => panic!("{key}: no value derivable from {other:?}; add it to SPECIAL"),
    }
}

/// `s` with its last digit incremented (ports, ids, hex), else with `x` appended (paths).
fn bump(s: &str) -> String {
    let mut out = s.to_string();
    let last = out.pop().unwrap();
    match last.to_digit(16) {
        Some(d) if last.is_ascii_digit() => out.push(char::from_digit((d + 1) % 10, 10).unwrap()),
        Some(d) if s.starts_with("0x") => out.push(char::from_digit((d + 1) % 16, 16).unwrap()),
        _ => {
            out.push(last);
            out.push('x');
        }
    }
    out
}

/// The raw text of `value` as a flag or variable takes it.
fn raw(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(raw).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn lookup<'a>(tree: &'a toml::Table, key: &str) -> Option<&'a Value> {
    let (last, parents) = key
        .rsplit_once('.')
        .map_or((key, None), |(p, l)| (l, Some(p)));
    let table = match parents {
        None => tree,
        Some(p) => p
            .split('.')
            .try_fold(tree, |t, part| t.get(part)?.as_table())?,
    };
    table.get(last)
}

fn insert(tree: &mut toml::Table, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, parents) = parts.split_last().unwrap();
    let mut table = tree;
    for part in parents {
        table = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Default::default()))
            .as_table_mut()
            .unwrap();
    }
    table.insert(last.to_string(), value);
}

/// One load: source name, file, flags, environment.
type Case<'a> = (
    String,
    &'a Path,
    Vec<(String, String)>,
    Vec<(String, String)>,
);

#[test]
fn l1_whitelist_needs_the_contract() {
    let mut config = NodeConfig::default();
    config.lookahead.source = ScheduleSource::L1Whitelist;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("l1.whitelist_address"), "{err}");
    config.l1.whitelist_address = Address::repeat_byte(1);
    assert!(config.validate().is_ok(), "no static preconfers needed");
    config.lookahead.slot_duration_secs = 5;
    let err = config.validate().unwrap_err().to_string();
    assert!(
        err.contains("l1.slots_per_epoch"),
        "384 s is no multiple of 5: {err}"
    );
    config.lookahead.slot_duration_secs = 2;
    config.l1.rpc_url = "127.0.0.1:8545".into();
    assert!(config
        .validate()
        .unwrap_err()
        .to_string()
        .contains("l1.rpc_url"));
}

#[test]
fn l1_lookahead_needs_the_store_and_slots_that_divide_an_l1_slot() {
    let mut config = NodeConfig::default();
    config.lookahead.source = ScheduleSource::L1Lookahead;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("l1.lookahead_store_address"), "{err}");
    config.l1.lookahead_store_address = Address::repeat_byte(1);
    assert!(config.validate().is_ok(), "no whitelist or genesis needed");
    config.lookahead.slot_duration_secs = 5;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("lookahead.slot_duration_secs"), "{err}");
    config.lookahead.slot_duration_secs = 3;
    assert!(config.validate().is_ok(), "3 s divides the 12 s L1 slot");
    config.l1.max_log_range_blocks = 31;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("max_log_range_blocks"), "{err}");
    config.l1.max_log_range_blocks = 32;
    config.l1.max_calls_per_poll = 7;
    assert!(
        config.validate().is_err(),
        "fewer calls than one epoch's reads"
    );
    config.l1.max_calls_per_poll = 8;
    config.l1.rpc_url = "ws://127.0.0.1:8545".into();
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("l1.rpc_url"), "{err}");
}

/// Sets every leaf key on its own from every source (a file holding that key, plus
/// `BASE_PRECONFER` in its own table; the named flag; `--set`; the named and the generic
/// variable) and checks that it loads, that the key has the new value and that every other
/// key keeps its default. A key that cannot be covered fails the test unless it is listed,
/// with its reason, in `NOT_ALONE`.
#[test]
fn every_config_key_overrides_alone() {
    let Ok(Value::Table(defaults)) = Value::try_from(NodeConfig::default()) else {
        panic!("defaults serialise to a table")
    };
    let preconfers = Value::Array(vec![Value::String(BASE_PRECONFER.into())]);
    let mut base = toml::Table::new();
    insert(&mut base, "lookahead.preconfers", preconfers.clone());
    let mut base_tree = defaults.clone();
    insert(&mut base_tree, "lookahead.preconfers", preconfers);

    let keys = docs::leaf_keys();
    let mut default_leaves = Vec::new();
    docs::table_leaves(&defaults, "", &mut default_leaves);
    assert!(keys.len() > 40, "expected the whole tree, got {keys:?}");
    for (key, _) in &default_leaves {
        assert!(
            keys.contains(key),
            "{key} is a default key but not documented"
        );
    }
    for key in NOT_ALONE
        .iter()
        .chain(SPECIAL.iter().map(|(k, _)| k))
        .chain(OVERRIDES.iter().map(|o| &o.key))
    {
        assert!(keys.iter().any(|k| k == key), "stale exception {key}");
    }

    let dir = tempfile::tempdir().unwrap();
    let base_path = write(&dir, &toml::to_string(&base).unwrap());
    let base_path = base_path.as_path();
    let mut covered = 0;
    let mut loads = 0;
    for key in &keys {
        if NOT_ALONE.contains(&key.as_str()) {
            continue;
        }
        let value = new_value(key, lookup(&defaults, key));
        assert_ne!(
            lookup(&base_tree, key),
            Some(&value),
            "{key}: value not new"
        );
        let mut expected = base_tree.clone();
        insert(&mut expected, key, value.clone());

        let mut file = if key == "lookahead.preconfers" {
            toml::Table::new()
        } else {
            base.clone()
        };
        insert(&mut file, key, value.clone());
        let file_path = dir.path().join("key.toml");
        std::fs::write(&file_path, toml::to_string(&file).unwrap()).unwrap();
        let file_path = file_path.as_path();

        let pair = || vec![(key.clone(), raw(&value))];
        let generic = format!(
            "{GENERIC_ENV_PREFIX}{}",
            key.replace('.', "__").to_uppercase()
        );
        let mut cases: Vec<Case<'_>> = vec![
            ("file".into(), file_path, vec![], vec![]),
            ("--set".into(), base_path, pair(), vec![]),
            (
                generic.clone(),
                base_path,
                vec![],
                vec![(generic, raw(&value))],
            ),
        ];
        if let Some(o) = OVERRIDES.iter().find(|o| o.key == key) {
            // The binary turns the named flag into this very pair (main.rs `overrides`).
            cases.push(("named flag".into(), base_path, pair(), vec![]));
            cases.push((
                o.env.into(),
                base_path,
                vec![],
                vec![(o.env.into(), raw(&value))],
            ));
        }
        for (source, path, flags, env) in cases {
            let config = NodeConfig::load(Some(path), &flags, env)
                .unwrap_or_else(|e| panic!("{key} = {value} from {source}: {e}"));
            let Ok(Value::Table(got)) = Value::try_from(&config) else {
                panic!("config serialises to a table")
            };
            assert_eq!(lookup(&got, key), Some(&value), "{key} from {source}");
            let mut got_leaves = Vec::new();
            docs::table_leaves(&got, "", &mut got_leaves);
            let mut want_leaves = Vec::new();
            docs::table_leaves(&expected, "", &mut want_leaves);
            let changed: Vec<_> = got_leaves
                .iter()
                .filter(|l| !want_leaves.contains(l))
                .chain(want_leaves.iter().filter(|l| !got_leaves.contains(l)))
                .collect();
            assert!(
                changed.is_empty(),
                "{key} from {source} changed others: {changed:?}"
            );
            loads += 1;
        }
        covered += 1;
    }
    assert_eq!(
        covered,
        keys.len() - NOT_ALONE.len(),
        "every key but the commented exceptions is covered"
    );
    // file, --set and the generic variable for every key; the named flag and variable
    // for each of OVERRIDES.
    assert_eq!(
        loads,
        3 * covered + 2 * OVERRIDES.len(),
        "every source was loaded"
    );
}
