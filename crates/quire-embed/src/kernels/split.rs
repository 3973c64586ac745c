//! Splitting one product over two threads without changing a bit of it.
//!
//! Every output element of a product is computed by the same kernel calls (one per block of
//! `k`, each continuing the sums the last stored) from the same operands in the same order,
//! whichever thread runs it (see [`gemm`](super::gemm)'s contract), so a product
//! split into two halves of its output columns, or an attention split into two halves of its
//! heads, gives the same bits as the whole on one thread. The two halves run under
//! `rayon::join` in the caller's pool: when no other thread of the pool is free, the caller
//! runs both, at the cost of a push and a pop.

// Two threads write disjoint elements of one output buffer through raw pointers.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Range;

/// How many threads one text's forward pass may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parallelism {
    /// Everything on the calling thread (a build, where texts run in parallel already).
    Serial,
    /// Each product and the attention heads in two halves under `rayon::join` (one query,
    /// where latency counts and a second core may be idle).
    TwoWay,
}

impl Parallelism {
    /// `TwoWay` when the calling thread belongs to a rayon pool with another thread (a thread
    /// outside any pool would hand the whole pass to the global pool and wait), else `Serial`.
    pub(crate) fn for_current_thread() -> Self {
        match rayon::current_thread_index().is_some() && rayon::current_num_threads() > 1 {
            true => Self::TwoWay,
            false => Self::Serial,
        }
    }

    /// Run `work` over `0..len`: whole, or as two halves side by side.
    pub(crate) fn run<W>(self, len: usize, work: W)
    where
        W: Fn(Range<usize>) + Sync,
    {
        match self {
            Self::TwoWay if len >= 2 => {
                let mid = len / 2;
                rayon::join(|| work(0..mid), || work(mid..len));
            }
            _ => work(0..len),
        }
    }

    /// [`run`](Self::run) with a state of its own for each half (`first` for the whole).
    pub(crate) fn run_with<S, W>(self, len: usize, first: &mut S, second: &mut S, work: W)
    where
        S: Send,
        W: Fn(Range<usize>, &mut S) + Sync,
    {
        match self {
            Self::TwoWay if len >= 2 => {
                let mid = len / 2;
                rayon::join(|| work(0..mid, first), || work(mid..len, second));
            }
            _ => work(0..len, first),
        }
    }
}

/// A mutable `f32` buffer that several threads write at once, each to elements no other thread
/// writes. Holds the buffer's exclusive borrow for its lifetime; writes go through raw pointers
/// only, so no two threads ever hold overlapping references.
pub(crate) struct SharedOut<'a> {
    ptr: *mut f32,
    len: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

// SAFETY: a `SharedOut` is only written and read back through pointers from `region`, whose
// users guarantee that threads touch disjoint elements; the buffer outlives it (the borrow
// above).
unsafe impl Send for SharedOut<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedOut<'_> {}

impl<'a> SharedOut<'a> {
    pub(crate) fn new(buf: &'a mut [f32]) -> Self {
        Self {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
            _borrow: PhantomData,
        }
    }

    /// A pointer to element `start` of a region of `rows` rows of `cols` values at row stride
    /// `ld`, after checking the region lies inside the buffer.
    pub(crate) fn region(&self, start: usize, rows: usize, cols: usize, ld: usize) -> *mut f32 {
        if rows > 0 && cols > 0 {
            let end = start + (rows - 1) * ld + cols;
            assert!(
                end <= self.len,
                "output region ends at {end} of {}",
                self.len
            );
        }
        self.ptr.wrapping_add(start)
    }
}
