//! Whose permissions a request reads with: principals come from the token, not the request.
//!
//! A token is bound to a fixed principal, or is an application token with a `run_as` scope
//! (the end users it may assert), or neither; only the open server (no tokens, loopback only)
//! takes a request's principal as it stands. [`Binding::effective`] turns what a request
//! asserted into the principal it reads as, and says by which [`Mechanism`];
//! [`crate::Caller::effective_reader`] puts an end user's verified JWT first, for the tokens
//! allowed to present one.

use quire_core::{Principal, Reader};

use crate::error::{Result, ServiceError, quoted};

/// What a token's requests may read as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// No binding and no `run_as`: the token reads as the user named after it
    /// (`user:<token name>`: public documents and those granted to that user) and may assert
    /// nothing else.
    Unbound,
    /// Bound to a fixed principal (`principal = { user, groups }`): requests read as it, or as a
    /// narrower principal they name (its user or none, a subset of its groups), never wider.
    Bound(Reader),
    /// An application token acting for end users (`run_as = { users, groups }`): a request reads
    /// as the principal it asserts when its user and every group match the scope's patterns;
    /// a request that asserts none reads as the anonymous caller (public documents only).
    RunAs(RunAs),
    /// The open server (no tokens configured, loopback only): the request's principal as is.
    Trusted,
}

/// How a request's effective principal was obtained, as the access log records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// The token's fixed principal (or a narrowing of it).
    Bound,
    /// Asserted by an application token within its `run_as` scope.
    RunAs,
    /// An unbound token, reading as its own name.
    Token,
    /// Asserted on the open server.
    Open,
    /// The end user of a verified JWT (or a narrowing of it).
    Jwt,
}

impl Mechanism {
    /// The name in the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Bound => "bound",
            Mechanism::RunAs => "run_as",
            Mechanism::Token => "token",
            Mechanism::Open => "open",
            Mechanism::Jwt => "jwt",
        }
    }
}

/// The users and groups an application token may assert: patterns where `*` matches any run
/// of characters (`*` alone: anyone; `team-*`; an exact name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    users: Vec<String>,
    groups: Vec<String>,
}

impl RunAs {
    /// A scope from user and group patterns; at least one pattern, none empty or with
    /// whitespace.
    pub fn new(users: Vec<String>, groups: Vec<String>) -> Result<Self, String> {
        if users.is_empty() && groups.is_empty() {
            return Err("allows no one: list `users` or `groups` patterns".into());
        }
        for (field, patterns) in [("users", &users), ("groups", &groups)] {
            if let Some(bad) = patterns
                .iter()
                .find(|p| p.is_empty() || p.chars().any(|c| c.is_whitespace() || c.is_control()))
            {
                return Err(format!(
                    "`{field}` pattern {bad:?} is empty or holds whitespace"
                ));
            }
        }
        Ok(Self { users, groups })
    }

    /// The first principal of `reader` outside this scope.
    fn outside<'a>(&self, reader: &'a Reader) -> Option<&'a Principal> {
        reader.tokens().find(|p| match p {
            Principal::Public => false,
            Principal::User(u) => !self.users.iter().any(|pat| wildcard_match(pat, u)),
            Principal::Group(g) => !self.groups.iter().any(|pat| wildcard_match(pat, g)),
        })
    }
}

/// Whether `name` matches `pattern`, in which each `*` matches any run of characters.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = parts.collect();
    let Some(last) = parts.pop() else {
        // No `*`: an exact name.
        return rest.is_empty();
    };
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Whether a request asserted no principal (its reader holds `*` alone).
fn asserts_nothing(reader: &Reader) -> bool {
    reader.tokens().all(|p| *p == Principal::Public)
}

/// A principal as the access log and error messages print it: `user:dana,group:eng` (`*` for
/// the anonymous caller).
pub fn describe(reader: &Reader) -> String {
    let named: Vec<String> = reader.named().map(Principal::to_string).collect();
    if named.is_empty() {
        "*".into()
    } else {
        named.join(",")
    }
}

impl Binding {
    /// The principal a request of token `token` reads as, given the one it asserted, and how
    /// it was obtained. A principal the token may not use is PERMISSION_DENIED, naming it.
    pub fn effective(&self, token: &str, requested: Reader) -> Result<(Reader, Mechanism)> {
        match self {
            Binding::Trusted => Ok((requested, Mechanism::Open)),
            Binding::Bound(bound) => narrow(bound, requested)
                .map(|reader| (reader, Mechanism::Bound))
                .map_err(|requested| {
                    refuse_as(
                        token,
                        &requested,
                        format!(
                            "it is bound to {}, which a request may narrow but not widen",
                            describe(bound)
                        ),
                    )
                }),
            Binding::RunAs(scope) => match scope.outside(&requested) {
                None => Ok((requested, Mechanism::RunAs)),
                Some(p) => Err(refuse_as(
                    token,
                    &requested,
                    format!("{} is outside its run_as scope", quoted(&p.to_string())),
                )),
            },
            Binding::Unbound => {
                let own = Reader::new(Some(token), None::<&str>)
                    .or_else(|_| Reader::new(None, None::<&str>))
                    .map_err(|e| ServiceError::Internal(e.to_string()))?;
                if asserts_nothing(&requested) || requested == own {
                    Ok((own, Mechanism::Token))
                } else {
                    Err(refuse_as(
                        token,
                        &requested,
                        format!(
                            "it has neither a bound principal nor a run_as scope in server.toml, so it reads only as user:{token}"
                        ),
                    ))
                }
            }
        }
    }
}

/// `bound`, or the narrower principal `requested` names (its user or none, a subset of its
/// groups); `Err` hands back a wider request.
pub(crate) fn narrow(bound: &Reader, requested: Reader) -> std::result::Result<Reader, Reader> {
    if asserts_nothing(&requested) {
        return Ok(bound.clone());
    }
    let bound_tokens: Vec<&Principal> = bound.tokens().collect();
    if requested.tokens().all(|p| bound_tokens.contains(&p)) {
        Ok(requested)
    } else {
        Err(requested)
    }
}

/// PERMISSION_DENIED: token `token` may not read as `requested`, because `why`.
pub(crate) fn refuse_as(token: &str, requested: &Reader, why: String) -> ServiceError {
    ServiceError::PermissionDenied(format!(
        "token `{token}` may not read as {}: {why}",
        quoted(&describe(requested))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_runs_of_characters() {
        for (pattern, name, want) in [
            ("*", "anyone", true),
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "teams", false),
            ("*-ops", "sre-ops", true),
            ("a*b*c", "a-b-c", true),
            ("a*b*c", "a-c", false),
            ("ab*ba", "aba", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(wildcard_match(pattern, name), want, "{pattern} {name}");
        }
    }
}
