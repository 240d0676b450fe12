//! The SSZ containers of §3, §10.2 and §11.2, field order exactly as the spec lists it.
//!
//! `uint256` is [`U256`], `Bytes20` is [`Address`], `Bytes32` is [`B256`], `Bytes65` is
//! [`Bytes65`]. Variable lists carry the spec maximum in their type; runtime caps are checked on
//! the byte length before decoding (see [`crate::ChainLimits`] and [`crate::WireMessage`]).

use alloy_primitives::{keccak256, Address, B256, U256};
use ssz::{Decode, DecodeError, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::{typenum, VariableList};

use crate::constants::SIGNATURE_LEN;

/// Type-level maximum of a tx list, [`crate::MAX_TXLIST_BYTES`] (§3).
pub type MaxTxListBytes = typenum::U2097152;
/// Type-level maximum of hashes per `get_raw_txlists` request,
/// [`crate::MAX_TXLISTS_PER_REQUEST`] (PROTOCOL-EXT.md).
pub type MaxTxListsPerRequest = typenum::U64;
/// Type-level maximum of commitments per response, [`crate::MAX_COMMITMENTS_PER_RESPONSE`] (§10.2).
pub type MaxCommitmentsPerResponse = typenum::U256;

/// A tx list: opaque compressed RLP bytes, at most [`crate::MAX_TXLIST_BYTES`] (§3).
pub type TxList = VariableList<u8, MaxTxListBytes>;

/// A 65-byte secp256k1 signature `r ‖ s ‖ v` (§4.1), `v` the recovery id 0 or 1.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bytes65(pub [u8; SIGNATURE_LEN]);

impl Bytes65 {
    /// The `r` half of the signature.
    pub fn r(&self) -> &[u8] {
        &self.0[..32]
    }
    /// The `s` half of the signature.
    pub fn s(&self) -> &[u8] {
        &self.0[32..64]
    }
    /// The recovery byte `v`.
    pub fn v(&self) -> u8 {
        self.0[64]
    }
}

impl Default for Bytes65 {
    fn default() -> Self {
        Self([0; SIGNATURE_LEN])
    }
}

impl std::fmt::Debug for Bytes65 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl From<[u8; SIGNATURE_LEN]> for Bytes65 {
    fn from(value: [u8; SIGNATURE_LEN]) -> Self {
        Self(value)
    }
}

impl Encode for Bytes65 {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        SIGNATURE_LEN
    }
    fn ssz_append(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.0);
    }
    fn ssz_bytes_len(&self) -> usize {
        SIGNATURE_LEN
    }
}

impl Decode for Bytes65 {
    fn is_ssz_fixed_len() -> bool {
        true
    }
    fn ssz_fixed_len() -> usize {
        SIGNATURE_LEN
    }
    fn from_ssz_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let array: [u8; SIGNATURE_LEN] =
            bytes
                .try_into()
                .map_err(|_| DecodeError::InvalidByteLength {
                    len: bytes.len(),
                    expected: SIGNATURE_LEN,
                })?;
        Ok(Self(array))
    }
}

/// The block a preconfer commits to (§3). Its SSZ hash links children to parents (§4.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct Preconfirmation {
    /// End of preconfirmation: the committer hands off its window (§5).
    pub eop: bool,
    /// L2 block number.
    pub block_number: U256,
    /// L2 block timestamp.
    pub timestamp: U256,
    /// L2 block gas limit.
    pub gas_limit: U256,
    /// Fee recipient of the block.
    pub coinbase: Address,
    /// L1 anchor block number.
    pub anchor_block_number: U256,
    /// `keccak256(txlist)` of the block's raw tx list; zero for a pure EOP hand-off.
    pub raw_tx_list_hash: B256,
    /// `keccak256(SSZ(parent Preconfirmation))`.
    pub parent_preconfirmation_hash: B256,
    /// End of the submission window of the slot this commitment belongs to.
    pub submission_window_end: U256,
    /// Prover authorisation address.
    pub prover_auth: Address,
    /// Proposal id.
    pub proposal_id: U256,
}

/// A preconfirmation bound to the chain's slasher (§3); the signing preimage (§4.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct PreconfCommitment {
    /// The committed block.
    pub preconf: Preconfirmation,
    /// Must equal the chain's `PRECONFER_SLASHER_ADDRESS` (§4.2).
    pub slasher_address: Address,
}

/// A commitment with the preconfer's signature (§3); the payload of the commitments topic.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct SignedCommitment {
    /// The signed commitment.
    pub commitment: PreconfCommitment,
    /// `r ‖ s ‖ v` over [`crate::signing_hash`].
    pub signature: Bytes65,
}

