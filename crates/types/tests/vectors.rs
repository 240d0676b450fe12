//! `testdata/vectors.json`: the checked-in file must equal what the generator produces now, and
//! every vector in it must check out when read back the way another implementation would read it
//! (from the JSON, not from the generator).

mod common;

use common::vector_gen;
use preconfirmation_types::*;
use serde_json::Value;
use std::path::PathBuf;
use std::str::FromStr;

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/vectors.json")
}

fn load() -> Value {
    let text = std::fs::read_to_string(vectors_path()).expect("testdata/vectors.json exists");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    assert!(s.starts_with("0x"), "hex must start with 0x: {s}");
    assert_eq!(s, s.to_lowercase(), "hex must be lowercase");
    hex::decode(&s[2..]).expect("valid hex")
}

fn u256(v: &Value) -> U256 {
    U256::from_str(v.as_str().expect("decimal string")).expect("decimal uint256")
}

fn b256(v: &Value) -> B256 {
    B256::from_slice(&bytes(v))
}

fn address(v: &Value) -> Address {
    Address::from_slice(&bytes(v))
}

fn items<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is an array"))
}

#[test]
fn checked_in_vectors_match_the_generator() {
    let on_disk = std::fs::read_to_string(vectors_path()).expect("testdata/vectors.json exists");
    let generated = vector_gen::generate_json();
    assert!(
        on_disk == generated,
        "testdata/vectors.json is stale: run \
         `cargo run -p preconfirmation-types --example gen-vectors > testdata/vectors.json`"
    );
}

#[test]
fn ids_and_domain_vectors() {
    let v = load();
    let chain_id = v["chain_id"].as_u64().unwrap();
    assert_eq!(chain_id, 167000);
    assert_eq!(bytes(&v["domain"]), DEFAULT_DOMAIN_PRECONF.to_vec());
    assert_eq!(
        v["topics"]["commitments"],
        "/taiko/167000/0/preconfirmationCommitments"
    );
    assert_eq!(
        v["topics"]["raw_txlists"],
        commitments_topic(chain_id).replace("preconfirmationCommitments", "rawTxLists")
    );
    assert_eq!(
        v["protocols"]["get_head"],
        ReqRespKind::GetHead.protocol_id(chain_id)
    );
    assert_eq!(
        v["protocols"]["get_commitments_by_number"],
        "/taiko/167000/preconf/1/get_commitments_by_number"
    );
    assert_eq!(
        v["protocols"]["get_raw_txlist"],
        "/taiko/167000/preconf/1/get_raw_txlist"
    );
}

