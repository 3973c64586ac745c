//! Integer matrix products for the `int8` precision: `C ≈ A·Wᵀ + bias` with `W` quantised per
//! output channel (symmetric `i8`) and each row of `A` per token (asymmetric `u8`).
//!
//! The products are summed in `i32`, which is exact, so the order of summation cannot matter:
//! the AMX, VNNI and scalar kernels ([`IntKernel`]) give the same integers, and the conversion
//! to `f32` afterwards is a fixed sequence of IEEE operations per element:
//! `((acc - zero_a·Σw) as f32) * (scale_a * scale_w) + bias`.
//! Quantisation itself is a pure function of the `f32` values (round half to even), so the
//! weights quantise the same way at every load.

// The VNNI and AMX kernels read through raw pointers; `gemm_i8` checks every extent before
// calling them.
#![allow(unsafe_code)]

use std::cell::RefCell;

use super::KernelPath;
use super::aligned::Aligned;

/// Columns per packed panel: two 16-lane registers of `i32`.
const NR: usize = 32;

/// Rows per tile of the VNNI and scalar kernels.
const MR: usize = 8;

/// Rows of the buffer of sums: the tallest tile (AMX's).
const ACC_ROWS: usize = 32;

/// A tile's sums, each row on its own cache lines (AMX stores whole rows of 64 bytes).
#[repr(C, align(64))]
struct Sums([[i32; NR]; ACC_ROWS]);

#[cfg(target_arch = "x86_64")]
mod amx;

#[cfg(target_arch = "x86_64")]
const _: () = assert!(amx::ROWS == ACC_ROWS && amx::PANEL_COLUMNS == NR);

/// The longest products whose `i32` sums cannot overflow: each step adds at most 255 · 127.
pub(crate) const MAX_INT8_STEPS: usize = i32::MAX as usize / (255 * 127);

/// A linear layer's weight `W` (`n` outputs × `k` inputs) quantised per output channel.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedI8 {
    k: usize,
    n: usize,
    /// Panels of [`NR`] columns; in each, for each group of four inputs, [`NR`] × 4 bytes:
    /// column `c`'s four weights together (the operand layout of `vpdpbusd`).
    data: Aligned<i8>,
    scales: Vec<f32>,
    sums: Vec<i32>,
}

impl PackedI8 {
    /// Quantise `w` (`n` rows of `k`): `q = round(w / s)` with `s = max|w| / 127` per row.
    pub(crate) fn from_weight(w: &[f32], n: usize, k: usize) -> Self {
        assert!(
            k <= MAX_INT8_STEPS,
            "int8 product of {k} steps could overflow i32"
        );
        let groups = k.div_ceil(4);
        let panels = n.div_ceil(NR);
        let mut data = Aligned::default();
        data.resize(panels * groups * NR * 4, 0);
        let mut scales = Vec::with_capacity(n);
        let mut sums = Vec::with_capacity(n);
        for (j, row) in w.chunks_exact(k).take(n).enumerate() {
            let max = row.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let scale = max / 127.0;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            let mut sum = 0i32;
            for (p, &x) in row.iter().enumerate() {
                let q = round_even(x * inv).clamp(-127.0, 127.0) as i8;
                sum += i32::from(q);
                let (panel, c) = (j / NR, j % NR);
                data[((panel * groups + p / 4) * NR + c) * 4 + p % 4] = q;
            }
            scales.push(scale);
            sums.push(sum);
        }
        Self {
            k,
            n,
            data,
            scales,
            sums,
        }
    }
}

/// `x` rounded to the nearest integer, ties to even (|x| < 2^22), without a libm call.
#[inline(always)]
fn round_even(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    (x + ROUND) - ROUND
}

/// One row of `A` quantised: `a ≈ scale · (q - zero)`, with 0 exactly representable.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RowQuant {
    scale: f32,
    zero: i32,
}

/// Quantise `row` to `u8` into `out` (zero-padded to a multiple of four).
fn quantise_row(path: KernelPath, row: &[f32], out: &mut [u8]) -> RowQuant {
    let (lo, hi) = min_max(path, row);
    let scale = (hi - lo) / 255.0;
    if scale <= 0.0 || !scale.is_finite() {
        out.iter_mut().for_each(|q| *q = 0);
        return RowQuant::default();
    }
    let inv = 1.0 / scale;
    let zero = round_even(-lo * inv).clamp(0.0, 255.0);
    to_u8(path, row, inv, zero, out);
    out[row.len()..].iter_mut().for_each(|q| *q = 0);
    RowQuant {
        scale,
        zero: zero as i32,
    }
}

