//! The validator's rules, one test per rule (§4–§5, §3.4).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use preconfirmation_types::{
    preconfirmation_hash, secret_key_to_address, ChainLimits, PreconfCommitment, RawTxListGossip,
    SIGNATURE_LEN,
};

use super::*;
use crate::testkit::{preconfer_key, ChainBuilder};

const NOW_OFFSET: u64 = 1_000;

#[derive(Default)]
struct View {
    head: LocalHead,
    at: HashMap<u64, (SignedCommitment, Address)>,
    slots: HashMap<(u64, Address), SignedCommitment>,
    eops: HashMap<U256, SignedCommitment>,
}

impl ChainView for View {
    fn head(&self) -> LocalHead {
        self.head
    }
    fn accepted_at(&self, n: u64) -> Option<(SignedCommitment, Address)> {
        self.at.get(&n).cloned()
    }
    fn accepted_in_slot(&self, slot: u64, signer: Address) -> Option<SignedCommitment> {
        self.slots.get(&(slot, signer)).cloned()
    }
    fn eop_for_window(&self, end: U256) -> Option<SignedCommitment> {
        self.eops.get(&end).cloned()
    }
}

struct Fixture {
    builder: ChainBuilder,
    validator: Validator,
    view: View,
    now: u64,
    first: SignedCommitment,
}

/// Block 1 accepted as the head; the builder is ready for block 2 (slot 1, window 0:
/// slots 0..4 owned by preconfer 0).
fn fixture() -> Fixture {
    let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
    let now = unix_now();
    let mut builder = ChainBuilder::new(chain, 3, 4, now - NOW_OFFSET, 1);
    let validator = Validator::new(chain, BlockRules::default(), builder.lookahead(), 64);
    let first = builder.next_block(Some(vec![1])).commitment;
    let signer = secret_key_to_address(&preconfer_key(0));
    let mut view = View {
        head: LocalHead {
            block_number: 1,
            preconfirmation_hash: Some(preconfirmation_hash(first.preconf())),
            timestamp: Some(now - NOW_OFFSET),
        },
        ..Default::default()
    };
    view.at.insert(1, (first.clone(), signer));
    view.slots.insert((0, signer), first.clone());
    Fixture {
        builder,
        validator,
        view,
        now,
        first,
    }
}

impl Fixture {
    fn unsigned(&self) -> PreconfCommitment {
        self.builder.next_unsigned(Some(b"txs"))
    }
    fn check(&self, signed: &SignedCommitment) -> ValidationOutcome {
        let signer = self.validator.recover_signer(signed);
        self.validator
            .validate_commitment(signed, signer, &self.view, self.now)
    }
    fn check_mutated(&self, mutate: impl FnOnce(&mut PreconfCommitment)) -> ValidationOutcome {
        let mut c = self.unsigned();
        mutate(&mut c);
        self.check(&self.builder.sign_next(c))
    }
}

fn label(outcome: &ValidationOutcome) -> &'static str {
    outcome.label()
}

#[test]
fn valid_next_block_is_accepted() {
    let f = fixture();
    let outcome = f.check(&f.builder.sign_next(f.unsigned()));
    let ValidationOutcome::Accept(a) = outcome else {
        panic!("expected accept, got {outcome:?}");
    };
    assert_eq!((a.block_number, a.slot), (2, 1));
    assert_eq!(a.signer, secret_key_to_address(&preconfer_key(0)));
}

