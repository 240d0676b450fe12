//! Deterministic generator of `testdata/vectors.json`.
//!
//! Shared by the `gen-vectors` example (which prints the file) and the `vectors` test (which
//! fails when the checked-in file differs from what this code produces now). Everything is
//! derived from fixed seeds through keccak256, so the output is byte-for-byte stable.

use preconfirmation_types::reexports::secp256k1::SecretKey;
use preconfirmation_types::*;
use serde::Serialize;

/// Chain id the vectors are generated for.
pub const CHAIN_ID: u64 = TAIKO_MAINNET_CHAIN_ID;
/// Number of commitments in the parent chain.
pub const CHAIN_LEN: usize = 10;
/// First block number of the chain.
pub const FIRST_BLOCK: u64 = 1000;

#[derive(Serialize)]
pub struct Vectors {
    pub chain_id: u64,
    pub domain: String,
    pub topics: Topics,
    pub protocols: Protocols,
    pub commitments: Vec<CommitmentVector>,
    pub raw_txlists: Vec<RawTxListVector>,
    pub heads: Vec<HeadVector>,
    pub get_head_requests: Vec<GetHeadRequestVector>,
    pub get_commitments_by_number_requests: Vec<RequestVector>,
    pub get_commitments_by_number_responses: Vec<ResponseVector>,
    pub get_raw_txlist_responses: Vec<RawTxListResponseVector>,
    pub get_raw_txlists_requests: Vec<RawTxListsRequestVector>,
    pub get_raw_txlists_responses: Vec<RawTxListsResponseVector>,
    pub invalid: Vec<InvalidVector>,
    pub message_ids: Vec<MessageIdVector>,
}

#[derive(Serialize)]
pub struct Topics {
    pub commitments: String,
    pub raw_txlists: String,
}

#[derive(Serialize)]
pub struct Protocols {
    pub get_head: String,
    pub get_commitments_by_number: String,
    pub get_raw_txlist: String,
    /// This project's extension (PROTOCOL-EXT.md); the reference does not speak it.
    pub get_raw_txlists: String,
}

/// A `get_raw_txlists` request (PROTOCOL-EXT.md).
#[derive(Serialize)]
pub struct RawTxListsRequestVector {
    pub raw_tx_list_hashes: Vec<String>,
    pub ssz: String,
}

/// A `get_raw_txlists` response (PROTOCOL-EXT.md): entries as `GetRawTxListResponse`, an empty
/// `txlist` meaning "not found".
#[derive(Serialize)]
pub struct RawTxListsResponseVector {
    pub entries: Vec<RawTxListResponseVector>,
    pub ssz: String,
}

#[derive(Serialize)]
pub struct PreconfirmationJson {
    pub eop: bool,
    pub block_number: String,
    pub timestamp: String,
    pub gas_limit: String,
    pub coinbase: String,
    pub anchor_block_number: String,
    pub raw_tx_list_hash: String,
    pub parent_preconfirmation_hash: String,
    pub submission_window_end: String,
    pub prover_auth: String,
    pub proposal_id: String,
}

#[derive(Serialize)]
pub struct CommitmentVector {
    pub secret_key: String,
    pub signer: String,
    pub preconfirmation: PreconfirmationJson,
    pub slasher_address: String,
    pub ssz_preconfirmation: String,
    pub preconfirmation_hash: String,
    pub ssz_commitment: String,
    pub signing_hash: String,
    pub signature: String,
    pub ssz_signed_commitment: String,
}

#[derive(Serialize)]
pub struct RawTxListVector {
    pub txlist: String,
    pub raw_tx_list_hash: String,
    pub ssz_gossip: String,
}

#[derive(Serialize)]
pub struct HeadVector {
    pub block_number: String,
    pub submission_window_end: String,
    pub ssz: String,
}

/// A `get_head` request body a responder must accept (PROTOCOL.md "get_head request").
#[derive(Serialize)]
pub struct GetHeadRequestVector {
    /// `container` (the reference's `GetHeadRequest`, what requesters send) or `empty` (the
    /// draft's "no request body").
    pub form: String,
    /// The SSZ body.
    pub ssz: String,
    /// The whole frame on the stream: varint length prefix, then the body.
    pub frame: String,
    /// Whether a requester sends this form.
    pub sent_by_requesters: bool,
}