/// The smallest and largest of 0 and `row` (min and max are exact, so lanes are free).
fn min_max(path: KernelPath, row: &[f32]) -> (f32, f32) {
    let mut lo_hi = [0.0f32; 2];
    min_max_into(path, row, &mut lo_hi);
    (lo_hi[0], lo_hi[1])
}

multiversion! {
    fn min_max_into(row: &[f32], lo_hi: &mut [f32; 2]) {
        let mut lo = [0.0f32; 16];
        let mut hi = [0.0f32; 16];
        let mut chunks = row.chunks_exact(16);
        for chunk in &mut chunks {
            for ((l, h), &x) in lo.iter_mut().zip(&mut hi).zip(chunk) {
                *l = if x < *l { x } else { *l };
                *h = if x > *h { x } else { *h };
            }
        }
        for ((l, h), &x) in lo.iter_mut().zip(&mut hi).zip(chunks.remainder()) {
            *l = if x < *l { x } else { *l };
            *h = if x > *h { x } else { *h };
        }
        lo_hi[0] = lo.iter().fold(0.0f32, |a, &b| if b < a { b } else { a });
        lo_hi[1] = hi.iter().fold(0.0f32, |a, &b| if b > a { b } else { a });
    }
}

multiversion! {
    /// `q = clamp(round(x / scale) + zero, 0, 255)`; the integer is read off the float's
    /// mantissa after adding 1.5·2^23, which vectorises where a float-to-int cast may not.
    fn to_u8(row: &[f32], inv: f32, zero: f32, out: &mut [u8]) {
        const ROUND: f32 = 12_582_912.0;
        for (q, &x) in out.iter_mut().zip(row) {
            let v = (round_even(x * inv) + zero).clamp(0.0, 255.0);
            *q = (v + ROUND).to_bits() as u8;
        }
    }
}

multiversion! {
    /// `c = ((acc - zero·Σw) as f32) · (scale · scale_w) + bias` for the rows of one tile of a
    /// panel (`columns`: `Σw`, `scale_w` and `bias` of each of its columns): row `r` of `acc`,
    /// quantised as `quant[r]`, into `out[r·ldo..]`.
    fn dequantise(
        out: &mut [f32],
        ldo: usize,
        acc: &[[i32; NR]],
        quant: &[RowQuant],
        columns: (&[i32], &[f32], &[f32])
    ) {
        let (sums, scales, bias) = columns;
        for ((out, acc), rq) in out.chunks_mut(ldo).zip(acc).zip(quant) {
            let zipped = out.iter_mut().zip(acc).zip(sums).zip(scales).zip(bias);
            for ((((o, &a), &s), &w), &b) in zipped {
                *o = (a - rq.zero * s) as f32 * (rq.scale * w) + b;
            }
        }
    }
}

thread_local! {
    static QUANTISED_A: RefCell<(Aligned<u8>, Vec<RowQuant>)> = RefCell::default();
}

/// The integer kernel a product runs on. All give the same integers; only the speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IntKernel {
    /// Plain Rust, the reference.
    Scalar,
    /// AVX-512 VNNI `vpdpbusd`, [`MR`] rows × [`NR`] columns at a time.
    Vnni,
    /// AMX `tdpbusd`, [`amx::ROWS`] rows × [`NR`] columns at a time; `k` a multiple of 64.
    Amx,
}

impl IntKernel {
    /// The fastest kernel for `path` on this CPU and products with `w`.
    pub(crate) fn choose(path: KernelPath, w: &PackedI8) -> Self {
        let k4 = w.k.div_ceil(4) * 4;
        match path {
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 if Self::Amx.serves(k4) && amx::available() => Self::Amx,
            #[cfg(target_arch = "x86_64")]
            KernelPath::Avx512 if x86::has_vnni() => Self::Vnni,
            _ => Self::Scalar,
        }
    }

    /// Every kernel this CPU can run (for tests that compare them).
    #[cfg(test)]
    fn available() -> Vec<Self> {
        let mut kernels = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if x86::has_vnni() {
                kernels.push(Self::Vnni);
            }
            if amx::available() {
                kernels.push(Self::Amx);
            }
        }
        kernels
    }

    /// Whether the kernel computes products of `k4` steps (a multiple of four).
    fn serves(self, k4: usize) -> bool {
        self != Self::Amx || k4.is_multiple_of(64)
    }

    /// Rows of `A` per tile.
    fn rows(self) -> usize {
        match self {
            Self::Scalar | Self::Vnni => MR,
            #[cfg(target_arch = "x86_64")]
            Self::Amx => amx::ROWS,
            #[cfg(not(target_arch = "x86_64"))]
            Self::Amx => unreachable!("AMX is never chosen off x86_64"),
        }
    }
}

