//! Build specs: everything besides the corpus that shapes an index.
//!
//! A spec is read from TOML (`quire.toml`), refused if it has unknown fields or values quire cannot
//! use, and then serialised canonically (JSON, fields in declaration order, every default filled
//! in). The canonical bytes go into the index id, so two specs that mean the same thing give the
//! same index.

use serde::{Deserialize, Serialize};

use crate::acl::{Acl, Principal};
use crate::error::{CoreError, Result};

/// The version of the spec format this build of quire reads.
pub const SPEC_VERSION: u32 = 1;

/// The default spec, with comments; `quire spec default` prints it.
pub const DEFAULT_SPEC_TOML: &str = include_str!("default_spec.toml");

/// A validated build spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// Spec format version; must be 1.
    pub version: u32,
    /// How documents are cut into chunks.
    #[serde(default)]
    pub chunking: Chunking,
    /// BM25 text analysis.
    #[serde(default)]
    pub bm25: Bm25Spec,
    /// The embedding model for the vector index.
    #[serde(default)]
    pub embedding: EmbeddingSpec,
    /// HNSW graph parameters.
    #[serde(default)]
    pub hnsw: HnswSpec,
    /// How BM25 and vector results are combined when a query does not say.
    #[serde(default)]
    pub fusion: FusionSpec,
    /// ACL for documents that carry none; absent means such documents are readable by nobody.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_acl: Option<Acl>,
    /// How old the newest source document may be before the index is flagged stale, e.g. `"30d"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freshness_window: Option<String>,
}

/// Chunking strategies. `max_tokens` counts words (runs of letters and digits).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "lowercase", deny_unknown_fields)]
pub enum Chunking {
    /// Windows of `max_tokens` words, each sharing `overlap` words with the one before.
    Fixed {
        /// Words per chunk.
        max_tokens: u32,
        /// Words shared by consecutive chunks; less than `max_tokens`.
        #[serde(default)]
        overlap: u32,
    },
    /// Whole sentences packed greedily up to `max_tokens` words.
    Sentences {
        /// Words per chunk at most (a longer sentence is cut into windows).
        max_tokens: u32,
    },
    /// Split on Markdown headings first, then pack sentences and list items within each section.
    Markdown {
        /// Words per chunk at most.
        max_tokens: u32,
    },
}

impl Default for Chunking {
    fn default() -> Self {
        Chunking::Markdown { max_tokens: 256 }
    }
}

/// BM25 analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bm25Spec {
    /// The text analyzer for titles and chunk text.
    #[serde(default)]
    pub analyzer: Analyzer,
}

impl Default for Bm25Spec {
    fn default() -> Self {
        Self {
            analyzer: Analyzer::English,
        }
    }
}

/// Text analyzers for BM25.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Analyzer {
    /// Lowercase, drop English stopwords, Snowball English stemming.
    #[default]
    English,
    /// Lowercase only.
    Plain,
}

/// The embedding model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingSpec {
    /// Model name, e.g. `hash-v1`.
    pub model: String,
    /// Output dimension, for models that take one (`hash-v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<u32>,
    /// The model digest the build must find; the build is refused if the model differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Embed each chunk as `"<document title> <chunk text>"` rather than the chunk text alone,
    /// so a chunk carries the context its title gives (how sentence-transformers models are
    /// usually run on titled corpora). Left out of the canonical spec when false, so specs that
    /// predate the field keep their index ids.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub include_title: bool,
    /// How the model's linear layers compute. Left out of the canonical spec when `fp32`, so
    /// specs that predate the field keep their index ids.
    #[serde(default, skip_serializing_if = "Precision::is_fp32")]
    pub precision: Precision,
}

/// Arithmetic of a neural embedding model's linear layers (attention and normalisation are
/// always `f32`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// `f32` weights and activations.
    #[default]
    Fp32,
    /// Weights quantised per output channel to `i8`, activations per token to `u8`, products
    /// summed exactly in `i32`: about twice as fast, slightly different vectors.
    Int8,
}

impl Precision {
    /// Whether this is the default, `fp32`.
    pub fn is_fp32(&self) -> bool {
        *self == Self::Fp32
    }

    /// `fp32` or `int8`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

impl Default for EmbeddingSpec {
    fn default() -> Self {
        Self {
            model: "hash-v1".into(),
            dim: Some(256),
            digest: None,
            include_title: false,
            precision: Precision::Fp32,
        }
    }
}

/// HNSW parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HnswSpec {
    /// Neighbours per node per layer (layer 0 keeps up to `2 m`).
    pub m: u32,
    /// Beam width while building.
    pub ef_construction: u32,
    /// Default beam width while searching.
    pub ef_search: u32,
    /// Which builder makes the graph. Left out of the canonical spec when it is `hnsw_rs`, the
    /// builder every spec used before the field existed, so those specs keep their index ids.
    #[serde(default, skip_serializing_if = "HnswBuilder::is_hnsw_rs")]
    pub builder: HnswBuilder,
}