/// A gossip payload and its message id (§7), as the reference's gossip library computes it.
#[derive(Serialize)]
pub struct MessageIdVector {
    /// What the payload is.
    pub note: String,
    /// The gossip payload.
    pub payload: String,
    /// Whether the id took the valid-snappy branch.
    pub valid_snappy: bool,
    /// The 20-byte message id.
    pub message_id: String,
}

#[derive(Serialize)]
pub struct RequestVector {
    pub start_block_number: String,
    pub max_count: u32,
    pub ssz: String,
}

#[derive(Serialize)]
pub struct ResponseVector {
    pub commitments: Vec<String>,
    pub ssz: String,
}

#[derive(Serialize)]
pub struct RawTxListResponseVector {
    pub raw_tx_list_hash: String,
    pub txlist: String,
    pub ssz: String,
}

#[derive(Serialize)]
pub struct InvalidVector {
    pub container: String,
    pub ssz: String,
    pub error: String,
}

/// Lowercase `0x…` hex.
pub fn hex0x(bytes: impl AsRef<[u8]>) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// `len` deterministic pseudo-random bytes for `tag`: keccak256(tag ‖ counter) blocks.
pub fn det_bytes(tag: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u64;
    while out.len() < len {
        let mut preimage = tag.as_bytes().to_vec();
        preimage.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(reexports::alloy_primitives::keccak256(&preimage).as_slice());
        counter += 1;
    }
    out.truncate(len);
    out
}

/// The fixed secret key number `i` of the vectors.
pub fn vector_key(i: usize) -> SecretKey {
    let bytes = reexports::alloy_primitives::keccak256(format!("preconf-vector-key-{i}"));
    secret_key_from_bytes(bytes.0).expect("keccak output is a valid key with overwhelming odds")
}

/// The slasher address of the vectors.
pub fn slasher() -> Address {
    Address::from_slice(&det_bytes("preconf-vector-slasher", 20))
}

/// The chain of signed commitments of the vectors, in block order, with their secret keys.
pub fn commitment_chain() -> Vec<(SecretKey, SignedCommitment)> {
    let domain = B256::from(DEFAULT_DOMAIN_PRECONF);
    let mut parent = B256::from_slice(&det_bytes("preconf-vector-genesis-parent", 32));
    let mut out = Vec::with_capacity(CHAIN_LEN);
    for i in 0..CHAIN_LEN {
        // Three preconfers, each with a window of three blocks.
        let key_index = (i / 3) % 3;
        let key = vector_key(key_index);
        let number = FIRST_BLOCK + i as u64;
        let window = (i / 3) as u64;
        // Index 2: pure EOP hand-off (no tx list). Index 5: EOP with a tx list.
        let eop = i == 2 || i == 5;
        let raw_tx_list_hash = if i == 2 {
            B256::ZERO
        } else {
            raw_tx_list_hash(&det_bytes(
                &format!("preconf-vector-block-{number}"),
                64 + 13 * i,
            ))
        };
        // Index 9 carries a uint256 above 2^128.
        let proposal_id = if i == 9 {
            (U256::from(1u64) << 200) + U256::from(12_345u64)
        } else {
            U256::from(500 + window)
        };
        let preconf = Preconfirmation {
            eop,
            block_number: U256::from(number),
            timestamp: U256::from(1_760_000_000u64 + 2 * i as u64),
            gas_limit: U256::from(240_000_000u64),
            coinbase: secret_key_to_address(&key),
            anchor_block_number: U256::from(22_000_000u64 + window),
            raw_tx_list_hash,
            parent_preconfirmation_hash: parent,
            submission_window_end: U256::from(1_760_000_000u64 + 6 * (window + 1)),
            prover_auth: Address::from_slice(&det_bytes("preconf-vector-prover", 20)),
            proposal_id,
        };
        parent = preconfirmation_hash(&preconf);
        let signed = sign(
            &key,
            &domain,
            PreconfCommitment {
                preconf,
                slasher_address: slasher(),
            },
        );
        out.push((key, signed));
    }
    out
}

fn preconf_json(p: &Preconfirmation) -> PreconfirmationJson {
    PreconfirmationJson {
        eop: p.eop,
        block_number: p.block_number.to_string(),
        timestamp: p.timestamp.to_string(),
        gas_limit: p.gas_limit.to_string(),
        coinbase: hex0x(p.coinbase),
        anchor_block_number: p.anchor_block_number.to_string(),
        raw_tx_list_hash: hex0x(p.raw_tx_list_hash),
        parent_preconfirmation_hash: hex0x(p.parent_preconfirmation_hash),
        submission_window_end: p.submission_window_end.to_string(),
        prover_auth: hex0x(p.prover_auth),
        proposal_id: p.proposal_id.to_string(),
    }
}

