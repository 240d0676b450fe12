//! JWT authentication of the JSON-RPC methods that sign or publish.
//!
//! When the node holds a preconfer key, anyone who can reach the RPC port could otherwise make
//! it sign and gossip commitments in the preconfer's name. So, as execution clients guard
//! their engine API, the publishing methods ([`GUARDED_METHODS`]: `preconf_publishCommitment`,
//! `preconf_publishRawTxList` and Taiko's `preconf_publishBlock`) then require
//! `Authorization: Bearer <JWT>`: HS256 over the shared secret in `rpc.jwt_secret_file`
//! (default `<data_dir>/jwt.hex`, created at first start, mode 0600), with an `iat` claim
//! within ±60 s of the node's clock (alloy's engine-API [`JwtSecret::validate`]). The same
//! holds without a preconfer key when `rpc.jwt_secret_file` is set explicitly: setting it is
//! how an operator closes the publishing methods of a relaying node (the file is created as
//! above when missing). Read-only methods and subscriptions stay open (the server listens on
//! localhost by default). With neither a preconfer key nor `rpc.jwt_secret_file` nothing is
//! required: the node then only relays what its caller signed.
//!
//! # Refusals
//!
//! As the engine API does, a refused token is answered with HTTP **401** (with a
//! `WWW-Authenticate: Bearer` header and a JSON-RPC error body, code [`UNAUTHORIZED`]), and
//! logged at WARN with its reason — never the token — and counted in
//! [`METRIC_AUTH_FAILURES`]`{reason}`. The HTTP layer ([`layer`]) checks each HTTP request
//! (and each WebSocket upgrade):
//!
//! - an `Authorization` header that does not hold a valid token — wrong secret
//!   (`wrong_secret`), `iat` more than 60 s from the node's clock (`iat_skew`), an algorithm
//!   other than HS256 such as `none` (`unsupported_algorithm`), a scheme other than Bearer
//!   (`not_bearer`), a token that does not decode (`invalid_token`) — is refused with 401
//!   whatever the request calls;
//! - a request without the header (`missing_header`) is refused with 401 when it calls a
//!   guarded method (alone or in a batch); the read-only methods need no header;
//! - a valid token marks the request [`Authorized`] with its `iat`.
//!
//! The scheme is matched case-insensitively (`bearer` works as `Bearer`): RFC 7235 §2.1 makes
//! authentication schemes case-insensitive, and the engine API's clients send `Bearer`.
//!
//! A WebSocket upgrade without a header is accepted (subscriptions are open), and a WebSocket
//! carries its upgrade's token for the whole connection. On a live socket there is no HTTP
//! status to answer, so a guarded call there is refused with the JSON-RPC error
//! [`UNAUTHORIZED`] (-32015) when the socket had no token (`missing_header`) or when its
//! token's `iat` is no longer within ±60 s at the time of the call (`expired`): it may
//! publish only while that token is fresh, and must reconnect with a new token after that.
//!
//! WARN lines are limited to one per reason every [`WARN_INTERVAL`] (the later ones of the
//! interval are counted in the next line's `suppressed`), so a client retrying a bad token in
//! a loop does not flood the log; the metric counts every one.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use alloy_rpc_types_engine::{JwtError, JwtSecret};
use axum::http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, Method, StatusCode};
use jsonrpsee::core::http_helpers::{read_body, HttpError};
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::Extensions;
use parking_lot::Mutex;
use tracing::warn;

/// JSON-RPC error: the method needs a valid JWT and the request had none (or its token's
/// `iat` is no longer within [`MAX_IAT_DIFF_SECS`] of the node's clock). Over HTTP it comes
/// with status 401.
pub const UNAUTHORIZED: i32 = -32015;

/// Most seconds between a token's `iat` and the node's clock, either way: the engine API's
/// ±60 s (what [`JwtSecret::validate`] checks when the token arrives), checked again at each
/// guarded call.
pub const MAX_IAT_DIFF_SECS: u64 = 60;

/// `preconf_rpc_auth_failures_total{reason}`: requests (or WebSocket calls) refused for their
/// JWT, by [`AuthFailure::label`] (counter).
pub const METRIC_AUTH_FAILURES: &str = "preconf_rpc_auth_failures_total";

