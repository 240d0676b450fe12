//! The driver's req/resp: sending our requests (paced by [`crate::reqresp::self_limiter`]),
//! their answers and failures, and inbound requests — admitted by the peer manager's limits,
//! handed to the SDK with a [`Responder`], and answered (or closed) when it replies or times
//! out.

use std::time::Instant;

use futures::future::BoxFuture;
use futures::FutureExt;
use libp2p::request_response::{
    self, InboundFailure, InboundRequestId, OutboundFailure, ResponseChannel,
};
use libp2p::PeerId;
use preconfirmation_types::ReqRespKind;
use tokio::sync::oneshot;
use tracing::{debug, info_span};

use super::{Driver, Outbound};
use crate::error::{CodecError, RequestError};
use crate::event::{InboundRequest, NetworkEvent, Responder};
use crate::metrics;
use crate::reqresp::budget::{max_response_bytes, response_len};
use crate::reqresp::codec::{Request, Response, SLOW_REQUEST_PENALTY_REASON};
use crate::reqresp::rate_limiter::Admission;
use crate::reqresp::self_limiter::Held;

impl Driver {
    /// Sends `request` to `peer` unless it is banned or our pacing holds it back (a held
    /// request fails at once with the time a retry fits); the reply waits for the answer.
    pub(super) fn send_request(
        &mut self,
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, RequestError>>,
    ) {
        let kind = request.kind();
        if self.peers.is_banned(&peer) {
            metrics::reqresp(kind, "outbound", outcome_label(&RequestError::Disconnected));
            let _ = reply.send(Err(RequestError::Disconnected));
            return;
        }
        let max_response = max_response_bytes(&request);
        let reserved = match self.pacer.admit(peer, kind, max_response, Instant::now()) {
            Ok(reserved) => reserved,
            Err(held) => {
                let err = match held {
                    Held::Throttled(retry) => RequestError::Throttled(retry),
                    Held::Unsupported => {
                        RequestError::Refused(format!("peer does not advertise {}", kind.label()))
                    }
                };
                debug!(%peer, protocol = kind.label(), error = %err, "outbound request held");
                metrics::reqresp(kind, "outbound", outcome_label(&err));
                let _ = reply.send(Err(err));
                return;
            }
        };
        let id = self
            .swarm
            .behaviour_mut()
            .reqresp(kind)
            .send_request(&peer, request);
        debug!(%peer, protocol = kind.label(), reserved, "outbound request");
        self.outbound
            .insert((kind, id), Outbound { reply, reserved });
    }