fn commitment_vector(key: &SecretKey, signed: &SignedCommitment) -> CommitmentVector {
    let domain = B256::from(DEFAULT_DOMAIN_PRECONF);
    CommitmentVector {
        secret_key: hex0x(key.to_secret_bytes()),
        signer: hex0x(secret_key_to_address(key)),
        preconfirmation: preconf_json(signed.preconf()),
        slasher_address: hex0x(signed.commitment.slasher_address),
        ssz_preconfirmation: hex0x(signed.preconf().to_ssz()),
        preconfirmation_hash: hex0x(preconfirmation_hash(signed.preconf())),
        ssz_commitment: hex0x(signed.commitment.to_ssz()),
        signing_hash: hex0x(signing_hash(&domain, &signed.commitment)),
        signature: hex0x(signed.signature.0),
        ssz_signed_commitment: hex0x(signed.to_ssz()),
    }
}

/// The tx lists of the vectors: empty, 1 byte, 4 KiB, and 100 KiB + 7 bytes.
pub fn txlists() -> Vec<Vec<u8>> {
    vec![
        Vec::new(),
        vec![0xc0],
        det_bytes("preconf-vector-txlist-4k", 4096),
        det_bytes("preconf-vector-txlist-100k", 100 * 1024 + 7),
    ]
}

fn invalid_vectors(chain: &[(SecretKey, SignedCommitment)]) -> Vec<InvalidVector> {
    let signed = &chain[0].1;
    let good = signed.to_ssz();
    let mut out = Vec::new();
    let mut push = |container: &str, ssz: Vec<u8>, error: &str| {
        out.push(InvalidVector {
            container: container.to_string(),
            ssz: hex0x(ssz),
            error: error.to_string(),
        })
    };

    push(
        "SignedCommitment",
        good[..good.len() - 1].to_vec(),
        "truncated: 381 bytes, a SignedCommitment is exactly 382",
    );
    let mut extra = good.clone();
    extra.push(0);
    push(
        "SignedCommitment",
        extra,
        "extra byte: 383 bytes, a SignedCommitment is exactly 382",
    );

    let gossip = RawTxListGossip::new(vec![1, 2, 3, 4])
        .expect("tiny list")
        .to_ssz();
    let mut bad_offset = gossip.clone();
    bad_offset[32..36].copy_from_slice(&37u32.to_le_bytes());
    push(
        "RawTxListGossip",
        bad_offset,
        "bad offset: the txlist offset must be 36 (end of the fixed part), it is 37",
    );

    let response = GetCommitmentsByNumberResponse::new(vec![signed.clone()])
        .expect("one item")
        .to_ssz();
    let mut bad_offset = response.clone();
    bad_offset[..4].copy_from_slice(&8u32.to_le_bytes());
    push(
        "GetCommitmentsByNumberResponse",
        bad_offset,
        "bad offset: the commitments offset must be 4 (end of the fixed part), it is 8",
    );

    let mut over_cap = 4u32.to_le_bytes().to_vec();
    for _ in 0..=MAX_COMMITMENTS_PER_RESPONSE {
        over_cap.extend_from_slice(&good);
    }
    push(
        "GetCommitmentsByNumberResponse",
        over_cap,
        "list over cap: 257 commitments, MAX_COMMITMENTS_PER_RESPONSE is 256",
    );

    let mut ragged = response;
    ragged.pop();
    push(
        "GetCommitmentsByNumberResponse",
        ragged,
        "ragged list: 381 list bytes are not a whole number of 382-byte commitments",
    );

    // s' = n - s, v flipped: the malleated twin of a valid signature.
    let mut high_s = signed.clone();
    let order = U256::from_be_bytes(SECP256K1_ORDER);
    let s = U256::from_be_slice(high_s.signature.s());
    high_s.signature.0[32..64].copy_from_slice(&(order - s).to_be_bytes::<32>());
    high_s.signature.0[64] ^= 1;
    push(
        "SignedCommitment",
        high_s.to_ssz(),
        "high s: s is above half the curve order (malleable twin of commitments[0])",
    );

    let mut v27 = signed.clone();
    v27.signature.0[64] = 27;
    push(
        "SignedCommitment",
        v27.to_ssz(),
        "v = 27: v must be the recovery id 0 or 1",
    );

    let mut bad_bool = signed.preconf().to_ssz();
    bad_bool[0] = 2;
    push(
        "Preconfirmation",
        bad_bool,
        "invalid bool: eop byte is 2, SSZ booleans are 0 or 1",
    );

    let request = GetCommitmentsByNumberRequest {
        start_block_number: U256::from(FIRST_BLOCK),
        max_count: 16,
    }
    .to_ssz();
    push(
        "GetCommitmentsByNumberRequest",
        request[..35].to_vec(),
        "truncated: 35 bytes, a GetCommitmentsByNumberRequest is exactly 36",
    );

    let mut wrong_hash = RawTxListGossip::new(vec![9; 16]).expect("tiny list");
    wrong_hash.raw_tx_list_hash = raw_tx_list_hash(&[8; 16]);
    push(
        "RawTxListGossip",
        wrong_hash.to_ssz(),
        "hash mismatch: rawTxListHash is not keccak256(txlist) (valid SSZ, rejected by §3.4)",
    );
    out
}

