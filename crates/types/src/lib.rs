//! # preconfirmation-types
//!
//! The wire types of the Taiko permissionless-preconfirmation P2P protocol: the SSZ containers
//! (§3, §10.2, §11.2), their caps, the gossip topic ids (§2), the req/resp table (§10–§11 and
//! PROTOCOL-EXT.md: one row per protocol with its id, caps, default rate and budgeting,
//! [`ReqRespKind::spec`]) and commitment signing (§4.1). Section numbers refer to `PROTOCOL.md`.
//!
//! ## Where this crate sits
//!
//! ```text
//! peer bytes ──► preconfirmation-net ──► p2p (P2pSdk) ──► sidecar
//!                 framing, caps, gossip    validation, storage
//!                        ▲                      ▲
//!                        └──── preconfirmation-types ────┘
//!                  containers · caps · ids · signing · hashes
//! ```
//!
//! Every other crate speaks in these types. The network layer uses the caps in [`ChainLimits`]
//! to refuse oversized input by length before decoding ([`WireMessage::decode_capped`]); the SDK
//! uses [`recover_signer`] and [`preconfirmation_hash`] to validate commitments.
//!
//! ## Example
//!
//! Sign a commitment, send it as bytes, decode it under the chain's caps and recover the signer:
//!
//! ```
//! use preconfirmation_types::*;
//! use alloy_primitives::{Address, U256};
//!
//! let chain = ChainSpec::new(167000, Address::repeat_byte(0x51));
//! let key = secret_key_from_bytes([7; 32])?;
//! let commitment = PreconfCommitment {
//!     preconf: Preconfirmation { block_number: U256::from(1u64), ..Default::default() },
//!     slasher_address: chain.slasher_address,
//! };
//! let signed = sign(&key, &chain.domain, commitment);
//! let bytes = signed.to_ssz();
//! assert_eq!(bytes.len(), SIGNED_COMMITMENT_SSZ_LEN);
//!
//! let decoded = SignedCommitment::decode_capped(&bytes, &chain.limits)?;
//! assert_eq!(recover_signer(&chain.domain, &decoded)?, secret_key_to_address(&key));
//! assert_eq!(
//!     chain.topic(GossipTopicKind::Commitments),
//!     "/taiko/167000/0/preconfirmationCommitments"
//! );
//! # Ok::<(), TypesError>(())
//! ```
#![deny(missing_docs)]

mod chain;
mod constants;
mod containers;
mod error;
mod ids;
mod message_id;
mod reqresp;
mod signing;

pub use chain::{ChainLimits, ChainSpec, WireMessage};
pub use constants::*;
pub use containers::*;
pub use error::{Result, TypesError};
pub use ids::*;
pub use message_id::*;
pub use reqresp::*;
pub use signing::*;

/// Re-exports used in the public API, so dependants need not pin the same versions.
pub mod reexports {
    pub use alloy_primitives;
    pub use secp256k1;
    pub use ssz;
    pub use ssz_types;
}
pub use alloy_primitives::{Address, B256, U256};