impl Default for HnswSpec {
    fn default() -> Self {
        Self {
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            builder: HnswBuilder::HnswRs,
        }
    }
}

/// HNSW graph builders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HnswBuilder {
    /// hnsw_rs, inserting serially in ordinal order (its parallel insertion is not
    /// deterministic); layer 0 keeps `m` neighbours.
    #[default]
    HnswRs,
    /// quire's own builder: parallel batch insertion that gives the same graph for any thread
    /// count; layer 0 keeps `2 m` neighbours.
    Quire,
}

impl HnswBuilder {
    fn is_hnsw_rs(&self) -> bool {
        *self == HnswBuilder::HnswRs
    }
}

/// Fusion defaults for hybrid queries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FusionSpec {
    /// `rrf` or `weighted`.
    #[serde(default)]
    pub method: FusionMethod,
    /// The `k` of reciprocal rank fusion.
    #[serde(default = "default_rrf_k")]
    pub rrf_k: u32,
    /// Weight of BM25 in weighted fusion (the vector side gets `1 - alpha`).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// Candidates taken from each retriever before fusion.
    #[serde(default = "default_candidates")]
    pub candidates: u32,
}

fn default_rrf_k() -> u32 {
    60
}
fn default_alpha() -> f64 {
    0.5
}
fn default_candidates() -> u32 {
    100
}

impl Default for FusionSpec {
    fn default() -> Self {
        Self {
            method: FusionMethod::Rrf,
            rrf_k: default_rrf_k(),
            alpha: default_alpha(),
            candidates: default_candidates(),
        }
    }
}

/// Fusion methods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FusionMethod {
    /// Reciprocal rank fusion.
    #[default]
    Rrf,
    /// Weighted sum of min-max normalised scores.
    Weighted,
}

impl Default for BuildSpec {
    fn default() -> Self {
        Self {
            version: SPEC_VERSION,
            chunking: Chunking::default(),
            bm25: Bm25Spec::default(),
            embedding: EmbeddingSpec::default(),
            hnsw: HnswSpec::default(),
            fusion: FusionSpec::default(),
            default_acl: None,
            freshness_window: None,
        }
    }
}

impl BuildSpec {
    /// Parse and validate a spec; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let spec: BuildSpec = toml::from_str(text).map_err(|e| CoreError::SpecSyntax {
            origin: origin.into(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        spec.validate(origin)?;
        Ok(spec)
    }

    /// Parse the canonical JSON form stored in a manifest.
    pub fn from_canonical_json(bytes: &[u8]) -> Result<Self> {
        let spec: BuildSpec = serde_json::from_slice(bytes).map_err(|e| CoreError::SpecSyntax {
            origin: "<manifest>".into(),
            message: e.to_string(),
        })?;
        spec.validate("<manifest>")?;
        Ok(spec)
    }

    /// The canonical bytes hashed into the index id.
    pub fn canonical_json(&self) -> Vec<u8> {
        // These bytes are hashed into the index id: never let a failure hash empty bytes.
        serde_json::to_vec(self)
            .expect("a build spec serialises: plain structs, enums and numbers, string-keyed maps")
    }

    /// The ACL a document ends up with: its own, else the default, else nobody.
    pub fn effective_acl(&self, own: Option<&Acl>) -> Acl {
        own.or(self.default_acl.as_ref())
            .cloned()
            .unwrap_or_default()
    }

    /// The freshness window in seconds, if one is set.
    pub fn freshness_window_secs(&self) -> Option<u64> {
        self.freshness_window
            .as_deref()
            .and_then(|w| parse_duration_secs(w).ok())
    }

