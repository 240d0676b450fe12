//! The core on its own, without a network: gossip, catch-up pages, writes, the buffers.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use preconfirmation_types::{
    Address, ChainSpec, GossipTopicKind, SignedCommitment, TypesError, WireMessage, U256,
};

use super::*;
use crate::storage::MemoryStorage;
use crate::testkit::ChainBuilder;
use crate::validation::RejectReason;

mod gossip;
mod pending;
mod txlists;
mod writes;

struct Harness {
    core: Core,
    builder: ChainBuilder,
    events: broadcast::Receiver<SdkEvent>,
    storage: Arc<MemoryStorage>,
}

fn harness() -> Harness {
    harness_with(|_| {})
}

fn harness_with(configure: impl FnOnce(&mut P2pSdkConfig)) -> Harness {
    harness_knowing(configure, |builder| builder.lookahead())
}

/// A harness whose core validates with the schedule `lookahead` makes of the builder's.
fn harness_knowing(
    configure: impl FnOnce(&mut P2pSdkConfig),
    lookahead: impl FnOnce(&ChainBuilder) -> Arc<dyn crate::Lookahead>,
) -> Harness {
    let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
    let builder = ChainBuilder::in_the_past(chain, 2, 4, 200);
    let mut config = P2pSdkConfig::new(chain);
    config.rules.window_end_grace = crate::testkit::REPLAY_WINDOW_END_GRACE;
    configure(&mut config);
    let config = Arc::new(config);
    let validator = Validator::new(chain, config.rules.clone(), lookahead(&builder), 64);
    let storage = Arc::new(MemoryStorage::default());
    let (events_tx, events) = broadcast::channel(1024);
    let (status, _) = watch::channel(SdkStatus::starting(HeadSyncStatus::Idle));
    let core = Core::new(config, validator, storage.clone(), events_tx, status).unwrap();
    Harness {
        core,
        builder,
        events,
        storage,
    }
}

fn peer() -> PeerId {
    PeerId::random()
}

/// Does what the durable writer does, at once: writes everything the core queued and
/// reports each write stored.
fn flush_writes(h: &mut Harness) {
    h.core.write_queued_now().expect("memory storage writes");
}

type RecoveredPage = Vec<(SignedCommitment, std::result::Result<Address, TypesError>)>;
type TxListsByHash = std::collections::HashMap<B256, Bytes>;

/// A catch-up page with recovered signers, and the tx lists fetched for it by hash.
fn catchup_page(h: &Harness, blocks: &[crate::testkit::Block]) -> (RecoveredPage, TxListsByHash) {
    let items = blocks
        .iter()
        .map(|b| {
            let signer = h.core.validator().recover_signer(&b.commitment);
            (b.commitment.clone(), signer)
        })
        .collect();
    let txlists = blocks
        .iter()
        .filter_map(|b| b.txlist.as_ref())
        .map(|t| (t.raw_tx_list_hash, Bytes::from(t.txlist.to_vec())))
        .collect();
    (items, txlists)
}

fn commitment_events(h: &mut Harness) -> Vec<(u64, bool)> {
    let mut seen = Vec::new();
    while let Ok(event) = h.events.try_recv() {
        if let SdkEvent::Commitment {
            commitment,
            txlist_available,
            ..
        } = event
        {
            let n = u64::try_from(commitment.preconf().block_number).unwrap();
            seen.push((n, txlist_available));
        }
    }
    seen
}

fn gossip_id(i: usize) -> GossipMessageId {
    GossipMessageId::new(&i.to_be_bytes())
}

/// The held tx-list verdicts released so far, (message id, verdict).
fn verdict_effects(h: &mut Harness) -> Vec<(GossipMessageId, GossipVerdict)> {
    released(&h.core.take_effects(), false)
}

/// `(message id, verdict)` of the held verdicts `effects` release: the tx lists' (`Verdict`),
/// or with `pending` the pending commitments' (`PendingVerdict`).
fn released(effects: &[Effect], pending: bool) -> Vec<(GossipMessageId, GossipVerdict)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Verdict {
                message_id,
                verdict,
                ..
            } if !pending => Some((message_id.clone(), *verdict)),
            Effect::PendingVerdict {
                message_id,
                verdict,
                ..
            } if pending => Some((message_id.clone(), *verdict)),
            _ => None,
        })
        .collect()
}

/// A chain builder on `h`'s chain whose first block falls in slot 8, beyond the schedule a
/// `lookahead_known_to(3)` harness knows.
fn beyond_the_horizon(h: &Harness) -> ChainBuilder {
    let mut beyond = ChainBuilder::in_the_past(*h.builder.chain(), 2, 4, 200);
    for _ in 0..8 {
        beyond.skip_slot();
    }
    beyond
}

/// The core of a node restarted over `h`'s storage: it knows the stored head, and none of
/// the commitments below it in memory.
fn restarted(h: &Harness) -> Core {
    let config = Arc::new(h.core.config().clone());
    let validator = Validator::new(
        *h.builder.chain(),
        config.rules.clone(),
        h.builder.lookahead(),
        64,
    );
    let (events, _) = broadcast::channel(16);
    let (status, _) = watch::channel(h.core.status());
    Core::new(config, validator, h.storage.clone(), events, status).unwrap()
}
