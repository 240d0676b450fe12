//! The gossipsub message id (§7 "stable message id from payload hash"), computed exactly as the
//! deployed reference's gossip library (the op-stack one) computes it, so the two agree on
//! every payload and dedupe the same messages.
//!
//! - If the payload is valid raw (block-format) snappy whose declared decompressed length is at
//!   most [`MAX_GOSSIP_SIZE_BYTES`]: `sha256(0x01000000 ‖ snappy_decompress(payload))[..20]`.
//! - Otherwise: `sha256(0x00000000 ‖ payload)[..20]`.
//!
//! The topic is not hashed in. Raw SSZ payloads (§2: no snappy on these topics) almost always
//! take the second branch, but a payload that happens to be valid snappy must get the same id
//! on every node, or the network carries it twice.
//!
//! The declared length is read from the snappy preamble *before* anything is allocated, and a
//! declaration above [`MAX_GOSSIP_SIZE_BYTES`] counts as "not valid snappy" (as op-node and
//! current Kona do); without that bound a 7-byte payload could ask for a 4 GiB buffer. The
//! bound is the protocol constant, not a node's configured cap, because every node must
//! compute the same id. Older Kona releases had no bound: for a payload that decompresses to
//! more than 10 MiB they would hash the decompressed bytes, we hash the raw ones.

use sha2::{Digest, Sha256};

use crate::constants::MAX_GOSSIP_SIZE_BYTES;

/// Length of a gossip message id in bytes (§7).
pub const MESSAGE_ID_LEN: usize = 20;
/// Domain prefixed to the decompressed payload when it is valid snappy (§7).
pub const MESSAGE_DOMAIN_VALID_SNAPPY: [u8; 4] = [1, 0, 0, 0];
/// Domain prefixed to the raw payload when it is not valid snappy (§7).
pub const MESSAGE_DOMAIN_INVALID_SNAPPY: [u8; 4] = [0, 0, 0, 0];

/// The gossip message id of `payload` (see the module docs).
pub fn gossip_message_id(payload: &[u8]) -> [u8; MESSAGE_ID_LEN] {
    let mut hasher = Sha256::new();
    let mut small = [0u8; SMALL_DECOMPRESSED_LEN];
    match snappy_decompress_bounded(payload, &mut small) {
        Some(decompressed) => {
            hasher.update(MESSAGE_DOMAIN_VALID_SNAPPY);
            hasher.update(decompressed.as_ref());
        }
        None => {
            hasher.update(MESSAGE_DOMAIN_INVALID_SNAPPY);
            hasher.update(payload);
        }
    }
    let digest = hasher.finalize();
    let mut id = [0u8; MESSAGE_ID_LEN];
    id.copy_from_slice(&digest[..MESSAGE_ID_LEN]);
    id
}

/// Declared lengths up to this are decompressed into a buffer on the stack. A raw SSZ payload
/// (§2) read as snappy declares a length of a few bytes (its first bytes as a varint: a
/// commitment's `eop` byte declares 0 or 1): every gossiped commitment tries this, and fails.
const SMALL_DECOMPRESSED_LEN: usize = 256;

/// Bytes decompressed into the caller's stack buffer, or onto the heap.
enum Decompressed<'a> {
    Small(&'a [u8]),
    Large(Vec<u8>),
}

impl AsRef<[u8]> for Decompressed<'_> {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Small(bytes) => bytes,
            Self::Large(bytes) => bytes,
        }
    }
}