/// One row per §4–§5 rejection reason: (name, mutation, expected label, penalised).
#[test]
fn every_rejection_reason() {
    type Mutation = Box<dyn Fn(&mut PreconfCommitment)>;
    let rows: Vec<(&str, Mutation, &str, bool)> = vec![
        (
            "slasher",
            Box::new(|c| c.slasher_address = Address::repeat_byte(9)),
            "wrong_slasher",
            true,
        ),
        (
            "zero gas",
            Box::new(|c| c.preconf.gas_limit = U256::ZERO),
            "gas_limit",
            true,
        ),
        (
            "gas above max",
            Box::new(|c| c.preconf.gas_limit = U256::from(240_000_001u64)),
            "gas_limit",
            true,
        ),
        (
            "future timestamp",
            Box::new(|c| c.preconf.timestamp = U256::from(unix_now() + 60)),
            "timestamp_in_future",
            true,
        ),
        (
            "timestamp before genesis",
            Box::new(|c| c.preconf.timestamp = U256::from(5u64)),
            "timestamp_out_of_range",
            true,
        ),
        (
            "block number above u64",
            Box::new(|c| c.preconf.block_number = U256::MAX),
            "block_number_out_of_range",
            true,
        ),
        (
            "non-EOP without tx list",
            Box::new(|c| c.preconf.raw_tx_list_hash = B256::ZERO),
            "missing_txlist",
            true,
        ),
        (
            "window end",
            Box::new(|c| c.preconf.submission_window_end += U256::from(1)),
            "wrong_window_end",
            true,
        ),
        (
            "window end before genesis",
            Box::new(|c| c.preconf.submission_window_end = U256::ZERO),
            "window_end_out_of_range",
            true,
        ),
        (
            "timestamp after its window",
            // Slot 5 is in window 1; the commitment claims window 0 (its own signer's).
            Box::new(|c| c.preconf.timestamp += U256::from(4)),
            "timestamp_outside_window",
            true,
        ),
        (
            "parent hash",
            Box::new(|c| c.preconf.parent_preconfirmation_hash = B256::repeat_byte(7)),
            "bad_parent",
            true,
        ),
        (
            "too far ahead",
            Box::new(|c| c.preconf.block_number = U256::from(1_000u64)),
            "too_far_ahead",
            false,
        ),
    ];
    let f = fixture();
    for (name, mutate, expected, penalised) in rows {
        let outcome = f.check_mutated(mutate);
        assert_eq!(label(&outcome), expected, "{name}: {outcome:?}");
        let ValidationOutcome::Reject { penalise, .. } = outcome else {
            panic!("{name}: not a reject");
        };
        assert_eq!(penalise, penalised, "{name}");
    }
}

/// A schedule source that names each window's coinbase and prover.
struct Naming(Arc<crate::lookahead::RotatingLookahead>);

impl Lookahead for Naming {
    fn slot_at(&self, timestamp: U256) -> Option<u64> {
        self.0.slot_at(timestamp)
    }
    fn schedule_for_slot(&self, slot: u64) -> Option<crate::lookahead::SlotSchedule> {
        self.0.schedule_for_slot(slot).map(|mut s| {
            s.coinbase = Some(s.signer);
            s.prover = Some(Address::repeat_byte(0xAB));
            s
        })
    }
}

/// §4.2 item 5: where the schedule names a coinbase and a prover, a commitment must carry
/// them; a schedule that names none checks neither (the fixture's rows).
#[test]
fn coinbase_and_prover_are_checked_where_the_schedule_names_them() {
    let mut f = fixture();
    f.validator = Validator::new(
        *f.validator.chain(),
        BlockRules::default(),
        Arc::new(Naming(f.builder.lookahead())),
        64,
    );
    let prover = Address::repeat_byte(0xAB);
    let ok = f.check_mutated(|c| c.preconf.prover_auth = prover);
    assert!(matches!(ok, ValidationOutcome::Accept(_)), "{ok:?}");
    let coinbase = f.check_mutated(|c| {
        c.preconf.prover_auth = prover;
        c.preconf.coinbase = Address::repeat_byte(1);
    });
    assert_eq!(label(&coinbase), "wrong_coinbase");
    assert!(matches!(
        coinbase,
        ValidationOutcome::Reject { penalise: true, .. }
    ));
    let wrong_prover = f.check_mutated(|c| c.preconf.prover_auth = Address::repeat_byte(2));
    assert_eq!(label(&wrong_prover), "wrong_prover");
}

#[test]
fn bad_signatures_are_rejected_with_penalty() {
    let f = fixture();
    let good = f.builder.sign_next(f.unsigned());
    let mut bad_v = good.clone();
    bad_v.signature.0[SIGNATURE_LEN - 1] = 5;
    let mut garbage = good.clone();
    garbage.signature.0 = [0; SIGNATURE_LEN];
    for signed in [bad_v, garbage] {
        let outcome = f.check(&signed);
        assert_eq!(label(&outcome), "bad_signature", "{outcome:?}");
        assert!(matches!(
            outcome,
            ValidationOutcome::Reject { penalise: true, .. }
        ));
    }
}

#[test]
fn wrong_signer_is_rejected() {
    let f = fixture();
    let signed = f.builder.sign_with(&preconfer_key(1), f.unsigned());
    let outcome = f.check(&signed);
    assert!(
        matches!(
            &outcome,
            ValidationOutcome::Reject {
                reason: RejectReason::WrongSigner { .. },
                penalise: true
            }
        ),
        "{outcome:?}"
    );
}

#[test]
fn timestamp_before_parent_is_rejected() {
    let mut f = fixture();
    f.view.head.timestamp = Some(f.now - 10);
    let outcome = f.check(&f.builder.sign_next(f.unsigned()));
    assert_eq!(label(&outcome), "timestamp_before_parent");
}

