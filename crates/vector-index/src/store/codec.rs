//! Byte encodings of vectors and records, shared by the stores.
//!
//! Record: `[format u8 = 1][version u64 LE][dim u32 LE][dim x f32 LE][payload JSON]`.

use crate::error::{IndexError, Result};
use crate::payload::Payload;

const FORMAT: u8 = 1;

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
pub fn encode(version: u64, vector: &[f32], payload: &Payload) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(13 + vector.len() * 4 + 64);
    out.push(FORMAT);
    out.extend(version.to_le_bytes());
    let dim = u32::try_from(vector.len()).map_err(IndexError::storage)?;
    out.extend(dim.to_le_bytes());
    out.extend(vector_bytes(vector));
    out.extend(payload_bytes(payload)?);
    Ok(out)
}

/// Decodes what [`encode`] wrote: `(version, vector, payload)`.
pub fn decode(bytes: &[u8]) -> Result<(u64, Vec<f32>, Payload)> {
    let corrupt = |what: &str| IndexError::storage(format!("corrupt record: {what}"));
    let (&format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if format != FORMAT {
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
    let (vector, payload) = rest.split_at(vector_len);
    Ok((
        u64::from_le_bytes(*version),
        vector_from(vector)?,
        payload_from(payload)?,
    ))
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
        let bytes = encode(7, &v, &p).unwrap();
        assert_eq!(decode(&bytes).unwrap(), (7, v, p));
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
