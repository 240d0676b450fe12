//! The HTTP endpoints and the JSON-RPC server of real in-process nodes (redb data dirs,
//! libp2p, HTTP and WebSocket on 127.0.0.1).

mod common;

use std::net::SocketAddr;

use alloy_rpc_types_engine::{Claims, JwtSecret};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::*;
use jsonrpsee::core::client::{ClientT, Error as ClientError, Subscription, SubscriptionClientT};
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use p2p::testkit::ChainBuilder;
use preconf_node_core::rpc;
use preconf_node_core::rpc::auth::{self as rpc_auth, UNAUTHORIZED};
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::{
    preconfirmation_hash, raw_tx_list_hash, recover_signer, secret_key_to_address,
    SignedCommitment, WireMessage, B256,
};
use serde_json::{json, Value};
use tempfile::TempDir;

fn http_client(addr: SocketAddr) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(WAIT)
        .build(format!("http://{addr}"))
        .expect("HTTP client")
}

/// `Authorization: Bearer <a JWT with iat signed with secret>`.
fn jwt_headers(secret: &JwtSecret, iat: u64) -> jsonrpsee::http_client::HeaderMap {
    let token = secret.encode(&Claims { iat, exp: None }).expect("JWT");
    let mut headers = jsonrpsee::http_client::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    headers
}

/// An HTTP client sending `Authorization: Bearer <a fresh JWT signed with secret>`.
fn http_client_with_jwt(addr: SocketAddr, secret: &JwtSecret) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(WAIT)
        .set_headers(jwt_headers(secret, Claims::default().iat))
        .build(format!("http://{addr}"))
        .expect("HTTP client")
}

/// A WebSocket whose upgrade request carries a JWT with `iat`, signed with `secret`.
async fn ws_client_with_jwt(addr: SocketAddr, secret: &JwtSecret, iat: u64) -> WsClient {
    tokio::time::timeout(
        WAIT,
        WsClientBuilder::default()
            .request_timeout(WAIT)
            .set_headers(jwt_headers(secret, iat))
            .build(format!("ws://{addr}")),
    )
    .await
    .expect("WebSocket connect within the bound")
    .expect("WebSocket client")
}

/// The secret a node keeps in `path` (32 bytes as hex).
fn read_secret(path: &std::path::Path) -> JwtSecret {
    let hex = std::fs::read_to_string(path).expect("secret file");
    JwtSecret::from_hex(hex.trim()).expect("a 32-byte hex secret")
}

/// Seconds since the Unix epoch, as the node's JWT check counts them.
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// A publishing call that got past authentication: stored (and, alone, not sent: -32012).
fn assert_published<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    if let Err(e) = result {
        let (code, message, _) = code_of::<()>(Err(e));
        assert_eq!(code, rpc::NO_PEERS, "{what}: {message}");
    }
}

async fn ws_client(addr: SocketAddr) -> WsClient {
    tokio::time::timeout(
        WAIT,
        WsClientBuilder::default()
            .request_timeout(WAIT)
            .build(format!("ws://{addr}")),
    )
    .await
    .expect("WebSocket connect within the bound")
    .expect("WebSocket client")
}

