//! The JSON-RPC 2.0 server (HTTP and WebSocket) for sidecars in any language.
//!
//! One server on `rpc.addr` answers plain HTTP POSTs and WebSocket connections alike; only
//! WebSocket connections can subscribe. Connections, request and response sizes and
//! subscriptions per connection are capped by [`crate::config::RpcConfig`].
//!
//! Byte strings (SSZ, tx lists, hashes) are `0x`-prefixed hex. Parameters are positional.
//!
//! # Methods
//!
//! | method | params | result |
//! |---|---|---|
//! | `preconf_publishCommitment` | `commitment`, `txlist?` | [`PublishedCommitment`] |
//! | `preconf_publishRawTxList` | `txlist` | `raw_tx_list_hash` (hex) |
//! | `preconf_head` | — | [`HeadStatus`]: `{block_number, hash?, window_end}` |
//! | `preconf_getCommitment` | block number (JSON number or `0x` hex quantity) or `preconfirmation_hash` (32-byte hex) | SSZ hex of the `SignedCommitment`, or `null` |
//! | `preconf_getRawTxList` | `raw_tx_list_hash` | tx list hex, or `null` |
//! | `preconf_status` | — | [`crate::status::NodeStatus`], as `GET /status` |
//! | `preconf_subscribe` | kind | subscription id; notifications arrive as `preconf_subscription` |
//! | `preconf_unsubscribe` | subscription id | `true` |
//!
//! Beside them, the four methods of Taiko's preconfirmation driver, with that API's shapes
//! (one positional parameter, camelCase objects, `U256` as a `0x` hex quantity) and error
//! codes, so a sidecar written for Taiko's client works unchanged (see `sidecar.rs`):
//!
//! | method | params | result |
//! |---|---|---|
//! | `preconf_publishBlock` | `{commitment, txListHash, txList}` | [`PublishedBlock`]: `{commitmentHash, txListHash}` |
//! | `preconf_getStatus` | — | [`DriverStatus`]: `{isSyncedWithInbox, eventSyncTip, preconfTip, peerCount, peerId}` |
//! | `preconf_tip` | — | the head block number (`U256`) |
//! | `preconf_getPreconfSlotInfo` | timestamp (`U256`) | [`PreconfSlotInfo`]: `{signer, submissionWindowEnd}` |
//!
//! `preconf_publishCommitment` takes the SSZ of a `SignedCommitment` (382 bytes) or, when the
//! node has a preconfer key (`preconfer_key_file`), of an unsigned `PreconfCommitment`
//! (317 bytes), which the node signs under the chain's domain. The optional tx list is the
//! block's raw tx list; its `keccak256` must be the commitment's `rawTxListHash`.
//!
//! Subscription kinds and their notification payloads:
//!
//! | kind | payload |
//! |---|---|
//! | `commitments` | [`CommitmentNotification`]: every accepted commitment (local, gossip, catch-up) |
//! | `rawTxLists` | [`RawTxListNotification`]: every accepted tx list |
//! | `rawTxListHashes` | [`RawTxListHashNotification`]: the same arrivals, hash and block only |
//! | `head` | [`HeadNotification`]: every head change |
//! | `equivocations` | [`EquivocationNotification`]: slashing evidence |
//!
//! Each subscription has its own queue of at most `rpc.subscription_buffer` notifications and
//! `rpc.subscription_buffer_bytes` of JSON (a `rawTxLists` notification reads its tx list
//! from storage when it is queued; SDK events carry no tx-list bytes). A subscriber that lets
//! it fill up (or falls behind the SDK's event channel) is closed with an
//! error notification carrying [`BACKPRESSURE`]; the node never waits for a subscriber.
//!
//! # Error codes
//!
//! | code | constant | meaning |
//! |---|---|---|
//! | -32602 | [`INVALID_PARAMS`] | bad hex, wrong length, SSZ that does not decode, unknown subscription kind, wrong parameter types |
//! | -32010 | [`VALIDATION_REJECTED`] | the commitment or tx list fails validation (§4–§5); `data.reason` is a stable label, the message says why |
//! | -32011 | [`PENDING`] | cannot be validated yet (parent or schedule unknown); nothing stored or sent; `data.reason` |
//! | -32012 | [`NO_PEERS`] | stored, but no peer is subscribed yet so nothing was sent; peers fetch it on catch-up. `data` is the result the call would have had |
//! | -32013 | [`BACKPRESSURE`] | a queue is full (SDK command queue, network queue, subscription queue); retry later |
//! | -32014 | [`NO_PRECONFER_KEY`] | an unsigned commitment, but the node has no preconfer key |
//! | -32015 | [`auth::UNAUTHORIZED`] | publishing needs a JWT here (the node holds a preconfer key, or `rpc.jwt_secret_file` is set) and the call had none, or its token's `iat` is more than 60 s from now. Over HTTP this comes with status **401**, as does any request whose `Authorization` header holds a bad token; on a WebSocket (which keeps its upgrade's token) it is the call's error. See [`crate::rpc::auth`] |
//! | -32000 | [`INTERNAL`] | storage failure, shutting down, other internal errors |
//!
//! Taiko's driver methods answer with that API's codes instead, each with `data.reason`:
//!
//! | code | constant | meaning |
//! |---|---|---|
//! | -32000 | [`INTERNAL`] | shutting down, a full queue (`backpressure`), other internal errors |
//! | -32001 | [`INVALID_COMMITMENT`] | not a `SignedCommitment` (`malformed`), `raw_txlist_hash_mismatch`, `bad_signature`, `wrong_slasher`, `wrong_window_end`, other validation (the SDK's label) |
//! | -32002 | [`INVALID_TX_LIST`] | `txlist_too_large`, `txlist_hash_mismatch`, `txlist_inflates_beyond_cap`, `txlist_bad_zlib`, `txlist_bad_rlp` |
//! | -32003 | [`NOT_SYNCED`] | `stale` (at or below the head), `parent_unknown` |
//! | -32004 | [`SUBMISSION_WINDOW_EXPIRED`] | `window_ended` (more than `sdk.rules.window_end_grace` ago) |
//! | -32005 | [`INVALID_SIGNER`] | `wrong_signer` |
//! | -32006 | [`LOOKAHEAD_UNAVAILABLE`] | `schedule_unknown` for the timestamp |
//!
//! Their bad parameters (malformed JSON object, bad hex, a timestamp that is no `u64`) are
//! -32602 as elsewhere.
//!
//! JSON-RPC's own codes apply as usual (-32700 parse error, -32600 invalid request, -32601
//! unknown method, and jsonrpsee's limits on body size and connections).
//!
//! # Metrics and logs
//!
//! Every call is counted by method, with its error code and latency ([`metrics`]). A
//! commitment the node publishes is logged at INFO (block, hash, tx-list size); a refused JWT
//! at WARN with its reason ([`crate::rpc::auth`]).

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{RpcModule, Server, ServerConfig};
use jsonrpsee::types::ErrorObjectOwned;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, info, Instrument};