/// `payload` decompressed as raw snappy, when it is valid and declares at most
/// [`MAX_GOSSIP_SIZE_BYTES`]; the declaration is checked before any buffer is used, and a
/// small one is decompressed into `small` instead of the heap.
fn snappy_decompress_bounded<'a>(
    payload: &[u8],
    small: &'a mut [u8; SMALL_DECOMPRESSED_LEN],
) -> Option<Decompressed<'a>> {
    let declared = snap::raw::decompress_len(payload).ok()?;
    if declared > MAX_GOSSIP_SIZE_BYTES {
        return None;
    }
    let mut decoder = snap::raw::Decoder::new();
    if declared <= SMALL_DECOMPRESSED_LEN {
        let written = decoder.decompress(payload, &mut small[..declared]).ok()?;
        return Some(Decompressed::Small(&small[..written]));
    }
    decoder
        .decompress_vec(payload)
        .ok()
        .map(Decompressed::Large)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha20(parts: &[&[u8]]) -> [u8; MESSAGE_ID_LEN] {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        let mut id = [0u8; MESSAGE_ID_LEN];
        id.copy_from_slice(&h.finalize()[..MESSAGE_ID_LEN]);
        id
    }

    #[test]
    fn message_id_matches_reference_for_snappy_and_raw() {
        // Raw payloads (not snappy): the invalid-snappy domain over the bytes as they are.
        for raw in [&b""[..], b"\xff\xff\xff\xff\xff", b"abc", &[0xc5; 382][..]] {
            assert!(snap::raw::Decoder::new().decompress_vec(raw).is_err());
            assert_eq!(
                gossip_message_id(raw),
                sha20(&[&[0, 0, 0, 0], raw]),
                "{raw:02x?}"
            );
        }
        // Valid snappy: the valid-snappy domain over the decompressed bytes.
        for plain in [&b"a"[..], b"hello hello hello hello", &[7u8; 70_000][..]] {
            let compressed = snap::raw::Encoder::new().compress_vec(plain).unwrap();
            assert_ne!(compressed, plain);
            assert_eq!(
                gossip_message_id(&compressed),
                sha20(&[&[1, 0, 0, 0], plain]),
            );
            // Same content compressed or not: different ids (as in the reference).
            assert_ne!(gossip_message_id(&compressed), gossip_message_id(plain));
        }
        // An SSZ payload that happens to be valid snappy: a SignedCommitment-like body starting
        // with eop = 0 is the snappy stream "decompresses to 0 bytes" only if nothing follows.
        assert_eq!(gossip_message_id(&[0]), sha20(&[&[1, 0, 0, 0]]));
        assert_eq!(gossip_message_id(&[0, 0]), sha20(&[&[0, 0, 0, 0], &[0, 0]]));
        // A literal: preamble 3, tag (3-1)<<2 = 0x08, then 3 bytes.
        assert_eq!(
            gossip_message_id(&[3, 0x08, b'x', b'y', b'z']),
            sha20(&[&[1, 0, 0, 0], b"xyz"])
        );
    }

    /// Valid snappy on either side of the stack buffer's size hashes its decompressed bytes;
    /// a short stream declaring a small length falls back to the raw bytes.
    #[test]
    fn small_and_large_streams_hash_what_they_decompress_to() {
        for len in [
            1,
            SMALL_DECOMPRESSED_LEN - 1,
            SMALL_DECOMPRESSED_LEN,
            SMALL_DECOMPRESSED_LEN + 1,
            4096,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let compressed = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
            assert_eq!(
                gossip_message_id(&compressed),
                sha20(&[&[1, 0, 0, 0], &plain]),
                "{len} bytes"
            );
            // Cut short: the declared length is not met.
            let cut = &compressed[..compressed.len() - 1];
            assert_eq!(
                gossip_message_id(cut),
                sha20(&[&[0, 0, 0, 0], cut]),
                "{len} bytes"
            );
        }
    }

    #[test]
    fn declared_length_above_the_gossip_cap_is_not_allocated() {
        // Preamble u32::MAX - 1 then a literal: valid-looking header declaring ~4 GiB. The id
        // falls back to the raw domain without allocating the declared size.
        let mut payload = vec![0xfe, 0xff, 0xff, 0xff, 0x0f];
        payload.extend_from_slice(&[0x08, b'x', b'y', b'z']);
        assert_eq!(
            snap::raw::decompress_len(&payload).unwrap(),
            u32::MAX as usize - 1
        );
        assert_eq!(
            gossip_message_id(&payload),
            sha20(&[&[0, 0, 0, 0], &payload])
        );
        // Exactly at the cap is still decompressed (and here fails: the body is short).
        let mut at_cap = Vec::new();
        let mut n = MAX_GOSSIP_SIZE_BYTES as u64;
        while n >= 0x80 {
            at_cap.push((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        at_cap.push(n as u8);
        assert_eq!(
            snap::raw::decompress_len(&at_cap).unwrap(),
            MAX_GOSSIP_SIZE_BYTES
        );
        assert_eq!(gossip_message_id(&at_cap), sha20(&[&[0, 0, 0, 0], &at_cap]));
        // A valid stream that decompresses to exactly the cap takes the snappy branch.
        let big = vec![0u8; MAX_GOSSIP_SIZE_BYTES];
        let compressed = snap::raw::Encoder::new().compress_vec(&big).unwrap();
        assert_eq!(
            gossip_message_id(&compressed),
            sha20(&[&[1, 0, 0, 0], &big])
        );
        let bigger = vec![0u8; MAX_GOSSIP_SIZE_BYTES + 1];
        let compressed = snap::raw::Encoder::new().compress_vec(&bigger).unwrap();
        assert_eq!(
            gossip_message_id(&compressed),
            sha20(&[&[0, 0, 0, 0], &compressed])
        );
    }
}
