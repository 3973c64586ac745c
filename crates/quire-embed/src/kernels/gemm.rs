//! Single-precision matrix products `C = A·B (+ bias)` with `B` packed ahead of time.
//!
//! **The contract every kernel path keeps**: each output element starts from `0.0`, accumulates
//! `a[i][p] * b[p][j]` for `p = 0, 1, …, k-1` in that order with one fused multiply-add per
//! step, and then adds `bias[j]`. Nothing else touches it: no blocking over `k`, no partial sums,
//! no dependence on `m`, on the tile a row falls in, or on the thread. So the AVX-512, AVX2 and
//! scalar paths produce the same bits, and a row of `C` depends only on its row of `A`.
//!
//! Vector kernels keep a tile of `C` in registers (rows × one panel of [`NR`] columns) and run
//! down the whole of `k`; `B` is packed into panels of [`NR`] columns so a step of `k` reads one
//! contiguous line pair, and `A` is packed per call into tiles of [`ROWS_MAX`] rows interleaved
//! by `k`, so a step broadcasts from consecutive addresses.

// The vector kernels read through raw pointers; `gemm` checks every extent before calling them.
#![allow(unsafe_code)]

use std::cell::RefCell;

use super::KernelPath;

thread_local! {
    /// `A` packed for the current call; reused, so a forward pass does not allocate per product.
    static PACKED_A: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Columns per packed panel of `B`.
pub(crate) const NR: usize = 32;

/// A `k × n` matrix `B` packed into `ceil(n / NR)` panels; panel `q` holds, for each `p` in
/// `0..k`, the [`NR`] values `B[p][q·NR ..]`, zero-padded past `n`.
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedB {
    k: usize,
    n: usize,
    data: Vec<f32>,
}

impl PackedB {
    /// Pack `B[p][j] = get(p, j)` for a `k × n` matrix, reusing this buffer.
    pub(crate) fn pack_with(&mut self, k: usize, n: usize, get: impl Fn(usize, usize) -> f32) {
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        for (q, panel) in self.data.chunks_exact_mut(k * NR).enumerate() {
            let cols = NR.min(n - q * NR);
            for (p, line) in panel.chunks_exact_mut(NR).enumerate() {
                for (c, slot) in line[..cols].iter_mut().enumerate() {
                    *slot = get(p, q * NR + c);
                }
            }
        }
    }

    /// `B = Wᵀ` for a linear layer's weight `W` (`n` rows of `k` inputs, row-major).
    pub(crate) fn from_weight(w: &[f32], n: usize, k: usize) -> Self {
        let mut packed = Self::default();
        packed.pack_with(k, n, |p, j| w[j * k + p]);
        packed
    }

    fn panel(&self, q: usize) -> &[f32] {
        &self.data[q * self.k * NR..(q + 1) * self.k * NR]
    }
}

/// `C = A·B (+ bias)`: `A` is `m × b.k()` with row stride `lda`, `C` is `m × b.n()` with row
/// stride `ldc`. Panics if a slice is too short for the extents (a caller bug).
// BLAS's argument list: each matrix with its stride, spelled out at every call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    path: KernelPath,
    a: &[f32],
    lda: usize,
    m: usize,
    b: &PackedB,
    bias: Option<&[f32]>,
    c: &mut [f32],
    ldc: usize,
) {
    let (k, n) = (b.k, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        lda >= k && ldc >= n,
        "gemm strides {lda}/{ldc} for k {k}, n {n}"
    );
    assert!(a.len() >= (m - 1) * lda + k, "gemm: A is too short");
    assert!(c.len() >= (m - 1) * ldc + n, "gemm: C is too short");
    assert!(
        bias.is_none_or(|bias| bias.len() >= n),
        "gemm: bias is too short"
    );
    PACKED_A.with_borrow_mut(|packed| {
        pack_a(a, lda, m, k, packed);
        let mut tile = [[0.0f32; NR]; ROWS_MAX];
        for q in 0..n.div_ceil(NR) {
            let panel = b.panel(q);
            let cols = NR.min(n - q * NR);
            let tiles = m.div_ceil(ROWS_MAX);
            for (t, a_tile) in packed.chunks_exact(ROWS_MAX * k).take(tiles).enumerate() {
                let row = t * ROWS_MAX;
                let rows = ROWS_MAX.min(m - row);
                #[cfg(target_arch = "x86_64")]
                if path == KernelPath::Avx512 && cols == NR {
                    // A whole panel goes straight from registers to C.
                    let out = &mut c[row * ldc + q * NR..];
                    let bias = bias.map(|b| &b[q * NR..][..NR]);
                    x86::tile_avx512_into(a_tile, rows, panel, k, bias, out, ldc);
                    continue;
                }
                match path {
                    KernelPath::Scalar => tile_scalar(a_tile, rows, panel, k, &mut tile),
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx2Fma => x86::tile_avx2(a_tile, rows, panel, k, &mut tile),
                    #[cfg(target_arch = "x86_64")]
                    KernelPath::Avx512 => x86::tile_avx512(a_tile, rows, panel, k, &mut tile),
                }
                for (r, acc) in tile[..rows].iter().enumerate() {
                    let out = &mut c[(row + r) * ldc + q * NR..][..cols];
                    match bias {
                        Some(bias) => {
                            let bias = &bias[q * NR..][..cols];
                            for ((o, &v), &b) in out.iter_mut().zip(acc).zip(bias) {
                                *o = v + b;
                            }
                        }
                        None => out.copy_from_slice(&acc[..cols]),
                    }
                }
            }
        }
    });
}