use crate::context::NodeContext;
use crate::error::NodeError;
use crate::identity::{load_or_create_jwt_secret, JWT_SECRET_FILE};
use crate::status::{self, HeadStatus};

pub mod auth;
mod errors;
pub use errors::to_hex;
mod methods;
pub mod metrics;
mod sidecar;
mod subscriptions;
pub mod txlist;

use auth::{AuthFailureLog, RpcAuth};
pub use errors::*;
pub use methods::PublishedCommitment;
use methods::*;
pub use sidecar::{DriverStatus, PreconfSlotInfo, PublishedBlock};
use subscriptions::*;
pub use subscriptions::{
    CommitmentNotification, EquivocationNotification, HeadNotification, RawTxListHashNotification,
    RawTxListNotification,
};

/// `preconf_publishCommitment`.
pub const PUBLISH_COMMITMENT: &str = "preconf_publishCommitment";
/// `preconf_publishRawTxList`.
pub const PUBLISH_RAW_TXLIST: &str = "preconf_publishRawTxList";
/// `preconf_head`.
pub const HEAD: &str = "preconf_head";
/// `preconf_draftCommitment`.
pub const DRAFT_COMMITMENT: &str = "preconf_draftCommitment";
/// `preconf_getCommitment`.
pub const GET_COMMITMENT: &str = "preconf_getCommitment";
/// `preconf_getRawTxList`.
pub const GET_RAW_TXLIST: &str = "preconf_getRawTxList";
/// `preconf_status`.
pub const STATUS: &str = "preconf_status";
/// `preconf_subscribe`.
pub const SUBSCRIBE: &str = "preconf_subscribe";
/// Method name of subscription notifications.
pub const SUBSCRIPTION_NOTIFICATION: &str = "preconf_subscription";
/// `preconf_unsubscribe`.
pub const UNSUBSCRIBE: &str = "preconf_unsubscribe";

