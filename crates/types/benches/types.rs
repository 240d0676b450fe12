//! Micro benchmarks of the per-message hot paths: SSZ, hashing, signing, recovery.
#![allow(clippy::unwrap_used)]
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use preconfirmation_types::*;
use std::hint::black_box;

fn sample() -> (secp256k1::SecretKey, B256, SignedCommitment) {
    let key = secret_key_from_bytes([3; 32]).unwrap();
    let domain = B256::from(DEFAULT_DOMAIN_PRECONF);
    let commitment = PreconfCommitment {
        preconf: Preconfirmation {
            block_number: U256::from(1_000_000u64),
            timestamp: U256::from(1_700_000_000u64),
            gas_limit: U256::from(30_000_000u64),
            raw_tx_list_hash: B256::repeat_byte(0xab),
            ..Default::default()
        },
        slasher_address: Address::repeat_byte(0x51),
    };
    let signed = sign(&key, &domain, commitment);
    (key, domain, signed)
}

use preconfirmation_types::reexports::secp256k1;

fn bench(c: &mut Criterion) {
    let (key, domain, signed) = sample();
    let bytes = signed.to_ssz();
    let limits = ChainLimits::default();

    c.bench_function("ssz_encode_signed_commitment", |b| {
        b.iter(|| black_box(&signed).to_ssz())
    });
    c.bench_function("ssz_decode_signed_commitment", |b| {
        b.iter(|| SignedCommitment::decode_capped(black_box(&bytes), &limits).unwrap())
    });
    c.bench_function("signing_hash", |b| {
        b.iter(|| signing_hash(black_box(&domain), black_box(&signed.commitment)))
    });
    c.bench_function("sign", |b| {
        b.iter(|| sign(&key, &domain, black_box(signed.commitment.clone())))
    });
    c.bench_function("recover_signer", |b| {
        b.iter(|| recover_signer(black_box(&domain), black_box(&signed)).unwrap())
    });

    let txlist: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut group = c.benchmark_group("raw_tx_list_hash");
    group.throughput(Throughput::Bytes(txlist.len() as u64));
    group.bench_function("keccak_1mib", |b| {
        b.iter(|| raw_tx_list_hash(black_box(&txlist)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
