//! `preconf_subscribe`: subscription kinds, their notifications, and the per-subscription
//! queue that closes a slow subscriber.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use jsonrpsee::core::SubscriptionError;
use jsonrpsee::server::{PendingSubscriptionSink, SubscriptionCloseResponse, SubscriptionMessage};
use jsonrpsee::types::Params;
use p2p::{CommitmentSource, EvidenceKind, P2pSdk, P2pSdkError, SdkEvent, SdkEvents};
use preconfirmation_types::{preconfirmation_hash, Address, WireMessage, B256};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::status;

use super::errors::*;
use super::RpcState;

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

/// A `rawTxListHashes` notification: a tx list was stored, without its bytes (read them with
/// `preconf_getRawTxList` when needed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RawTxListHashNotification {
    /// `keccak256(txlist)`.
    pub hash: B256,
    /// The block that references it, when an accepted commitment does already.
    pub block_number: Option<u64>,
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

/// What a subscription delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Commitments,
    RawTxLists,
    RawTxListHashes,
    Head,
    Equivocations,
}

impl Kind {
    pub(super) fn parse(name: &str) -> Option<Self> {
        match name {
            "commitments" => Some(Kind::Commitments),
            "rawTxLists" => Some(Kind::RawTxLists),
            "rawTxListHashes" => Some(Kind::RawTxListHashes),
            "head" => Some(Kind::Head),
            "equivocations" => Some(Kind::Equivocations),
            _ => None,
        }
    }
}

pub(super) async fn subscribe(
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
                         rawTxListHashes, head or equivocations"
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
pub(super) struct SubscriptionQueue {
    pub(super) sender: mpsc::Sender<Box<RawValue>>,
    /// JSON bytes queued and not yet handed to the connection.
    pub(super) queued: Arc<AtomicUsize>,
    pub(super) max_bytes: usize,
}

/// Moves matching SDK events into the subscription's queue without ever waiting; returns the
/// close notification when the subscriber is too slow.
pub(super) async fn pump(
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

pub(super) fn close_backpressure(message: String) -> SubscriptionCloseResponse {
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

pub(super) fn source_of(source: CommitmentSource) -> (&'static str, Option<String>) {
    match source {
        CommitmentSource::Local => ("local", None),
        CommitmentSource::Gossip(peer) => ("gossip", Some(peer.to_string())),
        CommitmentSource::CatchUp(peer) => ("catch_up", Some(peer.to_string())),
    }
}

/// The `rawTxLists` notification of stored tx list `hash`, its bytes read from storage on the
/// blocking pool (the SDK event carries none); `None` if it is gone (pruned meanwhile).
pub(super) async fn txlist_notification(
    sdk: &P2pSdk,
    hash: B256,
    block_number: u64,
) -> Option<Box<RawValue>> {
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
pub(super) fn notification(kind: Kind, event: &SdkEvent) -> Option<Box<RawValue>> {
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
                block_number: status::u256_to_u64(commitment.preconf().block_number),
                signer: *signer,
                source,
                peer,
                txlist_available: *txlist_available,
            })
        }
        (Kind::RawTxListHashes, SdkEvent::RawTxList { hash, block_number }) => {
            serde_json::value::to_raw_value(&RawTxListHashNotification {
                hash: *hash,
                block_number: Some(*block_number),
            })
        }
        (Kind::Head, SdkEvent::HeadChanged { head, hash }) => {
            serde_json::value::to_raw_value(&HeadNotification {
                block_number: status::u256_to_u64(head.block_number),
                window_end: status::u256_to_u64(head.submission_window_end),
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
