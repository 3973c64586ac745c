//! The dot-product kernels behind [`crate::distance`], with the bits fixed by the arithmetic.
//!
//! The contract every path keeps: lane `i` (of 16) starts at `+0.0` and adds `a[j] * b[j]` for
//! `j = i, i + 16, i + 32, ...` in order, each product rounded, then added (never a fused
//! multiply-add); a tail shorter than 16 counts as zero-padded; the lanes are reduced by the
//! fixed tree `acc[i] += acc[i + w]` for `w = 8, 4, 2, 1`. IEEE-754 fixes the result of each of
//! those operations, so the AVX-512 path (one 16-lane register per accumulator), the AVX2 path
//! (two 8-lane registers) and the portable path give the same bits on every CPU; a test runs
//! each path this CPU has on the same inputs. The path changes the speed only, so it need not
//! be recorded with a build.
//!
//! The vector paths use `std::arch` intrinsics, hence this module's `unsafe`: loads through raw
//! pointers, calls into functions compiled for a feature after checking the CPU has it, and
//! prefetch hints.

#![allow(unsafe_code)]

/// Lanes of the reduction; the lane of element `j` is `j % LANES`.
pub const LANES: usize = 16;

/// Which code computes dot products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Portable Rust (what the compiler makes of 16 scalar lanes).
    Portable,
    /// x86_64 AVX2, two 8-lane registers per accumulator.
    Avx2,
    /// x86_64 AVX-512F, one 16-lane register per accumulator.
    Avx512,
}

impl Path {
    /// The fastest path this CPU runs.
    #[inline]
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                return Self::Avx2;
            }
        }
        Self::Portable
    }

    /// Every path this CPU can run.
    pub fn available() -> Vec<Self> {
        let mut paths = vec![Self::Portable];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                paths.push(Self::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                paths.push(Self::Avx512);
            }
        }
        paths
    }
}

/// `dot(a, b)` on `path`, which must be one of [`Path::available`] (others fall back to the
/// portable code).
#[inline]
pub fn dot_on(path: Path, a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F (checked just now); the lengths are equal.
            unsafe { x86::dot_avx512(a, b) }
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 | Path::Avx512 if std::arch::is_x86_feature_detected!("avx2") => {
            // SAFETY: the CPU has AVX2 (checked just now); the lengths are equal.
            unsafe { x86::dot_avx2(a, b) }
        }
        _ => dot_portable(a, b),
    }
}

/// `dot(a, b)` on the fastest path.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_on(Path::detect(), a, b)
}

/// `out[i] = dot(query, rows[i])` for four rows at once (the four sums interleave, so their
/// additions overlap in the pipeline instead of waiting on one another); same bits as [`dot`].
#[inline]
pub fn dot4_on(path: Path, query: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
    assert!(
        rows.iter().all(|r| r.len() == query.len()),
        "dot of vectors of different lengths"
    );
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F (checked just now); the lengths are equal.
            unsafe { x86::dot4_avx512(query, rows) }
        }
        _ => rows.map(|r| dot_on(path, query, r)),
    }
}

/// The value of IEEE-754 binary16 `bits` as f32 (exact: every half is an f32).
#[inline]
pub fn half_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// `dot` of two rows of binary16 values: the bits of [`dot`] over the rows converted to f32
/// (conversion is exact, so the same contract holds on every path).
#[inline]
pub fn dot_half_on(path: Path, a: &[u16], b: &[u16]) -> f32 {
    assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F (checked just now); the lengths are equal.
            unsafe { x86::dot4_half_avx512(a, [b, b, b, b])[0] }
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 | Path::Avx512 if x86::has_avx2_f16c() => {
            // SAFETY: the CPU has AVX2 and F16C (checked just now); the lengths are equal.
            unsafe { x86::dot_half_avx2(a, b) }
        }
        _ => dot_half_portable(a, b),
    }
}

/// [`dot_half_on`] of `query` with four rows at once.
#[inline]
pub fn dot4_half_on(path: Path, query: &[u16], rows: [&[u16]; 4]) -> [f32; 4] {
    assert!(
        rows.iter().all(|r| r.len() == query.len()),
        "dot of vectors of different lengths"
    );
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 if std::arch::is_x86_feature_detected!("avx512f") => {
            // SAFETY: the CPU has AVX-512F (checked just now); the lengths are equal.
            unsafe { x86::dot4_half_avx512(query, rows) }
        }
        _ => rows.map(|r| dot_half_on(path, query, r)),
    }
}

