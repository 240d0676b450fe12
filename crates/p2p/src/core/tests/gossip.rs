//! Gossip through the core: batches, dedupe, the lower time bound, out-of-order arrival, the
//! cost of per-message spans.

use super::*;

/// A batch as the manager takes it: ids as gossipsub computes them, staged by
/// [`super::GossipBatch`] (signers of full chunks recovered on the pool),
/// finished in order. Each message gets the verdict it would get alone, in arrival order:
/// an out-of-order child waits for its parent inside the batch, a duplicate in the batch
/// and malformed bytes are caught, and the later chunks see the earlier chunks' heads.
#[test]
fn a_batch_keeps_arrival_order_and_each_message_s_verdict() {
    let mut h = harness();
    let blocks: Vec<Vec<u8>> = (0..40)
        .map(|i| h.builder.next_block(Some(vec![i; 8])).commitment.to_ssz())
        .collect();
    let mut batch: Vec<Vec<u8>> = vec![blocks[1].clone(), blocks[0].clone()];
    batch.push(blocks[0].clone()); // the same message again
    batch.push(vec![0xde, 0xad]); // malformed
    batch.extend(blocks[2..].iter().cloned());
    let p = peer();
    let messages = batch
        .iter()
        .map(|b| (p, preconfirmation_net::message_id(b), b.clone()))
        .collect();
    let mut staged = super::GossipBatch::start(&mut h.core, messages);
    let mut verdicts = Vec::new();
    let mut released = Vec::new();
    while let Some(commitment) = futures::executor::block_on(staged.next()) {
        verdicts.push(h.core.finish_gossip_commitment(commitment));
        released.extend(h.core.take_effects().into_iter().filter_map(|e| match e {
            Effect::PendingVerdict { verdict, .. } => Some(verdict),
            _ => None,
        }));
    }
    assert!(
        staged.parallel_chunks() >= 2,
        "the full chunks were recovered on the pool"
    );
    let mut expected = vec![
        None,                        // block 2: parent unknown, held
        Some(GossipVerdict::Accept), // block 1
        Some(GossipVerdict::Ignore), // block 1 again
        Some(GossipVerdict::Reject), // malformed
    ];
    expected.extend(std::iter::repeat_n(Some(GossipVerdict::Accept), 38));
    assert_eq!(verdicts, expected);
    assert_eq!(released, vec![GossipVerdict::Accept], "block 2 forwarded");
    assert_eq!(h.core.head(), 40);
}

