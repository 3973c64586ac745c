//! Scaled dot-product attention of every head of one text, optionally two halves of the heads
//! on two threads.

// Two threads write disjoint columns of one context buffer (see `split`).
#![allow(unsafe_code)]

use super::KernelPath;
use super::gemm::{PackedA, PackedB, gemm_to_panels, gemm_transposed};
use super::math::softmax_columns;
use super::split::{Parallelism, SharedOut};

/// One head's keys, queries transposed, attention weights transposed, values transposed.
#[derive(Default)]
pub(crate) struct HeadBuffers {
    keys: PackedA,
    queries_t: PackedB,
    weights_t: PackedB,
    values_t: PackedA,
}

/// Attention of `heads` heads from `qkv` (`n` rows of queries, keys and values, `3·h` wide) into
/// `context` (`n` rows of `h`), with one set of `buffers` per thread `par` may use.
/// Panics if `heads` does not divide `h` or a buffer is too short (a caller bug).
///
/// Each head works on transposes, so that no matrix is packed twice: the scores come out as
/// `Sᵀ = K·Qᵀ` straight into the panel layout, softmax runs down its columns, and the context
/// is `(Vᵀ·Pᵀ)ᵀ`. Every element is still the product of `gemm`'s contract (a chain of fused
/// multiply-adds over the shared dimension in order; `x·y = y·x` exactly) and each column's
/// softmax that of its row, so the bits are those of `softmax(Q·Kᵀ)·V` on any thread.
// The shapes spelled out, as for `gemm`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn attention(
    path: KernelPath,
    par: Parallelism,
    qkv: &[f32],
    n: usize,
    h: usize,
    heads: usize,
    context: &mut [f32],
    buffers: &mut [HeadBuffers; 2],
) {
    let stride = 3 * h;
    assert!(heads > 0 && h.is_multiple_of(heads) && qkv.len() >= n * stride);
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let context = SharedOut::new(&mut context[..n * h]);
    let [first, second] = buffers;
    par.run_with(heads, first, second, |range, buf| {
        for head in range {
            let (q, k, v) = (head * d, h + head * d, 2 * h + head * d);
            buf.keys.pack_rows(&qkv[k..], stride, n, d);
            buf.queries_t.pack_transposed(&qkv[q..], stride, d, n);
            buf.values_t.pack_columns(&qkv[v..], stride, d, n);
            // A panel of queries at a time, start to end, while its scores (128·n bytes) are
            // in cache: each panel's weights and context need only that panel's scores.
            for panel in 0..buf.queries_t.panel_count() {
                let one = panel..panel + 1;
                gemm_to_panels(
                    path,
                    &buf.keys,
                    &buf.queries_t,
                    &mut buf.weights_t,
                    one.clone(),
                );
                softmax_columns(path, buf.weights_t.panel_mut(panel), n, scale);
                // SAFETY: a head writes only its own d columns of the context, and each head
                // runs on one thread.
                unsafe {
                    gemm_transposed(
                        path,
                        &buf.values_t,
                        &buf.weights_t,
                        one,
                        &context,
                        head * d,
                        h,
                    );
                }
            }
        }
    });
}
