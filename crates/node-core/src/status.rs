//! What the node reports of itself: [`NodeStatus`] (`GET /status`, `preconf_status`, the
//! operator page) and [`ReadyStatus`] (`GET /ready`), both computed from one observation of the
//! SDK, the network, the schedule and the store.
//!
//! # Readiness
//!
//! `/ready` is what a load balancer, an orchestrator or a Docker `HEALTHCHECK` asks: can this
//! node be used now? Each condition that fails is named in `failing` with its reason:
//!
//! | condition | holds when |
//! |---|---|
//! | `serving` | the node has started and is not stopping |
//! | `peers` | at least `http.ready_min_peers` peers (default 1) are subscribed to this chain's commitments topic; peers connected on another chain (a `--chain-id` typo here or there) do not count and are named in the reason |
//! | `schedule` | the schedule names a preconfer for the current window, and not every peer's commitments fail its signer check (a wrong `lookahead.preconfers`) |
//! | `head` | catch-up has compared the local head with the peers' (a connected peer has reported its head, or none is connected), and the head lags the best head a connected peer reported by at most `http.ready_max_blocks_behind` blocks (default 8) |
//! | `storage` | store writes succeed |
//!
//! Choices:
//! - **The first node of a new network** has no peer to be ready with: with the default it
//!   answers 503 (`peers`) until a second node joins, which is the truth for a follower. A
//!   bootnode or the network's first preconfer sets `http.ready_min_peers = 0`; its other
//!   conditions still apply.
//! - **A node ahead of its peers** (the preconfer, which publishes first) is never behind: only
//!   a lag counts, never a lead.
//! - **Heads are compared in blocks**: `get_head` answers a block number, so the lag is in
//!   blocks, from the last catch-up round's answers (at start, on a gap, on a new peer, and
//!   whenever the head has not moved for `catchup.stale_head_check`), limited to peers still
//!   connected. A peer that claims a head it cannot serve is penalised by catch-up and, once
//!   banned or gone, no longer counts.
//! - **A lone node** whose catch-up found no peer has compared its head with nobody's; its
//!   `head` condition holds (there is no one to be behind), its `peers` condition does not.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use p2p::{HeadSyncStatus, PeerHead, ScheduleDisagreement, SdkStatus, SdkStorage, StorageStats};
use preconfirmation_net::PeerSnapshot;
use preconfirmation_types::{secret_key_to_address, Address, GossipTopicKind, B256, U256};
use serde::Serialize;

use crate::clock::unix_now;
use crate::context::NodeContext;
use crate::error::NodeError;
use crate::schedule::ScheduleStatus;

/// What `/status` and `preconf_status` answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeStatus {
    /// The chain this node serves (`sdk.chain.chain_id`): its topics and protocols are
    /// `/taiko/<chain_id>/…`.
    pub chain_id: u64,
    /// This node's libp2p peer id.
    pub peer_id: String,
    /// This node's discv5 ENR (`enr:-…`, base64), to give other nodes as a bootnode; `null`
    /// when discovery is off.
    pub enr: Option<String>,
    /// Addresses the node listens on.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peers: PeersStatus,
    /// The local preconfirmation head.
    pub head: HeadStatus,
    /// The head block's timestamp (unix seconds); `null` at the anchor.
    pub head_timestamp: Option<u64>,
    /// Seconds since the head block's timestamp (0 for one in the future); `null` at the
    /// anchor.
    pub head_age_s: Option<u64>,
    /// The highest head a connected peer reported in the last catch-up round; `null` before
    /// any answered.
    pub best_peer_head: Option<PeerHeadStatus>,
    /// Catch-up state: `{"state": "idle" | "live"}` or
    /// `{"state": "syncing", "local": n, "target": m}`.
    pub sync: HeadSyncStatus,
    /// What `/ready` answers now.
    pub ready: ReadyStatus,
    /// Sizes of the SDK's buffers.
    pub pending: PendingStatus,
    /// Sizes of the store.
    pub storage: StorageStats,
    /// `null` while store writes succeed, else the last write error (the node is not ready).
    pub storage_error: Option<String>,
    /// Store write failures since start.
    pub storage_write_failures: u64,
    /// Version of `preconf-node`.
    pub version: &'static str,
    /// Seconds since the node started.
    pub uptime_s: u64,
    /// Address of the configured preconfer key, if one is configured (never the key).
    pub preconfer: Option<Address>,
    /// Whether this node's preconfer key is the schedule's preconfer of the current window
    /// (`false` without a key).
    pub is_preconfer_now: bool,
    /// The preconfer schedule: its source, the current and next window's preconfer and, read
    /// from L1, the L1 head it was read at.
    pub schedule: ScheduleStatus,
    /// `null`, or: every connected peer that delivered a commitment disagrees with the local
    /// schedule (see `p2p::peer_view`); peers are not penalised for it meanwhile.
    pub schedule_disagreement: Option<DisagreementStatus>,
}

