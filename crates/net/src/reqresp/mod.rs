//! Req/resp (§10–§11, PROTOCOL-EXT.md): framing, the inbound limits, the response-byte budget
//! and the pacing of our own requests. Each protocol's id, caps, default rate and budgeting
//! come from the table in `preconfirmation_types` ([`preconfirmation_types::ReqRespKind::spec`]).
//!
//! - [`codec`]: one length-prefixed SSZ request and response per stream, the prefix checked
//!   against the protocol's cap before the body is read.
//! - `rate_limiter`: every peer's inbound buckets — requests per protocol, response bytes, and
//!   gossip messages and bytes per topic, which share their lifetime rules.
//! - [`budget`]: the largest response of a request and a response's length, computed alike
//!   on both sides, and the byte bucket they draw on.
//! - [`self_limiter`]: our outbound pacing, so that no request leaves that the peer would
//!   refuse.

pub mod budget;
pub mod codec;
pub(crate) mod rate_limiter;
pub mod self_limiter;
