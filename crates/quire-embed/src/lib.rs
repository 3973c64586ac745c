//! Embedding models for quire.
//!
//! - [`Embedder`]: the trait every model implements (`model_id`, `digest`, `dim`,
//!   `embed_batch`).
//! - [`HashEmbedder`]: the built-in `hash-v1` model, deterministic feature hashing.
//! - [`Models`]: the models this process can run, resolved from a build spec's `[embedding]`
//!   table and checked against a pinned digest.
//!
//! A model's digest identifies exactly what it computes. An index records the digest of the
//! model that embedded it, and queries against that index must be embedded by the same digest.

mod error;
mod hash;

use std::sync::Arc;

use ndarray::Array2;
use quire_core::spec::EmbeddingSpec;

pub use error::EmbedError;
pub use hash::HashEmbedder;

/// An embedding model.
pub trait Embedder: Send + Sync {
    /// The model's name, e.g. `hash-v1`.
    fn model_id(&self) -> &str;
    /// blake3 over everything that determines the model's output.
    fn digest(&self) -> &str;
    /// Output dimension.
    fn dim(&self) -> usize;
    /// Embed `texts`, one L2-normalised row per text. Each row depends only on its own text, so
    /// callers may batch and parallelise freely without changing results.
    fn embed_batch(&self, texts: &[&str]) -> Result<Array2<f32>, EmbedError>;
}

/// The embedding models available to this process.
#[derive(Clone, Debug, Default)]
pub struct Models {
    _private: (),
}

impl Models {
    /// The built-in models only.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// Resolve the model a spec asks for, refusing one whose digest differs from a pinned one.
    pub fn resolve(&self, spec: &EmbeddingSpec) -> Result<Arc<dyn Embedder>, EmbedError> {
        let model: Arc<dyn Embedder> = match spec.model.as_str() {
            HashEmbedder::MODEL_ID => {
                let dim = spec.dim.ok_or_else(|| EmbedError::BadParameter {
                    model: spec.model.clone(),
                    reason: "needs `dim`".into(),
                })?;
                Arc::new(HashEmbedder::new(dim as usize)?)
            }
            other => {
                return Err(EmbedError::UnknownModel {
                    model: other.into(),
                    available: HashEmbedder::MODEL_ID.into(),
                });
            }
        };
        check_digest(model.as_ref(), spec.digest.as_deref())?;
        Ok(model)
    }

    /// Resolve the model with exactly this name and digest (how an index finds its query model).
    pub fn resolve_pinned(
        &self,
        model_id: &str,
        dim: u32,
        digest: &str,
    ) -> Result<Arc<dyn Embedder>, EmbedError> {
        let spec = EmbeddingSpec {
            model: model_id.into(),
            dim: Some(dim),
            digest: Some(digest.into()),
        };
        self.resolve(&spec)
    }
}

fn check_digest(model: &dyn Embedder, expected: Option<&str>) -> Result<(), EmbedError> {
    match expected {
        Some(expected) if expected != model.digest() => Err(EmbedError::DigestMismatch {
            model: model.model_id().into(),
            expected: expected.into(),
            actual: model.digest().into(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_checks_name_and_digest() -> Result<(), EmbedError> {
        let models = Models::builtin();
        let spec = EmbeddingSpec::default();
        let model = models.resolve(&spec)?;
        assert_eq!(model.dim(), 256);
        let pinned = models.resolve_pinned("hash-v1", 256, model.digest())?;
        assert_eq!(pinned.digest(), model.digest());
        let wrong = models
            .resolve_pinned("hash-v1", 256, "00")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(wrong.contains("hash-v1") && wrong.contains("00"), "{wrong}");
        let unknown = EmbeddingSpec {
            model: "minilm".into(),
            dim: None,
            digest: None,
        };
        let err = models
            .resolve(&unknown)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("`minilm` is not available"), "{err}");
        Ok(())
    }
}
