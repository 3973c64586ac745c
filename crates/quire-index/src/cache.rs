//! The embedding cache: vectors already computed, content-addressed by (model digest, chunk hash).
//!
//! ```text
//! <cache dir>/<model digest>/<first 2 hex of chunk hash>/<chunk hash>
//! ```
//!
//! Each entry holds the vector (`dim` little-endian f32) followed by a 32-byte blake3 (context
//! [`ENTRY_CONTEXT`]) over the model digest, the chunk hash and the vector bytes. A reader accepts
//! an entry only when its length and checksum are right; anything else (a torn write after a
//! crash, a truncated file, an edit) is a miss, and the vector is computed again and rewritten.
//! Entries are written to a temporary name and renamed into place, so a reader never sees half
//! of one. Because a chunk's vector depends only on its text and the model's digest, a hit gives
//! exactly the bits a fresh computation would: the cache changes build time, never results.
//! Deleting the cache directory at any time is safe.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use quire_core::EmbedCacheStats;
use quire_core::ids::{hasher, update_field};

use crate::error::{IoContext, Result};

/// blake3 context of an entry's checksum.
pub const ENTRY_CONTEXT: &str = "quire 2026-11 embedding cache entry v1";

/// A directory of cached embeddings.
#[derive(Debug)]
pub struct EmbedCache {
    dir: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
    tmp_counter: AtomicU64,
    /// Keys of the entries [`EmbedCache::put`] wrote, by namespace: what a pack shares.
    written: Mutex<BTreeMap<String, Vec<String>>>,
}

