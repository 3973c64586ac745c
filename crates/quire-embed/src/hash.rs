//! `hash-v1`: deterministic signed feature hashing of word unigrams and bigrams.

use ndarray::Array2;
use quire_core::chunk::word_spans;
use quire_core::ids::{context, hasher, update_field};

use crate::{EmbedError, Embedder};

/// The built-in embedder. Words are maximal runs of letters and digits, lowercased; every
/// unigram adds ±1 and every bigram ±0.5 to one of `dim` buckets chosen by a keyed blake3 of
/// the feature; the result is L2-normalised (a text without words embeds to zeros).
///
/// Not semantic, but fast, dependency-free and identical on every machine.
#[derive(Clone, Debug)]
pub struct HashEmbedder {
    dim: usize,
    digest: String,
    key: [u8; 32],
}

impl HashEmbedder {
    /// The model name.
    pub const MODEL_ID: &'static str = "hash-v1";
    const VERSION: u32 = 1;
    const UNIGRAM_WEIGHT: f32 = 1.0;
    const BIGRAM_WEIGHT: f32 = 0.5;

    /// A hash embedder producing `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Result<Self, EmbedError> {
        if !(8..=4096).contains(&dim) {
            return Err(EmbedError::BadParameter {
                model: Self::MODEL_ID.into(),
                reason: format!("dim {dim} is outside 8..=4096"),
            });
        }
        let mut h = hasher(context::MODEL);
        update_field(&mut h, Self::MODEL_ID.as_bytes());
        update_field(&mut h, &Self::VERSION.to_le_bytes());
        update_field(&mut h, &(dim as u64).to_le_bytes());
        update_field(&mut h, &Self::UNIGRAM_WEIGHT.to_le_bytes());
        update_field(&mut h, &Self::BIGRAM_WEIGHT.to_le_bytes());
        update_field(
            &mut h,
            b"words: alphanumeric runs, lowercased; features: unigrams, bigrams",
        );
        let digest = h.finalize();
        Ok(Self {
            dim,
            digest: digest.to_hex().to_string(),
            key: *digest.as_bytes(),
        })
    }

    fn add(&self, v: &mut [f32], feature: &[u8], weight: f32) {
        let h = blake3::keyed_hash(&self.key, feature);
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.as_bytes()[..8]);
        let bits = u64::from_le_bytes(first);
        let bucket = (bits % self.dim as u64) as usize;
        v[bucket] += if bits >> 63 == 1 { -weight } else { weight };
    }

    fn embed_one(&self, text: &str, out: &mut [f32]) {
        let words: Vec<String> = word_spans(text)
            .into_iter()
            .map(|(s, e)| text[s..e].to_lowercase())
            .collect();
        let mut bigram = Vec::new();
        for (i, w) in words.iter().enumerate() {
            self.add(out, w.as_bytes(), Self::UNIGRAM_WEIGHT);
            if let Some(next) = words.get(i + 1) {
                bigram.clear();
                bigram.extend_from_slice(w.as_bytes());
                bigram.push(b' ');
                bigram.extend_from_slice(next.as_bytes());
                self.add(out, &bigram, Self::BIGRAM_WEIGHT);
            }
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        }
    }
}

impl Embedder for HashEmbedder {
    fn model_id(&self) -> &str {
        Self::MODEL_ID
    }

    fn graph_friendly(&self) -> bool {
        false
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
            if let Some(slice) = row.as_slice_mut() {
                self.embed_one(text, slice);
            }
        }
        Ok(out)
    }

    fn cacheable(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_normalised_and_deterministic() -> Result<(), EmbedError> {
        let e = HashEmbedder::new(64)?;
        let a = e.embed_batch(&["Parental leave is twenty weeks", "", "parental LEAVE"])?;
        let b = e.embed_batch(&["Parental leave is twenty weeks", "", "parental LEAVE"])?;
        assert_eq!(a, b);
        let norm: f32 = a.row(0).iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert!(a.row(1).iter().all(|&x| x == 0.0));
        let sim: f32 = a.row(0).iter().zip(a.row(2)).map(|(x, y)| x * y).sum();
        assert!(
            sim > 0.3,
            "shared words should make vectors similar, got {sim}"
        );
        Ok(())
    }

    #[test]
    fn digest_covers_parameters() -> Result<(), EmbedError> {
        assert_eq!(
            HashEmbedder::new(64)?.digest(),
            HashEmbedder::new(64)?.digest()
        );
        assert_ne!(
            HashEmbedder::new(64)?.digest(),
            HashEmbedder::new(128)?.digest()
        );
        assert!(HashEmbedder::new(4).is_err());
        Ok(())
    }
}
