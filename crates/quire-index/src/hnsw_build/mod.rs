//! quire's own HNSW builder: parallel, and deterministic for any thread count.
//!
//! # Algorithm
//!
//! The graph is the one of Malkov & Yashunin's HNSW: every node gets a top level, `P(level >= l) =
//! m^-l`; layer `l` links the nodes whose level is at least `l`, with at most `m` neighbours per
//! node on upper layers and `2 m` on layer 0 (as hnswlib keeps). A node is inserted by greedy
//! descent from the entry point down to its own level, then a beam search of width
//! `ef_construction` on each of its layers, keeping `m` neighbours chosen by the paper's
//! heuristic (algorithm 4, keeping pruned connections to fill the list: see [`search::select`]).
//! Each chosen neighbour links back; when that overfills its list, the list is re-chosen by the
//! same heuristic.
//!
//! Insertion is parallel the way ParlayANN builds its graphs (Manohar et al., PPoPP 2024): nodes
//! go in by ordinal in batches of sizes 1, 1, 2, 4, ... (prefix doubling) up to
//! [`max_batch`]`(n)`. Within a batch:
//!
//! 1. every new node searches the graph **as it stood before the batch**, in parallel, and
//!    chooses its forward neighbours (the graph is only read, so the order in which threads run
//!    cannot matter);
//! 2. the reverse edges are collected, sorted by (layer, target, distance, source) and grouped
//!    per target, and each target's new list is computed in parallel from its old list and its
//!    sorted group alone;
//! 3. the new lists are written in that sorted order, then the batch's forward lists.
//!
//! # Why the output is deterministic
//!
//! Every value computed in a batch is a function of the graph before the batch and of fixed
//! inputs, never of scheduling: searches read an immutable graph, results are collected in
//! input order, and all ordering compares `(distance, id)` keys, so ties resolve by id. Levels
//! come from a seeded hash of the ordinal (integer thresholds, no floating-point logarithm);
//! batch boundaries depend only on `n`; distances are [`half_distance`], the fixed-order dot
//! product of the query-time search over the rows rounded to binary16 (exact conversions, so
//! every CPU path gives the same bits).
//!
//! # Why binary16
//!
//! Construction is bound by memory: most of its time goes to loading the rows of the nodes a
//! beam search visits, which at 1M rows of 256 floats are in DRAM. Rounding the rows to
//! binary16 for the build halves those loads; the graph only needs the neighbour order, which
//! the rounding (relative error 2^-11 per value) rarely changes. Searches of the finished graph
//! use the f32 rows. The recall tests against hnsw_rs hold with it; at 300k synthetic rows the build took 13% less time. Per-thread scratch (visited marks, heaps) is reset before
//! each use and never read across searches. Hence the same vectors and parameters give the
//! same bytes for any `RAYON_NUM_THREADS`, on every run.

mod search;
#[cfg(test)]
mod tests;

use rayon::prelude::*;

use crate::ann::{HalfVectors, Vectors};
use crate::distance::{half_distance, half_distances, prefetch_half_row};
use crate::error::{IndexError, Result};
use crate::graph::{FrozenGraph, Layer};
use search::{greedy, select, with_scratch};

/// Version of the algorithm: bump it whenever the graph this module builds from the same input
/// can change, so a graph built by one version is never mistaken for another's.
pub const BUILDER_VERSION: u32 = 2;

/// Seed of the level hash ("quire lv").
const LEVEL_SEED: u64 = 0x7175_6972_6520_6c76;
/// Highest level a node can get; the file stores levels as bytes, and at `m = 2` a level of 24
/// already needs 16M nodes to be likely.
const MAX_LEVEL: u8 = 24;

/// HNSW build parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HnswParams {
    /// Neighbours per node on upper layers; layer 0 keeps up to `2 m`.
    pub m: usize,
    /// Beam width of the construction searches.
    pub ef_construction: usize,
}

/// A candidate as one sortable word: the distance's bits above the node id. Distances are never
/// negative (the kernel clamps at 0, and `+ 0.0` turns `-0.0` into `0.0`), so comparing the
/// words compares distances first and ids second, which is the tie rule everywhere.
pub(crate) type Key = u64;

#[inline]
fn key(distance: f32, id: u32) -> Key {
    (u64::from((distance + 0.0).to_bits()) << 32) | u64::from(id)
}

#[inline]
fn id_of(key: Key) -> u32 {
    key as u32
}

#[inline]
fn dist_of(key: Key) -> f32 {
    f32::from_bits((key >> 32) as u32)
}

/// The largest insertion batch for `n` nodes: 1% of them. A batch's nodes cannot see each
/// other while they search, so the batch must stay small against the graph; 1% keeps two to
/// four threads busy from a few thousand nodes on. It depends on `n` alone, never on threads.
pub fn max_batch(n: usize) -> usize {
    (n / 100).max(1)
}

