//! Taiko's tx-list form, as its preconfirmation driver decodes a published block's list: a
//! zlib stream whose inflated bytes are one RLP list of transactions. Each item is a typed
//! transaction (`type || payload`) wrapped as an RLP string, or a legacy transaction, which is
//! itself an RLP list (go-ethereum's `types.Transactions` encoding).
//!
//! Inflating is bounded: at most `cap + 1` bytes are ever produced, so a few bytes that would
//! inflate to gigabytes (a zlib bomb) are refused after `cap + 1` bytes of work and memory,
//! never inflated whole. The node uses the chain's tx-list cap (`MAX_TXLIST_BYTES`) for both
//! the compressed and the inflated size, as the reference codec does.
//!
//! Only the shape is checked: a list, each item a complete RLP string or list, nothing after
//! the list (as go-ethereum's `rlp.DecodeBytes` refuses trailing bytes). Whether each item is
//! a valid transaction is the execution client's business.

use std::io::{Read, Write};

use alloy_rlp::{Encodable, Header};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;

/// Why a tx list does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxListError {
    /// The compressed list is over the cap.
    #[error("tx list of {len} bytes exceeds the {cap}-byte cap")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// Inflating would produce more than the cap; inflating stopped there.
    #[error("tx list inflates beyond the {cap}-byte cap")]
    InflatesBeyondCap {
        /// The cap.
        cap: usize,
    },
    /// Not a valid zlib stream (bad header, corrupt data, bad checksum, truncated).
    #[error("tx list is not a zlib stream: {0}")]
    Zlib(String),
    /// The inflated bytes are not an RLP list of transactions.
    #[error("inflated tx list is not an RLP list of transactions: {0}")]
    Rlp(String),
}

impl TxListError {
    /// Stable label (the `reason` of a JSON-RPC error's `data`).
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "txlist_too_large",
            Self::InflatesBeyondCap { .. } => "txlist_inflates_beyond_cap",
            Self::Zlib(_) => "txlist_bad_zlib",
            Self::Rlp(_) => "txlist_bad_rlp",
        }
    }
}

/// What a decoded tx list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedTxList {
    /// Transactions in the list.
    pub transactions: usize,
    /// Bytes of the inflated RLP.
    pub inflated_bytes: usize,
}

/// Decodes `compressed` (zlib of an RLP list of transactions), inflating at most `cap` bytes.
pub fn decode(compressed: &[u8], cap: usize) -> Result<DecodedTxList, TxListError> {
    if compressed.len() > cap {
        return Err(TxListError::TooLarge {
            len: compressed.len(),
            cap,
        });
    }
    let inflated = inflate_capped(&mut ZlibDecoder::new(compressed), cap)?;
    let transactions = count_rlp_list_items(&inflated)?;
    Ok(DecodedTxList {
        transactions,
        inflated_bytes: inflated.len(),
    })
}

/// Inflates a zlib stream, refusing it as soon as it yields more than `cap` bytes: the
/// decoder is asked for at most `cap + 1` bytes in all.
fn inflate_capped<R: Read>(
    decoder: &mut ZlibDecoder<R>,
    cap: usize,
) -> Result<Vec<u8>, TxListError> {
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let mut inflated = Vec::new();
    decoder
        .take(limit)
        .read_to_end(&mut inflated)
        .map_err(|e| TxListError::Zlib(e.to_string()))?;
    if inflated.len() > cap {
        return Err(TxListError::InflatesBeyondCap { cap });
    }
    Ok(inflated)
}