    fn validate(&self, origin: &str) -> Result<()> {
        let bad = |field: &str, value: String, reason: &str| CoreError::SpecInvalid {
            origin: origin.into(),
            field: field.into(),
            value,
            reason: reason.into(),
        };
        if self.version != SPEC_VERSION {
            return Err(bad(
                "version",
                self.version.to_string(),
                "this quire reads spec version 1",
            ));
        }
        let (max_tokens, field) = match &self.chunking {
            Chunking::Fixed {
                max_tokens,
                overlap,
            } => {
                if overlap >= max_tokens {
                    return Err(bad(
                        "chunking.overlap",
                        overlap.to_string(),
                        "must be less than chunking.max_tokens",
                    ));
                }
                (*max_tokens, "chunking.max_tokens")
            }
            Chunking::Sentences { max_tokens } | Chunking::Markdown { max_tokens } => {
                (*max_tokens, "chunking.max_tokens")
            }
        };
        if !(8..=8192).contains(&max_tokens) {
            return Err(bad(
                field,
                max_tokens.to_string(),
                "must be between 8 and 8192",
            ));
        }
        if self.embedding.model.trim().is_empty() {
            return Err(bad("embedding.model", "\"\"".into(), "must name a model"));
        }
        if let Some(dim) = self.embedding.dim
            && !(8..=4096).contains(&dim)
        {
            return Err(bad(
                "embedding.dim",
                dim.to_string(),
                "must be between 8 and 4096",
            ));
        }
        let HnswSpec {
            m,
            ef_construction,
            ef_search,
            builder: _,
        } = self.hnsw;
        if !(2..=128).contains(&m) {
            return Err(bad("hnsw.m", m.to_string(), "must be between 2 and 128"));
        }
        if !(m..=4096).contains(&ef_construction) {
            return Err(bad(
                "hnsw.ef_construction",
                ef_construction.to_string(),
                "must be between hnsw.m and 4096",
            ));
        }
        if !(1..=4096).contains(&ef_search) {
            return Err(bad(
                "hnsw.ef_search",
                ef_search.to_string(),
                "must be between 1 and 4096",
            ));
        }
        let f = &self.fusion;
        if f.rrf_k == 0 {
            return Err(bad("fusion.rrf_k", "0".into(), "must be positive"));
        }
        if !(0.0..=1.0).contains(&f.alpha) {
            return Err(bad(
                "fusion.alpha",
                f.alpha.to_string(),
                "must be between 0 and 1",
            ));
        }
        if !(1..=10_000).contains(&f.candidates) {
            return Err(bad(
                "fusion.candidates",
                f.candidates.to_string(),
                "must be between 1 and 10000",
            ));
        }
        if let Some(w) = &self.freshness_window {
            parse_duration_secs(w)
                .map_err(|reason| bad("freshness_window", format!("{w:?}"), &reason))?;
        }
        if let Some(acl) = &self.default_acl
            && acl.is_empty()
        {
            return Err(bad(
                "default_acl",
                "[]".into(),
                "an empty default admits nobody; omit default_acl to deny",
            ));
        }
        Ok(())
    }
}

/// Parse a duration such as `90s`, `15m`, `12h`, `30d` or `2w` into seconds.
pub fn parse_duration_secs(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected a number followed by s, m, h, d or w".to_string())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err("expected a number followed by s, m, h, d or w".into()),
    };
    n.checked_mul(scale)
        .filter(|&v| v > 0)
        .ok_or_else(|| "must be positive and fit in 64 bits of seconds".into())
}