#[test]
fn commitment_vectors_decode_hash_sign_and_chain() {
    let v = load();
    let domain = b256(&v["domain"]);
    let limits = ChainLimits::default();
    let commitments = items(&v, "commitments");
    assert!(commitments.len() >= 8);

    let mut previous: Option<(U256, B256)> = None;
    let (mut pure_eop, mut eop_with_list, mut above_2_128) = (false, false, false);
    for c in commitments {
        let p = &c["preconfirmation"];
        let expected = Preconfirmation {
            eop: p["eop"].as_bool().unwrap(),
            block_number: u256(&p["block_number"]),
            timestamp: u256(&p["timestamp"]),
            gas_limit: u256(&p["gas_limit"]),
            coinbase: address(&p["coinbase"]),
            anchor_block_number: u256(&p["anchor_block_number"]),
            raw_tx_list_hash: b256(&p["raw_tx_list_hash"]),
            parent_preconfirmation_hash: b256(&p["parent_preconfirmation_hash"]),
            submission_window_end: u256(&p["submission_window_end"]),
            prover_auth: address(&p["prover_auth"]),
            proposal_id: u256(&p["proposal_id"]),
        };
        // SSZ of each layer, both directions.
        assert_eq!(expected.to_ssz(), bytes(&c["ssz_preconfirmation"]));
        assert_eq!(
            Preconfirmation::decode_capped(&bytes(&c["ssz_preconfirmation"]), &limits).unwrap(),
            expected
        );
        assert_eq!(
            preconfirmation_hash(&expected),
            b256(&c["preconfirmation_hash"])
        );
        let commitment = PreconfCommitment {
            preconf: expected.clone(),
            slasher_address: address(&c["slasher_address"]),
        };
        assert_eq!(commitment.to_ssz(), bytes(&c["ssz_commitment"]));
        assert_eq!(signing_hash(&domain, &commitment), b256(&c["signing_hash"]));

        let signed =
            SignedCommitment::decode_capped(&bytes(&c["ssz_signed_commitment"]), &limits).unwrap();
        assert_eq!(signed.commitment, commitment);
        assert_eq!(signed.signature.0.to_vec(), bytes(&c["signature"]));
        assert_eq!(signed.to_ssz().len(), SIGNED_COMMITMENT_SSZ_LEN);
        assert_eq!(
            recover_signer(&domain, &signed).unwrap(),
            address(&c["signer"])
        );

        // The secret key signs to the same bytes (RFC 6979 is deterministic).
        let key = secret_key_from_bytes(bytes(&c["secret_key"]).try_into().unwrap()).unwrap();
        assert_eq!(secret_key_to_address(&key), address(&c["signer"]));
        assert_eq!(sign(&key, &domain, commitment).signature, signed.signature);

        if let Some((number, hash)) = previous {
            assert_eq!(
                expected.block_number,
                number + U256::from(1u64),
                "consecutive numbers"
            );
            assert_eq!(expected.parent_preconfirmation_hash, hash, "parent link");
        }
        previous = Some((expected.block_number, preconfirmation_hash(&expected)));
        pure_eop |= expected.eop && expected.raw_tx_list_hash == B256::ZERO;
        eop_with_list |= expected.eop && expected.raw_tx_list_hash != B256::ZERO;
        above_2_128 |= [
            expected.block_number,
            expected.timestamp,
            expected.gas_limit,
            expected.anchor_block_number,
            expected.submission_window_end,
            expected.proposal_id,
        ]
        .iter()
        .any(|x| *x > U256::from(1u64) << 128);
    }
    assert!(pure_eop, "one EOP with a zero tx-list hash");
    assert!(eop_with_list, "one EOP with a tx list");
    assert!(above_2_128, "one uint256 above 2^128");
}

#[test]
fn raw_txlist_vectors_hash_and_decode() {
    let v = load();
    let limits = ChainLimits::default();
    let lists = items(&v, "raw_txlists");
    let sizes: Vec<usize> = lists.iter().map(|l| bytes(&l["txlist"]).len()).collect();
    assert!(sizes.contains(&0) && sizes.contains(&1));
    assert!(
        sizes.iter().any(|&s| (1024..100 * 1024).contains(&s)),
        "a few KiB"
    );
    assert!(
        sizes.iter().any(|&s| s >= 100 * 1024),
        "one of 100 KiB or more"
    );
    for l in lists {
        let txlist = bytes(&l["txlist"]);
        assert_eq!(raw_tx_list_hash(&txlist), b256(&l["raw_tx_list_hash"]));
        let gossip = RawTxListGossip::decode_capped(&bytes(&l["ssz_gossip"]), &limits).unwrap();
        assert_eq!(gossip.raw_tx_list_hash, b256(&l["raw_tx_list_hash"]));
        assert_eq!(gossip.txlist.to_vec(), txlist);
        assert_eq!(gossip.to_ssz(), bytes(&l["ssz_gossip"]));
    }
}

#[test]
fn head_and_request_vectors_round_trip() {
    let v = load();
    let limits = ChainLimits::default();
    for h in items(&v, "heads") {
        let head = PreconfHead::decode_capped(&bytes(&h["ssz"]), &limits).unwrap();
        assert_eq!(head.block_number, u256(&h["block_number"]));
        assert_eq!(
            head.submission_window_end,
            u256(&h["submission_window_end"])
        );
        assert_eq!(head.to_ssz().len(), PRECONF_HEAD_SSZ_LEN);
    }
    for r in items(&v, "get_commitments_by_number_requests") {
        let req = GetCommitmentsByNumberRequest::decode_capped(&bytes(&r["ssz"]), &limits).unwrap();
        assert_eq!(req.start_block_number, u256(&r["start_block_number"]));
        assert_eq!(u64::from(req.max_count), r["max_count"].as_u64().unwrap());
        assert_eq!(req.to_ssz(), bytes(&r["ssz"]));
    }
}