/// A peer's reported head, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerHeadStatus {
    /// The peer.
    pub peer_id: String,
    /// Its head block number.
    pub block_number: u64,
    /// Seconds since it answered.
    pub age_s: u64,
    /// How many blocks the local head lags it (0 when level or ahead).
    pub blocks_behind: u64,
}

/// Every peer disagrees with the local schedule, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DisagreementStatus {
    /// The disagreeing peers.
    pub peers: Vec<String>,
    /// The rule their commitments fail (`wrong_signer`, `wrong_window_end`, …).
    pub rule: &'static str,
    /// For `wrong_signer`: who the local schedule elects.
    pub expected_signer: Option<Address>,
    /// For `wrong_signer`: who signed the peers' commitments.
    pub peers_signer: Option<Address>,
    /// Seconds since it began.
    pub since_s: u64,
}

impl DisagreementStatus {
    fn of(d: &ScheduleDisagreement) -> Self {
        Self {
            peers: d.peers.iter().map(ToString::to_string).collect(),
            rule: d.rule,
            expected_signer: d.signers.map(|(expected, _)| expected),
            peers_signer: d.signers.map(|(_, actual)| actual),
            since_s: d.since.elapsed().as_secs(),
        }
    }
}

/// What `/ready` answers (and `/status` shows as `ready`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyStatus {
    /// Whether every condition holds (`/ready` answers 200).
    pub ready: bool,
    /// The conditions that do not hold, each with its reason; empty when ready.
    pub failing: Vec<FailingCondition>,
}

impl ReadyStatus {
    fn from_failing(failing: Vec<FailingCondition>) -> Self {
        Self {
            ready: failing.is_empty(),
            failing,
        }
    }
}

/// One readiness condition that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailingCondition {
    /// `serving`, `peers`, `schedule`, `head` or `storage` (see the module docs).
    pub condition: &'static str,
    /// Why, for an operator.
    pub reason: String,
}

impl FailingCondition {
    fn new(condition: &'static str, reason: String) -> Self {
        Self { condition, reason }
    }
}

/// Connected peers, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeersStatus {
    /// How many.
    pub count: usize,
    /// How many are subscribed to this chain's commitments topic (what `/ready` counts).
    pub on_chain_topics: usize,
    /// Connected peers by the chain their identify protocols name (`/taiko/<chain id>/…`);
    /// `"unidentified"` for those that have not said (yet).
    pub by_chain: BTreeMap<String, usize>,
    /// Connected peers on another chain only: they can exchange nothing with this node.
    pub other_chain: usize,
    /// Each with its score.
    pub list: Vec<PeerStatus>,
}

/// One connected peer, for [`NodeStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PeerStatus {
    /// Peer id.
    pub peer_id: String,
    /// Gossipsub score (topic scores + application score).
    pub score: f64,
    /// `"extended"` when it advertises this project's extensions, else `"strict"`: requests
    /// to it are then paced as to the Taiko reference (8 per protocol per 10 s).
    pub profile: &'static str,
    /// Round-trip time of its last answered ping, in milliseconds.
    pub ping_rtt_ms: Option<f64>,
    /// Response bytes served to it on its current connection(s).
    pub served_bytes: u64,
    /// Gossip messages dropped for it because its send queue stayed full (a slow reader);
    /// counted, not scored.
    pub gossip_dropped: u64,
    /// The chains its identify protocols name; empty until identified.
    pub chain_ids: Vec<u64>,
}

/// The local head, for [`NodeStatus`] and `preconf_head`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct HeadStatus {
    /// Highest preconfirmed block number (0 before the first commitment).
    pub block_number: u64,
    /// `preconfirmation_hash` of the head commitment, when there is one.
    pub hash: Option<B256>,
    /// `submissionWindowEnd` of the head commitment (0 at the anchor).
    pub window_end: u64,
}

/// Buffer sizes, for [`NodeStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PendingStatus {
    /// Commitments waiting for their parent.
    pub pending_parent: usize,
    /// Commitments waiting for their schedule.
    pub pending_schedule: usize,
    /// Tx lists not yet referenced by an accepted commitment.
    pub orphan_txlists: usize,
    /// Accepted commitments whose tx list is still missing.
    pub missing_txlists: usize,
}

