//! Bearer-token authentication and role-based authorization.

use std::collections::BTreeMap;

use quire_core::Reader;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataMap;

use crate::error::{Result, ServiceError};
use crate::identity::{Binding, Mechanism, describe, narrow, refuse_as};
use crate::jwt::{JwtUse, JwtVerifier, USER_TOKEN_HEADER};

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
    /// Whether its requests may or must carry an end user's JWT.
    pub jwt: JwtUse,
    /// The end user's JWT this request carries (`x-quire-user-token`), not yet verified.
    pub user_token: Option<String>,
}

impl Caller {
    /// A token's caller: `name`, `role` and `binding`.
    pub fn new(name: impl Into<String>, role: Role, binding: Binding) -> Self {
        Self {
            name: name.into(),
            role,
            binding,
            jwt: JwtUse::Never,
            user_token: None,
        }
    }

    /// The same caller, whose requests may or must carry an end user's JWT.
    pub fn with_jwt(mut self, jwt: JwtUse) -> Self {
        self.jwt = jwt;
        self
    }

    /// The principal a request reads as, given the one it asserted. A token that may present
    /// an end user's JWT and does reads as the JWT's user, once `verifier` checked it (a
    /// request may narrow it, never widen it); a token that must and does not is
    /// UNAUTHENTICATED, as is a JWT that fails a check; a JWT from a token not allowed one is
    /// PERMISSION_DENIED. Otherwise the token's [`Binding`] decides.
    pub fn effective_reader(
        &self,
        requested: Reader,
        verifier: Option<&JwtVerifier>,
    ) -> Result<(Reader, Mechanism)> {
        let token = self.name.as_str();
        let Some(jwt) = &self.user_token else {
            if self.jwt == JwtUse::Required {
                return Err(ServiceError::Unauthenticated(format!(
                    "token `{token}` must send the end user's JWT in `{USER_TOKEN_HEADER}`"
                )));
            }
            return self.binding.effective(token, requested);
        };
        if self.jwt == JwtUse::Never {
            return Err(ServiceError::PermissionDenied(format!(
                "token `{token}` may not present an end user's JWT (`jwt` is not set for it in server.toml)"
            )));
        }
        let verifier = verifier.ok_or_else(|| {
            ServiceError::PermissionDenied(
                "this server accepts no end user's JWT (no [jwt] section in server.toml)".into(),
            )
        })?;
        let user = verifier
            .verify(jwt)
            .map_err(|why| ServiceError::Unauthenticated(format!("the end user's JWT {why}")))?;
        narrow(&user, requested)
            .map(|reader| (reader, Mechanism::Jwt))
            .map_err(|requested| {
                let why = format!(
                    "the end user's JWT names {}, which a request may narrow but not widen",
                    describe(&user)
                );
                refuse_as(token, &requested, why)
            })
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
        let user_token = user_token(metadata)?;
        if self.is_open() {
            let open = Caller::new("anonymous", Role::Admin, Binding::Trusted);
            return Ok(Caller {
                user_token,
                ..open.with_jwt(JwtUse::Optional)
            });
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
        let mut caller = self
            .tokens
            .get(&hash)
            .cloned()
            .ok_or_else(|| ServiceError::Unauthenticated("unknown token".into()))?;
        caller.user_token = user_token;
        if caller.role < needed {
            return Err(ServiceError::PermissionDenied(format!(
                "token `{}` has role {:?}; {action} needs {:?} or above",
                caller.name, caller.role, needed
            )));
        }
        Ok(caller)
    }
}

/// The end user's JWT a request carries, if any; one that is not ASCII text is refused.
fn user_token(metadata: &MetadataMap) -> Result<Option<String>> {
    let Some(value) = metadata.get(USER_TOKEN_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ServiceError::Unauthenticated(format!("`{USER_TOKEN_HEADER}` is not ASCII text"))
    })?;
    Ok(Some(text.trim().to_owned()))
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
