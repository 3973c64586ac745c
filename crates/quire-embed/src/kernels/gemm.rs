//! Single-precision matrix products `C = A·B (+ bias)` with `B` packed ahead of time.
//!
//! **The contract every kernel path keeps**: each output element starts from `0.0`, accumulates
//! `a[i][p] * b[p][j]` for `p = 0, 1, …, k-1` in that order with one fused multiply-add per
//! step, and then adds `bias[j]`. Nothing else touches it: no partial sums added together, no
//! dependence on `m`, on the tile a row falls in, or on the thread. So the AVX-512, AVX2 and
//! scalar paths produce the same bits, and a row of `C` depends only on its row of `A`.
//!
//! Vector kernels keep a tile of `C` in registers (rows × one panel of [`NR`] columns); `B` is
//! packed into panels of [`NR`] columns so a step of `k` reads one contiguous line pair. The
//! AVX-512 path runs over `k` in blocks of at most [`KC`] steps, so a block of a panel stays in
//! the L1 cache while every tile of `A` passes over it, and over `n` in column blocks whose `C`
//! stays in L2 from one block of `k` to the next; a block after the first reloads the sums the
//! previous one stored (an `f32` stored and loaded is the same `f32`, so each element is still
//! one chain in order). Packed panels (and the encoder's activations) start on a cache line
//! ([`Aligned`]), so no vector load or store straddles two. It reads `A` where it is when
//! every panel is full width; otherwise, and on the other paths, `A` is packed per call into
//! tiles of [`ROWS_MAX`] rows interleaved by `k`, so a step broadcasts from consecutive
//! addresses.

// The vector kernels read through raw pointers; `gemm` checks every extent before calling them.
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::Range;

use super::KernelPath;
use super::aligned::Aligned;
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
    data: Aligned<f32>,
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

    /// Panel `q`, mutably.
    pub(crate) fn panel_mut(&mut self, q: usize) -> &mut [f32] {
        &mut self.data[q * self.k * NR..(q + 1) * self.k * NR]
    }

    /// Panels: `ceil(n / NR)`.
    pub(crate) fn panel_count(&self) -> usize {
        self.n.div_ceil(NR)
    }
}

