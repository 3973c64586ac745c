//! A sentence-transformers BERT model (e.g. all-MiniLM-L6-v2) run by quire's own encoder on the
//! CPU.
//!
//! **Why vectors are bit-identical across runs, batch sizes, thread counts and CPUs**: every text
//! is tokenized alone (truncated at the model's `max_seq_length`, never padded) and goes through
//! the [`Encoder`] in a forward pass of its own, whose kernels fix the order of every floating-point
//! operation (see [`crate::kernels`]). Pooling and normalisation are plain sequential loops over
//! the token vectors. The same text therefore embeds to the same bits whether it is a chunk in a
//! build or a query, and whichever [`KernelPath`] the CPU runs.

use std::cell::RefCell;
use std::path::Path;

use ndarray::Array2;
use quire_core::spec::Precision;
use tokenizers::{Tokenizer, TruncationParams};

use crate::encoder::{BertConfig, Encoder, Workspace};
use crate::kernels::KernelPath;
use crate::kernels::split::Parallelism;
use crate::local::{ModelFiles, Pooling};
use crate::weights::Weights;
use crate::{EmbedError, Embedder};

/// A local BERT sentence-embedding model.
pub struct BertEmbedder {
    name: String,
    digest: String,
    dim: usize,
    max_len: usize,
    pooling: Pooling,
    encoder: Encoder,
    precision: Precision,
    kernel: KernelPath,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for BertEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEmbedder")
            .field("name", &self.name)
            .field("digest", &self.digest)
            .field("dim", &self.dim)
            .field("max_len", &self.max_len)
            .field("pooling", &self.pooling)
            .field("precision", &self.precision)
            .field("kernel", &self.kernel)
            .finish()
    }
}

impl BertEmbedder {
    /// Load the model in directory `path`, calling it `name`.
    pub fn load(name: &str, path: &Path) -> Result<Self, EmbedError> {
        Self::load_at(name, path, Precision::Fp32)
    }

    /// Load the model in directory `path`, calling it `name`, to run at `precision`.
    pub fn load_at(name: &str, path: &Path, precision: Precision) -> Result<Self, EmbedError> {
        let files = ModelFiles::read(name, path)?;
        Self::from_files(name, files, precision)
    }

    /// Build the model from files already read (and hashed).
    pub fn from_files(
        name: &str,
        files: ModelFiles,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let path = files.path.clone();
        let bad = |reason: String| EmbedError::Load {
            model: name.into(),
            path: path.clone(),
            reason,
        };
        let config: BertConfig = serde_json::from_slice(files.get("config.json"))
            .map_err(|e| bad(format!("config.json: {e}")))?;
        let mut tokenizer = Tokenizer::from_bytes(files.get("tokenizer.json"))
            .map_err(|e| bad(format!("tokenizer.json: {e}")))?;
        let max_len = files
            .max_seq_length
            .or_else(|| tokenizer.get_truncation().map(|t| t.max_length))
            .unwrap_or(config.max_position_embeddings)
            .min(config.max_position_embeddings);
        if max_len < 2 {
            return Err(bad(format!("max_seq_length {max_len} is too small")));
        }
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_len,
                ..TruncationParams::default()
            }))
            .map_err(|e| bad(format!("tokenizer truncation: {e}")))?;
        tokenizer.with_padding(None);
        // The weights were read into memory, not memory-mapped: the bytes just hashed are the
        // bytes used.
        let weights = Weights::parse(files.get("model.safetensors")).map_err(&bad)?;
        let encoder = Encoder::load(&config, &weights, precision).map_err(&bad)?;
        Ok(Self {
            name: name.into(),
            digest: files.digest.clone(),
            dim: encoder.hidden_size(),
            max_len: max_len.min(encoder.max_positions()),
            pooling: files.pooling,
            encoder,
            precision,
            kernel: KernelPath::detect(),
            tokenizer,
        })
    }

    /// The same model running the given kernel path (which must be one this CPU has: see
    /// [`KernelPath::available`]). The vectors are the same bits on every path.
    pub fn with_kernel(mut self, kernel: KernelPath) -> Result<Self, EmbedError> {
        if !KernelPath::available().contains(&kernel) {
            return Err(self.run_err(format!("this CPU cannot run the {kernel} kernels")));
        }
        self.kernel = kernel;
        Ok(self)
    }

    /// The kernel path this model runs.
    pub fn kernel(&self) -> KernelPath {
        self.kernel
    }

    /// The longest input in tokens (special tokens included); longer texts are truncated.
    pub fn max_seq_length(&self) -> usize {
        self.max_len
    }

    fn run_err(&self, reason: impl std::fmt::Display) -> EmbedError {
        EmbedError::Run {
            model: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    /// Embed one text into `out` (length `dim`), its steps split as `par` allows.
    fn embed_one(
        &self,
        text: &str,
        par: Parallelism,
        ws: &mut Workspace,
        out: &mut [f32],
    ) -> Result<(), EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| self.run_err(format!("tokenizing: {e}")))?;
        let tokens = self
            .encoder
            .forward(
                self.kernel,
                par,
                encoding.get_ids(),
                encoding.get_type_ids(),
                ws,
            )
            .map_err(|e| self.run_err(e))?;
        pool(self.pooling, tokens.chunks_exact(self.dim), out);
        l2_normalise(out);
        Ok(())
    }
}