    /// One event of `kind`'s req/resp behaviour: an inbound request, the answer to or failure
    /// of one of ours, or the end of an inbound one.
    pub(super) fn on_reqresp(
        &mut self,
        kind: ReqRespKind,
        event: request_response::Event<Request, Response>,
    ) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => self.on_inbound_request(peer, request_id, request, channel),
            Event::Message {
                peer,
                message:
                    Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(Outbound { reply, reserved }) =
                    self.outbound.remove(&(kind, request_id))
                {
                    let res = if response.kind() == kind {
                        let len = response_len(&response);
                        self.pacer
                            .answered(&peer, kind, reserved, len, Instant::now());
                        metrics::reqresp(kind, "outbound", "ok");
                        Ok(response)
                    } else {
                        self.pacer.done(&peer, kind);
                        let err = RequestError::Decode("mismatched response".into());
                        metrics::reqresp(kind, "outbound", outcome_label(&err));
                        Err(err)
                    };
                    debug!(%peer, protocol = kind.label(), ok = res.is_ok(), "response");
                    let _ = reply.send(res);
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let Some(Outbound { reply, .. }) = self.outbound.remove(&(kind, request_id)) else {
                    return;
                };
                // No refund: we do not know what the peer served.
                self.pacer.done(&peer, kind);
                let err = match error {
                    OutboundFailure::Timeout => RequestError::Timeout,
                    OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => {
                        RequestError::Disconnected
                    }
                    OutboundFailure::UnsupportedProtocols => {
                        RequestError::Refused("protocol not supported".into())
                    }
                    OutboundFailure::Io(e) => match CodecError::from_io(&e) {
                        Some(codec) => {
                            let err = RequestError::from(codec.clone());
                            self.penalize(peer, "bad_response");
                            err
                        }
                        None => {
                            // The stream closed without an answer: the peer refused a
                            // request our pacing admitted, so it runs tighter limits.
                            self.pacer.refused(&peer, kind, Instant::now());
                            RequestError::Refused(e.to_string())
                        }
                    },
                };
                debug!(%peer, protocol = kind.label(), error = %err, "outbound request failed");
                metrics::reqresp(kind, "outbound", outcome_label(&err));
                let _ = reply.send(Err(err));
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                self.peers.inbound_done((kind, request_id), Instant::now());
                if let InboundFailure::Io(e) = &error {
                    if let Some(codec) = CodecError::from_io(e) {
                        let reason = penalty_reason(codec);
                        debug!(%peer, error = %codec, "inbound request refused");
                        self.penalize(peer, reason);
                        return;
                    }
                }
                debug!(%peer, %error, "inbound request failed");
            }
            Event::ResponseSent { request_id, .. } => {
                self.peers.inbound_done((kind, request_id), Instant::now());
            }
        }
    }

    /// An inbound request: refused (closed, and penalised beyond the grace) when invalid or
    /// over the peer's limits, else handed to the SDK, whose answer is awaited up to the
    /// request timeout.
    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        id: InboundRequestId,
        request: Request,
        channel: ResponseChannel<Response>,
    ) {
        let kind = request.kind();
        let span = info_span!("inbound_request", %peer, protocol = kind.label());
        let _enter = span.enter();
        if self.peers.is_banned(&peer) {
            return;
        }
        if let Request::Invalid(_, error) = &request {
            // Over-cap prefix, malformed body, or not all there within the read timeout
            // (slowloris): nothing more is read; close the stream without a response and
            // penalise the sender.
            let reason = penalty_reason(error);
            debug!(%error, reason, "invalid inbound request");
            metrics::reqresp(kind, "inbound", reason);
            drop(channel);
            self.penalize(peer, reason);
            return;
        }
        let now = Instant::now();
        let max_response = max_response_bytes(&request);
        let admission = self.peers.admit(peer, kind, (kind, id), max_response, now);
        if admission != Admission::Allow {
            let reason = admission.label();
            metrics::reqresp(kind, "inbound", reason);
            drop(channel);
            if self.peers.refusal_penalised(peer, now) {
                debug!(reason, "inbound request refused");
                self.penalize(peer, reason);
            } else {
                // Within the grace: an honest node may be learning our limits.
                debug!(reason, "inbound request refused, without penalty (grace)");
                metrics::refusal_forgiven(kind, reason);
            }
            return;
        }
        let timeout = self.config.request_timeout;
        let (event, answer) = match request {
            Request::GetHead => to_sdk(Response::Head, |responder| InboundRequest::GetHead {
                peer,
                responder,
            }),
            Request::GetCommitmentsByNumber(request) => {
                to_sdk(Response::Commitments, |responder| {
                    InboundRequest::GetCommitmentsByNumber {
                        peer,
                        request,
                        responder,
                    }
                })
            }
            Request::Invalid(..) => return,
            Request::GetRawTxList(request) => to_sdk(Response::RawTxList, |responder| {
                InboundRequest::GetRawTxList {
                    peer,
                    request,
                    responder,
                }
            }),
            Request::GetRawTxLists(request) => to_sdk(Response::RawTxLists, |responder| {
                InboundRequest::GetRawTxLists {
                    peer,
                    request,
                    responder,
                }
            }),
        };
        if !self.emit(NetworkEvent::InboundRequest(event), "inbound_request") {
            metrics::reqresp(kind, "inbound", "dropped");
            self.peers.inbound_done((kind, id), Instant::now());
            return;
        }
        // Counted once, when it ends: `served`, `stream_closed` or `unanswered`.
        self.pending_answers.push(
            async move {
                let answer = tokio::time::timeout(timeout, answer).await.ok().flatten();
                (id, peer, kind, channel, answer)
            }
            .boxed(),
        );
    }

    /// The SDK's answer to an inbound request (`None`: none in time): sent, and the byte
    /// reservation refunded down to what was sent, or the stream closed.
    pub(super) fn on_answer(
        &mut self,
        id: InboundRequestId,
        peer: PeerId,
        kind: ReqRespKind,
        channel: ResponseChannel<Response>,
        answer: Option<Response>,
    ) {
        let now = Instant::now();
        match answer {
            Some(response) => {
                let len = response_len(&response);
                if self
                    .swarm
                    .behaviour_mut()
                    .reqresp(kind)
                    .send_response(channel, response)
                    .is_err()
                {
                    // Nothing served: the reservation is refunded in full.
                    metrics::reqresp(kind, "inbound", "stream_closed");
                    self.peers.inbound_done((kind, id), now);
                    return;
                }
                // Refund the reservation down to what is sent, now rather than when libp2p
                // reports it written: the requester refunds when it has read it, later.
                self.peers.response_sent((kind, id), len, now);
                metrics::reqresp(kind, "inbound", "served");
                metrics::response_bytes(kind, len);
                if let Some(c) = self.connected.get_mut(&peer) {
                    c.served_bytes = c.served_bytes.saturating_add(len);
                }
            }
            None => {
                debug!(%peer, protocol = kind.label(), "no answer from the SDK; closing stream");
                metrics::reqresp(kind, "inbound", "unanswered");
                drop(channel);
                self.peers.inbound_done((kind, id), now);
            }
        }
    }
}

/// An inbound request as the SDK gets it: the event `event` builds around a fresh
/// [`Responder`], and the future of its answer as the [`Response`] variant `response` (`None`
/// if the responder is dropped).
fn to_sdk<T: Send + 'static>(
    response: fn(T) -> Response,
    event: impl FnOnce(Responder<T>) -> InboundRequest,
) -> (InboundRequest, BoxFuture<'static, Option<Response>>) {
    let (responder, rx) = Responder::new();
    (
        event(responder),
        rx.map(move |r| r.ok().map(response)).boxed(),
    )
}

/// The penalty reason (and metric label) of an inbound request the codec refused.
fn penalty_reason(e: &CodecError) -> &'static str {
    match e {
        CodecError::Oversize { .. } => "oversize_request",
        CodecError::ReadTimeout { .. } => SLOW_REQUEST_PENALTY_REASON,
        CodecError::Varint(_) | CodecError::Decode(_) => "malformed_request",
    }
}

fn outcome_label(e: &RequestError) -> &'static str {
    match e {
        RequestError::Timeout => "timeout",
        RequestError::Refused(_) => "refused",
        RequestError::Oversize { .. } => "oversize",
        RequestError::Decode(_) => "decode",
        RequestError::Disconnected => "disconnected",
        RequestError::Shutdown => "shutdown",
        RequestError::Throttled(_) => "throttled",
    }
}