/// A `U256` that validation bounds to `u64` (window ends are schedule timestamps) as `u64`;
/// saturates rather than fails should that ever not hold.
pub(crate) fn u256_to_u64(value: U256) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The head as the SDK reports it now.
pub(crate) fn head_status(context: &NodeContext) -> HeadStatus {
    let status = context.sdk.status();
    HeadStatus {
        block_number: status.head_block_number,
        hash: status.head_hash,
        window_end: u256_to_u64(status.head_window_end),
    }
}

/// What the node sees of itself and its peers at one moment: what `/ready` and `/status`
/// are computed from.
struct Observed {
    sdk: SdkStatus,
    peers: Vec<PeerSnapshot>,
    /// Peers subscribed to this chain's commitments topic.
    on_chain_topics: usize,
    best_peer_head: Option<PeerHead>,
    schedule: ScheduleStatus,
    disagreement: Option<ScheduleDisagreement>,
    storage_error: Option<String>,
}

async fn observe(context: &NodeContext) -> Result<Observed, NodeError> {
    let net = context.sdk.network();
    let peers = net.peers().await.map_err(p2p::P2pSdkError::from)?;
    let on_chain_topics = net
        .gossip_peers(GossipTopicKind::Commitments)
        .await
        .map_err(p2p::P2pSdkError::from)?
        .len();
    Ok(Observed {
        sdk: context.sdk.status(),
        peers,
        on_chain_topics,
        best_peer_head: context.sdk.best_peer_head().await?,
        schedule: context.schedule.status(unix_now()),
        disagreement: context.sdk.schedule_disagreement(),
        storage_error: context.storage_health.failure(),
    })
}

/// What `/ready` answers now: the readiness conditions (module docs), or `serving` failing
/// when the network is gone (the node is stopping).
pub(crate) async fn ready_status(context: &NodeContext) -> ReadyStatus {
    match observe(context).await {
        Ok(observed) => readiness(context, &observed),
        Err(e) => ReadyStatus::from_failing(vec![FailingCondition::new(
            "serving",
            format!("the node is stopping ({e})"),
        )]),
    }
}

/// The readiness conditions (module docs) against what was observed.
fn readiness(context: &NodeContext, o: &Observed) -> ReadyStatus {
    let config = &context.config.http;
    let chain_id = context.config.sdk.chain.chain_id;
    let mut failing = Vec::new();
    if !context.serving.load(Ordering::Acquire) {
        failing.push(FailingCondition::new(
            "serving",
            "the node is starting or stopping".into(),
        ));
    }
    if o.on_chain_topics < config.ready_min_peers {
        let mut reason = format!(
            "{} of {} required peers on this chain's topics (/taiko/{chain_id}/…); {} connected",
            o.on_chain_topics,
            config.ready_min_peers,
            o.peers.len()
        );
        let other: Vec<String> = o
            .peers
            .iter()
            .filter(|p| preconfirmation_net::chains::on_other_chain(&p.chain_ids, chain_id))
            .map(|p| format!("{} on chain {:?}", p.peer_id, p.chain_ids))
            .collect();
        if !other.is_empty() {
            reason.push_str(&format!(
                "; on another chain: {} (is the chain id right?)",
                other.join(", ")
            ));
        }
        failing.push(FailingCondition::new("peers", reason));
    }
    if o.schedule.current_preconfer.is_none() {
        let mut reason = format!(
            "no preconfer known for the current window (source {})",
            o.schedule.source
        );
        if let Some(e) = &o.schedule.last_error {
            reason.push_str(&format!("; last L1 error: {e}"));
        }
        failing.push(FailingCondition::new("schedule", reason));
    }
    if let Some(d) = &o.disagreement {
        let signers = d
            .signers
            .map(|(expected, actual)| {
                format!(
                    " (the schedule elects {expected}, their commitments are signed by {actual})"
                )
            })
            .unwrap_or_default();
        failing.push(FailingCondition::new(
            "schedule",
            format!(
                "every peer's commitments ({} peers) fail the local schedule check {}{signers}: \
                 is lookahead.preconfers right?",
                d.peers.len(),
                d.rule
            ),
        ));
    }
    let local = o.sdk.head_block_number;
    let target = match o.sdk.sync {
        HeadSyncStatus::Syncing { target, .. } => target,
        _ => 0,
    };
    let best = o.best_peer_head.map_or(0, |h| h.block_number).max(target);
    let behind = best.saturating_sub(local);
    if o.sdk.sync == HeadSyncStatus::Idle {
        failing.push(FailingCondition::new(
            "head",
            "not compared with the peers' heads yet (catch-up has not finished a round)".into(),
        ));
    } else if o.on_chain_topics > 0 && o.best_peer_head.is_none() {
        failing.push(FailingCondition::new(
            "head",
            "no connected peer has reported its head yet".into(),
        ));
    } else if behind > config.ready_max_blocks_behind {
        failing.push(FailingCondition::new(
            "head",
            format!(
                "head {local} is {behind} blocks behind the best peer head {best} (at most {} \
                 allowed)",
                config.ready_max_blocks_behind
            ),
        ));
    }
    if let Some(e) = &o.storage_error {
        failing.push(FailingCondition::new(
            "storage",
            format!("storage failing: {e}"),
        ));
    }
    ReadyStatus::from_failing(failing)
}

