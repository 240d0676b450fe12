//! Taiko's preconfirmation-driver API on real in-process nodes (redb data dirs, libp2p and
//! HTTP on 127.0.0.1): `preconf_publishBlock`, `preconf_getStatus`, `preconf_tip` and
//! `preconf_getPreconfSlotInfo`, called with the bytes a sidecar written for Taiko's client
//! sends, answered with the bytes it expects, and every error code it knows.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use alloy_rpc_types_engine::{Claims, JwtSecret};
use common::*;
use p2p::testkit::ChainBuilder;
use p2p::{CommitmentSource, SdkEvent};
use preconf_node_core::rpc::{self, txlist};
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_types::reexports::alloy_primitives::keccak256;
use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::{
    secret_key_to_address, Address, PreconfCommitment, SignedCommitment, WireMessage, B256, U256,
};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A node with no peers in a fresh data dir, its loopback config changed by `configure`.
async fn lone_node(
    builder: &ChainBuilder,
    configure: impl FnOnce(&mut NodeConfig),
) -> (TempDir, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = node_config(dir.path(), builder, Vec::new());
    configure(&mut config);
    (dir, start(config).await)
}

fn rpc_addr(node: &Node) -> SocketAddr {
    node.rpc_addr().expect("RPC enabled")
}

/// `POST /` of `body` (JSON) with an optional `Authorization` value, as a sidecar's HTTP
/// client sends it.
async fn post(addr: SocketAddr, body: &str, authorization: Option<&str>) -> HttpResponse {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_request(addr, &request).await
}