/// Shortest time between two WARN lines of one refusal reason.
pub const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// The methods that need a JWT when the node requires one.
pub const GUARDED_METHODS: [&str; 3] = [
    super::PUBLISH_COMMITMENT,
    super::PUBLISH_RAW_TXLIST,
    super::PUBLISH_BLOCK,
];

/// Marks a request whose `Authorization` header carried a valid JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorized {
    /// The token's `iat` (seconds since the Unix epoch).
    pub iat: u64,
}

impl Authorized {
    /// Whether the token is still within [`MAX_IAT_DIFF_SECS`] of `now` (Unix seconds).
    pub fn is_fresh_at(&self, now: u64) -> bool {
        now.abs_diff(self.iat) <= MAX_IAT_DIFF_SECS
    }
}

/// Why a JWT was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthFailure {
    /// No `Authorization` header (or one that is not text).
    MissingHeader,
    /// An `Authorization` header whose scheme is not `Bearer` (any case).
    NotBearer,
    /// The token's header names an algorithm other than HS256 (e.g. `none`).
    UnsupportedAlgorithm(String),
    /// The signature does not verify with the node's secret.
    WrongSecret,
    /// The token's `iat` is more than [`MAX_IAT_DIFF_SECS`] from the node's clock.
    IatSkew {
        /// The token's `iat`, when it has a readable one.
        iat: Option<u64>,
        /// The node's clock (Unix seconds).
        now: u64,
    },
    /// A WebSocket's token, valid at its upgrade, is no longer fresh at this call.
    Expired {
        /// The token's `iat`.
        iat: u64,
        /// The node's clock at the call (Unix seconds).
        now: u64,
    },
    /// The token does not decode as a JWT with the claims the engine API requires.
    InvalidToken(String),
}

impl AuthFailure {
    /// Stable label (the `reason` of [`METRIC_AUTH_FAILURES`] and of the log line).
    pub fn label(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::NotBearer => "not_bearer",
            Self::UnsupportedAlgorithm(_) => "unsupported_algorithm",
            Self::WrongSecret => "wrong_secret",
            Self::IatSkew { .. } => "iat_skew",
            Self::Expired { .. } => "expired",
            Self::InvalidToken(_) => "invalid_token",
        }
    }

    /// What a client is told (and the log says): the reason, never the token.
    pub fn message(&self) -> String {
        let window = MAX_IAT_DIFF_SECS;
        match self {
            Self::MissingHeader => format!(
                "publishing on this node needs `Authorization: Bearer <JWT>` (HS256 with the \
                 secret in rpc.jwt_secret_file, iat within {window} s)"
            ),
            Self::NotBearer => "the Authorization header must be `Bearer <JWT>`".to_string(),
            Self::UnsupportedAlgorithm(alg) => {
                format!("JWT algorithm {alg:?} is not accepted: only HS256")
            }
            Self::WrongSecret => {
                "the JWT's signature does not verify with the secret in rpc.jwt_secret_file"
                    .to_string()
            }
            Self::IatSkew { iat, now } => match iat {
                Some(iat) => format!(
                    "the JWT's iat ({iat}) is {} s from the node's clock ({now}); at most \
                     {window} s are allowed",
                    now.abs_diff(*iat)
                ),
                None => format!("the JWT's iat is not within {window} s of the node's clock"),
            },
            Self::Expired { iat, now } => format!(
                "the JWT of this connection has expired (iat {iat}, now {now}; at most \
                 {window} s apart): publishing over a WebSocket works while its upgrade's \
                 token is fresh; reconnect with a new token"
            ),
            Self::InvalidToken(detail) => format!("the JWT does not decode: {detail}"),
        }
    }

    /// The JSON-RPC error a refused call gets.
    pub fn to_error(&self) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(UNAUTHORIZED, self.message(), None::<()>)
    }
}

/// Who may call the guarded methods.
#[derive(Debug, Clone, Copy)]
pub enum RpcAuth {
    /// No preconfer key and no `rpc.jwt_secret_file`: every method is open.
    Open,
    /// A preconfer key or an explicit `rpc.jwt_secret_file`: the guarded methods need a JWT
    /// signed with this secret.
    Jwt(JwtSecret),
}

impl RpcAuth {
    /// Whether `extensions` (of one call) may use a guarded method now.
    pub fn check(&self, extensions: &Extensions) -> Result<(), AuthFailure> {
        self.check_at(extensions, unix_now())
    }