/// `preconf_publishBlock` (Taiko's driver API).
pub const PUBLISH_BLOCK: &str = "preconf_publishBlock";
/// `preconf_getStatus` (Taiko's driver API).
pub const GET_STATUS: &str = "preconf_getStatus";
/// `preconf_tip` (Taiko's driver API).
pub const TIP: &str = "preconf_tip";
/// `preconf_getPreconfSlotInfo` (Taiko's driver API).
pub const GET_PRECONF_SLOT_INFO: &str = "preconf_getPreconfSlotInfo";

/// Every method this server has (the `method` label of its [`metrics`]).
pub const METHODS: [&str; 13] = [
    PUBLISH_COMMITMENT,
    PUBLISH_RAW_TXLIST,
    HEAD,
    DRAFT_COMMITMENT,
    GET_COMMITMENT,
    GET_RAW_TXLIST,
    STATUS,
    SUBSCRIBE,
    UNSUBSCRIBE,
    PUBLISH_BLOCK,
    GET_STATUS,
    TIP,
    GET_PRECONF_SLOT_INFO,
];

/// What the RPC handlers share.
pub(super) struct RpcState {
    pub(super) node: NodeContext,
    pub(super) shutdown: CancellationToken,
    pub(super) auth: Arc<RpcAuth>,
    pub(super) auth_log: Arc<AuthFailureLog>,
}

impl RpcState {
    /// Whether this call (its `extensions`) may use a guarded method; a refusal is logged and
    /// answered with [`auth::UNAUTHORIZED`].
    fn authorize(&self, extensions: &jsonrpsee::Extensions) -> Result<(), ErrorObjectOwned> {
        self.auth.check(extensions).map_err(|failure| {
            self.auth_log.refused(&failure, "call");
            failure.to_error()
        })
    }
}