/// Helper for callers holding raw principal tokens.
pub fn parse_acl(tokens: &[String]) -> Result<Acl> {
    tokens
        .iter()
        .map(|t| t.parse::<Principal>())
        .collect::<Result<Vec<_>>>()
        .map(Acl::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_toml_is_the_default_spec() -> Result<()> {
        assert_eq!(
            BuildSpec::from_toml(DEFAULT_SPEC_TOML, "<default>")?,
            BuildSpec::default()
        );
        Ok(())
    }

    #[test]
    fn minimal_spec_fills_defaults() -> Result<()> {
        let spec = BuildSpec::from_toml("version = 1\n", "x.toml")?;
        assert_eq!(spec.canonical_json(), BuildSpec::default().canonical_json());
        Ok(())
    }

    #[test]
    fn refusals_name_file_field_and_value() {
        let cases = [
            ("version = 2", "x.toml: field `version` = 2"),
            (
                "version = 1\n[hnsw]\nm = 1\nef_construction = 10\nef_search = 5",
                "field `hnsw.m` = 1",
            ),
            (
                "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 64\noverlap = 64",
                "`chunking.overlap` = 64",
            ),
            (
                "version = 1\n[chunking]\nstrategy = \"pages\"\nmax_tokens = 64",
                "x.toml: ",
            ),
            (
                "version = 1\n[chunking]\nstrategy = \"sentences\"\nmax_tokens = 64\noverlap = 2",
                "overlap",
            ),
            ("version = 1\ncolour = \"red\"", "colour"),
            (
                "version = 1\nfreshness_window = \"soon\"",
                "`freshness_window` = \"soon\"",
            ),
            ("version = 1\ndefault_acl = [\"boss\"]", "boss"),
            ("version = 1\n[fusion]\nalpha = 1.5", "`fusion.alpha` = 1.5"),
            (
                "version = 1\n[embedding]\nmodel = \"m\"\nprecision = \"int4\"",
                "unknown variant `int4`, expected `fp32` or `int8`",
            ),
            (
                "version = 1\n[hnsw]\nm = 16\nef_construction = 200\nef_search = 64\nbuilder = \"faiss\"",
                "builder = \"faiss\"",
            ),
        ];
        for (text, want) in cases {
            let err = BuildSpec::from_toml(text, "x.toml")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{text:?}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn canonical_json_round_trips() -> Result<()> {
        let spec = BuildSpec::from_toml(
            "version = 1\ndefault_acl = [\"group:b\", \"*\"]\nfreshness_window = \"30d\"\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 100\noverlap = 20",
            "x.toml",
        )?;
        assert_eq!(
            BuildSpec::from_canonical_json(&spec.canonical_json())?,
            spec
        );
        assert_eq!(spec.freshness_window_secs(), Some(30 * 86_400));
        Ok(())
    }

    #[test]
    fn precision_is_hashed_only_when_not_fp32() -> Result<()> {
        let base = "version = 1\n[embedding]\nmodel = \"m\"\n";
        let plain = BuildSpec::from_toml(base, "a.toml")?.canonical_json();
        let fp32 = BuildSpec::from_toml(&format!("{base}precision = \"fp32\""), "b.toml")?;
        assert_eq!(fp32.canonical_json(), plain);
        let int8 = BuildSpec::from_toml(&format!("{base}precision = \"int8\""), "c.toml")?;
        assert_eq!(int8.embedding.precision, Precision::Int8);
        assert!(String::from_utf8_lossy(&int8.canonical_json()).contains("\"precision\":\"int8\""));
        Ok(())
    }

    #[test]
    fn include_title_is_hashed_only_when_set() -> Result<()> {
        let plain = BuildSpec::default().canonical_json();
        assert!(!String::from_utf8_lossy(&plain).contains("include_title"));
        let titled = BuildSpec::from_toml(
            "version = 1\n[embedding]\nmodel = \"hash-v1\"\ndim = 256\ninclude_title = true",
            "x.toml",
        )?;
        assert!(titled.embedding.include_title);
        assert_ne!(titled.canonical_json(), plain);
        assert_eq!(
            BuildSpec::from_canonical_json(&titled.canonical_json())?,
            titled
        );
        Ok(())
    }

    #[test]
    fn hnsw_builder_is_hashed_only_when_quire() -> Result<()> {
        let plain = BuildSpec::default().canonical_json();
        assert!(!String::from_utf8_lossy(&plain).contains("builder"));
        let explicit = BuildSpec::from_toml(
            "version = 1\n[hnsw]\nm = 16\nef_construction = 200\nef_search = 64\nbuilder = \"hnsw_rs\"",
            "x.toml",
        )?;
        assert_eq!(
            explicit.canonical_json(),
            plain,
            "hnsw_rs is what old specs meant"
        );
        let quire = BuildSpec::from_toml(
            "version = 1\n[hnsw]\nm = 16\nef_construction = 200\nef_search = 64\nbuilder = \"quire\"",
            "x.toml",
        )?;
        assert_eq!(quire.hnsw.builder, HnswBuilder::Quire);
        assert!(String::from_utf8_lossy(&quire.canonical_json()).contains("\"builder\":\"quire\""));
        assert_eq!(
            BuildSpec::from_canonical_json(&quire.canonical_json())?,
            quire
        );
        Ok(())
    }

    /// A spec read back from its canonical JSON (as a manifest stores it) is the same spec with
    /// the same bytes, also for a float whose shortest form has 16 significant digits (found by
    /// the `spec` fuzz harness: serde_json's default float parsing read 0.9999999999999999 as
    /// 1.0, so the manifest's spec no longer hashed to the index id).
    #[test]
    fn a_spec_survives_its_canonical_json() -> Result<()> {
        for alpha in ["0.9999999999999999", "0.1", "0.30000000000000004", "1e-300"] {
            let text = format!("version = 1\n[fusion]\nmethod = \"weighted\"\nalpha = {alpha}\n");
            let spec = BuildSpec::from_toml(&text, "x.toml")?;
            let back = BuildSpec::from_canonical_json(&spec.canonical_json())?;
            assert_eq!(back, spec, "alpha = {alpha}");
            assert_eq!(
                back.canonical_json(),
                spec.canonical_json(),
                "alpha = {alpha}"
            );
        }
        Ok(())
    }
}
