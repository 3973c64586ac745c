//! Element-wise and row-wise maths of the encoder: `exp`, GELU, softmax and layer norm.
//!
//! Every function here uses only IEEE-754 additions, multiplications, divisions, square roots and
//! conversions, never fused multiply-adds or a platform `libm`, and every reduction runs over 16
//! fixed lanes followed by a fixed tree. The compiler may vectorise these loops (it may not
//! reorder floating-point operations), so the results are the same bits on every x86_64 CPU and
//! at every vector width.
//!
//! The row functions are compiled three times (baseline, AVX2, AVX-512) and chosen by the
//! [`KernelPath`]; only the width of the vector code differs, never an operation.

// Calling a `#[target_feature]` clone needs `unsafe`; each call follows a check that the CPU has
// the feature.
#![allow(unsafe_code)]

use super::KernelPath;
use super::gemm::NR;

/// Lanes of every reduction; the lane of element `i` is `i % LANES`.
const LANES: usize = 16;

/// `e^x` to about 1.5 ulp (Cephes' `expf` polynomial), branch-free so it vectorises. The
/// reference definition: the kernels run it staged over blocks ([`exp_block`]), tested equal.
#[cfg(test)]
pub(crate) fn exp(x: f32) -> f32 {
    // Below -87.3 the result would be subnormal; the clamp keeps 2^n a normal float.
    let x = x.clamp(-87.336_54, 88.376_26);
    // Round x·log2(e) to the nearest integer by the 1.5·2^23 trick (no `floor`, which is a
    // libm call on baseline x86_64).
    // The rounded sum's low mantissa bits hold n itself, which gives 2^n without a float-to-int
    // conversion.
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    // ln 2 in two parts, so that r = x - n·ln2 is exact for the first part.
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let p = p * (r * r) + r + 1.0;
    let n_int = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_int.wrapping_add(127) << 23);
    p * scale
}

/// `erfc(z)` for `z >= 0`, relative error below 1e-5 (Numerical Recipes' Chebyshev fit).
#[cfg(test)]
fn erfc_nonnegative(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * z);
    let mut p = 0.170_872_77_f32;
    p = p * t - 0.822_152_23;
    p = p * t + 1.488_515_9;
    p = p * t - 1.135_204;
    p = p * t + 0.278_868_07;
    p = p * t - 0.186_288_06;
    p = p * t + 0.096_784_18;
    p = p * t + 0.374_091_96;
    p = p * t + 1.000_023_7;
    p = p * t - 1.265_512_2;
    t * exp(-z * z + p)
}

