//! Shared artifact storage behind a trait: where snapshots and indices go so that other
//! machines (builders, replicas) can fetch them.
//!
//! [`ArtifactStore`] is a store of immutable objects under validated [`Key`]s: a directory
//! ([`DirStore`], `file:///...`) or any S3-compatible store (quire-store-s3). The layout, the
//! commit protocol and the checks live here, once for every backend ([`transfer`]):
//!
//! ```text
//! snapshots/<snapshot id>/documents.jsonl
//! snapshots/<snapshot id>/snapshot.json          written last, create-only: the commit marker
//! snapshots/<snapshot id>/deleting               while GC deletes it (see [`tombstone`])
//! indexes/<index id>/<content digest>/<file>     every file the manifest lists
//! indexes/<index id>/<content digest>/manifest.json   written last, create-only
//! ```
//!
//! An index is stored by id *and* content digest because one id can legitimately have other
//! bytes (the manifest's build section, vectors from another kernel path); which digest is
//! the index is the registry's record. An object without its commit marker is invisible:
//! readers look for the marker first, so an interrupted upload is never fetched.

use std::fmt;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use quire_core::{IndexId, SnapshotId};

use crate::error::Result;

pub mod conformance;
mod dir;
pub mod tombstone;
pub mod transfer;

pub use dir::DirStore;

/// Whether a create-only put stored the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    /// The object was created.
    Created,
    /// An object with this key existed; nothing was written.
    Exists,
}

/// A store of immutable objects, shared between machines. Every method names the store
/// ([`ArtifactStore::location`]) and the key in its errors, and returns within the store's
/// configured timeouts.
pub trait ArtifactStore: Send + Sync + fmt::Debug {
    /// The store as shown in messages, without credentials: `s3://bucket/prefix`,
    /// `file:///srv/quire`.
    fn location(&self) -> &str;

    /// Store the `len` bytes `body` yields as `key`, replacing an object of that key (keys
    /// below a content digest only ever receive the same bytes). Streams: never holds more
    /// than a part of the body in memory.
    fn put(&self, key: &Key, body: &mut dyn Read, len: u64) -> Result<()>;

    /// Create `key` holding `bytes` unless an object of that key exists: the commit marker.
    fn put_new(&self, key: &Key, bytes: &[u8]) -> Result<Created>;

    /// A streaming reader of `key`'s bytes, `None` when there is no such object. Its read
    /// errors (the store going away, a timeout) are I/O errors.
    fn get(&self, key: &Key) -> Result<Option<Box<dyn Read + Send>>>;

    /// The names one level below `prefix` (objects and "directories"), sorted.
    fn children(&self, prefix: &Key) -> Result<Vec<String>>;

    /// Every object below `prefix` with its last-modified time by the store's clock, sorted
    /// by key.
    fn list_objects(&self, prefix: &Key) -> Result<Vec<Listed>>;

    /// Every key below `prefix`, sorted.
    fn list(&self, prefix: &Key) -> Result<Vec<Key>> {
        Ok(self
            .list_objects(prefix)?
            .into_iter()
            .map(|o| o.key)
            .collect())
    }

    /// Now by the store's clock: the last-modified time the store gives an object written
    /// now (a probe object under `clock/`, written, listed and deleted). Ages of objects are
    /// judged against this, never against the caller's clock, so a machine whose clock is
    /// off cannot make an object look older than it is.
    fn now(&self) -> Result<SystemTime> {
        static PROBES: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!(
            "{}-{}-{nanos}",
            std::process::id(),
            PROBES.fetch_add(1, Ordering::Relaxed)
        );
        let probe = Key(format!("{CLOCK}/{name}"));
        self.put(&probe, &mut &[][..], 0)?;
        let listed = self.list_objects(&Key(CLOCK.into()));
        self.delete(&probe)?;
        listed?
            .into_iter()
            .find(|o| o.key == probe)
            .map(|o| o.modified)
            .ok_or_else(|| crate::error::StoreError::Artifact {
                store: self.location().to_owned(),
                key: probe.to_string(),
                reason: "a probe object just written is not listed".into(),
            })
    }

