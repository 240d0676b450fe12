//! The req/resp table (§10–§11, PROTOCOL-EXT.md): one row per protocol, with everything the
//! network layer needs to frame, cap, rate-limit and budget it.
//!
//! | protocol | max request | max response | default inbound rate | byte-budgeted | extension |
//! |---|---|---|---|---|---|
//! | `get_head` (§10) | 4 | 64 | 8 per 10 s | no | no |
//! | `get_commitments_by_number` (§10.2) | 36 | 4 + 256 · 382 | 256 per 10 s | yes | no |
//! | `get_raw_txlist` (§11.2) | 32 | 36 + 2 MiB | 512 per 10 s | yes | no |
//! | `get_raw_txlists` (PROTOCOL-EXT.md) | 4 + 64 · 32 | 8 MiB | 512 per 10 s | yes | yes |
//!
//! The table is [`ReqRespKind::spec`], an exhaustive `match`: adding a protocol is a variant,
//! its row, and then the places the compiler names (its request and response types in the
//! network codec, its libp2p behaviour, its inbound event, its config key).

use std::time::Duration;

use crate::constants::*;

/// The req/resp protocols (§10–§11, PROTOCOL-EXT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReqRespKind {
    /// `get_head` (§10): [`crate::GetHeadRequest`] request (sent as its 4-byte SSZ; an empty
    /// body is accepted too), [`crate::PreconfHead`] response.
    GetHead,
    /// `get_commitments_by_number` (§10.2).
    GetCommitmentsByNumber,
    /// `get_raw_txlist` (§11.2).
    GetRawTxList,
    /// `get_raw_txlists`: this project's batched tx-list fetch (PROTOCOL-EXT.md), up to
    /// [`crate::MAX_TXLISTS_PER_REQUEST`] hashes per request. Not spoken by the Taiko
    /// reference; a peer that advertises it (identify) is one of ours.
    GetRawTxLists,
}

/// A request-count limit: `burst` requests, refilled continuously over `period` (§7
/// "per-peer rate limits on every req/resp protocol"; the spec fixes no figures).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRate {
    /// Requests allowed in a burst.
    pub burst: u32,
    /// Time to refill a full burst.
    pub period: Duration,
}

impl RequestRate {
    /// `burst` requests per 10 s, the period of every default inbound limit.
    pub const fn per_10s(burst: u32) -> Self {
        Self {
            burst,
            period: Duration::from_secs(10),
        }
    }
}

/// One row of the req/resp table ([`ReqRespKind::spec`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReqRespSpec {
    /// The protocol id's last path segment (`/taiko/<chainID>/preconf/1/<name>`), also its
    /// metric label and its key under the network's `rate_limit` config.
    pub name: &'static str,
    /// Largest request body in bytes; a length prefix above it is refused before the body is
    /// read (§10–§11 framing).
    pub max_request_bytes: usize,
    /// Largest response body in bytes under the protocol maxima (§3, §10.2, PROTOCOL-EXT.md);
    /// a chain's smaller caps may lower it ([`crate::ChainLimits::max_response_len`]).
    pub max_response_bytes: usize,
    /// This project's default inbound limit per peer (§7; the spec fixes no figure; the cost
    /// argument is on the network layer's `RateLimitConfig`).
    pub default_rate: RequestRate,
    /// Whether a request draws its largest response from the peer's response-byte budget
    /// (PROTOCOL-EXT.md "Response-byte budget"): the data protocols do, `get_head` (a fixed
    /// 64-byte answer) does not.
    pub byte_budgeted: bool,
    /// Whether this is one of this project's extensions (PROTOCOL-EXT.md), never sent to a
    /// peer that does not advertise it, rather than a §10–§11 protocol every peer speaks.
    pub extension: bool,
}

impl ReqRespKind {
    /// All protocols, in declaration order.
    pub const ALL: [ReqRespKind; 4] = [
        ReqRespKind::GetHead,
        ReqRespKind::GetCommitmentsByNumber,
        ReqRespKind::GetRawTxList,
        ReqRespKind::GetRawTxLists,
    ];

    /// The largest response body of any protocol ([`ReqRespSpec::max_response_bytes`]): what
    /// one request may cost a responder at most.
    pub const LARGEST_RESPONSE_BYTES: usize = {
        let mut largest = 0;
        let mut i = 0;
        while i < Self::ALL.len() {
            let bytes = Self::ALL[i].max_response_bytes();
            if bytes > largest {
                largest = bytes;
            }
            i += 1;
        }
        largest
    };

