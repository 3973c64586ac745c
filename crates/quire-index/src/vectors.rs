//! Row-major vector storage as the graph builder, the search and the distances see it.

/// Row-major vectors, `dim` floats per row.
#[derive(Clone, Copy, Debug)]
pub struct Vectors<'a> {
    data: &'a [f32],
    dim: usize,
}

impl<'a> Vectors<'a> {
    /// View `data` as rows of `dim` floats.
    pub fn new(data: &'a [f32], dim: usize) -> Self {
        Self { data, dim }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: u32) -> &'a [f32] {
        let start = i as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// The first `n` rows.
    pub fn prefix(&self, n: usize) -> Vectors<'a> {
        Self {
            data: &self.data[..(n * self.dim).min(self.data.len())],
            dim: self.dim,
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Row-major vectors in IEEE-754 binary16, `dim` per row: half the bytes of [`Vectors`], for
/// the graph builder, whose distance reads are bound by memory. Each value is its f32 rounded to
/// nearest, ties to even, which every machine computes alike.
#[derive(Clone, Debug)]
pub struct HalfVectors {
    data: Vec<u16>,
    dim: usize,
}

impl HalfVectors {
    /// `vectors` rounded to binary16 (on every thread of the current pool).
    pub fn from_f32(vectors: Vectors<'_>) -> Self {
        use rayon::prelude::*;
        let mut data = vec![0u16; vectors.data.len()];
        data.par_chunks_mut(1 << 16)
            .zip(vectors.data.par_chunks(1 << 16))
            .for_each(|(out, values)| {
                for (o, &v) in out.iter_mut().zip(values) {
                    *o = half::f16::from_f32(v).to_bits();
                }
            });
        Self {
            data,
            dim: vectors.dim,
        }
    }

    /// Row `i`.
    #[inline]
    pub fn row(&self, i: u32) -> &[u16] {
        let start = i as usize * self.dim;
        &self.data[start..start + self.dim]
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.len() / self.dim.max(1)
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