/// A JSON-RPC call with id 1 and one positional parameter (none when `param` is `None`), as
/// text.
fn call(method: &str, param: Option<Value>) -> String {
    let params = param.map_or(json!([]), |p| json!([p]));
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

/// `call`'s result, or panics with the error.
async fn result(addr: SocketAddr, method: &str, param: Option<Value>) -> Value {
    let response = post(addr, &call(method, param), None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    assert!(body.get("error").is_none(), "{method}: {body}");
    body["result"].clone()
}

/// `call`'s error: its code and `data.reason`. A `null` `param` sends no parameter.
async fn refusal(addr: SocketAddr, method: &str, param: Value) -> (i64, Option<String>) {
    let param = (!param.is_null()).then_some(param);
    let response = post(addr, &call(method, param), None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    let error = &body["error"];
    let code = error["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("{method}: expected an error, got {body}"));
    let reason = error["data"]["reason"].as_str().map(str::to_string);
    (code, reason)
}

/// The `preconf_publishBlock` parameter for `commitment` with `txlist` (its hash claimed
/// as `keccak256(txlist)`).
fn block_param(commitment: &[u8], txlist: &[u8]) -> Value {
    json!({
        "commitment": to_hex(commitment),
        "txListHash": keccak256(txlist),
        "txList": to_hex(txlist),
    })
}

/// A valid tx list in Taiko's form: two typed transactions and a legacy one.
fn taiko_txlist(seed: u8) -> Vec<u8> {
    let typed = [0x02, 0xc5, seed, 0x80, 0x80, 0x80, 0x80];
    let legacy = [0xc4, seed, 0x80, 0x80, 0x80];
    txlist::encode(&[&typed[..], &legacy[..], &typed[..]])
}

/// The preconfer `builder` elects for its next slot.
fn elected_key(builder: &ChainBuilder) -> SecretKey {
    builder
        .key_for_slot(builder.next_slot())
        .copied()
        .expect("elected key")
}

/// The next block's commitment for `txlist`, changed by `change`, signed by the elected key.
fn commitment_with(
    builder: &ChainBuilder,
    txlist: &[u8],
    change: impl FnOnce(&mut PreconfCommitment),
) -> SignedCommitment {
    let mut unsigned = builder.next_unsigned(Some(txlist));
    change(&mut unsigned);
    builder.sign_with(&elected_key(builder), unsigned)
}

/// The next event of `events` that `wanted` picks, within [`WAIT`].
async fn next_event<T>(
    events: &mut p2p::SdkEvents,
    mut wanted: impl FnMut(SdkEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = events.recv().await.expect("event stream open");
            if let Some(found) = wanted(event) {
                return found;
            }
        }
    })
    .await
    .expect("the event within the bound")
}

/// A sidecar publishes a block in Taiko's form over plain HTTP; the node answers with the
/// hashes, moves its tip, and gossips commitment and tx list to a second node, which stores
/// both. An EOP-only commitment (no tx list to execute) follows with an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_block_is_answered_and_reaches_the_other_node() {
    let mut builder = builder();
    let dir_a = tempfile::tempdir().expect("tempdir");
    let dir_b = tempfile::tempdir().expect("tempdir");
    let a = start(node_config(dir_a.path(), &builder, Vec::new())).await;
    let b = start(node_config(
        dir_b.path(),
        &builder,
        vec![p2p_addr(&a).await],
    ))
    .await;
    a.sdk()
        .wait_for_gossip_peers(1, WAIT)
        .await
        .expect("B subscribed to A's topics");
    let mut b_events = b.sdk().subscribe();
    let addr = rpc_addr(&a);

    let txlist = taiko_txlist(7);
    let block = builder.next_block(Some(txlist.clone()));
    let commitment = block.commitment.to_ssz();
    let txlist_hash = keccak256(&txlist);
    // The request exactly as a sidecar's alloy types serialise it.
    let request = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"preconf_publishBlock","params":[{{"commitment":"{}","txListHash":"{txlist_hash}","txList":"{}"}}]}}"#,
        to_hex(&commitment),
        to_hex(&txlist)
    );
    let response = post(addr, &request, None).await;
    assert_eq!(response.status, 200);
    assert_eq!(
        response.body,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"commitmentHash":"{}","txListHash":"{txlist_hash}"}}}}"#,
            keccak256(&commitment)
        )
    );
    let tip = post(addr, &call(rpc::TIP, None), None).await;
    assert_eq!(tip.body, r#"{"jsonrpc":"2.0","id":1,"result":"0x1"}"#);

    // B has the commitment from gossip and its tx list (announced in either order).
    let (mut got_commitment, mut got_txlist) = (false, false);
    next_event(&mut b_events, |e| {
        match e {
            SdkEvent::Commitment {
                commitment: c,
                source: CommitmentSource::Gossip(_),
                ..
            } if c == block.commitment => got_commitment = true,
            SdkEvent::RawTxList { hash, .. } if hash == txlist_hash => got_txlist = true,
            _ => {}
        }
        (got_commitment && got_txlist).then_some(())
    })
    .await;
    let stored = result(rpc_addr(&b), rpc::GET_RAW_TXLIST, Some(json!(txlist_hash))).await;
    assert_eq!(stored, json!(to_hex(&txlist)));
    // B's tip follows once its status has the new head (announced just after the event).
    let mut b_status = b.sdk().watch_status();
    tokio::time::timeout(WAIT, b_status.wait_for(|s| s.head_block_number == 1))
        .await
        .expect("B's head moves within the bound")
        .expect("B's status is published");
    assert_eq!(result(rpc_addr(&b), rpc::TIP, None).await, json!("0x1"));

    // A pure EOP: eop set, rawTxListHash zero; the tx list is the empty string.
    let eop = builder.next_block(None);
    assert!(eop.commitment.preconf().eop);
    let eop_bytes = eop.commitment.to_ssz();
    let answer = result(addr, rpc::PUBLISH_BLOCK, Some(block_param(&eop_bytes, &[]))).await;
    assert_eq!(
        answer,
        json!({"commitmentHash": keccak256(&eop_bytes), "txListHash": keccak256([])})
    );
    next_event(&mut b_events, |e| match e {
        SdkEvent::Commitment { commitment: c, .. } if c == eop.commitment => Some(()),
        _ => None,
    })
    .await;

    // A's status names B as its one peer.
    let status = result(addr, rpc::GET_STATUS, None).await;
    assert_eq!(status["preconfTip"], json!("0x2"));
    assert_eq!(status["peerCount"], json!(1));
    assert_eq!(status["peerId"], json!(a.sdk().local_peer_id().to_string()));
    assert_eq!(status["eventSyncTip"], Value::Null);
    b.shutdown().await;
    a.shutdown().await;
}

