//! Protocol constants: the spec maxima, the fixed SSZ sizes and the default signing domain.
//!
//! Every cap here is the *ceiling* the wire types are built with. Chains may configure smaller
//! runtime caps through [`crate::ChainLimits`]; they can never be larger than these.

/// Largest raw tx list (compressed RLP) in bytes, §3 `MAX_TXLIST_BYTES` (reference default 2 MiB).
///
/// This is also the type-level maximum of the `txlist` field of [`crate::RawTxListGossip`] and
/// [`crate::GetRawTxListResponse`].
pub const MAX_TXLIST_BYTES: usize = 2 * 1024 * 1024;

/// Largest gossip message in bytes, §2/§3 `MAX_GOSSIP_SIZE_BYTES` (reference default 10 MiB).
///
/// A ceiling only: no valid message comes near it (the largest, a `RawTxListGossip`, is
/// `MAX_TXLIST_BYTES` + 36), so the network layer caps gossipsub frames at that instead.
pub const MAX_GOSSIP_SIZE_BYTES: usize = 10 * 1024 * 1024;

/// Most commitments in one `get_commitments_by_number` response, §10.2
/// `MAX_COMMITMENTS_PER_RESPONSE` (reference default 256).
pub const MAX_COMMITMENTS_PER_RESPONSE: usize = 256;

/// SSZ length of a `Bytes20` value (§3).
pub const BYTES20_LEN: usize = 20;
/// SSZ length of a `Bytes32` or `uint256` value (§3).
pub const BYTES32_LEN: usize = 32;
/// SSZ length of a `Bytes65` signature `r ‖ s ‖ v` (§3, §4.1).
pub const SIGNATURE_LEN: usize = 65;
/// SSZ offset size of a variable-length field (SSZ spec: 4-byte little-endian offset).
pub const SSZ_OFFSET_LEN: usize = 4;

/// Fixed SSZ length of `Preconfirmation` (§3): 1 + 7·32 + 2·20.
pub const PRECONFIRMATION_SSZ_LEN: usize = 297;
/// Fixed SSZ length of `PreconfCommitment` (§3): Preconfirmation + Bytes20.
pub const PRECONF_COMMITMENT_SSZ_LEN: usize = 317;
/// Fixed SSZ length of `SignedCommitment` (§3): PreconfCommitment + Bytes65.
pub const SIGNED_COMMITMENT_SSZ_LEN: usize = 382;
/// Fixed SSZ length of `PreconfHead` (§10.2): two uint256.
pub const PRECONF_HEAD_SSZ_LEN: usize = 64;
/// Fixed SSZ length of `GetCommitmentsByNumberRequest` (§10.2): uint256 + uint32.
pub const GET_COMMITMENTS_BY_NUMBER_REQUEST_SSZ_LEN: usize = 36;
/// SSZ length of the `GetHeadRequest` container (§10, PROTOCOL.md "get_head request"): the
/// offset of its empty `reserved` list, `04 00 00 00`. The draft says "no request body"; the
/// deployed reference sends (and requires) these 4 bytes, so requesters send them and
/// responders accept them as well as an empty body.
pub const GET_HEAD_REQUEST_SSZ_LEN: usize = SSZ_OFFSET_LEN;
/// Fixed SSZ length of `GetRawTxListRequest` (§11.2): one Bytes32.
pub const GET_RAW_TXLIST_REQUEST_SSZ_LEN: usize = 32;
/// Most hashes in one `get_raw_txlists` request (PROTOCOL-EXT.md).
pub const MAX_TXLISTS_PER_REQUEST: usize = 64;
/// Largest `get_raw_txlists` request: offset + 64 hashes (PROTOCOL-EXT.md).
pub const GET_RAW_TXLISTS_REQUEST_MAX_SSZ_LEN: usize =
    SSZ_OFFSET_LEN + MAX_TXLISTS_PER_REQUEST * BYTES32_LEN;
/// Largest `get_raw_txlists` response body in bytes (PROTOCOL-EXT.md): a responder stops adding
/// tx lists before it would exceed this; it always fits one tx list of the protocol maximum.
pub const MAX_RAW_TXLISTS_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// Fixed part of `RawTxListGossip` / `GetRawTxListResponse` (§3.4, §11.2): Bytes32 + offset.
pub const RAW_TXLIST_FIXED_PART_LEN: usize = BYTES32_LEN + SSZ_OFFSET_LEN;

/// The placeholder signing domain of the reference implementation (§4.1): the 32 ASCII bytes
/// `TAIKO_PRECONF_DOMAIN_PLACEHOLDER`. Chains set their own `DOMAIN_PRECONF`.
pub const DEFAULT_DOMAIN_PRECONF: [u8; 32] = *b"TAIKO_PRECONF_DOMAIN_PLACEHOLDER";

/// Chain id of Taiko mainnet (Alethia), used as the default in examples and vectors.
pub const TAIKO_MAINNET_CHAIN_ID: u64 = 167000;
