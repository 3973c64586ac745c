//! The frozen HNSW graph: flat arrays, whichever builder made the graph.
//!
//! The spec's `hnsw.builder` picks the builder: hnsw_rs (serial insertion, which is
//! deterministic: its level generator has a fixed seed), exported by [`FrozenGraph::from_hnsw`],
//! or quire's own parallel builder ([`crate::hnsw_build`]), which produces a `FrozenGraph`
//! directly. Either way the graph is stored in quire's own canonical format (`hnsw.graph`), so
//! the artifact is byte-identical across builds, trivially hashed, and searchable without
//! hnsw_rs's reload machinery.
//!
//! Format (little-endian `u32` unless stated):
//! ```text
//! magic "QGRAPH01" | n | max_level | entry_point | 0
//! level of each node (u8 x n), zero-padded to a multiple of 4
//! layer 0: offsets (n + 1) | neighbours
//! per layer l = 1..=max_level: count | node ids (sorted, count) | offsets (count + 1) | neighbours
//! ```

use hnsw_rs::hnsw::Hnsw;

use crate::distance::DotDistance;
use crate::error::{IndexError, Result};

const MAGIC: &[u8; 8] = b"QGRAPH01";
/// File name of the frozen graph inside an index directory.
pub const GRAPH_FILE: &str = "hnsw.graph";

/// Adjacency lists of one layer in compressed sparse row form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Layer {
    /// Node ids present in the layer, sorted; empty for layer 0, which holds every node.
    pub nodes: Vec<u32>,
    /// `neighbours[offsets[i]..offsets[i + 1]]` are the neighbours of the i-th node.
    pub offsets: Vec<u32>,
    /// Concatenated neighbour lists (hnsw_rs: nearest first; quire: pruned lists nearest first,
    /// others in the order the edges arrived).
    pub neighbours: Vec<u32>,
}

impl Layer {
    /// Neighbours of the node at position `pos` in this layer.
    pub fn neighbours_at(&self, pos: usize) -> &[u32] {
        &self.neighbours[self.offsets[pos] as usize..self.offsets[pos + 1] as usize]
    }

    /// Start loading the list of the node at position `pos` (a hint; changes no result).
    #[inline]
    pub fn prefetch_at(&self, pos: usize) {
        if let Some(&start) = self.offsets.get(pos)
            && let Some(first) = self.neighbours.get(start as usize)
        {
            crate::kernel::prefetch(first);
        }
    }

    /// Neighbours of node `id` in an upper layer (binary search over `nodes`).
    pub fn neighbours_of(&self, id: u32) -> &[u32] {
        match self.nodes.binary_search(&id) {
            Ok(pos) => self.neighbours_at(pos),
            Err(_) => &[],
        }
    }
}

/// An HNSW graph in flat arrays.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FrozenGraph {
    /// Top layer of each node.
    pub levels: Vec<u8>,
    /// Where searches start: the first node that reached the top layer.
    pub entry_point: u32,
    /// `layers[0]` holds every node; `layers[l]` the nodes whose level is at least `l`.
    pub layers: Vec<Layer>,
}

