//! Renumbering a graph's slots so that what one walk reads sits together.
//!
//! Slots are numbered as points arrive, so a node's neighbours lie anywhere
//! in the vectors, the codes and the link rows, and nearly every node a walk
//! scores is a fetch from memory. Numbered in the order a breadth-first walk
//! from the entry point meets them over level 0 (each node's links in the
//! order it keeps them, nearest first), most of a node's neighbours sit a few
//! hundred slots from it, and a walk's reads share pages, the TLB and, more
//! often, the cache (docs/benchmarks.md, "Slots in walk order").
//!
//! It is the same graph under new numbers: every link, level, key, vector,
//! code and tombstone moves with its node, so a search finds the same keys
//! with the same scores (an exact tie may break the other way, as ties are
//! broken by slot). Slots the walk from the entry never reaches (cut off by
//! removals) follow, each such part walked from its lowest slot.

use std::collections::VecDeque;

use super::element::Element;
use super::layers::Layers;

/// Graphs smaller than this are never renumbered: their vectors fit in the
/// cache of any server this runs on, in whatever order.
pub(super) const MIN_SLOTS: usize = 8192;

/// `g` in walk order if it is big enough to outgrow a cache, else as it is:
/// what a rebuild and a restore do with the graph they make.
pub(super) fn walk_ordered<E: Element>(g: Layers<E>) -> Layers<E> {
    if g.slot_count() >= MIN_SLOTS {
        renumbered(&g)
    } else {
        g
    }
}

/// The order a breadth-first walk from the entry point meets the slots in,
/// over level 0, then the slots it never meets: `order[new] = old`.
fn walk_order<E: Element>(g: &Layers<E>) -> Vec<u32> {
    let n = g.slot_count();
    let mut order = Vec::with_capacity(n);
    let mut met = vec![false; n];
    let mut queue = VecDeque::new();
    // Upper-level nodes first would not help: they are few, and each is met
    // early from the entry point anyway.
    let starts = g.entry.into_iter().chain(0..n as u32);
    for start in starts {
        if std::mem::replace(&mut met[start as usize], true) {
            continue;
        }
        queue.push_back(start);
        while let Some(slot) = queue.pop_front() {
            order.push(slot);
            for &link in g.links(slot, 0) {
                if !std::mem::replace(&mut met[link as usize], true) {
                    queue.push_back(link);
                }
            }
        }
    }
    order
}

/// `g` with its slots in walk order (see the module's docs), whatever its size.
pub(super) fn renumbered<E: Element>(g: &Layers<E>) -> Layers<E> {
    let order = walk_order(g);
    let mut new_of = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        new_of[old as usize] = new as u32;
    }
    // A row is a count, then that many links, then unused words (zeros):
    // copied with its links renumbered.
    let map = |row: &[u32], into: &mut [u32]| {
        let count = row[0] as usize;
        into[0] = row[0];
        for (o, &old) in into[1..=count].iter_mut().zip(&row[1..=count]) {
            *o = new_of[old as usize];
        }
    };
    // Room for an eighth more before the arrays first grow.
    let room = order.len() + order.len() / 8;
    let mut out = g.empty_like(room);
    let stride = g.stride0();
    out.links0.resize(order.len() * stride, 0);
    out.slots.reserve(g.len());
    for (new, (&old, into)) in order
        .iter()
        .zip(out.links0.chunks_exact_mut(stride))
        .enumerate()
    {
        let old_at = old as usize * stride;
        map(&g.links0[old_at..old_at + stride], into);
        let mut upper = vec![0; g.upper[old as usize].len()].into_boxed_slice();
        for (row, into) in g.upper[old as usize]
            .chunks_exact(g.stride_upper())
            .zip(upper.chunks_exact_mut(g.stride_upper()))
        {
            map(row, into);
        }
        out.upper.push(upper);
        out.vectors.extend_from_slice(g.vector(old));
        let key = g.keys[old as usize];
        out.keys.push(key);
        if !g.dead.contains(old) {
            out.slots.insert(key, new as u32);
        }
    }
    out.dead = g.dead.iter().map(|s| new_of[s as usize]).collect();
    out.entry = g.entry.map(|e| new_of[e as usize]);
    out.max_level = g.max_level;
    out.codes = g.codes.as_ref().map(|c| c.permuted(&order, room));
    out
}

