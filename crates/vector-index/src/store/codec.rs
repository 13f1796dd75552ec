//! Byte encodings of vectors and records, shared by the stores.
//!
//! Vector field: a vector at [`VectorPrecision::F32`] is its little-endian
//! f32 bytes (4 per element, as every store wrote before f16 existed). At
//! [`VectorPrecision::F16`] it is the tag byte [`F16_TAG`], the vector's
//! length (L2 norm) as an f32, then each element divided by that length as a
//! little-endian IEEE half float: elements of a unit vector never overflow
//! half floats, whatever the caller's scale. The f16 form always has an odd
//! length and the f32 form a multiple of four, so a reader tells them apart
//! without being told. A vector whose length is zero or beyond f32 is kept
//! at f32.
//!
//! Record (the embedded store's value; its id is the key):
//! - format 3: `[3][version u64 LE][vector field length u32 LE][vector field]
//!   [payload length u32 LE][payload JSON][document length u32 LE][document]`,
//!   written for f16 vectors;
//! - format 2: `[2][version u64 LE][dim u32 LE][dim x f32 LE][payload length
//!   u32 LE][payload JSON][document length u32 LE][document]`, written for f32
//!   vectors, so a file of them stays readable by older releases;
//! - format 1 (no length, no document) is still read.

use std::borrow::Cow;

use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::backend::Quantization;
use crate::error::{IndexError, Result};
use crate::payload::Payload;

const FORMAT_VECTOR_FIELD: u8 = 3;
const FORMAT: u8 = 2;
const FORMAT_NO_DOCUMENT: u8 = 1;
/// Every record format this release reads.
const FORMATS: [u8; 3] = [FORMAT_VECTOR_FIELD, FORMAT, FORMAT_NO_DOCUMENT];

/// First byte of a vector field in half precision.
pub const F16_TAG: u8 = b'h';

/// The precision a store keeps vectors at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VectorPrecision {
    /// Exactly as given.
    #[default]
    F32,
    /// IEEE half floats of the unit vector, with its length: half the
    /// bytes, each element within 0.05 % (within 3e-8 of the length for an
    /// element below 6e-5 of it); cosine to the original above 0.999 999.
    F16,
}

impl VectorPrecision {
    /// The precision that loses nothing an index of `quantization` would
    /// keep: f32 for an f32 index, f16 for an f16 or i8 one.
    pub fn for_index(quantization: Quantization) -> Self {
        match quantization {
            Quantization::F32 => Self::F32,
            Quantization::F16 | Quantization::I8 => Self::F16,
        }
    }

    /// `v` as a store at this precision gives it back.
    pub fn round<'a>(self, v: &'a [f32]) -> Cow<'a, [f32]> {
        match self.halves(v) {
            None => Cow::Borrowed(v),
            Some((length, halves)) => Cow::Owned(halves.map(|h| h.to_f32() * length).collect()),
        }
    }

    /// At f16, `v`'s length and its elements divided by it; `None` when `v`
    /// is kept at f32.
    fn halves(self, v: &[f32]) -> Option<(f32, impl Iterator<Item = f16> + '_)> {
        if self == Self::F32 {
            return None;
        }
        let length = v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt() as f32;
        (length.is_finite() && length > 0.0)
            .then(|| (length, v.iter().map(move |x| f16::from_f32(x / length))))
    }
}

/// The vector field of `v` at `precision` (see the module docs).
pub fn vector_bytes(v: &[f32], precision: VectorPrecision) -> Vec<u8> {
    match precision.halves(v) {
        None => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Some((length, halves)) => std::iter::once(F16_TAG)
            .chain(length.to_le_bytes())
            .chain(halves.flat_map(f16::to_le_bytes))
            .collect(),
    }
}