#[test]
fn duplicates_stale_and_equivocation_at_or_below_head() {
    let f = fixture();
    // The very same commitment again.
    assert_eq!(label(&f.check(&f.first)), "duplicate");
    // Same signer, same number, different content: evidence, no penalty for the sender.
    let mut other = f.first.commitment.clone();
    other.preconf.gas_limit = U256::from(1_234u64);
    let second = f.builder.sign_with(&preconfer_key(0), other);
    let outcome = f.check(&second);
    match outcome {
        ValidationOutcome::Reject {
            reason: RejectReason::Equivocation { kind, first },
            penalise: false,
        } => {
            assert_eq!(kind, EquivocationKind::SameBlockNumber);
            assert_eq!(*first, f.first);
        }
        other => panic!("expected equivocation, got {other:?}"),
    }
    // Below the head with nothing remembered: stale.
    let mut f2 = fixture();
    f2.view.at.clear();
    f2.view.head.block_number = 5;
    assert_eq!(label(&f2.check(&f2.first)), "stale");
}

#[test]
fn same_slot_equivocation() {
    let mut f = fixture();
    let signer = secret_key_to_address(&preconfer_key(0));
    // Someone else's block 2 in slot 1 was accepted; the signer sends another for slot 1.
    let mut earlier = f.unsigned();
    earlier.preconf.gas_limit = U256::from(7u64);
    let earlier = f.builder.sign_next(earlier);
    f.view.slots.insert((1, signer), earlier.clone());
    let outcome = f.check(&f.builder.sign_next(f.unsigned()));
    match outcome {
        ValidationOutcome::Reject {
            reason: RejectReason::Equivocation { kind, first },
            ..
        } => {
            assert_eq!(kind, EquivocationKind::SameSlot);
            assert_eq!(*first, earlier);
        }
        other => panic!("expected equivocation, got {other:?}"),
    }
}

#[test]
fn window_ended_beyond_the_grace_is_refused_unpenalised() {
    let f = fixture();
    let grace = f.validator.rules.window_end_grace.as_secs();
    let signed = f.builder.sign_next(f.unsigned());
    let end = u64::try_from(signed.preconf().submission_window_end).unwrap();
    // Up to `grace` seconds after the window end: still taken.
    assert!(f.validator.check_window_not_ended(&signed, end).is_ok());
    assert!(f
        .validator
        .check_window_not_ended(&signed, end + grace)
        .is_ok());
    let refused = f
        .validator
        .check_window_not_ended(&signed, end + grace + 1)
        .unwrap_err();
    assert_eq!(refused.label(), "window_ended");
    assert!(!refused.penalises_sender(), "a late relay is not punished");
    let lenient = Validator::new(
        *f.validator.chain(),
        BlockRules {
            window_end_grace: Duration::from_secs(3600),
            ..BlockRules::default()
        },
        f.builder.lookahead(),
        64,
    );
    assert!(lenient
        .check_window_not_ended(&signed, end + grace + 1)
        .is_ok());
}

#[test]
fn unknown_parent_is_pending_not_rejected() {
    let f = fixture();
    let outcome = f.check_mutated(|c| c.preconf.block_number = U256::from(5u64));
    assert_eq!(
        outcome,
        ValidationOutcome::Pending(PendingReason::ParentUnknown)
    );
}

#[test]
fn unknown_schedule_is_pending_and_only_the_link_is_checked() {
    let chain = ChainSpec::new(167_001, Address::repeat_byte(0x51));
    let now = unix_now();
    let mut builder = ChainBuilder::new(chain, 2, 4, now - NOW_OFFSET, 1);
    let lookahead = builder.lookahead();
    lookahead.extend_horizon(0);
    let hidden = Arc::new(
        crate::lookahead::RotatingLookahead::new(
            (0..2)
                .map(|i| secret_key_to_address(&preconfer_key(i)))
                .collect(),
            4,
            now - NOW_OFFSET,
            1,
        )
        .unwrap()
        .with_horizon(0),
    );
    let validator = Validator::new(chain, BlockRules::default(), hidden.clone(), 64);
    let first = builder.next_block(Some(vec![1])).commitment;
    let view = View {
        head: LocalHead {
            block_number: 1,
            preconfirmation_hash: Some(preconfirmation_hash(first.preconf())),
            timestamp: None,
        },
        ..Default::default()
    };
    let second = builder.next_block(Some(vec![2])).commitment;
    let check = |signed: &SignedCommitment| {
        validator.validate_commitment(signed, validator.recover_signer(signed), &view, now)
    };
    assert_eq!(
        check(&second),
        ValidationOutcome::Pending(PendingReason::ScheduleUnknown)
    );
    // A broken link is dropped without penalty while the schedule is unknown.
    let mut broken = second.commitment.clone();
    broken.preconf.parent_preconfirmation_hash = B256::repeat_byte(3);
    let broken = builder.sign_with(&preconfer_key(0), broken);
    assert!(matches!(
        check(&broken),
        ValidationOutcome::Reject {
            reason: RejectReason::BadParent,
            penalise: false
        }
    ));
    // Once the schedule is known, the same commitment is accepted.
    hidden.extend_horizon(100);
    assert!(matches!(check(&second), ValidationOutcome::Accept(_)));
}