impl FrozenGraph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// Export the graph of `hnsw`, whose data ids must be `0..n`.
    pub fn from_hnsw(hnsw: &Hnsw<'_, f32, DotDistance>, n: usize) -> Result<Self> {
        let mut levels = vec![0u8; n];
        let mut lists: Vec<Vec<Option<Vec<u32>>>> = Vec::new();
        let mut seen = 0usize;
        for point in hnsw.get_point_indexation() {
            let id = point.get_origin_id();
            let level = point.get_point_id().0;
            if id >= n {
                return Err(IndexError::Invalid(format!(
                    "hnsw point id {id} out of range {n}"
                )));
            }
            levels[id] = level;
            for (layer, neighbours) in point
                .get_neighborhood_id()
                .into_iter()
                .enumerate()
                .take(level as usize + 1)
            {
                if lists.len() <= layer {
                    lists.resize_with(layer + 1, || vec![None; n]);
                }
                lists[layer][id] = Some(neighbours.iter().map(|nb| nb.d_id as u32).collect());
            }
            seen += 1;
        }
        if seen != n {
            return Err(IndexError::Invalid(format!(
                "hnsw holds {seen} points, expected {n}"
            )));
        }
        let max_level = levels.iter().copied().max().unwrap_or(0);
        // hnsw_rs moves its entry point only to a strictly higher level, so with serial insertion
        // in id order the entry point is the lowest id on the top level.
        let entry_point = levels.iter().position(|&l| l == max_level).unwrap_or(0) as u32;
        let layers = (0..=max_level as usize)
            .map(|l| {
                let mut layer = Layer {
                    offsets: vec![0],
                    ..Layer::default()
                };
                for (id, &level) in levels.iter().enumerate() {
                    if level as usize >= l {
                        if l > 0 {
                            layer.nodes.push(id as u32);
                        }
                        let list = lists.get(l).and_then(|ls| ls[id].as_deref()).unwrap_or(&[]);
                        layer.neighbours.extend_from_slice(list);
                        layer.offsets.push(layer.neighbours.len() as u32);
                    }
                }
                layer
            })
            .collect();
        Ok(Self {
            levels,
            entry_point,
            layers: if n == 0 { Vec::new() } else { layers },
        })
    }

    /// The canonical bytes of the graph.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let max_level = self.layers.len().saturating_sub(1) as u32;
        for v in [self.len() as u32, max_level, self.entry_point, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.levels);
        out.resize(out.len().next_multiple_of(4), 0);
        for (l, layer) in self.layers.iter().enumerate() {
            if l > 0 {
                put_u32s(&mut out, &[layer.nodes.len() as u32]);
                put_u32s(&mut out, &layer.nodes);
            }
            put_u32s(&mut out, &layer.offsets);
            put_u32s(&mut out, &layer.neighbours);
        }
        out
    }

    /// Parse and check a graph file.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| IndexError::Corrupt {
            file: GRAPH_FILE.into(),
            reason,
        };
        let mut r = Reader { bytes, pos: 0 };
        if r.take(8)
            .ok_or_else(|| corrupt("truncated header".into()))?
            != MAGIC
        {
            return Err(corrupt("bad magic".into()));
        }
        let header = r
            .u32s(4)
            .ok_or_else(|| corrupt("truncated header".into()))?;
        let (n, max_level, entry_point) = (header[0] as usize, header[1] as usize, header[2]);
        let levels = r
            .take(n)
            .ok_or_else(|| corrupt("truncated levels".into()))?
            .to_vec();
        r.pos = r.pos.next_multiple_of(4);
        let mut layers = Vec::new();
        for l in 0..=max_level {
            if n == 0 {
                break;
            }
            let nodes = if l == 0 {
                Vec::new()
            } else {
                let count = r
                    .u32s(1)
                    .ok_or_else(|| corrupt(format!("truncated layer {l}")))?[0]
                    as usize;
                r.u32s(count)
                    .ok_or_else(|| corrupt(format!("truncated layer {l}")))?
            };
            let rows = if l == 0 { n } else { nodes.len() };
            let offsets = r
                .u32s(rows + 1)
                .ok_or_else(|| corrupt(format!("truncated layer {l}")))?;
            let total = *offsets.last().unwrap_or(&0) as usize;
            if offsets.windows(2).any(|w| w[0] > w[1]) || offsets[0] != 0 {
                return Err(corrupt(format!("layer {l}: offsets are not monotone")));
            }
            let neighbours = r
                .u32s(total)
                .ok_or_else(|| corrupt(format!("truncated layer {l}")))?;
            if neighbours.iter().chain(&nodes).any(|&id| id as usize >= n) {
                return Err(corrupt(format!("layer {l}: node id out of range")));
            }
            layers.push(Layer {
                nodes,
                offsets,
                neighbours,
            });
        }
        if r.pos != bytes.len() {
            return Err(corrupt("trailing bytes".into()));
        }
        if n > 0 && entry_point as usize >= n {
            return Err(corrupt("entry point out of range".into()));
        }
        Ok(Self {
            levels,
            entry_point,
            layers,
        })
    }
}

fn put_u32s(out: &mut Vec<u8>, values: &[u32]) {
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(slice)
    }

    fn u32s(&mut self, count: usize) -> Option<Vec<u32>> {
        let raw = self.take(count.checked_mul(4)?)?;
        Some(
            raw.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_round_trips_and_is_deterministic() -> Result<()> {
        let n = 300;
        let dim = 8;
        let vectors: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                let v: Vec<f32> = (0..dim)
                    .map(|j| (((i * 31 + j * 17) % 23) as f32) - 11.0)
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| x / norm).collect()
            })
            .collect();
        let build = || {
            let hnsw = Hnsw::<f32, DotDistance>::new(8, n, 16, 50, DotDistance);
            for (i, v) in vectors.iter().enumerate() {
                hnsw.insert_slice((v, i));
            }
            FrozenGraph::from_hnsw(&hnsw, n)
        };
        let g1 = build()?;
        let g2 = build()?;
        assert_eq!(g1.to_bytes(), g2.to_bytes());
        assert_eq!(FrozenGraph::from_bytes(&g1.to_bytes())?, g1);
        assert!(g1.layers[0].neighbours_at(0).len() > 1);
        let mut bad = g1.to_bytes();
        bad.truncate(bad.len() - 1);
        assert!(FrozenGraph::from_bytes(&bad).is_err());
        Ok(())
    }
}