/// `preconf_getStatus` as bytes: `isSyncedWithInbox` is catch-up live and the schedule
/// knowing now; `eventSyncTip` is null; `peerCount` a JSON number; `peerId` base58.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_says_synced_only_when_live_with_a_known_schedule() {
    let builder = builder();
    // Catch-up off: live from the start; the static schedule knows now.
    let (_dir, live) = lone_node(&builder, |c| c.sdk.catchup.enabled = false).await;
    let response = post(rpc_addr(&live), &call(rpc::GET_STATUS, None), None).await;
    let peer_id = live.sdk().local_peer_id().to_string();
    assert!(peer_id.starts_with("16Uiu2"), "base58 of a secp256k1 key");
    assert_eq!(
        response.body,
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{{"isSyncedWithInbox":true,"eventSyncTip":null,"preconfTip":"0x0","peerCount":0,"peerId":"{peer_id}"}}}}"#
        )
    );
    live.shutdown().await;

    // Catch-up still waiting for peers (for ten minutes): not synced.
    let (_dir, waiting) = lone_node(&builder, |c| {
        c.sdk.catchup.peer_wait = Duration::from_secs(600);
    })
    .await;
    let status = result(rpc_addr(&waiting), rpc::GET_STATUS, None).await;
    assert_eq!(status["isSyncedWithInbox"], json!(false));
    waiting.shutdown().await;

    // Live, but the schedule starts tomorrow: not synced.
    let (_dir, early) = lone_node(&builder, |c| {
        c.sdk.catchup.enabled = false;
        c.lookahead.genesis_timestamp = unix_now() + 86_400;
    })
    .await;
    let status = result(rpc_addr(&early), rpc::GET_STATUS, None).await;
    assert_eq!(status["isSyncedWithInbox"], json!(false));
    early.shutdown().await;
}

/// Seconds since the Unix epoch.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `preconf_getPreconfSlotInfo` answers from the static schedule: windows of 4 slots of 2 s
/// from genesis 1 000 000, signers rotating `0x11…`, `0x22…`, `0x33…`; a window's end is the
/// first second after it. Before genesis the schedule cannot answer (-32006); a timestamp
/// that is not a `u64` is invalid params.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_info_is_the_schedules_answer() {
    let signers = [0x11u8, 0x22, 0x33].map(Address::repeat_byte);
    let (_dir, node) = lone_node(&builder(), |c| {
        c.lookahead.preconfers = signers.to_vec();
        c.lookahead.genesis_timestamp = 1_000_000;
        c.lookahead.slot_duration_secs = 2;
        c.lookahead.slots_per_window = 4;
        c.sdk.catchup.enabled = false;
    })
    .await;
    let addr = rpc_addr(&node);
    let response = post(
        addr,
        r#"{"jsonrpc":"2.0","id":1,"method":"preconf_getPreconfSlotInfo","params":["0xf4240"]}"#,
        None,
    )
    .await;
    assert_eq!(
        response.body,
        r#"{"jsonrpc":"2.0","id":1,"result":{"signer":"0x1111111111111111111111111111111111111111","submissionWindowEnd":"0xf4248"}}"#
    );
    // (timestamp, signer, window end): each window's first and last second, and the next.
    let g = 1_000_000u64;
    for (t, signer, end) in [
        (g, 0, g + 8),
        (g + 7, 0, g + 8),
        (g + 8, 1, g + 16),
        (g + 15, 1, g + 16),
        (g + 16, 2, g + 24),
        (g + 24, 0, g + 32),
        (g + 8 * 3000 + 5, 0, g + 8 * 3001),
    ] {
        let info = result(addr, rpc::GET_PRECONF_SLOT_INFO, Some(json!(U256::from(t)))).await;
        assert_eq!(
            info,
            json!({"signer": signers[signer], "submissionWindowEnd": U256::from(end)}),
            "t = genesis + {}",
            t - g
        );
    }
    // A JSON number is a timestamp too.
    let info = result(addr, rpc::GET_PRECONF_SLOT_INFO, Some(json!(g + 9))).await;
    assert_eq!(info["signer"], json!(signers[1]));
    assert_eq!(
        refusal(addr, rpc::GET_PRECONF_SLOT_INFO, json!(U256::from(g - 1))).await,
        (-32006, Some("schedule_unknown".into()))
    );
    assert_eq!(
        refusal(
            addr,
            rpc::GET_PRECONF_SLOT_INFO,
            json!(U256::from(1u128 << 64))
        )
        .await,
        (-32602, Some("timestamp_out_of_range".into()))
    );
    for bad in [json!("soon"), json!(-1), json!(1.5), json!({"t": 1})] {
        let (code, _) = refusal(addr, rpc::GET_PRECONF_SLOT_INFO, bad.clone()).await;
        assert_eq!(code, -32602, "{bad}");
    }
    node.shutdown().await;
}

