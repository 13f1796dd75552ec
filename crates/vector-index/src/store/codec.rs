//! Byte encodings of vectors and records, shared by the stores.
//!
//! Record: `[format u8 = 2][version u64 LE][dim u32 LE][dim x f32 LE]
//! [payload length u32 LE][payload JSON][document length u32 LE][document]`. Format 1 (no
//! length, no document) is still read.

use crate::error::{IndexError, Result};
use crate::payload::Payload;

const FORMAT: u8 = 2;
const FORMAT_NO_DOCUMENT: u8 = 1;

/// Little-endian f32 bytes of `v`.
pub fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Parses little-endian f32 bytes.
pub fn vector_from(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(IndexError::storage(format!(
            "vector of {} bytes is not a whole number of float32",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// Payload as JSON bytes.
pub fn payload_bytes(p: &Payload) -> Result<Vec<u8>> {
    serde_json::to_vec(p).map_err(IndexError::storage)
}

/// Parses payload JSON bytes.
pub fn payload_from(bytes: &[u8]) -> Result<Payload> {
    serde_json::from_slice(bytes).map_err(|e| IndexError::storage(format!("payload: {e}")))
}

/// Encodes a record's value (its id is the key).
pub fn encode(version: u64, vector: &[f32], payload: &Payload, document: &[u8]) -> Result<Vec<u8>> {
    let payload = payload_bytes(payload)?;
    let mut out = Vec::with_capacity(21 + vector.len() * 4 + payload.len() + document.len());
    out.push(FORMAT);
    out.extend(version.to_le_bytes());
    let dim = u32::try_from(vector.len()).map_err(IndexError::storage)?;
    out.extend(dim.to_le_bytes());
    out.extend(vector_bytes(vector));
    let payload_len = u32::try_from(payload.len()).map_err(IndexError::storage)?;
    out.extend(payload_len.to_le_bytes());
    out.extend(payload);
    let document_len = u32::try_from(document.len()).map_err(IndexError::storage)?;
    out.extend(document_len.to_le_bytes());
    out.extend(document);
    Ok(out)
}

/// A decoded record value.
pub struct Decoded {
    pub version: u64,
    pub vector: Vec<f32>,
    pub payload: Payload,
    pub document: Vec<u8>,
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let corrupt = |what: &str| IndexError::storage(format!("corrupt record: {what}"));
    let (&format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if format != FORMAT && format != FORMAT_NO_DOCUMENT {
        return Err(corrupt(&format!("unknown format {format}")));
    }
    let (version, rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("short"))?;
    let (dim, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("short"))?;
    let dim = u32::from_le_bytes(*dim) as usize;
    let vector_len = dim
        .checked_mul(4)
        .filter(|n| *n <= rest.len())
        .ok_or_else(|| corrupt("short vector"))?;
    let (vector, rest) = rest.split_at(vector_len);
    let (payload, document) = if format == FORMAT_NO_DOCUMENT {
        (rest, &[][..])
    } else {
        let (len, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("short"))?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > rest.len() {
            return Err(corrupt("short payload"));
        }
        let (payload, rest) = rest.split_at(len);
        let (len, document) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt("short"))?;
        if u32::from_le_bytes(*len) as usize != document.len() {
            return Err(corrupt("document length"));
        }
        (payload, document)
    };
    Ok(Decoded {
        version: u64::from_le_bytes(*version),
        vector: vector_from(vector)?,
        payload: payload_from(payload)?,
        document: document.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_an_error_not_a_panic() {
        let mut p = Payload::new("ns");
        p.tags = vec!["a".into(), "ü".into()];
        p.expires_at = Some(5);
        let v = vec![1.5, -0.0, f32::MIN_POSITIVE];
        let bytes = encode(7, &v, &p, b"{\"text\":1}").unwrap();
        let d = decode(&bytes).unwrap();
        assert_eq!((d.version, d.vector, d.payload), (7, v, p));
        assert_eq!(d.document, b"{\"text\":1}");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(decode(&wrong).is_err());
        let mut huge_dim = bytes;
        huge_dim[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_dim).is_err());
    }
}
