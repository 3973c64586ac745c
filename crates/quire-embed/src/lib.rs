//! Embedding models for quire.
//!
//! - [`Embedder`]: the trait every model implements (`model_id`, `digest`, `dim`,
//!   `embed_batch`).
//! - [`HashEmbedder`]: the built-in `hash-v1` model, deterministic feature hashing.
//! - [`BertEmbedder`]: a local sentence-transformers BERT model directory (all-MiniLM-L6-v2 and
//!   kin) run by quire's own encoder on the CPU; [`ModelFiles`] says which files it reads and how they are
//!   hashed into its digest.
//! - [`Models`]: the models this process can run (the built-in ones plus local directories
//!   registered by name), resolved from a build spec's `[embedding]` table and checked against a
//!   pinned digest. Local models are loaded on first use, once, and shared.
//!
//! A model's digest identifies exactly what it computes. An index records the digest of the
//! model that embedded it, and queries against that index must be embedded by the same digest.

mod bert;
mod encoder;
mod error;
mod hash;
mod kernels;
mod local;
mod weights;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ndarray::Array2;
use quire_core::spec::{EmbeddingSpec, Precision};

pub use bert::BertEmbedder;
pub use error::EmbedError;
pub use hash::HashEmbedder;
pub use kernels::KernelPath;
pub use local::{ModelFiles, Pooling};

/// Where the vectors of the model with `digest` at `precision` are cached (hex): the digest at
/// `fp32`, else a hash of the digest and the precision. A manifest names both
/// (`embedding.digest`, `spec.embedding.precision`), so the namespace of an index's model is
/// known without loading the model.
pub fn cache_namespace(digest: &str, precision: Precision) -> String {
    match precision {
        Precision::Fp32 => digest.to_owned(),
        other => {
            let mut h = blake3::Hasher::new();
            h.update(digest.as_bytes());
            h.update(b"\0precision\0");
            h.update(other.as_str().as_bytes());
            h.finalize().to_hex().to_string()
        }
    }
}

/// An embedding model.
pub trait Embedder: Send + Sync {
    /// The model's name, e.g. `hash-v1`.
    fn model_id(&self) -> &str;
    /// blake3 over everything that determines the model's output (for local models: the
    /// files; the [`Precision`] they run at is named separately, in the spec).
    fn digest(&self) -> &str;
    /// The arithmetic of the model's linear layers.
    fn precision(&self) -> Precision {
        Precision::Fp32
    }
    /// Where this model's vectors are cached (hex): the digest at `fp32`, else a hash of the
    /// digest and the precision (vectors of one model at two precisions differ).
    fn cache_namespace(&self) -> String {
        cache_namespace(self.digest(), self.precision())
    }
    /// Output dimension.
    fn dim(&self) -> usize;
    /// Embed `texts`, one L2-normalised row per text. Each row depends only on its own text, so
    /// callers may batch and parallelise freely without changing results.
    fn embed_batch(&self, texts: &[&str]) -> Result<Array2<f32>, EmbedError>;
    /// Embed one text (a query) at the lowest latency: the same vector as its row from
    /// [`embed_batch`](Self::embed_batch), but a model may use idle threads of the calling
    /// thread's rayon pool for it.
    fn embed_query(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        Ok(self.embed_batch(&[text])?.into_iter().collect())
    }
    /// Whether a graph walk finds this model's nearest neighbours well enough to stand in for
    /// an exact scan wherever it is cheaper. False for vectors spread nearly uniformly, such as
    /// hashed features, where HNSW's recall stays low (hash-v1 on SciFact: hybrid nDCG@10 0.4978
    /// with exact vector candidates, 0.4370 with a walk at ef 100); quire then scans exactly up
    /// to a fixed size (see `quire_index::plan`).
    fn graph_friendly(&self) -> bool {
        true
    }
    /// Whether vectors are worth caching between builds (false for models that compute a vector
    /// faster than a cache could read it back).
    fn cacheable(&self) -> bool {
        true
    }
    /// The CPU code path that computes the vectors (e.g. `avx512`), for models whose speed
    /// depends on one; recorded with each build so a differing digest can be explained.
    fn kernel(&self) -> Option<&'static str> {
        None
    }
}

/// A local model directory registered under a name, loaded on first use.
#[derive(Debug)]
struct LocalModel {
    path: PathBuf,
    loaded: Mutex<BTreeMap<Precision, Arc<BertEmbedder>>>,
}

impl LocalModel {
    fn get(&self, name: &str, precision: Precision) -> Result<Arc<BertEmbedder>, EmbedError> {
        // Held while loading, so concurrent first users wait for one load instead of racing.
        let mut slot = self.loaded.lock().map_err(|_| EmbedError::Run {
            model: name.into(),
            reason: "an earlier load panicked".into(),
        })?;
        if let Some(model) = slot.get(&precision) {
            return Ok(model.clone());
        }
        let model = Arc::new(BertEmbedder::load_at(name, &self.path, precision)?);
        slot.insert(precision, model.clone());
        Ok(model)
    }
}

/// The embedding models available to this process: `hash-v1` plus local model directories
/// registered by name. Cheap to clone; clones share loaded models.
#[derive(Clone, Debug, Default)]
pub struct Models {
    local: Arc<BTreeMap<String, LocalModel>>,
}