/// `keccak256(txlist)` over exactly the bytes carried (§3.4): the `rawTxListHash` of
/// [`RawTxListGossip`] and [`GetRawTxListResponse`].
pub fn raw_tx_list_hash(txlist: &[u8]) -> B256 {
    keccak256(txlist)
}

/// A block's raw tx list as gossiped on the raw tx lists topic (§3.4, §11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct RawTxListGossip {
    /// `keccak256(txlist)`.
    pub raw_tx_list_hash: B256,
    /// The tx list bytes.
    pub txlist: TxList,
}

/// A node's preconfirmation head, the `get_head` response (§10.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct PreconfHead {
    /// Highest preconfirmed block number.
    pub block_number: U256,
    /// Submission window end of that block's commitment.
    pub submission_window_end: U256,
}

/// The `get_head` request as the deployed reference encodes it (PROTOCOL.md "get_head
/// request"): a container with one empty list, SSZ `04 00 00 00`. The draft's "no request
/// body" (an empty frame) is accepted too; see [`GetHeadRequest::decode_either`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct GetHeadRequest {
    /// Reserved for future fields; always empty (`List[uint8, 0]`).
    pub reserved: VariableList<u8, typenum::U0>,
}

impl GetHeadRequest {
    /// Decodes a `get_head` request body in either accepted form: empty (the draft) or the
    /// 4-byte container (the reference). Anything else is an error.
    pub fn decode_either(body: &[u8]) -> Result<Self, DecodeError> {
        if body.is_empty() {
            return Ok(Self::default());
        }
        Self::from_ssz_bytes(body)
    }
}

/// Request for up to `max_count` commitments from `start_block_number` upwards (§10.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct GetCommitmentsByNumberRequest {
    /// First block number wanted.
    pub start_block_number: U256,
    /// How many, at most; responders clamp to their cap.
    pub max_count: u32,
}

/// Consecutive signed commitments, the `get_commitments_by_number` response (§10.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct GetCommitmentsByNumberResponse {
    /// The commitments, ascending by block number.
    pub commitments: VariableList<SignedCommitment, MaxCommitmentsPerResponse>,
}

/// Request for a raw tx list by hash (§11.2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Encode, Decode)]
pub struct GetRawTxListRequest {
    /// `keccak256(txlist)` of the wanted list.
    pub raw_tx_list_hash: B256,
}

/// A raw tx list, the `get_raw_txlist` response (§11.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct GetRawTxListResponse {
    /// `keccak256(txlist)`.
    pub raw_tx_list_hash: B256,
    /// The tx list bytes; empty when the responder does not have it.
    pub txlist: TxList,
}

/// Request for up to [`crate::MAX_TXLISTS_PER_REQUEST`] raw tx lists by hash (PROTOCOL-EXT.md,
/// this project's extension; the reference asks one hash at a time with §11.2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct GetRawTxListsRequest {
    /// `keccak256(txlist)` of each wanted list.
    pub raw_tx_list_hashes: VariableList<B256, MaxTxListsPerRequest>,
}

/// The `get_raw_txlists` response (PROTOCOL-EXT.md): one entry per requested hash, in request
/// order, each as §11.2 answers it (a hash the responder does not have is echoed with an empty
/// `txlist`). A responder stops before the body would exceed
/// [`crate::MAX_RAW_TXLISTS_RESPONSE_BYTES`], so a response may answer only a prefix of the
/// request; the requester asks again for the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct GetRawTxListsResponse {
    /// The answers, a prefix of the request in its order.
    pub txlists: VariableList<GetRawTxListResponse, MaxTxListsPerRequest>,
}

impl GetRawTxListsRequest {
    /// Wraps `hashes`; fails above [`crate::MAX_TXLISTS_PER_REQUEST`].
    pub fn new(hashes: Vec<B256>) -> crate::Result<Self> {
        Ok(Self {
            raw_tx_list_hashes: capped_list(hashes, "GetRawTxListsRequest")?,
        })
    }
}

impl GetRawTxListsResponse {
    /// Wraps `txlists`; fails above [`crate::MAX_TXLISTS_PER_REQUEST`] entries (the byte cap
    /// is the responder's to keep, see [`GetRawTxListsResponse::encoded_len_with`]).
    pub fn new(txlists: Vec<GetRawTxListResponse>) -> crate::Result<Self> {
        Ok(Self {
            txlists: capped_list(txlists, "GetRawTxListsResponse")?,
        })
    }

