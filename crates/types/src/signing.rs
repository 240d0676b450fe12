//! The preconfirmation hash (§4.2) and commitment signing and recovery (§4.1). A tx list's
//! hash (§3.4) is [`crate::raw_tx_list_hash`], beside its containers.
//!
//! * signing hash: `keccak256(DOMAIN_PRECONF ‖ SSZ(PreconfCommitment))`
//! * signature: secp256k1 ECDSA `r ‖ s ‖ v`, low `s`, `v ∈ {0, 1}`
//! * signer: last 20 bytes of `keccak256(uncompressed public key without the 0x04 prefix)`
//!
//! Signing and recovery use libsecp256k1 (the `secp256k1` crate) through its global context.

use alloy_primitives::{keccak256, Address, B256};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SecretKey};

use crate::constants::{
    BYTES32_LEN, PRECONFIRMATION_SSZ_LEN, PRECONF_COMMITMENT_SSZ_LEN, SIGNATURE_LEN,
};
use crate::containers::{Bytes65, PreconfCommitment, Preconfirmation, SignedCommitment};
use crate::error::{Result, TypesError};

/// Half the secp256k1 group order, big-endian: the largest `s` a canonical signature may carry.
const SECP256K1_HALF_ORDER: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// `keccak256(SSZ(Preconfirmation))`: the value a child's `parentPreconfirmationHash` carries
/// (§4.2). The signature is not part of it.
pub fn preconfirmation_hash(preconf: &Preconfirmation) -> B256 {
    let mut ssz = [0u8; PRECONFIRMATION_SSZ_LEN];
    write_preconf_ssz(preconf, &mut ssz);
    keccak256(ssz)
}

/// `keccak256(domain ‖ SSZ(commitment))`, the digest a preconfer signs (§4.1).
pub fn signing_hash(domain: &B256, commitment: &PreconfCommitment) -> B256 {
    const PREFIX: usize = BYTES32_LEN;
    const SLASHER: usize = PREFIX + PRECONFIRMATION_SSZ_LEN;
    let mut preimage = [0u8; BYTES32_LEN + PRECONF_COMMITMENT_SSZ_LEN];
    preimage[..PREFIX].copy_from_slice(domain.as_slice());
    write_preconf_ssz(&commitment.preconf, &mut preimage[PREFIX..SLASHER]);
    preimage[SLASHER..].copy_from_slice(commitment.slasher_address.as_slice());
    keccak256(preimage)
}

/// Writes `SSZ(preconf)` into `out`, which is [`PRECONFIRMATION_SSZ_LEN`] bytes long (a
/// fixed-size buffer, or the slice of the signing preimage it fills): the fixed-size
/// container's fields in order, as the derived SSZ encoder lays them out (a bool as one byte, a `uint256` as 32 little-endian
/// bytes, addresses and hashes as they are). Both hashes of every gossiped commitment are
/// taken over it: on the stack, with no heap buffer and no encoder per field.
fn write_preconf_ssz(preconf: &Preconfirmation, out: &mut [u8]) {
    debug_assert_eq!(out.len(), PRECONFIRMATION_SSZ_LEN);
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&[u8::from(preconf.eop)]);
    put(&preconf.block_number.to_le_bytes::<32>());
    put(&preconf.timestamp.to_le_bytes::<32>());
    put(&preconf.gas_limit.to_le_bytes::<32>());
    put(preconf.coinbase.as_slice());
    put(&preconf.anchor_block_number.to_le_bytes::<32>());
    put(preconf.raw_tx_list_hash.as_slice());
    put(preconf.parent_preconfirmation_hash.as_slice());
    put(&preconf.submission_window_end.to_le_bytes::<32>());
    put(preconf.prover_auth.as_slice());
    put(&preconf.proposal_id.to_le_bytes::<32>());
    debug_assert_eq!(at, PRECONFIRMATION_SSZ_LEN);
}

/// Signs `commitment` under `domain` (§4.1). libsecp256k1 always produces low `s`; `v` is the
/// recovery id 0 or 1.
pub fn sign(
    secret_key: &SecretKey,
    domain: &B256,
    commitment: PreconfCommitment,
) -> SignedCommitment {
    let digest = signing_hash(domain, &commitment);
    let signature = sign_digest(secret_key, &digest);
    SignedCommitment {
        commitment,
        signature,
    }
}