/// The secp256k1 group order, big-endian.
pub const SECP256K1_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// Builds every vector.
pub fn generate() -> Vectors {
    let chain = commitment_chain();
    let commitments = chain.iter().map(|(k, s)| commitment_vector(k, s)).collect();

    let raw_txlists = txlists()
        .into_iter()
        .map(|txlist| {
            let gossip = RawTxListGossip::new(txlist.clone()).expect("under cap");
            RawTxListVector {
                txlist: hex0x(&txlist),
                raw_tx_list_hash: hex0x(gossip.raw_tx_list_hash),
                ssz_gossip: hex0x(gossip.to_ssz()),
            }
        })
        .collect();

    let heads = [&chain[CHAIN_LEN - 1].1, &chain[0].1]
        .iter()
        .map(|s| {
            let head = PreconfHead {
                block_number: s.preconf().block_number,
                submission_window_end: s.preconf().submission_window_end,
            };
            HeadVector {
                block_number: head.block_number.to_string(),
                submission_window_end: head.submission_window_end.to_string(),
                ssz: hex0x(head.to_ssz()),
            }
        })
        .collect();

    let get_head_requests = [("container", true), ("empty", false)]
        .into_iter()
        .map(|(form, sent_by_requesters)| {
            let ssz = if sent_by_requesters {
                GetHeadRequest::default().to_ssz()
            } else {
                Vec::new()
            };
            let frame = [vec![ssz.len() as u8], ssz.clone()].concat();
            GetHeadRequestVector {
                form: form.into(),
                ssz: hex0x(&ssz),
                frame: hex0x(frame),
                sent_by_requesters,
            }
        })
        .collect();

    let requests = [
        (U256::from(FIRST_BLOCK), 16u32),
        (U256::ZERO, MAX_COMMITMENTS_PER_RESPONSE as u32),
        (U256::from(1u64) << 140, 1),
    ]
    .into_iter()
    .map(|(start_block_number, max_count)| RequestVector {
        start_block_number: start_block_number.to_string(),
        max_count,
        ssz: hex0x(
            GetCommitmentsByNumberRequest {
                start_block_number,
                max_count,
            }
            .to_ssz(),
        ),
    })
    .collect();

    let responses = [0usize, 1, 3]
        .into_iter()
        .map(|n| {
            let items: Vec<SignedCommitment> =
                chain.iter().take(n).map(|(_, s)| s.clone()).collect();
            ResponseVector {
                commitments: items.iter().map(|s| hex0x(s.to_ssz())).collect(),
                ssz: hex0x(
                    GetCommitmentsByNumberResponse::new(items)
                        .expect("under cap")
                        .to_ssz(),
                ),
            }
        })
        .collect();

    let raw_responses = txlists()
        .into_iter()
        .take(3)
        .map(|txlist| {
            let response = GetRawTxListResponse::new(txlist.clone()).expect("under cap");
            RawTxListResponseVector {
                raw_tx_list_hash: hex0x(response.raw_tx_list_hash),
                txlist: hex0x(&txlist),
                ssz: hex0x(response.to_ssz()),
            }
        })
        .collect();

    Vectors {
        chain_id: CHAIN_ID,
        domain: hex0x(DEFAULT_DOMAIN_PRECONF),
        topics: Topics {
            commitments: commitments_topic(CHAIN_ID),
            raw_txlists: raw_txlists_topic(CHAIN_ID),
        },
        protocols: Protocols {
            get_head: ReqRespKind::GetHead.protocol_id(CHAIN_ID),
            get_commitments_by_number: ReqRespKind::GetCommitmentsByNumber.protocol_id(CHAIN_ID),
            get_raw_txlist: ReqRespKind::GetRawTxList.protocol_id(CHAIN_ID),
            get_raw_txlists: ReqRespKind::GetRawTxLists.protocol_id(CHAIN_ID),
        },
        commitments,
        raw_txlists,
        heads,
        get_head_requests,
        get_commitments_by_number_requests: requests,
        get_commitments_by_number_responses: responses,
        get_raw_txlist_responses: raw_responses,
        get_raw_txlists_requests: batched_requests(),
        get_raw_txlists_responses: batched_responses(),
        invalid: invalid_vectors(&chain),
        message_ids: message_id_vectors(&chain),
    }
}