/// The reference for binary16 rows: convert 16 at a time, then [`accumulate`] and the tree.
pub fn dot_half_portable(a: &[u16], b: &[u16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; LANES];
    for (x, y) in a.chunks(LANES).zip(b.chunks(LANES)) {
        // A short tail is zero-padded, as in `dot_portable`.
        let (mut xf, mut yf) = ([0f32; LANES], [0f32; LANES]);
        for i in 0..x.len() {
            xf[i] = half_to_f32(x[i]);
            yf[i] = half_to_f32(y[i]);
        }
        accumulate(&mut acc, &xf, &yf);
    }
    reduce_portable(acc)
}

/// Hint the CPU to start loading the cache line holding `x`. Never faults; a no-op off x86_64.
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint that cannot fault, and `x` is a valid reference anyway;
    // SSE is part of the x86_64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(x).cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// The reference: 16 scalar lanes and the fixed tree.
pub fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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
    reduce_portable(acc)
}

/// The fixed tree: `acc[i] += acc[i + w]` for `w = 8, 4, 2, 1`.
fn reduce_portable(mut acc: [f32; LANES]) -> f32 {
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
/// compiler holds `acc` in registers.
#[inline(always)]
fn accumulate(acc: &mut [f32; LANES], x: &[f32; LANES], y: &[f32; LANES]) {
    for i in 0..LANES {
        acc[i] += x[i] * y[i];
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::LANES;

    /// The fixed tree over a 16-lane accumulator: lanes `i` and `i + 8`, then `i + 4`, `i + 2`,
    /// `i + 1` (addition is commutative bit for bit, so operand order is free).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce16(acc: __m512) -> f32 {
        let lo = _mm512_castps512_ps256(acc);
        let hi = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(acc)));
        reduce8(_mm256_add_ps(lo, hi))
    }

    /// The tree's last three levels, over lanes `0..8`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn reduce8(s8: __m256) -> f32 {
        let s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps::<1>(s8));
        let s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        let s1 = _mm_add_ss(s2, _mm_shuffle_ps::<0b01>(s2, s2));
        _mm_cvtss_f32(s1)
    }

    /// Lanes of a tail of `len < 16` elements at `p`, zero beyond `len`.
    ///
    /// # Safety
    /// `p..p + len` must be readable; AVX-512F must be available.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tail512(p: *const f32, len: usize) -> __m512 {
        let mask: __mmask16 = ((1u32 << len) - 1) as __mmask16;
        // SAFETY: the masked load touches only the first `len` elements (the caller's promise).
        unsafe { _mm512_maskz_loadu_ps(mask, p) }
    }

    /// # Safety
    /// AVX-512F must be available and `a.len() == b.len()`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let body = a.len() / LANES * LANES;
        let mut acc = _mm512_setzero_ps();
        let mut j = 0;
        while j < body {
            // SAFETY: j + 16 <= body <= len of both slices.
            let (x, y) = unsafe { (_mm512_loadu_ps(pa.add(j)), _mm512_loadu_ps(pb.add(j))) };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(x, y));
            j += LANES;
        }
        if body < a.len() {
            // SAFETY: the tail is the last `len - body` elements of both slices.
            let (x, y) = unsafe {
                (
                    tail512(pa.add(body), a.len() - body),
                    tail512(pb.add(body), a.len() - body),
                )
            };
            acc = _mm512_add_ps(acc, _mm512_mul_ps(x, y));
        }
        reduce16(acc)
    }

    /// # Safety
    /// AVX-512F must be available and every row as long as `q`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot4_avx512(q: &[f32], rows: [&[f32]; 4]) -> [f32; 4] {
        let pq = q.as_ptr();
        let p = rows.map(<[f32]>::as_ptr);
        let body = q.len() / LANES * LANES;
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j < body {
            // SAFETY: j + 16 <= body <= the length of the query and of every row.
            unsafe {
                let x = _mm512_loadu_ps(pq.add(j));
                for r in 0..4 {
                    let y = _mm512_loadu_ps(p[r].add(j));
                    acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(x, y));
                }
            }
            j += LANES;
        }
        if body < q.len() {
            let len = q.len() - body;
            // SAFETY: the tail is the last `len` elements of the query and of every row.
            unsafe {
                let x = tail512(pq.add(body), len);
                for r in 0..4 {
                    let y = tail512(p[r].add(body), len);
                    acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(x, y));
                }
            }
        }
        acc.map(|a| reduce16(a))
    }

    /// 16 binary16 values at `p` as f32 lanes; `len < 16` reads only `len` and zero-fills.
    ///
    /// # Safety
    /// `p..p + len.min(16)` must be readable; AVX-512F must be available.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn halves512(p: *const u16, len: usize) -> __m512 {
        if len >= LANES {
            // SAFETY: 16 halves (32 bytes) are readable at p (the caller's promise).
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
        } else {
            let mut padded = [0u16; LANES];
            // SAFETY: `len` halves are readable at p; `padded` holds 16.
            unsafe {
                std::ptr::copy_nonoverlapping(p, padded.as_mut_ptr(), len);
                _mm512_cvtph_ps(_mm256_loadu_si256(padded.as_ptr().cast()))
            }
        }
    }

    /// # Safety
    /// AVX-512F must be available and every row as long as `q`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dot4_half_avx512(q: &[u16], rows: [&[u16]; 4]) -> [f32; 4] {
        let pq = q.as_ptr();
        let p = rows.map(<[u16]>::as_ptr);
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut j = 0;
        while j < q.len() {
            let len = q.len() - j;
            // SAFETY: at least `len` halves remain in the query and in every row from j on.
            unsafe {
                let x = halves512(pq.add(j), len);
                for r in 0..4 {
                    let y = halves512(p[r].add(j), len);
                    acc[r] = _mm512_add_ps(acc[r], _mm512_mul_ps(x, y));
                }
            }
            j += LANES;
        }
        acc.map(|a| reduce16(a))
    }

    pub(super) fn has_avx2_f16c() -> bool {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("f16c")
    }

    /// # Safety
    /// AVX2 and F16C must be available and `a.len() == b.len()`.
    #[target_feature(enable = "avx2,f16c")]
    pub(super) unsafe fn dot_half_avx2(a: &[u16], b: &[u16]) -> f32 {
        // Lanes 0..8 and 8..16 of the 16-lane accumulator.
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut j = 0;
        while j < a.len() {
            let len = (a.len() - j).min(LANES);
            let (mut x, mut y) = ([0u16; LANES], [0u16; LANES]);
            x[..len].copy_from_slice(&a[j..j + len]);
            y[..len].copy_from_slice(&b[j..j + len]);
            // SAFETY: x and y hold 16 halves each (8 per 128-bit load).
            unsafe {
                let (px, py) = (x.as_ptr().cast::<__m128i>(), y.as_ptr().cast::<__m128i>());
                let x0 = _mm256_cvtph_ps(_mm_loadu_si128(px));
                let x1 = _mm256_cvtph_ps(_mm_loadu_si128(px.add(1)));
                let y0 = _mm256_cvtph_ps(_mm_loadu_si128(py));
                let y1 = _mm256_cvtph_ps(_mm_loadu_si128(py.add(1)));
                lo = _mm256_add_ps(lo, _mm256_mul_ps(x0, y0));
                hi = _mm256_add_ps(hi, _mm256_mul_ps(x1, y1));
            }
            j += LANES;
        }
        reduce8(_mm256_add_ps(lo, hi))
    }

    /// # Safety
    /// AVX2 must be available and `a.len() == b.len()`.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let body = a.len() / LANES * LANES;
        // Lanes 0..8 and 8..16 of the 16-lane accumulator.
        let (mut lo, mut hi) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut j = 0;
        while j < body {
            // SAFETY: j + 16 <= body <= len of both slices.
            unsafe {
                let (x0, y0) = (_mm256_loadu_ps(pa.add(j)), _mm256_loadu_ps(pb.add(j)));
                let (x1, y1) = (
                    _mm256_loadu_ps(pa.add(j + 8)),
                    _mm256_loadu_ps(pb.add(j + 8)),
                );
                lo = _mm256_add_ps(lo, _mm256_mul_ps(x0, y0));
                hi = _mm256_add_ps(hi, _mm256_mul_ps(x1, y1));
            }
            j += LANES;
        }
        if body < a.len() {
            let (mut x, mut y) = ([0f32; LANES], [0f32; LANES]);
            x[..a.len() - body].copy_from_slice(&a[body..]);
            y[..a.len() - body].copy_from_slice(&b[body..]);
            // SAFETY: x and y are 16-element arrays.
            unsafe {
                let (px, py) = (x.as_ptr(), y.as_ptr());
                let (x0, y0) = (_mm256_loadu_ps(px), _mm256_loadu_ps(py));
                let (x1, y1) = (_mm256_loadu_ps(px.add(8)), _mm256_loadu_ps(py.add(8)));
                lo = _mm256_add_ps(lo, _mm256_mul_ps(x0, y0));
                hi = _mm256_add_ps(hi, _mm256_mul_ps(x1, y1));
            }
        }
        reduce8(_mm256_add_ps(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values spread over many exponents, signs and zeros, so that rounding differs between any
    /// two summation orders.
    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let mantissa = ((state >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
                let exponent = ((state >> 20) % 20) as i32 - 10;
                if state.is_multiple_of(17) {
                    -0.0
                } else {
                    mantissa * 2f32.powi(exponent)
                }
            })
            .collect()
    }

    #[test]
    fn every_path_gives_the_portable_bits() {
        let paths = Path::available();
        assert!(paths.contains(&Path::Portable));
        for len in [0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 255, 256, 384, 1000] {
            for seed in 0..8 {
                let a = values(len, seed);
                let rows: Vec<Vec<f32>> = (0..4).map(|r| values(len, 100 + seed * 4 + r)).collect();
                let want = dot_portable(&a, &rows[0]).to_bits();
                let want4 = rows.iter().map(|r| dot_portable(&a, r).to_bits());
                for &path in &paths {
                    assert_eq!(
                        dot_on(path, &a, &rows[0]).to_bits(),
                        want,
                        "{path:?} len {len}"
                    );
                    let got = dot4_on(path, &a, [&rows[0], &rows[1], &rows[2], &rows[3]]);
                    assert!(
                        got.iter().map(|x| x.to_bits()).eq(want4.clone()),
                        "{path:?} dot4 len {len}"
                    );
                }
            }
        }
    }

    /// Halves over every exponent (subnormals, zeros of both signs, normals up to 2.0).
    fn halves(len: usize, seed: u64) -> Vec<u16> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Exponent field 0..=16 (0 = zero or subnormal), any sign and mantissa.
                let sign = ((state >> 63) as u16) << 15;
                let exponent = (((state >> 32) % 17) as u16) << 10;
                sign | exponent | ((state >> 8) as u16 & 0x3ff)
            })
            .collect()
    }

    #[test]
    fn half_rows_give_the_bits_of_their_f32_values_on_every_path() {
        for len in [0, 1, 7, 15, 16, 17, 31, 32, 33, 100, 255, 256, 384] {
            for seed in 0..8 {
                let q = halves(len, seed);
                let rows: Vec<Vec<u16>> = (0..4).map(|r| halves(len, 50 + seed * 4 + r)).collect();
                let as_f32 = |h: &[u16]| h.iter().map(|&b| half_to_f32(b)).collect::<Vec<f32>>();
                let want: Vec<u32> = rows
                    .iter()
                    .map(|r| dot_portable(&as_f32(&q), &as_f32(r)).to_bits())
                    .collect();
                for path in Path::available() {
                    let got = dot4_half_on(path, &q, [&rows[0], &rows[1], &rows[2], &rows[3]]);
                    let got: Vec<u32> = got.iter().map(|x| x.to_bits()).collect();
                    assert_eq!(got, want, "{path:?} dot4 len {len}");
                    let one = dot_half_on(path, &q, &rows[1]).to_bits();
                    assert_eq!(one, want[1], "{path:?} len {len}");
                }
            }
        }
    }

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
}
