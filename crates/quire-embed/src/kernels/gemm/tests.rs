//! The matrix kernels against the contract, on every path, whole and split.

use super::*;
use crate::kernels::split::Parallelism::{Serial, TwoWay};

fn two_threads() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
}

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

/// The products for attention (packed `A`, `C` as panels or transposed) give [`gemm`]'s
/// bits on every path, for `A` (`m × k`, row stride `lda`) and `B = Wᵀ`.
fn check_attention_products(a: &[f32], lda: usize, m: usize, w: &[f32], n: usize) {
    let k = w.len() / n;
    let b = PackedB::from_weight(w, n, k);
    let mut want = vec![0.0; m * n];
    gemm(
        KernelPath::Scalar,
        Serial,
        a,
        lda,
        m,
        &b,
        None,
        &mut want,
        n,
    );
    // The same A, packed from its rows and from the columns of its transpose.
    let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * lda + i / m]).collect();
    let mut from_rows = PackedA::default();
    from_rows.pack_rows(a, lda, m, k);
    let mut from_columns = PackedA::default();
    from_columns.pack_columns(&at, m, m, k);
    // And B packed from Bᵀ.
    let mut bt = PackedB::default();
    bt.pack_transposed(w, k, k, n);
    for path in KernelPath::available() {
        for packed in [&from_rows, &from_columns] {
            let mut panels = PackedB::default();
            // Panel by panel, last first: a panel's values do not depend on the others.
            let count = n.div_ceil(NR);
            gemm_to_panels(path, packed, &bt, &mut panels, 0..count);
            let mut by_panel = PackedB::default();
            by_panel.pack_with(m, n, |_, _| f32::NAN);
            for q in (0..count).rev() {
                gemm_to_panels(path, packed, &bt, &mut by_panel, q..q + 1);
            }
            assert!(
                (0..count).all(|q| bits(by_panel.panel(q)) == bits(panels.panel(q))),
                "{path} panel by panel"
            );
            let mut t = vec![f32::NAN; n * (m + 1)];
            let out = SharedOut::new(&mut t);
            for q in (0..count).rev() {
                // SAFETY: one thread writes `t`.
                unsafe { gemm_transposed(path, packed, &b, q..q + 1, &out, 0, m + 1) };
            }
            for (i, want) in want.chunks_exact(n).enumerate() {
                for (j, want) in want.iter().enumerate() {
                    let got = panels.panel(j / NR)[i * NR + j % NR];
                    assert_eq!(got.to_bits(), want.to_bits(), "{path} panels");
                    let got = t[j * (m + 1) + i];
                    assert_eq!(got.to_bits(), want.to_bits(), "{path} transposed");
                }
            }
        }
    }
}

/// Every available path gives the scalar contract's bits, whatever the shape, and a row's
/// result does not depend on how many rows share the call. (The AVX-512 paths, blocked and
/// unpacked, run only where the CPU has AVX-512: `KernelPath::available`.)
#[test]
fn every_path_keeps_the_contract() {
    for &(m, k, n) in &[
        (1, 1, 1),
        (13, 37, 45),
        (30, 384, 64),
        (7, 5, 100),
        (25, 64, 33),
        (12, 32, 240),
        (23, 384, 1152),
        // Past one block of `k` (KC), whole panels (A read unpacked) and a partial one.
        (26, 257, 64),
        (14, 600, 96),
        (9, 1536, 40),
        // Column blocks of `C` (C_BLOCK_BYTES): 300 rows make blocks of 8 of the 16 panels,
        // with blocks of 200 steps of `k` inside each; with a 17th, partial panel (the values
        // path in `gemm`, a block of 9 panels for the attention products).
        (300, 600, 512),
        (300, 600, 530),
    ] {
        let a = matrix(m, k + 3, (m * k) as u32);
        let w = matrix(n, k, n as u32);
        let bias = matrix(1, n, 7);
        check_attention_products(&a, k + 3, m, &w, n);
        let b = PackedB::from_weight(&w, n, k);
        let mut want = vec![f32::NAN; m * (n + 1)];
        gemm(
            KernelPath::Scalar,
            Serial,
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
            // Outputs start as NaN: a first block that reloaded them would show.
            let mut got = vec![f32::NAN; m * (n + 1)];
            gemm(path, Serial, &a, k + 3, m, &b, Some(&bias), &mut got, n + 1);
            assert_eq!(bits(&got), bits(&want), "{path:?} {m}x{k}x{n}");
            // Each half of the panels on its own thread: the same bits.
            let mut halves = vec![f32::NAN; m * (n + 1)];
            two_threads().install(|| {
                gemm(
                    path,
                    TwoWay,
                    &a,
                    k + 3,
                    m,
                    &b,
                    Some(&bias),
                    &mut halves,
                    n + 1,
                );
            });
            assert_eq!(bits(&halves), bits(&want), "{path:?} {m}x{k}x{n} two-way");
            let mut last = vec![f32::NAN; n + 1];
            gemm(
                path,
                Serial,
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

/// No rows: every product does nothing, on every path (a column block's width is worked out
/// per row, so zero rows must not reach that division).
#[test]
fn zero_rows_make_empty_products() {
    let (k, n) = (40, 70);
    let b = PackedB::from_weight(&matrix(n, k, 3), n, k);
    let mut a = PackedA::default();
    a.pack_rows(&[], k, 0, k);
    for path in KernelPath::available() {
        let mut c = PackedB::default();
        gemm_to_panels(path, &a, &b, &mut c, 0..b.panel_count());
        assert_eq!(c.panel_count(), n.div_ceil(NR));
        assert!(c.panel(0).is_empty());
        let mut out: Vec<f32> = Vec::new();
        gemm(path, Serial, &[], k, 0, &b, None, &mut out, n);
    }
}