/// The node's status: identity, chain, peers by chain, head and its age, sync, readiness,
/// buffers, storage, schedule, version, uptime. Shared by `GET /status` and the
/// `preconf_status` RPC.
pub(crate) async fn status_json(context: &NodeContext) -> Result<NodeStatus, NodeError> {
    let observed = observe(context).await?;
    let ready = readiness(context, &observed);
    let Observed {
        sdk: sdk_status,
        peers,
        on_chain_topics,
        best_peer_head,
        schedule,
        disagreement,
        storage_error,
    } = observed;
    let chain_id = context.config.sdk.chain.chain_id;
    let listen_addrs = context
        .sdk
        .listen_addrs()
        .await?
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut by_chain = BTreeMap::new();
    let mut other_chain = 0;
    for p in &peers {
        if p.chain_ids.is_empty() {
            *by_chain.entry("unidentified".to_string()).or_insert(0) += 1;
        }
        for id in &p.chain_ids {
            *by_chain.entry(id.to_string()).or_insert(0) += 1;
        }
        if preconfirmation_net::chains::on_other_chain(&p.chain_ids, chain_id) {
            other_chain += 1;
        }
    }
    let list: Vec<PeerStatus> = peers
        .into_iter()
        .map(|p| PeerStatus {
            peer_id: p.peer_id.to_string(),
            score: p.score,
            profile: if p.extended { "extended" } else { "strict" },
            ping_rtt_ms: p.ping_rtt.map(|d| d.as_secs_f64() * 1e3),
            served_bytes: p.served_bytes,
            gossip_dropped: p.gossip_dropped,
            chain_ids: p.chain_ids,
        })
        .collect();
    let store = context.store.clone();
    let head_number = sdk_status.head_block_number;
    let (storage, head) = tokio::task::spawn_blocking(move || {
        let head = match head_number {
            0 => Ok(None),
            n => store.commitment_by_number(n),
        };
        store.stats().and_then(|stats| Ok((stats, head?)))
    })
    .await
    .map_err(|e| NodeError::Storage(format!("stats task failed: {e}")))?
    .map_err(NodeError::storage)?;
    let now = unix_now();
    let head_timestamp = head.map(|c| u256_to_u64(c.preconf().timestamp));
    let preconfer = context.preconfer.as_deref().map(secret_key_to_address);
    Ok(NodeStatus {
        chain_id,
        peer_id: context.sdk.local_peer_id().to_string(),
        enr: context.sdk.network().local_enr().map(|e| e.to_base64()),
        listen_addrs,
        peers: PeersStatus {
            count: list.len(),
            on_chain_topics,
            by_chain,
            other_chain,
            list,
        },
        head: HeadStatus {
            block_number: sdk_status.head_block_number,
            hash: sdk_status.head_hash,
            window_end: u256_to_u64(sdk_status.head_window_end),
        },
        head_timestamp,
        head_age_s: head_timestamp.map(|t| now.saturating_sub(t)),
        best_peer_head: best_peer_head.map(|h| PeerHeadStatus {
            peer_id: h.peer.to_string(),
            block_number: h.block_number,
            age_s: h.at.elapsed().as_secs(),
            blocks_behind: h.block_number.saturating_sub(head_number),
        }),
        sync: sdk_status.sync,
        ready,
        pending: PendingStatus {
            pending_parent: sdk_status.pending_parent,
            pending_schedule: sdk_status.pending_schedule,
            orphan_txlists: sdk_status.orphan_txlists,
            missing_txlists: sdk_status.missing_txlists,
        },
        storage,
        storage_error,
        storage_write_failures: context.storage_health.failures(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: context.started.elapsed().as_secs(),
        preconfer,
        is_preconfer_now: preconfer.is_some() && preconfer == schedule.current_preconfer,
        schedule,
        schedule_disagreement: disagreement.as_ref().map(DisagreementStatus::of),
    })
}