/// The number of items of the RLP list that is all of `rlp`.
fn count_rlp_list_items(rlp: &[u8]) -> Result<usize, TxListError> {
    let bad = |e: alloy_rlp::Error| TxListError::Rlp(e.to_string());
    let mut rest = rlp;
    let outer = Header::decode(&mut rest).map_err(bad)?;
    if !outer.list {
        return Err(TxListError::Rlp("expected a list, found a string".into()));
    }
    if rest.len() < outer.payload_length {
        return Err(TxListError::Rlp(format!(
            "the list claims {} bytes, {} follow",
            outer.payload_length,
            rest.len()
        )));
    }
    if rest.len() > outer.payload_length {
        return Err(TxListError::Rlp(format!(
            "{} bytes after the list",
            rest.len() - outer.payload_length
        )));
    }
    let mut items = rest;
    let mut count = 0usize;
    while !items.is_empty() {
        // Consumes the item's header; a single byte below 0x80 is its own string, with an
        // empty header: the byte stays, as the payload.
        let item = Header::decode(&mut items).map_err(bad)?;
        if item.payload_length > items.len() {
            return Err(TxListError::Rlp(format!(
                "transaction {count} claims {} bytes, {} are left in the list",
                item.payload_length,
                items.len()
            )));
        }
        items = &items[item.payload_length..];
        count += 1;
    }
    Ok(count)
}

/// Encodes `transactions` (each in its EIP-2718 network form) as Taiko's client does: legacy
/// transactions (RLP lists) as they are, typed ones as RLP strings, all in one RLP list,
/// zlib-compressed. For sidecars and tests written in Rust.
pub fn encode(transactions: &[&[u8]]) -> Vec<u8> {
    let mut payload = Vec::new();
    for tx in transactions {
        if tx.first().is_some_and(|b| *b >= 0xc0) {
            payload.extend_from_slice(tx);
        } else {
            tx.encode(&mut payload);
        }
    }
    let mut rlp = Vec::with_capacity(payload.len() + 9);
    Header {
        list: true,
        payload_length: payload.len(),
    }
    .encode(&mut rlp);
    rlp.extend_from_slice(&payload);
    compress(&rlp)
}

