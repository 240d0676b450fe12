//! JWT authentication of the JSON-RPC methods that sign or publish.
//!
//! When the node holds a preconfer key, anyone who can reach the RPC port could otherwise make
//! it sign and gossip commitments in the preconfer's name. So, as execution clients guard
//! their engine API, `preconf_publishCommitment` and `preconf_publishRawTxList` then require
//! `Authorization: Bearer <JWT>`: HS256 over the shared secret in `rpc.jwt_secret_file`
//! (default `<data_dir>/jwt.hex`, created at first start, mode 0600), with an `iat` claim
//! within ±60 s of the node's clock (alloy's engine-API [`JwtSecret::validate`]). The same
//! holds without a preconfer key when `rpc.jwt_secret_file` is set explicitly: setting it is
//! how an operator closes the publishing methods of a relaying node (the file is created as
//! above when missing). Read-only methods and subscriptions stay open (the server listens on
//! localhost by default). With neither a preconfer key nor `rpc.jwt_secret_file` nothing is
//! required: the node then only relays what its caller signed.
//!
//! The HTTP layer ([`layer`]) checks the header of each HTTP request (and of the WebSocket
//! upgrade) and marks the request [`Authorized`] with the token's `iat`; the guarded methods
//! look for that mark in their extensions and answer [`UNAUTHORIZED`] without it, or when the
//! `iat` is no longer within ±60 s at the time of the call. A plain HTTP request is checked
//! at once; a WebSocket carries its upgrade's token for the whole connection, so it may
//! publish only while that token is fresh — within 60 s of its `iat` — and must reconnect
//! with a new token after that.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_rpc_types_engine::JwtSecret;
use axum::http::header::AUTHORIZATION;
use jsonrpsee::server::HttpRequest;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::Extensions;
use tower::util::MapRequestLayer;

/// JSON-RPC error: the method needs a valid JWT and the request had none (or its token's
/// `iat` is no longer within [`MAX_IAT_DIFF_SECS`] of the node's clock).
pub const UNAUTHORIZED: i32 = -32015;

/// Most seconds between a token's `iat` and the node's clock, either way: the engine API's
/// ±60 s (what [`JwtSecret::validate`] checks when the token arrives), checked again at each
/// guarded call.
pub const MAX_IAT_DIFF_SECS: u64 = 60;

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
    pub fn check(&self, extensions: &Extensions) -> Result<(), ErrorObjectOwned> {
        self.check_at(extensions, unix_now())
    }

    /// [`Self::check`] at `now` (Unix seconds).
    pub fn check_at(&self, extensions: &Extensions, now: u64) -> Result<(), ErrorObjectOwned> {
        let Self::Jwt(_) = self else {
            return Ok(());
        };
        match extensions.get::<Authorized>() {
            Some(mark) if mark.is_fresh_at(now) => Ok(()),
            Some(mark) => Err(ErrorObjectOwned::owned(
                UNAUTHORIZED,
                format!(
                    "the JWT of this connection has expired (iat {}, now {now}; at most \
                     {MAX_IAT_DIFF_SECS} s apart): publishing over a WebSocket works while its \
                     upgrade's token is fresh; reconnect with a new token",
                    mark.iat
                ),
                None::<()>,
            )),
            None => Err(ErrorObjectOwned::owned(
                UNAUTHORIZED,
                "publishing on this node needs `Authorization: Bearer <JWT>` (HS256 with the \
                 secret in rpc.jwt_secret_file, iat within 60 s)",
                None::<()>,
            )),
        }
    }

    /// The mark for `header` (the `Authorization` value), if it carries a valid token.
    fn authorize(&self, header: Option<&str>) -> Option<Authorized> {
        let Self::Jwt(secret) = self else {
            return None;
        };
        let token = header?.strip_prefix("Bearer ")?.trim();
        secret.validate(token).ok()?;
        // Validated: the signature covers the payload, which holds a numeric `iat`.
        Some(Authorized {
            iat: token_iat(token)?,
        })
    }
}

/// Seconds since the Unix epoch (0 for a clock before it: no token is fresh then).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The `iat` claim of a JWT (`header.payload.signature`, base64url JSON), unverified: call it
/// only on a token that [`JwtSecret::validate`] accepted.
fn token_iat(token: &str) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Iat {
        iat: u64,
    }
    let payload = token.split('.').nth(1)?;
    let json = base64url_decode(payload)?;
    serde_json::from_slice::<Iat>(&json).ok().map(|c| c.iat)
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

/// The HTTP layer that marks requests with a valid JWT [`Authorized`].
pub fn layer(
    auth: Arc<RpcAuth>,
) -> MapRequestLayer<impl Fn(HttpRequest) -> HttpRequest + Clone + Send + Sync + 'static> {
    MapRequestLayer::new(move |mut request: HttpRequest| {
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if let Some(mark) = auth.authorize(header) {
            request.extensions_mut().insert(mark);
        }
        request
    })
}

#[cfg(test)]
mod tests {
    use alloy_rpc_types_engine::Claims;

    use super::*;

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    #[test]
    fn only_a_fresh_token_signed_with_the_secret_is_accepted() {
        let secret = JwtSecret::random();
        let auth = RpcAuth::Jwt(secret);
        let claims = Claims::default();
        let token = secret.encode(&claims).unwrap();
        assert_eq!(
            auth.authorize(Some(&bearer(&token))),
            Some(Authorized { iat: claims.iat })
        );
        assert_eq!(auth.authorize(Some(&token)), None, "scheme missing");
        assert_eq!(auth.authorize(None), None);
        let other = JwtSecret::random().encode(&Claims::default()).unwrap();
        assert_eq!(auth.authorize(Some(&bearer(&other))), None, "other secret");
        let stale = Claims {
            iat: Claims::default().iat - 3600,
            exp: None,
        };
        let stale = secret.encode(&stale).unwrap();
        assert_eq!(
            auth.authorize(Some(&bearer(&stale))),
            None,
            "iat an hour old"
        );
        assert_eq!(RpcAuth::Open.authorize(Some(&bearer(&token))), None);

        let mut marked = Extensions::new();
        marked.insert(Authorized { iat: unix_now() });
        assert!(auth.check(&marked).is_ok());
        assert_eq!(
            auth.check(&Extensions::new()).unwrap_err().code(),
            UNAUTHORIZED
        );
        assert!(RpcAuth::Open.check(&Extensions::new()).is_ok());
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
            assert_eq!(refused.code(), UNAUTHORIZED);
        }
        assert!(auth
            .check_at(&marked, iat + 3600)
            .unwrap_err()
            .message()
            .contains("expired"));
        assert!(RpcAuth::Open.check_at(&marked, iat + 3600).is_ok());
    }

    #[test]
    fn the_iat_is_read_from_the_payload() {
        let secret = JwtSecret::random();
        for iat in [0, 1, 1_700_000_123, u64::from(u32::MAX) + 7] {
            let token = secret.encode(&Claims { iat, exp: None }).unwrap();
            assert_eq!(token_iat(&token), Some(iat));
        }
        assert_eq!(token_iat("no-dots"), None);
        assert_eq!(token_iat("a.!!!.c"), None);
        assert_eq!(token_iat("a.e30.c"), None, "an empty payload has no iat");
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
}
