//! A sentence-transformers BERT model (e.g. all-MiniLM-L6-v2) run with candle on the CPU.
//!
//! **Batching policy**, which is what makes vectors bit-identical across runs, batch sizes and
//! thread counts: every text is tokenized alone (truncated at the model's `max_seq_length`, never
//! padded) and goes through the network in a forward pass of its own, so no text's arithmetic
//! depends on which other texts share its call. Pooling and normalisation are plain sequential
//! loops over the token vectors. The same text therefore embeds to the same bits whether it is a
//! chunk in a build or a query.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use ndarray::Array2;
use tokenizers::{Tokenizer, TruncationParams};

use crate::local::{ModelFiles, Pooling};
use crate::{EmbedError, Embedder};

/// A local BERT sentence-embedding model.
pub struct BertEmbedder {
    name: String,
    digest: String,
    dim: usize,
    max_len: usize,
    pooling: Pooling,
    model: BertModel,
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
            .finish()
    }
}

impl BertEmbedder {
    /// Load the model in directory `path`, calling it `name`.
    pub fn load(name: &str, path: &Path) -> Result<Self, EmbedError> {
        let files = ModelFiles::read(name, path)?;
        Self::from_files(name, files)
    }

    /// Build the model from files already read (and hashed).
    pub fn from_files(name: &str, mut files: ModelFiles) -> Result<Self, EmbedError> {
        let path = files.path.clone();
        let bad = |reason: String| EmbedError::Load {
            model: name.into(),
            path: path.clone(),
            reason,
        };
        let config: Config = serde_json::from_slice(files.get("config.json"))
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
        let weights = files.take("model.safetensors");
        // Weights are read into memory rather than memory-mapped: no `unsafe`, and the bytes just
        // hashed are the bytes used.
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .map_err(|e| bad(format!("model.safetensors: {e}")))?;
        let model =
            BertModel::load(vb, &config).map_err(|e| bad(format!("model.safetensors: {e}")))?;
        Ok(Self {
            name: name.into(),
            digest: files.digest.clone(),
            dim: config.hidden_size,
            max_len,
            pooling: files.pooling,
            model,
            tokenizer,
        })
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

    /// Embed one text into `out` (length `dim`).
    fn embed_one(&self, text: &str, out: &mut [f32]) -> Result<(), EmbedError> {
        let encoding = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| self.run_err(format!("tokenizing: {e}")))?;
        let ids = encoding.get_ids();
        let types = encoding.get_type_ids();
        let device = Device::Cpu;
        let ids = Tensor::new(ids, &device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|e| self.run_err(e))?;
        let types = Tensor::new(types, &device)
            .and_then(|t| t.unsqueeze(0))
            .map_err(|e| self.run_err(e))?;
        let tokens: Vec<Vec<f32>> = self
            .model
            .forward(&ids, &types, None)
            .and_then(|t| t.squeeze(0))
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec2())
            .map_err(|e| self.run_err(e))?;
        pool(self.pooling, &tokens, out);
        l2_normalise(out);
        Ok(())
    }
}

/// Pool token vectors into `out`, summing in token order.
fn pool(pooling: Pooling, tokens: &[Vec<f32>], out: &mut [f32]) {
    out.iter_mut().for_each(|x| *x = 0.0);
    match pooling {
        Pooling::Cls => {
            if let Some(first) = tokens.first() {
                out.copy_from_slice(&first[..out.len()]);
            }
        }
        Pooling::Mean => {
            for token in tokens {
                out.iter_mut().zip(token).for_each(|(o, t)| *o += t);
            }
            let n = tokens.len().max(1) as f32;
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

    fn embed_batch(&self, texts: &[&str]) -> Result<Array2<f32>, EmbedError> {
        let mut out = Array2::zeros((texts.len(), self.dim));
        for (text, mut row) in texts.iter().zip(out.rows_mut()) {
            let slice = row
                .as_slice_mut()
                .ok_or_else(|| self.run_err("output rows are not contiguous"))?;
            self.embed_one(text, slice)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooling_and_normalisation() {
        let tokens = vec![vec![1.0, 0.0], vec![3.0, 4.0]];
        let mut out = [0.0; 2];
        pool(Pooling::Mean, &tokens, &mut out);
        assert_eq!(out, [2.0, 2.0]);
        pool(Pooling::Cls, &tokens, &mut out);
        assert_eq!(out, [1.0, 0.0]);
        pool(Pooling::Max, &tokens, &mut out);
        assert_eq!(out, [3.0, 4.0]);
        l2_normalise(&mut out);
        assert_eq!(out, [0.6, 0.8]);
        let mut zeros = [0.0; 2];
        l2_normalise(&mut zeros);
        assert_eq!(zeros, [0.0, 0.0]);
    }
}