/// zlib of `bytes` at the default level.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An EIP-1559 transaction's network form (type 2, unsigned fields; the codec does not
    /// look inside).
    fn typed_tx() -> Vec<u8> {
        let mut tx = vec![0x02];
        let mut fields = Vec::new();
        for field in [&[0x01u8][..], &[], &[0x3b, 0x9a, 0xca, 0x00], &[0x52, 0x08]] {
            field.encode(&mut fields);
        }
        Header {
            list: true,
            payload_length: fields.len(),
        }
        .encode(&mut tx);
        tx.extend_from_slice(&fields);
        tx
    }

    /// A legacy transaction: a bare 9-field RLP list.
    fn legacy_tx() -> Vec<u8> {
        let mut fields = Vec::new();
        let values: [&[u8]; 9] = [
            &[0x01],
            &[0x04, 0xa8, 0x17, 0xc8, 0x00],
            &[0x52, 0x08],
            &[0x11; 20],
            &[0x0d, 0xe0],
            &[],
            &[0x1c],
            &[0x22; 32],
            &[0x33; 32],
        ];
        for value in values {
            value.encode(&mut fields);
        }
        let mut tx = Vec::new();
        Header {
            list: true,
            payload_length: fields.len(),
        }
        .encode(&mut tx);
        tx.extend_from_slice(&fields);
        tx
    }

    #[test]
    fn typed_and_legacy_transactions_decode() {
        let (typed, legacy) = (typed_tx(), legacy_tx());
        let list = encode(&[&typed, &legacy, &typed]);
        let decoded = decode(&list, 4096).expect("decodes");
        assert_eq!(decoded.transactions, 3);
        // The list as go-ethereum writes it, built by hand: typed as strings, legacy bare.
        let mut payload = Vec::new();
        typed.as_slice().encode(&mut payload);
        payload.extend_from_slice(&legacy);
        typed.as_slice().encode(&mut payload);
        let mut rlp = Vec::new();
        Header {
            list: true,
            payload_length: payload.len(),
        }
        .encode(&mut rlp);
        rlp.extend_from_slice(&payload);
        assert_eq!(decoded.inflated_bytes, rlp.len());
        assert_eq!(decode(&compress(&rlp), 4096), Ok(decoded));
    }

    #[test]
    fn an_empty_list_is_a_list_of_no_transactions() {
        let decoded = decode(&compress(&[0xc0]), 1024).expect("decodes");
        assert_eq!(
            decoded,
            DecodedTxList {
                transactions: 0,
                inflated_bytes: 1
            }
        );
        assert_eq!(decode(&encode(&[]), 1024), Ok(decoded));
    }

    /// A list that inflates to exactly the cap decodes; one byte more is refused.
    #[test]
    fn inflating_stops_one_byte_past_the_cap() {
        // A list of one string whose RLP is exactly `cap` bytes.
        let cap = 4096;
        let body = vec![0x61; cap - 3 - 3];
        let mut item = Vec::new();
        body.as_slice().encode(&mut item);
        let mut rlp = Vec::new();
        Header {
            list: true,
            payload_length: item.len(),
        }
        .encode(&mut rlp);
        rlp.extend_from_slice(&item);
        assert_eq!(rlp.len(), cap);
        let compressed = compress(&rlp);
        assert_eq!(decode(&compressed, cap).map(|d| d.transactions), Ok(1));
        assert_eq!(
            decode(&compressed, cap - 1),
            Err(TxListError::InflatesBeyondCap { cap: cap - 1 })
        );
    }

    /// A zlib bomb: 16 KiB that inflate to 16 MiB, 256 times the cap. Refused once the
    /// inflated bytes pass the cap: the decoder produced `cap + 1` bytes from a small part of
    /// the bomb, and was never asked for the rest.
    #[test]
    fn a_zlib_bomb_is_refused_without_inflating_it() {
        let cap = 64 * 1024;
        let bomb = compress(&vec![0u8; 16 << 20]);
        assert!(bomb.len() < cap / 2, "{} bytes", bomb.len());
        assert_eq!(
            decode(&bomb, cap),
            Err(TxListError::InflatesBeyondCap { cap })
        );
        let mut decoder = ZlibDecoder::new(bomb.as_slice());
        assert_eq!(
            inflate_capped(&mut decoder, cap),
            Err(TxListError::InflatesBeyondCap { cap })
        );
        assert_eq!(decoder.total_out(), cap as u64 + 1);
        assert!(
            decoder.total_in() < bomb.len() as u64 / 8,
            "inflated {} of {} bytes",
            decoder.total_in(),
            bomb.len()
        );
    }

    #[test]
    fn a_compressed_list_over_the_cap_is_refused_before_inflating() {
        let list = encode(&[&typed_tx()]);
        assert_eq!(
            decode(&list, list.len() - 1),
            Err(TxListError::TooLarge {
                len: list.len(),
                cap: list.len() - 1
            })
        );
    }

    #[test]
    fn bad_zlib_is_refused() {
        let good = encode(&[&typed_tx()]);
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 6);
        let mut bad_checksum = good.clone();
        let last = bad_checksum.len() - 1;
        bad_checksum[last] ^= 0xff;
        let raw_rlp = vec![0xc0];
        for (what, bytes) in [
            ("empty", Vec::new()),
            ("truncated", truncated),
            ("bad checksum", bad_checksum),
            ("not zlib at all", raw_rlp),
            ("garbage", vec![0x78, 0x9c, 0xff, 0xff, 0xff]),
        ] {
            let e = decode(&bytes, 4096).expect_err(what);
            assert!(matches!(e, TxListError::Zlib(_)), "{what}: {e:?}");
            assert_eq!(e.label(), "txlist_bad_zlib");
        }
    }

    #[test]
    fn bad_rlp_is_refused() {
        let typed = typed_tx();
        let mut string_item = Vec::new();
        typed.as_slice().encode(&mut string_item);
        let mut with_trailer = vec![0xc0 + string_item.len() as u8];
        with_trailer.extend_from_slice(&string_item);
        with_trailer.push(0x80);
        let mut overrun = vec![0xc0 + 3];
        overrun.extend_from_slice(&[0x85, 0x01, 0x02]);
        for (what, rlp) in [
            ("nothing", Vec::new()),
            ("a string, not a list", string_item.clone()),
            ("a list longer than the bytes", vec![0xc5, 0x01]),
            ("bytes after the list", with_trailer),
            ("an item longer than the list", overrun),
            ("a non-canonical single byte", vec![0xc2, 0x81, 0x01]),
        ] {
            let e = decode(&compress(&rlp), 4096).expect_err(what);
            assert!(matches!(e, TxListError::Rlp(_)), "{what}: {e:?}");
            assert_eq!(e.label(), "txlist_bad_rlp");
        }
    }
}
