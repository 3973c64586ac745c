//! Sampled production queries: what the server records of a share of Retrieve requests, so that
//! a canary can later be evaluated on the queries users actually send.
//!
//! A record holds ids, counts and timings, never document text. The query is kept as text only
//! when the operator allows it (`store_text`); otherwise only its blake3 hash is kept, and such a
//! record cannot be replayed ([`SampleRecord::replayable_text`] says why).

use quire_core::{IndexId, Reader};
use serde::{Deserialize, Serialize};

use crate::error::{ReleaseError, Result};

/// The longest intent label, in bytes.
pub const MAX_INTENT_BYTES: usize = 64;

/// The most records one listing returns.
pub const MAX_SAMPLE_LIST: usize = 10_000;

/// A caller's label for what a request is for (`billing`, `hr.leave`): checked to be 1 to
/// [`MAX_INTENT_BYTES`] bytes of `a-z A-Z 0-9 . _ -`, so it is safe as a metric label and a key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Intent(String);

impl Intent {
    /// Check `label` as an intent.
    pub fn new(label: &str) -> Result<Self> {
        check_label("intent", label).map(Self)
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Check a caller's label (an intent, a feedback label): 1 to [`MAX_INTENT_BYTES`] bytes of
/// `a-z A-Z 0-9 . _ -`.
pub(crate) fn check_label(field: &'static str, label: &str) -> Result<String> {
    let refuse = |reason: &str| ReleaseError::Invalid {
        field,
        reason: format!(
            "{:?} is not a label: {reason}",
            label.chars().take(80).collect::<String>()
        ),
    };
    if label.is_empty() || label.len() > MAX_INTENT_BYTES {
        return Err(refuse(&format!("must be 1 to {MAX_INTENT_BYTES} bytes")));
    }
    if !label
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(refuse("may hold only a-z, A-Z, 0-9, '.', '_' and '-'"));
    }
    Ok(label.to_owned())
}

impl TryFrom<String> for Intent {
    type Error = ReleaseError;

    fn try_from(value: String) -> Result<Self> {
        Self::new(&value)
    }
}

impl From<Intent> for String {
    fn from(intent: Intent) -> Self {
        intent.0
    }
}

impl std::fmt::Display for Intent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The label reports use for requests that named no intent.
pub const NO_INTENT: &str = "(none)";

/// The query of a sampled request: its text when the operator allows storing text, otherwise
/// only its blake3 hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SampledQuery {
    /// The query text (`store_text = true`).
    Text(String),
    /// blake3 of the query text, hex (`store_text = false`).
    Blake3(String),
}

impl SampledQuery {
    /// The query as the sampler keeps it: the text, or its hash.
    pub fn new(text: &str, store_text: bool) -> Self {
        if store_text {
            Self::Text(text.to_owned())
        } else {
            Self::Blake3(blake3::hash(text.as_bytes()).to_hex().to_string())
        }
    }
}

/// Per-step wall-clock microseconds of a sampled request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMicros {
    /// Embedding the query.
    pub embed: u64,
    /// BM25.
    pub bm25: u64,
    /// Vector search.
    pub vector: u64,
    /// Fusion and hit assembly.
    pub fusion: u64,
    /// Everything.
    pub total: u64,
}

/// One sampled Retrieve request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleRecord {
    /// The request id the response carried.
    pub request_id: String,
    /// When it was answered (RFC 3339).
    pub time: String,
    /// The same instant in microseconds since the Unix epoch (the order of records).
    pub time_us: u64,
    /// The alias it was sent to.
    pub alias: String,
    /// The alias revision that served.
    pub revision: u64,
    /// `primary` or `canary`.
    pub arm: String,
    /// The index that answered.
    pub index_id: IndexId,
    /// The caller's intent label, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<Intent>,
    /// The effective principal's user (what replay runs as).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The effective principal's groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Hits asked for.
    pub k: u32,
    /// `hybrid`, `bm25` or `vector`.
    pub mode: String,
    /// Step timings.
    pub timings_us: StepMicros,
    /// The chunks answered, best first (ids only, never text).
    pub chunk_ids: Vec<String>,
    /// Their documents.
    pub doc_ids: Vec<String>,
    /// The query text, or only its hash.
    pub query: SampledQuery,
}

impl SampleRecord {
    /// The reader the request ran as.
    pub fn reader(&self) -> Result<Reader> {
        Reader::new(self.user.as_deref(), &self.groups).map_err(|e| ReleaseError::Invalid {
            field: "sample principal",
            reason: e.to_string(),
        })
    }