/// An `m × k` matrix `A` packed into tiles of [`ROWS_MAX`] rows: tile `t` holds, for each `p` in
/// `0..k`, the values `A[t·ROWS_MAX + r][p]` for `r = 0..ROWS_MAX` (zero past `m`).
#[derive(Clone, Debug, Default)]
pub(crate) struct PackedA {
    m: usize,
    k: usize,
    data: Aligned<f32>,
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
        (0..self.m.div_ceil(ROWS_MAX)).map(|t| self.tile(t))
    }

    /// Tile `t`: `k` steps of [`ROWS_MAX`] values.
    fn tile(&self, t: usize) -> &[f32] {
        &self.data[t * ROWS_MAX * self.k..(t + 1) * ROWS_MAX * self.k]
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
    assert!(k > 0, "gemm: k is 0");
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
    let source = source(path, a, lda, m, n, k, &mut packed);
    let out = SharedOut::new(c);
    par.run(n.div_ceil(NR), |panels| {
        drive(path, source, b, false, panels, |q, row, rows, tile| {
            let cols = NR.min(n - q * NR);
            let start = row * ldc + q * NR;
            let bias = bias.map(|b| &b[q * NR..][..cols]);
            match tile {
                #[cfg(target_arch = "x86_64")]
                Tile::Registers(block) => {
                    // A whole panel goes straight from registers to C.
                    let out = out.region(start, rows, NR, ldc);
                    // SAFETY: `region` checked the rows × NR values at stride ldc; this panel's
                    // columns are written (and a later block's sums read) by this call only.
                    unsafe { x86::tile_avx512_into(block, rows, bias, out, ldc) }
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

/// How [`gemm`] reads `A` (`m × k`, row stride `lda`) for a product `n` wide: where it is on
/// the register path when every panel is full width, else packed into `packed`.
fn source<'a>(
    path: KernelPath,
    a: &'a [f32],
    lda: usize,
    m: usize,
    n: usize,
    k: usize,
    packed: &'a mut PackedA,
) -> Source<'a> {
    #[cfg(target_arch = "x86_64")]
    if path == KernelPath::Avx512 && n.is_multiple_of(NR) {
        return Source::Rows { a, lda, m, k };
    }
    let _ = (path, n);
    packed.pack_rows(a, lda, m, k);
    Source::Packed(packed)
}

/// `C = A·B` with `A` packed already, written as the panels of `c` (so `C` can be the `B` of a
/// later product): `c` becomes an `a.m × b.n` matrix. Every element as in [`gemm`] (no bias).
/// Only `panels` of `C` are written (`C`'s panel `q` needs only `B`'s panel `q`).
pub(crate) fn gemm_to_panels(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    c: &mut PackedB,
    panels: Range<usize>,
) {
    assert_eq!(a.k, b.k, "gemm_to_panels: inner dimensions differ");
    assert!(a.k > 0, "gemm_to_panels: k is 0");
    assert!(panels.end <= b.n.div_ceil(NR), "gemm_to_panels: {panels:?}");
    let m = a.m;
    c.shape(m, b.n);
    drive(
        path,
        Source::Packed(a),
        b,
        true,
        panels,
        |q, row, rows, tile| {
            // Panel q of C: line `row + r` holds C[row + r][q·NR ..][..NR] (columns past `n` are
            // products with B's zero padding).
            let out = &mut c.data[q * m * NR + row * NR..];
            match tile {
                #[cfg(target_arch = "x86_64")]
                Tile::Registers(block) => {
                    assert!(out.len() >= rows * NR);
                    // SAFETY: `out` holds these rows' lines (asserted) and is borrowed mutably.
                    unsafe { x86::tile_avx512_into(block, rows, None, out.as_mut_ptr(), NR) }
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
/// element as in [`gemm`] (no bias). Only the columns of `C` in `panels` of [`NR`] are
/// written.
///
/// # Safety
/// No other thread reads or writes those elements of `out` meanwhile.
pub(crate) unsafe fn gemm_transposed(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    panels: Range<usize>,
    out: &SharedOut<'_>,
    start: usize,
    ldo: usize,
) {
    assert_eq!(a.k, b.k, "gemm_transposed: inner dimensions differ");
    assert!(a.k > 0, "gemm_transposed: k is 0");
    let (m, n) = (a.m, b.n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldo >= m, "gemm_transposed: stride {ldo} for {m} rows");
    let out = out.region(start, n, m, ldo);
    assert!(panels.end <= n.div_ceil(NR), "gemm_transposed: {panels:?}");
    drive_values(path, a, b, panels, |q, row, rows, acc| {
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
    /// The AVX-512 kernel can write this full-width tile itself, one block of `k` at a time.
    #[cfg(target_arch = "x86_64")]
    Registers(Block<'a>),
    /// The tile's values (rows beyond the tile's row count are unspecified).
    Values(&'a [[f32; NR]; ROWS_MAX]),
}

/// Most steps of `k` per block of the register path (blocks are equal: 384 steps are two of
/// 192): a block of a panel of `B` (at most 32 KiB) and of a tile of `A` (12 KiB) fit a 48 KiB
/// L1 cache, or at worst stay in L2, while every tile of `A` passes over the panel. Measured on
/// MiniLM's shapes at 256 rows: 64 and 128 slower, equal blocks of 192 for 384 steps faster
/// than 256 + 128.
#[cfg(target_arch = "x86_64")]
const KC: usize = 256;

/// Bytes of `C` per column block of the register path: the block stays in L2 from one block of
/// `k` to the next (a 256-token text's 1,536-wide `C` is 1.5 MiB, which the weights streaming
/// past would evict). Few rows make one block of every panel.
#[cfg(target_arch = "x86_64")]
const C_BLOCK_BYTES: usize = 512 * 1024;

/// One block of `k` for [`x86::tile_avx512_into`]: steps `k0..k1` of a tile of `A` and a panel
/// of `B`. A block after the first continues the partial sums the previous one stored in `C`,
/// so each element is still one chain of fused multiply-adds over `0..k` in order (an `f32`
/// stored and loaded is the same `f32`); only the last block adds the bias.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) struct Block<'a> {
    /// Steps `k0..k1` of the tile of `A`.
    a: BlockA<'a>,
    /// Lines `k0..k1` of the panel of `B`.
    panel: &'a [f32],
    /// `k1 - k0`.
    steps: usize,
    /// `k0 == 0`: the sums start from zero rather than from `C`.
    first: bool,
    /// `k1 == k`: the bias is added.
    last: bool,
    /// Lines `k0..k1` of the next panel of `B` to fetch meanwhile (or empty).
    next: &'a [f32],
}

/// Where a [`Block`] reads its tile of `A`.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
pub(crate) enum BlockA<'a> {
    /// Packed: step `p`'s values of the rows, one after another.
    Packed(&'a [f32]),
    /// Row-major, unpacked: row `r`'s value of step `p` at `r·lda + p`.
    Rows(&'a [f32], usize),
}

/// The `A` a product reads: packed, or row-major for the register path (which then needs no
/// packing at all).
#[derive(Clone, Copy)]
enum Source<'a> {
    Packed(&'a PackedA),
    /// `m × k`, row stride `lda`.
    #[cfg(target_arch = "x86_64")]
    Rows {
        a: &'a [f32],
        lda: usize,
        m: usize,
        k: usize,
    },
}

impl Source<'_> {
    fn m_k(&self) -> (usize, usize) {
        match *self {
            Self::Packed(a) => (a.m, a.k),
            #[cfg(target_arch = "x86_64")]
            Self::Rows { m, k, .. } => (m, k),
        }
    }
}

/// Run the kernel of `path` over every (panel of `B` in `panels`, tile of `A`) pair and hand
/// each tile of `C` to `sink(panel, first row, rows, tile)`: panel by panel, or for the
/// register path column block by column block, within one block of `k` by block of `k`, and
/// within that panel by panel.
/// `any_width`: the sink takes registers for partial panels too (its `C` has [`NR`] columns per
/// panel).
/// A [`Source::Rows`] needs every panel on the register path (a caller bug otherwise).
fn drive(
    path: KernelPath,
    a: Source<'_>,
    b: &PackedB,
    any_width: bool,
    panels: Range<usize>,
    mut sink: impl FnMut(usize, usize, usize, Tile<'_>),
) {
    let ((m, k), n) = (a.m_k(), b.n);
    #[allow(unused_mut)]
    let mut panels = panels;
    #[cfg(target_arch = "x86_64")]
    if path == KernelPath::Avx512 {
        // Panels below n / NR are full width; a partial last one takes the values path unless
        // the sink takes any width.
        let full_end = match any_width {
            true => panels.end,
            false => panels.end.min(n / NR).max(panels.start),
        };
        drive_registers(a, b, panels.start..full_end, &mut sink);
        panels = full_end..panels.end;
    }
    if panels.is_empty() {
        return;
    }
    #[allow(irrefutable_let_patterns)]
    let Source::Packed(a) = a else {
        panic!("drive: unpacked A off the register path")
    };
    let mut tile = [[0.0f32; NR]; ROWS_MAX];
    for q in panels {
        let panel = b.panel(q);
        for (t, a_tile) in a.tiles().enumerate() {
            let row = t * ROWS_MAX;
            let rows = ROWS_MAX.min(m - row);
            kernel(path, a_tile, rows, panel, k, &mut tile);
            sink(q, row, rows, Tile::Values(&tile));
        }
    }
}

/// The register path of [`drive`]: every tile of `C` in `panels`, by column blocks of panels
/// whose `C` fits [`C_BLOCK_BYTES`], and within a column block by blocks of at most [`KC`]
/// steps of `k` (blocks of equal size: 384 steps are two blocks of 192, not 256 and 128).
#[cfg(target_arch = "x86_64")]
fn drive_registers(
    a: Source<'_>,
    b: &PackedB,
    panels: Range<usize>,
    sink: &mut impl FnMut(usize, usize, usize, Tile<'_>),
) {
    let (m, k) = a.m_k();
    if m == 0 {
        return;
    }
    let kc = k.div_ceil(k.div_ceil(KC));
    let width = (C_BLOCK_BYTES / (m * NR * 4)).clamp(1, panels.len().max(1));
    let width = panels
        .len()
        .div_ceil(panels.len().div_ceil(width).max(1))
        .max(1);
    // Each panel's block of steps in the order they are computed.
    let mut visits = panels
        .clone()
        .step_by(width)
        .flat_map(|cols| {
            let cols = cols..(cols + width).min(panels.end);
            (0..k)
                .step_by(kc)
                .flat_map(move |k0| cols.clone().map(move |q| (q, k0)))
        })
        .peekable();
    while let Some((q, k0)) = visits.next() {
        let k1 = (k0 + kc).min(k);
        let panel = &b.panel(q)[k0 * NR..k1 * NR];
        // The first tile of a visit fetches the next visit's block into the L2 cache.
        let next = match visits.peek() {
            Some(&(q, k0)) => &b.panel(q)[k0 * NR..(k0 + kc).min(k) * NR],
            None => &[],
        };
        for t in 0..m.div_ceil(ROWS_MAX) {
            let row = t * ROWS_MAX;
            let rows = ROWS_MAX.min(m - row);
            let a = match a {
                Source::Packed(a) => BlockA::Packed(&a.tile(t)[k0 * ROWS_MAX..k1 * ROWS_MAX]),
                Source::Rows { a, lda, .. } => {
                    BlockA::Rows(&a[row * lda + k0..(row + rows - 1) * lda + k1], lda)
                }
            };
            let block = Block {
                a,
                panel,
                steps: k1 - k0,
                first: k0 == 0,
                last: k1 == k,
                next: if t == 0 { next } else { &[] },
            };
            sink(q, row, rows, Tile::Registers(block));
        }
    }
}

/// [`drive`] with every tile as values.
fn drive_values(
    path: KernelPath,
    a: &PackedA,
    b: &PackedB,
    panels: Range<usize>,
    mut sink: impl FnMut(usize, usize, usize, &[[f32; NR]; ROWS_MAX]),
) {
    let (m, k) = (a.m, a.k);
    let mut tile = [[0.0f32; NR]; ROWS_MAX];
    for q in panels {
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
mod x86;

#[cfg(test)]
mod tests;