/// `C = dequantise(quantise(A)·W_qᵀ) + bias` on `kernel` (which this CPU must run, from
/// [`IntKernel::choose`]): `A` is `m × w.k` with row stride `lda`, `C` is `m × w.n` with row
/// stride `ldc`.
// BLAS's argument list, as `gemm`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_i8(
    path: KernelPath,
    kernel: IntKernel,
    a: &[f32],
    lda: usize,
    m: usize,
    w: &PackedI8,
    bias: &[f32],
    c: &mut [f32],
    ldc: usize,
) {
    let (k, n) = (w.k, w.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(lda >= k && ldc >= n && bias.len() >= n);
    assert!(a.len() >= (m - 1) * lda + k && c.len() >= (m - 1) * ldc + n);
    let k4 = k.div_ceil(4) * 4;
    assert!(kernel.serves(k4), "{kernel:?} does not serve k {k}");
    let tile_rows = kernel.rows();
    QUANTISED_A.with_borrow_mut(|(qa, quant)| {
        // Whole tiles of rows: the rows past `m` hold anything, and their sums are dropped.
        qa.resize(m.next_multiple_of(tile_rows) * k4, 0);
        quant.clear();
        for (i, out) in qa.chunks_exact_mut(k4).take(m).enumerate() {
            quant.push(quantise_row(path, &a[i * lda..][..k], out));
        }
        let mut sums = Sums([[0; NR]; ACC_ROWS]);
        let acc = &mut sums.0;
        let panel_len = (k4 / 4) * NR * 4;
        let mut products = |amx_tiles: Option<&AmxTiles>| {
            for q in 0..n.div_ceil(NR) {
                let panel = &w.data[q * panel_len..][..panel_len];
                // The first tile of a panel fetches the next one, which may come from memory.
                let next = w.data.get((q + 1) * panel_len..).unwrap_or_default();
                let cols = NR.min(n - q * NR);
                let mut row = 0;
                while row < m {
                    let rows = tile_rows.min(m - row);
                    let a_rows = &qa[row * k4..(row + tile_rows) * k4];
                    match (kernel, amx_tiles) {
                        #[cfg(target_arch = "x86_64")]
                        (IntKernel::Amx, Some(tiles)) => tiles.block(a_rows, k4, panel, acc),
                        #[cfg(target_arch = "x86_64")]
                        (IntKernel::Vnni, _) => {
                            let next = if row == 0 { next } else { &[] };
                            let tile = (&mut acc[..MR]).try_into().expect("MR rows");
                            x86::tile_vnni(a_rows, k4, rows, panel, tile, next);
                        }
                        (IntKernel::Amx, _) => unreachable!("AMX runs inside `with_tiles`"),
                        _ => tile_scalar(a_rows, k4, rows, panel, &mut acc[..rows]),
                    }
                    let span = q * NR..q * NR + cols;
                    dequantise(
                        path,
                        &mut c[row * ldc + q * NR..],
                        ldc,
                        &acc[..rows],
                        &quant[row..row + rows],
                        (&w.sums[span.clone()], &w.scales[span.clone()], &bias[span]),
                    );
                    row += rows;
                }
            }
        };
        match kernel {
            #[cfg(target_arch = "x86_64")]
            IntKernel::Amx => amx::with_tiles(|tiles| products(Some(tiles))),
            _ => products(None),
        }
    });
}

/// The AMX kernel's proof of configured tiles (none off x86_64).
#[cfg(target_arch = "x86_64")]
type AmxTiles = amx::Tiles;
#[cfg(not(target_arch = "x86_64"))]
type AmxTiles = std::convert::Infallible;

/// The reference: exact integer dot products.
fn tile_scalar(a: &[u8], k4: usize, rows: usize, panel: &[i8], acc: &mut [[i32; NR]]) {
    for (r, acc) in acc[..rows].iter_mut().enumerate() {
        *acc = [0; NR];
        let a_row = &a[r * k4..][..k4];
        for (group, lines) in a_row.chunks_exact(4).zip(panel.chunks_exact(NR * 4)) {
            for (slot, w) in acc.iter_mut().zip(lines.chunks_exact(4)) {
                for (&x, &y) in group.iter().zip(w) {
                    *slot += i32::from(x) * i32::from(y);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{MR, NR};

    pub(super) fn has_vnni() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")
    }

    /// Up to [`MR`] rows × [`NR`] columns with `vpdpbusd` (u8 × i8, four products per lane),
    /// asking the CPU to fetch `next` (the panel later tiles read, or empty) into L2 meanwhile.
    pub(super) fn tile_vnni(
        a: &[u8],
        k4: usize,
        rows: usize,
        panel: &[i8],
        acc: &mut [[i32; NR]; MR],
        next: &[i8],
    ) {
        assert!((1..=MR).contains(&rows) && a.len() >= rows * k4 && panel.len() >= k4 * NR);
        assert!(has_vnni() && k4.is_multiple_of(4));
        let next_groups = (next.len() / (NR * 4)).min(k4 / 4);
        let (a, panel, next) = (a.as_ptr(), panel.as_ptr(), next.as_ptr());
        // SAFETY: the CPU has AVX-512F and VNNI (asserted), and the asserts bound every read
        // (`next` holds `next_groups` groups; prefetches never fault in any case).
        unsafe {
            match rows {
                1 => vnni_rows::<1>(a, k4, panel, acc, next, next_groups),
                2 => vnni_rows::<2>(a, k4, panel, acc, next, next_groups),
                3 => vnni_rows::<3>(a, k4, panel, acc, next, next_groups),
                4 => vnni_rows::<4>(a, k4, panel, acc, next, next_groups),
                5 => vnni_rows::<5>(a, k4, panel, acc, next, next_groups),
                6 => vnni_rows::<6>(a, k4, panel, acc, next, next_groups),
                7 => vnni_rows::<7>(a, k4, panel, acc, next, next_groups),
                _ => vnni_rows::<8>(a, k4, panel, acc, next, next_groups),
            }
        }
    }

    #[target_feature(enable = "avx512f,avx512vnni")]
    unsafe fn vnni_rows<const R: usize>(
        a: *const u8,
        k4: usize,
        panel: *const i8,
        out: &mut [[i32; NR]; MR],
        next: *const i8,
        next_groups: usize,
    ) {
        let mut acc = [[_mm512_setzero_si512(); 2]; R];
        for g in 0..k4 / 4 {
            if g < next_groups {
                // A group of the panel is two cache lines.
                let line = next.wrapping_add(g * NR * 4);
                _mm_prefetch::<_MM_HINT_T1>(line);
                _mm_prefetch::<_MM_HINT_T1>(line.wrapping_add(64));
            }
            // SAFETY: group g < k4 / 4 lies inside the panel and inside each row.
            let (b0, b1) = unsafe {
                let line = panel.add(g * NR * 4);
                (
                    _mm512_loadu_si512(line.cast()),
                    _mm512_loadu_si512(line.add(64).cast()),
                )
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = unsafe { a.add(r * k4 + g * 4).cast::<i32>().read_unaligned() };
                let x = _mm512_set1_epi32(x);
                acc[0] = _mm512_dpbusd_epi32(acc[0], x, b0);
                acc[1] = _mm512_dpbusd_epi32(acc[1], x, b1);
            }
        }
        for (o, acc) in out.iter_mut().zip(&acc) {
            // SAFETY: each output row holds NR = 32 i32.
            unsafe {
                _mm512_storeu_si512(o.as_mut_ptr().cast(), acc[0]);
                _mm512_storeu_si512(o.as_mut_ptr().add(16).cast(), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int8_products_are_exact_on_every_path_and_close_to_f32() {
        // AMX takes the shapes whose k is a multiple of 64: one or two row tiles, full or
        // partial; one or more panels, full or partial.
        let shapes = [
            (1, 3, 1),
            (9, 37, 45),
            (14, 384, 64),
            (1, 64, 32),
            (40, 128, 45),
            (70, 1536, 33),
        ];
        for &(m, k, n) in &shapes {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 40.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 60.0)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 / 10.0).collect();
            let packed = PackedI8::from_weight(&w, n, k);
            let run = |path| {
                let mut c = vec![0.0f32; m * n];
                let kernel = IntKernel::choose(path, &packed);
                gemm_i8(path, kernel, &a, k, m, &packed, &bias, &mut c, n);
                c
            };
            let scalar = run(KernelPath::Scalar);
            let same = |got: &[f32]| {
                got.iter()
                    .zip(&scalar)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            };
            for path in KernelPath::available() {
                assert!(same(&run(path)), "{path} {m}x{k}x{n}");
            }
            for kernel in IntKernel::available() {
                if !kernel.serves(k.div_ceil(4) * 4) {
                    continue;
                }
                let mut c = vec![f32::NAN; m * n];
                gemm_i8(
                    KernelPath::Scalar,
                    kernel,
                    &a,
                    k,
                    m,
                    &packed,
                    &bias,
                    &mut c,
                    n,
                );
                assert!(same(&c), "{kernel:?} {m}x{k}x{n}");
            }
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 =
                        (0..k).map(|p| a[i * k + p] * w[j * k + p]).sum::<f32>() + bias[j];
                    let got = scalar[i * n + j];
                    assert!(
                        (got - exact).abs() < 0.02 * (k as f32).sqrt(),
                        "{got} vs {exact}"
                    );
                }
            }
        }
    }
}