    /// The intent label reports group this request under.
    pub fn intent_label(&self) -> &str {
        self.intent.as_ref().map_or(NO_INTENT, Intent::as_str)
    }

    /// The text to replay, or why there is none.
    pub fn replayable_text(&self) -> std::result::Result<&str, &'static str> {
        match &self.query {
            SampledQuery::Text(text) => Ok(text),
            SampledQuery::Blake3(_) => Err(
                "only the query's hash was stored (sampling with store_text = false), so it cannot be replayed",
            ),
        }
    }
}

/// The user and groups of `reader`, as a sample stores them.
pub fn principal_of(reader: &Reader) -> (Option<String>, Vec<String>) {
    let mut user = None;
    let mut groups = Vec::new();
    for p in reader.named() {
        match p {
            quire_core::Principal::User(u) => user = Some(u.clone()),
            quire_core::Principal::Group(g) => groups.push(g.clone()),
            quire_core::Principal::Public => {}
        }
    }
    (user, groups)
}

/// Which samples to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleQuery {
    /// Only this alias's (every alias's when `None`).
    pub alias: Option<String>,
    /// Only those recorded at or after this many microseconds since the epoch.
    pub since_us: u64,
    /// At most this many, the newest (returned oldest first).
    pub limit: usize,
}

impl SampleQuery {
    /// Keep the newest `limit` of `records` matching the query, oldest first (sorted by time,
    /// then request id, so every backend returns the same list).
    pub fn select(&self, mut records: Vec<SampleRecord>) -> Vec<SampleRecord> {
        records.retain(|r| {
            r.time_us >= self.since_us && self.alias.as_ref().is_none_or(|a| *a == r.alias)
        });
        records.sort_by(|a, b| (a.time_us, &a.request_id).cmp(&(b.time_us, &b.request_id)));
        let skip = records.len().saturating_sub(self.limit);
        records.split_off(skip)
    }
}

/// What `quire samples` asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleListing {
    /// Only this alias's.
    pub alias: Option<String>,
    /// Only this intent's.
    pub intent: Option<Intent>,
    /// Only those recorded in the last this-many seconds.
    pub since_secs: Option<u64>,
    /// At most this many, the newest (1 to [`MAX_SAMPLE_LIST`]).
    pub limit: usize,
}

impl SampleListing {
    /// The listing with `limit` checked: 0 means 100.
    pub fn new(
        alias: Option<String>,
        intent: Option<Intent>,
        since_secs: Option<u64>,
        limit: usize,
    ) -> Result<Self> {
        if limit > MAX_SAMPLE_LIST {
            return Err(ReleaseError::Invalid {
                field: "limit",
                reason: format!("{limit} exceeds {MAX_SAMPLE_LIST}"),
            });
        }
        let limit = if limit == 0 { 100 } else { limit };
        Ok(Self {
            alias,
            intent,
            since_secs,
            limit,
        })
    }

    /// The records of `all` (oldest first) this listing keeps: its intent's, the newest
    /// `limit`.
    pub fn keep(&self, mut all: Vec<SampleRecord>) -> Vec<SampleRecord> {
        if let Some(intent) = &self.intent {
            all.retain(|r| r.intent.as_ref() == Some(intent));
        }
        let skip = all.len().saturating_sub(self.limit);
        all.split_off(skip)
    }
}

/// Microseconds since the Unix epoch of `time`.
pub fn micros(time: jiff::Timestamp) -> u64 {
    u64::try_from(time.as_microsecond()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intents_are_bounded_and_plain() {
        for ok in ["billing", "hr.leave", "A-1_b", &"x".repeat(64)] {
            assert_eq!(
                Intent::new(ok).map(|i| i.to_string()).ok(),
                Some(ok.to_owned())
            );
        }
        for bad in ["", "a b", "ü", "a/b", &"x".repeat(65)] {
            let err = Intent::new(bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.starts_with("intent: "), "{bad:?}: {err}");
        }
        let decoded: std::result::Result<Intent, _> = serde_json::from_str("\"a b\"");
        assert!(decoded.is_err(), "a stored label is checked too");
    }

    #[test]
    fn a_query_is_kept_as_text_only_when_allowed() {
        assert_eq!(
            SampledQuery::new("leave", true),
            SampledQuery::Text("leave".into())
        );
        let hashed = SampledQuery::new("leave", false);
        assert_eq!(
            hashed,
            SampledQuery::Blake3(blake3::hash(b"leave").to_hex().to_string())
        );
        assert_eq!(
            serde_json::to_string(&hashed)
                .ok()
                .map(|s| s.contains("leave")),
            Some(false)
        );
    }
}