    /// SSZ length of a response holding entries whose tx lists are `txlist_lens` bytes long:
    /// the list offset, one offset per entry, and each entry's hash, offset and bytes.
    pub fn encoded_len_with(txlist_lens: impl IntoIterator<Item = usize>) -> usize {
        txlist_lens
            .into_iter()
            .fold(crate::SSZ_OFFSET_LEN, |acc, len| {
                acc + crate::SSZ_OFFSET_LEN + crate::RAW_TXLIST_FIXED_PART_LEN + len
            })
    }
}

impl SignedCommitment {
    /// The committed preconfirmation.
    pub fn preconf(&self) -> &Preconfirmation {
        &self.commitment.preconf
    }
}

impl RawTxListGossip {
    /// Builds a gossip message for `txlist`, computing its hash (§3.4).
    ///
    /// Fails with [`crate::TypesError::ListOverCap`] above [`crate::MAX_TXLIST_BYTES`].
    pub fn new(txlist: Vec<u8>) -> crate::Result<Self> {
        let raw_tx_list_hash = raw_tx_list_hash(&txlist);
        Ok(Self {
            raw_tx_list_hash,
            txlist: capped_list(txlist, "RawTxListGossip")?,
        })
    }
}

impl GetRawTxListResponse {
    /// Builds a response carrying `txlist`, computing its hash (§11.2).
    pub fn new(txlist: Vec<u8>) -> crate::Result<Self> {
        Self::from_verified(raw_tx_list_hash(&txlist), txlist)
    }

    /// Builds a response carrying `txlist` under `raw_tx_list_hash` without hashing it: for a
    /// responder serving bytes it verified against that hash when it stored them (§11.2), so
    /// a 2 MiB list is not re-hashed on every request. Fails above the tx-list cap.
    pub fn from_verified(raw_tx_list_hash: B256, txlist: Vec<u8>) -> crate::Result<Self> {
        Ok(Self {
            raw_tx_list_hash,
            txlist: capped_list(txlist, "GetRawTxListResponse")?,
        })
    }
}

impl GetCommitmentsByNumberResponse {
    /// Wraps `commitments`; fails above [`crate::MAX_COMMITMENTS_PER_RESPONSE`].
    pub fn new(commitments: Vec<SignedCommitment>) -> crate::Result<Self> {
        Ok(Self {
            commitments: capped_list(commitments, "GetCommitmentsByNumberResponse")?,
        })
    }
}

