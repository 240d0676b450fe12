//! Per-chain parameters: runtime caps and the signing/slashing identity of a chain.
//!
//! The wire types carry the spec maxima in their types; a chain may run with smaller caps. Every
//! inbound byte string is checked against these caps on its *length* before it is decoded (see
//! [`WireMessage::decode_capped`]), so a peer can never make us allocate more than the cap.

use alloy_primitives::{Address, B256};
use ssz::{Decode, Encode};

use crate::constants::*;
use crate::containers::*;
use crate::error::{Result, TypesError};
use crate::ids::GossipTopicKind;
use crate::reqresp::ReqRespKind;

/// Runtime caps of a chain (§3, §10.2). Defaults are the reference defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct ChainLimits {
    /// Largest tx list in bytes (§3 `MAX_TXLIST_BYTES`); at most [`MAX_TXLIST_BYTES`].
    pub max_txlist_bytes: usize,
    /// Largest gossip message in bytes (§2 `MAX_GOSSIP_SIZE_BYTES`); at most
    /// [`MAX_GOSSIP_SIZE_BYTES`].
    pub max_gossip_size_bytes: usize,
    /// Most commitments per `get_commitments_by_number` response (§10.2); at most
    /// [`MAX_COMMITMENTS_PER_RESPONSE`].
    pub max_commitments_per_response: usize,
}

impl Default for ChainLimits {
    fn default() -> Self {
        Self {
            max_txlist_bytes: MAX_TXLIST_BYTES,
            max_gossip_size_bytes: MAX_GOSSIP_SIZE_BYTES,
            max_commitments_per_response: MAX_COMMITMENTS_PER_RESPONSE,
        }
    }
}

impl ChainLimits {
    /// Checks that no cap exceeds the protocol maximum the wire types are built with.
    pub fn validate(&self) -> Result<()> {
        let checks = [
            ("max_txlist_bytes", self.max_txlist_bytes, MAX_TXLIST_BYTES),
            (
                "max_gossip_size_bytes",
                self.max_gossip_size_bytes,
                MAX_GOSSIP_SIZE_BYTES,
            ),
            (
                "max_commitments_per_response",
                self.max_commitments_per_response,
                MAX_COMMITMENTS_PER_RESPONSE,
            ),
        ];
        for (name, value, max) in checks {
            if value > max {
                return Err(TypesError::LimitAboveProtocolMax { name, value, max });
            }
        }
        Ok(())
    }

    /// Largest SSZ `RawTxListGossip` / `GetRawTxListResponse`: 32 + 4 + `max_txlist_bytes`.
    pub fn max_raw_txlist_message_len(&self) -> usize {
        RAW_TXLIST_FIXED_PART_LEN + self.max_txlist_bytes
    }

    /// Largest SSZ `GetCommitmentsByNumberResponse`: 4 + `max_commitments_per_response`·382.
    pub fn max_commitments_response_len(&self) -> usize {
        SSZ_OFFSET_LEN + self.max_commitments_per_response * SIGNED_COMMITMENT_SSZ_LEN
    }

    /// Largest request body of a req/resp protocol (§10–§11): the table's
    /// [`ReqRespKind::max_request_bytes`].
    pub fn max_request_len(&self, kind: ReqRespKind) -> usize {
        kind.max_request_bytes()
    }

    /// Largest response body of a req/resp protocol (§10–§11) under these caps: the table's
    /// [`ReqRespKind::max_response_bytes`], lowered by the runtime caps where the response
    /// holds commitments or a tx list.
    pub fn max_response_len(&self, kind: ReqRespKind) -> usize {
        match kind {
            ReqRespKind::GetCommitmentsByNumber => self.max_commitments_response_len(),
            ReqRespKind::GetRawTxList => self.max_raw_txlist_message_len(),
            ReqRespKind::GetHead | ReqRespKind::GetRawTxLists => kind.max_response_bytes(),
        }
    }

    /// Largest gossip payload on a topic (§2): the container cap, never above the gossip cap.
    pub fn max_gossip_len(&self, kind: GossipTopicKind) -> usize {
        let container = match kind {
            GossipTopicKind::Commitments => SIGNED_COMMITMENT_SSZ_LEN,
            GossipTopicKind::RawTxLists => self.max_raw_txlist_message_len(),
        };
        container.min(self.max_gossip_size_bytes)
    }
}

/// The identity of a chain as far as this protocol is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ChainSpec {
    /// L2 chain id; names the topics and protocols (§2, §10–§11).
    pub chain_id: u64,
    /// `DOMAIN_PRECONF`, prefixed to the signing preimage (§4.1).
    pub domain: B256,
    /// `PRECONFER_SLASHER_ADDRESS`; every commitment must name it (§4.2).
    pub slasher_address: Address,
    /// Runtime caps.
    #[cfg_attr(feature = "serde", serde(default))]
    pub limits: ChainLimits,
}

impl ChainSpec {
    /// A chain with the placeholder domain and default caps.
    pub fn new(chain_id: u64, slasher_address: Address) -> Self {
        Self {
            chain_id,
            domain: B256::from(DEFAULT_DOMAIN_PRECONF),
            slasher_address,
            limits: ChainLimits::default(),
        }
    }

    /// Topic string of `kind` on this chain.
    pub fn topic(&self, kind: GossipTopicKind) -> String {
        kind.topic(self.chain_id)
    }

    /// Protocol id of `kind` on this chain.
    pub fn protocol_id(&self, kind: ReqRespKind) -> String {
        kind.protocol_id(self.chain_id)
    }
}

/// A container that travels on its own over gossip or req/resp, decoded under a runtime cap.
pub trait WireMessage: Encode + Decode + Sized {
    /// Container name, as the spec spells it; used in errors and metric labels.
    const NAME: &'static str;

