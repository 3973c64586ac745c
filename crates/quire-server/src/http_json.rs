//! The HTTP API's JSON shapes. Requests are serde structs that refuse unknown fields; they
//! become the gRPC request messages and then domain values through the same `TryFrom`
//! conversions (`quire_proto`) the gRPC handlers use, so both transports accept and refuse
//! exactly the same requests. Responses are the domain values' own JSON (what `quire --json`
//! prints).

use quire_proto::convert::{InvalidField, RetrieveParams};
use quire_proto::pb;
use quire_proto::pb::change_alias_request::Change;
use quire_proto::release::ChangeAliasParams;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;

/// `POST /v1/retrieve`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    /// An index id, a unique prefix, `ALIAS` or `ALIAS@REVISION`.
    pub target: String,
    /// The query text.
    pub query: String,
    /// Whom to read as (narrowed or refused by the token's binding); none: the anonymous
    /// reader.
    #[serde(default)]
    pub principal: Option<Principal>,
    /// Hits wanted, 1 to the server's `max_k` (10 when absent).
    #[serde(default)]
    pub k: Option<u32>,
    /// `hybrid` (the default), `bm25` or `vector`.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// `rrf` or `weighted`; the index's spec decides when absent.
    #[serde(default)]
    pub fusion: Option<Fusion>,
    /// Candidates taken from each retriever, 1 to 10000.
    #[serde(default)]
    pub candidates: Option<u32>,
    /// Sticks the caller to one arm of an alias's canary.
    #[serde(default)]
    pub routing_key: Option<String>,
    /// Return each hit's BM25 and vector rank and score.
    #[serde(default)]
    pub explain: bool,
    /// What the request is for (sampling and canary reports are stratified by it).
    #[serde(default)]
    pub intent: Option<String>,
}

/// A reader: a user and groups.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// The user id.
    #[serde(default)]
    pub user: Option<String>,
    /// Group names.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// A retrieval mode.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 and vectors, fused.
    Hybrid,
    /// BM25 alone.
    Bm25,
    /// Vectors alone.
    Vector,
}

/// A fusion method.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion.
    Rrf,
    /// Weighted min-max normalised scores.
    Weighted,
}

fn positive(field: &'static str, value: Option<u32>) -> Result<u32, InvalidField> {
    match value {
        Some(0) => Err(InvalidField {
            field,
            reason: "must be at least 1".into(),
        }),
        other => Ok(other.unwrap_or(0)),
    }
}

impl TryFrom<RetrieveRequest> for RetrieveParams {
    type Error = InvalidField;

    fn try_from(r: RetrieveRequest) -> Result<Self, InvalidField> {
        let mode = match r.mode {
            None => pb::Mode::Unspecified,
            Some(Mode::Hybrid) => pb::Mode::Hybrid,
            Some(Mode::Bm25) => pb::Mode::Bm25,
            Some(Mode::Vector) => pb::Mode::Vector,
        };
        let fusion = match r.fusion {
            None => pb::Fusion::Unspecified,
            Some(Fusion::Rrf) => pb::Fusion::Rrf,
            Some(Fusion::Weighted) => pb::Fusion::Weighted,
        };
        let message = pb::RetrieveRequest {
            target: r.target,
            query: r.query,
            principal: r.principal.map(|p| pb::Principal {
                user: p.user.unwrap_or_default(),
                groups: p.groups,
            }),
            k: positive("k", r.k)?,
            mode: mode as i32,
            fusion: fusion as i32,
            candidates: positive("candidates", r.candidates)?,
            routing_key: r.routing_key.unwrap_or_default(),
            explain: r.explain,
            intent: r.intent.unwrap_or_default(),
        };
        RetrieveParams::try_from(message)
    }
}

/// A body of `POST /v1/aliases/{name}/...`: one alias change.
pub trait AliasChangeBody: DeserializeOwned {
    /// The gRPC request for this change of `alias`.
    fn into_pb(self, alias: String) -> pb::ChangeAliasRequest;
}