/// The zlib bomb and the other malformed requests: each refused with its code and reason,
/// nothing stored; the node goes on to accept a valid block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reachable_error_code_of_publish_block() {
    let mut builder = builder();
    let cap = 64 * 1024;
    let (_dir, node) = lone_node(&builder, |c| c.sdk.chain.limits.max_txlist_bytes = cap).await;
    let addr = rpc_addr(&node);
    let publish = |param: Value| refusal(addr, rpc::PUBLISH_BLOCK, param);
    let txlist = taiko_txlist(1);
    let valid = commitment_with(&builder, &txlist, |_| {});

    // -32602: not the request object, bad hex.
    for bad in [
        json!("0x00"),
        json!({"commitment": to_hex(&valid.to_ssz())}),
        json!({"commitment": "0xzz", "txListHash": keccak256(&txlist), "txList": to_hex(&txlist)}),
        json!({"commitment": to_hex(&valid.to_ssz()), "txListHash": "0x12", "txList": to_hex(&txlist)}),
        json!({"commitment": to_hex(&valid.to_ssz()), "txListHash": keccak256(&txlist), "txList": "0x1"}),
    ] {
        assert_eq!(publish(bad.clone()).await.0, -32602, "{bad}");
    }

    // -32001: not a SignedCommitment.
    for bytes in [vec![1u8; 100], vec![0xff; 382], vec![0; 383]] {
        assert_eq!(
            publish(block_param(&bytes, &txlist)).await,
            (-32001, Some("malformed".into())),
            "{} bytes",
            bytes.len()
        );
    }
    // -32002: over the cap, or not hashing to txListHash.
    let big = vec![0x61; cap + 1];
    assert_eq!(
        publish(block_param(&valid.to_ssz(), &big)).await,
        (-32002, Some("txlist_too_large".into()))
    );
    let mut param = block_param(&valid.to_ssz(), &txlist);
    param["txListHash"] = json!(B256::repeat_byte(9));
    assert_eq!(
        publish(param).await,
        (-32002, Some("txlist_hash_mismatch".into()))
    );
    // -32001: the commitment commits to another list.
    let other = taiko_txlist(2);
    assert_eq!(
        publish(block_param(&valid.to_ssz(), &other)).await,
        (-32001, Some("raw_txlist_hash_mismatch".into()))
    );
    // -32005: signed by a preconfer the schedule does not name.
    let elected = secret_key_to_address(&elected_key(&builder));
    let intruder = *builder
        .keys()
        .iter()
        .find(|k| secret_key_to_address(k) != elected)
        .expect("another key");
    let wrongly_signed = builder.sign_with(&intruder, builder.next_unsigned(Some(&txlist)));
    assert_eq!(
        publish(block_param(&wrongly_signed.to_ssz(), &txlist)).await,
        (-32005, Some("wrong_signer".into()))
    );
    // -32001: the right signer with another window end, or another slasher.
    let wrong_end = commitment_with(&builder, &txlist, |c| {
        c.preconf.submission_window_end += U256::from(1);
    });
    assert_eq!(
        publish(block_param(&wrong_end.to_ssz(), &txlist)).await,
        (-32001, Some("wrong_window_end".into()))
    );
    let wrong_slasher = commitment_with(&builder, &txlist, |c| {
        c.slasher_address = Address::repeat_byte(0xee);
    });
    assert_eq!(
        publish(block_param(&wrong_slasher.to_ssz(), &txlist)).await,
        (-32001, Some("wrong_slasher".into()))
    );
    // -32006: a timestamp before the schedule's genesis.
    let before_genesis = commitment_with(&builder, &txlist, |c| {
        c.preconf.timestamp = U256::from(1_000u64);
    });
    assert_eq!(
        publish(block_param(&before_genesis.to_ssz(), &txlist)).await,
        (-32006, Some("schedule_unknown".into()))
    );
    // -32002: the list is not Taiko's form. A zlib bomb: 16 KiB inflating to 16 MiB, 256
    // times the cap, refused once it passes the cap.
    let bomb = txlist::compress(&vec![0u8; 16 << 20]);
    assert!(bomb.len() < cap / 2);
    let not_rlp = txlist::compress(b"not an RLP list");
    let not_zlib = vec![0xc0];
    for (what, list, reason) in [
        ("bomb", bomb, "txlist_inflates_beyond_cap"),
        ("RLP string", not_rlp, "txlist_bad_rlp"),
        ("raw RLP", not_zlib, "txlist_bad_zlib"),
    ] {
        let signed = commitment_with(&builder, &list, |_| {});
        assert_eq!(
            publish(block_param(&signed.to_ssz(), &list)).await,
            (-32002, Some(reason.into())),
            "{what}"
        );
    }
    assert_eq!(
        result(addr, rpc::TIP, None).await,
        json!("0x0"),
        "nothing stored"
    );

    // Accepted; then -32003 for the same block again (stale) and for a block whose parent
    // this node does not have.
    let answer = result(
        addr,
        rpc::PUBLISH_BLOCK,
        Some(block_param(&valid.to_ssz(), &txlist)),
    )
    .await;
    assert_eq!(answer["commitmentHash"], json!(keccak256(valid.to_ssz())));
    builder.advance(&valid);
    assert_eq!(
        publish(block_param(&valid.to_ssz(), &txlist)).await,
        (-32003, Some("stale".into()))
    );
    builder.next_block(Some(taiko_txlist(3)));
    let orphan_list = taiko_txlist(4);
    let orphan = commitment_with(&builder, &orphan_list, |_| {});
    assert_eq!(
        publish(block_param(&orphan.to_ssz(), &orphan_list)).await,
        (-32003, Some("parent_unknown".into()))
    );
    assert_eq!(result(addr, rpc::TIP, None).await, json!("0x1"));

    // -32000: the SDK has stopped (the block passes every check before the SDK's).
    node.sdk().shutdown().await.expect("SDK stops");
    assert_eq!(
        publish(block_param(&orphan.to_ssz(), &orphan_list)).await,
        (-32000, Some("internal".into()))
    );
    let (code, _) = refusal(addr, rpc::GET_STATUS, json!(null)).await;
    assert_eq!(code, -32000);
    node.shutdown().await;
}

