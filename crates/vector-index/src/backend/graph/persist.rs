//! The saved forms of a graph (docs/storage.md, "Our graph"): a header, each
//! slot's key, level and liveness, the link rows, then the vectors as they
//! are held, so a restore rebuilds nothing; or, for a caller whose records
//! hold the vectors, a fingerprint of each instead ([`VectorFree`]). A
//! restore checks every count, level and link against the header before it
//! trusts them.

use half::f16;
use roaring::RoaringBitmap;
use xxhash_rust::xxh3::xxh3_64;

use super::element::Element;
use super::layers::{Layers, MAX_LEVEL};
use crate::Key;
use crate::backend::saved::Reader;
use crate::error::{IndexError, Result};

/// First bytes of a saved graph.
const MAGIC: &[u8; 8] = b"AOGRAPH1";
/// First bytes of a graph saved without its live vectors.
const VECTOR_FREE_MAGIC: &[u8; 8] = b"AOGRNOV1";
/// Header after the magic: element bytes, then six u32s.
const HEADER: usize = MAGIC.len() + 1 + 6 * 4;
/// `entry` of an empty graph.
const NO_ENTRY: u32 = u32::MAX;

/// The bytes of `g`.
pub(super) fn save<E: Element>(g: &Layers<E>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + g.links0.len() * 4 + g.vectors.len() * E::BYTES);
    out.extend_from_slice(MAGIC);
    put_middle(g, &mut out);
    for x in &g.vectors {
        x.put(&mut out);
    }
    out
}

/// The bytes of `g` with each live slot's vector replaced by a fingerprint
/// (xxh3-64 of its bytes), for a caller whose records hold those vectors;
/// removed slots, which no record holds, keep theirs (after the fingerprints).
pub(super) fn save_without_vectors<E: Element>(g: &Layers<E>) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + g.links0.len() * 4 + g.slot_count() * 8);
    out.extend_from_slice(VECTOR_FREE_MAGIC);
    put_middle(g, &mut out);
    let mut bytes = Vec::with_capacity(g.dim * E::BYTES);
    for slot in 0..g.slot_count() as u32 {
        bytes.clear();
        g.vector(slot).iter().for_each(|x| x.put(&mut bytes));
        out.extend(xxh3_64(&bytes).to_le_bytes());
    }
    for slot in &g.dead {
        g.vector(slot).iter().for_each(|x| x.put(&mut out));
    }
    out
}

/// Everything between the magic and the vectors: header, slot table, links.
fn put_middle<E: Element>(g: &Layers<E>, out: &mut Vec<u8>) {
    let n = g.slot_count();
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
}

/// The graph without its vectors, as read and checked from the bytes after
/// the magic; `links` is where the vectors (or fingerprints) begin.
struct Middle<E> {
    layers: Layers<E>,
    /// Bytes per element the graph was saved with.
    element: usize,
    /// Offset just past the link rows, from the start of the saved bytes.
    end: usize,
}

/// Reads the header, slot table and link rows of a graph of `dim`-wide
/// vectors saved behind `magic`; every count, level and link is checked.
fn read_middle<E: Element>(bytes: &[u8], magic: &[u8; 8], dim: usize) -> Result<Middle<E>> {
    let mut r = Reader(bytes);
    if r.take(magic.len())? != magic {
        return Err(corrupt("it is not a saved graph of this kind"));
    }
    let element = usize::from(r.u8()?);
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
    check_rows(&g.links0, 2 * m, n)?;
    for level in &levels {
        let upper = r.words(level * g.stride_upper())?;
        check_rows(&upper, m, n)?;
        g.upper.push(upper.into_boxed_slice());
    }
    g.entry = match entry {
        NO_ENTRY if n == 0 => None,
        e if (e as usize) < n && levels[e as usize] == max_level as usize => Some(e),
        _ => return Err(corrupt("its entry point is not its top node")),
    };
    g.max_level = max_level as usize;
    Ok(Middle {
        layers: g,
        element,
        end: bytes.len() - r.left(),
    })
}

/// Reads what [`save`] wrote for `dim`-dimensional vectors of `E`.
pub(super) fn restore<E: Element>(dim: usize, bytes: &[u8]) -> Result<Layers<E>> {
    let Middle {
        layers: mut g,
        element,
        end,
    } = read_middle::<E>(bytes, MAGIC, dim)?;
    if element != E::BYTES {
        return Err(corrupt(format!(
            "it holds {element}-byte elements, the setting asks for {}",
            E::BYTES
        )));
    }
    let mut r = Reader(&bytes[end..]);
    let raw = r.take(g.slot_count() * dim * E::BYTES)?;
    g.vectors = raw.chunks_exact(E::BYTES).map(E::get).collect();
    if r.left() != 0 {
        return Err(corrupt("it has bytes after its vectors"));
    }
    Ok(g)
}