impl EmbedCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            tmp_counter: AtomicU64::new(0),
            written: Mutex::default(),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Hits and misses counted by [`EmbedCache::get`] so far.
    pub fn stats(&self) -> EmbedCacheStats {
        EmbedCacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn entry_path(&self, model_digest: &str, chunk_hash: &str) -> PathBuf {
        let fan = chunk_hash.get(..2).unwrap_or("00");
        self.dir.join(model_digest).join(fan).join(chunk_hash)
    }

    /// The cached vector for this chunk under this model, if a valid entry of `dim` floats exists.
    pub fn get(&self, model_digest: &str, chunk_hash: &str, dim: usize) -> Option<Vec<f32>> {
        let found = self.read(model_digest, chunk_hash, dim);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    fn read(&self, model_digest: &str, chunk_hash: &str, dim: usize) -> Option<Vec<f32>> {
        if !is_hex(model_digest) || !is_hex(chunk_hash) {
            return None;
        }
        let bytes = std::fs::read(self.entry_path(model_digest, chunk_hash)).ok()?;
        let (data, sum) = bytes.split_at_checked(dim * 4)?;
        if sum.len() != 32 || sum != checksum(model_digest, chunk_hash, data).as_bytes() {
            return None;
        }
        Some(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    /// Store the vector for this chunk under this model (atomically; an existing entry is
    /// replaced). Keys that are not lowercase hex are ignored: they cannot name a file safely.
    pub fn put(&self, model_digest: &str, chunk_hash: &str, vector: &[f32]) -> Result<()> {
        if !is_hex(model_digest) || !is_hex(chunk_hash) {
            return Ok(());
        }
        let mut bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
        let sum = checksum(model_digest, chunk_hash, &bytes);
        bytes.extend_from_slice(sum.as_bytes());
        self.write_entry(model_digest, chunk_hash, &bytes)?;
        self.written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(model_digest.to_owned())
            .or_default()
            .push(chunk_hash.to_owned());
        Ok(())
    }

    /// Write one entry's bytes (vector and checksum) atomically.
    fn write_entry(&self, model_digest: &str, chunk_hash: &str, bytes: &[u8]) -> Result<()> {
        let path = self.entry_path(model_digest, chunk_hash);
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).at(parent)?;
        let tmp = parent.join(format!(
            ".{chunk_hash}.{}.{}.tmp",
            std::process::id(),
            self.tmp_counter.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&tmp, bytes).at(&tmp)?;
        std::fs::rename(&tmp, &path).at(&path)?;
        Ok(())
    }

    /// The entries [`EmbedCache::put`] wrote under `model_digest` so far, as one pack: for
    /// each, the chunk hash's length (u16 LE) and bytes, then the entry's length (u32 LE) and
    /// bytes (vector and checksum, as on disk). Empty when it wrote none.
    pub fn pack_written(&self, model_digest: &str) -> Result<Vec<u8>> {
        let keys = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(model_digest)
            .cloned()
            .unwrap_or_default();
        let mut pack = Vec::new();
        for chunk_hash in keys {
            let path = self.entry_path(model_digest, &chunk_hash);
            let entry = std::fs::read(&path).at(&path)?;
            let (Ok(hash_len), Ok(entry_len)) =
                (u16::try_from(chunk_hash.len()), u32::try_from(entry.len()))
            else {
                continue;
            };
            pack.extend_from_slice(&hash_len.to_le_bytes());
            pack.extend_from_slice(chunk_hash.as_bytes());
            pack.extend_from_slice(&entry_len.to_le_bytes());
            pack.extend_from_slice(&entry);
        }
        Ok(pack)
    }

    /// Add the entries of a pack made by [`EmbedCache::pack_written`] (another machine's,
    /// say) under `model_digest`: each is checked like a local entry (its checksum over the
    /// model digest, chunk hash and vector) and written only when it holds; the rest, and
    /// anything after a malformed frame, is skipped (a miss later). How many were added.
    pub fn unpack(&self, model_digest: &str, pack: &[u8]) -> Result<u64> {
        if !is_hex(model_digest) {
            return Ok(0);
        }
        let mut rest = pack;
        let mut added = 0;
        while let Some((chunk_hash, entry, tail)) = next_frame(rest) {
            rest = tail;
            let Some((data, sum)) = entry.split_at_checked(entry.len().saturating_sub(32)) else {
                continue;
            };
            let valid = is_hex(chunk_hash)
                && sum.len() == 32
                && data.len() % 4 == 0
                && sum == checksum(model_digest, chunk_hash, data).as_bytes();
            if valid {
                self.write_entry(model_digest, chunk_hash, entry)?;
                added += 1;
            }
        }
        Ok(added)
    }
}

/// The first frame of `pack`: (chunk hash, entry bytes, the rest); `None` at the end or when
/// the frame is malformed.
fn next_frame(pack: &[u8]) -> Option<(&str, &[u8], &[u8])> {
    let (len, rest) = pack.split_at_checked(2)?;
    let (hash, rest) = rest.split_at_checked(usize::from(u16::from_le_bytes([len[0], len[1]])))?;
    let (len, rest) = rest.split_at_checked(4)?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
    let (entry, rest) = rest.split_at_checked(usize::try_from(len).ok()?)?;
    Some((std::str::from_utf8(hash).ok()?, entry, rest))
}

fn checksum(model_digest: &str, chunk_hash: &str, data: &[u8]) -> blake3::Hash {
    let mut h = hasher(ENTRY_CONTEXT);
    update_field(&mut h, model_digest.as_bytes());
    update_field(&mut h, chunk_hash.as_bytes());
    update_field(&mut h, data);
    h.finalize()
}

fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damaged_entries_are_misses() -> Result<()> {
        let dir = tempfile::tempdir().at("tempdir")?;
        let cache = EmbedCache::new(dir.path().join("embed-cache"));
        let (model, chunk) = ("ab12", "cd34");
        assert_eq!(cache.get(model, chunk, 3), None);
        cache.put(model, chunk, &[1.0, -0.5, 0.25])?;
        assert_eq!(cache.get(model, chunk, 3), Some(vec![1.0, -0.5, 0.25]));
        assert_eq!(cache.get(model, chunk, 4), None, "wrong dim is a miss");
        assert_eq!(cache.get("ab13", chunk, 3), None, "other model is a miss");
        let path = cache.entry_path(model, chunk);
        let mut bytes = std::fs::read(&path).at(&path)?;
        bytes[0] ^= 1;
        std::fs::write(&path, &bytes).at(&path)?;
        assert_eq!(cache.get(model, chunk, 3), None, "flipped bit is a miss");
        std::fs::write(&path, &bytes[..5]).at(&path)?;
        assert_eq!(cache.get(model, chunk, 3), None, "torn write is a miss");
        cache.put(model, chunk, &[1.0, -0.5, 0.25])?;
        assert_eq!(cache.get(model, chunk, 3), Some(vec![1.0, -0.5, 0.25]));
        assert_eq!(cache.get("../x", chunk, 3), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses), (2, 6));
        Ok(())
    }

    #[test]
    fn a_pack_carries_what_was_written_and_only_valid_entries_are_added() -> Result<()> {
        let dir = tempfile::tempdir().at("tempdir")?;
        let ours = EmbedCache::new(dir.path().join("ours"));
        let (model, other) = ("ab12", "ef56");
        ours.put(model, "cd34", &[1.0, 2.0])?;
        ours.put(model, "cd35", &[3.0, 4.0])?;
        ours.put(other, "cd36", &[5.0, 6.0])?;
        assert!(ours.pack_written("0000")?.is_empty());
        let pack = ours.pack_written(model)?;
        let theirs = EmbedCache::new(dir.path().join("theirs"));
        assert_eq!(theirs.unpack(model, &pack)?, 2);
        assert_eq!(theirs.get(model, "cd34", 2), Some(vec![1.0, 2.0]));
        assert_eq!(theirs.get(model, "cd35", 2), Some(vec![3.0, 4.0]));
        assert_eq!(
            theirs.get(other, "cd36", 2),
            None,
            "another model's entry stays out"
        );
        // Under another model digest the checksums fail: nothing is added.
        let elsewhere = EmbedCache::new(dir.path().join("elsewhere"));
        assert_eq!(elsewhere.unpack(other, &pack)?, 0);
        // A flipped vector bit drops that entry; a torn pack keeps the frames before the tear.
        let mut damaged = pack.clone();
        damaged[2 + 4 + 4] ^= 1;
        let flipped = EmbedCache::new(dir.path().join("flipped"));
        assert_eq!(flipped.unpack(model, &damaged)?, 1);
        assert_eq!(flipped.get(model, "cd34", 2), None);
        let torn = EmbedCache::new(dir.path().join("torn"));
        assert_eq!(torn.unpack(model, &pack[..pack.len() - 1])?, 1);
        Ok(())
    }
}