/// BERT's exact GELU, `x·Φ(x)` with Φ from `erfc` (accurate for large negative `x` too). The
/// reference definition, run staged by [`gelu_block`].
#[cfg(test)]
pub(crate) fn gelu(x: f32) -> f32 {
    let c = erfc_nonnegative(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    let phi = if x >= 0.0 { 1.0 - 0.5 * c } else { 0.5 * c };
    x * phi
}

/// Values per block of the staged functions: eight 16-lane vectors (or sixteen 8-lane ones),
/// enough independent work to hide the latency of each step.
const BLOCK: usize = 128;

/// `f(i)` for each `i` in `0..BLOCK`: one step of a staged computation, all of whose vectors are
/// independent.
#[inline(always)]
fn each(mut f: impl FnMut(usize)) {
    for i in 0..BLOCK {
        f(i);
    }
}

/// [`exp`] of every value, computed step by step over the block (the same operations on each
/// value as [`exp`], so the same bits; only their schedule differs).
#[inline(always)]
fn exp_block(xs: &mut [f32; BLOCK]) {
    const ROUND: f32 = 12_582_912.0;
    let mut shifted = [0.0f32; BLOCK];
    let mut r = [0.0f32; BLOCK];
    each(|i| {
        let x = xs[i].clamp(-87.336_54, 88.376_26);
        shifted[i] = x * std::f32::consts::LOG2_E + ROUND;
        let n = shifted[i] - ROUND;
        r[i] = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    });
    let mut p = [1.987_569_1e-4_f32; BLOCK];
    each(|i| p[i] = p[i] * r[i] + 1.398_199_9e-3);
    each(|i| p[i] = p[i] * r[i] + 8.333_452e-3);
    each(|i| p[i] = p[i] * r[i] + 4.166_579_6e-2);
    each(|i| p[i] = p[i] * r[i] + 1.666_666_5e-1);
    each(|i| p[i] = p[i] * r[i] + 0.5);
    each(|i| {
        let q = p[i] * (r[i] * r[i]) + r[i] + 1.0;
        let n_int = shifted[i].to_bits().wrapping_sub(ROUND.to_bits());
        xs[i] = q * f32::from_bits(n_int.wrapping_add(127) << 23);
    });
}

/// [`gelu`] of every value, staged like [`exp_block`].
#[inline(always)]
fn gelu_block(xs: &mut [f32; BLOCK]) {
    let mut z = [0.0f32; BLOCK];
    let mut t = [0.0f32; BLOCK];
    each(|i| {
        z[i] = xs[i].abs() * std::f32::consts::FRAC_1_SQRT_2;
        t[i] = 1.0 / (1.0 + 0.5 * z[i]);
    });
    let mut p = [0.170_872_77_f32; BLOCK];
    each(|i| p[i] = p[i] * t[i] - 0.822_152_23);
    each(|i| p[i] = p[i] * t[i] + 1.488_515_9);
    each(|i| p[i] = p[i] * t[i] - 1.135_204);
    each(|i| p[i] = p[i] * t[i] + 0.278_868_07);
    each(|i| p[i] = p[i] * t[i] - 0.186_288_06);
    each(|i| p[i] = p[i] * t[i] + 0.096_784_18);
    each(|i| p[i] = p[i] * t[i] + 0.374_091_96);
    each(|i| p[i] = p[i] * t[i] + 1.000_023_7);
    each(|i| p[i] = p[i] * t[i] - 1.265_512_2);
    // `-z·z + p` as the reference writes it (addition commutes exactly).
    each(|i| p[i] += -z[i] * z[i]);
    exp_block(&mut p);
    each(|i| {
        let c = t[i] * p[i];
        let phi = if xs[i] >= 0.0 { 1.0 - 0.5 * c } else { 0.5 * c };
        xs[i] *= phi;
    });
}

multiversion! {
    /// Apply an activation to every element.
    fn activate(act: Activation, xs: &mut [f32]) {
        match act {
            Activation::Gelu => {
                let mut blocks = xs.chunks_exact_mut(BLOCK);
                for block in &mut blocks {
                    if let Ok(block) = block.try_into() {
                        gelu_block(block);
                    }
                }
                let rest = blocks.into_remainder();
                let mut block = [0.0f32; BLOCK];
                block[..rest.len()].copy_from_slice(rest);
                gelu_block(&mut block);
                let len = rest.len();
                rest.copy_from_slice(&block[..len]);
            }
            Activation::Relu => xs.iter_mut().for_each(|x| *x = x.max(0.0)),
        }
    }
}

/// The feed-forward activation a model's `config.json` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Activation {
    /// `gelu`: the exact (erf) form.
    Gelu,
    /// `relu`.
    Relu,
}

/// Sum in the fixed lane order (see the module docs).
#[inline(always)]
fn lane_sum(xs: &[f32], f: impl FnMut(f32) -> f32) -> f32 {
    let mut f = f;
    let mut lanes = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x);
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(x);
    }
    tree_sum(lanes)
}

/// Replace each `x` by `f(x)` and return the sum of the new values, in the fixed lane order.
#[cfg(test)]
fn lane_sum_mut(xs: &mut [f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = xs.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (lane, x) in lanes.iter_mut().zip(chunk) {
            *x = f(*x);
            *lane += *x;
        }
    }
    for (lane, x) in lanes.iter_mut().zip(chunks.into_remainder()) {
        *x = f(*x);
        *lane += *x;
    }
    tree_sum(lanes)
}

/// Maximum of `f(x)` over the same lanes (max is exact, so the lanes change only the speed).
#[cfg(test)]
fn lane_max(xs: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            let y = f(x);
            *lane = if y > *lane { y } else { *lane };
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        let y = f(x);
        *lane = if y > *lane { y } else { *lane };
    }
    lanes.into_iter().fold(f32::NEG_INFINITY, f32::max)
}

#[inline(always)]
fn tree_sum(lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    let mut lanes = lanes;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

multiversion! {
    /// `x = layer_norm(x + add)` for each row of `width` values, in place:
    /// `(y - mean) / sqrt(var + eps) * gamma + beta` with `y = add + x` (`add` may be empty).
    fn add_layer_norm(xs: &mut [f32], add: &[f32], gamma: &[f32], beta: &[f32], eps: f32) {
        let width = gamma.len();
        for (r, row) in xs.chunks_exact_mut(width).enumerate() {
            if let Some(add) = add.get(r * width..(r + 1) * width) {
                for (x, a) in row.iter_mut().zip(add) {
                    *x += a;
                }
            }
            let n = width as f32;
            let mean = lane_sum(row, |x| x) / n;
            let var = lane_sum(row, |x| (x - mean) * (x - mean)) / n;
            let inv = 1.0 / (var + eps).sqrt();
            for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
                *x = (*x - mean) * inv * g + b;
            }
        }
    }
}