    /// The protocol's row of the req/resp table.
    pub const fn spec(self) -> ReqRespSpec {
        match self {
            // §10: the 4-byte `GetHeadRequest`, a fixed `PreconfHead`.
            ReqRespKind::GetHead => ReqRespSpec {
                name: "get_head",
                max_request_bytes: GET_HEAD_REQUEST_SSZ_LEN,
                max_response_bytes: PRECONF_HEAD_SSZ_LEN,
                default_rate: RequestRate::per_10s(8),
                byte_budgeted: false,
                extension: false,
            },
            // §10.2: a page of at most `MAX_COMMITMENTS_PER_RESPONSE` commitments.
            ReqRespKind::GetCommitmentsByNumber => ReqRespSpec {
                name: "get_commitments_by_number",
                max_request_bytes: GET_COMMITMENTS_BY_NUMBER_REQUEST_SSZ_LEN,
                max_response_bytes: SSZ_OFFSET_LEN
                    + MAX_COMMITMENTS_PER_RESPONSE * SIGNED_COMMITMENT_SSZ_LEN,
                default_rate: RequestRate::per_10s(256),
                byte_budgeted: true,
                extension: false,
            },
            // §11.2: one tx list by hash.
            ReqRespKind::GetRawTxList => ReqRespSpec {
                name: "get_raw_txlist",
                max_request_bytes: GET_RAW_TXLIST_REQUEST_SSZ_LEN,
                max_response_bytes: RAW_TXLIST_FIXED_PART_LEN + MAX_TXLIST_BYTES,
                default_rate: RequestRate::per_10s(512),
                byte_budgeted: true,
                extension: false,
            },
            // PROTOCOL-EXT.md: up to 64 tx lists by hash, within 8 MiB.
            ReqRespKind::GetRawTxLists => ReqRespSpec {
                name: "get_raw_txlists",
                max_request_bytes: GET_RAW_TXLISTS_REQUEST_MAX_SSZ_LEN,
                max_response_bytes: MAX_RAW_TXLISTS_RESPONSE_BYTES,
                default_rate: RequestRate::per_10s(512),
                byte_budgeted: true,
                extension: true,
            },
        }
    }

    /// The protocol's last path segment, also its metric label ([`ReqRespSpec::name`]).
    pub const fn label(self) -> &'static str {
        self.spec().name
    }

    /// Largest request body in bytes ([`ReqRespSpec::max_request_bytes`]).
    pub const fn max_request_bytes(self) -> usize {
        self.spec().max_request_bytes
    }

    /// Largest response body in bytes under the protocol maxima
    /// ([`ReqRespSpec::max_response_bytes`]).
    pub const fn max_response_bytes(self) -> usize {
        self.spec().max_response_bytes
    }

    /// This project's default inbound limit per peer ([`ReqRespSpec::default_rate`]).
    pub const fn default_rate(self) -> RequestRate {
        self.spec().default_rate
    }

    /// Whether requests draw on the peer's response-byte budget
    /// ([`ReqRespSpec::byte_budgeted`]).
    pub const fn is_byte_budgeted(self) -> bool {
        self.spec().byte_budgeted
    }

    /// Whether this is one of this project's extensions (PROTOCOL-EXT.md) rather than a
    /// §10–§11 protocol ([`ReqRespSpec::extension`]).
    pub const fn is_extension(self) -> bool {
        self.spec().extension
    }

    /// The full protocol id for `chain_id` (§10–§11).
    pub fn protocol_id(self, chain_id: u64) -> String {
        format!("/taiko/{chain_id}/preconf/1/{}", self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_ids_follow_sections_10_and_11() {
        for (kind, id) in [
            (ReqRespKind::GetHead, "/taiko/167000/preconf/1/get_head"),
            (
                ReqRespKind::GetCommitmentsByNumber,
                "/taiko/167000/preconf/1/get_commitments_by_number",
            ),
            (
                ReqRespKind::GetRawTxList,
                "/taiko/167000/preconf/1/get_raw_txlist",
            ),
            (
                ReqRespKind::GetRawTxLists,
                "/taiko/167000/preconf/1/get_raw_txlists",
            ),
        ] {
            assert_eq!(kind.protocol_id(167000), id, "{kind:?}");
        }
    }

    /// The table against PROTOCOL.md (§3 caps, §10–§11 containers, "Reference strictness")
    /// and PROTOCOL-EXT.md, figure by figure.
    #[test]
    fn the_table_matches_the_spec() {
        const MIB: usize = 1024 * 1024;
        let rows = ReqRespKind::ALL.map(|kind| {
            let s = kind.spec();
            (
                s.name,
                s.max_request_bytes,
                s.max_response_bytes,
                (s.default_rate.burst, s.default_rate.period.as_secs()),
                s.byte_budgeted,
                s.extension,
            )
        });
        assert_eq!(
            rows,
            [
                ("get_head", 4, 64, (8, 10), false, false),
                (
                    "get_commitments_by_number",
                    32 + 4,
                    4 + 256 * 382,
                    (256, 10),
                    true,
                    false
                ),
                (
                    "get_raw_txlist",
                    32,
                    32 + 4 + 2 * MIB,
                    (512, 10),
                    true,
                    false
                ),
                (
                    "get_raw_txlists",
                    4 + 64 * 32,
                    8 * MIB,
                    (512, 10),
                    true,
                    true
                ),
            ]
        );
        // The §10–§11 protocols are the reference's three; only ours is an extension.
        let spec: Vec<_> = ReqRespKind::ALL
            .into_iter()
            .filter(|k| !k.is_extension())
            .collect();
        assert_eq!(
            spec,
            [
                ReqRespKind::GetHead,
                ReqRespKind::GetCommitmentsByNumber,
                ReqRespKind::GetRawTxList
            ]
        );
        assert_eq!(
            ReqRespKind::LARGEST_RESPONSE_BYTES,
            MAX_RAW_TXLISTS_RESPONSE_BYTES
        );
        // Every label is distinct (they name protocols, metric labels and config keys).
        let mut labels: Vec<_> = ReqRespKind::ALL.map(ReqRespKind::label).to_vec();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), ReqRespKind::ALL.len());
    }

    #[test]
    fn all_lists_every_kind_once_in_declaration_order() {
        for (i, kind) in ReqRespKind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "{kind:?}");
        }
    }
}
