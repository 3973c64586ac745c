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
use std::ops::Range;

use super::KernelPath;
use super::split::{Parallelism, SharedOut};

thread_local! {
    /// `A` packed for the current call; reused, so a forward pass does not allocate per product.
    static PACKED_A: RefCell<PackedA> = RefCell::new(PackedA::default());
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

    /// Pack `B = Sᵀ` for a row-major `S` (`n` rows of at least `k` values, row stride `ld`):
    /// `B[p][j] = src[j·ld + p]`, reusing this buffer.
    pub(crate) fn pack_transposed(&mut self, src: &[f32], ld: usize, k: usize, n: usize) {
        assert!(
            n == 0 || src.len() >= (n - 1) * ld + k,
            "pack_transposed: source is too short"
        );
        let panels = n.div_ceil(NR);
        self.k = k;
        self.n = n;
        self.data.clear();
        self.data.resize(panels * k * NR, 0.0);
        for (j, row) in src.chunks(ld).take(n).enumerate() {
            let panel = &mut self.data[(j / NR) * k * NR + j % NR..];
            for (p, &x) in row[..k].iter().enumerate() {
                panel[p * NR] = x;
            }
        }
    }

    /// Make this an uninitialised-looking `k × n` matrix (contents unspecified) for
    /// [`gemm_to_panels`] to fill.
    fn shape(&mut self, k: usize, n: usize) {
        self.k = k;
        self.n = n;
        let len = n.div_ceil(NR) * k * NR;
        if self.data.len() < len {
            self.data.resize(len, 0.0);
        }
    }

    /// Panel `q`: `k` lines of [`NR`] values.
    pub(crate) fn panel(&self, q: usize) -> &[f32] {
        &self.data[q * self.k * NR..(q + 1) * self.k * NR]
    }

    /// Every panel, mutably, each `k` lines of [`NR`] values.
    pub(crate) fn panels_mut(&mut self) -> &mut [f32] {
        let len = self.n.div_ceil(NR) * self.k * NR;
        &mut self.data[..len]
    }
}

/// An `m × k` matrix `A` packed into tiles of [`ROWS_MAX`] rows: tile `t` holds, for each `p` in
/// `0..k`, the values `A[t·ROWS_MAX + r][p]` for `r = 0..ROWS_MAX` (zero past `m`).
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedA {
    m: usize,
    k: usize,
    data: Vec<f32>,
}

impl PackedA {
    fn shape(&mut self, m: usize, k: usize) {
        self.m = m;
        self.k = k;
        let len = m.div_ceil(ROWS_MAX) * ROWS_MAX * k;
        if self.data.len() < len {
            self.data.resize(len, 0.0);
        }
    }

    /// Pack `A[i][p] = src[i·ld + p]` (`m` rows of a row-major matrix), reusing this buffer.
    pub(crate) fn pack_rows(&mut self, src: &[f32], ld: usize, m: usize, k: usize) {
        self.shape(m, k);
        if m > 0 {
            assert!(
                src.len() >= (m - 1) * ld + k,
                "pack_rows: source is too short"
            );
        }
        pack_a(src, ld, m, k, &mut self.data);
    }

    /// Pack `A = Sᵀ` for a row-major `S` (`k` rows of at least `m` values, row stride `ld`):
    /// `A[i][p] = src[p·ld + i]`, reusing this buffer.
    pub(crate) fn pack_columns(&mut self, src: &[f32], ld: usize, m: usize, k: usize) {
        self.shape(m, k);
        if m == 0 {
            return;
        }
        assert!(
            k == 0 || src.len() >= (k - 1) * ld + m,
            "pack_columns: source is too short"
        );
        for (t, tile) in self
            .data
            .chunks_exact_mut(ROWS_MAX * k)
            .take(m.div_ceil(ROWS_MAX))
            .enumerate()
        {
            let rows = ROWS_MAX.min(m - t * ROWS_MAX);
            for (p, step) in tile.chunks_exact_mut(ROWS_MAX).enumerate() {
                let line = &src[p * ld + t * ROWS_MAX..][..rows];
                step[..rows].copy_from_slice(line);
                step[rows..].fill(0.0);
            }
        }
    }

    fn tiles(&self) -> impl Iterator<Item = &[f32]> {
        self.data
            .chunks_exact(ROWS_MAX * self.k.max(1))
            .take(self.m.div_ceil(ROWS_MAX))
    }
}