#[test]
fn get_head_request_vectors_decode_in_both_forms() {
    let v = load();
    let forms = items(&v, "get_head_requests");
    assert_eq!(forms.len(), 2);
    for r in forms {
        let ssz = bytes(&r["ssz"]);
        let frame = bytes(&r["frame"]);
        assert_eq!(frame, [vec![ssz.len() as u8], ssz.clone()].concat());
        assert_eq!(
            GetHeadRequest::decode_either(&ssz).unwrap(),
            GetHeadRequest::default()
        );
        let sent = r["sent_by_requesters"].as_bool().unwrap();
        assert_eq!(sent, r["form"] == "container");
        if sent {
            assert_eq!(ssz, vec![4, 0, 0, 0]);
            assert_eq!(GetHeadRequest::default().to_ssz(), ssz);
        } else {
            assert!(ssz.is_empty());
        }
    }
}

#[test]
fn batched_txlist_vectors_round_trip() {
    let v = load();
    let limits = ChainLimits::default();
    assert_eq!(
        v["protocols"]["get_raw_txlists"],
        ReqRespKind::GetRawTxLists.protocol_id(v["chain_id"].as_u64().unwrap())
    );
    for r in items(&v, "get_raw_txlists_requests") {
        let ssz = bytes(&r["ssz"]);
        let req = GetRawTxListsRequest::decode_capped(&ssz, &limits).unwrap();
        let hashes: Vec<B256> = items(r, "raw_tx_list_hashes").iter().map(b256).collect();
        assert_eq!(req.raw_tx_list_hashes.to_vec(), hashes);
        assert_eq!(req.to_ssz(), ssz);
        assert_eq!(ssz.len(), 4 + 32 * hashes.len());
    }
    let responses = items(&v, "get_raw_txlists_responses");
    let mut not_found = 0;
    for r in responses {
        let ssz = bytes(&r["ssz"]);
        let response = GetRawTxListsResponse::decode_capped(&ssz, &limits).unwrap();
        let entries = items(r, "entries");
        assert_eq!(response.txlists.len(), entries.len());
        for (got, want) in response.txlists.iter().zip(entries) {
            assert_eq!(got.raw_tx_list_hash, b256(&want["raw_tx_list_hash"]));
            assert_eq!(got.txlist.to_vec(), bytes(&want["txlist"]));
            assert_eq!(got.to_ssz(), bytes(&want["ssz"]));
            if got.txlist.is_empty() && raw_tx_list_hash(&got.txlist) != got.raw_tx_list_hash {
                not_found += 1;
            } else {
                assert_eq!(raw_tx_list_hash(&got.txlist), got.raw_tx_list_hash);
            }
        }
        assert_eq!(response.to_ssz(), ssz);
        assert_eq!(
            ssz.len(),
            GetRawTxListsResponse::encoded_len_with(
                response.txlists.iter().map(|t| t.txlist.len())
            )
        );
    }
    assert_eq!(not_found, 1, "one not-found entry");
}

#[test]
fn message_id_vectors_match() {
    let v = load();
    let cases = items(&v, "message_ids");
    assert!(cases.iter().any(|c| c["valid_snappy"] == true));
    assert!(cases.iter().any(|c| c["valid_snappy"] == false));
    for c in cases {
        let payload = bytes(&c["payload"]);
        let id = gossip_message_id(&payload);
        assert_eq!(id.to_vec(), bytes(&c["message_id"]), "{}", c["note"]);
        // The raw branch is checkable without a snappy decoder.
        use sha2::{Digest, Sha256};
        let raw = Sha256::new()
            .chain_update(MESSAGE_DOMAIN_INVALID_SNAPPY)
            .chain_update(&payload)
            .finalize();
        let is_raw = id[..] == raw[..MESSAGE_ID_LEN];
        assert_eq!(is_raw, c["valid_snappy"] == false, "{}", c["note"]);
    }
}