/// `items` as `container`'s list field; [`crate::TypesError::ListOverCap`] above the list's
/// type-level maximum `N` (each the spec constant, see `type_level_maxima_match_constants`).
fn capped_list<T, N: typenum::Unsigned>(
    items: Vec<T>,
    container: &'static str,
) -> crate::Result<VariableList<T, N>> {
    let len = items.len();
    VariableList::new(items).map_err(|_| crate::TypesError::ListOverCap {
        container,
        len,
        cap: VariableList::<T, N>::max_len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn from_verified_keeps_the_given_hash_and_the_cap() {
        let hash = B256::repeat_byte(0x11);
        let r = GetRawTxListResponse::from_verified(hash, vec![1, 2, 3]).unwrap();
        assert_eq!(r.raw_tx_list_hash, hash, "not recomputed");
        assert_eq!(r.txlist.to_vec(), vec![1, 2, 3]);
        assert!(
            GetRawTxListResponse::from_verified(hash, vec![0; crate::MAX_TXLIST_BYTES + 1])
                .is_err()
        );
    }

    #[test]
    fn get_raw_txlists_lengths_and_caps() {
        let entries: Vec<GetRawTxListResponse> = [0usize, 1, 300]
            .iter()
            .map(|n| GetRawTxListResponse::new(vec![7; *n]).unwrap())
            .collect();
        let response = GetRawTxListsResponse::new(entries).unwrap();
        assert_eq!(
            response.as_ssz_bytes().len(),
            GetRawTxListsResponse::encoded_len_with([0, 1, 300])
        );
        assert_eq!(GetRawTxListsResponse::encoded_len_with([]), 4);
        let back = GetRawTxListsResponse::from_ssz_bytes(&response.as_ssz_bytes()).unwrap();
        assert_eq!(back, response);
        let full = GetRawTxListsRequest::new(vec![B256::repeat_byte(1); 64]).unwrap();
        assert_eq!(
            full.as_ssz_bytes().len(),
            crate::GET_RAW_TXLISTS_REQUEST_MAX_SSZ_LEN
        );
        assert!(GetRawTxListsRequest::new(vec![B256::ZERO; 65]).is_err());
        assert!(GetRawTxListsResponse::new(vec![GetRawTxListResponse::default(); 65]).is_err());
        // The byte cap holds one tx list of the protocol maximum.
        assert!(
            GetRawTxListsResponse::encoded_len_with([crate::MAX_TXLIST_BYTES])
                <= crate::MAX_RAW_TXLISTS_RESPONSE_BYTES
        );
    }

    use super::*;
    use crate::constants::*;

    #[test]
    fn get_head_request_decodes_from_empty_or_the_reference_container() {
        assert_eq!(GetHeadRequest::default().as_ssz_bytes(), [4, 0, 0, 0]);
        assert_eq!(
            GetHeadRequest::decode_either(&[]),
            Ok(GetHeadRequest::default())
        );
        assert_eq!(
            GetHeadRequest::decode_either(&[4, 0, 0, 0]),
            Ok(GetHeadRequest::default())
        );
        // A wrong offset, a non-empty reserved list, a short body.
        for body in [&[5u8, 0, 0, 0][..], &[4, 0, 0, 0, 0], &[4, 0, 0], &[0]] {
            assert!(GetHeadRequest::decode_either(body).is_err(), "{body:02x?}");
        }
    }

    #[test]
    fn fixed_sizes_match_the_spec() {
        assert_eq!(
            <Preconfirmation as Encode>::ssz_fixed_len(),
            PRECONFIRMATION_SSZ_LEN
        );
        assert_eq!(<Preconfirmation as Encode>::ssz_fixed_len(), 297);
        assert_eq!(<PreconfCommitment as Encode>::ssz_fixed_len(), 317);
        assert_eq!(<SignedCommitment as Encode>::ssz_fixed_len(), 382);
        assert_eq!(<PreconfHead as Encode>::ssz_fixed_len(), 64);
        assert_eq!(
            <GetCommitmentsByNumberRequest as Encode>::ssz_fixed_len(),
            36
        );
        assert_eq!(<GetRawTxListRequest as Encode>::ssz_fixed_len(), 32);
        assert!(<Preconfirmation as Encode>::is_ssz_fixed_len());
        assert!(<SignedCommitment as Encode>::is_ssz_fixed_len());
        assert!(!<RawTxListGossip as Encode>::is_ssz_fixed_len());
        assert!(!<GetCommitmentsByNumberResponse as Encode>::is_ssz_fixed_len());
        assert_eq!(
            SignedCommitment::default().as_ssz_bytes().len(),
            SIGNED_COMMITMENT_SSZ_LEN
        );
        assert_eq!(
            PreconfHead::default().as_ssz_bytes().len(),
            PRECONF_HEAD_SSZ_LEN
        );
    }

    #[test]
    fn field_order_is_normative() {
        // eop first, then blockNumber little-endian: byte 1 holds the low byte of the number.
        let p = Preconfirmation {
            eop: true,
            block_number: U256::from(0x0102u64),
            coinbase: Address::repeat_byte(0xcc),
            proposal_id: U256::from(7u64),
            ..Default::default()
        };
        let bytes = p.as_ssz_bytes();
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..3], &[0x02, 0x01]);
        // coinbase follows eop + 3 uint256.
        assert_eq!(&bytes[97..117], &[0xcc; 20]);
        // proposalId is last.
        assert_eq!(bytes[265], 7);
    }

    #[test]
    fn type_level_maxima_match_constants() {
        assert_eq!(TxList::max_len(), MAX_TXLIST_BYTES);
        assert_eq!(
            VariableList::<SignedCommitment, MaxCommitmentsPerResponse>::max_len(),
            MAX_COMMITMENTS_PER_RESPONSE
        );
        assert_eq!(
            VariableList::<B256, MaxTxListsPerRequest>::max_len(),
            crate::MAX_TXLISTS_PER_REQUEST
        );
    }

    #[test]
    fn raw_tx_list_constructor_hashes_and_caps() {
        let g = RawTxListGossip::new(vec![1, 2, 3]).unwrap();
        assert_eq!(g.raw_tx_list_hash, crate::raw_tx_list_hash(&[1, 2, 3]));
        assert!(matches!(
            RawTxListGossip::new(vec![0; MAX_TXLIST_BYTES + 1]),
            Err(crate::TypesError::ListOverCap { .. })
        ));
        assert!(matches!(
            GetCommitmentsByNumberResponse::new(vec![
                SignedCommitment::default();
                MAX_COMMITMENTS_PER_RESPONSE + 1
            ]),
            Err(crate::TypesError::ListOverCap { .. })
        ));
    }
}