#[cfg(test)]
mod tests {
    use half::f16;

    use super::*;
    use crate::Key;
    use crate::synthetic::clustered_units;

    fn graph(n: usize, dim: usize, encoded: bool) -> Layers<f16> {
        let mut g = Layers::<f16>::new(dim, 8, 32, n);
        if encoded {
            g.encode();
        }
        for (key, v) in clustered_units(n, dim, 30, 0.4, 3).iter().enumerate() {
            let v: Vec<f16> = v.iter().map(|x| f16::from_f32(*x)).collect();
            g.insert(key as Key * 3, &v);
        }
        g
    }

    /// The share of level-0 links between slots at most 32 apart: those
    /// whose vectors sit within 24 KiB of each other at f16.
    fn near_links(g: &Layers<f16>) -> f64 {
        let (mut near, mut links) = (0usize, 0usize);
        for slot in 0..g.slot_count() as u32 {
            for &n in g.links(slot, 0) {
                near += usize::from(slot.abs_diff(n) <= 32);
                links += 1;
            }
        }
        near as f64 / links as f64
    }

    #[test]
    fn a_renumbered_graph_is_the_same_graph_with_neighbours_closer_together() {
        for encoded in [false, true] {
            let mut g = graph(3000, 32, encoded);
            for key in (0..600u32).map(|k| k * 3) {
                g.remove(key);
            }
            let r = renumbered(&g);
            assert_eq!(r.slot_count(), g.slot_count());
            assert_eq!(r.entry, Some(0), "the walk starts at the entry");
            assert_eq!((r.len(), r.dead.len()), (g.len(), g.dead.len()));
            assert_eq!(r.encoded(), encoded);
            // Each node keeps its key, vector, level, liveness and links (by key).
            let of_key = |l: &Layers<f16>, key: Key| -> u32 {
                (0..l.slot_count() as u32)
                    .find(|&s| l.keys[s as usize] == key)
                    .unwrap()
            };
            for old in (0..g.slot_count() as u32).step_by(7) {
                let key = g.keys[old as usize];
                let new = of_key(&r, key);
                assert_eq!(r.vector(new), g.vector(old));
                assert_eq!(r.level(new), g.level(old));
                assert_eq!(r.dead.contains(new), g.dead.contains(old));
                for level in 0..=g.level(old) {
                    let keys = |l: &Layers<f16>, s: u32| -> Vec<Key> {
                        l.links(s, level)
                            .iter()
                            .map(|&n| l.keys[n as usize])
                            .collect()
                    };
                    assert_eq!(keys(&r, new), keys(&g, old), "key {key}, level {level}");
                }
            }
            let entry_key = |l: &Layers<f16>| l.keys[l.entry.unwrap() as usize];
            assert_eq!(entry_key(&r), entry_key(&g));
            // Searches find the same keys with the same scores.
            for q in clustered_units(40, 32, 30, 0.4, 9) {
                let keys = |l: &Layers<f16>| -> Vec<(Key, f32)> {
                    l.search(&q, 10, 48, &|_| true)
                        .iter()
                        .map(|n| (l.keys[n.slot as usize], n.score))
                        .collect()
                };
                assert_eq!(keys(&r), keys(&g));
            }
            // Neighbours in arrival order are rarely near each other; in
            // walk order, a node's unmet links are met together.
            let (before, after) = (near_links(&g), near_links(&r));
            assert!(
                after > 3.0 * before,
                "{before:.3} of links near, then {after:.3}"
            );
        }
    }

    #[test]
    fn a_renumbered_graph_takes_inserts_and_removals_as_before() {
        let mut r = renumbered(&graph(500, 16, true));
        let v: Vec<f16> = clustered_units(1, 16, 1, 0.4, 77)[0]
            .iter()
            .map(|x| f16::from_f32(*x))
            .collect();
        // There is room for the next eighth: an insert moves no array.
        let held = r.bytes();
        r.insert(1, &v);
        assert_eq!(r.bytes(), held);
        let q: Vec<f32> = v.iter().map(|x| x.to_f32()).collect();
        let top = r.search(&q, 1, 32, &|_| true);
        assert_eq!(r.keys[top[0].slot as usize], 1);
        assert!(r.remove(1));
        let top = r.search(&q, 1, 32, &|_| true);
        assert_ne!(r.keys[top[0].slot as usize], 1);
    }
}