/// Signs a 32-byte digest, returning `r ‖ s ‖ v`.
pub fn sign_digest(secret_key: &SecretKey, digest: &B256) -> Bytes65 {
    let message = Message::from_digest(digest.0);
    let (recovery_id, compact) =
        RecoverableSignature::sign_ecdsa_recoverable(message, secret_key).serialize_compact();
    let mut out = [0u8; SIGNATURE_LEN];
    out[..64].copy_from_slice(&compact);
    out[64] = u8::from(recovery_id);
    Bytes65(out)
}

/// Recovers the signer of `signed` under `domain` (§4.1).
///
/// Rejects, with distinct errors: `v ∉ {0, 1}` ([`TypesError::InvalidRecoveryId`]), `s` above half
/// the order ([`TypesError::HighS`]), and signatures that recover to no key
/// ([`TypesError::Unrecoverable`]).
pub fn recover_signer(domain: &B256, signed: &SignedCommitment) -> Result<Address> {
    let digest = signing_hash(domain, &signed.commitment);
    recover_digest(&digest, &signed.signature)
}

/// Recovers the address that signed `digest` with `signature`, with the checks of
/// [`recover_signer`].
pub fn recover_digest(digest: &B256, signature: &Bytes65) -> Result<Address> {
    let v = signature.v();
    let recovery_id = match v {
        0 => RecoveryId::Zero,
        1 => RecoveryId::One,
        other => return Err(TypesError::InvalidRecoveryId(other)),
    };
    if signature.s() > SECP256K1_HALF_ORDER.as_slice() {
        return Err(TypesError::HighS);
    }
    let recoverable = RecoverableSignature::from_compact(&signature.0[..64], recovery_id)
        .map_err(|_| TypesError::Unrecoverable)?;
    let public_key = recoverable
        .recover_ecdsa(Message::from_digest(digest.0))
        .map_err(|_| TypesError::Unrecoverable)?;
    Ok(RECENT_SIGNERS.with(|recent| recent.borrow_mut().address_of(&public_key)))
}

/// Public keys whose signer addresses (§4.1) each thread keeps ([`RecentSigners`]): a memo
/// of a pure function, so its size changes speed only, never a result.
pub const RECENT_SIGNER_KEYS: usize = 8;

thread_local! {
    /// This thread's recently recovered signers ([`recover_digest`]).
    static RECENT_SIGNERS: std::cell::RefCell<RecentSigners> =
        const { std::cell::RefCell::new(RecentSigners::new()) };
}

/// The addresses (§4.1) of the last [`RECENT_SIGNER_KEYS`] distinct public keys a thread
/// recovered, the oldest replaced first.
///
/// A network's commitments are signed by a few preconfers, one per window of the schedule, so
/// nearly every recovery yields a key recovered moments ago. Comparing its 64 bytes with a
/// handful of entries costs nanoseconds; the keccak of the key costs ≈ 0.35 µs (a seventh of
/// what the SDK adds to the recovery itself in `bench validate`'s profile). The map
/// from key to address is a pure function: a sender can make entries miss, never make one wrong.
struct RecentSigners {
    entries: [([u8; 64], Address); RECENT_SIGNER_KEYS],
    /// Entries in use (the rest are never compared).
    filled: usize,
    /// The entry the next new key replaces.
    next: usize,
    /// Look-ups answered from an entry (for tests).
    #[cfg(test)]
    hits: u64,
}

impl RecentSigners {
    const fn new() -> Self {
        Self {
            entries: [([0; 64], Address::ZERO); RECENT_SIGNER_KEYS],
            filled: 0,
            next: 0,
            #[cfg(test)]
            hits: 0,
        }
    }

    fn address_of(&mut self, public_key: &PublicKey) -> Address {
        let uncompressed = public_key.serialize_uncompressed();
        let key = &uncompressed[1..];
        if let Some((_, address)) = self.entries[..self.filled]
            .iter()
            .find(|(known, _)| known.as_slice() == key)
        {
            #[cfg(test)]
            {
                self.hits += 1;
            }
            return *address;
        }
        let address = address_of_uncompressed(&uncompressed);
        let mut stored = [0u8; 64];
        stored.copy_from_slice(key);
        self.entries[self.next] = (stored, address);
        self.next = (self.next + 1) % RECENT_SIGNER_KEYS;
        self.filled = (self.filled + 1).min(RECENT_SIGNER_KEYS);
        address
    }
}

