//! The HTTP server: `/metrics`, `/health`, `/ready`, `/status` and the operator page.
//!
//! | path | answer |
//! |---|---|
//! | `GET /metrics` | Prometheus text (`text/plain; version=0.0.4`); 503 when this process has no recorder |
//! | `GET /health` | alive: 200 `ok` once the node serves; 503 `starting` before and while stopping. Nothing else fails it: a node that is up but not useful is alive, and a restart would not make it useful |
//! | `GET /ready` | ready: 200 when every readiness condition holds, else 503; either way a [`ReadyStatus`](crate::status::ReadyStatus) JSON naming each failing condition |
//! | `GET /status` | [`NodeStatus`](crate::status::NodeStatus) as JSON (the same document as the `preconf_status` RPC) |
//! | `GET /`, `/ui/*` | the operator page and its live feed ([`crate::ui`]) |
//!
//! The server binds `http.addr` (port 0 picks a free port) and stops, finishing requests in
//! flight, when the node's shutdown token is cancelled.
//!

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug_span, info, warn, Instrument};

use crate::context::NodeContext;
use crate::error::NodeError;
use crate::status::{ready_status, status_json};

/// Content type of the Prometheus text exposition format.
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Binds `context.config.http.addr` and serves until `shutdown`; returns the bound address.
pub async fn serve(
    context: NodeContext,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, JoinHandle<()>), NodeError> {
    let addr = context.config.http.addr;
    let server_error = |reason: String| NodeError::Server {
        server: "http",
        addr,
        reason,
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| server_error(e.to_string()))?;
    let bound = listener
        .local_addr()
        .map_err(|e| server_error(e.to_string()))?;
    let app = router(context, shutdown.clone());
    let task = tokio::spawn(
        async move {
            info!(addr = %bound, "HTTP server listening");
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
            {
                warn!(error = %e, "HTTP server failed");
            }
            info!("HTTP server stopped");
        }
        .instrument(tracing::info_span!("http", addr = %bound)),
    );
    Ok((bound, task))
}

/// The routes. New pages (an operator page at `GET /`, …) are added here.
fn router(context: NodeContext, shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/status", get(status))
        .with_state(context.clone())
        .merge(crate::ui::routes(context, shutdown))
}

async fn metrics(State(context): State<NodeContext>) -> Response {
    match &context.prometheus {
        Some(handle) => {
            let text = handle.render();
            ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response()
        }
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

/// Alive: the node serves (see the module docs for why nothing else fails it).
async fn health(State(context): State<NodeContext>) -> Response {
    if context.serving.load(Ordering::Acquire) {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response()
    }
}

/// Ready: every readiness condition holds ([`crate::status`]); 503 naming those that do not.
async fn ready(State(context): State<NodeContext>) -> Response {
    let report = ready_status(&context)
        .instrument(debug_span!("http_ready"))
        .await;
    let code = if report.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report)).into_response()
}

async fn status(State(context): State<NodeContext>) -> Response {
    match status_json(&context)
        .instrument(debug_span!("http_status"))
        .await
    {
        Ok(status) => Json(status).into_response(),
        Err(e) => {
            warn!(error = %e, "status failed");
            (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}
