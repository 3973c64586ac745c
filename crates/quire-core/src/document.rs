//! Documents and their canonical form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::acl::Acl;

/// One document of a corpus snapshot.
///
/// The field order here is the canonical serialisation order; optional fields are omitted when
/// absent, and an empty title or empty metadata is the same as none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Unique within a snapshot; non-empty.
    pub id: String,
    /// Optional title, indexed together with every chunk of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Free-form string metadata returned with hits.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// Who may read it; `None` means the build spec's `default_acl` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// Last modification, normalised to RFC 3339 in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The body, kept byte for byte.
    pub text: String,
}

/// The JSON dialect a corpus line is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JsonDialect {
    /// quire's JSONL: `id`, `text`, `title`?, `metadata`?, `acl`?, `updated_at`?; nothing else.
    Quire,
    /// BEIR's `corpus.jsonl`: `_id`, `title`, `text`, optional `metadata`; other fields ignored.
    Beir,
}

impl Document {
    /// Validate one parsed JSON line. The error is a reason without location; the caller adds
    /// the file and line.
    pub fn from_json(value: Value, dialect: JsonDialect) -> Result<Self, String> {
        let Value::Object(mut obj) = value else {
            return Err(format!(
                "expected a JSON object, found {}",
                json_kind(&value)
            ));
        };
        let id_key = match dialect {
            JsonDialect::Quire => "id",
            JsonDialect::Beir => "_id",
        };
        if dialect == JsonDialect::Quire {
            const KNOWN: [&str; 6] = ["id", "text", "title", "metadata", "acl", "updated_at"];
            if let Some(key) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
                return Err(format!(
                    "unknown field `{key}` (expected one of: {})",
                    KNOWN.join(", ")
                ));
            }
        }
        let id = match obj.remove(id_key) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                return Err(format!("`{id_key}` is empty"));
            }
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(format!(
                    "`{id_key}` must be a string, found {}",
                    json_kind(&other)
                ));
            }
            None => return Err(format!("missing `{id_key}`")),
        };
        let text = match obj.remove("text") {
            Some(Value::String(s)) => s,
            Some(other) => {
                return Err(format!(
                    "`text` must be a string, found {}",
                    json_kind(&other)
                ));
            }
            None => return Err("missing `text`".into()),
        };
        let title = match obj.remove("title") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s).filter(|s| !s.is_empty()),
            Some(other) => {
                return Err(format!(
                    "`title` must be a string, found {}",
                    json_kind(&other)
                ));
            }
        };
        let metadata = match obj.remove("metadata") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(Value::Object(map)) => string_map(map)?,
            Some(other) => {
                return Err(format!(
                    "`metadata` must be an object, found {}",
                    json_kind(&other)
                ));
            }
        };
        let acl = match (dialect, obj.remove("acl")) {
            (JsonDialect::Beir, _) | (_, None) => None,
            (_, Some(Value::Array(items))) => Some(acl_list(items)?),
            (_, Some(other)) => {
                return Err(format!(
                    "`acl` must be a list of strings, found {}",
                    json_kind(&other)
                ));
            }
        };
        let updated_at = match (dialect, obj.remove("updated_at")) {
            (JsonDialect::Beir, _) | (_, None) | (_, Some(Value::Null)) => None,
            (_, Some(Value::String(s))) => Some(normalise_timestamp(&s)?),
            (_, Some(other)) => {
                return Err(format!(
                    "`updated_at` must be an RFC 3339 string, found {}",
                    json_kind(&other)
                ));
            }
        };
        Ok(Document {
            id,
            title,
            metadata,
            acl,
            updated_at,
            text,
        })
    }

    /// The canonical one-line JSON form, without the trailing newline.
    pub fn canonical_json(&self) -> Vec<u8> {
        // These bytes are hashed into the snapshot id: never let a failure hash empty bytes.
        serde_json::to_vec(self).expect(
            "a document serialises: strings, string-keyed maps and sets, no custom Serialize",
        )
    }
}

/// Parse an RFC 3339 timestamp and print it in UTC, so equal instants serialise equally.
pub fn normalise_timestamp(s: &str) -> Result<String, String> {
    s.parse::<jiff::Timestamp>()
        .map(|ts| ts.to_string())
        .map_err(|e| format!("`updated_at` {s:?} is not an RFC 3339 timestamp: {e}"))
}

fn string_map(map: Map<String, Value>) -> Result<BTreeMap<String, String>, String> {
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(format!(
                "metadata value `{k}` must be a string, found {}",
                json_kind(&other)
            )),
        })
        .collect()
}

fn acl_list(items: Vec<Value>) -> Result<Acl, String> {
    let tokens = items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "`acl` entries must be strings, found {}",
                json_kind(&other)
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Acl::parse(&tokens).map_err(|e| format!("`acl`: {e}"))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Document, String> {
        Document::from_json(v, JsonDialect::Quire)
    }

    #[test]
    fn canonical_form_is_independent_of_input_spelling() -> Result<(), String> {
        let a = parse(
            json!({"id": "d1", "text": "hi", "title": "", "acl": ["group:b", "group:a", "group:a"],
            "metadata": {"z": "1", "a": "2"}, "updated_at": "2026-01-01T01:00:00+01:00"}),
        )?;
        let b = parse(
            json!({"updated_at": "2026-01-01T00:00:00Z", "metadata": {"a": "2", "z": "1"},
            "acl": ["group:a", "group:b"], "text": "hi", "id": "d1"}),
        )?;
        assert_eq!(a.canonical_json(), b.canonical_json());
        let beir = Document::from_json(
            json!({"_id": "d1", "title": "T", "text": "hi", "extra": 1}),
            JsonDialect::Beir,
        )?;
        let quire = parse(json!({"id": "d1", "title": "T", "text": "hi"}))?;
        assert_eq!(beir.canonical_json(), quire.canonical_json());
        Ok(())
    }

    #[test]
    fn refusals_name_the_problem() {
        let cases = [
            (json!({"text": "x"}), "missing `id`"),
            (json!({"id": "  ", "text": "x"}), "`id` is empty"),
            (json!({"id": 7, "text": "x"}), "`id` must be a string"),
            (json!({"id": "a"}), "missing `text`"),
            (
                json!({"id": "a", "text": "x", "metadata": {"n": 1}}),
                "metadata value `n` must be a string",
            ),
            (
                json!({"id": "a", "text": "x", "acl": ["boss"]}),
                "invalid principal \"boss\"",
            ),
            (
                json!({"id": "a", "text": "x", "updated_at": "yesterday"}),
                "not an RFC 3339",
            ),
            (
                json!({"id": "a", "text": "x", "body": "y"}),
                "unknown field `body`",
            ),
            (json!(["a"]), "expected a JSON object"),
        ];
        for (input, want) in cases {
            let err = parse(input.clone()).err().unwrap_or_default();
            assert!(err.contains(want), "{input}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn text_is_kept_byte_exact() -> Result<(), String> {
        let text = "  line one\r\n\ttab é \u{1F600}  ";
        assert_eq!(parse(json!({"id": "a", "text": text}))?.text, text);
        Ok(())
    }
}