/// `C = A·B (+ bias)`: `A` is `m × b.k()` with row stride `lda`, `C` is `m × b.n()` with row
/// stride `ldc`; with [`Parallelism::TwoWay`], each half of `C`'s panels on its own thread.
/// Panics if a slice is too short for the extents (a caller bug).
// BLAS's argument list: each matrix with its stride, spelled out at every call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    path: KernelPath,
    par: Parallelism,
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
    // Taken out of the thread-local for the call: a thread waiting in `rayon::join` may run
    // another product meanwhile, which then packs into a buffer of its own.
    let mut packed = PACKED_A.take();
    packed.pack_rows(a, lda, m, k);
    let out = SharedOut::new(c);
    par.run(n.div_ceil(NR), |panels| {
        drive(path, &packed, b, false, panels, |q, row, rows, tile| {
            let cols = NR.min(n - q * NR);
            let start = row * ldc + q * NR;
            let bias = bias.map(|b| &b[q * NR..][..cols]);
            match tile {
                #[cfg(target_arch = "x86_64")]
                Tile::Registers(a_tile, next) => {
                    // A whole panel goes straight from registers to C.
                    let out = out.region(start, rows, NR, ldc);
                    // SAFETY: `region` checked the rows × NR values at stride ldc; this panel's
                    // columns are written by this call only.
                    unsafe {
                        x86::tile_avx512_into(a_tile, rows, b.panel(q), k, bias, out, ldc, next);
                    }
                }
                Tile::Values(acc) => {
                    let out = out.region(start, rows, cols, ldc);
                    for (r, acc) in acc[..rows].iter().enumerate() {
                        for (j, &v) in acc[..cols].iter().enumerate() {
                            let v = bias.map_or(v, |bias| v + bias[j]);
                            // SAFETY: inside the region `region` checked; this panel's columns
                            // are written by this call only.
                            unsafe { *out.add(r * ldc + j) = v };
                        }
                    }
                }
            }
        });
    });
    PACKED_A.set(packed);
}

/// `C = A·B` with `A` packed already, written as the panels of `c` (so `C` can be the `B` of a
/// later product): `c` becomes an `a.m × b.n` matrix. Every element as in [`gemm`] (no bias).
pub(crate) fn gemm_to_panels(path: KernelPath, a: &PackedA, b: &PackedB, c: &mut PackedB) {
    assert_eq!(a.k, b.k, "gemm_to_panels: inner dimensions differ");
    let (m, k) = (a.m, b.k);
    c.shape(m, b.n);
    drive(
        path,
        a,
        b,
        true,
        0..b.n.div_ceil(NR),
        |q, row, rows, tile| {
            // Panel q of C: line `row + r` holds C[row + r][q·NR ..][..NR] (columns past `n` are
            // products with B's zero padding).
            let out = &mut c.data[q * m * NR + row * NR..];
            match tile {
                #[cfg(target_arch = "x86_64")]
                Tile::Registers(a_tile, next) => {
                    assert!(out.len() >= rows * NR);
                    // SAFETY: `out` holds these rows' lines (asserted) and is borrowed mutably.
                    unsafe {
                        x86::tile_avx512_into(
                            a_tile,
                            rows,
                            b.panel(q),
                            k,
                            None,
                            out.as_mut_ptr(),
                            NR,
                            next,
                        );
                    }
                }
                Tile::Values(acc) => {
                    for (line, acc) in out.chunks_exact_mut(NR).zip(&acc[..rows]) {
                        line.copy_from_slice(acc);
                    }
                }
            }
        },
    );
}

/// `Cᵀ` for `C = A·B` with `A` packed already: `out[start + j·ldo + i] = C[i][j]`. Every
/// element as in [`gemm`] (no bias).
///
/// # Safety
/// No other thread reads or writes those elements of `out` meanwhile.
pub(crate) unsafe fn gemm_transposed(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    out: &SharedOut<'_>,
    start: usize,
    ldo: usize,
) {
    assert_eq!(a.k, b.k, "gemm_transposed: inner dimensions differ");
    let (m, n) = (a.m, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldo >= m, "gemm_transposed: stride {ldo} for {m} rows");
    let out = out.region(start, n, m, ldo);
    drive_values(path, a, b, |q, row, rows, acc| {
        let cols = NR.min(n - q * NR);
        for c in 0..cols {
            let line = (q * NR + c) * ldo + row;
            for (i, acc) in acc[..rows].iter().enumerate() {
                // SAFETY: column q·NR + c < n and row + i < m lie inside the region checked
                // above; the caller's contract makes them this thread's.
                unsafe { *out.add(line + i) = acc[c] };
            }
        }
    });
}

/// What [`drive`] hands its sink for one tile of `C`.
enum Tile<'a> {
    /// The AVX-512 kernel can write this full-width tile itself, from this packed tile of `A`,
    /// prefetching the second slice (the next panel of `B`, or empty).
    #[cfg(target_arch = "x86_64")]
    Registers(&'a [f32], &'a [f32]),
    /// The tile's values (rows beyond the tile's row count are unspecified).
    Values(&'a [[f32; NR]; ROWS_MAX]),
}

