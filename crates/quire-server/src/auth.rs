//! Bearer-token authentication and role-based authorization.

use std::collections::BTreeMap;

use quire_core::Reader;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::error::{Result, ServiceError};
use crate::identity::{Binding, Mechanism};

/// Roles, each including everything the ones before it may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Retrieve, get, list.
    Reader,
    /// Also import, build, verify, rebuild-check.
    Builder,
    /// Also release operations and pins.
    Releaser,
    /// Everything.
    Admin,
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (recorded, never the token).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Whose permissions its requests read with.
    pub binding: Binding,
}

impl Caller {
    /// A token's caller: `name`, `role` and `binding`.
    pub fn new(name: impl Into<String>, role: Role, binding: Binding) -> Self {
        Self {
            name: name.into(),
            role,
            binding,
        }
    }

    /// The principal a request reads as, given the one it asserted (see [`Binding`]).
    pub fn effective_reader(&self, requested: Reader) -> Result<(Reader, Mechanism)> {
        self.binding.effective(&self.name, requested)
    }
}

/// Checks credentials against the configured token hashes.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    tokens: BTreeMap<String, Caller>,
}

impl Auth {
    /// Authenticate against `tokens` (hash -> caller); with none, every caller is an admin.
    pub fn new(tokens: BTreeMap<String, Caller>) -> Self {
        Self { tokens }
    }

    /// Whether the server runs without authentication.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The caller a request's token names, if it names a known one.
    pub fn identify(&self, metadata: &MetadataMap) -> Option<Caller> {
        let token = metadata
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let hash = blake3::hash(token.trim().as_bytes()).to_hex().to_string();
        self.tokens.get(&hash).cloned()
    }

    /// Authenticate the request and check that its role may perform `action` (which needs
    /// `needed`).
    pub fn authorize(&self, metadata: &MetadataMap, action: &str, needed: Role) -> Result<Caller> {
        if self.is_open() {
            return Ok(Caller::new("anonymous", Role::Admin, Binding::Trusted));
        }
        let header = metadata.get("authorization").ok_or_else(|| {
            ServiceError::Unauthenticated("missing `authorization: Bearer <token>` header".into())
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ServiceError::Unauthenticated(
                    "the authorization header must be `Bearer <token>`".into(),
                )
            })?;
        let hash = blake3::hash(token.trim().as_bytes()).to_hex().to_string();
        let caller = self
            .tokens
            .get(&hash)
            .cloned()
            .ok_or_else(|| ServiceError::Unauthenticated("unknown token".into()))?;
        if caller.role < needed {
            return Err(ServiceError::PermissionDenied(format!(
                "token `{}` has role {:?}; {action} needs {:?} or above",
                caller.name, caller.role, needed
            )));
        }
        Ok(caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let mut tokens = BTreeMap::new();
        tokens.insert(
            blake3::hash(b"r").to_hex().to_string(),
            Caller::new("r", Role::Reader, Binding::Unbound),
        );
        tokens.insert(
            blake3::hash(b"b").to_hex().to_string(),
            Caller::new("b", Role::Builder, Binding::Unbound),
        );
        Auth::new(tokens)
    }

    fn with(token: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        if let Ok(v) = format!("Bearer {token}").parse() {
            m.insert("authorization", v);
        }
        m
    }

    #[test]
    fn roles_are_ordered_and_enforced() {
        let a = auth();
        assert!(a.authorize(&with("r"), "retrieve", Role::Reader).is_ok());
        assert!(matches!(
            a.authorize(&with("r"), "build", Role::Builder),
            Err(ServiceError::PermissionDenied(_))
        ));
        assert!(a.authorize(&with("b"), "build", Role::Builder).is_ok());
        assert!(matches!(
            a.authorize(&with("x"), "retrieve", Role::Reader),
            Err(ServiceError::Unauthenticated(_))
        ));
        assert!(matches!(
            a.authorize(&MetadataMap::new(), "retrieve", Role::Reader),
            Err(ServiceError::Unauthenticated(_))
        ));
        assert!(
            Auth::default()
                .authorize(&MetadataMap::new(), "anything", Role::Admin)
                .is_ok()
        );
    }
}