/// The JSON-RPC error code of a failed call.
fn code_of<T: std::fmt::Debug>(result: Result<T, ClientError>) -> (i32, String, Option<Value>) {
    match result {
        Err(ClientError::Call(e)) => (
            e.code(),
            e.message().to_string(),
            e.data()
                .map(|d| serde_json::from_str(d.get()).expect("data is JSON")),
        ),
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

/// A call the HTTP layer refused with 401 (a bad or missing JWT): the client reports the
/// status, not a JSON-RPC error.
fn assert_401<T: std::fmt::Debug>(result: Result<T, ClientError>, what: &str) {
    match result {
        Err(ClientError::Transport(e)) => {
            assert!(e.to_string().contains("401"), "{what}: {e}")
        }
        other => panic!("{what}: expected HTTP 401, got {other:?}"),
    }
}

/// `POST /` of a JSON-RPC `body` with an optional `Authorization` value, over HTTP/1.1 with
/// `Connection: close`; the body is read to EOF.
async fn http_post(addr: SocketAddr, body: &str, authorization: Option<&str>) -> HttpResponse {
    let auth = authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    http_request(addr, &request).await
}

/// A JSON-RPC 2.0 call as text.
fn call_json(method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

async fn next_notification(sub: &mut Subscription<Value>) -> Value {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("notification within the bound")
        .expect("subscription open")
        .expect("notification decodes")
}

/// A node with no peers in a fresh data dir (`config.data_dir`), its loopback config changed
/// by `configure`; the data dir lives as long as the returned guard.
async fn lone_node(
    builder: &ChainBuilder,
    configure: impl FnOnce(&mut NodeConfig),
) -> (TempDir, Node) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = node_config(dir.path(), builder, Vec::new());
    configure(&mut config);
    (dir, start(config).await)
}

/// The preconfer `builder` elects for its next slot.
fn elected_key(builder: &ChainBuilder) -> SecretKey {
    builder
        .key_for_slot(builder.next_slot())
        .copied()
        .expect("elected key")
}

/// A subscription of `kind` over `ws`.
async fn subscribe(ws: &WsClient, kind: &str) -> Subscription<Value> {
    ws.subscribe(rpc::SUBSCRIBE, rpc_params![kind], rpc::UNSUBSCRIBE)
        .await
        .unwrap_or_else(|e| panic!("subscribe {kind}: {e}"))
}

/// The head's block number as `client` reads it (`preconf_head` is open to all).
async fn head_number(client: &impl ClientT) -> Value {
    let head: Value = client
        .request(rpc::HEAD, rpc_params![])
        .await
        .expect("head is open");
    head["block_number"].clone()
}

fn rpc_addr(node: &Node) -> SocketAddr {
    node.rpc_addr().expect("RPC enabled")
}

fn http_addr(node: &Node) -> SocketAddr {
    node.http_addr().expect("HTTP enabled")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_status_and_metrics() {
    let (_dir, node) = lone_node(&builder(), |_| {}).await;
    let addr = http_addr(&node);

    let health = http_get(addr, "/health").await;
    assert_eq!(health.status, 200);
    assert_eq!(health.body, "ok");

    let status = http_get(addr, "/status").await;
    assert_eq!(status.status, 200);
    assert!(status
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json")));
    let json: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(
        json["peer_id"],
        json!(node.sdk().local_peer_id().to_string())
    );
    // Discovery is off in the test config: no ENR to hand out.
    assert_eq!(json["enr"], Value::Null);
    assert_eq!(json["head"]["block_number"], json!(0));
    assert!(json["head"].get("hash").is_some());
    assert!(json["head"].get("window_end").is_some());
    assert_eq!(json["peers"]["count"], json!(0));
    assert_eq!(json["storage"]["commitments"], json!(0));
    assert_eq!(json["version"], json!(env!("CARGO_PKG_VERSION")));
    assert!(json["sync"]["state"].is_string());
    assert!(json["listen_addrs"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert_eq!(json["preconfer"], Value::Null, "no key configured");

    // The RPC answers with the same document.
    let rpc_status: Value = http_client(rpc_addr(&node))
        .request(rpc::STATUS, rpc_params![])
        .await
        .expect("preconf_status");
    assert_eq!(rpc_status["peer_id"], json["peer_id"]);
    assert_eq!(rpc_status["head"], json["head"]);

    let metrics = http_get(addr, "/metrics").await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some(preconf_node_core::http::PROMETHEUS_CONTENT_TYPE)
    );
    assert!(
        metrics.body.lines().any(|l| l.starts_with("preconf_")),
        "no preconf_ metric in:\n{}",
        metrics.body
    );

    let missing = http_get(addr, "/nope").await;
    assert_eq!(missing.status, 404);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_without_recorder_is_503_and_health_follows_serving() {
    let builder = builder();
    let dir = tempfile::tempdir().expect("tempdir");
    let node = preconf_node_core::Node::start(node_config(dir.path(), &builder, Vec::new()), None)
        .await
        .expect("node starts");
    let addr = http_addr(&node);
    assert_eq!(http_get(addr, "/metrics").await.status, 503);
    node.context()
        .serving
        .store(false, std::sync::atomic::Ordering::Release);
    assert_eq!(http_get(addr, "/health").await.status, 503);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_over_rpc_reaches_the_other_node() {
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

    // B's sidecar subscribes over WebSocket before anything is published.
    let ws = ws_client(rpc_addr(&b)).await;
    let mut commitments = subscribe(&ws, "commitments").await;
    let mut txlists = subscribe(&ws, "rawTxLists").await;
    let mut txlist_hashes = subscribe(&ws, "rawTxListHashes").await;
    let mut heads = subscribe(&ws, "head").await;

    // A's sidecar publishes over plain HTTP.
    let txlist = b"a compressed tx list over json-rpc".to_vec();
    let block = builder.next_block(Some(txlist.clone()));
    let commitment_hex = to_hex(&block.commitment.to_ssz());
    let hash = preconfirmation_hash(block.commitment.preconf());
    let signer = recover_signer(&chain().domain, &block.commitment).expect("signer");
    let a_rpc = http_client(rpc_addr(&a));
    let published: Value = a_rpc
        .request(
            rpc::PUBLISH_COMMITMENT,
            rpc_params![commitment_hex.clone(), to_hex(&txlist)],
        )
        .await
        .expect("publish");
    assert_eq!(published["hash"], json!(hash));
    assert_eq!(published["block_number"], json!(1));
    assert_eq!(published["signer"], json!(signer));
    assert_eq!(published["commitment"], json!(commitment_hex));
    let head: Value = a_rpc.request(rpc::HEAD, rpc_params![]).await.expect("head");
    assert_eq!(head["block_number"], json!(1));
    assert_eq!(head["hash"], json!(hash));

    // B delivers it to its subscribers.
    let note = next_notification(&mut commitments).await;
    assert_eq!(note["commitment"], json!(commitment_hex));
    assert_eq!(note["hash"], json!(hash));
    assert_eq!(note["block_number"], json!(1));
    assert_eq!(note["signer"], json!(signer));
    assert_eq!(note["source"], json!("gossip"));
    assert_eq!(note["peer"], json!(a.sdk().local_peer_id().to_string()));
    let txlist_hash = raw_tx_list_hash(&txlist);
    let note = next_notification(&mut txlists).await;
    assert_eq!(note["hash"], json!(txlist_hash));
    assert_eq!(note["txlist"], json!(to_hex(&txlist)));
    // The hash-only kind: the same arrival, without the bytes.
    let note = next_notification(&mut txlist_hashes).await;
    assert_eq!(note, json!({"hash": txlist_hash, "block_number": 1}));
    let note = next_notification(&mut heads).await;
    assert_eq!(note["block_number"], json!(1));
    assert_eq!(note["hash"], json!(hash));

    // And serves it back by number, by hash, and the tx list by hash.
    let b_rpc = http_client(rpc_addr(&b));
    let by_number: Option<String> = b_rpc
        .request(rpc::GET_COMMITMENT, rpc_params![1])
        .await
        .expect("by number");
    assert_eq!(by_number.as_deref(), Some(commitment_hex.as_str()));
    // A hex quantity is a block number, as in Ethereum's JSON-RPC.
    let by_quantity: Option<String> = b_rpc
        .request(rpc::GET_COMMITMENT, rpc_params!["0x1"])
        .await
        .expect("by hex quantity");
    assert_eq!(by_quantity.as_deref(), Some(commitment_hex.as_str()));
    let by_hash: Option<String> = b_rpc
        .request(rpc::GET_COMMITMENT, rpc_params![hash])
        .await
        .expect("by hash");
    assert_eq!(by_hash.as_deref(), Some(commitment_hex.as_str()));
    let fetched: Option<String> = b_rpc
        .request(rpc::GET_RAW_TXLIST, rpc_params![txlist_hash])
        .await
        .expect("tx list");
    assert_eq!(fetched, Some(to_hex(&txlist)));
    let absent: Option<String> = b_rpc
        .request(rpc::GET_COMMITMENT, rpc_params![2])
        .await
        .expect("absent by number");
    assert_eq!(absent, None);
    let absent: Option<String> = b_rpc
        .request(rpc::GET_RAW_TXLIST, rpc_params![B256::repeat_byte(7)])
        .await
        .expect("absent tx list");
    assert_eq!(absent, None);

    // B's status shows A as a peer with a score.
    let status = http_get(http_addr(&b), "/status").await;
    let json: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(json["peers"]["count"], json!(1));
    assert_eq!(
        json["peers"]["list"][0]["peer_id"],
        json!(a.sdk().local_peer_id().to_string())
    );
    assert!(json["peers"]["list"][0]["score"].is_number());
    assert_eq!(json["storage"]["commitments"], json!(1));

    drop(ws);
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_params_get_documented_codes_and_the_node_keeps_serving() {
    let mut builder = builder();
    let (_dir, node) = lone_node(&builder, |_| {}).await;
    let client = http_client(rpc_addr(&node));
    let publish = |params| {
        let client = client.clone();
        async move {
            client
                .request::<Value, _>(rpc::PUBLISH_COMMITMENT, params)
                .await
        }
    };

    // Bad hex, missing prefix, wrong length, garbage SSZ (eop byte 0xff is no SSZ bool).
    let (code, ..) = code_of(publish(rpc_params!["0xzz"]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(publish(rpc_params!["abcd"]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, message, _) = code_of(publish(rpc_params![to_hex(&[1u8; 100])]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    assert!(message.contains("100 bytes"), "{message}");
    let (code, ..) = code_of(publish(rpc_params![to_hex(&[0xffu8; 382])]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(publish(rpc_params![to_hex(&[0xffu8; 4000])]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(publish(rpc_params![]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(publish(rpc_params![42]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);

    // A valid commitment with a bad tx list hex.
    let first = builder.next_block(Some(b"first".to_vec()));
    let first_hex = to_hex(&first.commitment.to_ssz());
    let (code, ..) = code_of(publish(rpc_params![first_hex.clone(), "0x0"]).await);
    assert_eq!(code, rpc::INVALID_PARAMS);

    // An unsigned commitment without a preconfer key.
    let unsigned = first.commitment.commitment.to_ssz();
    let (code, ..) = code_of(publish(rpc_params![to_hex(&unsigned)]).await);
    assert_eq!(code, rpc::NO_PRECONFER_KEY);

    // Valid SSZ signed by the wrong preconfer: validation rejects it with the reason.
    let unsigned_next = builder.next_unsigned(Some(b"second"));
    let elected = elected_key(&builder);
    let other = builder
        .keys()
        .iter()
        .find(|k| secret_key_to_address(k) != secret_key_to_address(&elected))
        .copied()
        .expect("another key");
    let wrongly_signed = builder.sign_with(&other, unsigned_next);
    let (code, _, data) = code_of(publish(rpc_params![to_hex(&wrongly_signed.to_ssz())]).await);
    assert_eq!(code, rpc::VALIDATION_REJECTED);
    assert_eq!(data, Some(json!({"reason": "wrong_signer"})));

    // A commitment whose parent (block 1, never published) is unknown: pending.
    let second = builder.next_block(Some(b"second".to_vec()));
    let (code, _, data) = code_of(
        publish(rpc_params![
            to_hex(&second.commitment.to_ssz()),
            to_hex(b"second")
        ])
        .await,
    );
    assert_eq!(code, rpc::PENDING);
    assert_eq!(data, Some(json!({"reason": "parent_unknown"})));

    // Other methods.
    for params in [
        rpc_params![-1],
        rpc_params![1.5],
        rpc_params![true],
        rpc_params!["0x01234"],
        rpc_params!["0x"],
        rpc_params!["0x1234567890abcdef12345"],
        rpc_params!["not hex"],
        rpc_params![],
    ] {
        let (code, ..) = code_of(
            client
                .request::<Option<String>, _>(rpc::GET_COMMITMENT, params)
                .await,
        );
        assert_eq!(code, rpc::INVALID_PARAMS);
    }
    let (code, ..) = code_of(
        client
            .request::<Option<String>, _>(rpc::GET_RAW_TXLIST, rpc_params!["0x00"])
            .await,
    );
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(
        client
            .request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params!["0xgg"])
            .await,
    );
    assert_eq!(code, rpc::INVALID_PARAMS);
    let (code, ..) = code_of(
        client
            .request::<Value, _>("preconf_nope", rpc_params![])
            .await,
    );
    assert_eq!(code, -32601);

    // Unknown subscription kind over WebSocket; the connection stays usable.
    let ws = ws_client(rpc_addr(&node)).await;
    let (code, ..) = code_of(
        ws.subscribe::<Value, _>(rpc::SUBSCRIBE, rpc_params!["blocks"], rpc::UNSUBSCRIBE)
            .await,
    );
    assert_eq!(code, rpc::INVALID_PARAMS);
    // A valid subscription on the same connection.
    let mut heads = subscribe(&ws, "head").await;

    // The node still serves: the valid block 1 is stored; with no peer it is not sent (-32012),
    // and the error carries what the call would have returned.
    let (code, _, data) = code_of(publish(rpc_params![first_hex.clone(), to_hex(b"first")]).await);
    assert_eq!(code, rpc::NO_PEERS);
    let data = data.expect("receipt in data");
    assert_eq!(
        data["hash"],
        json!(preconfirmation_hash(first.commitment.preconf()))
    );
    assert_eq!(data["block_number"], json!(1));
    let note = next_notification(&mut heads).await;
    assert_eq!(note["block_number"], json!(1));
    let stored: Option<String> = client
        .request(rpc::GET_COMMITMENT, rpc_params![1])
        .await
        .expect("stored");
    assert_eq!(stored, Some(first_hex));
    assert_eq!(http_get(http_addr(&node), "/health").await.status, 200);

    drop(ws);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsigned_commitment_is_signed_with_the_configured_key() {
    let builder = builder();
    let key = elected_key(&builder);
    let (dir, node) = lone_node(&builder, |c| {
        c.preconfer_key_file = Some(write_key_file(&c.data_dir, &key));
    })
    .await;
    let preconfer = secret_key_to_address(&key);

    let status = http_get(http_addr(&node), "/status").await;
    let json: Value = serde_json::from_str(&status.body).expect("status is JSON");
    assert_eq!(json["preconfer"], json!(preconfer));
    assert!(
        !status.body.contains(&hex::encode(key.to_secret_bytes())),
        "the key never leaves the node"
    );

    let txlist = b"signed by the node".to_vec();
    let unsigned = builder.next_unsigned(Some(&txlist));
    let expected = builder.sign_with(&key, unsigned.clone());
    // With a preconfer key, publishing needs a JWT: none, or one signed with another secret,
    // gets UNAUTHORIZED and nothing is stored; read-only methods stay open.
    let params = || rpc_params![to_hex(&unsigned.to_ssz()), to_hex(&txlist)];
    let open = http_client(rpc_addr(&node));
    assert_401(
        open.request::<Value, _>(rpc::PUBLISH_COMMITMENT, params())
            .await,
        "no token",
    );
    assert_401(
        open.request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(&txlist)])
            .await,
        "no token",
    );
    let forged = http_client_with_jwt(rpc_addr(&node), &JwtSecret::random());
    assert_401(
        forged
            .request::<Value, _>(rpc::PUBLISH_COMMITMENT, params())
            .await,
        "another secret",
    );
    assert_eq!(head_number(&open).await, json!(0), "nothing was published");
    let secret = read_secret(&dir.path().join("jwt.hex"));
    let client = http_client_with_jwt(rpc_addr(&node), &secret);
    // Alone, the node stores and reports that nobody heard it (-32012) with the receipt.
    let (code, _, data) = code_of(
        client
            .request::<Value, _>(
                rpc::PUBLISH_COMMITMENT,
                rpc_params![to_hex(&unsigned.to_ssz()), to_hex(&txlist)],
            )
            .await,
    );
    assert_eq!(code, rpc::NO_PEERS);
    let receipt = data.expect("receipt in data");
    assert_eq!(receipt["signer"], json!(preconfer));
    assert_eq!(receipt["commitment"], json!(to_hex(&expected.to_ssz())));
    assert_eq!(
        receipt["hash"],
        json!(preconfirmation_hash(&unsigned.preconf))
    );

    let stored: Option<String> = client
        .request(rpc::GET_COMMITMENT, rpc_params![1])
        .await
        .expect("stored");
    let stored = stored.expect("commitment 1 is stored");
    let bytes = hex::decode(stored.trim_start_matches("0x")).expect("hex");
    let decoded =
        SignedCommitment::decode_capped(&bytes, &chain().limits).expect("a SignedCommitment");
    assert_eq!(decoded.commitment, unsigned);
    assert_eq!(
        recover_signer(&chain().domain, &decoded).expect("recovers"),
        preconfer
    );
    node.shutdown().await;
}

/// A WebSocket authenticates once, at its upgrade, but each publishing call checks that the
/// token's `iat` is still within 60 s: a connection opened with a token issued 56 s ago may
/// publish now and is refused (-32015) once the window has passed; read-only calls stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_may_publish_only_while_its_token_is_fresh() {
    let builder = builder();
    let key = elected_key(&builder);
    let (dir, node) = lone_node(&builder, |c| {
        c.preconfer_key_file = Some(write_key_file(&c.data_dir, &key));
    })
    .await;
    let secret = read_secret(&dir.path().join("jwt.hex"));
    let iat = unix_now() - 56;
    let ws = ws_client_with_jwt(rpc_addr(&node), &secret, iat).await;
    assert_published(
        ws.request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(b"in time")])
            .await,
        "within the window",
    );
    // Until the token is more than 60 s old (bounded: about 5 s from here).
    let deadline = std::time::Instant::now() + WAIT;
    while unix_now() <= iat + rpc_auth::MAX_IAT_DIFF_SECS {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock did not pass the window"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (code, message, _) = code_of(
        ws.request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(b"too late")])
            .await,
    );
    assert_eq!(code, UNAUTHORIZED, "{message}");
    assert!(message.contains("expired"), "a clear error: {message}");
    let unsigned = builder.next_unsigned(Some(b"too late"));
    let (code, ..) = code_of(
        ws.request::<Value, _>(
            rpc::PUBLISH_COMMITMENT,
            rpc_params![to_hex(&unsigned.to_ssz()), to_hex(b"too late")],
        )
        .await,
    );
    assert_eq!(code, UNAUTHORIZED);
    // Read-only calls stay open.
    assert_eq!(head_number(&ws).await, json!(0), "nothing was published");
    // A new connection with a fresh token publishes again.
    let fresh = ws_client_with_jwt(rpc_addr(&node), &secret, unix_now()).await;
    assert_published(
        fresh
            .request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(b"reconnected")])
            .await,
        "a fresh token",
    );
    drop((ws, fresh));
    node.shutdown().await;
}

/// Without a preconfer key, an explicit `rpc.jwt_secret_file` still closes publishing: both
/// publishing methods need its JWT (the file is created when missing); read-only calls stay
/// open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_jwt_secret_guards_publishing_without_a_preconfer_key() {
    let mut builder = builder();
    let (dir, node) = lone_node(&builder, |c| {
        c.rpc.jwt_secret_file = Some(c.data_dir.join("rpc-secret.hex"));
    })
    .await;
    let secret_file = dir.path().join("rpc-secret.hex");
    let txlist = b"relayed tx list".to_vec();
    let block = builder.next_block(Some(txlist.clone()));
    let commitment = to_hex(&block.commitment.to_ssz());

    let open = http_client(rpc_addr(&node));
    assert_401(
        open.request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(&txlist)])
            .await,
        "no token",
    );
    assert_401(
        open.request::<Value, _>(
            rpc::PUBLISH_COMMITMENT,
            rpc_params![commitment.clone(), to_hex(&txlist)],
        )
        .await,
        "no token",
    );
    let forged = http_client_with_jwt(rpc_addr(&node), &JwtSecret::random());
    assert_401(
        forged
            .request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(&txlist)])
            .await,
        "another secret",
    );
    assert_eq!(head_number(&open).await, json!(0), "nothing was published");

    let client = http_client_with_jwt(rpc_addr(&node), &read_secret(&secret_file));
    assert_published(
        client
            .request::<Value, _>(rpc::PUBLISH_RAW_TXLIST, rpc_params![to_hex(&txlist)])
            .await,
        "raw tx list with the JWT",
    );
    assert_published(
        client
            .request::<Value, _>(
                rpc::PUBLISH_COMMITMENT,
                rpc_params![commitment, to_hex(&txlist)],
            )
            .await,
        "commitment with the JWT",
    );
    assert_eq!(head_number(&open).await, json!(1));
    node.shutdown().await;
}

/// As the engine API does, a refused JWT gets HTTP 401 (`WWW-Authenticate: Bearer`, a
/// JSON-RPC error -32015 naming the reason, never the token): a wrong secret, an `iat` out of
/// the ±60 s window, `alg: none`, another scheme, and no header on a publishing call. The
/// scheme is case-insensitive (RFC 7235): `bearer` works. Read-only calls need no header, but
/// a bad one is refused whatever the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_failures_are_http_401_with_their_reason() {
    let builder = builder();
    let (dir, node) = lone_node(&builder, |c| {
        c.rpc.jwt_secret_file = Some(c.data_dir.join("rpc-secret.hex"));
    })
    .await;
    let secret_file = dir.path().join("rpc-secret.hex");
    let addr = rpc_addr(&node);
    let secret = read_secret(&secret_file);
    let token = |secret: &JwtSecret, iat: u64| secret.encode(&Claims { iat, exp: None }).unwrap();
    let now = unix_now();
    let good = token(&secret, now);
    // `{"alg":"none","typ":"JWT"}` . `{"iat":now}` . (no signature)
    let b64 = |s: &str| URL_SAFE_NO_PAD.encode(s);
    let alg_none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(&format!(r#"{{"iat":{now}}}"#))
    );
    let publish = call_json(rpc::PUBLISH_RAW_TXLIST, json!([to_hex(b"guarded")]));
    let head = call_json(rpc::HEAD, json!([]));
    let cases = [
        (
            "wrong_secret",
            Some(format!("Bearer {}", token(&JwtSecret::random(), now))),
        ),
        (
            "iat_skew",
            Some(format!("Bearer {}", token(&secret, now - 3600))),
        ),
        ("unsupported_algorithm", Some(format!("Bearer {alg_none}"))),
        ("not_bearer", Some(format!("Basic {good}"))),
        ("missing_header", None),
    ];
    for (reason, header) in &cases {
        let response = http_post(addr, &publish, header.as_deref()).await;
        assert_eq!(response.status, 401, "{reason}: {}", response.body);
        assert!(
            response
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{reason}: {:?}",
            response.headers
        );
        let body: Value = serde_json::from_str(&response.body).expect("a JSON-RPC error");
        assert_eq!(body["error"]["code"], json!(UNAUTHORIZED), "{reason}");
        let message = body["error"]["message"].as_str().expect("message");
        if let Some(header) = header {
            let token = header.split_once(' ').map_or("", |(_, t)| t);
            for part in token.split('.').filter(|p| p.len() > 8) {
                assert!(
                    !message.contains(part),
                    "{reason}: the token leaked: {message}"
                );
            }
        }
        if *reason != "missing_header" {
            // A bad token is refused even on a read-only call.
            let read = http_post(addr, &head, header.as_deref()).await;
            assert_eq!(read.status, 401, "{reason} on preconf_head");
        }
    }
    // Read-only calls need no token.
    let read = http_post(addr, &head, None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    // A batch that publishes needs one.
    let batch = format!("[{head},{publish}]");
    assert_eq!(http_post(addr, &batch, None).await.status, 401);
    // `bearer` in lower case is the same scheme.
    for scheme in ["Bearer", "bearer"] {
        let header = format!("{scheme} {}", token(&secret, unix_now()));
        let response = http_post(addr, &publish, Some(&header)).await;
        assert_eq!(response.status, 200, "{scheme}: {}", response.body);
        let body: Value = serde_json::from_str(&response.body).expect("JSON");
        // Alone, the node stores the list and says no peer heard it.
        assert_eq!(
            body["error"]["code"],
            json!(rpc::NO_PEERS),
            "{scheme}: {body}"
        );
    }
    node.shutdown().await;
}

/// Every call is counted by method (unknown names as `other`), its error by code, its time in
/// a histogram; a batch's calls one by one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_calls_are_counted_by_method_error_code_and_latency() {
    let (_dir, node) = lone_node(&builder(), |_| {}).await;
    let addr = rpc_addr(&node);
    let before = prometheus().render();
    let value = |text: &str, series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    };
    let head = call_json(rpc::HEAD, json!([]));
    let unknown = call_json("preconf_madeUpMethod", json!([]));
    let bad_params = call_json(rpc::GET_COMMITMENT, json!([true]));
    for body in [
        head.clone(),
        unknown,
        bad_params,
        format!("[{head},{head}]"),
    ] {
        assert_eq!(http_post(addr, &body, None).await.status, 200, "{body}");
    }
    let after = prometheus().render();
    // Counters are global to the test process: compare the growth of this test's series.
    let grew = |series: &str| value(&after, series) - value(&before, series);
    for (series, at_least) in [
        (r#"preconf_rpc_calls_total{method="preconf_head"}"#, 3.0),
        (r#"preconf_rpc_calls_total{method="other"}"#, 1.0),
        (
            r#"preconf_rpc_errors_total{method="other",code="-32601"}"#,
            1.0,
        ),
        (
            r#"preconf_rpc_errors_total{method="preconf_getCommitment",code="-32602"}"#,
            1.0,
        ),
        (
            r#"preconf_rpc_call_seconds_count{method="preconf_head"}"#,
            3.0,
        ),
    ] {
        assert!(grew(series) >= at_least, "{series}:\n{after}");
    }
    assert!(
        !after.contains("preconf_madeUpMethod"),
        "a client cannot add series"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_stop_on_shutdown() {
    let (_dir, node) = lone_node(&builder(), |_| {}).await;
    let http = http_addr(&node);
    let rpc_addr = rpc_addr(&node);
    assert_eq!(http_get(http, "/health").await.status, 200);
    tokio::time::timeout(WAIT, node.shutdown())
        .await
        .expect("shutdown within the bound");
    assert!(tokio::net::TcpStream::connect(http).await.is_err());
    assert!(tokio::net::TcpStream::connect(rpc_addr).await.is_err());
}

/// A `rawTxLists` subscriber whose queue would exceed `rpc.subscription_buffer_bytes` is
/// closed rather than left to pin megabytes of hex: here the cap (512 bytes) is smaller than
/// one notification of a 4 KiB tx list, so the subscription ends without delivering it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_over_its_byte_cap_is_closed() {
    let mut builder = builder();
    let (_dir, node) = lone_node(&builder, |c| c.rpc.subscription_buffer_bytes = 512).await;
    let ws = ws_client(rpc_addr(&node)).await;
    let mut txlists = subscribe(&ws, "rawTxLists").await;
    let mut heads = subscribe(&ws, "head").await;
    let block = builder.next_block(Some(vec![0x5a; 4096]));
    let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
    // Alone, the node stores it and reports that nobody heard it.
    let _ = node.sdk().publish(block.commitment.clone(), txlist).await;
    // The small head notification fits and arrives.
    assert_eq!(
        next_notification(&mut heads).await["block_number"],
        json!(1)
    );
    // The tx-list notification does not fit: the subscription is closed instead.
    let ended = tokio::time::timeout(WAIT, txlists.next())
        .await
        .expect("the subscription ends within the bound");
    assert!(
        !matches!(ended, Some(Ok(ref v)) if v.get("txlist").is_some()),
        "no tx list delivered over the byte cap: {ended:?}"
    );
    node.shutdown().await;
}
