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
//! | `preconf_getCommitment` | block number (JSON number) or `preconfirmation_hash` (hex) | SSZ hex of the `SignedCommitment`, or `null` |
//! | `preconf_getRawTxList` | `raw_tx_list_hash` | tx list hex, or `null` |
//! | `preconf_status` | — | [`crate::http::NodeStatus`], as `GET /status` |
//! | `preconf_subscribe` | kind | subscription id; notifications arrive as `preconf_subscription` |
//! | `preconf_unsubscribe` | subscription id | `true` |
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
//! | -32015 | [`rpc_auth::UNAUTHORIZED`] | the node holds a preconfer key and the publishing call had no valid JWT (see [`crate::rpc_auth`]) |
//! | -32000 | [`INTERNAL`] | storage failure, shutting down, other internal errors |
//!
//! JSON-RPC's own codes apply as usual (-32700 parse error, -32600 invalid request, -32601
//! unknown method, and jsonrpsee's limits on body size and connections).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{
    PendingSubscriptionSink, RpcModule, Server, ServerConfig, SubscriptionCloseResponse,
    SubscriptionMessage,
};
use jsonrpsee::types::{ErrorObject, ErrorObjectOwned, Params};
use p2p::{CommitmentSource, EvidenceKind, P2pSdk, P2pSdkError, SdkEvent, SdkEvents};
use preconfirmation_net::NetError;
use preconfirmation_types::{
    preconfirmation_hash, recover_signer, sign, Address, PreconfCommitment, SignedCommitment,
    WireMessage, B256, PRECONF_COMMITMENT_SSZ_LEN, SIGNED_COMMITMENT_SSZ_LEN,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, debug_span, info, warn, Instrument};

use crate::error::NodeError;
use crate::http::{self, HeadStatus};
use crate::identity::{load_or_create_jwt_secret, JWT_SECRET_FILE};
use crate::node::NodeContext;
use crate::rpc_auth::{self, RpcAuth};

/// Invalid params: bad hex, wrong length, undecodable SSZ, unknown subscription kind.
pub const INVALID_PARAMS: i32 = -32602;
/// The commitment or tx list failed validation; `data.reason` is a stable label.
pub const VALIDATION_REJECTED: i32 = -32010;
/// The commitment cannot be validated yet (parent or schedule unknown); `data.reason`.
pub const PENDING: i32 = -32011;
/// Stored, but no peer is subscribed yet: nothing was sent (peers fetch it on catch-up).
pub const NO_PEERS: i32 = -32012;
/// A queue is full; retry later. Also closes a slow subscription.
pub const BACKPRESSURE: i32 = -32013;
/// An unsigned commitment was given but the node has no preconfer key.
pub const NO_PRECONFER_KEY: i32 = -32014;
/// Anything else: storage failure, shutdown, internal errors.
pub const INTERNAL: i32 = -32000;

/// `preconf_publishCommitment`.
pub const PUBLISH_COMMITMENT: &str = "preconf_publishCommitment";
/// `preconf_publishRawTxList`.
pub const PUBLISH_RAW_TXLIST: &str = "preconf_publishRawTxList";
/// `preconf_head`.
pub const HEAD: &str = "preconf_head";
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

/// What the RPC handlers share.
struct RpcState {
    node: NodeContext,
    shutdown: CancellationToken,
    auth: Arc<RpcAuth>,
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
    let auth = Arc::new(match context.preconfer {
        Some(_) => {
            let path = config
                .jwt_secret_file
                .clone()
                .unwrap_or_else(|| context.config.data_dir.join(JWT_SECRET_FILE));
            let secret = load_or_create_jwt_secret(&path)?;
            info!(secret_file = %path.display(), "publishing over JSON-RPC needs a JWT");
            RpcAuth::Jwt(secret)
        }
        None => RpcAuth::Open,
    });
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(rpc_auth::layer(auth.clone())))
        .build(addr)
        .await
        .map_err(|e| server_error(e.to_string()))?;
    let bound = server
        .local_addr()
        .map_err(|e| server_error(e.to_string()))?;
    let module =
        module(context, shutdown.clone(), auth).map_err(|e| server_error(e.to_string()))?;
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

