//! Shared helpers of the SDK's multi-node tests: real `preconfirmation-net` over TCP on
//! 127.0.0.1, every wait bounded by a timeout.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use p2p::testkit::{Block, ChainBuilder};
use p2p::{
    HeadSyncStatus, MemoryStorage, P2pSdk, P2pSdkConfig, PublishReceipt, SdkEvent, SdkEvents,
    SdkStatus, SdkStorage,
};
use preconfirmation_net::{
    GossipVerdict, InboundRequest, NetworkConfig, NetworkEvent, NetworkEvents, P2pService,
    RateLimitConfig,
};
use preconfirmation_types::{
    Address, ChainSpec, GetCommitmentsByNumberRequest, GetCommitmentsByNumberResponse,
    SignedCommitment,
};
use tokio::time::timeout;

/// Bound of every wait.
pub const WAIT: Duration = Duration::from_secs(60);

pub fn chain() -> ChainSpec {
    ChainSpec::new(167_001, Address::repeat_byte(0x51))
}

pub fn network_config() -> NetworkConfig {
    let mut c = NetworkConfig {
        discovery_enabled: false,
        max_connections_per_ip: preconfirmation_net::config::LOOPBACK_MAX_CONNECTIONS_PER_IP,
        // Tests publish blocks far faster than one per 2 s slot.
        gossip_rate_limit: preconfirmation_net::GossipRateLimitConfig::uniform(
            100_000,
            Duration::from_secs(1),
        ),
        request_timeout: Duration::from_secs(3),
        ban_sustain: Duration::from_secs(1),
        // 127.0.0.1, ephemeral ports: never the production 0.0.0.0:9222.
        ..NetworkConfig::loopback()
    };
    c.gossip.heartbeat_interval = Duration::from_millis(200);
    // Catch-up pages are sent quickly in tests; keep the req/resp limiter out of the way.
    c.rate_limit = RateLimitConfig::uniform(1_000, Duration::from_secs(10));
    // Every node of these tests runs those limits, so each may ask the others for as much.
    c.politeness.extended_rate_limit = c.rate_limit;
    c
}

pub fn sdk_config() -> P2pSdkConfig {
    let mut config = P2pSdkConfig::new(chain()).with_network(network_config());
    config.catchup.peer_wait = Duration::from_secs(2);
    config.catchup.retry_backoff = Duration::from_millis(200);
    // The test chains are built in the past and replayed over gossip.
    config.rules.window_end_grace = p2p::testkit::REPLAY_WINDOW_END_GRACE;
    config
}

pub struct Node {
    pub sdk: P2pSdk,
    pub events: SdkEvents,
    pub storage: Arc<MemoryStorage>,
}

pub async fn start_node(config: P2pSdkConfig, builder: &ChainBuilder) -> Node {
    start_with_storage(config, builder, Arc::new(MemoryStorage::default())).await
}

pub async fn start_with_storage(
    config: P2pSdkConfig,
    builder: &ChainBuilder,
    storage: Arc<MemoryStorage>,
) -> Node {
    let (sdk, events) = P2pSdk::start(
        config,
        storage.clone() as Arc<dyn SdkStorage>,
        builder.lookahead(),
        None,
    )
    .await
    .expect("sdk starts");
    Node {
        sdk,
        events,
        storage,
    }
}

pub async fn connect(a: &P2pSdk, b: &P2pSdk) {
    let addr = b.listen_addrs().await.expect("addrs")[0].clone();
    a.dial(addr).await.expect("dial");
}

/// `sdk` dials the bare network node `peer` ([`raw_node`]).
pub async fn connect_raw(sdk: &P2pSdk, peer: &P2pService) {
    let addr = peer.listen_addrs().await.expect("addrs")[0].clone();
    sdk.dial(addr).await.expect("dial");
}

/// Waits for the first event matching `pred`.
pub async fn wait_event<T>(
    events: &mut SdkEvents,
    mut pred: impl FnMut(&SdkEvent) -> Option<T>,
) -> T {
    timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(t) = pred(&event) {
                        return t;
                    }
                }
                Err(p2p::P2pSdkError::Lagged { .. }) => continue,
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .expect("event within the bound")
}