impl Models {
    /// The built-in models only.
    pub fn builtin() -> Self {
        Self::default()
    }

    /// These models plus the local model directory `path`, called `name`. Nothing is read until
    /// the model is first resolved.
    pub fn with_local(self, name: &str, path: impl Into<PathBuf>) -> Result<Self, EmbedError> {
        if name == HashEmbedder::MODEL_ID
            || name.trim().is_empty()
            || name.contains(char::is_whitespace)
        {
            return Err(EmbedError::BadParameter {
                model: name.into(),
                reason: "not a usable name for a local model".into(),
            });
        }
        let mut local: BTreeMap<String, LocalModel> = self
            .local
            .iter()
            .map(|(k, m)| {
                (
                    k.clone(),
                    LocalModel {
                        path: m.path.clone(),
                        loaded: Mutex::new(m.loaded.lock().map(|g| g.clone()).unwrap_or_default()),
                    },
                )
            })
            .collect();
        local.insert(
            name.into(),
            LocalModel {
                path: path.into(),
                loaded: Mutex::default(),
            },
        );
        Ok(Self {
            local: Arc::new(local),
        })
    }

    /// The built-in models plus every subdirectory of `dir` that holds a `config.json`, named
    /// after the subdirectory. A missing `dir` gives the built-in models only.
    pub fn from_dir(dir: &Path) -> Result<Self, EmbedError> {
        let mut models = Self::builtin();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(models),
            Err(e) => {
                return Err(EmbedError::Load {
                    model: "*".into(),
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        let mut found: Vec<(String, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("config.json").is_file())
            .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), p)))
            .filter(|(name, _)| !name.starts_with('.'))
            .collect();
        found.sort();
        for (name, path) in found {
            models = models.with_local(&name, path)?;
        }
        Ok(models)
    }

    /// The names of every model, built-in first.
    pub fn names(&self) -> Vec<String> {
        std::iter::once(HashEmbedder::MODEL_ID.to_owned())
            .chain(self.local.keys().cloned())
            .collect()
    }

    /// Resolve the model a spec asks for, refusing one whose digest differs from a pinned one.
    pub fn resolve(&self, spec: &EmbeddingSpec) -> Result<Arc<dyn Embedder>, EmbedError> {
        let model: Arc<dyn Embedder> = match spec.model.as_str() {
            HashEmbedder::MODEL_ID => {
                if !spec.precision.is_fp32() {
                    return Err(EmbedError::BadParameter {
                        model: spec.model.clone(),
                        reason: format!(
                            "precision `{}` is for neural models; hash-v1 has only fp32",
                            spec.precision.as_str()
                        ),
                    });
                }
                let dim = spec.dim.ok_or_else(|| EmbedError::BadParameter {
                    model: spec.model.clone(),
                    reason: "needs `dim`".into(),
                })?;
                Arc::new(HashEmbedder::new(dim as usize)?)
            }
            name => {
                let local = self
                    .local
                    .get(name)
                    .ok_or_else(|| EmbedError::UnknownModel {
                        model: name.into(),
                        available: self.names().join(", "),
                    })?;
                let model = local.get(name, spec.precision)?;
                if let Some(dim) = spec.dim
                    && dim as usize != model.dim()
                {
                    return Err(EmbedError::BadParameter {
                        model: name.into(),
                        reason: format!("spec asks for dim {dim}, the model has {}", model.dim()),
                    });
                }
                model
            }
        };
        check_digest(model.as_ref(), spec.digest.as_deref())?;
        Ok(model)
    }

    /// Resolve the model a spec asks for and return the embedding spec with the model's digest
    /// filled in for local models, which is what a build hashes into the index id: a local
    /// model's files are part of an index's identity even when the spec does not pin them.
    /// Built-in models are defined by their parameters, so their specs are left as they are.
    pub fn pin(
        &self,
        spec: &EmbeddingSpec,
    ) -> Result<(EmbeddingSpec, Arc<dyn Embedder>), EmbedError> {
        let model = self.resolve(spec)?;
        let mut pinned = spec.clone();
        if spec.model != HashEmbedder::MODEL_ID {
            pinned.digest = Some(model.digest().to_owned());
        }
        Ok((pinned, model))
    }

    /// Resolve the model with exactly this name, digest and precision (how an index finds its
    /// query model).
    pub fn resolve_pinned(
        &self,
        model_id: &str,
        dim: u32,
        digest: &str,
        precision: Precision,
    ) -> Result<Arc<dyn Embedder>, EmbedError> {
        let spec = EmbeddingSpec {
            model: model_id.into(),
            dim: Some(dim),
            digest: Some(digest.into()),
            include_title: false,
            precision,
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
        let pinned = models.resolve_pinned("hash-v1", 256, model.digest(), Precision::Fp32)?;
        assert_eq!(pinned.digest(), model.digest());
        let wrong = models
            .resolve_pinned("hash-v1", 256, "00", Precision::Fp32)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(wrong.contains("hash-v1") && wrong.contains("00"), "{wrong}");
        let unknown = EmbeddingSpec {
            model: "minilm".into(),
            dim: None,
            digest: None,
            include_title: false,
            precision: Precision::Fp32,
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
