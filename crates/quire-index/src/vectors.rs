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