/// The Ethereum address of a public key (§4.1).
pub fn public_key_to_address(public_key: &PublicKey) -> Address {
    address_of_uncompressed(&public_key.serialize_uncompressed())
}

/// The address of a key in its 65-byte uncompressed form (`0x04 ‖ x ‖ y`).
fn address_of_uncompressed(uncompressed: &[u8; 65]) -> Address {
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

/// The Ethereum address of a secret key's public key.
pub fn secret_key_to_address(secret_key: &SecretKey) -> Address {
    public_key_to_address(&PublicKey::from_secret_key(secret_key))
}

/// Parses a 32-byte secret key, rejecting zero and values at or above the group order.
pub fn secret_key_from_bytes(bytes: [u8; 32]) -> Result<SecretKey> {
    SecretKey::from_secret_bytes(bytes).map_err(|_| TypesError::InvalidSecretKey)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::U256;
    use ssz::Encode;

    fn key(byte: u8) -> SecretKey {
        secret_key_from_bytes([byte; 32]).unwrap()
    }

    fn commitment() -> PreconfCommitment {
        PreconfCommitment {
            preconf: Preconfirmation {
                block_number: U256::from(42u64),
                timestamp: U256::from(1_700_000_000u64),
                ..Default::default()
            },
            slasher_address: Address::repeat_byte(0x51),
        }
    }

    #[test]
    fn sign_then_recover_returns_the_signer() {
        let domain = B256::from(crate::DEFAULT_DOMAIN_PRECONF);
        let signed = sign(&key(1), &domain, commitment());
        assert!(signed.signature.v() <= 1);
        assert!(signed.signature.s() <= SECP256K1_HALF_ORDER.as_slice());
        assert_eq!(
            recover_signer(&domain, &signed).unwrap(),
            secret_key_to_address(&key(1))
        );
    }

    #[test]
    fn signing_hash_prefixes_the_domain() {
        let domain = B256::repeat_byte(9);
        let c = commitment();
        let mut preimage = domain.to_vec();
        preimage.extend(c.as_ssz_bytes());
        assert_eq!(signing_hash(&domain, &c), keccak256(preimage));
        assert_ne!(signing_hash(&domain, &c), signing_hash(&B256::ZERO, &c));
    }

    /// The stack encoding both hashes use is the derived SSZ, byte for byte: each field holds
    /// a value of its own (a field written in the wrong place or order shows), with `eop` both
    /// ways and `uint256`s at their extremes.
    #[test]
    fn the_fixed_encoding_is_the_derived_ssz() {
        use alloy_primitives::U256;
        for (eop, big) in [(false, U256::MAX), (true, U256::from(1u8) << 200)] {
            let preconf = Preconfirmation {
                eop,
                block_number: big,
                timestamp: U256::from(0x0102_0304_0506_0708u64),
                gas_limit: U256::from(30_000_000u64),
                coinbase: Address::repeat_byte(0xc0),
                anchor_block_number: U256::from(77u8),
                raw_tx_list_hash: B256::repeat_byte(0xab),
                parent_preconfirmation_hash: B256::repeat_byte(0xcd),
                submission_window_end: U256::from(1_700_000_123u64),
                prover_auth: Address::repeat_byte(0x9a),
                proposal_id: U256::from(5u8) << 128,
            };
            let mut fixed = [0u8; PRECONFIRMATION_SSZ_LEN];
            write_preconf_ssz(&preconf, &mut fixed);
            assert_eq!(fixed.as_slice(), preconf.as_ssz_bytes().as_slice());
            assert_eq!(
                preconfirmation_hash(&preconf),
                keccak256(preconf.as_ssz_bytes())
            );
            let commitment = PreconfCommitment {
                preconf,
                slasher_address: Address::repeat_byte(0x51),
            };
            let domain = B256::repeat_byte(7);
            let mut preimage = domain.to_vec();
            preimage.extend(commitment.as_ssz_bytes());
            assert_eq!(signing_hash(&domain, &commitment), keccak256(preimage));
        }
    }

    #[test]
    fn another_domain_recovers_another_address() {
        let signed = sign(&key(1), &B256::ZERO, commitment());
        let other = recover_signer(&B256::repeat_byte(1), &signed);
        assert_ne!(other.ok(), Some(secret_key_to_address(&key(1))));
    }

    #[test]
    fn v_outside_zero_one_is_rejected() {
        let mut signed = sign(&key(2), &B256::ZERO, commitment());
        signed.signature.0[64] = 27;
        assert_eq!(
            recover_signer(&B256::ZERO, &signed),
            Err(TypesError::InvalidRecoveryId(27))
        );
    }

    #[test]
    fn high_s_is_rejected() {
        let mut signed = sign(&key(3), &B256::ZERO, commitment());
        // s' = n - s is the malleated twin; it would recover with the flipped v.
        let s = U256::from_be_slice(signed.signature.s());
        let n = U256::from_be_bytes(SECP256K1_ORDER);
        let high = n - s;
        signed.signature.0[32..64].copy_from_slice(&high.to_be_bytes::<32>());
        signed.signature.0[64] ^= 1;
        assert_eq!(recover_signer(&B256::ZERO, &signed), Err(TypesError::HighS));
    }

    #[test]
    fn s_of_exactly_half_the_order_is_low() {
        // The largest canonical s: accepted by the low-s rule, whatever recovery then says.
        let mut signed = sign(&key(3), &B256::ZERO, commitment());
        signed.signature.0[32..64].copy_from_slice(&SECP256K1_HALF_ORDER);
        assert_ne!(recover_signer(&B256::ZERO, &signed), Err(TypesError::HighS));
        // One above it is high.
        let above = U256::from_be_bytes(SECP256K1_HALF_ORDER) + U256::from(1u8);
        signed.signature.0[32..64].copy_from_slice(&above.to_be_bytes::<32>());
        assert_eq!(recover_signer(&B256::ZERO, &signed), Err(TypesError::HighS));
    }

    #[test]
    fn zero_signature_is_unrecoverable() {
        let signed = SignedCommitment {
            commitment: commitment(),
            signature: Bytes65::default(),
        };
        assert_eq!(
            recover_signer(&B256::ZERO, &signed),
            Err(TypesError::Unrecoverable)
        );
    }

    /// Hits of this thread's [`RecentSigners`] so far.
    fn recent_signer_hits() -> u64 {
        RECENT_SIGNERS.with(|recent| recent.borrow().hits)
    }

    #[test]
    fn recent_signers_answer_repeat_keys_and_stay_right_past_their_capacity() {
        let domain = B256::repeat_byte(3);
        // One more key than the cache holds, each recovered more than once: every address
        // must be right whether it came from an entry or from the keccak.
        let keys: Vec<SecretKey> = (1..=RECENT_SIGNER_KEYS as u8 + 1).map(key).collect();
        let signed: Vec<_> = keys
            .iter()
            .map(|k| sign(k, &domain, commitment()))
            .collect();
        let check = |i: usize| {
            assert_eq!(
                recover_signer(&domain, &signed[i]).unwrap(),
                secret_key_to_address(&keys[i]),
                "key {i}"
            );
        };
        // Each test runs on its own thread: the cache starts empty.
        let start = recent_signer_hits();
        check(0);
        assert_eq!(recent_signer_hits(), start, "a first key is computed");
        check(0);
        assert_eq!(recent_signer_hits(), start + 1, "a repeat key is an entry");
        for i in 1..keys.len() {
            check(i);
        }
        // The ninth key replaced the oldest (key 0), the other eight are entries.
        let before = recent_signer_hits();
        check(0);
        assert_eq!(recent_signer_hits(), before, "the oldest key was replaced");
        for i in 2..keys.len() {
            check(i);
        }
        assert_eq!(
            recent_signer_hits(),
            before + keys.len() as u64 - 2,
            "the newest keys stayed"
        );
    }

    #[test]
    fn invalid_secret_keys_are_refused() {
        assert_eq!(
            secret_key_from_bytes([0; 32]).unwrap_err(),
            TypesError::InvalidSecretKey
        );
        assert_eq!(
            secret_key_from_bytes([0xff; 32]).unwrap_err(),
            TypesError::InvalidSecretKey
        );
    }

    const SECP256K1_ORDER: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
}
