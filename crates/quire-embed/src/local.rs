//! Local sentence-transformers model directories: which files are read, how they are pinned.
//!
//! A model directory holds what `sentence-transformers` saves:
//!
//! ```text
//! config.json                  BERT architecture (required)
//! model.safetensors            weights (required)
//! tokenizer.json               the fast tokenizer (required)
//! modules.json                 the module pipeline (optional; names the pooling directory)
//! sentence_bert_config.json    max_seq_length (optional)
//! 1_Pooling/config.json        pooling mode (optional; mean pooling without it)
//! ```
//!
//! The **digest** is blake3 (context [`context::MODEL`]) over a backend tag and then, in sorted
//! order of their relative paths, the length-prefixed path and contents of exactly the files above
//! that exist. Any other file in the directory (READMEs, `vocab.txt`) does not affect the output
//! and is not hashed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use quire_core::ids::{context, hasher, update_field};
use serde::Deserialize;

use crate::EmbedError;

/// Names the code that turns the files into vectors; part of every local model's digest.
/// v2: quire's own encoder (fused multiply-add chains in `k` order, fixed-lane reductions),
/// which computes other bits than v1's candle backend did.
pub(crate) const BACKEND_TAG: &str = "quire sentence-transformers bert v2: quire encoder, f32 \
     fma chains in k order, one text per pass, pooled then l2-normalised";

/// Files every model directory must have.
const REQUIRED: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];
const MODULES: &str = "modules.json";
const ST_CONFIG: &str = "sentence_bert_config.json";
const DEFAULT_POOLING_DIR: &str = "1_Pooling";

/// How token vectors become one text vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The average of all token vectors (`[CLS]` and `[SEP]` included, as sentence-transformers).
    Mean,
    /// The `[CLS]` token's vector.
    Cls,
    /// The element-wise maximum over tokens.
    Max,
}

/// The files of a model directory, read into memory and hashed.
pub struct ModelFiles {
    /// The directory.
    pub path: PathBuf,
    /// Relative path (`/`-separated) to contents, for every file the model uses.
    pub files: BTreeMap<String, Vec<u8>>,
    /// blake3 over [`BACKEND_TAG`] and the files, hex.
    pub digest: String,
    /// The pooling mode the directory asks for.
    pub pooling: Pooling,
    /// `max_seq_length` from `sentence_bert_config.json`, if given.
    pub max_seq_length: Option<usize>,
}

impl std::fmt::Debug for ModelFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelFiles")
            .field("path", &self.path)
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("digest", &self.digest)
            .finish()
    }
}

#[derive(Deserialize)]
struct Module {
    #[serde(default)]
    path: String,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(Deserialize)]
struct StConfig {
    max_seq_length: Option<usize>,
}

#[derive(Deserialize, Default)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

impl ModelFiles {
    /// Read and hash the model in `path`; `name` is used in errors.
    pub fn read(name: &str, path: &Path) -> Result<Self, EmbedError> {
        let bad = |reason: String| EmbedError::Load {
            model: name.into(),
            path: path.to_path_buf(),
            reason,
        };
        let read = |rel: &str| -> Result<Option<Vec<u8>>, EmbedError> {
            let file = path.join(rel);
            match std::fs::read(&file) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(bad(format!("reading {rel}: {e}"))),
            }
        };
        let mut files = BTreeMap::new();
        for rel in REQUIRED {
            let bytes = read(rel)?.ok_or_else(|| bad(format!("{rel} is missing")))?;
            files.insert(rel.to_owned(), bytes);
        }
        let mut pooling_dir = DEFAULT_POOLING_DIR.to_owned();
        if let Some(bytes) = read(MODULES)? {
            let modules: Vec<Module> =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("{MODULES}: {e}")))?;
            if let Some(m) = modules.iter().find(|m| m.kind.ends_with(".Pooling")) {
                pooling_dir = m.path.trim_matches('/').to_owned();
            }
            files.insert(MODULES.to_owned(), bytes);
        }
        let mut max_seq_length = None;
        if let Some(bytes) = read(ST_CONFIG)? {
            let st: StConfig =
                serde_json::from_slice(&bytes).map_err(|e| bad(format!("{ST_CONFIG}: {e}")))?;
            max_seq_length = st.max_seq_length;
            files.insert(ST_CONFIG.to_owned(), bytes);
        }
        let pooling_rel = format!("{pooling_dir}/config.json");
        let pooling = match read(&pooling_rel)? {
            Some(bytes) => {
                let p: PoolingConfig = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("{pooling_rel}: {e}")))?;
                files.insert(pooling_rel.clone(), bytes);
                match (
                    p.pooling_mode_mean_tokens,
                    p.pooling_mode_cls_token,
                    p.pooling_mode_max_tokens,
                    p.pooling_mode_mean_sqrt_len_tokens,
                ) {
                    (true, false, false, false) => Pooling::Mean,
                    (false, true, false, false) => Pooling::Cls,
                    (false, false, true, false) => Pooling::Max,
                    _ => {
                        return Err(bad(format!(
                            "{pooling_rel}: exactly one of mean, cls or max pooling is supported"
                        )));
                    }
                }
            }
            None => Pooling::Mean,
        };
        let digest = digest_of(&files);
        Ok(Self {
            path: path.to_path_buf(),
            files,
            digest,
            pooling,
            max_seq_length,
        })
    }

    /// The contents of a file the model uses.
    pub fn get(&self, rel: &str) -> &[u8] {
        self.files.get(rel).map(Vec::as_slice).unwrap_or_default()
    }
}

/// The digest of a set of model files (see the module docs).
pub fn digest_of(files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut h = hasher(context::MODEL);
    update_field(&mut h, BACKEND_TAG.as_bytes());
    for (rel, bytes) in files {
        update_field(&mut h, rel.as_bytes());
        update_field(&mut h, bytes);
    }
    h.finalize().to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).ok();
        }
        std::fs::write(path, text).ok();
    }

    #[test]
    fn digest_covers_used_files_only_and_pooling_is_read() -> Result<(), EmbedError> {
        let tmp = std::env::temp_dir().join(format!("quire-embed-local-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).ok();
        for rel in REQUIRED {
            write(&tmp, rel, rel);
        }
        let plain = ModelFiles::read("m", &tmp)?;
        assert_eq!(plain.pooling, Pooling::Mean);
        write(&tmp, "README.md", "not part of the model");
        assert_eq!(ModelFiles::read("m", &tmp)?.digest, plain.digest);
        write(
            &tmp,
            "1_Pooling/config.json",
            r#"{"pooling_mode_cls_token": true}"#,
        );
        let cls = ModelFiles::read("m", &tmp)?;
        assert_eq!(cls.pooling, Pooling::Cls);
        assert_ne!(cls.digest, plain.digest);
        write(&tmp, "tokenizer.json", "changed");
        assert_ne!(ModelFiles::read("m", &tmp)?.digest, cls.digest);
        std::fs::remove_file(tmp.join("config.json")).ok();
        let err = ModelFiles::read("m", &tmp)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("config.json is missing"), "{err}");
        std::fs::remove_dir_all(&tmp).ok();
        Ok(())
    }
}
