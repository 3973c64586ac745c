//! Content-derived identifiers and the hashing conventions behind them.
//!
//! Every hash quire computes uses blake3 in key-derivation mode with its own context string, so a
//! snapshot hash can never collide with an index id or a chunk hash by construction.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Version of quire's on-disk index format; part of every index id.
///
/// 2: BM25 indexes a chunk's title and text as one field (1 had separate title and body fields).
/// 3: the BM25 segment holds no ACL field; permissions filter by the allowed set.
pub const FORMAT_VERSION: u32 = 3;

/// Shortest index-id prefix (in hex characters) accepted as a target.
pub const MIN_PREFIX_HEX: usize = 12;

/// blake3 contexts, one per kind of hash quire computes.
pub mod context {
    /// The canonical bytes of a corpus snapshot.
    pub const SNAPSHOT: &str = "quire 2026-11 snapshot v1";
    /// The inputs that determine an index: snapshot id, canonical spec, format version.
    pub const INDEX_ID: &str = "quire 2026-11 index id v1";
    /// The Merkle root over an index artifact's files.
    pub const CONTENT_DIGEST: &str = "quire 2026-11 content digest v1";
    /// One file of an artifact (a Merkle leaf).
    pub const FILE: &str = "quire 2026-11 file v1";
    /// The text of one chunk.
    pub const CHUNK: &str = "quire 2026-11 chunk v1";
    /// The parameters of an embedding model.
    pub const MODEL: &str = "quire 2026-11 model v1";
    /// A table of per-document permissions.
    pub const PERMISSIONS: &str = "quire 2026-11 permissions v1";
    /// The inputs of an index's vectors: model, precision, and each chunk's embedding input.
    pub const STAGE_VECTORS: &str = "quire 2026-12 stage vectors v1";
    /// The inputs of an index's graph: the vectors' file hash and the graph parameters.
    pub const STAGE_GRAPH: &str = "quire 2026-12 stage graph v1";
    /// The inputs of an index's BM25 segment: analyzer, and each chunk's title, text and ACL.
    pub const STAGE_BM25: &str = "quire 2026-12 stage bm25 v1";
    /// A reader's canonical principal tokens, as the key of its cached allowed set.
    pub const READER: &str = "quire 2026-12 reader v1";
}

/// A fresh hasher for `context`.
pub fn hasher(context: &str) -> blake3::Hasher {
    blake3::Hasher::new_derive_key(context)
}

/// Hash `bytes` under `context` and return lowercase hex.
pub fn hash_hex(context: &str, bytes: &[u8]) -> String {
    let mut h = hasher(context);
    h.update(bytes);
    h.finalize().to_hex().to_string()
}

/// Feed a length-prefixed field into `hasher`, so adjacent fields cannot run into each other.
pub fn update_field(hasher: &mut blake3::Hasher, bytes: &[u8]) {
    hasher.update(&(bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

/// Whether `s` is a blake3 hex digest: 64 lowercase hex characters.
pub fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Check one `/`-separated segment of an object key in an artifact store: ASCII letters,
/// digits, `.`, `_` and `-`, not empty, `.` or `..` (so no key can leave the store's root).
/// `Err` says what is wrong.
pub fn check_key_segment(segment: &str) -> Result<(), &'static str> {
    if segment.is_empty() || segment == "." || segment == ".." {
        return Err("empty, `.` or `..` path segment");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if !segment.bytes().all(allowed) {
        return Err("only ASCII letters, digits, `.`, `_` and `-` may name objects");
    }
    Ok(())
}

macro_rules! hash_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The textual prefix of this kind of id.
            pub const PREFIX: &'static str = $prefix;

            /// Wrap a blake3 digest.
            pub fn from_hash(hash: blake3::Hash) -> Self {
                Self(format!("{}{}", $prefix, hash.to_hex()))
            }

            /// The id as text, prefix included.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The 64 hex characters after the prefix.
            pub fn hex(&self) -> &str {
                &self.0[$prefix.len()..]
            }
        }

        impl FromStr for $name {
            type Err = CoreError;
            fn from_str(s: &str) -> Result<Self> {
                match s.strip_prefix($prefix) {
                    Some(hex) if is_hex64(hex) => Ok(Self(s.to_owned())),
                    _ => Err(CoreError::InvalidId { kind: $kind, prefix: $prefix, value: s.to_owned() }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = CoreError;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

hash_id!(
    /// Identity of a corpus snapshot: `snap-` + blake3 of its canonical bytes.
    SnapshotId, "snap-", "snapshot"
);
hash_id!(
    /// Identity of an index: `idx-` + blake3 of (snapshot id, canonical spec, format version).
    IndexId, "idx-", "index"
);

impl IndexId {
    /// Derive the id of the index built from `snapshot` with the canonical spec bytes.
    pub fn derive(snapshot: &SnapshotId, canonical_spec: &[u8], format_version: u32) -> Self {
        let mut h = hasher(context::INDEX_ID);
        update_field(&mut h, snapshot.as_str().as_bytes());
        update_field(&mut h, canonical_spec);
        update_field(&mut h, &format_version.to_le_bytes());
        Self::from_hash(h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_garbage() {
        let id = SnapshotId::from_hash(blake3::hash(b"x"));
        assert_eq!(id.as_str().parse::<SnapshotId>().ok(), Some(id.clone()));
        assert!("snap-xyz".parse::<SnapshotId>().is_err());
        assert!(
            id.as_str()
                .replace("snap-", "idx-")
                .parse::<SnapshotId>()
                .is_err()
        );
        let upper = format!("snap-{}", id.hex().to_uppercase());
        assert!(upper.parse::<SnapshotId>().is_err());
    }

    #[test]
    fn index_id_depends_on_every_input() {
        let s1 = SnapshotId::from_hash(blake3::hash(b"a"));
        let s2 = SnapshotId::from_hash(blake3::hash(b"b"));
        let base = IndexId::derive(&s1, b"{}", 1);
        assert_eq!(base, IndexId::derive(&s1, b"{}", 1));
        assert_ne!(base, IndexId::derive(&s2, b"{}", 1));
        assert_ne!(base, IndexId::derive(&s1, b"{ }", 1));
        assert_ne!(base, IndexId::derive(&s1, b"{}", 2));
    }
}