fn module(
    node: NodeContext,
    shutdown: CancellationToken,
    auth: Arc<RpcAuth>,
) -> Result<RpcModule<RpcState>, jsonrpsee::core::RegisterMethodError> {
    let mut module = RpcModule::new(RpcState {
        node,
        shutdown,
        auth,
    });
    module.register_async_method(PUBLISH_COMMITMENT, |params, state, ext| async move {
        state.auth.check(&ext)?;
        publish_commitment(params, &state.node)
            .instrument(debug_span!("rpc", method = PUBLISH_COMMITMENT))
            .await
    })?;
    module.register_async_method(PUBLISH_RAW_TXLIST, |params, state, ext| async move {
        state.auth.check(&ext)?;
        publish_raw_txlist(params, &state.node)
            .instrument(debug_span!("rpc", method = PUBLISH_RAW_TXLIST))
            .await
    })?;
    module.register_method(HEAD, |_, state, _| {
        let _span = debug_span!("rpc", method = HEAD).entered();
        Ok::<HeadStatus, ErrorObjectOwned>(http::head_status(&state.node))
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
        http::status_json(&state.node)
            .instrument(debug_span!("rpc", method = STATUS))
            .await
            .map_err(|e| error(INTERNAL, e.to_string(), None::<()>))
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

// ---------------------------------------------------------------------------------------------
// Results and notifications

/// Result of `preconf_publishCommitment` (and `data` of its [`NO_PEERS`] error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedCommitment {
    /// `preconfirmation_hash` of the commitment.
    pub hash: B256,
    /// Its block number.
    pub block_number: u64,
    /// The recovered signer (the node's preconfer address when the node signed).
    pub signer: Address,
    /// SSZ hex of the `SignedCommitment` as published (with the node's signature when the
    /// node signed it).
    pub commitment: String,
}

/// A `commitments` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommitmentNotification {
    /// SSZ hex of the `SignedCommitment`.
    pub commitment: String,
    /// Its `preconfirmation_hash`.
    pub hash: B256,
    /// Its block number.
    pub block_number: u64,
    /// Its recovered signer.
    pub signer: Address,
    /// `local`, `gossip` or `catch_up`.
    pub source: &'static str,
    /// The peer it came from (gossip, catch-up).
    pub peer: Option<String>,
    /// Whether its tx list is stored already (always true for a pure EOP).
    pub txlist_available: bool,
}

/// A `rawTxLists` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawTxListNotification {
    /// `keccak256(txlist)`.
    pub hash: B256,
    /// The block that references it, when an accepted commitment does already.
    pub block_number: Option<u64>,
    /// The tx list, hex.
    pub txlist: String,
}

/// A `head` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeadNotification {
    /// The new head's block number.
    pub block_number: u64,
    /// Its `submissionWindowEnd`.
    pub window_end: u64,
    /// Its `preconfirmation_hash`.
    pub hash: B256,
}

/// An `equivocations` notification: two commitments by one signer that must not both exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EquivocationNotification {
    /// `same_slot`, `same_block_number` or `commit_after_eop`.
    pub kind: EvidenceKind,
    /// Their signer.
    pub signer: Address,
    /// SSZ hex of the commitment accepted first (or the EOP).
    pub first: String,
    /// SSZ hex of the conflicting commitment (not stored or forwarded).
    pub second: String,
}

// ---------------------------------------------------------------------------------------------
// Errors and parameters

fn error(code: i32, message: impl Into<String>, data: Option<impl Serialize>) -> ErrorObjectOwned {
    ErrorObject::owned(code, message.into(), data)
}

fn invalid(message: impl Into<String>) -> ErrorObjectOwned {
    error(INVALID_PARAMS, message, None::<()>)
}

#[derive(Serialize)]
struct Reason {
    reason: &'static str,
}

