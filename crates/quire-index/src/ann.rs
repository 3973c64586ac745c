//! Vector search over the frozen graph, with an allowed-set filter inside the search.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::OnceLock;

use crate::distance::{dot, dot_distance, dot_distances, dots, prefetch_row};
use crate::graph::FrozenGraph;
pub use crate::vectors::{HalfVectors, Vectors};

/// The chunks a reader may read: a bitset plus, for small sets, the sorted list of ordinals.
#[derive(Clone, Debug)]
pub struct Allowed {
    bits: Vec<u64>,
    count: usize,
    total: usize,
    /// A sum over the set computed once and kept with it, so the allowed-set cache keeps it
    /// too: BM25's token total of the allowed chunks ([`Self::sum_once`]).
    sum: OnceLock<u64>,
}

/// Sets are equal when they hold the same ordinals, whether or not their sum is computed yet.
impl PartialEq for Allowed {
    fn eq(&self, other: &Self) -> bool {
        (self.total, self.count, &self.bits) == (other.total, other.count, &other.bits)
    }
}

impl Eq for Allowed {}

impl Allowed {
    /// The set of ordinals `0..total` for which `admit` holds.
    pub fn from_fn(total: usize, mut admit: impl FnMut(u32) -> bool) -> Self {
        let mut bits = vec![0u64; total.div_ceil(64)];
        let mut count = 0;
        for i in 0..total as u32 {
            if admit(i) {
                bits[i as usize / 64] |= 1 << (i % 64);
                count += 1;
            }
        }
        Self {
            bits,
            count,
            total,
            sum: OnceLock::new(),
        }
    }

    /// `weights` summed over the allowed ordinals, computed on the first call and kept: every
    /// later call returns that first sum, so one set must always be given the same weights.
    pub fn sum_once(&self, weights: &[u32]) -> u64 {
        *self.sum.get_or_init(|| {
            self.iter()
                .map(|i| u64::from(weights.get(i as usize).copied().unwrap_or(0)))
                .sum()
        })
    }

    /// The bytes the set takes on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.bits.len() * size_of::<u64>()
    }

    /// Whether ordinal `i` is allowed.
    #[inline]
    pub fn contains(&self, i: u32) -> bool {
        self.bits
            .get(i as usize / 64)
            .is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    /// How many ordinals are allowed.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Allowed fraction of all chunks.
    pub fn selectivity(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.count as f64 / self.total as f64
        }
    }

    /// The allowed ordinals, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.bits.iter().enumerate().flat_map(|(w, &word)| {
            let mut word = word;
            std::iter::from_fn(move || {
                (word != 0).then(|| {
                    let bit = word.trailing_zeros();
                    word &= word - 1;
                    w as u32 * 64 + bit
                })
            })
        })
    }
}

