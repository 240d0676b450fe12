//! The one error type of this crate.

/// Everything that can go wrong when decoding, checking or signing wire types.
///
/// Each variant is distinct so callers can map it to a metric label or a penalty (§7).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TypesError {
    /// The input is larger than the runtime cap for this container; nothing was decoded.
    #[error("{container}: {len} bytes exceed the cap of {cap} bytes")]
    OverCap {
        /// Container being decoded.
        container: &'static str,
        /// Length of the input.
        len: usize,
        /// Cap in force.
        cap: usize,
    },
    /// The bytes are not a valid SSZ encoding of the container.
    #[error("{container}: invalid SSZ: {reason}")]
    Ssz {
        /// Container being decoded.
        container: &'static str,
        /// What the SSZ decoder said.
        reason: String,
    },
    /// A variable list holds more items than the runtime cap allows.
    #[error("{container}: {len} items exceed the cap of {cap}")]
    ListOverCap {
        /// Container being decoded.
        container: &'static str,
        /// Number of items found.
        len: usize,
        /// Cap in force.
        cap: usize,
    },
    /// The signature's `s` is in the upper half of the curve order (malleable), §4.1.
    #[error("signature s value is not in the lower half of the curve order")]
    HighS,
    /// The signature's `v` byte is not a recovery id 0 or 1, §4.1.
    #[error("signature v = {0} is not a recovery id 0 or 1")]
    InvalidRecoveryId(u8),
    /// The signature does not recover to any public key.
    #[error("signature does not recover to a public key")]
    Unrecoverable,
    /// A secret key is out of range.
    #[error("invalid secp256k1 secret key")]
    InvalidSecretKey,
    /// A runtime cap was configured above the spec maximum of the wire type.
    #[error("{name} = {value} exceeds the protocol maximum {max}")]
    LimitAboveProtocolMax {
        /// Name of the limit.
        name: &'static str,
        /// Configured value.
        value: usize,
        /// Protocol maximum.
        max: usize,
    },
}

/// Result alias of this crate.
pub type Result<T, E = TypesError> = std::result::Result<T, E>;