/// Waits until the status satisfies `pred`.
pub async fn wait_status(sdk: &P2pSdk, mut pred: impl FnMut(&SdkStatus) -> bool) -> SdkStatus {
    let mut watch = sdk.watch_status();
    timeout(WAIT, async {
        loop {
            let status = watch.borrow_and_update().clone();
            if pred(&status) {
                return status;
            }
            watch.changed().await.expect("sdk alive");
        }
    })
    .await
    .unwrap_or_else(|_| panic!("status condition not met; last: {:?}", sdk.status()))
}

pub async fn wait_head(sdk: &P2pSdk, head: u64) -> SdkStatus {
    wait_status(sdk, |s| s.head_block_number >= head).await
}

/// Waits until the head is block `head` and every tx list up to it is stored.
pub async fn wait_complete(sdk: &P2pSdk, head: u64) -> SdkStatus {
    wait_status(sdk, |s| {
        s.head_block_number == head && s.missing_txlists == 0
    })
    .await
}

pub async fn wait_live(sdk: &P2pSdk) -> SdkStatus {
    wait_status(sdk, |s| s.sync == HeadSyncStatus::Live).await
}

/// A node whose storage already holds `blocks` ([`seed`]).
pub async fn start_seeded(config: P2pSdkConfig, builder: &ChainBuilder, blocks: &[Block]) -> Node {
    let storage = Arc::new(MemoryStorage::default());
    seed(&storage, blocks);
    start_with_storage(config, builder, storage).await
}

/// Publishes `block` from `sdk`: its commitment and its tx list, if it has one.
pub async fn publish_block(sdk: &P2pSdk, block: &Block) -> PublishReceipt {
    let txlist = block.txlist.as_ref().map(|t| t.txlist.to_vec());
    sdk.publish(block.commitment.clone(), txlist)
        .await
        .expect("publish")
}

/// Stores `blocks` directly (as if accepted earlier), tx lists included.
pub fn seed(storage: &MemoryStorage, blocks: &[Block]) {
    let commitments: Vec<_> = blocks.iter().map(|b| b.commitment.clone()).collect();
    storage
        .put_commitments(&commitments)
        .expect("seed commitments");
    for b in blocks {
        if let Some(t) = &b.txlist {
            let n = u64::try_from(b.commitment.preconf().block_number).expect("u64");
            storage
                .put_txlist(t.raw_tx_list_hash, n, bytes::Bytes::from(t.txlist.to_vec()))
                .expect("seed txlist");
        }
    }
}

/// A bare network node (no SDK) to play a misbehaving peer.
pub async fn raw_node() -> (P2pService, NetworkEvents) {
    let mut config = network_config();
    config.chain_id = chain().chain_id;
    P2pService::start(config, None)
        .await
        .expect("raw node starts")
}

/// Plays the bare network node `peer` as a scripted server: each inbound request goes to
/// `answer`, each gossip message is reported `Ignore` (neither forwarded nor penalised), other
/// events are dropped.
pub fn serve_requests(
    peer: P2pService,
    mut events: NetworkEvents,
    mut answer: impl FnMut(InboundRequest) + Send + 'static,
) {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                NetworkEvent::InboundRequest(request) => answer(request),
                NetworkEvent::Gossip {
                    message_id,
                    peer: from,
                    ..
                } => {
                    let _ = peer.report_validation(message_id, from, GossipVerdict::Ignore);
                }
                _ => {}
            }
        }
    });
}

/// The page of `chain` (block 1 first) that `request` asks for.
pub fn page_of(
    chain: &[SignedCommitment],
    request: &GetCommitmentsByNumberRequest,
) -> GetCommitmentsByNumberResponse {
    let start = u64::try_from(request.start_block_number).unwrap_or(0) as usize;
    let page = chain
        .iter()
        .skip(start.saturating_sub(1))
        .take(request.max_count as usize)
        .cloned()
        .collect();
    GetCommitmentsByNumberResponse::new(page).expect("a page within the cap")
}

/// The events that arrive on `events` until none has for `quiet`.
pub async fn events_until_quiet(events: &mut SdkEvents, quiet: Duration) -> Vec<SdkEvent> {
    let mut seen = Vec::new();
    while let Ok(Ok(event)) = timeout(quiet, events.recv()).await {
        seen.push(event);
    }
    seen
}

pub async fn wait_net_event(
    events: &mut NetworkEvents,
    mut pred: impl FnMut(&NetworkEvent) -> bool,
) -> NetworkEvent {
    timeout(WAIT, async {
        loop {
            let ev = events.recv().await.expect("network alive");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("network event within the bound")
}