#[test]
fn response_vectors_round_trip() {
    let v = load();
    let limits = ChainLimits::default();
    let responses = items(&v, "get_commitments_by_number_responses");
    let counts: Vec<usize> = responses
        .iter()
        .map(|r| items(r, "commitments").len())
        .collect();
    assert!(counts.contains(&0) && counts.contains(&1) && counts.contains(&3));
    for r in responses {
        let response =
            GetCommitmentsByNumberResponse::decode_capped(&bytes(&r["ssz"]), &limits).unwrap();
        let expected: Vec<Vec<u8>> = items(r, "commitments").iter().map(bytes).collect();
        let got: Vec<Vec<u8>> = response.commitments.iter().map(|c| c.to_ssz()).collect();
        assert_eq!(got, expected);
        assert_eq!(response.to_ssz(), bytes(&r["ssz"]));
    }
    for r in items(&v, "get_raw_txlist_responses") {
        let response = GetRawTxListResponse::decode_capped(&bytes(&r["ssz"]), &limits).unwrap();
        assert_eq!(response.raw_tx_list_hash, b256(&r["raw_tx_list_hash"]));
        assert_eq!(response.txlist.to_vec(), bytes(&r["txlist"]));
        assert_eq!(
            raw_tx_list_hash(&response.txlist),
            response.raw_tx_list_hash
        );
    }
}

/// What an invalid vector fails with, as another implementation would check it: decode under the
/// default caps, then recover the signer (commitments) or check the hash (tx lists).
fn reject(container: &str, ssz: &[u8]) -> Result<(), TypesError> {
    let limits = ChainLimits::default();
    let domain = B256::from(DEFAULT_DOMAIN_PRECONF);
    match container {
        "SignedCommitment" => {
            let signed = SignedCommitment::decode_capped(ssz, &limits)?;
            recover_signer(&domain, &signed).map(drop)
        }
        "Preconfirmation" => Preconfirmation::decode_capped(ssz, &limits).map(drop),
        "RawTxListGossip" => {
            let gossip = RawTxListGossip::decode_capped(ssz, &limits)?;
            if raw_tx_list_hash(&gossip.txlist) != gossip.raw_tx_list_hash {
                // Stand-in for the SDK's hash-mismatch rejection (§3.4).
                return Err(TypesError::Unrecoverable);
            }
            Ok(())
        }
        "GetCommitmentsByNumberRequest" => {
            GetCommitmentsByNumberRequest::decode_capped(ssz, &limits).map(drop)
        }
        "GetCommitmentsByNumberResponse" => {
            GetCommitmentsByNumberResponse::decode_capped(ssz, &limits).map(drop)
        }
        other => panic!("unknown container {other}"),
    }
}

#[test]
fn invalid_vectors_are_rejected_for_their_stated_reason() {
    let v = load();
    let invalid = items(&v, "invalid");
    assert!(invalid.len() >= 6);
    let mut seen = std::collections::BTreeSet::new();
    for entry in invalid {
        let container = entry["container"].as_str().unwrap();
        let error = entry["error"].as_str().unwrap();
        let kind = error.split(':').next().unwrap();
        seen.insert(kind.to_string());
        let result = reject(container, &bytes(&entry["ssz"]));
        let ok = matches!(
            (kind, &result),
            (
                "truncated" | "extra byte" | "bad offset" | "invalid bool" | "ragged list",
                Err(TypesError::Ssz { .. }),
            ) | ("extra byte", Err(TypesError::OverCap { .. }))
                | (
                    "list over cap",
                    Err(TypesError::OverCap { .. } | TypesError::ListOverCap { .. })
                )
                | ("high s", Err(TypesError::HighS))
                | ("v = 27", Err(TypesError::InvalidRecoveryId(27)))
                | ("hash mismatch", Err(TypesError::Unrecoverable))
        );
        assert!(ok, "{container} `{error}` gave {result:?}");
    }
    for required in [
        "truncated",
        "extra byte",
        "bad offset",
        "list over cap",
        "high s",
        "v = 27",
    ] {
        assert!(
            seen.contains(required),
            "missing invalid vector: {required}"
        );
    }
}