/// The top level of node `ordinal`: `P(level >= l) = m^-l`, decided by integer thresholds on a
/// seeded hash so every machine agrees.
pub fn level_of(ordinal: u32, m: usize) -> u8 {
    let draw = u128::from(splitmix64(
        LEVEL_SEED.wrapping_add(u64::from(ordinal).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    ));
    let mut threshold = 1u128 << 64;
    let mut level = 0;
    while level < MAX_LEVEL {
        threshold /= m.max(2) as u128;
        if draw >= threshold {
            break;
        }
        level += 1;
    }
    level
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Fixed-capacity neighbour lists of one layer, in one flat array.
struct Adjacency {
    /// The layer's node ids, sorted; empty for layer 0, where slot = id.
    ids: Vec<u32>,
    cap: usize,
    lens: Vec<u32>,
    links: Vec<u32>,
}

impl Adjacency {
    fn new(ids: Vec<u32>, slots: usize, cap: usize) -> Self {
        Self {
            ids,
            cap,
            lens: vec![0; slots],
            links: vec![0; slots * cap],
        }
    }

    #[inline]
    fn slot(&self, id: u32) -> Option<usize> {
        if self.ids.is_empty() {
            Some(id as usize)
        } else {
            self.ids.binary_search(&id).ok()
        }
    }

    #[inline]
    fn at(&self, slot: usize) -> &[u32] {
        let start = slot * self.cap;
        &self.links[start..start + self.lens[slot] as usize]
    }

    #[inline]
    fn neighbours(&self, id: u32) -> &[u32] {
        self.slot(id).map_or(&[], |s| self.at(s))
    }

    /// Start loading the list of `id` (a hint; see [`crate::kernel::prefetch`]).
    #[inline]
    fn prefetch_list(&self, id: u32) {
        if let Some(first) = self.slot(id).and_then(|s| self.links.get(s * self.cap)) {
            crate::kernel::prefetch(first);
        }
    }

    fn set(&mut self, id: u32, list: &[u32]) {
        if let Some(slot) = self.slot(id) {
            let len = list.len().min(self.cap);
            let start = slot * self.cap;
            self.links[start..start + len].copy_from_slice(&list[..len]);
            self.lens[slot] = len as u32;
        }
    }
}

/// The graph while it grows.
struct Graph {
    levels: Vec<u8>,
    layers: Vec<Adjacency>,
    /// Entry point and its level, once a node is in.
    entry: Option<(u32, u8)>,
}

impl Graph {
    fn new(n: usize, m: usize) -> Self {
        let levels: Vec<u8> = (0..n as u32).map(|i| level_of(i, m)).collect();
        let top = levels.iter().copied().max().unwrap_or(0);
        let layers = (0..=top)
            .map(|l| {
                if l == 0 {
                    Adjacency::new(Vec::new(), n, 2 * m)
                } else {
                    let ids: Vec<u32> =
                        (0..n as u32).filter(|&i| levels[i as usize] >= l).collect();
                    let slots = ids.len();
                    Adjacency::new(ids, slots, m)
                }
            })
            .collect();
        Self {
            levels,
            layers,
            entry: None,
        }
    }

    fn freeze(self) -> FrozenGraph {
        let n = self.levels.len();
        let layers = self
            .layers
            .into_iter()
            .map(|adj| {
                let slots = adj.lens.len();
                let mut layer = Layer {
                    offsets: Vec::with_capacity(slots + 1),
                    ..Layer::default()
                };
                layer.offsets.push(0);
                for slot in 0..slots {
                    layer.neighbours.extend_from_slice(adj.at(slot));
                    layer.offsets.push(layer.neighbours.len() as u32);
                }
                layer.nodes = adj.ids;
                layer
            })
            .collect();
        FrozenGraph {
            levels: self.levels,
            entry_point: self.entry.map_or(0, |(id, _)| id),
            layers: if n == 0 { Vec::new() } else { layers },
        }
    }
}

/// A new node's chosen neighbours on each of its layers that the graph already has, as keys
/// relative to the node, nearest first.
type Plan = Vec<Vec<Key>>;

/// Build the HNSW graph of `vectors` (L2-normalised rows; node `i` is row `i`) on the current
/// rayon pool. `progress` hears how many nodes each finished batch inserted.
pub fn build(
    vectors: Vectors<'_>,
    params: HnswParams,
    progress: impl FnMut(u64),
) -> Result<FrozenGraph> {
    build_from_halves(&HalfVectors::from_f32(vectors), params, progress)
}

/// [`build`] from the vectors already rounded to binary16, which is all the builder reads.
pub fn build_from_halves(
    vectors: &HalfVectors,
    params: HnswParams,
    mut progress: impl FnMut(u64),
) -> Result<FrozenGraph> {
    let n = vectors.len();
    if u32::try_from(n).is_err() {
        return Err(IndexError::Invalid(format!(
            "hnsw: {n} vectors exceed the graph's u32 node ids"
        )));
    }
    if params.m < 2 || params.ef_construction < params.m {
        return Err(IndexError::Invalid(format!(
            "hnsw: m {} and ef_construction {} must satisfy 2 <= m <= ef_construction",
            params.m, params.ef_construction
        )));
    }
    let mut graph = Graph::new(n, params.m);
    let cap = max_batch(n);
    let mut start = 0;
    while start < n {
        let end = n.min(start + start.clamp(1, cap));
        insert_batch(&mut graph, vectors, params, start as u32..end as u32);
        progress((end - start) as u64);
        start = end;
    }
    Ok(graph.freeze())
}

fn insert_batch(
    graph: &mut Graph,
    vectors: &HalfVectors,
    params: HnswParams,
    batch: std::ops::Range<u32>,
) {
    let plans: Vec<Plan> = batch
        .clone()
        .into_par_iter()
        .map(|u| plan(graph, vectors, params, u))
        .collect();
    let mut edges: Vec<(u8, u32, Key)> = Vec::new();
    for (u, plan) in batch.clone().zip(&plans) {
        for (layer, chosen) in plan.iter().enumerate() {
            edges.extend(
                chosen
                    .iter()
                    .map(|&k| (layer as u8, id_of(k), key(dist_of(k), u))),
            );
        }
    }
    // Unique (layer, target, source) triples: the unstable sort has one possible outcome.
    edges.par_sort_unstable();
    let groups: Vec<&[(u8, u32, Key)]> = edges.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)).collect();
    let relinked: Vec<Vec<u32>> = groups
        .par_iter()
        .map(|group| relink(graph, vectors, group))
        .collect();
    for (group, list) in groups.iter().zip(&relinked) {
        let (layer, target, _) = group[0];
        graph.layers[layer as usize].set(target, list);
    }
    for (u, plan) in batch.zip(&plans) {
        for (layer, chosen) in plan.iter().enumerate() {
            let ids: Vec<u32> = chosen.iter().map(|&k| id_of(k)).collect();
            graph.layers[layer].set(u, &ids);
        }
        let level = graph.levels[u as usize];
        // The entry point is the first node to reach the highest level so far.
        if graph.entry.is_none_or(|(_, top)| level > top) {
            graph.entry = Some((u, level));
        }
    }
}

