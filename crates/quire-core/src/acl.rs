//! Principals, access control lists and the readers they admit.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// One entry of an access control list: everyone, one user, or one group.
///
/// Written as `*`, `user:<id>` or `group:<name>`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Principal {
    /// `*`: every caller may read.
    Public,
    /// `user:<id>`.
    User(String),
    /// `group:<name>`.
    Group(String),
}

impl Principal {
    /// The token as written in corpora and in `acl.jsonl`.
    pub fn token(&self) -> String {
        self.to_string()
    }
}

fn check_name(token: &str, name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(CoreError::InvalidPrincipal {
            token: token.into(),
            reason: "empty name",
        });
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CoreError::InvalidPrincipal {
            token: token.into(),
            reason: "names may not contain whitespace or control characters",
        });
    }
    Ok(name.to_owned())
}

impl FromStr for Principal {
    type Err = CoreError;
    fn from_str(token: &str) -> Result<Self> {
        if token == "*" {
            Ok(Principal::Public)
        } else if let Some(name) = token.strip_prefix("user:") {
            Ok(Principal::User(check_name(token, name)?))
        } else if let Some(name) = token.strip_prefix("group:") {
            Ok(Principal::Group(check_name(token, name)?))
        } else {
            Err(CoreError::InvalidPrincipal {
                token: token.into(),
                reason: "expected `*`, `user:<id>` or `group:<name>`",
            })
        }
    }
}

impl TryFrom<String> for Principal {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self> {
        s.parse()
    }
}

impl From<Principal> for String {
    fn from(p: Principal) -> String {
        p.to_string()
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::Public => f.write_str("*"),
            Principal::User(u) => write!(f, "user:{u}"),
            Principal::Group(g) => write!(f, "group:{g}"),
        }
    }
}

/// A set of principals allowed to read a document: sorted and free of duplicates, so it
/// serialises canonically. An empty ACL admits nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Acl(BTreeSet<Principal>);

impl Acl {
    /// The ACL that admits exactly these principals.
    pub fn new(principals: impl IntoIterator<Item = Principal>) -> Self {
        Self(principals.into_iter().collect())
    }

    /// Parse a list of tokens, refusing the first malformed one.
    pub fn parse<S: AsRef<str>>(tokens: impl IntoIterator<Item = S>) -> Result<Self> {
        tokens
            .into_iter()
            .map(|t| t.as_ref().parse())
            .collect::<Result<_>>()
            .map(Self)
    }

    /// The principals, in canonical order.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.0.iter()
    }

    /// Whether the ACL admits nobody.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `reader` may read a document carrying this ACL.
    pub fn admits(&self, reader: &Reader) -> bool {
        self.0.iter().any(|p| reader.tokens.contains(p))
    }
}

/// The identity a query runs as: a user id and the groups the user belongs to.
///
/// A reader may read a document whose ACL contains `*`, `user:<id>`, or `group:<g>` for one of
/// its groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    tokens: BTreeSet<Principal>,
}

impl Reader {
    /// A reader with an optional user id and any number of groups.
    pub fn new<S: AsRef<str>>(
        user: Option<&str>,
        groups: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let mut tokens = BTreeSet::from([Principal::Public]);
        if let Some(user) = user {
            tokens.insert(Principal::User(check_name(user, user)?));
        }
        for group in groups {
            let group = group.as_ref();
            tokens.insert(Principal::Group(check_name(group, group)?));
        }
        Ok(Self { tokens })
    }

    /// Every principal token this reader matches, `*` included, in canonical order.
    pub fn tokens(&self) -> impl Iterator<Item = &Principal> {
        self.tokens.iter()
    }

    /// The reader's user and groups, in canonical order: its tokens but `*`.
    pub fn named(&self) -> impl Iterator<Item = &Principal> {
        self.tokens.iter().filter(|p| **p != Principal::Public)
    }
}

/// The reader's user and groups (`user:alice, group:hr`), or `anonymous` without either: what a
/// message about this reader's access names.
impl fmt::Display for Reader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let named: Vec<String> = self.named().map(Principal::to_string).collect();
        if named.is_empty() {
            f.write_str("anonymous")
        } else {
            f.write_str(&named.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_parse_and_print() {
        for token in ["*", "user:alice", "group:hr"] {
            assert_eq!(
                token.parse::<Principal>().map(|p| p.to_string()).ok(),
                Some(token.into())
            );
        }
        for bad in ["", "alice", "user:", "group:a b", "role:x"] {
            assert!(
                bad.parse::<Principal>().is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn acl_admission() -> Result<()> {
        let acl = Acl::parse(["group:hr", "user:bob"])?;
        assert!(acl.admits(&Reader::new(None, ["hr"])?));
        assert!(acl.admits(&Reader::new(Some("bob"), Vec::<&str>::new())?));
        assert!(!acl.admits(&Reader::new(Some("alice"), ["eng"])?));
        assert!(Acl::parse(["*"])?.admits(&Reader::new(None, Vec::<&str>::new())?));
        assert!(!Acl::default().admits(&Reader::new(Some("root"), ["admin"])?));
        Ok(())
    }

    #[test]
    fn readers_display_their_user_and_groups() -> Result<()> {
        assert_eq!(
            Reader::new(None, Vec::<&str>::new())?.to_string(),
            "anonymous"
        );
        let r = Reader::new(Some("bob"), ["hr", "eng"])?;
        assert_eq!(r.to_string(), "user:bob, group:eng, group:hr");
        Ok(())
    }
}
