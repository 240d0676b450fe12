//! The HTTP server: `/metrics`, `/health`, `/status`.

use std::net::SocketAddr;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::NodeError;
use crate::node::NodeContext;

/// Binds `context.config.http.addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    context: NodeContext,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let addr = context.config.http.addr;
    let _ = shutdown;
    Err(NodeError::Server {
        server: "http",
        addr,
        reason: "not yet implemented".into(),
    })
}