    /// [`Self::check`] at `now` (Unix seconds).
    pub fn check_at(&self, extensions: &Extensions, now: u64) -> Result<(), AuthFailure> {
        let Self::Jwt(_) = self else {
            return Ok(());
        };
        match extensions.get::<Authorized>() {
            Some(mark) if mark.is_fresh_at(now) => Ok(()),
            Some(mark) => Err(AuthFailure::Expired { iat: mark.iat, now }),
            None => Err(AuthFailure::MissingHeader),
        }
    }

    /// Checks `header` (the `Authorization` value) at `now`: the mark of a valid token, or
    /// why it is refused. Always refused when the node requires no token (`Open`): there is
    /// nothing to check it against.
    pub fn verify(&self, header: Option<&str>, now: u64) -> Result<Authorized, AuthFailure> {
        let Self::Jwt(secret) = self else {
            return Err(AuthFailure::MissingHeader);
        };
        let header = header.ok_or(AuthFailure::MissingHeader)?.trim();
        let (scheme, token) = header.split_once(' ').ok_or(AuthFailure::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthFailure::NotBearer);
        }
        let token = token.trim();
        match token_alg(token) {
            Some(alg) if alg == "HS256" => {}
            Some(alg) => return Err(AuthFailure::UnsupportedAlgorithm(alg)),
            None => {
                return Err(AuthFailure::InvalidToken(
                    "its header is not base64url JSON with an `alg`".into(),
                ))
            }
        }
        secret.validate(token).map_err(|e| match e {
            JwtError::InvalidSignature => AuthFailure::WrongSecret,
            JwtError::InvalidIssuanceTimestamp => AuthFailure::IatSkew {
                iat: token_iat(token),
                now,
            },
            JwtError::UnsupportedSignatureAlgorithm => {
                AuthFailure::UnsupportedAlgorithm("not HS256".into())
            }
            JwtError::JwtDecodingError(detail) => AuthFailure::InvalidToken(detail),
            other => AuthFailure::InvalidToken(other.to_string()),
        })?;
        // Validated: the signature covers the payload, which holds a numeric `iat`.
        let iat = token_iat(token)
            .ok_or_else(|| AuthFailure::InvalidToken("no numeric iat claim".into()))?;
        Ok(Authorized { iat })
    }
}

/// WARNs refusals, at most one line per reason every [`WARN_INTERVAL`], and counts each in
/// [`METRIC_AUTH_FAILURES`]. Shared by the HTTP layer and the guarded methods.
#[derive(Debug, Default)]
pub struct AuthFailureLog {
    /// Per reason: when its last line was written, and the refusals left out since.
    last: Mutex<HashMap<&'static str, (Instant, u64)>>,
}

impl AuthFailureLog {
    /// Records one refusal: the metric always, a WARN line unless one of the same reason was
    /// written within [`WARN_INTERVAL`].
    pub fn refused(&self, failure: &AuthFailure, transport: &'static str) {
        let reason = failure.label();
        metrics::counter!(METRIC_AUTH_FAILURES, "reason" => reason).increment(1);
        let now = Instant::now();
        let suppressed = {
            let mut last = self.last.lock();
            match last.get_mut(reason) {
                Some((at, left_out)) if now.duration_since(*at) < WARN_INTERVAL => {
                    *left_out += 1;
                    return;
                }
                Some((at, left_out)) => {
                    *at = now;
                    std::mem::take(left_out)
                }
                None => {
                    last.insert(reason, (now, 0));
                    0
                }
            }
        };
        warn!(
            reason,
            transport,
            suppressed,
            detail = %failure.message(),
            "JSON-RPC request refused: bad or missing JWT"
        );
    }
}

/// Seconds since the Unix epoch (0 for a clock before it: no token is fresh then).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One base64url JSON segment of a JWT (`0` header, `1` payload), unverified.
fn token_segment<T: serde::de::DeserializeOwned>(token: &str, index: usize) -> Option<T> {
    let segment = token.split('.').nth(index)?;
    let json = base64url_decode(segment)?;
    serde_json::from_slice(&json).ok()
}

/// The `alg` of a JWT's header, unverified.
fn token_alg(token: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Header {
        alg: String,
    }
    token_segment::<Header>(token, 0).map(|h| h.alg)
}

/// The `iat` claim of a JWT (`header.payload.signature`, base64url JSON), unverified: trust it
/// only on a token that [`JwtSecret::validate`] accepted.
fn token_iat(token: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Iat {
        iat: u64,
    }
    token_segment::<Iat>(token, 1).map(|c| c.iat)
}