#[cfg(test)]
multiversion! {
    /// Softmax of `scale * row` in place, for each row of `width` values: the reference for
    /// [`softmax_columns`].
    fn softmax_rows(xs: &mut [f32], width: usize, scale: f32) {
        for row in xs.chunks_exact_mut(width) {
            let max = lane_max(row, |x| x * scale);
            let sum = lane_sum_mut(row, |x| exp(x * scale - max));
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|x| *x *= inv);
        }
    }
}

multiversion! {
    /// Softmax of `scale * column` in place, for each of the [`NR`] columns of each panel of
    /// `lines` lines (the layout of a [`PackedB`](super::gemm::PackedB)): the same operations
    /// in the same order, per column, as [`softmax_rows`] does per row, so a column gives the
    /// bits its row would.
    fn softmax_columns(panels: &mut [f32], lines: usize, scale: f32) {
        const LINES: usize = BLOCK / NR;
        if lines == 0 {
            return;
        }
        for panel in panels.chunks_exact_mut(lines * NR) {
            // Max is exact, so any order gives the row's maximum.
            let mut max = [f32::NEG_INFINITY; NR];
            for line in panel.chunks_exact(NR) {
                for (m, &x) in max.iter_mut().zip(line) {
                    let y = x * scale;
                    *m = if y > *m { y } else { *m };
                }
            }
            // Element j of a row goes to lane j % LANES, lanes summed in order of j.
            let mut lanes = [[0.0f32; NR]; LANES];
            for (g, group) in panel.chunks_mut(LINES * NR).enumerate() {
                let mut block = [0.0f32; BLOCK];
                for (values, line) in block.chunks_exact_mut(NR).zip(group.chunks_exact(NR)) {
                    for ((v, &x), &m) in values.iter_mut().zip(line).zip(&max) {
                        *v = x * scale - m;
                    }
                }
                exp_block(&mut block);
                for (l, (line, values)) in group
                    .chunks_exact_mut(NR)
                    .zip(block.chunks_exact(NR))
                    .enumerate()
                {
                    let lane = &mut lanes[(g * LINES + l) % LANES];
                    for ((x, &v), s) in line.iter_mut().zip(values).zip(lane.iter_mut()) {
                        *x = v;
                        *s += v;
                    }
                }
            }
            // tree_sum, per column.
            let mut width = LANES / 2;
            while width > 0 {
                let (low, high) = lanes.split_at_mut(width);
                for (l, h) in low.iter_mut().zip(high.iter()) {
                    for (a, b) in l.iter_mut().zip(h) {
                        *a += b;
                    }
                }
                width /= 2;
            }
            let inv = lanes[0].map(|sum| 1.0 / sum);
            let inv: [f32; BLOCK] = std::array::from_fn(|i| inv[i % NR]);
            // By blocks, so that the loop is vectorised along lines (not across them).
            let mut groups = panel.chunks_exact_mut(BLOCK);
            for group in &mut groups {
                if let Ok(group) = <&mut [f32; BLOCK]>::try_from(group) {
                    each(|i| group[i] *= inv[i]);
                }
            }
            let rest = groups.into_remainder();
            let mut block = [0.0f32; BLOCK];
            let len = rest.len();
            block[..len].copy_from_slice(rest);
            each(|i| block[i] *= inv[i]);
            rest.copy_from_slice(&block[..len]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate_over_its_range() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = f64::from(x).exp();
            let got = f64::from(exp(x));
            worst = worst.max((got - want).abs() / want);
            x += 0.001_7;
        }
        assert!(worst < 2.0e-7, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
    }

    #[test]
    fn gelu_matches_its_definition() {
        // Φ(x) from an independent series: erf(z) = 2/sqrt(pi) Σ (-1)^n z^(2n+1) / (n! (2n+1)).
        let erf = |z: f64| {
            let (mut term, mut sum, mut n) = (z, z, 0.0);
            while term.abs() > 1e-17 {
                n += 1.0;
                term *= -z * z / n;
                sum += term / (2.0 * n + 1.0);
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        };
        let mut x = -4.0f32;
        while x < 4.0 {
            let want = 0.5 * f64::from(x) * (1.0 + erf(f64::from(x) / 2f64.sqrt()));
            let got = f64::from(gelu(x));
            assert!(
                (got - want).abs() < 2e-6 * want.abs().max(1e-3),
                "gelu({x}) = {got}, want {want}"
            );
            x += 0.013;
        }
        assert_eq!(gelu(0.0), 0.0);
    }

    /// The vector clones give the scalar code's bits.
    #[test]
    fn every_path_gives_the_same_bits() {
        let xs: Vec<f32> = (0..997)
            .map(|i| ((i * 7919) % 2000) as f32 / 97.0 - 10.0)
            .collect();
        let run = |path: KernelPath| {
            let mut a = xs.clone();
            activate(path, Activation::Gelu, &mut a);
            let mut b = xs.clone();
            softmax_rows(path, &mut b[..990], 99, 0.3);
            let mut c = xs.clone();
            add_layer_norm(
                path,
                &mut c[..990],
                &xs[..990],
                &xs[..45],
                &xs[45..90],
                1e-12,
            );
            [a, b, c]
                .concat()
                .iter()
                .map(|x| x.to_bits())
                .collect::<Vec<_>>()
        };
        let scalar = run(KernelPath::Scalar);
        for path in KernelPath::available() {
            assert!(run(path) == scalar, "{path}");
        }
        assert!(gelu(-30.0) <= 0.0 && gelu(-30.0) > -1e-30);
    }

    /// The staged kernels are the reference definitions, value by value and column by row.
    #[test]
    fn staged_kernels_give_the_reference_bits() {
        let mut xs: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 53.0).collect();
        xs.extend([
            0.0,
            -0.0,
            1e-30,
            -1e-30,
            88.0,
            -88.0,
            1e4,
            -1e4,
            f32::MIN_POSITIVE,
        ]);
        for path in KernelPath::available() {
            let mut got = xs.clone();
            activate(path, Activation::Gelu, &mut got);
            for (x, g) in xs.iter().zip(&got) {
                assert_eq!(g.to_bits(), gelu(*x).to_bits(), "{path} gelu({x})");
            }
        }
        // Softmax down the columns of panels (`NR` columns, `lines` lines) against rows.
        for lines in [1, 5, 16, 37, 130] {
            let panels = 3;
            let cols = panels * NR;
            let matrix: Vec<f32> = (0..lines * cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 37.0 - 13.0)
                .collect();
            // Row `c` of the transpose is column `c`.
            let mut rows: Vec<f32> = (0..cols)
                .flat_map(|c| (0..lines).map(move |j| (c, j)))
                .map(|(c, j)| matrix[(c / NR) * lines * NR + j * NR + c % NR])
                .collect();
            softmax_rows(KernelPath::Scalar, &mut rows, lines, 0.37);
            for path in KernelPath::available() {
                let mut got = matrix.clone();
                softmax_columns(path, &mut got, lines, 0.37);
                for (i, g) in got.iter().enumerate() {
                    let (q, j, c) = (i / (lines * NR), (i / NR) % lines, i % NR);
                    let want = rows[(q * NR + c) * lines + j];
                    assert_eq!(g.to_bits(), want.to_bits(), "{path} {lines} lines, at {i}");
                }
            }
        }
    }

    #[test]
    fn layer_norm_and_softmax() {
        let mut row: Vec<f32> = (0..40).map(|i| i as f32).collect();
        add_layer_norm(
            KernelPath::Scalar,
            &mut row,
            &[],
            &[1.0; 40],
            &[0.5; 40],
            1e-12,
        );
        let mean: f32 = row.iter().sum::<f32>() / 40.0;
        assert!((mean - 0.5).abs() < 1e-5, "{mean}");
        let mut row = vec![1.0, 2.0, 3.0];
        softmax_rows(KernelPath::Scalar, &mut row, 3, 2.0);
        // Shifted by the true maximum: a large row does not overflow.
        let mut large = vec![100.0, 90.0];
        softmax_rows(KernelPath::Scalar, &mut large, 2, 1.0);
        assert!(
            (large[0] - 1.0 / (1.0 + (-10f32).exp())).abs() < 1e-6,
            "{large:?}"
        );
        let want: Vec<f64> = [-4.0f64, -2.0, 0.0].iter().map(|x| x.exp()).collect();
        let total: f64 = want.iter().sum();
        for (g, w) in row.iter().zip(&want) {
            assert!((f64::from(*g) - w / total).abs() < 1e-6);
        }
    }
}