/// Run the kernel of `path` over every (panel of `B` in `panels`, tile of `A`) pair, panel by
/// panel, and hand each tile of `C` to `sink(panel, first row, rows, tile)`.
/// `any_width`: the sink takes registers for partial panels too (its `C` has [`NR`] columns per
/// panel).
fn drive(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    any_width: bool,
    panels: Range<usize>,
    mut sink: impl FnMut(usize, usize, usize, Tile<'_>),
) {
    let (m, k, n) = (a.m, a.k, b.n);
    let mut tile = [[0.0f32; NR]; ROWS_MAX];
    let last = panels.end;
    for q in panels {
        let panel = b.panel(q);
        let cols = NR.min(n - q * NR);
        for (t, a_tile) in a.tiles().enumerate() {
            let row = t * ROWS_MAX;
            let rows = ROWS_MAX.min(m - row);
            #[cfg(target_arch = "x86_64")]
            if path == KernelPath::Avx512 && (cols == NR || any_width) {
                // The first tile of a panel fetches the next one, which may come from memory.
                let next = match t == 0 && q + 1 < last {
                    true => b.panel(q + 1),
                    false => &[],
                };
                sink(q, row, rows, Tile::Registers(a_tile, next));
                continue;
            }
            kernel(path, a_tile, rows, panel, k, &mut tile);
            sink(q, row, rows, Tile::Values(&tile));
        }
    }
}

/// [`drive`] with every tile as values.
fn drive_values(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    mut sink: impl FnMut(usize, usize, usize, &[[f32; NR]; ROWS_MAX]),
) {
    let (m, k, n) = (a.m, a.k, b.n);
    let mut tile = [[0.0f32; NR]; ROWS_MAX];
    for q in 0..n.div_ceil(NR) {
        let panel = b.panel(q);
        for (t, a_tile) in a.tiles().enumerate() {
            let row = t * ROWS_MAX;
            let rows = ROWS_MAX.min(m - row);
            kernel(path, a_tile, rows, panel, k, &mut tile);
            sink(q, row, rows, &tile);
        }
    }
}

/// One tile of `C` into `tile` by the kernel of `path`.
fn kernel(
    path: KernelPath,
    a_tile: &[f32],
    rows: usize,
    panel: &[f32],
    k: usize,
    tile: &mut [[f32; NR]; ROWS_MAX],
) {
    match path {
        KernelPath::Scalar => tile_scalar(a_tile, rows, panel, k, tile),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::tile_avx2(a_tile, rows, panel, k, tile),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::tile_avx512(a_tile, rows, panel, k, tile),
        #[cfg(not(target_arch = "x86_64"))]
        _ => tile_scalar(a_tile, rows, panel, k, tile),
    }
}

/// Pack `A` (`m × k`, row stride `lda`) into tiles of [`ROWS_MAX`] rows: tile `t` holds, for each
/// `p`, the values `A[t·ROWS_MAX + r][p]` for `r = 0..ROWS_MAX` (zero past `m`).
fn pack_a(a: &[f32], lda: usize, m: usize, k: usize, packed: &mut [f32]) {
    let tiles = m.div_ceil(ROWS_MAX);
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
    /// stride `ldo`, and asking the CPU to fetch `next` (the panel the following tiles will
    /// read, or empty) into the L2 cache meanwhile, a line of it per step of `k`.
    ///
    /// # Safety
    /// `out` points at `rows` rows of [`NR`] writable values at stride `ldo`, which no other
    /// thread reads or writes meanwhile.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile_avx512_into(
        a: &[f32],
        rows: usize,
        panel: &[f32],
        k: usize,
        bias: Option<&[f32]>,
        out: *mut f32,
        ldo: usize,
        next: &[f32],
    ) {
        check(a, rows, panel, k);
        let next_lines = (next.len() / NR).min(k);
        assert!(ldo >= NR);
        assert!(bias.is_none_or(|b| b.len() >= NR));
        assert!(is_x86_feature_detected!("avx512f"));
        let (a, panel) = (a.as_ptr(), panel.as_ptr());
        let bias = bias.map_or(std::ptr::null(), <[f32]>::as_ptr);
        let next = next.as_ptr();
        // SAFETY: as in `tile_avx512`; the caller bounds every write, the assert above the bias
        // read, and `next` holds `next_lines` lines (prefetches never fault in any case).
        unsafe {
            by_rows!(
                rows,
                avx512_rows_into,
                a,
                panel,
                k,
                bias,
                out,
                ldo,
                next,
                next_lines
            )
        }
    }

    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_rows_into<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
        bias: *const f32,
        out: *mut f32,
        ldo: usize,
        next: *const f32,
        next_lines: usize,
    ) {
        // SAFETY: the caller's contract (see `tile_avx512_into`).
        let mut acc = unsafe { avx512_accumulate::<R>(a, panel, k, next, next_lines) };
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

    /// The register tile: `R` rows × [`NR`] columns accumulated over the whole of `k`, with
    /// a prefetch of line `p` of `next` at step `p < next_lines`.
    #[target_feature(enable = "avx512f")]
    unsafe fn avx512_accumulate<const R: usize>(
        a: *const f32,
        panel: *const f32,
        k: usize,
        next: *const f32,
        next_lines: usize,
    ) -> [[__m512; 2]; R] {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        for p in 0..k {
            if p < next_lines {
                // A line of NR floats is two cache lines.
                let line = next.wrapping_add(p * NR).cast::<i8>();
                _mm_prefetch::<_MM_HINT_T1>(line);
                _mm_prefetch::<_MM_HINT_T1>(line.wrapping_add(64));
            }
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
        let acc = unsafe { avx512_accumulate::<R>(a, panel, k, std::ptr::null(), 0) };
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
mod tests;
