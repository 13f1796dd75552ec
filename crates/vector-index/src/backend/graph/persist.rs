//! The saved form of a graph (docs/storage.md, "Our graph"): a header, each
//! slot's key, level and liveness, then the link rows and the vectors as
//! they are held, so a restore rebuilds nothing. A restore checks every
//! count, level and link against the header before it trusts them.

use super::element::Element;
use super::layers::{Layers, MAX_LEVEL};
use crate::error::{IndexError, Result};

/// First bytes of a saved graph.
const MAGIC: &[u8; 8] = b"AOGRAPH1";
/// Header after the magic: element bytes, then six u32s.
const HEADER: usize = MAGIC.len() + 1 + 6 * 4;
/// `entry` of an empty graph.
const NO_ENTRY: u32 = u32::MAX;

/// The bytes of `g`.
pub(super) fn save<E: Element>(g: &Layers<E>) -> Vec<u8> {
    let n = g.slot_count();
    let upper_words: usize = g.upper.iter().map(|u| u.len()).sum();
    let mut out = Vec::with_capacity(
        HEADER + n * 6 + (g.links0.len() + upper_words) * 4 + g.vectors.len() * E::BYTES,
    );
    out.extend_from_slice(MAGIC);
    out.push(E::BYTES as u8);
    for word in [
        g.dim as u32,
        g.m as u32,
        g.ef_construction as u32,
        n as u32,
        g.entry.unwrap_or(NO_ENTRY),
        g.max_level as u32,
    ] {
        out.extend(word.to_le_bytes());
    }
    for slot in 0..n as u32 {
        out.extend(g.keys[slot as usize].to_le_bytes());
        out.push(g.level(slot) as u8);
        out.push(u8::from(g.dead.contains(slot)));
    }
    for word in g.links0.iter().chain(g.upper.iter().flat_map(|u| u.iter())) {
        out.extend(word.to_le_bytes());
    }
    for x in &g.vectors {
        x.put(&mut out);
    }
    out
}

/// Reads what [`save`] wrote for `dim`-dimensional vectors of `E`.
pub(super) fn restore<E: Element>(dim: usize, bytes: &[u8]) -> Result<Layers<E>> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("it is not a saved graph of this kind"));
    }
    let element = usize::from(r.u8()?);
    if element != E::BYTES {
        return Err(corrupt(format!(
            "it holds {element}-byte elements, the setting asks for {}",
            E::BYTES
        )));
    }
    let [saved_dim, m, ef_construction, n, entry, max_level] = [(); 6].map(|_| r.u32());
    let (saved_dim, m, n) = (saved_dim? as usize, m? as usize, n? as usize);
    let (ef_construction, entry, max_level) = (ef_construction? as usize, entry?, max_level?);
    if saved_dim != dim {
        return Err(corrupt(format!(
            "it holds {saved_dim}-dimensional vectors, not {dim}"
        )));
    }
    if !(1..=1024).contains(&m) || max_level as usize > MAX_LEVEL {
        return Err(corrupt("its links per node or its levels are out of range"));
    }
    let mut g = Layers::new(dim, m, ef_construction, 0);
    // Every slot needs at least its 6 bytes here: bound `n` before reserving.
    if n > r.left() / 6 {
        return Err(corrupt("it names more slots than it holds"));
    }
    g.reserve(n);
    let mut levels = Vec::with_capacity(n);
    for slot in 0..n as u32 {
        let key = r.u32()?;
        let level = usize::from(r.u8()?);
        let dead = r.u8()?;
        if level > max_level as usize || dead > 1 {
            return Err(corrupt(format!("slot {slot} has a bad level or state")));
        }
        g.keys.push(key);
        levels.push(level);
        if dead == 1 {
            g.dead.insert(slot);
        } else if g.slots.insert(key, slot).is_some() {
            return Err(corrupt(format!("key {key} is live twice")));
        }
    }
    g.links0 = r.words(n * g.stride0())?;
    for (slot, level) in levels.iter().enumerate() {
        g.upper
            .push(r.words(level * g.stride_upper())?.into_boxed_slice());
        check_rows(&g.upper[slot], m, n)?;
    }
    check_rows(&g.links0, 2 * m, n)?;
    let width = E::BYTES;
    let raw = r.take(n * dim * width)?;
    g.vectors = raw.chunks_exact(width).map(E::get).collect();
    if r.left() != 0 {
        return Err(corrupt("it has bytes after its vectors"));
    }
    g.entry = match entry {
        NO_ENTRY if n == 0 => None,
        e if (e as usize) < n && levels[e as usize] == max_level as usize => Some(e),
        _ => return Err(corrupt("its entry point is not its top node")),
    };
    g.max_level = max_level as usize;
    Ok(g)
}

/// Checks rows of `1 + cap` words: a count up to `cap`, then slots below `n`.
fn check_rows(words: &[u32], cap: usize, n: usize) -> Result<()> {
    for row in words.chunks_exact(1 + cap) {
        let count = row[0] as usize;
        if count > cap || row[1..1 + count].iter().any(|&s| s as usize >= n) {
            return Err(corrupt("a link row is out of range"));
        }
    }
    Ok(())
}

fn corrupt(why: impl std::fmt::Display) -> IndexError {
    IndexError::CorruptSnapshot(format!("saved graph: {why}"))
}

/// A cursor over the saved bytes; running out is an error, never a panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(corrupt("it ends early"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn words(&mut self, n: usize) -> Result<Vec<u32>> {
        let raw = self.take(n.checked_mul(4).ok_or_else(|| corrupt("it is too large"))?)?;
        Ok(raw
            .chunks_exact(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;

    fn graph() -> Layers<f16> {
        let mut g = Layers::new(4, 4, 16, 0);
        for key in 0..200u32 {
            let v: Vec<f16> = (0..4)
                .map(|i| f16::from_f32(((key * 7 + i * 3) % 11) as f32 - 5.0))
                .collect();
            g.insert(key, &v);
        }
        g.remove(17);
        g
    }

    #[test]
    fn a_saved_graph_restores_as_it_was() {
        let g = graph();
        let back: Layers<f16> = restore(4, &save(&g)).unwrap();
        assert_eq!(back.keys, g.keys);
        assert_eq!(back.links0, g.links0);
        assert_eq!(back.upper, g.upper);
        assert_eq!(back.vectors, g.vectors);
        assert_eq!(back.dead, g.dead);
        assert_eq!(back.slots, g.slots);
        assert_eq!((back.entry, back.max_level), (g.entry, g.max_level));
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let bytes = save(&graph());
        for cut in [0, 5, HEADER, HEADER + 7, bytes.len() - 1] {
            assert!(restore::<f16>(4, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(restore::<f32>(4, &bytes).is_err(), "another element");
        assert!(restore::<f16>(8, &bytes).is_err(), "another dimension");
        // Flip each byte of the header and of the first link rows.
        for at in 0..HEADER + 200 * 6 + 64 {
            let mut bad = bytes.clone();
            bad[at] ^= 0xff;
            let _ = restore::<f16>(4, &bad);
        }
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(restore::<f16>(4, &extra).is_err(), "trailing bytes");
    }
}