#[test]
fn eop_pure_hand_off_is_accepted() {
    let f = fixture();
    let mut c = f.builder.next_unsigned(None);
    assert!(c.preconf.eop && c.preconf.raw_tx_list_hash == B256::ZERO);
    c.preconf.eop = true;
    assert!(matches!(
        f.check(&f.builder.sign_next(c)),
        ValidationOutcome::Accept(_)
    ));
}

#[test]
fn eop_hands_the_window_to_the_next_committer() {
    let mut f = fixture();
    let owner = secret_key_to_address(&preconfer_key(0));
    // Block 2 (slot 1) is the owner's EOP; record it as accepted.
    let eop = f.builder.next_block(None).commitment;
    let window_end = eop.preconf().submission_window_end;
    f.view.head = LocalHead {
        block_number: 2,
        preconfirmation_hash: Some(preconfirmation_hash(eop.preconf())),
        timestamp: Some(f.now - NOW_OFFSET + 1),
    };
    f.view.at.insert(2, (eop.clone(), owner));
    f.view.eops.insert(window_end, eop.clone());

    // Slot 2 is still in window 0, but the owner handed off: its commitment is evidence
    // against the signer; the relay that forwarded it may not have seen the EOP yet, so
    // it is not penalised.
    let after_eop = f.builder.sign_with(&preconfer_key(0), f.unsigned());
    match f.check(&after_eop) {
        ValidationOutcome::Reject {
            reason: RejectReason::CommitAfterEop { eop: first },
            penalise: false,
        } => assert_eq!(*first, eop),
        other => panic!("expected commit-after-EOP, got {other:?}"),
    }

    // The next committer (preconfer 1, window 1 ending at genesis + 8) takes over slot 2
    // with its own window end.
    let mut takeover = f.unsigned();
    takeover.preconf.submission_window_end = U256::from(f.now - NOW_OFFSET + 8);
    let takeover = f.builder.sign_with(&preconfer_key(1), takeover);
    let outcome = f.check(&takeover);
    assert!(
        matches!(outcome, ValidationOutcome::Accept(_)),
        "{outcome:?}"
    );
    // ...but not with the handed-off window's end: that window's elected signer is
    // preconfer 0.
    let wrong = f.builder.sign_with(&preconfer_key(1), f.unsigned());
    assert_eq!(label(&f.check(&wrong)), "wrong_signer");
    // Nor in window 2 (preconfer 2's), two windows ahead of its timestamp.
    let mut far = f.unsigned();
    far.preconf.submission_window_end = U256::from(f.now - NOW_OFFSET + 12);
    let far = f.builder.sign_with(&preconfer_key(2), far);
    assert_eq!(label(&f.check(&far)), "timestamp_outside_window");
}

#[test]
fn eop_with_txlist_is_accepted() {
    let f = fixture();
    let mut c = f.unsigned();
    c.preconf.eop = true;
    assert!(matches!(
        f.check(&f.builder.sign_next(c)),
        ValidationOutcome::Accept(_)
    ));
}

#[test]
fn raw_txlist_checks() {
    let limits = ChainLimits {
        max_txlist_bytes: 8,
        ..Default::default()
    };
    let ok = RawTxListGossip::new(vec![1, 2, 3]).unwrap();
    assert!(validate_raw_txlist(&ok.to_ssz(), &limits).is_ok());

    let mut wrong = ok.clone();
    wrong.raw_tx_list_hash = B256::repeat_byte(1);
    assert_eq!(
        validate_raw_txlist(&wrong.to_ssz(), &limits).unwrap_err(),
        RejectReason::TxListHashMismatch
    );
    let big = RawTxListGossip::new(vec![0; 9]).unwrap();
    let err = validate_raw_txlist(&big.to_ssz(), &limits).unwrap_err();
    assert_eq!(
        err.label(),
        "malformed",
        "over the encoded cap before decoding: {err:?}"
    );
    assert!(matches!(
        check_txlist(&big.raw_tx_list_hash, &big.txlist, &limits),
        Err(RejectReason::TxListTooLarge { len: 9, cap: 8 })
    ));
    assert_eq!(
        validate_raw_txlist(&[1, 2], &limits).unwrap_err().label(),
        "malformed"
    );
}
