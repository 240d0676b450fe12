//! JSON-RPC metrics by method: calls ([`CALLS`]), errors by JSON-RPC code ([`ERRORS`]) and
//! the time to answer ([`CALL_SECONDS`]), recorded by an RPC middleware around every call,
//! single or in a batch, over HTTP and WebSocket.
//!
//! The `method` label is one of this server's methods, or `other` for any name a client makes
//! up, so a client cannot add series. A subscription is counted once, when it is opened
//! (`preconf_subscribe`); its notifications are not calls. Requests refused before they reach
//! a method (an HTTP 401 for a bad JWT, a body over the limit) are not calls either; the 401s
//! are counted by [`crate::rpc::auth::METRIC_AUTH_FAILURES`].

use std::future::Future;
use std::time::{Duration, Instant};

use jsonrpsee::server::middleware::rpc::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::server::{BatchResponseBuilder, MethodResponse};
use jsonrpsee::types::Request;

use super::METHODS;

/// `preconf_rpc_calls_total{method}` (counter).
pub const CALLS: &str = "preconf_rpc_calls_total";
/// `preconf_rpc_errors_total{method,code}`: calls answered with a JSON-RPC error, by its code
/// (counter).
pub const ERRORS: &str = "preconf_rpc_errors_total";
/// `preconf_rpc_call_seconds{method}`: time to answer a call (histogram, with the latency
/// buckets of [`crate::telemetry`]).
pub const CALL_SECONDS: &str = "preconf_rpc_call_seconds";

/// The `method` label of a call named `name`: the method's own name when this server has it,
/// else `other`.
pub fn method_label(name: &str) -> &'static str {
    METHODS
        .iter()
        .copied()
        .find(|m| *m == name)
        .unwrap_or("other")
}

fn record(method: &'static str, elapsed: Duration, error: Option<i32>) {
    metrics::counter!(CALLS, "method" => method).increment(1);
    metrics::histogram!(CALL_SECONDS, "method" => method).record(elapsed.as_secs_f64());
    if let Some(code) = error {
        metrics::counter!(ERRORS, "method" => method, "code" => code.to_string()).increment(1);
    }
}

/// The RPC middleware layer that records [`CALLS`], [`ERRORS`] and [`CALL_SECONDS`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RpcMetricsLayer {
    /// `rpc.max_response_body_bytes`: a batch's answer is built under the same limit as the
    /// server builds it.
    pub(crate) max_response_bytes: usize,
}

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcMetrics {
            inner,
            max_response_bytes: self.max_response_bytes,
        }
    }
}

/// See [`RpcMetricsLayer`].
#[derive(Debug, Clone)]
pub(crate) struct RpcMetrics<S> {
    inner: S,
    max_response_bytes: usize,
}

impl<S> RpcServiceT for RpcMetrics<S>
where
    S: RpcServiceT<
            MethodResponse = MethodResponse,
            BatchResponse = MethodResponse,
            NotificationResponse = MethodResponse,
        > + Send
        + Sync
        + Clone
        + 'static,
{
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let method = method_label(request.method_name());
        let inner = self.inner.clone();
        async move {
            let started = Instant::now();
            let response = inner.call(request).await;
            record(method, started.elapsed(), response.as_error_code());
            response
        }
    }

    /// Each call of the batch goes through [`Self::call`] (the server's own batch handling
    /// would call the inner service directly, unmeasured); the answer is assembled as the
    /// server assembles it.
    fn batch<'a>(&self, batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let this = self.clone();
        async move {
            let mut answers = BatchResponseBuilder::new_with_limit(this.max_response_bytes);
            let mut got_notification = false;
            for entry in batch {
                let response = match entry {
                    Ok(BatchEntry::Call(request)) => this.call(request).await,
                    Ok(BatchEntry::Notification(notification)) => {
                        got_notification = true;
                        this.notification(notification).await;
                        continue;
                    }
                    Err(error) => {
                        let (error, id) = error.into_parts();
                        MethodResponse::error(id, error)
                    }
                };
                if let Err(too_large) = answers.append(response) {
                    return too_large;
                }
            }
            if answers.is_empty() && got_notification {
                MethodResponse::notification()
            } else {
                MethodResponse::from_batch(answers.finish())
            }
        }
    }

    fn notification<'a>(
        &self,
        notification: Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        self.inner.notification(notification)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_server_s_methods_are_labels() {
        assert_eq!(method_label(super::super::HEAD), "preconf_head");
        assert_eq!(
            method_label(super::super::PUBLISH_COMMITMENT),
            "preconf_publishCommitment"
        );
        assert_eq!(method_label("preconf_madeUp"), "other");
        assert_eq!(method_label(""), "other");
    }
}