/// A graph saved by [`save_without_vectors`], taking its live vectors back
/// from the records: a slot takes the vector whose bytes match its
/// fingerprint; one nobody fills stays zero (its point is written again
/// or deleted when the index is reconciled with the records).
pub(crate) struct VectorFree<'a> {
    /// The saved bytes from the header up to the fingerprints.
    middle: &'a [u8],
    fingerprints: &'a [u8],
    element: usize,
    dim: usize,
    slot_of: hashbrown::HashMap<Key, u32>,
    /// Every slot's vector bytes: removed slots' from the saved bytes.
    matrix: Vec<u8>,
    filled: RoaringBitmap,
}

impl<'a> VectorFree<'a> {
    /// Reads a graph saved without its vectors at `element` bytes per
    /// element; `None` when `bytes` is not one.
    pub(crate) fn parse(bytes: &'a [u8], dim: usize, element: usize) -> Result<Option<Self>> {
        if !bytes.starts_with(VECTOR_FREE_MAGIC) {
            return Ok(None);
        }
        // The element type only sizes nothing here: the links are read as words.
        let Middle {
            layers,
            element: saved,
            end,
        } = read_middle::<f32>(bytes, VECTOR_FREE_MAGIC, dim)?;
        if saved != element {
            return Err(corrupt(format!(
                "it holds {saved}-byte elements, the setting asks for {element}"
            )));
        }
        let n = layers.slot_count();
        let width = dim * element;
        let mut r = Reader(&bytes[end..]);
        let fingerprints = r.take(n * 8)?;
        let mut matrix = vec![0; n * width];
        for slot in &layers.dead {
            let at = slot as usize * width;
            matrix[at..at + width].copy_from_slice(r.take(width)?);
        }
        if r.left() != 0 {
            return Err(corrupt("it has bytes after its removed vectors"));
        }
        Ok(Some(Self {
            middle: &bytes[MAGIC.len()..end],
            fingerprints,
            element,
            dim,
            slot_of: layers.slots,
            matrix,
            filled: RoaringBitmap::new(),
        }))
    }

    /// Gives `key` its unit-length `vector` back if it is the one the graph
    /// was saved with; returns whether it was.
    pub(crate) fn fill(&mut self, key: Key, vector: &[f32]) -> bool {
        let Some(&slot) = self.slot_of.get(&key) else {
            return false;
        };
        if vector.len() != self.dim {
            return false;
        }
        let mut bytes = Vec::with_capacity(self.dim * self.element);
        match self.element {
            2 => vector
                .iter()
                .for_each(|x| f16::from_f32(*x).put(&mut bytes)),
            _ => vector.iter().for_each(|x| x.put(&mut bytes)),
        }
        let at = slot as usize;
        if xxh3_64(&bytes).to_le_bytes() != self.fingerprints[at * 8..at * 8 + 8] {
            return false;
        }
        let width = bytes.len();
        self.matrix[at * width..(at + 1) * width].copy_from_slice(&bytes);
        self.filled.insert(slot);
        true
    }

    /// Live slots given their vector back.
    pub(crate) fn filled(&self) -> usize {
        self.filled.len() as usize
    }

    /// The graph's whole saved form, for [`restore`].
    pub(crate) fn into_saved(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAGIC.len() + self.middle.len() + self.matrix.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(self.middle);
        out.extend(self.matrix);
        out
    }
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

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;
    use crate::backend::graph::layers;

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
    fn a_graph_saved_without_vectors_and_filled_again_is_the_graph_saved_with_them() {
        let g = graph();
        let free = save_without_vectors(&g);
        // Each live vector's bytes become 8 of fingerprint; removed ones stay.
        let (n, dead, width) = (g.slot_count(), g.dead.len() as usize, 4 * 2);
        assert_eq!(
            free.len(),
            save(&g).len() - n * width + n * 8 + dead * width
        );
        assert!(
            VectorFree::parse(&save(&g), 4, 2).unwrap().is_none(),
            "saved whole"
        );
        let mut v = VectorFree::parse(&free, 4, 2).unwrap().unwrap();
        // A vector it was not saved with, or an unknown or removed key, is refused.
        assert!(!v.fill(3, &[1.0, 0.0, 0.0, 0.0]));
        assert!(!v.fill(17, &layers::widen(g.vector(17))));
        assert!(!v.fill(999, &[1.0, 0.0, 0.0, 0.0]));
        for (key, slot) in &g.slots {
            assert!(v.fill(*key, &layers::widen(g.vector(*slot))));
        }
        assert_eq!(v.filled(), g.len());
        assert_eq!(v.into_saved(), save(&g));
        assert!(VectorFree::parse(&free, 4, 4).is_err(), "another element");
        for cut in [9, HEADER, HEADER + 7, free.len() - 1] {
            assert!(
                VectorFree::parse(&free[..cut], 4, 2).is_err(),
                "cut at {cut}"
            );
        }
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
