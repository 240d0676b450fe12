//! The JSON-RPC 2.0 server (HTTP and WebSocket) for sidecars in any language.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::NodeContext;

/// Binds `context.config.rpc.addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    context: NodeContext,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let addr = context.config.rpc.addr;
    let _ = shutdown;
    Err(NodeError::Server {
        server: "rpc",
        addr,
        reason: "not yet implemented".into(),
    })
}