/// `POST /v1/aliases/{name}/set`: create the alias or repoint its primary.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    /// An index id or unique prefix.
    pub index: String,
    /// Why (required).
    pub reason: String,
    /// Override a failing quality gate (admin only).
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/aliases/{name}/canary`: send a share of routing keys to another index.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCanary {
    /// An index id or unique prefix.
    pub index: String,
    /// Share of routing keys, 0 < percent <= 100, at most two decimals.
    pub percent: f64,
    /// Why (required).
    pub reason: String,
}

/// `POST /v1/aliases/{name}/promote`: the canary becomes the primary.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promote {
    /// Why (required).
    pub reason: String,
    /// Override a failing quality gate (admin only).
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/aliases/{name}/rollback`: back to the previous primary, or to what a revision
/// served.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Why (required).
    pub reason: String,
    /// The revision whose state to restore; the previous primary when absent.
    #[serde(default)]
    pub to_revision: Option<u64>,
}

fn change(alias: String, reason: String, change: Change, force: bool) -> pb::ChangeAliasRequest {
    pb::ChangeAliasRequest {
        alias,
        reason,
        change: Some(change),
        force,
    }
}

impl AliasChangeBody for SetAlias {
    fn into_pb(self, alias: String) -> pb::ChangeAliasRequest {
        change(alias, self.reason, Change::Set(self.index), self.force)
    }
}

impl AliasChangeBody for SetCanary {
    fn into_pb(self, alias: String) -> pb::ChangeAliasRequest {
        let canary = pb::SetCanary {
            index: self.index,
            percent: self.percent,
        };
        change(alias, self.reason, Change::Canary(canary), false)
    }
}

impl AliasChangeBody for Promote {
    fn into_pb(self, alias: String) -> pb::ChangeAliasRequest {
        change(
            alias,
            self.reason,
            Change::Promote(pb::Empty {}),
            self.force,
        )
    }
}

impl AliasChangeBody for Rollback {
    fn into_pb(self, alias: String) -> pb::ChangeAliasRequest {
        let to_revision = self.to_revision.unwrap_or(0);
        let rollback = pb::Rollback { to_revision };
        change(alias, self.reason, Change::Rollback(rollback), false)
    }
}

/// The validated change of `alias` a body asks for.
pub fn change_params<B: AliasChangeBody>(
    alias: String,
    body: B,
) -> Result<ChangeAliasParams, InvalidField> {
    ChangeAliasParams::try_from(body.into_pb(alias))
}

/// `GET /v1/indexes`.
#[derive(Debug, Serialize)]
pub struct Indexes {
    /// Every index.
    pub indexes: Vec<quire_core::IndexSummary>,
}

/// `GET /v1/health`.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `SERVING`, or `NOT_SERVING` while a server following a shared registry lacks an index
    /// its aliases serve.
    pub status: &'static str,
}

/// Every error's body.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error: the gRPC code's name, the message and, when the request got a field wrong, its
/// name (`principal.groups[1]`, `k`).
#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// e.g. `INVALID_ARGUMENT`.
    pub code: &'static str,
    /// The same message a gRPC caller gets.
    pub message: String,
    /// The request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The field an error message names (`field `k`: ...`), if any.
pub fn field_of(message: &str) -> Option<String> {
    let rest = &message[message.find("field `")? + "field `".len()..];
    Some(rest[..rest.find('`')?].to_owned())
}