    /// Remove `key`; removing an absent key is not an error.
    fn delete(&self, key: &Key) -> Result<()>;
}

/// One object of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// Its key.
    pub key: Key,
    /// When it was last written, by the store's clock (S3's `Last-Modified`, a file's mtime).
    pub modified: SystemTime,
}

/// The newest `modified` among `objects` (`None` for none).
pub fn newest(objects: &[Listed]) -> Option<SystemTime> {
    objects.iter().map(|o| o.modified).max()
}

/// An object key relative to the store's root: `/`-separated segments of ASCII letters,
/// digits, `.`, `_` and `-`, none empty, `.` or `..`, at most [`Key::MAX_BYTES`] long. Keys are
/// built from validated ids and manifest paths only, so no key can leave the store's root.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(String);

impl Key {
    /// The longest key accepted (S3 allows 1,024 bytes, including the store's prefix).
    pub const MAX_BYTES: usize = 512;

    /// Check `text` as a key; `Err` says what is wrong with it.
    pub fn new(text: &str) -> std::result::Result<Self, String> {
        if text.is_empty() || text.len() > Self::MAX_BYTES {
            return Err(format!(
                "{text:?}: a key has 1 to {} bytes",
                Self::MAX_BYTES
            ));
        }
        for segment in text.split('/') {
            quire_core::ids::check_key_segment(segment).map_err(|e| format!("{text:?}: {e}"))?;
        }
        Ok(Self(text.to_owned()))
    }

    /// `self/rel`, checked.
    pub fn join(&self, rel: &str) -> std::result::Result<Self, String> {
        Self::new(&format!("{}/{rel}", self.0))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where a snapshot's objects live: `snapshots/<id>`.
    pub fn snapshot(id: &SnapshotId) -> Self {
        Self(format!("{SNAPSHOTS}/{id}"))
    }

    /// Where all builds of an index live: `indexes/<id>`.
    pub fn index(id: &IndexId) -> Self {
        Self(format!("{INDEXES}/{id}"))
    }

    /// Where one build of an index lives: `indexes/<id>/<digest>`; `Err` when `digest` is not
    /// a content digest (64 lowercase hex characters).
    pub fn index_build(id: &IndexId, digest: &str) -> std::result::Result<Self, String> {
        if digest.len() != 64
            || !digest
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "{digest:?} is not a content digest (64 lowercase hex characters)"
            ));
        }
        Ok(Self(format!("{INDEXES}/{id}/{digest}")))
    }

    /// The top-level "directory" of every snapshot.
    pub fn snapshots() -> Self {
        Self(SNAPSHOTS.into())
    }

    /// The top-level "directory" of every index.
    pub fn indexes() -> Self {
        Self(INDEXES.into())
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const SNAPSHOTS: &str = "snapshots";
const INDEXES: &str = "indexes";
/// Probe objects of [`ArtifactStore::now`].
const CLOCK: &str = "clock";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_below_the_root() {
        for good in ["a", "indexes/idx-1/bm25/meta.json", "x_y-z.0"] {
            assert_eq!(Key::new(good).map(|k| k.0), Ok(good.to_owned()));
        }
        for bad in [
            "", "/a", "a/", "a//b", "../a", "a/../b", "a/./b", "a\\b", "a b", "é", "a/\0",
        ] {
            assert!(Key::new(bad).is_err(), "{bad:?}");
        }
        assert!(Key::new(&"a".repeat(Key::MAX_BYTES + 1)).is_err());
        let root = Key::indexes();
        assert!(root.join("../x").is_err());
        assert_eq!(root.join("b/c").map(|k| k.0), Ok("indexes/b/c".into()));
        let id: IndexId = format!("idx-{}", "a".repeat(64)).parse().expect("id");
        assert!(Key::index_build(&id, "../etc").is_err());
        assert!(Key::index_build(&id, &"A".repeat(64)).is_err());
        assert!(Key::index_build(&id, &"0".repeat(64)).is_ok());
    }
}
