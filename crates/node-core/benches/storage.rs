//! The node's redb storage under catch-up's write pattern: 20 000 blocks (a commitment and a
//! 256-byte tx list each) written into a fresh file in durable transactions of 1, 4 and 16
//! pages of 256 blocks. The catch-up writer groups whatever queued during one transaction
//! into the next (`catchup.write_queue_pages`); this shows what grouping is worth.
#![allow(clippy::unwrap_used, missing_docs)]
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use p2p::SdkStorage;
use preconf_node_core::RedbStore;
use preconfirmation_types::{
    raw_tx_list_hash, Address, Bytes65, ChainLimits, PreconfCommitment, Preconfirmation,
    SignedCommitment, B256, U256,
};

const BLOCKS: u64 = 20_000;
const PAGE: usize = 256;

/// Blocks with distinct hashes; storage does not check signatures.
fn blocks() -> Vec<(SignedCommitment, (B256, u64, Bytes))> {
    (1..=BLOCKS)
        .map(|n| {
            let mut txlist = vec![0u8; 256];
            txlist[..8].copy_from_slice(&n.to_le_bytes());
            let hash = raw_tx_list_hash(&txlist);
            let commitment = SignedCommitment {
                commitment: PreconfCommitment {
                    preconf: Preconfirmation {
                        block_number: U256::from(n),
                        timestamp: U256::from(1_700_000_000 + 2 * n),
                        gas_limit: U256::from(30_000_000u64),
                        raw_tx_list_hash: hash,
                        parent_preconfirmation_hash: B256::from(U256::from(n)),
                        ..Default::default()
                    },
                    slasher_address: Address::repeat_byte(0x51),
                },
                signature: Bytes65([7; 65]),
            };
            (commitment, (hash, n, Bytes::from(txlist)))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let blocks = blocks();
    let mut group = c.benchmark_group("redb_put_page");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BLOCKS));
    for pages in [1usize, 4, 16] {
        group.bench_function(format!("{pages}_pages_per_transaction"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().unwrap();
                    let store = RedbStore::open(dir.path(), ChainLimits::default()).unwrap();
                    (dir, store)
                },
                |(_dir, store)| {
                    for chunk in blocks.chunks(PAGE * pages) {
                        let commitments: Vec<_> = chunk.iter().map(|b| b.0.clone()).collect();
                        let txlists: Vec<_> = chunk.iter().map(|b| b.1.clone()).collect();
                        store.put_page(&commitments, &txlists).unwrap();
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
