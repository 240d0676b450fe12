//! What crosses between the SDK's tasks (see the crate docs' bird's-eye view): the handle's
//! [`Command`]s to the manager, the [`Internal`] reports of the manager's own tasks (sync,
//! fetches, the durable writer), and the [`PageWrite`]s the core hands the writer.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use libp2p::PeerId;
use preconfirmation_net::MessageId as NetMessageId;
use preconfirmation_types::{Address, RawTxListGossip, SignedCommitment, TypesError, B256};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use crate::error::Result;
use crate::storage::StorageError;
use crate::types::HeadSyncStatus;
use crate::validation::RejectReason;

/// What `P2pSdk::publish` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishReceipt {
    /// Gossipsub id of the commitment message.
    pub commitment_message_id: NetMessageId,
    /// Gossipsub id of the tx list message, if one was sent.
    pub txlist_message_id: Option<NetMessageId>,
}

/// What the handle asks of the manager, over the command channel
/// (`command_channel_capacity`, sent with `try_send`: a full queue is
/// `P2pSdkError::Backpressure` to the caller, never a wait).
pub(crate) enum Command {
    /// Validate, store durably, then gossip a commitment (and its tx list first, §6).
    Publish {
        commitment: Box<SignedCommitment>,
        txlist: Option<RawTxListGossip>,
        reply: oneshot::Sender<Result<PublishReceipt>>,
    },
    /// Gossip a tx list on its own (before its commitment, §6).
    PublishRawTxList {
        txlist: RawTxListGossip,
        reply: oneshot::Sender<Result<NetMessageId>>,
    },
    /// The lookahead learned more: recheck what waits for its schedule.
    ScheduleUpdated,
    /// Start a catch-up round now.
    CatchUp,
    /// Stop the manager and the network; `reply` once stopped.
    Shutdown { reply: oneshot::Sender<()> },
}

/// What the durable writer found for one write ([`PageOutcome`]), or why it was not written.
pub(crate) type WriteOutcome = std::result::Result<PageOutcome, StorageError>;

/// Reports from the SDK's own tasks (sync, fetches, the durable writer) to the manager, over
/// its internal channel (bounded: a task waits for room, the manager never does).
pub(crate) enum Internal {
    /// A fetched, signature-recovered catch-up page with the verified tx lists fetched for
    /// it: validate and apply in memory; the reply carries the write for the write stage.
    CatchUpPage {
        peer: PeerId,
        items: Vec<(SignedCommitment, std::result::Result<Address, TypesError>)>,
        txlists: HashMap<B256, Bytes>,
        /// Room in catch-up's write queue, held until the page is written.
        permits: Vec<OwnedSemaphorePermit>,
        /// The validation result, and the write's outcome once it is done (if any was made).
        reply: oneshot::Sender<(BatchResult, Option<oneshot::Receiver<WriteOutcome>>)>,
    },
    /// The durable writer's outcome for write `id`: `Ok` with the write's other referenced tx
    /// lists that storage already held.
    Stored {
        id: u64,
        outcome: std::result::Result<HashSet<B256>, StorageError>,
    },
    /// A verified tx list a fetch found (the core stores it if still awaited).
    TxListFetched { hash: B256, txlist: Bytes },
    /// Verified tx lists a background task already stored durably: `(hash, block)`.
    TxListsStored(Vec<(B256, u64)>),
    /// Catch-up's progress, for the status and `SdkEvent::HeadSync`.
    SetSync(HeadSyncStatus),
}

/// What the write of one page found: its unresolved tx lists that storage holds, and those
/// still owed (`(hash, block number)`).
pub(crate) type PageOutcome = (HashSet<B256>, Vec<(B256, u64)>);

/// Result of validating a catch-up page.
#[derive(Debug, Default)]
pub(crate) struct BatchResult {
    /// Commitments accepted.
    pub applied: usize,
    /// The first commitment that failed validation, if any (the page is abandoned there).
    pub failure: Option<RejectReason>,
    /// The page did not connect to the head (starts above it, or has a gap).
    pub gap: bool,
    /// The schedule cannot name the signer of a commitment in the page: it and the rest of
    /// the page wait as pending (rechecked as the schedule learns more); nobody is blamed.
    pub schedule_unknown: bool,
    /// The failure is the local schedule's disagreement with every peer
    /// (`peer_view`): the serving peer is not penalised for it.
    pub schedule_disagreement: bool,
}

/// What the core accepted, for the durable writer (`writer`): commitments (a gossip
/// or local accept with the pending children it unlocked, or a catch-up page) with the tx
/// lists to store in the same transaction ([`crate::storage::SdkStorage::put_page`]), or tx lists alone that
/// accepted commitments awaited. The core has applied it to its in-memory chain already; it
/// announces it once `Core::on_stored` says the write is durable.
#[derive(Debug)]
pub(crate) struct PageWrite {
    /// Matches the write to its `Core::on_stored` call; ascending in the order made.
    pub id: u64,
    /// Commitments, ascending.
    pub commitments: Vec<SignedCommitment>,
    /// `(hash, block number, bytes)` of tx lists stored with the page.
    pub txlists: Vec<(B256, u64, Bytes)>,
    /// Tx lists the commitments reference that are not in `txlists`: the writer looks them up
    /// after the write (off the manager task); those storage lacks are still owed.
    pub unresolved: Vec<(B256, u64)>,
}
