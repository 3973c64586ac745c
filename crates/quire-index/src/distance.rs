//! The one vector distance quire uses: `1 - dot(a, b)` for L2-normalised vectors.
//!
//! The dot product sums into 16 accumulators in a fixed order and reduces them in a fixed tree,
//! with no runtime CPU dispatch and no fused multiply-add, so every x86-64 machine computes the
//! same bits; index builds that depend on distance ties are therefore reproducible.

use hnsw_rs::anndists::dist::Distance;

const LANES: usize = 16;

/// Dot product with a fixed summation order.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    let body = a.len() / LANES * LANES;
    for (x, y) in a[..body]
        .chunks_exact(LANES)
        .zip(b[..body].chunks_exact(LANES))
    {
        if let (Ok(x), Ok(y)) = (x.try_into(), y.try_into()) {
            accumulate(&mut acc, x, y);
        }
    }
    if body < a.len() {
        // The tail is zero-padded to a full block: lane i still sums elements i (mod 16).
        let (mut x, mut y) = ([0f32; LANES], [0f32; LANES]);
        x[..a.len() - body].copy_from_slice(&a[body..]);
        y[..a.len() - body].copy_from_slice(&b[body..]);
        accumulate(&mut acc, &x, &y);
    }
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    acc[0]
}

/// One block: lane `i` of `acc` gains `x[i] * y[i]`. Kept free of dynamic indexing so the
/// compiler holds `acc` in four SSE registers.
#[inline(always)]
fn accumulate(acc: &mut [f32; LANES], x: &[f32; LANES], y: &[f32; LANES]) {
    for i in 0..LANES {
        acc[i] += x[i] * y[i];
    }
}

/// `1 - dot`, clamped at 0 (rounding can push the dot of a vector with itself above 1).
#[inline]
pub fn dot_distance(a: &[f32], b: &[f32]) -> f32 {
    (1.0 - dot(a, b)).max(0.0)
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
    fn matches_naive_dot_closely() {
        for len in [0, 1, 15, 16, 17, 100, 384] {
            let a: Vec<f32> = (0..len)
                .map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0)
                .collect();
            let b: Vec<f32> = (0..len)
                .map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0)
                .collect();
            let naive: f64 = a
                .iter()
                .zip(&b)
                .map(|(x, y)| f64::from(*x) * f64::from(*y))
                .sum();
            assert!((f64::from(dot(&a, &b)) - naive).abs() < 1e-4, "len {len}");
        }
    }

    #[test]
    fn distance_is_never_negative() {
        let v = vec![1.0 / 3f32.sqrt(); 3];
        assert!(dot_distance(&v, &v) >= 0.0);
    }
}