/// Parse a JSON body into `T`, naming the field at fault: a wrong type or value by its path
/// (`principal.groups[0]`), an unknown or missing field by its name.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() || inner.is_io() {
            return ServiceError::InvalidArgument(format!("the body is not JSON: {inner}"));
        }
        let message = inner.to_string();
        // serde names an unknown or missing field in the message; the path ends at an
        // unknown one, and at a missing one's parent.
        let named = ["unknown field `", "missing field `"]
            .iter()
            .find_map(|p| message.strip_prefix(p))
            .and_then(|rest| rest.split('`').next());
        let field = match (named, path.as_str()) {
            (Some(name), ".") => name.to_owned(),
            (Some(name), path) if path == name || path.ends_with(&format!(".{name}")) => {
                path.to_owned()
            }
            (Some(name), parent) => format!("{parent}.{name}"),
            (None, ".") => "(body)".to_owned(),
            (None, path) => path.to_owned(),
        };
        ServiceError::InvalidArgument(format!("field `{field}`: {message}"))
    })?;
    de.end()
        .map_err(|e| ServiceError::InvalidArgument(format!("the body is not JSON: {e}")))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal<T: DeserializeOwned + std::fmt::Debug>(body: &str) -> (Option<String>, String) {
        let e = decode::<T>(body.as_bytes()).expect_err(body).to_string();
        (field_of(&e), e)
    }

    #[test]
    fn bodies_name_the_field_at_fault() {
        let ok = r#"{"target":"handbook","query":"leave","principal":{"groups":["all-staff"]},"k":3,"mode":"bm25"}"#;
        let request: RetrieveRequest = decode(ok.as_bytes()).expect("decodes");
        let params = RetrieveParams::try_from(request).expect("valid");
        assert_eq!(params.query.k, 3);
        assert_eq!(params.query.mode, quire_core::Mode::Bm25);
        for (body, field, says) in [
            (
                r#"{"target":"h","query":"q","k":"ten"}"#,
                "k",
                "invalid type",
            ),
            (
                r#"{"target":"h","query":"q","kk":3}"#,
                "kk",
                "unknown field",
            ),
            (r#"{"target":"h"}"#, "query", "missing field"),
            (
                r#"{"target":"h","query":"q","mode":"fast"}"#,
                "mode",
                "unknown variant",
            ),
            (
                r#"{"target":"h","query":"q","principal":{"groups":[1]}}"#,
                "principal.groups[0]",
                "invalid type",
            ),
            (
                r#"{"target":"h","query":"q","principal":{"team":"x"}}"#,
                "principal.team",
                "unknown field",
            ),
            (r#"{"target":"h","query":"q","k":-1}"#, "k", "invalid value"),
        ] {
            let (got, message) = refusal::<RetrieveRequest>(body);
            assert_eq!(got.as_deref(), Some(field), "{body}: {message}");
            assert!(message.contains(says), "{body}: {message}");
        }
        let (field, message) = refusal::<RetrieveRequest>("{\"target\":");
        assert_eq!(field, None, "{message}");
        assert!(message.starts_with("the body is not JSON"), "{message}");
        assert!(decode::<RetrieveRequest>(br#"{"target":"h","query":"q"} {}"#).is_err());
    }

    #[test]
    fn requests_are_validated_like_the_grpc_messages() {
        for (body, field) in [
            (r#"{"target":"h","query":"q","k":0}"#, "k"),
            (r#"{"target":"h","query":"q","k":5000}"#, "k"),
            (r#"{"target":"h","query":" "}"#, "query"),
            (r#"{"target":"","query":"q"}"#, "target"),
            (r#"{"target":"h","query":"q","candidates":0}"#, "candidates"),
            (r#"{"target":"h","query":"q","intent":"a b"}"#, "intent"),
            (
                r#"{"target":"h","query":"q","principal":{"user":"a b"}}"#,
                "principal",
            ),
        ] {
            let request: RetrieveRequest = decode(body.as_bytes()).expect(body);
            let e = RetrieveParams::try_from(request).expect_err(body);
            assert_eq!(e.field, field, "{body}: {e}");
        }
        let set: SetAlias = decode(br#"{"index":"idx-1","reason":" "}"#).expect("decodes");
        let e = change_params("docs".into(), set).expect_err("an empty reason");
        assert_eq!(e.field, "reason");
        let back: Rollback = decode(br#"{"reason":"bad","to_revision":2}"#).expect("decodes");
        let p = change_params("docs".into(), back).expect("valid");
        assert_eq!(
            p.change,
            quire_release::AliasChangeRequest::Rollback(Some(2))
        );
    }
}