/// Order results by similarity descending, then ordinal ascending.
fn finish(mut hits: Vec<(u32, f32)>, k: usize) -> Vec<(u32, f32)> {
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

/// Exact top-`k` by dot product over the allowed rows: (ordinal, similarity).
///
/// Rows go through in blocks: each block's rows are prefetched, their dot products computed
/// four at a time, then offered to the heap in ordinal order (the result is that of one row at
/// a time).
pub fn exact(
    vectors: Vectors<'_>,
    query: &[f32],
    allowed: Option<&Allowed>,
    k: usize,
) -> Vec<(u32, f32)> {
    const BLOCK: usize = 64;
    // Max-heap on (distance, ordinal) keeps the k best; ties resolve to the lower ordinal.
    let mut heap: BinaryHeap<(OrdF32, u32)> = BinaryHeap::with_capacity(k + 1);
    let (mut block, mut sims) = (Vec::with_capacity(BLOCK), Vec::with_capacity(BLOCK));
    let mut flush = |block: &mut Vec<u32>| {
        // Consecutive rows stream through the hardware prefetcher; software prefetches there
        // only cost (about 5-10% of a full scan of 100k x 256). Scattered rows need them.
        let consecutive = match (block.first(), block.last()) {
            (Some(&first), Some(&last)) => (last - first) as usize + 1 == block.len(),
            _ => true,
        };
        if !consecutive {
            block.iter().for_each(|&i| prefetch_row(vectors, i));
        }
        dots(query, vectors, block, &mut sims);
        for (&i, &sim) in block.iter().zip(&sims) {
            let d = OrdF32(1.0 - sim);
            if heap.len() < k {
                heap.push((d, i));
            } else if let Some(&worst) = heap.peek()
                && (d, i) < worst
            {
                heap.pop();
                heap.push((d, i));
            }
        }
        block.clear();
    };
    let mut consider = |i: u32| {
        block.push(i);
        if block.len() == BLOCK {
            flush(&mut block);
        }
    };
    match allowed {
        Some(a) => a.iter().for_each(&mut consider),
        None => (0..vectors.len() as u32).for_each(&mut consider),
    }
    flush(&mut block);
    finish(
        heap.into_iter()
            .map(|(_, i)| (i, dot(query, vectors.row(i))))
            .collect(),
        k,
    )
}

/// A float with a total order, for heaps.
#[derive(Clone, Copy, Debug, PartialEq)]
struct OrdF32(f32);

impl Eq for OrdF32 {}
impl PartialOrd for OrdF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for OrdF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Visited marks that reset in O(1): a node is visited when its mark equals the generation.
#[derive(Default)]
struct Visited {
    marks: Vec<u32>,
    generation: u32,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Mark `i`; true when it was not marked before.
    #[inline]
    fn insert(&mut self, i: u32) -> bool {
        let slot = &mut self.marks[i as usize];
        let fresh = *slot != self.generation;
        *slot = self.generation;
        fresh
    }
}

/// A candidate as one sortable word, the distance's bits above the node id: distances are never
/// negative, so comparing words compares (distance, id), the order every tie follows.
type Key = u64;

#[inline]
fn key(distance: f32, id: u32) -> Key {
    (u64::from((distance + 0.0).to_bits()) << 32) | u64::from(id)
}

#[inline]
fn dist_of(key: Key) -> f32 {
    f32::from_bits((key >> 32) as u32)
}

/// Per-thread search state, reused across queries: visited marks and the buffers of the beam.
#[derive(Default)]
struct Scratch {
    visited: Visited,
    candidates: BinaryHeap<Reverse<Key>>,
    results: BinaryHeap<Key>,
    fresh: Vec<u32>,
    dists: Vec<f32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// HNSW beam search: greedy descent through the upper layers, then a beam of width `ef` on
/// layer 0. With a filter, every node still guides the search but only allowed nodes enter the
/// results, so a restrictive filter widens the search instead of starving it.
///
/// A node's unvisited neighbours are gathered first, their rows prefetched, and their distances
/// computed four at a time; the beam then takes them in list order, so the result is what a
/// one-at-a-time walk gives.
pub fn search(
    graph: &FrozenGraph,
    vectors: Vectors<'_>,
    query: &[f32],
    k: usize,
    ef: usize,
    allowed: Option<&Allowed>,
) -> Vec<(u32, f32)> {
    if graph.is_empty() || k == 0 {
        return Vec::new();
    }
    let ef = ef.max(k);
    SCRATCH.with(|cell| {
        let s = &mut *cell.borrow_mut();
        let entry = descend(graph, vectors, query, &mut s.dists);
        beam(s, graph, vectors, query, ef, allowed, entry);
        let mut best: Vec<Key> = s.results.drain().collect();
        best.sort_unstable();
        // Similarity falls as the distance grows, so the best `k` by similarity are among the
        // nodes no farther than the k-th; only those need their dot product.
        let cutoff = best.get(k - 1).map_or(f32::INFINITY, |&kth| dist_of(kth));
        finish(
            best.iter()
                .take_while(|&&b| dist_of(b) <= cutoff)
                .map(|&b| (b as u32, dot(query, vectors.row(b as u32))))
                .collect(),
            k,
        )
    })
}

/// Greedy descent from the entry point through the upper layers: the layer-0 entry, as a key.
fn descend(graph: &FrozenGraph, vectors: Vectors<'_>, query: &[f32], dists: &mut Vec<f32>) -> Key {
    let ep = graph.entry_point;
    let mut best = key(dot_distance(query, vectors.row(ep)), ep);
    for layer in graph.layers.iter().skip(1).rev() {
        loop {
            let before = best;
            let list = layer.neighbours_of(before as u32);
            dot_distances(query, vectors, list, dists);
            for (&nb, &d) in list.iter().zip(dists.iter()) {
                best = best.min(key(d, nb));
            }
            if best == before {
                break;
            }
        }
    }
    best
}

/// The beam of width `ef` on layer 0 from `entry`; leaves the best `ef` allowed nodes in
/// `s.results`.
fn beam(
    s: &mut Scratch,
    graph: &FrozenGraph,
    vectors: Vectors<'_>,
    query: &[f32],
    ef: usize,
    allowed: Option<&Allowed>,
    entry: Key,
) {
    let admitted = |i: u32| allowed.is_none_or(|a| a.contains(i));
    s.visited.reset(graph.len());
    s.candidates.clear();
    s.results.clear();
    s.visited.insert(entry as u32);
    s.candidates.push(Reverse(entry));
    if admitted(entry as u32) {
        s.results.push(entry);
    }
    let layer0 = &graph.layers[0];
    while let Some(Reverse(nearest)) = s.candidates.pop() {
        if s.results.len() >= ef && s.results.peek().is_some_and(|&worst| nearest > worst) {
            break;
        }
        if let Some(Reverse(next)) = s.candidates.peek() {
            // Most often the next node to expand: fetch its list while this one computes.
            layer0.prefetch_at(*next as u32 as usize);
        }
        s.fresh.clear();
        for &nb in layer0.neighbours_at(nearest as u32 as usize) {
            if s.visited.insert(nb) {
                s.fresh.push(nb);
                prefetch_row(vectors, nb);
            }
        }
        dot_distances(query, vectors, &s.fresh, &mut s.dists);
        for (&nb, &d) in s.fresh.iter().zip(&s.dists) {
            let kn = key(d, nb);
            if s.results.len() < ef || s.results.peek().is_some_and(|&worst| kn < worst) {
                s.candidates.push(Reverse(kn));
                if admitted(nb) {
                    s.results.push(kn);
                    if s.results.len() > ef {
                        s.results.pop();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::DotDistance;
    use hnsw_rs::hnsw::Hnsw;

    fn data(n: usize, dim: usize) -> Vec<f32> {
        let mut state = 42u64;
        let mut out = Vec::with_capacity(n * dim);
        for i in 0..n {
            let centre = (i % 10) as f32;
            let mut v: Vec<f32> = (0..dim)
                .map(|j| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let noise = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                    if j % 10 == centre as usize {
                        2.0 + noise
                    } else {
                        noise
                    }
                })
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter_mut().for_each(|x| *x /= norm);
            out.extend(v);
        }
        out
    }

    #[test]
    fn graph_search_matches_exact_search_with_and_without_filters() {
        let (n, dim) = (2000, 32);
        let flat = data(n, dim);
        let vectors = Vectors::new(&flat, dim);
        let hnsw = Hnsw::<f32, DotDistance>::new(16, n, 16, 100, DotDistance);
        for i in 0..n {
            hnsw.insert_slice((vectors.row(i as u32), i));
        }
        let graph = FrozenGraph::from_hnsw(&hnsw, n).unwrap_or_default();
        for (modulus, min_recall) in [(1u32, 0.95), (10, 0.95), (100, 0.95)] {
            let allowed = Allowed::from_fn(n, |i| i % modulus == 0);
            let (mut found, mut wanted) = (0, 0);
            for q in (0..n as u32).step_by(97) {
                let query = vectors.row(q);
                let truth = exact(vectors, query, Some(&allowed), 10);
                let got = search(
                    &graph,
                    vectors,
                    query,
                    10,
                    64 * modulus as usize,
                    Some(&allowed),
                );
                assert!(got.iter().all(|&(i, _)| allowed.contains(i)));
                found += got
                    .iter()
                    .filter(|g| truth.iter().any(|t| t.0 == g.0))
                    .count();
                wanted += truth.len();
            }
            let recall = found as f64 / wanted as f64;
            assert!(
                recall >= min_recall,
                "recall {recall} with 1/{modulus} allowed"
            );
        }
    }

    #[test]
    fn allowed_set_iterates_in_order() {
        let a = Allowed::from_fn(200, |i| i % 7 == 3);
        assert_eq!(
            a.iter().collect::<Vec<_>>(),
            (0..200).filter(|i| i % 7 == 3).collect::<Vec<_>>()
        );
        assert_eq!(a.count(), a.iter().count());
        assert!(a.contains(3) && !a.contains(4) && !a.contains(10_000));
    }
}