/// Run `f` with this thread's reused forward-pass buffers, so embedding text after text does not
/// allocate (and fault in) fresh ones each time.
fn with_workspace<T>(f: impl FnOnce(&mut Workspace) -> T) -> T {
    thread_local! {
        static WORKSPACE: RefCell<Workspace> = RefCell::default();
    }
    // Taken out for the call: a thread waiting in `rayon::join` may embed another text meanwhile
    // (it then gets fresh buffers).
    let mut ws = WORKSPACE.take();
    let result = f(&mut ws);
    WORKSPACE.set(ws);
    result
}

/// Pool token vectors into `out`, summing in token order.
fn pool<'t>(pooling: Pooling, tokens: impl ExactSizeIterator<Item = &'t [f32]>, out: &mut [f32]) {
    out.iter_mut().for_each(|x| *x = 0.0);
    match pooling {
        Pooling::Cls => {
            if let Some(first) = tokens.into_iter().next() {
                out.copy_from_slice(&first[..out.len()]);
            }
        }
        Pooling::Mean => {
            let n = tokens.len().max(1) as f32;
            for token in tokens {
                out.iter_mut().zip(token).for_each(|(o, t)| *o += t);
            }
            out.iter_mut().for_each(|o| *o /= n);
        }
        Pooling::Max => {
            out.iter_mut().for_each(|x| *x = f32::NEG_INFINITY);
            for token in tokens {
                out.iter_mut().zip(token).for_each(|(o, t)| *o = o.max(*t));
            }
        }
    }
}

/// Scale `v` to unit length (left alone when it is all zeros), summing in index order.
fn l2_normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 && norm.is_finite() {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

impl Embedder for BertEmbedder {
    fn model_id(&self) -> &str {
        &self.name
    }

    fn digest(&self) -> &str {
        &self.digest
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn precision(&self) -> Precision {
        self.precision
    }

    fn kernel(&self) -> Option<&'static str> {
        Some(self.kernel.as_str())
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Array2<f32>, EmbedError> {
        let mut out = Array2::zeros((texts.len(), self.dim));
        with_workspace(|ws| {
            for (text, mut row) in texts.iter().zip(out.rows_mut()) {
                let slice = row
                    .as_slice_mut()
                    .ok_or_else(|| self.run_err("output rows are not contiguous"))?;
                self.embed_one(text, Parallelism::Serial, ws, slice)?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// One text with this thread's reused buffers, each step split in two when the calling
    /// thread is in a rayon pool with another thread (the bits do not change).
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut out = vec![0.0; self.dim];
        let par = Parallelism::for_current_thread();
        with_workspace(|ws| self.embed_one(text, par, ws, &mut out))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_normalisation() {
        let tokens = [1.0, 0.0, 3.0, 4.0];
        let mut out = [0.0; 2];
        pool(Pooling::Mean, tokens.chunks_exact(2), &mut out);
        assert_eq!(out, [2.0, 2.0]);
        pool(Pooling::Cls, tokens.chunks_exact(2), &mut out);
        assert_eq!(out, [1.0, 0.0]);
        pool(Pooling::Max, tokens.chunks_exact(2), &mut out);
        assert_eq!(out, [3.0, 4.0]);
        l2_normalise(&mut out);
        assert_eq!(out, [0.6, 0.8]);
        let mut zeros = [0.0; 2];
        l2_normalise(&mut zeros);
        assert_eq!(zeros, [0.0, 0.0]);
    }
}