fn batched_requests() -> Vec<RawTxListsRequestVector> {
    let hashes: Vec<B256> = txlists().iter().map(|t| raw_tx_list_hash(t)).collect();
    [0usize, 1, 3]
        .into_iter()
        .map(|n| {
            let wanted: Vec<B256> = hashes.iter().take(n).copied().collect();
            RawTxListsRequestVector {
                raw_tx_list_hashes: wanted.iter().map(hex0x).collect(),
                ssz: hex0x(
                    GetRawTxListsRequest::new(wanted)
                        .expect("under cap")
                        .to_ssz(),
                ),
            }
        })
        .collect()
}

fn batched_responses() -> Vec<RawTxListsResponseVector> {
    let found: Vec<GetRawTxListResponse> = txlists()
        .into_iter()
        .take(2)
        .map(|t| GetRawTxListResponse::new(t).expect("under cap"))
        .collect();
    let not_found = GetRawTxListResponse {
        raw_tx_list_hash: B256::repeat_byte(0xee),
        ..Default::default()
    };
    [Vec::new(), found.clone(), vec![found[1].clone(), not_found]]
        .into_iter()
        .map(|entries| RawTxListsResponseVector {
            entries: entries
                .iter()
                .map(|e| RawTxListResponseVector {
                    raw_tx_list_hash: hex0x(e.raw_tx_list_hash),
                    txlist: hex0x(&e.txlist[..]),
                    ssz: hex0x(e.to_ssz()),
                })
                .collect(),
            ssz: hex0x(
                GetRawTxListsResponse::new(entries)
                    .expect("under cap")
                    .to_ssz(),
            ),
        })
        .collect()
}

/// Payloads for the message id (§7): raw SSZ (the usual case), payloads that are valid snappy,
/// and a snappy preamble declaring more than the gossip cap.
fn message_id_vectors(chain: &[(SecretKey, SignedCommitment)]) -> Vec<MessageIdVector> {
    let literal_xyz = vec![3u8, 0x08, b'x', b'y', b'z'];
    let mut huge_declared = vec![0xfe, 0xff, 0xff, 0xff, 0x0f];
    huge_declared.extend_from_slice(&[0x08, b'x', b'y', b'z']);
    let cases: Vec<(&str, Vec<u8>, bool)> = vec![
        ("SignedCommitment SSZ (raw)", chain[0].1.to_ssz(), false),
        (
            "RawTxListGossip SSZ (raw)",
            RawTxListGossip::new(txlists()[1].clone())
                .expect("under cap")
                .to_ssz(),
            false,
        ),
        ("one zero byte: snappy of the empty string", vec![0], true),
        ("snappy literal 'xyz'", literal_xyz, true),
        (
            "snappy preamble declaring 4 GiB: above the 10 MiB cap, hashed raw",
            huge_declared,
            false,
        ),
    ];
    cases
        .into_iter()
        .map(|(note, payload, valid_snappy)| MessageIdVector {
            note: note.into(),
            message_id: hex0x(gossip_message_id(&payload)),
            payload: hex0x(&payload),
            valid_snappy,
        })
        .collect()
}

/// The file's text: pretty JSON with a trailing newline.
pub fn generate_json() -> String {
    let mut text = serde_json::to_string_pretty(&generate()).expect("plain data serialises");
    text.push('\n');
    text
}