/// A block whose window ended more than `sdk.rules.window_end_grace` ago: -32004.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_of_an_ended_window_is_refused() {
    // Genesis 50 s ago, windows of 4 one-second slots: block 1's window ended ~46 s ago.
    let builder = builder();
    let (_dir, node) = lone_node(&builder, |c| {
        c.sdk.rules.window_end_grace = Duration::from_secs(5);
    })
    .await;
    let txlist = taiko_txlist(1);
    let late = commitment_with(&builder, &txlist, |_| {});
    assert_eq!(
        refusal(
            rpc_addr(&node),
            rpc::PUBLISH_BLOCK,
            block_param(&late.to_ssz(), &txlist)
        )
        .await,
        (-32004, Some("window_ended".into()))
    );
    node.shutdown().await;
}

/// `preconf_publishBlock` is guarded as the node's own publishing methods are: with
/// `rpc.jwt_secret_file` set it needs the JWT (HTTP 401 without); the three read methods
/// stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_block_needs_the_jwt_the_reads_do_not() {
    let builder = builder();
    let (dir, node) = lone_node(&builder, |c| {
        c.rpc.jwt_secret_file = Some(c.data_dir.join("rpc-secret.hex"));
    })
    .await;
    let addr = rpc_addr(&node);
    let txlist = taiko_txlist(1);
    let block = commitment_with(&builder, &txlist, |_| {});
    let request = call(
        rpc::PUBLISH_BLOCK,
        Some(block_param(&block.to_ssz(), &txlist)),
    );
    assert_eq!(post(addr, &request, None).await.status, 401);
    let forged = JwtSecret::random().encode(&Claims::default()).expect("JWT");
    let response = post(addr, &request, Some(&format!("Bearer {forged}"))).await;
    assert_eq!(response.status, 401);
    for read in [
        call(rpc::GET_STATUS, None),
        call(rpc::TIP, None),
        call(rpc::GET_PRECONF_SLOT_INFO, Some(json!("0x1"))),
    ] {
        assert_eq!(post(addr, &read, None).await.status, 200, "{read}");
    }
    assert_eq!(result(addr, rpc::TIP, None).await, json!("0x0"));
    let hex = std::fs::read_to_string(dir.path().join("rpc-secret.hex")).expect("secret");
    let secret = JwtSecret::from_hex(hex.trim()).expect("secret");
    let token = secret.encode(&Claims::default()).expect("JWT");
    let response = post(addr, &request, Some(&format!("Bearer {token}"))).await;
    assert_eq!(response.status, 200, "{}", response.body);
    let body: Value = serde_json::from_str(&response.body).expect("JSON");
    assert_eq!(
        body["result"]["txListHash"],
        json!(keccak256(&txlist)),
        "{body}"
    );
    assert_eq!(result(addr, rpc::TIP, None).await, json!("0x1"));
    node.shutdown().await;
}
