//! Property tests: every container survives encode → decode, and arbitrary bytes never make a
//! decoder panic or allocate more than a small multiple of the input.
// The allocation-tracking global allocator below needs `unsafe` (GlobalAlloc is an unsafe trait);
// it only forwards to the system allocator.
#![allow(unsafe_code)]

use preconfirmation_types::*;
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Records the largest single allocation made by the current thread while tracking is on.
struct TrackingAllocator;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

#[global_allocator]
static ALLOCATOR: TrackingAllocator = TrackingAllocator;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation(f: impl FnOnce()) -> usize {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    f();
    TRACKING.with(|t| t.set(false));
    LARGEST.with(|l| l.get())
}

/// Decodes `bytes` as every container under default caps; must never panic.
fn decode_all(bytes: &[u8]) {
    let l = ChainLimits::default();
    let _ = Preconfirmation::decode_capped(bytes, &l);
    let _ = PreconfCommitment::decode_capped(bytes, &l);
    if let Ok(signed) = SignedCommitment::decode_capped(bytes, &l) {
        let _ = recover_signer(&B256::ZERO, &signed);
    }
    let _ = RawTxListGossip::decode_capped(bytes, &l);
    let _ = PreconfHead::decode_capped(bytes, &l);
    let _ = GetCommitmentsByNumberRequest::decode_capped(bytes, &l);
    let _ = GetCommitmentsByNumberResponse::decode_capped(bytes, &l);
    let _ = GetRawTxListRequest::decode_capped(bytes, &l);
    let _ = GetRawTxListResponse::decode_capped(bytes, &l);
}

fn u256() -> impl Strategy<Value = U256> {
    any::<[u8; 32]>().prop_map(U256::from_le_bytes)
}
fn b256() -> impl Strategy<Value = B256> {
    any::<[u8; 32]>().prop_map(B256::from)
}
fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 20]>().prop_map(Address::from)
}

prop_compose! {
    fn preconfirmation()(
        eop in any::<bool>(), block_number in u256(), timestamp in u256(), gas_limit in u256(),
        coinbase in address(), anchor_block_number in u256(), raw_tx_list_hash in b256(),
        parent_preconfirmation_hash in b256(), submission_window_end in u256(),
        prover_auth in address(), proposal_id in u256(),
    ) -> Preconfirmation {
        Preconfirmation { eop, block_number, timestamp, gas_limit, coinbase, anchor_block_number,
            raw_tx_list_hash, parent_preconfirmation_hash, submission_window_end, prover_auth,
            proposal_id }
    }
}

prop_compose! {
    fn signed_commitment()(preconf in preconfirmation(), slasher in address(),
        r in any::<[u8; 32]>(), s in any::<[u8; 32]>(), v in any::<u8>()) -> SignedCommitment {
        let mut sig = [0u8; 65];
        sig[..32].copy_from_slice(&r);
        sig[32..64].copy_from_slice(&s);
        sig[64] = v;
        SignedCommitment {
            commitment: PreconfCommitment { preconf, slasher_address: slasher },
            signature: Bytes65(sig),
        }
    }
}

fn round_trip<T: WireMessage + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = value.to_ssz();
    assert!(bytes.len() <= T::max_encoded_len(&ChainLimits::default()));
    let decoded = T::decode_capped(&bytes, &ChainLimits::default()).expect("own encoding decodes");
    assert_eq!(&decoded, value);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_container_round_trips(
        preconf in preconfirmation(),
        signed in signed_commitment(),
        txlist in proptest::collection::vec(any::<u8>(), 0..4096),
        commitments in proptest::collection::vec(signed_commitment(), 0..8),
        start in u256(), max_count in any::<u32>(), hash in b256(), slasher in address(),
    ) {
        round_trip(&preconf);
        round_trip(&PreconfCommitment { preconf: preconf.clone(), slasher_address: slasher });
        round_trip(&signed);
        round_trip(&RawTxListGossip::new(txlist.clone()).unwrap());
        round_trip(&PreconfHead { block_number: start, submission_window_end: preconf.timestamp });
        round_trip(&GetCommitmentsByNumberRequest { start_block_number: start, max_count });
        round_trip(&GetCommitmentsByNumberResponse::new(commitments).unwrap());
        round_trip(&GetRawTxListRequest { raw_tx_list_hash: hash });
        round_trip(&GetRawTxListResponse::new(txlist).unwrap());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        decode_all(&bytes);
    }

    #[test]
    fn mutated_encodings_never_panic(
        signed in signed_commitment(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        // Start from a valid response and damage it: offsets and lengths are the interesting part.
        let mut bytes = GetCommitmentsByNumberResponse::new(vec![signed.clone(), signed]).unwrap().to_ssz();
        for (index, value) in flips {
            let i = index.index(bytes.len());
            bytes[i] = value;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        decode_all(&bytes);
    }

    #[test]
    fn decoding_allocates_at_most_a_small_multiple_of_the_input(
        bytes in proptest::collection::vec(any::<u8>(), 0..8192),
        offset in any::<u32>(),
    ) {
        // A leading offset claiming a huge list must not make the decoder allocate for it.
        let mut bytes = bytes;
        if bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&offset.to_le_bytes());
        }
        let largest = largest_allocation(|| decode_all(&bytes));
        prop_assert!(largest <= 2 * bytes.len() + 1024, "{largest} bytes allocated for {} input bytes", bytes.len());
    }
}

#[test]
fn a_max_size_list_decodes_within_twice_its_size() {
    let signed = SignedCommitment::default();
    let response =
        GetCommitmentsByNumberResponse::new(vec![signed; MAX_COMMITMENTS_PER_RESPONSE]).unwrap();
    let bytes = response.to_ssz();
    let largest = largest_allocation(|| {
        GetCommitmentsByNumberResponse::decode_capped(&bytes, &ChainLimits::default()).unwrap();
    });
    // The tracker sees the list's buffer (so the bound above is not vacuous) ...
    assert!(
        largest >= bytes.len() / 2,
        "tracking saw only {largest} bytes"
    );
    // ... and the buffer is proportional to the input.
    assert!(
        largest <= 2 * bytes.len(),
        "{largest} bytes for {} input bytes",
        bytes.len()
    );
}