/// Decodes unpadded base64url (RFC 4648 §5, as JWTs use it; trailing `=` is tolerated);
/// `None` on any other character or an impossible length.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Whether a JSON-RPC body (one call or a batch) calls a [`GUARDED_METHODS`] method. A body
/// that does not parse calls none (the server answers it with a parse error).
pub fn calls_guarded_method(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Call<'a> {
        #[serde(borrow, default)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    let guarded = |call: &Call<'_>| {
        call.method
            .as_deref()
            .is_some_and(|m| GUARDED_METHODS.contains(&m))
    };
    if let Ok(call) = serde_json::from_slice::<Call<'_>>(body) {
        return guarded(&call);
    }
    serde_json::from_slice::<Vec<Call<'_>>>(body).is_ok_and(|calls| calls.iter().any(guarded))
}

/// The 401 answer to a refused request: a JSON-RPC error (id null) with `WWW-Authenticate`.
fn unauthorized(failure: &AuthFailure) -> HttpResponse {
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": UNAUTHORIZED, "message": failure.message() },
        "id": null,
    });
    let challenge = match failure {
        AuthFailure::MissingHeader => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    let mut response = HttpResponse::new(HttpBody::from(body.to_string()));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

/// The HTTP layer that checks the JWT of each request (see the module docs): marks requests
/// with a valid token [`Authorized`], answers refused ones with 401.
pub fn layer(auth: Arc<RpcAuth>, log: Arc<AuthFailureLog>, max_body_bytes: u32) -> AuthLayer {
    AuthLayer {
        auth,
        log,
        max_body_bytes,
    }
}

/// See [`layer`].
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<RpcAuth>,
    log: Arc<AuthFailureLog>,
    max_body_bytes: u32,
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
            log: self.log.clone(),
            max_body_bytes: self.max_body_bytes,
        }
    }
}

/// See [`layer`].
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<RpcAuth>,
    log: Arc<AuthFailureLog>,
    max_body_bytes: u32,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

impl<S> tower::Service<HttpRequest> for AuthService<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse> + Clone + Send + 'static,
    S::Error: Into<BoxError> + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut request: HttpRequest) -> Self::Future {
        // The service polled ready is the one to call; a clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        if let RpcAuth::Open = *self.auth {
            return Box::pin(async move { inner.call(request).await.map_err(Into::into) });
        }
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or_default());
        let failure = match self.auth.verify(header, unix_now()) {
            Ok(mark) => {
                request.extensions_mut().insert(mark);
                return Box::pin(async move { inner.call(request).await.map_err(Into::into) });
            }
            Err(failure) => failure,
        };
        let is_upgrade = jsonrpsee::server::ws::is_upgrade_request(&request);
        let transport = if is_upgrade { "ws" } else { "http" };
        if failure != AuthFailure::MissingHeader {
            self.log.refused(&failure, transport);
            return Box::pin(std::future::ready(Ok(unauthorized(&failure))));
        }
        // No header: only the guarded methods need one. A WebSocket may subscribe without
        // (its guarded calls are refused one by one); a JSON-RPC POST is read to see what it
        // calls. Anything else goes on to the server, which answers it as usual (405, 415).
        if is_upgrade
            || request.method() != Method::POST
            || !jsonrpsee::server::http::content_type_is_json(&request)
        {
            return Box::pin(async move { inner.call(request).await.map_err(Into::into) });
        }
        let log = self.log.clone();
        let max = self.max_body_bytes;
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // As the server reads it (same limit, same answers), so nothing changes for a
            // request that needed no token.
            let body = match read_body(&parts.headers, body, max).await {
                Ok((body, _single)) => body,
                Err(HttpError::TooLarge) => {
                    return Ok(jsonrpsee::server::http::response::too_large(max))
                }
                Err(HttpError::Malformed) => {
                    return Ok(jsonrpsee::server::http::response::malformed())
                }
                Err(HttpError::Stream(e)) => {
                    warn!(error = %e, "reading a JSON-RPC request body failed");
                    return Ok(jsonrpsee::server::http::response::internal_error());
                }
            };
            if calls_guarded_method(&body) {
                log.refused(&failure, transport);
                return Ok(unauthorized(&failure));
            }
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let request = HttpRequest::from_parts(parts, HttpBody::from(body));
            inner.call(request).await.map_err(Into::into)
        })
    }
}