/// Maps an SDK failure to its documented code. `stored` is the `data` of [`NO_PEERS`].
fn sdk_error(e: P2pSdkError, stored: Option<impl Serialize>) -> ErrorObjectOwned {
    let message = e.to_string();
    match e {
        P2pSdkError::Validation(reason) => error(
            VALIDATION_REJECTED,
            message,
            Some(Reason {
                reason: reason.label(),
            }),
        ),
        P2pSdkError::NotReady(reason) => error(PENDING, message, Some(Reason { reason })),
        P2pSdkError::Network(NetError::NoPeers) => error(NO_PEERS, message, stored),
        P2pSdkError::Network(NetError::Duplicate) => error(
            VALIDATION_REJECTED,
            message,
            Some(Reason {
                reason: "duplicate",
            }),
        ),
        P2pSdkError::Network(NetError::Oversize { .. }) | P2pSdkError::Decode(_) => {
            invalid(message)
        }
        P2pSdkError::Backpressure { .. } | P2pSdkError::Network(NetError::Busy) => {
            error(BACKPRESSURE, message, None::<()>)
        }
        _ => error(INTERNAL, message, None::<()>),
    }
}

fn storage_error(e: impl std::fmt::Display) -> ErrorObjectOwned {
    error(INTERNAL, format!("storage: {e}"), None::<()>)
}

fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x`-prefixed hex of at most `max_len` bytes; the length is checked before decoding.
fn parse_hex(name: &str, text: &str, max_len: usize) -> Result<Vec<u8>, ErrorObjectOwned> {
    let digits = text
        .strip_prefix("0x")
        .ok_or_else(|| invalid(format!("{name}: hex must start with 0x")))?;
    if digits.len() % 2 != 0 {
        return Err(invalid(format!("{name}: odd number of hex digits")));
    }
    if digits.len() / 2 > max_len {
        return Err(invalid(format!(
            "{name}: {} bytes exceed the {max_len}-byte limit",
            digits.len() / 2
        )));
    }
    hex::decode(digits).map_err(|e| invalid(format!("{name}: {e}")))
}

fn parse_hash(name: &str, text: &str) -> Result<B256, ErrorObjectOwned> {
    let bytes = parse_hex(name, text, 32)?;
    if bytes.len() != 32 {
        return Err(invalid(format!(
            "{name}: {} bytes, a hash has 32",
            bytes.len()
        )));
    }
    Ok(B256::from_slice(&bytes))
}

/// Runs a short storage read on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, p2p::StorageError> + Send + 'static,
) -> Result<T, ErrorObjectOwned> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(storage_error)?
        .map_err(storage_error)
}

// ---------------------------------------------------------------------------------------------
// Methods

async fn publish_commitment(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<PublishedCommitment, ErrorObjectOwned> {
    let mut seq = params.sequence();
    let commitment_hex: String = seq.next()?;
    let txlist_hex: Option<String> = seq.optional_next()?;
    let chain = node.sdk.config().chain;
    let bytes = parse_hex("commitment", &commitment_hex, SIGNED_COMMITMENT_SSZ_LEN)?;
    let signed = match bytes.len() {
        SIGNED_COMMITMENT_SSZ_LEN => SignedCommitment::decode_capped(&bytes, &chain.limits)
            .map_err(|e| invalid(format!("commitment: {e}")))?,
        PRECONF_COMMITMENT_SSZ_LEN => {
            let key = node.preconfer.as_deref().ok_or_else(|| {
                error(
                    NO_PRECONFER_KEY,
                    "an unsigned commitment needs a preconfer key (preconfer_key_file)",
                    None::<()>,
                )
            })?;
            let unsigned = PreconfCommitment::decode_capped(&bytes, &chain.limits)
                .map_err(|e| invalid(format!("commitment: {e}")))?;
            sign(key, &chain.domain, unsigned)
        }
        other => {
            return Err(invalid(format!(
            "commitment: {other} bytes; expected {SIGNED_COMMITMENT_SSZ_LEN} (SignedCommitment) \
                 or {PRECONF_COMMITMENT_SSZ_LEN} (PreconfCommitment, signed by the node)"
        )))
        }
    };
    let txlist = txlist_hex
        .map(|h| parse_hex("txlist", &h, chain.limits.max_txlist_bytes))
        .transpose()?;
    // A signature that does not recover is refused by the SDK with the same reason; checking
    // here only spares the queue.
    let signer = recover_signer(&chain.domain, &signed).map_err(|e| {
        error(
            VALIDATION_REJECTED,
            format!("validation failed: bad signature: {e}"),
            Some(Reason {
                reason: "bad_signature",
            }),
        )
    })?;
    let receipt = PublishedCommitment {
        hash: preconfirmation_hash(signed.preconf()),
        block_number: http::u256_to_u64(signed.preconf().block_number),
        signer,
        commitment: to_hex(&signed.to_ssz()),
    };
    match node.sdk.publish(signed, txlist).await {
        Ok(_) => {
            debug!(block = receipt.block_number, hash = %receipt.hash, "published");
            Ok(receipt)
        }
        Err(e) => Err(sdk_error(e, Some(receipt))),
    }
}

async fn publish_raw_txlist(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<B256, ErrorObjectOwned> {
    let txlist_hex: String = params.one()?;
    let limit = node.sdk.config().chain.limits.max_txlist_bytes;
    let txlist = parse_hex("txlist", &txlist_hex, limit)?;
    let hash = preconfirmation_types::raw_tx_list_hash(&txlist);
    match node.sdk.publish_raw_txlist(txlist).await {
        Ok(_) => Ok(hash),
        Err(e) => Err(sdk_error(e, Some(hash))),
    }
}

async fn get_commitment(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<Option<String>, ErrorObjectOwned> {
    let key: serde_json::Value = params.one()?;
    let storage = node.sdk.storage();
    let found = match key {
        serde_json::Value::Number(n) => {
            let number = n
                .as_u64()
                .ok_or_else(|| invalid("block number must be a non-negative integer"))?;
            blocking(move || storage.commitment_by_number(number)).await?
        }
        serde_json::Value::String(s) => {
            let hash = parse_hash("hash", &s)?;
            blocking(move || storage.commitment_by_hash(&hash)).await?
        }
        _ => {
            return Err(invalid(
                "expected a block number or a 0x-prefixed 32-byte preconfirmation hash",
            ))
        }
    };
    Ok(found.map(|c| to_hex(&c.to_ssz())))
}

async fn get_raw_txlist(
    params: Params<'static>,
    node: &NodeContext,
) -> Result<Option<String>, ErrorObjectOwned> {
    let text: String = params.one()?;
    let hash = parse_hash("hash", &text)?;
    let storage = node.sdk.storage();
    let found = blocking(move || storage.txlist(&hash)).await?;
    Ok(found.map(|t| to_hex(&t)))
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// What a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Commitments,
    RawTxLists,
    Head,
    Equivocations,
}

impl Kind {
    fn parse(name: &str) -> Option<Self> {
        match name {
            "commitments" => Some(Kind::Commitments),
            "rawTxLists" => Some(Kind::RawTxLists),
            "head" => Some(Kind::Head),
            "equivocations" => Some(Kind::Equivocations),
            _ => None,
        }
    }
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    state: Arc<RpcState>,
) -> SubscriptionCloseResponse {
    let kind = match params.one::<String>() {
        Ok(name) => match Kind::parse(&name) {
            Some(kind) => kind,
            None => {
                pending
                    .reject(invalid(format!(
                        "unknown subscription kind {name:?}; expected commitments, rawTxLists, \
                         head or equivocations"
                    )))
                    .await;
                return SubscriptionCloseResponse::None;
            }
        },
        Err(e) => {
            pending.reject(e).await;
            return SubscriptionCloseResponse::None;
        }
    };
    // Subscribe before accepting, so nothing after the subscription id is missed.
    let events = state.node.sdk.subscribe();
    let Ok(sink) = pending.accept().await else {
        return SubscriptionCloseResponse::None;
    };
    let buffer = state.node.config.rpc.subscription_buffer.max(1);
    let queued = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = mpsc::channel::<Box<RawValue>>(buffer);
    let queue = SubscriptionQueue {
        sender: tx,
        queued: queued.clone(),
        max_bytes: state.node.config.rpc.subscription_buffer_bytes.max(1),
    };
    let pump = pump(kind, events, queue, state.node.sdk.clone());
    let drain = async {
        while let Some(message) = rx.recv().await {
            let len = message.get().len();
            let sent = sink.send(SubscriptionMessage::from(message)).await;
            queued.fetch_sub(len, Ordering::Relaxed);
            if sent.is_err() {
                return;
            }
        }
    };
    debug!(?kind, "subscribed");
    tokio::select! {
        closed = pump => closed,
        () = drain => SubscriptionCloseResponse::None,
        () = sink.closed() => SubscriptionCloseResponse::None,
        () = state.shutdown.cancelled() => SubscriptionCloseResponse::None,
    }
}

/// A subscription's queue: bounded in notifications by the channel, in bytes by `queued`.
struct SubscriptionQueue {
    sender: mpsc::Sender<Box<RawValue>>,
    /// JSON bytes queued and not yet handed to the connection.
    queued: Arc<AtomicUsize>,
    max_bytes: usize,
}

/// Moves matching SDK events into the subscription's queue without ever waiting; returns the
/// close notification when the subscriber is too slow.
async fn pump(
    kind: Kind,
    mut events: SdkEvents,
    queue: SubscriptionQueue,
    sdk: P2pSdk,
) -> SubscriptionCloseResponse {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(P2pSdkError::Lagged { missed }) => {
                warn!(
                    ?kind,
                    missed, "subscriber lagged behind the SDK; closing it"
                );
                return close_backpressure(format!(
                    "subscription closed: it fell behind and {missed} events were lost"
                ));
            }
            Err(_) => return SubscriptionCloseResponse::None,
        };
        let message = match (kind, &event) {
            (Kind::RawTxLists, SdkEvent::RawTxList { hash, block_number }) => {
                txlist_notification(&sdk, *hash, *block_number).await
            }
            _ => notification(kind, &event),
        };
        let Some(message) = message else {
            continue;
        };
        let len = message.get().len();
        if queue.queued.load(Ordering::Relaxed) + len > queue.max_bytes {
            warn!(?kind, "subscriber queue over its byte cap; closing it");
            return close_backpressure(
                "subscription closed: its queue is full (subscriber too slow)".into(),
            );
        }
        queue.queued.fetch_add(len, Ordering::Relaxed);
        match queue.sender.try_send(message) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                warn!(?kind, "subscriber queue full; closing it");
                return close_backpressure(
                    "subscription closed: its queue is full (subscriber too slow)".into(),
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return SubscriptionCloseResponse::None,
        }
    }
}

fn close_backpressure(message: String) -> SubscriptionCloseResponse {
    #[derive(Serialize)]
    struct Payload {
        code: i32,
        message: String,
    }
    match serde_json::value::to_raw_value(&Payload {
        code: BACKPRESSURE,
        message,
    }) {
        Ok(json) => SubscriptionCloseResponse::NotifErr(SubscriptionError::from_json(json)),
        Err(_) => SubscriptionCloseResponse::None,
    }
}

fn source_of(source: CommitmentSource) -> (&'static str, Option<String>) {
    match source {
        CommitmentSource::Local => ("local", None),
        CommitmentSource::Gossip(peer) => ("gossip", Some(peer.to_string())),
        CommitmentSource::CatchUp(peer) => ("catch_up", Some(peer.to_string())),
    }
}

/// The `rawTxLists` notification of stored tx list `hash`, its bytes read from storage on the
/// blocking pool (the SDK event carries none); `None` if it is gone (pruned meanwhile).
async fn txlist_notification(sdk: &P2pSdk, hash: B256, block_number: u64) -> Option<Box<RawValue>> {
    let storage = sdk.storage();
    let txlist = tokio::task::spawn_blocking(move || storage.txlist(&hash))
        .await
        .ok()?
        .ok()??;
    serde_json::value::to_raw_value(&RawTxListNotification {
        hash,
        block_number: Some(block_number),
        txlist: to_hex(&txlist),
    })
    .ok()
}

/// The JSON of `event` for a `kind` subscription, if it is one of its events (`rawTxLists`:
/// [`txlist_notification`]).
fn notification(kind: Kind, event: &SdkEvent) -> Option<Box<RawValue>> {
    let json = match (kind, event) {
        (
            Kind::Commitments,
            SdkEvent::Commitment {
                commitment,
                signer,
                source,
                txlist_available,
            },
        ) => {
            let (source, peer) = source_of(*source);
            serde_json::value::to_raw_value(&CommitmentNotification {
                commitment: to_hex(&commitment.to_ssz()),
                hash: preconfirmation_hash(commitment.preconf()),
                block_number: http::u256_to_u64(commitment.preconf().block_number),
                signer: *signer,
                source,
                peer,
                txlist_available: *txlist_available,
            })
        }
        (Kind::Head, SdkEvent::HeadChanged { head, hash }) => {
            serde_json::value::to_raw_value(&HeadNotification {
                block_number: http::u256_to_u64(head.block_number),
                window_end: http::u256_to_u64(head.submission_window_end),
                hash: *hash,
            })
        }
        (
            Kind::Equivocations,
            SdkEvent::Equivocation {
                kind,
                signer,
                first,
                second,
            },
        ) => serde_json::value::to_raw_value(&EquivocationNotification {
            kind: *kind,
            signer: *signer,
            first: to_hex(&first.to_ssz()),
            second: to_hex(&second.to_ssz()),
        }),
        _ => return None,
    };
    match json {
        Ok(json) => Some(json),
        Err(e) => {
            warn!(error = %e, "notification not serialisable");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use p2p::testkit::ChainBuilder;
    use p2p::{MemoryStorage, P2pSdk, P2pSdkConfig};
    use preconfirmation_types::ChainSpec;

    use super::*;

    const WAIT: Duration = Duration::from_secs(30);

    /// A lone SDK (no peers, catch-up off) on loopback, with `event_capacity` events buffered
    /// per subscriber.
    async fn lone_sdk(event_capacity: usize) -> (P2pSdk, ChainBuilder) {
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
        (sdk, builder)
    }

    /// Publishes `count` blocks locally; with no peer each is stored and announced as an event,
    /// and the call reports `NoPeers`.
    async fn publish_blocks(sdk: &P2pSdk, builder: &mut ChainBuilder, count: usize) {
        for block in builder.blocks(count, 64) {
            let txlist = block.txlist.map(|t| t.txlist.to_vec());
            match sdk.publish(block.commitment, txlist).await {
                Ok(_) | Err(P2pSdkError::Network(NetError::NoPeers)) => {}
                Err(e) => panic!("local publish failed: {e}"),
            }
        }
    }

    fn close_code(close: SubscriptionCloseResponse) -> i64 {
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
        let (sdk, mut builder) = lone_sdk(64).await;
        let events = sdk.subscribe();
        // Room for one commitment notification (about 1 KiB of JSON), not two.
        let (queue, mut unread) = queue(1024, 1_500);
        publish_blocks(&sdk, &mut builder, 2).await;
        let close = tokio::time::timeout(WAIT, pump(Kind::Commitments, events, queue, sdk.clone()))
            .await
            .expect("the pump gives up instead of waiting");
        assert_eq!(close_code(close), i64::from(BACKPRESSURE));
        assert!(unread.try_recv().is_ok(), "the first one was queued");
        assert!(unread.try_recv().is_err(), "the second one was not");
        sdk.shutdown().await.expect("shutdown");
    }

    #[tokio::test]
    async fn txlist_notifications_read_the_bytes_from_storage() {
        let (sdk, mut builder) = lone_sdk(64).await;
        let events = sdk.subscribe();
        let (queue, mut unread) = queue(1024, usize::MAX);
        publish_blocks(&sdk, &mut builder, 1).await;
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
        let (sdk, mut builder) = lone_sdk(64).await;
        let events = sdk.subscribe();
        let (queue, mut unread) = queue(1, usize::MAX);
        publish_blocks(&sdk, &mut builder, 2).await;
        let close = tokio::time::timeout(WAIT, pump(Kind::Commitments, events, queue, sdk.clone()))
            .await
            .expect("the pump gives up instead of waiting");
        assert_eq!(close_code(close), i64::from(BACKPRESSURE));
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
        let (sdk, mut builder) = lone_sdk(2).await;
        let events = sdk.subscribe();
        let (queue, _unread) = queue(1024, usize::MAX);
        publish_blocks(&sdk, &mut builder, 2).await;
        let close = tokio::time::timeout(WAIT, pump(Kind::Head, events, queue, sdk.clone()))
            .await
            .expect("the pump gives up instead of waiting");
        assert_eq!(close_code(close), i64::from(BACKPRESSURE));
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
