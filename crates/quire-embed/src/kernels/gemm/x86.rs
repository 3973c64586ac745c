//! The x86_64 kernels: AVX-512 (a register tile of up to [`ROWS_MAX`] rows × [`NR`]) and AVX2
//! with FMA (6 rows × 16 columns at a time).

// Every kernel reads through raw pointers after its caller checked the extents.
#![allow(unsafe_code)]

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

/// Bounds [`tile_avx512`] and [`tile_avx2`] rely on: a packed tile of `A` with `k` steps of
/// [`ROWS_MAX`], and `k` lines of [`NR`] in `panel`.
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

/// One block of a tile: `rows` rows of [`NR`] sums continued from `out` (unless the block
/// is the first), written back to `out` at row stride `ldo` (plus `bias` after the last
/// block), asking the CPU to fetch the block's `next` lines into the L2 cache meanwhile, a
/// line per step.
///
/// # Safety
/// `out` points at `rows` rows of [`NR`] readable and writable values at stride `ldo`, which
/// no other thread reads or writes meanwhile; unless the block is the first, they hold the
/// sums the previous block of this tile stored.
pub(super) unsafe fn tile_avx512_into(
    block: super::Block<'_>,
    rows: usize,
    bias: Option<&[f32]>,
    out: *mut f32,
    ldo: usize,
) {
    let k = block.steps;
    assert!((1..=ROWS_MAX).contains(&rows) && block.panel.len() >= k * NR);
    match block.a {
        super::BlockA::Packed(a) => assert!(a.len() >= k * ROWS_MAX),
        super::BlockA::Rows(a, lda) => assert!(lda > 0 && a.len() >= (rows - 1) * lda + k),
    }
    let next_lines = (block.next.len() / NR).min(k);
    assert!(ldo >= NR);
    assert!(bias.is_none_or(|b| b.len() >= NR));
    assert!(is_x86_feature_detected!("avx512f"));
    // Unpacked: row r's step p at `a + r·lda + p` (`lda` 0 means packed).
    let (a, lda) = match block.a {
        super::BlockA::Packed(a) => (a.as_ptr(), 0),
        super::BlockA::Rows(a, lda) => (a.as_ptr(), lda),
    };
    let panel = block.panel.as_ptr();
    let bias = match block.last {
        true => bias.map_or(std::ptr::null(), <[f32]>::as_ptr),
        false => std::ptr::null(),
    };
    let next = block.next.as_ptr();
    let first = block.first;
    // SAFETY: as in `tile_avx512`; the caller bounds every read and write of `out`, the
    // assert above the bias read, and `next` holds `next_lines` lines (prefetches never
    // fault in any case).
    unsafe {
        by_rows!(
            rows,
            avx512_rows_into,
            a,
            lda,
            panel,
            k,
            first,
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
    lda: usize,
    panel: *const f32,
    k: usize,
    first: bool,
    bias: *const f32,
    out: *mut f32,
    ldo: usize,
    next: *const f32,
    next_lines: usize,
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    if !first {
        for (r, acc) in acc.iter_mut().enumerate() {
            // SAFETY: row r < R of `out` holds NR values (the caller's contract).
            unsafe {
                let o = out.add(r * ldo);
                *acc = [_mm512_loadu_ps(o), _mm512_loadu_ps(o.add(16))];
            }
        }
    }
    // SAFETY: the caller's contract (see `tile_avx512_into`).
    unsafe {
        match lda {
            0 => avx512_accumulate::<R>(&mut acc, a, panel, k, next, next_lines),
            lda => avx512_accumulate_rows::<R>(&mut acc, a, lda, panel, k, next, next_lines),
        }
    };
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

/// The register tile: `R` rows × [`NR`] columns continued over `k` steps of the packed
/// tile `a`, with a prefetch of line `p` of `next` at step `p < next_lines`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_accumulate<const R: usize>(
    acc: &mut [[__m512; 2]; R],
    a: *const f32,
    panel: *const f32,
    k: usize,
    next: *const f32,
    next_lines: usize,
) {
    let next_lines = next_lines.min(k);
    for p in 0..next_lines {
        prefetch_line(next, p);
        // SAFETY: p < k, so line p of the panel and step p of the tile are in bounds.
        unsafe { packed_step(acc, a, panel, p) };
    }
    for p in next_lines..k {
        // SAFETY: as above.
        unsafe { packed_step(acc, a, panel, p) };
    }
}

/// Ask for line `p` of the panel at `next` in the L2 cache (a line of NR floats is two
/// cache lines; prefetches never fault).
#[inline]
#[target_feature(enable = "avx512f")]
fn prefetch_line(next: *const f32, p: usize) {
    let line = next.wrapping_add(p * NR).cast::<i8>();
    _mm_prefetch::<_MM_HINT_T1>(line);
    _mm_prefetch::<_MM_HINT_T1>(line.wrapping_add(64));
}

/// Step `p` of the packed tile.
///
/// # Safety
/// Line `p` of `panel` and step `p` of the tile at `a` are readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn packed_step<const R: usize>(
    acc: &mut [[__m512; 2]; R],
    a: *const f32,
    panel: *const f32,
    p: usize,
) {
    // SAFETY: the caller's contract.
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

/// [`avx512_accumulate`] reading row `r`'s step `p` at `a + r·lda + p`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_accumulate_rows<const R: usize>(
    acc: &mut [[__m512; 2]; R],
    a: *const f32,
    lda: usize,
    panel: *const f32,
    k: usize,
    next: *const f32,
    next_lines: usize,
) {
    let rows: [*const f32; R] = std::array::from_fn(|r| a.wrapping_add(r * lda));
    let next_lines = next_lines.min(k);
    for p in 0..next_lines {
        prefetch_line(next, p);
        // SAFETY: p < k, so line p of the panel and step p of every row are in bounds.
        unsafe { rows_step(acc, &rows, panel, p) };
    }
    for p in next_lines..k {
        // SAFETY: as above.
        unsafe { rows_step(acc, &rows, panel, p) };
    }
}

/// Step `p` of the rows at `rows`.
///
/// # Safety
/// Line `p` of `panel` and value `p` of every row are readable.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn rows_step<const R: usize>(
    acc: &mut [[__m512; 2]; R],
    rows: &[*const f32; R],
    panel: *const f32,
    p: usize,
) {
    // SAFETY: the caller's contract.
    let (b0, b1) = unsafe {
        let line = panel.add(p * NR);
        (_mm512_loadu_ps(line), _mm512_loadu_ps(line.add(16)))
    };
    for (acc, row) in acc.iter_mut().zip(rows) {
        // SAFETY: as above.
        let x = _mm512_set1_ps(unsafe { *row.add(p) });
        acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
        acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
    }
}

#[target_feature(enable = "avx512f")]
unsafe fn avx512_rows<const R: usize>(
    a: *const f32,
    panel: *const f32,
    k: usize,
    out: &mut [[f32; NR]; ROWS_MAX],
) {
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    // SAFETY: the caller's contract (see `tile_avx512`).
    unsafe { avx512_accumulate::<R>(&mut acc, a, panel, k, std::ptr::null(), 0) };
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