#[cfg(test)]
mod tests {
    use alloy_rpc_types_engine::Claims;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;

    use super::*;

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    /// An unsigned JWT (`alg: none`) with this payload.
    fn alg_none(iat: u64) -> String {
        let enc = |json: &str| URL_SAFE_NO_PAD.encode(json);
        format!(
            "{}.{}.",
            enc(r#"{"alg":"none","typ":"JWT"}"#),
            enc(&format!(r#"{{"iat":{iat}}}"#))
        )
    }

    #[test]
    fn only_a_fresh_token_signed_with_the_secret_is_accepted() {
        let secret = JwtSecret::random();
        let auth = RpcAuth::Jwt(secret);
        let claims = Claims::default();
        let now = claims.iat;
        let token = secret.encode(&claims).unwrap();
        assert_eq!(
            auth.verify(Some(&bearer(&token)), now),
            Ok(Authorized { iat: claims.iat })
        );
        assert_eq!(
            auth.verify(Some(&token), now),
            Err(AuthFailure::NotBearer),
            "scheme missing"
        );
        assert_eq!(
            auth.verify(Some(&format!("Basic {token}")), now),
            Err(AuthFailure::NotBearer)
        );
        assert_eq!(auth.verify(None, now), Err(AuthFailure::MissingHeader));
        let other = JwtSecret::random().encode(&Claims::default()).unwrap();
        assert_eq!(
            auth.verify(Some(&bearer(&other)), now),
            Err(AuthFailure::WrongSecret)
        );
        let stale = Claims {
            iat: Claims::default().iat - 3600,
            exp: None,
        };
        let stale_token = secret.encode(&stale).unwrap();
        assert_eq!(
            auth.verify(Some(&bearer(&stale_token)), now)
                .unwrap_err()
                .label(),
            "iat_skew",
            "iat an hour old"
        );
        assert_eq!(
            auth.verify(Some(&bearer(&alg_none(now))), now),
            Err(AuthFailure::UnsupportedAlgorithm("none".into()))
        );
        assert_eq!(
            auth.verify(Some("Bearer not.a.jwt"), now)
                .unwrap_err()
                .label(),
            "invalid_token"
        );
        assert!(RpcAuth::Open.verify(Some(&bearer(&token)), now).is_err());

        let mut marked = Extensions::new();
        marked.insert(Authorized { iat: unix_now() });
        assert!(auth.check(&marked).is_ok());
        assert_eq!(
            auth.check(&Extensions::new()),
            Err(AuthFailure::MissingHeader)
        );
        assert_eq!(AuthFailure::MissingHeader.to_error().code(), UNAUTHORIZED);
        assert!(RpcAuth::Open.check(&Extensions::new()).is_ok());
    }

    /// RFC 7235 §2.1: the scheme is case-insensitive.
    #[test]
    fn the_scheme_is_matched_in_any_case() {
        let secret = JwtSecret::random();
        let auth = RpcAuth::Jwt(secret);
        let claims = Claims::default();
        let token = secret.encode(&claims).unwrap();
        for scheme in ["bearer", "BEARER", "Bearer", "bEaReR"] {
            assert_eq!(
                auth.verify(Some(&format!("{scheme} {token}")), claims.iat),
                Ok(Authorized { iat: claims.iat }),
                "{scheme}"
            );
        }
    }

    /// No failure's message holds the token.
    #[test]
    fn a_refusal_never_shows_the_token() {
        let secret = JwtSecret::random();
        let auth = RpcAuth::Jwt(secret);
        let now = Claims::default().iat;
        let wrong = JwtSecret::random().encode(&Claims::default()).unwrap();
        let stale = secret
            .encode(&Claims {
                iat: now - 600,
                exp: None,
            })
            .unwrap();
        for header in [
            bearer(&wrong),
            bearer(&stale),
            bearer(&alg_none(now)),
            format!("Token {wrong}"),
        ] {
            let failure = auth.verify(Some(&header), now).unwrap_err();
            let token = header.split_once(' ').map_or("", |(_, t)| t);
            for part in token.split('.').filter(|p| p.len() > 8) {
                assert!(!failure.message().contains(part), "{failure:?}");
                assert!(!format!("{failure:?}").contains(part), "{failure:?}");
            }
        }
    }

    /// A mark is checked against the clock of each call: a WebSocket authorised once may
    /// publish only while its token's `iat` is within the window.
    #[test]
    fn a_mark_expires_with_its_token() {
        let auth = RpcAuth::Jwt(JwtSecret::random());
        let iat = 1_800_000_000;
        let mut marked = Extensions::new();
        marked.insert(Authorized { iat });
        for now in [iat, iat + MAX_IAT_DIFF_SECS, iat - MAX_IAT_DIFF_SECS] {
            assert!(
                auth.check_at(&marked, now).is_ok(),
                "now = iat + {}",
                now as i64 - iat as i64
            );
        }
        for now in [iat + MAX_IAT_DIFF_SECS + 1, iat - MAX_IAT_DIFF_SECS - 1, 0] {
            let refused = auth.check_at(&marked, now).unwrap_err();
            assert_eq!(refused, AuthFailure::Expired { iat, now });
            assert_eq!(refused.to_error().code(), UNAUTHORIZED);
        }
        assert!(auth
            .check_at(&marked, iat + 3600)
            .unwrap_err()
            .message()
            .contains("expired"));
        assert!(RpcAuth::Open.check_at(&marked, iat + 3600).is_ok());
    }

    #[test]
    fn guarded_calls_are_found_alone_and_in_batches() {
        let call = |m: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{m}","params":[]}}"#);
        assert!(calls_guarded_method(
            call("preconf_publishCommitment").as_bytes()
        ));
        assert!(calls_guarded_method(
            call("preconf_publishRawTxList").as_bytes()
        ));
        assert!(calls_guarded_method(
            call("preconf_publishBlock").as_bytes()
        ));
        for read in [
            "preconf_getStatus",
            "preconf_tip",
            "preconf_getPreconfSlotInfo",
        ] {
            assert!(!calls_guarded_method(call(read).as_bytes()), "{read}");
        }
        assert!(!calls_guarded_method(call("preconf_head").as_bytes()));
        let batch = format!(
            "[{},{}]",
            call("preconf_head"),
            call("preconf_publishRawTxList")
        );
        assert!(calls_guarded_method(batch.as_bytes()));
        let reads = format!("[{},{}]", call("preconf_head"), call("preconf_status"));
        assert!(!calls_guarded_method(reads.as_bytes()));
        assert!(!calls_guarded_method(b"{not json"));
        assert!(!calls_guarded_method(b"[]"));
    }

    #[test]
    fn the_iat_is_read_from_the_payload() {
        let secret = JwtSecret::random();
        for iat in [0, 1, 1_700_000_123, u64::from(u32::MAX) + 7] {
            let token = secret.encode(&Claims { iat, exp: None }).unwrap();
            assert_eq!(token_iat(&token), Some(iat));
            assert_eq!(token_alg(&token).as_deref(), Some("HS256"));
        }
        assert_eq!(token_iat("no-dots"), None);
        assert_eq!(token_iat("a.!!!.c"), None);
        assert_eq!(token_iat("a.e30.c"), None, "an empty payload has no iat");
        assert_eq!(token_alg(&alg_none(5)).as_deref(), Some("none"));
        assert_eq!(token_iat(&alg_none(5)), Some(5));
    }

    #[test]
    fn base64url_decodes_every_length_and_refuses_other_alphabets() {
        assert_eq!(base64url_decode("").unwrap(), b"");
        assert_eq!(base64url_decode("Zg").unwrap(), b"f");
        assert_eq!(base64url_decode("Zm8").unwrap(), b"fo");
        assert_eq!(base64url_decode("Zm9v").unwrap(), b"foo");
        assert_eq!(base64url_decode("Zm9vYg==").unwrap(), b"foob");
        assert_eq!(base64url_decode("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
        assert_eq!(base64url_decode("+/+/"), None, "standard alphabet");
        assert_eq!(base64url_decode("Zm9vY"), None, "impossible length");
    }

    /// One WARN per reason per interval; the metric counts every refusal either way.
    #[test]
    fn warnings_are_limited_per_reason() {
        let log = AuthFailureLog::default();
        for _ in 0..5 {
            log.refused(&AuthFailure::WrongSecret, "http");
        }
        log.refused(&AuthFailure::NotBearer, "http");
        let last = log.last.lock();
        assert_eq!(last.get("wrong_secret").map(|(_, n)| *n), Some(4));
        assert_eq!(last.get("not_bearer").map(|(_, n)| *n), Some(0));
    }
}