/// Parses a vector field of either precision.
pub fn vector_from(bytes: &[u8]) -> Result<Vec<f32>> {
    if bytes.len().is_multiple_of(4) {
        return Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect());
    }
    let tagged = bytes
        .split_first()
        .filter(|(tag, _)| **tag == F16_TAG)
        .and_then(|(_, rest)| rest.split_first_chunk::<4>())
        .filter(|(_, halves)| halves.len().is_multiple_of(2));
    match tagged {
        Some((length, halves)) => {
            let length = f32::from_le_bytes(*length);
            // Widened as a slice (F16C, eight at a time) rather than one by
            // one: every search decodes each result's record.
            let bits: Vec<f16> = halves
                .chunks_exact(2)
                .map(|b| f16::from_le_bytes([b[0], b[1]]))
                .collect();
            let mut out = vec![0f32; bits.len()];
            bits.convert_to_f32_slice(&mut out);
            out.iter_mut().for_each(|x| *x *= length);
            Ok(out)
        }
        None => Err(IndexError::storage(format!(
            "vector field of {} bytes is neither float32 nor tagged float16",
            bytes.len()
        ))),
    }
}

/// Payload as JSON bytes.
pub fn payload_bytes(p: &Payload) -> Result<Vec<u8>> {
    serde_json::to_vec(p).map_err(IndexError::storage)
}

/// Parses payload JSON bytes.
pub fn payload_from(bytes: &[u8]) -> Result<Payload> {
    serde_json::from_slice(bytes).map_err(|e| IndexError::storage(format!("payload: {e}")))
}

/// Encodes a record's value (its id is the key), its vector at `precision`.
pub fn encode(
    version: u64,
    vector: &[f32],
    precision: VectorPrecision,
    payload: &Payload,
    document: &[u8],
) -> Result<Vec<u8>> {
    let payload = payload_bytes(payload)?;
    let length = |n: usize| {
        u32::try_from(n)
            .map(u32::to_le_bytes)
            .map_err(IndexError::storage)
    };
    let mut out = Vec::with_capacity(25 + vector.len() * 4 + payload.len() + document.len());
    match precision {
        VectorPrecision::F32 => {
            out.push(FORMAT);
            out.extend(version.to_le_bytes());
            out.extend(length(vector.len())?);
            out.extend(vector_bytes(vector, precision));
        }
        VectorPrecision::F16 => {
            let field = vector_bytes(vector, precision);
            out.push(FORMAT_VECTOR_FIELD);
            out.extend(version.to_le_bytes());
            out.extend(length(field.len())?);
            out.extend(field);
        }
    }
    out.extend(length(payload.len())?);
    out.extend(payload);
    out.extend(length(document.len())?);
    out.extend(document);
    Ok(out)
}

/// The version of an encoded record, without decoding the rest (a write
/// checks it against what it expects).
pub fn version(bytes: &[u8]) -> Result<u64> {
    match bytes.split_first() {
        Some((format, rest)) if FORMATS.contains(format) => rest
            .first_chunk::<8>()
            .map(|v| u64::from_le_bytes(*v))
            .ok_or_else(|| IndexError::storage("corrupt record: short")),
        _ => Err(IndexError::storage("corrupt record: unknown format")),
    }
}

/// A decoded record value.
pub struct Decoded {
    pub version: u64,
    pub vector: Vec<f32>,
    pub payload: Payload,
    pub document: Vec<u8>,
}

/// A decoded record value without its vector (the vector field is framed
/// by its length and skipped, not parsed).
pub struct DecodedEntry {
    pub version: u64,
    pub payload: Payload,
    pub document: Vec<u8>,
}

/// Decodes what [`encode`] wrote.
pub fn decode(bytes: &[u8]) -> Result<Decoded> {
    let f = fields(bytes)?;
    Ok(Decoded {
        version: f.version,
        vector: vector_from(f.vector)?,
        payload: payload_from(f.payload)?,
        document: f.document.to_vec(),
    })
}

/// Decodes what [`encode`] wrote but the vector.
pub fn decode_entry(bytes: &[u8]) -> Result<DecodedEntry> {
    let f = fields(bytes)?;
    Ok(DecodedEntry {
        version: f.version,
        payload: payload_from(f.payload)?,
        document: f.document.to_vec(),
    })
}

/// A record value's fields, framed but not parsed.
struct Fields<'a> {
    version: u64,
    vector: &'a [u8],
    payload: &'a [u8],
    document: &'a [u8],
}

