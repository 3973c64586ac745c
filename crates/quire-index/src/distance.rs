//! The one vector distance quire uses: `1 - dot(a, b)` for L2-normalised vectors.
//!
//! The dot product sums into 16 accumulators in a fixed order and reduces them in a fixed tree,
//! with no fused multiply-add, so every machine computes the same bits whichever of the
//! [`kernel`] paths (AVX-512, AVX2, portable) it runs; index builds that depend on distance ties
//! are therefore reproducible.

use hnsw_rs::anndists::dist::Distance;

use crate::kernel::{self, Path};
use crate::vectors::{HalfVectors, Vectors};

/// Dot product with a fixed summation order (see [`kernel`]: every CPU path gives these bits).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    kernel::dot(a, b)
}

/// Ask the CPU to start loading row `id`, so that a later distance finds it on its way. A hint
/// only: it changes no result. Only the row's first cache line is asked for: the hardware
/// streams the rest once the distance reads the row in order, and software prefetches of every
/// line filled the core's miss buffers and stalled (20k-30k hash-v1 rows, 1 thread: first line
/// 1,807 vectors/s, all 16 lines 1,564, none 1,424).
#[inline]
pub fn prefetch_row(vectors: Vectors<'_>, id: u32) {
    if let Some(first) = vectors.row(id).first() {
        kernel::prefetch(first);
    }
}

/// [`dot_distance`] from `query` to four rows at once, on `path`.
#[inline]
pub fn dot_distance4(path: Path, query: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    kernel::dot4_on(path, query, rows).map(|d| (1.0 - d).max(0.0))
}

/// `out[i] = dot(query, row(ids[i]))`, four rows at a time; same bits as [`dot`] on each row.
pub fn dots(query: &[f32], vectors: Vectors<'_>, ids: &[u32], out: &mut Vec<f32>) {
    let path = Path::detect();
    out.clear();
    let mut quads = ids.chunks_exact(4);
    for q in &mut quads {
        let rows = [0, 1, 2, 3].map(|i| vectors.row(q[i]));
        out.extend(kernel::dot4_on(path, query, rows));
    }
    for &id in quads.remainder() {
        out.push(kernel::dot_on(path, query, vectors.row(id)));
    }
}

/// `out[i] = dot_distance(query, row(ids[i]))`, four rows at a time; same bits as
/// [`dot_distance`] on each row.
pub fn dot_distances(query: &[f32], vectors: Vectors<'_>, ids: &[u32], out: &mut Vec<f32>) {
    dots(query, vectors, ids, out);
    out.iter_mut().for_each(|d| *d = (1.0 - *d).max(0.0));
}

/// `1 - dot`, clamped at 0 (rounding can push the dot of a vector with itself above 1).
#[inline]
pub fn dot_distance(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - dot(a, b)).max(0.0)
}

/// [`dot_distance`] of two binary16 rows (their exact f32 values; see [`kernel::dot_half_on`]).
#[inline]
pub fn half_distance(a: &[u16], b: &[u16]) -> f32 {
    (1.0 - kernel::dot_half_on(Path::detect(), a, b)).max(0.0)
}

/// [`half_distance`] from `query` to four rows at once, on `path`.
#[inline]
pub fn half_distance4(path: Path, query: &[u16], rows: [&[u16]; 4]) -> [f32; 4] {
    kernel::dot4_half_on(path, query, rows).map(|d| (1.0 - d).max(0.0))
}

/// `out[i] = half_distance(query, row(ids[i]))`, four rows at a time.
pub fn half_distances(query: &[u16], vectors: &HalfVectors, ids: &[u32], out: &mut Vec<f32>) {
    let path = Path::detect();
    out.clear();
    let mut quads = ids.chunks_exact(4);
    for q in &mut quads {
        let rows = [0, 1, 2, 3].map(|i| vectors.row(q[i]));
        out.extend(half_distance4(path, query, rows));
    }
    for &id in quads.remainder() {
        out.push(half_distance(query, vectors.row(id)));
    }
}

/// [`prefetch_row`] for binary16 rows.
#[inline]
pub fn prefetch_half_row(vectors: &HalfVectors, id: u32) {
    if let Some(first) = vectors.row(id).first() {
        kernel::prefetch(first);
    }
}

/// [`dot_distance`] as an hnsw_rs distance.
#[derive(Clone, Copy, Debug, Default)]
pub struct DotDistance;

impl Distance<f32> for DotDistance {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        dot_distance(va, vb)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_is_never_negative() {
        let v = vec![1.0 / 3f32.sqrt(); 3];
        assert!(dot_distance(&v, &v) >= 0.0);
    }

    #[test]
    fn batched_distances_equal_single_ones() {
        let dim = 40;
        let flat: Vec<f32> = (0..11 * dim)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 97.0)
            .collect();
        let vectors = Vectors::new(&flat, dim);
        let query = vectors.row(3);
        let ids: Vec<u32> = vec![10, 0, 3, 7, 7, 2, 9];
        let mut out = Vec::new();
        dot_distances(query, vectors, &ids, &mut out);
        for (&id, d) in ids.iter().zip(&out) {
            assert_eq!(d.to_bits(), dot_distance(query, vectors.row(id)).to_bits());
        }
    }
}