/// Search for node `u`'s neighbours in the graph as it stands, and choose them.
fn plan(graph: &Graph, vectors: &HalfVectors, params: HnswParams, u: u32) -> Plan {
    let Some((entry, top)) = graph.entry else {
        return Plan::new();
    };
    let query = vectors.row(u);
    let level = graph.levels[u as usize];
    let mut nearest = key(half_distance(query, vectors.row(entry)), entry);
    for layer in (level as usize + 1..=top as usize).rev() {
        nearest = greedy(graph, vectors, query, layer, nearest);
    }
    let mut found = vec![nearest];
    let mut plan = vec![Vec::new(); level.min(top) as usize + 1];
    with_scratch(|scratch| {
        for layer in (0..plan.len()).rev() {
            scratch.search_layer(
                graph,
                vectors,
                query,
                layer,
                params.ef_construction,
                &mut found,
            );
            select(vectors, &found, params.m, &mut plan[layer]);
        }
    });
    plan
}

/// The new neighbour list of one target given the new nodes that chose it (`group`: same layer
/// and target, sorted by distance then source). Appended while the list has room; otherwise the
/// old and new neighbours together are re-chosen by the heuristic.
fn relink(graph: &Graph, vectors: &HalfVectors, group: &[(u8, u32, Key)]) -> Vec<u32> {
    let (layer, target, _) = group[0];
    let adjacency = &graph.layers[layer as usize];
    let old = adjacency.neighbours(target);
    if old.len() + group.len() <= adjacency.cap {
        return old
            .iter()
            .copied()
            .chain(group.iter().map(|e| id_of(e.2)))
            .collect();
    }
    let row = vectors.row(target);
    // The old neighbours are rarely in cache: start every load before the first distance.
    old.iter().for_each(|&id| prefetch_half_row(vectors, id));
    let mut distances = Vec::with_capacity(old.len());
    half_distances(row, vectors, old, &mut distances);
    let mut candidates: Vec<Key> = old
        .iter()
        .zip(&distances)
        .map(|(&id, &d)| key(d, id))
        .chain(group.iter().map(|e| e.2))
        .collect();
    candidates.sort_unstable();
    let mut kept = Vec::with_capacity(adjacency.cap);
    select(vectors, &candidates, adjacency.cap, &mut kept);
    kept.into_iter().map(id_of).collect()
}