fn fields(bytes: &[u8]) -> Result<Fields<'_>> {
    let corrupt = |what: &str| IndexError::storage(format!("corrupt record: {what}"));
    let (&format, rest) = bytes.split_first().ok_or_else(|| corrupt("empty"))?;
    if !FORMATS.contains(&format) {
        return Err(corrupt(&format!("unknown format {format}")));
    }
    let (version, rest) = rest
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("short"))?;
    let (len, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("short"))?;
    let len = u32::from_le_bytes(*len) as usize;
    // Formats 1 and 2 give the dimension of f32 elements; 3 the field's bytes.
    let per_element = if format == FORMAT_VECTOR_FIELD { 1 } else { 4 };
    let vector_len = len
        .checked_mul(per_element)
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
    Ok(Fields {
        version: u64::from_le_bytes(*version),
        vector,
        payload,
        document,
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
        let bytes = encode(7, &v, VectorPrecision::F32, &p, b"{\"text\":1}").unwrap();
        let d = decode(&bytes).unwrap();
        let e = decode_entry(&bytes).unwrap();
        assert_eq!((e.version, &e.payload, &e.document), (7, &p, &d.document));
        assert_eq!(version(&bytes).unwrap(), 7);
        assert_eq!((d.version, d.vector, d.payload), (7, v, p));
        assert_eq!(d.document, b"{\"text\":1}");
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "truncated at {cut}");
            assert!(decode_entry(&bytes[..cut]).is_err(), "truncated at {cut}");
        }
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert!(decode(&wrong).is_err());
        let mut huge_dim = bytes;
        huge_dim[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(&huge_dim).is_err());
    }

    #[test]
    fn f16_records_round_trip_within_half_precision_beside_older_formats() {
        let p = Payload::new("ns");
        let v: Vec<f32> = (0..384).map(|i| ((i as f32) * 0.37).sin() / 7.0).collect();
        let f32_record = encode(3, &v, VectorPrecision::F32, &p, b"doc").unwrap();
        let f16_record = encode(3, &v, VectorPrecision::F16, &p, b"doc").unwrap();
        // The vector is what shrinks: 768 bytes fewer, less the tag and length.
        assert_eq!(f32_record.len() - f16_record.len(), 384 * 2 - 5);
        let exact = decode(&f32_record).unwrap();
        let half = decode(&f16_record).unwrap();
        assert_eq!(exact.vector, v);
        assert_eq!(half.vector, VectorPrecision::F16.round(&v).as_ref());
        assert_eq!(
            (half.version, half.payload, half.document),
            (3, p, b"doc".to_vec())
        );
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let cosine = dot(&v, &half.vector) / (dot(&v, &v) * dot(&half.vector, &half.vector)).sqrt();
        assert!(cosine > 0.999_999, "cosine {cosine}");
        for cut in 0..f16_record.len() {
            assert!(decode(&f16_record[..cut]).is_err(), "truncated at {cut}");
        }
    }

    #[test]
    fn vector_fields_say_their_own_precision_at_any_scale() {
        for v in [
            vec![0.5f32, -2.0, 1e-3],
            // Beyond half floats' range, and far below it: the length carries the scale.
            vec![1e30, -3e29, 0.0],
            vec![1e-30, 2e-30, -0.0],
        ] {
            for precision in [VectorPrecision::F32, VectorPrecision::F16] {
                let field = vector_bytes(&v, precision);
                let back = vector_from(&field).unwrap();
                assert_eq!(back, precision.round(&v).as_ref());
                for (x, y) in v.iter().zip(&back) {
                    assert!((x - y).abs() <= x.abs() * 1e-3, "{x} came back as {y}");
                }
            }
        }
        // Kept at f32: no length (zero, empty) or one beyond f32.
        for v in [vec![0.0f32, 0.0], vec![], vec![3e38, 3e38]] {
            assert_eq!(
                vector_bytes(&v, VectorPrecision::F16),
                vector_bytes(&v, VectorPrecision::F32)
            );
        }
        // An f16 field has an odd length; anything else odd is an error.
        assert_eq!(
            vector_bytes(&[0.5, 1.0, 2.0], VectorPrecision::F16).len(),
            11
        );
        for bad in [&[F16_TAG, 0, 0, 128, 63, 0][..], &[b'x', 0, 0], &[F16_TAG]] {
            assert!(vector_from(bad).is_err(), "{bad:?}");
        }
    }
}