/// Pack `A` (`m × k`, row stride `lda`) into tiles of [`ROWS_MAX`] rows: tile `t` holds, for each
/// `p`, the values `A[t·ROWS_MAX + r][p]` for `r = 0..ROWS_MAX` (zero past `m`).
fn pack_a(a: &[f32], lda: usize, m: usize, k: usize, packed: &mut Vec<f32>) {
    let tiles = m.div_ceil(ROWS_MAX);
    if packed.len() < tiles * ROWS_MAX * k {
        packed.resize(tiles * ROWS_MAX * k, 0.0);
    }
    for (t, tile) in packed
        .chunks_exact_mut(ROWS_MAX * k)
        .take(tiles)
        .enumerate()
    {
        let rows = ROWS_MAX.min(m - t * ROWS_MAX);
        let src: [&[f32]; ROWS_MAX] = std::array::from_fn(|r| {
            if r < rows {
                &a[(t * ROWS_MAX + r) * lda..][..k]
            } else {
                &[]
            }
        });
        if rows == ROWS_MAX {
            for (p, step) in tile.chunks_exact_mut(ROWS_MAX).enumerate() {
                for (slot, row) in step.iter_mut().zip(&src) {
                    *slot = row[p];
                }
            }
        } else {
            for (p, step) in tile.chunks_exact_mut(ROWS_MAX).enumerate() {
                for (r, slot) in step.iter_mut().enumerate() {
                    *slot = if r < rows { src[r][p] } else { 0.0 };
                }
            }
        }
    }
}

/// The most rows any kernel keeps in registers.
pub(crate) const ROWS_MAX: usize = 12;

