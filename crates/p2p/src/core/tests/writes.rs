//! Durable writes: a catch-up page announced once stored, a failed write, owed tx lists.

use super::*;

#[test]
fn catchup_page_is_announced_only_once_durable() {
    let mut h = harness();
    let blocks = h.builder.blocks(4, 32);
    let (items, mut fetched) = catchup_page(&h, &blocks[..3]);
    // Block 2's tx list was not fetched: it stays owed.
    let owed = blocks[1].txlist.as_ref().unwrap().raw_tx_list_hash;
    fetched.remove(&owed);
    let (result, write) = h.core.on_catchup_page(peer(), items, fetched);
    let write = write.expect("a page to write");
    assert_eq!((result.applied, result.gap), (3, false));
    assert_eq!(write.commitments.len(), 3);
    assert_eq!(
        write.txlists.len(),
        2,
        "fetched tx lists go in the same write"
    );
    assert_eq!(write.unresolved, vec![(owed, 2)]);
    // Applied in memory, not written, not announced; the status shows the durable head.
    assert_eq!(h.core.head(), 3);
    assert_eq!(h.core.status().head_block_number, 0);
    assert_eq!(h.storage.stats().unwrap().commitments, 0);
    assert!(commitment_events(&mut h).is_empty());
    // Gossip extending the in-memory head is accepted (the verdict does not wait) but its
    // write waits for the page below it.
    assert_eq!(
        h.core
            .on_gossip_commitment(peer(), gossip_id(100), &blocks[3].commitment.to_ssz()),
        Some(GossipVerdict::Accept)
    );
    assert_eq!(h.storage.stats().unwrap().commitments, 0);
    assert!(commitment_events(&mut h).is_empty());
    // The write stage stores the page, then reports it.
    h.storage
        .put_page(&write.commitments, &write.txlists)
        .unwrap();
    let gossip_write = h.core.take_writes();
    assert_eq!(gossip_write.len(), 1);
    assert!(gossip_write[0].id > write.id, "queued behind the page");
    h.core
        .on_stored(write.id, Ok(std::collections::HashSet::new()));
    assert_eq!(
        commitment_events(&mut h),
        vec![(1, true), (2, false), (3, true)]
    );
    assert_eq!(h.core.status().head_block_number, 3, "durable head");
    // Then the writer stores block 4.
    h.storage
        .put_page(&gossip_write[0].commitments, &gossip_write[0].txlists)
        .unwrap();
    h.core
        .on_stored(gossip_write[0].id, Ok(std::collections::HashSet::new()));
    assert_eq!(commitment_events(&mut h), vec![(4, false)]);
    assert_eq!(h.storage.stats().unwrap().commitments, 4);
    let status = h.core.status();
    assert_eq!(status.head_block_number, 4);
    assert_eq!(
        status.missing_txlists, 2,
        "blocks 2 and 4 owe their tx lists"
    );
}

#[test]
fn failed_catchup_write_falls_back_to_storage() {
    let mut h = harness();
    let blocks = h.builder.blocks(6, 32);
    let (first, txlists) = catchup_page(&h, &blocks[..3]);
    let (_, write) = h.core.on_catchup_page(peer(), first, txlists);
    let first = write.expect("page");
    h.storage
        .put_page(&first.commitments, &first.txlists)
        .unwrap();
    h.core
        .on_stored(first.id, Ok(std::collections::HashSet::new()));
    assert_eq!(h.core.status().head_block_number, 3);
    commitment_events(&mut h);
    // The next page is validated, but its write fails.
    let (second, txlists) = catchup_page(&h, &blocks[3..]);
    let (_, write) = h.core.on_catchup_page(peer(), second, txlists);
    let second = write.expect("page");
    assert_eq!(h.core.head(), 6);
    h.core.on_stored(
        second.id,
        Err(crate::StorageError::Backend("disk full".into())),
    );
    assert_eq!(h.core.head(), 3, "memory rebuilt from storage");
    assert_eq!(h.core.status().head_block_number, 3);
    assert!(commitment_events(&mut h).is_empty(), "nothing announced");
    // A stale report for a page the core no longer holds changes nothing durable.
    h.core
        .on_stored(second.id, Ok(std::collections::HashSet::new()));
    assert_eq!(h.core.head(), 3);
    assert!(commitment_events(&mut h).is_empty());
}

/// A failed write rebuilds the chain from storage without forgetting what it owes: lists owed
/// to stored blocks stay owed; those of dropped blocks go.
#[test]
fn owed_txlists_survive_a_failed_write() {
    let mut h = harness();
    let blocks = h.builder.blocks(6, 32);
    // Blocks 1-3 stored without their tx lists: owed.
    let (first, _) = catchup_page(&h, &blocks[..3]);
    let (_, write) = h.core.on_catchup_page(peer(), first, HashMap::new());
    let first = write.expect("page");
    h.storage.put_page(&first.commitments, &[]).unwrap();
    h.core
        .on_stored(first.id, Ok(std::collections::HashSet::new()));
    let owed_before: std::collections::BTreeSet<_> = h.core.awaited().into_iter().collect();
    assert_eq!(owed_before.len(), 3);
    // Blocks 4-6, also without lists, fail to write.
    let (second, _) = catchup_page(&h, &blocks[3..]);
    let (_, write) = h.core.on_catchup_page(peer(), second, HashMap::new());
    let second = write.expect("page");
    assert_eq!(h.core.awaited().len(), 6);
    h.core.on_stored(
        second.id,
        Err(crate::StorageError::Backend("disk full".into())),
    );
    let owed_after: std::collections::BTreeSet<_> = h.core.awaited().into_iter().collect();
    assert_eq!(
        owed_after, owed_before,
        "still owed: blocks 1-3's lists, not 4-6's"
    );
    // One arrives: stored and announced, as any awaited tx list is.
    let t = blocks[0].txlist.as_ref().unwrap();
    h.core
        .add_txlist(t.raw_tx_list_hash, Bytes::from(t.txlist.to_vec()));
    flush_writes(&mut h);
    assert!(h.storage.txlist(&t.raw_tx_list_hash).unwrap().is_some());
    assert_eq!(h.core.awaited().len(), 2);
}

#[test]
fn missing_txlist_is_awaited_then_stored_when_it_arrives() {
    let mut h = harness();
    let block = h.builder.blocks(1, 64).remove(0);
    let p = peer();
    h.core
        .on_gossip_commitment(p, gossip_id(100), &block.commitment.to_ssz());
    let hash = block.commitment.preconf().raw_tx_list_hash;
    assert!(h.core.is_awaited(&hash));
    flush_writes(&mut h);
    assert!(h.core.take_effects().contains(&Effect::FetchTxList {
        hash,
        block_number: 1,
        hint: Some(p)
    }));
    let t = block.txlist.unwrap();
    assert_eq!(
        h.core.on_gossip_txlist(p, gossip_id(0), &t.to_ssz()),
        Some(GossipVerdict::Accept),
        "awaited: forwarded at once"
    );
    assert!(!h.core.is_awaited(&hash));
    assert!(
        h.storage.txlist(&hash).unwrap().is_none(),
        "not durable yet"
    );
    flush_writes(&mut h);
    assert!(h.storage.txlist(&hash).unwrap().is_some());
    assert!(
        std::iter::from_fn(|| h.events.try_recv().ok()).any(|e| matches!(
            e,
            SdkEvent::RawTxList { hash: announced, block_number: 1 } if announced == hash
        )),
        "announced once durable"
    );
}