/// Spans opened while a tx list and then its commitment are gossiped to a fresh core, under
/// a subscriber that lets `level` through.
fn spans_per_gossip_message(level: tracing::Level) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tracing_subscriber::layer::SubscriberExt;

    struct CountSpans(Arc<AtomicUsize>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountSpans {
        fn on_new_span(
            &self,
            _: &tracing::span::Attributes<'_>,
            _: &tracing::span::Id,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let mut h = harness();
    let block = h.builder.next_block(Some(vec![0xab; 64]));
    let txlist = block.txlist.expect("a block with a tx list");
    let opened = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::filter::LevelFilter::from_level(level))
        .with(CountSpans(opened.clone()));
    tracing::subscriber::with_default(subscriber, || {
        let txlist_verdict = h
            .core
            .on_gossip_txlist(peer(), gossip_id(1), &txlist.to_ssz());
        assert_eq!(txlist_verdict, None, "held until its commitment comes");
        let verdict = h
            .core
            .on_gossip_commitment(peer(), gossip_id(2), &block.commitment.to_ssz());
        assert_eq!(verdict, Some(GossipVerdict::Accept));
    });
    opened.load(Ordering::SeqCst)
}

/// Set in the child process that [`per_message_spans_cost_nothing_at_a_nodes_default_level`]
/// starts for itself.
const SPANS_CHILD_ENV: &str = "P2P_SPANS_TEST_CHILD";

#[test]
fn per_message_spans_cost_nothing_at_a_nodes_default_level() {
    // tracing caches each callsite's interest process-wide, from whichever subscribers
    // were alive when it was first hit, so other tests' subscribers in this process would
    // decide what this one sees. It counts in a process of its own: this test binary,
    // started again with only this test.
    if std::env::var_os(SPANS_CHILD_ENV).is_none() {
        let exe = std::env::current_exe().expect("the test binary's path");
        let output = std::process::Command::new(exe)
            .args([
                // This test's path in the test binary: its module path without the crate.
                &format!(
                    "{}::per_message_spans_cost_nothing_at_a_nodes_default_level",
                    module_path!().split_once("::").map_or("", |(_, path)| path)
                ),
                "--exact",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(SPANS_CHILD_ENV, "1")
            .output()
            .expect("the test binary starts");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "the span count in its own process failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        return;
    }
    assert_eq!(
        spans_per_gossip_message(tracing::Level::INFO),
        0,
        "at `info` (a node's default) no span is opened per gossip message"
    );
    assert!(
        spans_per_gossip_message(tracing::Level::DEBUG) >= 2,
        "at `debug` each message has its span (peer, block, hash)"
    );
}

#[test]
fn same_gossip_twice_is_ignored_the_second_time() {
    let mut h = harness();
    let block = h.builder.next_block(None);
    let bytes = block.commitment.to_ssz();
    let p = peer();
    assert_eq!(
        h.core.on_gossip_commitment(p, gossip_id(100), &bytes),
        Some(GossipVerdict::Accept)
    );
    assert_eq!(
        h.core.on_gossip_commitment(p, gossip_id(101), &bytes),
        Some(GossipVerdict::Ignore)
    );
    assert_eq!(h.core.head(), 1);
}

#[test]
fn gossip_for_a_window_that_ended_is_ignored_and_local_publish_refused() {
    // Default grace (12 s); the harness chain's first windows ended ~200 s ago.
    let mut h = harness_with(|c| c.rules = crate::config::BlockRules::default());
    let block = h.builder.next_block(None);
    let bytes = block.commitment.to_ssz();
    assert_eq!(
        h.core.on_gossip_commitment(peer(), gossip_id(100), &bytes),
        Some(GossipVerdict::Ignore),
        "not forwarded, and Ignore: not penalised"
    );
    assert_eq!(h.core.head(), 0, "not accepted");
    assert_eq!(h.core.state.pending().len(), 0, "not buffered either");
    let signer = h.core.validator().recover_signer(&block.commitment);
    assert!(matches!(
        h.core.check_local(&block.commitment, signer),
        ValidationOutcome::Reject {
            reason: RejectReason::WindowEnded { .. },
            penalise: false
        }
    ));
}

#[test]
fn own_published_message_coming_back_is_ignored() {
    let mut h = harness();
    let block = h.builder.next_block(None);
    let bytes = block.commitment.to_ssz();
    // What the manager does when publishing.
    h.core
        .see(MessageId::new(GossipTopicKind::Commitments, &bytes));
    assert_eq!(
        h.core.on_gossip_commitment(peer(), gossip_id(100), &bytes),
        Some(GossipVerdict::Ignore)
    );
    assert_eq!(h.core.head(), 0, "not processed again");
}

#[test]
fn children_before_parent_are_buffered_then_drained_in_order() {
    let mut h = harness();
    let blocks = h.builder.blocks(5, 32);
    let p = peer();
    // Tx lists first (as §6 publishes them): held, no commitment references them yet.
    for (i, b) in blocks.iter().enumerate() {
        let t = b.txlist.as_ref().unwrap();
        assert_eq!(h.core.on_gossip_txlist(p, gossip_id(i), &t.to_ssz()), None);
    }
    assert!(verdict_effects(&mut h).is_empty());
    // Then blocks 5, 4, 3, 2 before 1.
    for (i, b) in blocks.iter().enumerate().skip(1).rev() {
        let verdict = h
            .core
            .on_gossip_commitment(p, gossip_id(100 + i), &b.commitment.to_ssz());
        assert_eq!(verdict, None, "pending: verdict held");
    }
    assert_eq!(h.core.status().pending_parent, 4);
    // Pending commitments reference lists 2..5: those are forwarded now.
    let mut effects = h.core.take_effects();
    assert_eq!(
        released(&effects, false),
        (1..5)
            .rev()
            .map(|i| (gossip_id(i), GossipVerdict::Accept))
            .collect::<Vec<_>>()
    );
    effects.retain(|e| !matches!(e, Effect::Verdict { .. }));
    assert!(effects.iter().all(|e| matches!(e, Effect::Gap { .. })));
    assert_eq!(
        h.core
            .on_gossip_commitment(p, gossip_id(100), &blocks[0].commitment.to_ssz()),
        Some(GossipVerdict::Accept)
    );
    // The children validated with it: their held verdicts are released as Accept, in
    // block order, so they are forwarded after their parent.
    let children: Vec<_> = h
        .core
        .take_effects()
        .into_iter()
        .filter_map(|e| match e {
            Effect::PendingVerdict {
                message_id,
                verdict,
                ..
            } => Some((message_id, verdict)),
            Effect::Verdict { message_id, .. } => {
                assert_eq!(message_id, gossip_id(0), "block 1's tx list");
                None
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        children,
        (2..=5)
            .map(|i| (gossip_id(100 + i - 1), GossipVerdict::Accept))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.core.head(), 5);
    assert_eq!(h.core.status().pending_parent, 0);
    assert_eq!(h.storage.stats().unwrap().txlists, 0, "not durable yet");
    flush_writes(&mut h);
    assert_eq!(
        h.storage.stats().unwrap().txlists,
        5,
        "orphans moved to storage"
    );
    assert_eq!(
        commitment_events(&mut h),
        (1..=5).map(|n| (n, true)).collect::<Vec<_>>()
    );
}
