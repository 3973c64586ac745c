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

/// Lanes of every reduction; the lane of element `i` is `i % LANES`.
const LANES: usize = 16;

/// `e^x` to about 1.5 ulp (Cephes' `expf` polynomial), branch-free so it vectorises.
#[inline(always)]
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
#[inline(always)]
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

/// BERT's exact GELU, `x·Φ(x)` with Φ from `erfc` (accurate for large negative `x` too).
#[inline(always)]
pub(crate) fn gelu(x: f32) -> f32 {
    let c = erfc_nonnegative(x.abs() * std::f32::consts::FRAC_1_SQRT_2);
    let phi = if x >= 0.0 { 1.0 - 0.5 * c } else { 0.5 * c };
    x * phi
}

multiversion! {
    /// Apply an activation to every element.
    fn activate(act: Activation, xs: &mut [f32]) {
        match act {
            Activation::Gelu => xs.iter_mut().for_each(|x| *x = gelu(*x)),
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
#[inline(always)]
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
#[inline(always)]
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

multiversion! {
    /// Softmax of `scale * row` in place, for each row of `width` values.
    fn softmax_rows(xs: &mut [f32], width: usize, scale: f32) {
        for row in xs.chunks_exact_mut(width) {
            let max = lane_max(row, |x| x * scale);
            let sum = lane_sum_mut(row, |x| exp(x * scale - max));
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|x| *x *= inv);
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
