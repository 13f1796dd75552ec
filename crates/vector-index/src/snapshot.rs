//! Snapshots of a whole collection (ids, payloads, graph) in one checked blob.
//!
//! Layout: `b"VISNAP01"`, CRC-32 of everything after it (u32 LE), header length
//! (u64 LE), header JSON, graph length (u64 LE), the backend's saved graph.
//! The checksum is verified before any library sees the graph bytes, so a
//! damaged snapshot is an error, never a crash or a wrong index.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Key;
use crate::error::{IndexError, Result};
use crate::payload::Payload;

const MAGIC: &[u8; 8] = b"VISNAP01";

/// One point of a snapshot.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedPoint {
    pub key: Key,
    pub id: Uuid,
    pub payload: Payload,
}

/// Everything but the graph.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Header {
    pub dim: usize,
    pub backend: String,
    pub next_key: u64,
    /// Keys still in the saved graph that no longer belong to a point.
    pub retired: Vec<Key>,
    pub points: Vec<SavedPoint>,
    /// The caller's position (e.g. a change-feed position), returned on restore.
    pub meta: String,
}

fn corrupt(what: impl std::fmt::Display) -> IndexError {
    IndexError::CorruptSnapshot(what.to_string())
}

/// Encodes a header and graph.
pub(crate) fn encode(header: &Header, graph: &[u8]) -> Result<Vec<u8>> {
    let header = serde_json::to_vec(header).map_err(corrupt)?;
    let mut body = Vec::with_capacity(16 + header.len() + graph.len());
    body.extend((header.len() as u64).to_le_bytes());
    body.extend(&header);
    body.extend((graph.len() as u64).to_le_bytes());
    body.extend(graph);
    let mut out = Vec::with_capacity(12 + body.len());
    out.extend(MAGIC);
    out.extend(crc32fast::hash(&body).to_le_bytes());
    out.extend(body);
    Ok(out)
}

/// Splits a length-prefixed section's length off `b`.
fn section_len(b: &[u8]) -> Result<(usize, &[u8])> {
    let (len, rest) = b
        .split_first_chunk::<8>()
        .ok_or_else(|| corrupt("truncated"))?;
    let len = usize::try_from(u64::from_le_bytes(*len)).map_err(corrupt)?;
    if len > rest.len() {
        return Err(corrupt("section longer than the snapshot"));
    }
    Ok((len, rest))
}

/// Checks and decodes a snapshot into its header and graph bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<(Header, &[u8])> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt("not a snapshot (bad magic)"))?;
    let (crc, body) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| corrupt("truncated"))?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err(corrupt("checksum mismatch"));
    }
    let (len, rest) = section_len(body)?;
    let (header, rest) = rest.split_at(len);
    let header: Header = serde_json::from_slice(header).map_err(corrupt)?;
    let (len, rest) = section_len(rest)?;
    Ok((header, &rest[..len]))
}
