//! The integration-test harness (feature `test-utils`), shared by the tests of the node
//! library, of these tools and of the binary: in-process nodes on 127.0.0.1 with real redb data
//! dirs ([`node_config`] is the [`loopback`](crate::loopback) preset), one Prometheus recorder
//! per test process, a minimal HTTP GET, key files, an in-memory serving peer, and the hostile
//! peers of [`adversary`], the permissionless schedule's test L1 ([`lookahead`]). Every wait
//! is bounded by [`WAIT`].

pub mod adversary;
pub mod lookahead;

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use p2p::testkit::ChainBuilder;
use preconf_node_core::{Node, NodeConfig};
use preconfirmation_net::Multiaddr;
use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::{Address, ChainSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::loopback;
pub use crate::loopback::node_config;

/// Bound of every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// The test chain.
pub fn chain() -> ChainSpec {
    ChainSpec::new(167_001, Address::repeat_byte(0x51))
}

/// A builder of 3 preconfers rotating every 4 one-second slots, genesis 50 s ago.
pub fn builder() -> ChainBuilder {
    ChainBuilder::in_the_past(chain(), 3, 4, 50)
}

/// The process-wide Prometheus recorder (installed once; the `metrics` facade is global).
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("first and only recorder of this test process")
        })
        .clone()
}

/// Starts a node with the shared recorder.
pub async fn start(config: NodeConfig) -> Node {
    Node::start(config, Some(prometheus()))
        .await
        .expect("node starts")
}

/// `node`'s first listen address with `/p2p/<peer id>`, to give another node as a static peer.
pub async fn p2p_addr(node: &Node) -> Multiaddr {
    let addr = node
        .sdk()
        .listen_addrs()
        .await
        .expect("listen addrs")
        .into_iter()
        .next()
        .expect("one listen address");
    addr.with(Protocol::P2p(node.sdk().local_peer_id()))
}

/// A response of [`http_get`].
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, lower-cased names: `name: value`.
    pub headers: Vec<String>,
    /// Body.
    pub body: String,
}

impl HttpResponse {
    /// The value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|h| {
            let (n, v) = h.split_once(':')?;
            (n.trim().eq_ignore_ascii_case(name)).then(|| v.trim())
        })
    }
}

/// `GET path` over HTTP/1.1 with `Connection: close`; the body is read to EOF.
pub async fn http_get(addr: SocketAddr, path: &str) -> HttpResponse {
    http_request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .await
}

/// Sends `request` (a whole HTTP/1.1 request with `Connection: close`) to `addr` and reads the
/// response to EOF.
pub async fn http_request(addr: SocketAddr, request: &str) -> HttpResponse {
    tokio::time::timeout(WAIT, async {
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .expect("connect to the HTTP server");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send request");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.expect("read response");
        let text = String::from_utf8(raw).expect("utf-8 response");
        let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        HttpResponse {
            status,
            headers: lines.map(str::to_string).collect(),
            body: body.to_string(),
        }
    })
    .await
    .expect("HTTP response within the bound")
}

/// Writes `key` as hex to `dir/preconfer.key` with mode 0600 and returns the path.
pub fn write_key_file(dir: &Path, key: &SecretKey) -> PathBuf {
    let path = dir.join("preconfer.key");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .expect("create key file");
    writeln!(file, "0x{}", hex::encode(key.to_secret_bytes())).expect("write key file");
    path
}

/// `0x`-prefixed hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Stores `block`'s tx list, if it has one, in `storage`.
pub fn put_txlist(storage: &dyn p2p::SdkStorage, block: &p2p::testkit::Block) {
    let Some(txlist) = &block.txlist else {
        return;
    };
    let number = u64::try_from(block.commitment.preconf().block_number).expect("u64");
    storage
        .put_txlist(
            txlist.raw_tx_list_hash,
            number,
            bytes::Bytes::from(txlist.txlist.to_vec()),
        )
        .expect("store the tx list");
}

/// An in-process serving peer (an SDK on in-memory storage, no catch-up of its own) holding
/// `blocks`, each with its tx list, and answering with `rate_limit`. Returns it, its events
/// and its dialable address.
pub async fn serving_peer(
    builder: &ChainBuilder,
    blocks: &[p2p::testkit::Block],
    rate_limit: preconfirmation_net::RateLimitConfig,
) -> (p2p::P2pSdk, p2p::SdkEvents, Multiaddr) {
    use p2p::SdkStorage;
    let storage = std::sync::Arc::new(p2p::MemoryStorage::new(p2p::MemoryStorageLimits {
        max_commitments: blocks.len() + 1,
        max_txlists: blocks.len() + 1,
        max_txlist_bytes: usize::MAX / 2,
    }));
    for chunk in blocks.chunks(4096) {
        let commitments: Vec<_> = chunk.iter().map(|b| b.commitment.clone()).collect();
        storage.put_commitments(&commitments).expect("fill");
    }
    for block in blocks {
        put_txlist(&*storage, block);
    }
    let mut config = loopback::sdk_config(*builder.chain());
    config.rules.window_end_grace = p2p::testkit::REPLAY_WINDOW_END_GRACE;
    config.network.rate_limit = rate_limit;
    config.catchup.enabled = false;
    let (sdk, events) = p2p::P2pSdk::start(config, storage, builder.lookahead(), None)
        .await
        .expect("serving peer starts");
    let addr = sdk.listen_addrs().await.expect("addrs")[0]
        .clone()
        .with(Protocol::P2p(sdk.local_peer_id()));
    (sdk, events, addr)
}
