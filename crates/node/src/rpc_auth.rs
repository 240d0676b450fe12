//! JWT authentication of the JSON-RPC methods that sign or publish.
//!
//! When the node holds a preconfer key, anyone who can reach the RPC port could otherwise make
//! it sign and gossip commitments in the preconfer's name. So, as execution clients guard
//! their engine API, `preconf_publishCommitment` and `preconf_publishRawTxList` then require
//! `Authorization: Bearer <JWT>`: HS256 over the shared secret in `rpc.jwt_secret_file`
//! (default `<data_dir>/jwt.hex`, created at first start, mode 0600), with an `iat` claim
//! within ±60 s of the node's clock (alloy's engine-API [`JwtSecret::validate`]). Read-only
//! methods and subscriptions stay open (the server listens on localhost by default). Without
//! a preconfer key nothing is required: the node then only relays what its caller signed.
//!
//! The HTTP layer ([`layer`]) checks the header of each HTTP request (and of the WebSocket
//! upgrade) and marks the request [`Authorized`]; the guarded methods look for that mark in
//! their extensions and answer [`UNAUTHORIZED`] without it.

use std::sync::Arc;

use alloy_rpc_types_engine::JwtSecret;
use axum::http::header::AUTHORIZATION;
use jsonrpsee::server::HttpRequest;
use jsonrpsee::types::ErrorObjectOwned;
use jsonrpsee::Extensions;
use tower::util::MapRequestLayer;

/// JSON-RPC error: the method needs a valid JWT and the request had none.
pub const UNAUTHORIZED: i32 = -32015;

/// Marks a request whose `Authorization` header carried a valid JWT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorized;

/// Who may call the guarded methods.
#[derive(Debug, Clone, Copy)]
pub enum RpcAuth {
    /// No preconfer key: every method is open.
    Open,
    /// A preconfer key: the guarded methods need a JWT signed with this secret.
    Jwt(JwtSecret),
}

impl RpcAuth {
    /// Whether `extensions` (of one call) may use a guarded method.
    pub fn check(&self, extensions: &Extensions) -> Result<(), ErrorObjectOwned> {
        match self {
            Self::Open => Ok(()),
            Self::Jwt(_) if extensions.get::<Authorized>().is_some() => Ok(()),
            Self::Jwt(_) => Err(ErrorObjectOwned::owned(
                UNAUTHORIZED,
                "this node signs with a preconfer key: publishing needs `Authorization: Bearer \
                 <JWT>` (HS256 with the secret in rpc.jwt_secret_file, iat within 60 s)",
                None::<()>,
            )),
        }
    }

    /// Whether `header` (the `Authorization` value) carries a valid token.
    fn accepts(&self, header: Option<&str>) -> bool {
        let Self::Jwt(secret) = self else {
            return false;
        };
        header
            .and_then(|h| h.strip_prefix("Bearer "))
            .is_some_and(|token| secret.validate(token.trim()).is_ok())
    }
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
        if auth.accepts(header) {
            request.extensions_mut().insert(Authorized);
        }
        request
    })
}

#[cfg(test)]
mod tests {
    use alloy_rpc_types_engine::Claims;

    use super::*;

    #[test]
    fn only_a_fresh_token_signed_with_the_secret_is_accepted() {
        let secret = JwtSecret::random();
        let auth = RpcAuth::Jwt(secret);
        let token = secret.encode(&Claims::default()).unwrap();
        assert!(auth.accepts(Some(&format!("Bearer {token}"))));
        assert!(!auth.accepts(Some(&token)), "scheme missing");
        assert!(!auth.accepts(None));
        let other = JwtSecret::random().encode(&Claims::default()).unwrap();
        assert!(
            !auth.accepts(Some(&format!("Bearer {other}"))),
            "other secret"
        );
        let stale = Claims {
            iat: Claims::default().iat - 3600,
            exp: None,
        };
        let stale = secret.encode(&stale).unwrap();
        assert!(
            !auth.accepts(Some(&format!("Bearer {stale}"))),
            "iat an hour old"
        );
        assert!(!RpcAuth::Open.accepts(Some(&format!("Bearer {token}"))));

        let mut marked = Extensions::new();
        marked.insert(Authorized);
        assert!(auth.check(&marked).is_ok());
        assert_eq!(
            auth.check(&Extensions::new()).unwrap_err().code(),
            UNAUTHORIZED
        );
        assert!(RpcAuth::Open.check(&Extensions::new()).is_ok());
    }
}