    /// Largest SSZ encoding allowed under `limits`.
    fn max_encoded_len(limits: &ChainLimits) -> usize;

    /// Decodes `bytes`, refusing anything longer than [`Self::max_encoded_len`] *before*
    /// decoding, so the decoder never sees (or allocates for) more than the cap.
    fn decode_capped(bytes: &[u8], limits: &ChainLimits) -> Result<Self> {
        let cap = Self::max_encoded_len(limits);
        if bytes.len() > cap {
            return Err(TypesError::OverCap {
                container: Self::NAME,
                len: bytes.len(),
                cap,
            });
        }
        Self::from_ssz_bytes(bytes).map_err(|e| TypesError::Ssz {
            container: Self::NAME,
            reason: format!("{e:?}"),
        })
    }

    /// The SSZ encoding.
    fn to_ssz(&self) -> Vec<u8> {
        self.as_ssz_bytes()
    }
}

macro_rules! fixed_wire_message {
    ($($ty:ident => $len:expr),* $(,)?) => {$(
        impl WireMessage for $ty {
            const NAME: &'static str = stringify!($ty);
            fn max_encoded_len(_: &ChainLimits) -> usize {
                $len
            }
        }
    )*};
}

fixed_wire_message! {
    Preconfirmation => PRECONFIRMATION_SSZ_LEN,
    PreconfCommitment => PRECONF_COMMITMENT_SSZ_LEN,
    SignedCommitment => SIGNED_COMMITMENT_SSZ_LEN,
    PreconfHead => PRECONF_HEAD_SSZ_LEN,
    GetHeadRequest => GET_HEAD_REQUEST_SSZ_LEN,
    GetCommitmentsByNumberRequest => GET_COMMITMENTS_BY_NUMBER_REQUEST_SSZ_LEN,
    GetRawTxListRequest => GET_RAW_TXLIST_REQUEST_SSZ_LEN,
}

impl WireMessage for RawTxListGossip {
    const NAME: &'static str = "RawTxListGossip";
    fn max_encoded_len(limits: &ChainLimits) -> usize {
        limits.max_gossip_len(GossipTopicKind::RawTxLists)
    }
}

impl WireMessage for GetRawTxListResponse {
    const NAME: &'static str = "GetRawTxListResponse";
    fn max_encoded_len(limits: &ChainLimits) -> usize {
        limits.max_raw_txlist_message_len()
    }
}

impl WireMessage for GetRawTxListsRequest {
    const NAME: &'static str = "GetRawTxListsRequest";
    fn max_encoded_len(_: &ChainLimits) -> usize {
        GET_RAW_TXLISTS_REQUEST_MAX_SSZ_LEN
    }
}

impl WireMessage for GetRawTxListsResponse {
    const NAME: &'static str = "GetRawTxListsResponse";
    fn max_encoded_len(_: &ChainLimits) -> usize {
        MAX_RAW_TXLISTS_RESPONSE_BYTES
    }
}

impl WireMessage for GetCommitmentsByNumberResponse {
    const NAME: &'static str = "GetCommitmentsByNumberResponse";
    fn max_encoded_len(limits: &ChainLimits) -> usize {
        limits.max_commitments_response_len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_match_the_issue() {
        let l = ChainLimits::default();
        assert_eq!(l.max_response_len(ReqRespKind::GetHead), 64);
        assert_eq!(l.max_request_len(ReqRespKind::GetHead), 4);
        assert_eq!(l.max_request_len(ReqRespKind::GetCommitmentsByNumber), 36);
        assert_eq!(
            l.max_response_len(ReqRespKind::GetCommitmentsByNumber),
            4 + 256 * 382
        );
        assert_eq!(l.max_request_len(ReqRespKind::GetRawTxList), 32);
        assert_eq!(
            l.max_response_len(ReqRespKind::GetRawTxList),
            32 + 4 + MAX_TXLIST_BYTES
        );
        l.validate().unwrap();
    }

    #[test]
    fn limits_above_protocol_max_are_refused() {
        let l = ChainLimits {
            max_txlist_bytes: MAX_TXLIST_BYTES + 1,
            ..Default::default()
        };
        assert!(matches!(
            l.validate(),
            Err(TypesError::LimitAboveProtocolMax { .. })
        ));
    }

    #[test]
    fn runtime_cap_is_checked_on_length_before_decoding() {
        let limits = ChainLimits {
            max_txlist_bytes: 10,
            ..Default::default()
        };
        let small = RawTxListGossip::new(vec![7; 10]).unwrap().to_ssz();
        assert!(RawTxListGossip::decode_capped(&small, &limits).is_ok());
        let big = RawTxListGossip::new(vec![7; 11]).unwrap().to_ssz();
        assert_eq!(
            RawTxListGossip::decode_capped(&big, &limits),
            Err(TypesError::OverCap {
                container: "RawTxListGossip",
                len: 47,
                cap: 46
            })
        );
        let limits = ChainLimits {
            max_commitments_per_response: 1,
            ..Default::default()
        };
        let two =
            GetCommitmentsByNumberResponse::new(vec![SignedCommitment::default(); 2]).unwrap();
        assert!(matches!(
            GetCommitmentsByNumberResponse::decode_capped(&two.to_ssz(), &limits),
            Err(TypesError::OverCap { .. })
        ));
    }

    #[test]
    fn fixed_containers_refuse_wrong_lengths() {
        let l = ChainLimits::default();
        let bytes = SignedCommitment::default().to_ssz();
        assert!(matches!(
            SignedCommitment::decode_capped(&bytes[..381], &l),
            Err(TypesError::Ssz { .. })
        ));
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            SignedCommitment::decode_capped(&long, &l),
            Err(TypesError::OverCap { .. })
        ));
    }
}