/// Binds `context.config.rpc.addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    context: NodeContext,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let config = context.config.rpc.clone();
    let addr = config.addr;
    let server_error = |reason: String| NodeError::Server {
        server: "rpc",
        addr,
        reason,
    };
    // The per-connection outbound buffer is as large as one subscription's queue: a
    // connection that cannot take that many messages fills its subscriptions' queues too.
    let message_buffer = u32::try_from(config.subscription_buffer)
        .unwrap_or(u32::MAX)
        .max(1);
    let server_config = ServerConfig::builder()
        .max_connections(config.max_connections)
        .max_request_body_size(config.max_request_body_bytes)
        .max_response_body_size(config.max_response_body_bytes)
        .max_subscriptions_per_connection(config.max_subscriptions_per_connection)
        .set_message_buffer_capacity(message_buffer)
        .build();
    let auth = Arc::new(auth_for(&context)?);
    let auth_log = Arc::new(AuthFailureLog::default());
    let rpc_metrics = metrics::RpcMetricsLayer {
        max_response_bytes: usize::try_from(config.max_response_body_bytes).unwrap_or(usize::MAX),
    };
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(auth::layer(
            auth.clone(),
            auth_log.clone(),
            config.max_request_body_bytes,
        )))
        .set_rpc_middleware(RpcServiceBuilder::new().layer(rpc_metrics))
        .build(addr)
        .await
        .map_err(|e| server_error(e.to_string()))?;
    let bound = server
        .local_addr()
        .map_err(|e| server_error(e.to_string()))?;
    let module = module(context, shutdown.clone(), auth, auth_log)
        .map_err(|e| server_error(e.to_string()))?;
    let handle = server.start(module);
    info!(addr = %bound, "JSON-RPC server listening (HTTP and WebSocket)");
    let task = tokio::spawn(
        async move {
            shutdown.cancelled().await;
            // Already stopped is fine: the handle is only stopped here.
            let _ = handle.stop();
            handle.stopped().await;
            info!("JSON-RPC server stopped");
        }
        .instrument(tracing::info_span!("rpc", addr = %bound)),
    );
    Ok((bound, task))
}

/// Who may publish: a JWT is needed when the node holds a preconfer key (else anyone reaching
/// the port could sign in its name) or when `rpc.jwt_secret_file` is set explicitly (the
/// operator's way to close publishing on a relaying node); the secret comes from that file, or
/// `<data_dir>/jwt.hex`, created when missing. With neither, publishing is open.
fn auth_for(context: &NodeContext) -> Result<RpcAuth, NodeError> {
    let explicit = context.config.rpc.jwt_secret_file.as_ref();
    if context.preconfer.is_none() && explicit.is_none() {
        return Ok(RpcAuth::Open);
    }
    let path = explicit
        .cloned()
        .unwrap_or_else(|| context.config.data_dir.join(JWT_SECRET_FILE));
    let secret = load_or_create_jwt_secret(&path)?;
    info!(secret_file = %path.display(), "publishing over JSON-RPC needs a JWT");
    Ok(RpcAuth::Jwt(secret))
}