/// The reference kernel: the contract, spelled out.
fn tile_scalar(a: &[f32], rows: usize, panel: &[f32], k: usize, out: &mut [[f32; NR]; ROWS_MAX]) {
    for (r, acc) in out[..rows].iter_mut().enumerate() {
        *acc = [0.0; NR];
        for (p, line) in panel.chunks_exact(NR).take(k).enumerate() {
            let x = a[p * ROWS_MAX + r];
            for (slot, &y) in acc.iter_mut().zip(line) {
                *slot = x.mul_add(y, *slot);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{NR, ROWS_MAX};

    /// Dispatch a runtime row count to a kernel specialised for it, so its accumulators are an
    /// array of registers of fixed size.
    macro_rules! by_rows {
        ($rows:expr, $kernel:ident, $($arg:expr),*) => {
            match $rows {
                1 => $kernel::<1>($($arg),*),
                2 => $kernel::<2>($($arg),*),
                3 => $kernel::<3>($($arg),*),
                4 => $kernel::<4>($($arg),*),
                5 => $kernel::<5>($($arg),*),
                6 => $kernel::<6>($($arg),*),
                7 => $kernel::<7>($($arg),*),
                8 => $kernel::<8>($($arg),*),
                9 => $kernel::<9>($($arg),*),
                10 => $kernel::<10>($($arg),*),
                11 => $kernel::<11>($($arg),*),
                _ => $kernel::<12>($($arg),*),
            }
        };
    }

    /// Bounds every kernel relies on: a packed tile of `A` with `k` steps of [`ROWS_MAX`], and
    /// `k` lines of [`NR`] in `panel`.
    fn check(a: &[f32], rows: usize, panel: &[f32], k: usize) {
        assert!((1..=ROWS_MAX).contains(&rows));
        assert!(a.len() >= k * ROWS_MAX && panel.len() >= k * NR);
    }

    pub(super) fn tile_avx512(
        a: &[f32],
        rows: usize,
        panel: &[f32],
        k: usize,
        out: &mut [[f32; NR]; ROWS_MAX],
    ) {
        check(a, rows, panel, k);
        assert!(is_x86_feature_detected!("avx512f"));
        let (a, panel) = (a.as_ptr(), panel.as_ptr());
        // SAFETY: the CPU has AVX-512F (asserted above; `KernelPath::detect` chose this path
        // from the same test) and `check` bounds every read.
        unsafe { by_rows!(rows, avx512_rows, a, panel, k, out) }
    }

    /// [`tile_avx512`] writing `rows` rows of [`NR`] values (plus `bias`) into `out` at row
    /// stride `ldo`.
    pub(super) fn tile_avx512_into(
        a: &[f32],
        rows: usize,
        panel: &[f32],
        k: usize,
        bias: Option<&[f32]>,
        out: &mut [f32],
        ldo: usize,
    ) {
        check(a, rows, panel, k);
        assert!(out.len() >= (rows - 1) * ldo + NR && ldo >= NR);
        assert!(bias.is_none_or(|b| b.len() >= NR));
        assert!(is_x86_feature_detected!("avx512f"));
        let (a, panel) = (a.as_ptr(), panel.as_ptr());
        let bias = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        let out = out.as_mut_ptr();
        // SAFETY: as in `tile_avx512`; the asserts above bound every write and the bias read.
        unsafe { by_rows!(rows, avx512_rows_into, a, panel, k, bias, out, ldo) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_rows_into<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
        bias: *const f32,
        out: *mut f32,
        ldo: usize,
    ) {
        // SAFETY: the caller's contract (see `tile_avx512_into`).
        let mut acc = unsafe { avx512_accumulate::<R>(a, panel, k) };
        if !bias.is_null() {
            // SAFETY: a non-null bias holds NR values.
            let (b0, b1) = unsafe { (_mm512_loadu_ps(bias), _mm512_loadu_ps(bias.add(16))) };
            for acc in &mut acc {
                acc[0] = _mm512_add_ps(acc[0], b0);
                acc[1] = _mm512_add_ps(acc[1], b1);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            // SAFETY: row r < R of `out` holds NR values.
            unsafe {
                let o = out.add(r * ldo);
                _mm512_storeu_ps(o, acc[0]);
                _mm512_storeu_ps(o.add(16), acc[1]);
            }
        }
    }

    /// The register tile: `R` rows × [`NR`] columns accumulated over the whole of `k`.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_accumulate<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
    ) -> [[__m512; 2]; R] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..k {
            // SAFETY: p < k, so line p of the panel and step p of the tile are in bounds.
            let (b0, b1) = unsafe {
                let line = panel.add(p * NR);
                (_mm512_loadu_ps(line), _mm512_loadu_ps(line.add(16)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = _mm512_set1_ps(unsafe { *a.add(p * ROWS_MAX + r) });
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
        acc
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_rows<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
        out: &mut [[f32; NR]; ROWS_MAX],
    ) {
        // SAFETY: the caller's contract (see `tile_avx512`).
        let acc = unsafe { avx512_accumulate::<R>(a, panel, k) };
        for (o, acc) in out.iter_mut().zip(&acc) {
            // SAFETY: each output row holds NR = 32 floats.
            unsafe {
                _mm512_storeu_ps(o.as_mut_ptr(), acc[0]);
                _mm512_storeu_ps(o.as_mut_ptr().add(16), acc[1]);
            }
        }
    }

    pub(super) fn tile_avx2(
        a: &[f32],
        rows: usize,
        panel: &[f32],
        k: usize,
        out: &mut [[f32; NR]; ROWS_MAX],
    ) {
        check(a, rows, panel, k);
        assert!(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"));
        let (a, panel) = (a.as_ptr(), panel.as_ptr());
        // Sixteen ymm registers hold 6 rows × 16 columns: each half of the panel in turn.
        let mut start = 0;
        while start < rows {
            let now = (rows - start).min(6);
            for half in 0..2 {
                // SAFETY: the CPU has AVX2 and FMA (asserted above); `check` bounds every read
                // (row start + r of step p is at p·ROWS_MAX + start + r < k·ROWS_MAX).
                unsafe {
                    let a = a.add(start);
                    let out = &mut out[start..];
                    match now {
                        1 => avx2_rows::<1>(a, panel, k, half, out),
                        2 => avx2_rows::<2>(a, panel, k, half, out),
                        3 => avx2_rows::<3>(a, panel, k, half, out),
                        4 => avx2_rows::<4>(a, panel, k, half, out),
                        5 => avx2_rows::<5>(a, panel, k, half, out),
                        _ => avx2_rows::<6>(a, panel, k, half, out),
                    }
                }
            }
            start += now;
        }
    }

    #[target_feature(enable = "avx2,fma")]
    unsafe fn avx2_rows<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
        half: usize,
        out: &mut [[f32; NR]],
    ) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        for p in 0..k {
            // SAFETY: p < k and half < 2, so the 16 floats read are inside line p.
            let (b0, b1) = unsafe {
                let line = panel.add(p * NR + half * 16);
                (_mm256_loadu_ps(line), _mm256_loadu_ps(line.add(8)))
            };
            for (r, acc) in acc.iter_mut().enumerate() {
                // SAFETY: as above.
                let x = _mm256_set1_ps(unsafe { *a.add(p * ROWS_MAX + r) });
                acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
            }
        }
        for (o, acc) in out.iter_mut().zip(&acc) {
            // SAFETY: each output row holds NR = 32 floats; half * 16 + 16 <= 32.
            unsafe {
                let o = o.as_mut_ptr().add(half * 16);
                _mm256_storeu_ps(o, acc[0]);
                _mm256_storeu_ps(o.add(8), acc[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 20_001) as f32 / 10_000.0 - 1.0
            })
            .collect()
    }

    fn bits(xs: &[f32]) -> Vec<u32> {
        xs.iter().map(|x| x.to_bits()).collect()
    }

    /// Every available path gives the scalar contract's bits, whatever the shape, and a row's
    /// result does not depend on how many rows share the call.
    #[test]
    fn every_path_keeps_the_contract() {
        for &(m, k, n) in &[
            (1, 1, 1),
            (13, 37, 45),
            (30, 384, 64),
            (7, 5, 100),
            (25, 64, 33),
        ] {
            let a = matrix(m, k + 3, (m * k) as u32);
            let w = matrix(n, k, n as u32);
            let bias = matrix(1, n, 7);
            let b = PackedB::from_weight(&w, n, k);
            let mut want = vec![0.0; m * (n + 1)];
            gemm(
                KernelPath::Scalar,
                &a,
                k + 3,
                m,
                &b,
                Some(&bias),
                &mut want,
                n + 1,
            );
            for i in 0..m {
                for j in 0..n {
                    let mut acc = 0.0f32;
                    for p in 0..k {
                        acc = a[i * (k + 3) + p].mul_add(w[j * k + p], acc);
                    }
                    assert_eq!((acc + bias[j]).to_bits(), want[i * (n + 1) + j].to_bits());
                }
            }
            for path in KernelPath::available() {
                let mut got = vec![0.0; m * (n + 1)];
                gemm(path, &a, k + 3, m, &b, Some(&bias), &mut got, n + 1);
                assert_eq!(bits(&got), bits(&want), "{path:?} {m}x{k}x{n}");
                let mut last = vec![0.0; n + 1];
                gemm(
                    path,
                    &a[(m - 1) * (k + 3)..],
                    k + 3,
                    1,
                    &b,
                    Some(&bias),
                    &mut last,
                    n + 1,
                );
                assert_eq!(bits(&last[..n]), bits(&want[(m - 1) * (n + 1)..][..n]));
            }
        }
    }
}