fn module(
    node: NodeContext,
    shutdown: CancellationToken,
    auth: Arc<RpcAuth>,
    auth_log: Arc<AuthFailureLog>,
) -> Result<RpcModule<RpcState>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(RpcState {
        node,
        shutdown,
        auth,
        auth_log,
    });
    module.register_async_method(PUBLISH_COMMITMENT, |params, state, ext| async move {
        state.authorize(&ext)?;
        publish_commitment(params, &state.node)
            .instrument(debug_span!("rpc", method = PUBLISH_COMMITMENT))
            .await
    })?;
    module.register_async_method(PUBLISH_RAW_TXLIST, |params, state, ext| async move {
        state.authorize(&ext)?;
        publish_raw_txlist(params, &state.node)
            .instrument(debug_span!("rpc", method = PUBLISH_RAW_TXLIST))
            .await
    })?;
    module.register_method(HEAD, |_, state, _| {
        let _span = debug_span!("rpc", method = HEAD).entered();
        Ok::<HeadStatus, ErrorObjectOwned>(status::head_status(&state.node))
    })?;
    // Reads the head commitment from storage: off the async workers.
    module.register_blocking_method(DRAFT_COMMITMENT, |params, state, _| {
        let _span = debug_span!("rpc", method = DRAFT_COMMITMENT).entered();
        draft_commitment(params, &state.node)
    })?;
    module.register_async_method(GET_COMMITMENT, |params, state, _| async move {
        get_commitment(params, &state.node)
            .instrument(debug_span!("rpc", method = GET_COMMITMENT))
            .await
    })?;
    module.register_async_method(GET_RAW_TXLIST, |params, state, _| async move {
        get_raw_txlist(params, &state.node)
            .instrument(debug_span!("rpc", method = GET_RAW_TXLIST))
            .await
    })?;
    module.register_async_method(STATUS, |_, state, _| async move {
        status::status_json(&state.node)
            .instrument(debug_span!("rpc", method = STATUS))
            .await
            .map_err(|e| error(INTERNAL, e.to_string(), None::<()>))
    })?;
    module.register_async_method(PUBLISH_BLOCK, |params, state, ext| async move {
        state.authorize(&ext)?;
        sidecar::publish_block(params, &state.node)
            .instrument(debug_span!("rpc", method = PUBLISH_BLOCK))
            .await
    })?;
    module.register_async_method(GET_STATUS, |_, state, _| async move {
        sidecar::get_status(&state.node)
            .instrument(debug_span!("rpc", method = GET_STATUS))
            .await
    })?;
    module.register_method(TIP, |_, state, _| {
        let _span = debug_span!("rpc", method = TIP).entered();
        Ok::<_, ErrorObjectOwned>(sidecar::tip(&state.node))
    })?;
    module.register_method(GET_PRECONF_SLOT_INFO, |params, state, _| {
        let _span = debug_span!("rpc", method = GET_PRECONF_SLOT_INFO).entered();
        sidecar::get_preconf_slot_info(params, &state.node)
    })?;
    module.register_subscription(
        SUBSCRIBE,
        SUBSCRIPTION_NOTIFICATION,
        UNSUBSCRIBE,
        |params, pending, state, _| async move {
            subscribe(params, pending, state)
                .instrument(debug_span!("rpc_subscription"))
                .await
        },
    )?;
    Ok(module)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p2p::testkit::ChainBuilder;
    use p2p::{MemoryStorage, P2pSdk, P2pSdkConfig};
    use preconfirmation_types::ChainSpec;

    use std::sync::atomic::AtomicUsize;

    use jsonrpsee::server::SubscriptionCloseResponse;
    use p2p::{P2pSdkError, SdkEvents};
    use preconfirmation_net::NetError;
    use preconfirmation_types::{Address, B256};
    use serde_json::value::RawValue;
    use tokio::sync::mpsc;

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// A lone SDK (no peers, catch-up off) on loopback, with `event_capacity` events buffered
    /// per subscriber, and its events subscribed before `blocks` blocks are published.
    async fn lone_sdk(event_capacity: usize, blocks: usize) -> (P2pSdk, SdkEvents) {
        let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
        let builder = ChainBuilder::in_the_past(chain, 3, 4, 50);
        let mut config = P2pSdkConfig::new(chain);
        config.rules.window_end_grace = p2p::testkit::REPLAY_WINDOW_END_GRACE;
        config.network.listen_addr = "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr");
        config.network.discovery_enabled = false;
        config.catchup.enabled = false;
        config.event_channel_capacity = event_capacity;
        let (sdk, _events) = P2pSdk::start(
            config,
            Arc::new(MemoryStorage::default()),
            builder.lookahead(),
            None,
        )
        .await
        .expect("sdk starts");
        let events = sdk.subscribe();
        publish_blocks(&sdk, builder, blocks).await;
        (sdk, events)
    }

    /// Publishes `count` blocks locally; with no peer each is stored and announced as an event,
    /// and the call reports `NoPeers`.
    async fn publish_blocks(sdk: &P2pSdk, mut builder: ChainBuilder, count: usize) {
        for block in builder.blocks(count, 64) {
            let txlist = block.txlist.map(|t| t.txlist.to_vec());
            match sdk.publish(block.commitment, txlist).await {
                Ok(_) | Err(P2pSdkError::Network(NetError::NoPeers)) => {}
                Err(e) => panic!("local publish failed: {e}"),
            }
        }
    }

    /// Runs the pump of `kind` until it closes the subscription (bounded by [`WAIT`]) and
    /// returns the code of its closing error.
    async fn close_code(
        kind: Kind,
        events: SdkEvents,
        queue: SubscriptionQueue,
        sdk: &P2pSdk,
    ) -> i64 {
        let close = tokio::time::timeout(WAIT, pump(kind, events, queue, sdk.clone()))
            .await
            .expect("the pump gives up instead of waiting");
        match close {
            SubscriptionCloseResponse::NotifErr(e) => serde_json::to_value(&e)
                .expect("error serialises")["code"]
                .as_i64()
                .expect("a code"),
            other => panic!("expected an error notification, got {other:?}"),
        }
    }

    fn queue(items: usize, max_bytes: usize) -> (SubscriptionQueue, mpsc::Receiver<Box<RawValue>>) {
        let (sender, unread) = mpsc::channel(items);
        let queue = SubscriptionQueue {
            sender,
            queued: Arc::new(AtomicUsize::new(0)),
            max_bytes,
        };
        (queue, unread)
    }

    #[tokio::test]
    async fn a_subscription_queue_over_its_bytes_closes_the_subscription() {
        let (sdk, events) = lone_sdk(64, 2).await;
        // Room for one commitment notification (about 1 KiB of JSON), not two.
        let (queue, mut unread) = queue(1024, 1_500);
        let code = close_code(Kind::Commitments, events, queue, &sdk).await;
        assert_eq!(code, i64::from(BACKPRESSURE));
        assert!(unread.try_recv().is_ok(), "the first one was queued");
        assert!(unread.try_recv().is_err(), "the second one was not");
        sdk.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn txlist_notifications_read_the_bytes_from_storage() {
        let (sdk, events) = lone_sdk(64, 1).await;
        let (queue, mut unread) = queue(1024, usize::MAX);
        let pump = tokio::spawn(pump(Kind::RawTxLists, events, queue, sdk.clone()));
        let note = tokio::time::timeout(WAIT, unread.recv())
            .await
            .expect("a notification within the bound")
            .expect("queued");
        let note: serde_json::Value = serde_json::from_str(note.get()).expect("JSON");
        assert_eq!(note["block_number"], serde_json::json!(1));
        let hash: B256 = serde_json::from_value(note["hash"].clone()).expect("hash");
        let stored = sdk.raw_txlist(&hash).expect("reads").expect("stored");
        assert_eq!(note["txlist"], serde_json::json!(to_hex(&stored)));
        pump.abort();
        sdk.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn a_full_subscription_queue_closes_the_subscription() {
        let (sdk, events) = lone_sdk(64, 2).await;
        let (queue, mut unread) = queue(1, usize::MAX);
        let code = close_code(Kind::Commitments, events, queue, &sdk).await;
        assert_eq!(code, i64::from(BACKPRESSURE));
        // The one queued notification is the first commitment.
        let first = unread.try_recv().expect("one notification queued");
        let first: serde_json::Value = serde_json::from_str(first.get()).expect("JSON");
        assert_eq!(first["block_number"], serde_json::json!(1));
        assert!(unread.try_recv().is_err(), "nothing else was queued");
        sdk.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn a_lagging_subscriber_is_closed() {
        // Each block yields a tx list, a commitment and a head event: 6 events overflow 2.
        let (sdk, events) = lone_sdk(2, 2).await;
        let (queue, _unread) = queue(1024, usize::MAX);
        let code = close_code(Kind::Head, events, queue, &sdk).await;
        assert_eq!(code, i64::from(BACKPRESSURE));
        sdk.shutdown().await.expect("shutdown");
    }

    #[test]
    fn hex_parameters_are_checked_before_decoding() {
        assert_eq!(parse_hex("x", "0x0102", 2).expect("valid"), vec![1, 2]);
        for bad in ["0102", "0x010", "0xzz", "0x010203"] {
            let e = parse_hex("x", bad, 2).expect_err(bad);
            assert_eq!(e.code(), INVALID_PARAMS, "{bad}");
        }
        assert_eq!(
            parse_hash("h", "0x12").expect_err("short").code(),
            INVALID_PARAMS
        );
        assert!(Kind::parse("rawTxLists").is_some());
        assert!(Kind::parse("rawtxlists").is_none());
    }
}
