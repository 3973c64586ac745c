//! The embedding cache shared through the artifact store, so builders on other machines reuse
//! each other's vectors. After a build, the entries it computed go up as one pack,
//! content-addressed and create-only:
//!
//! ```text
//! embed-cache/<model namespace>/<blake3 of the pack>.pack
//! ```
//!
//! Before a build, every pack of the model not seen yet is fetched and its entries added to the
//! data dir's cache (each checked like a local entry: a damaged one is skipped and computed
//! again), and remembered in `embed-cache/<namespace>/packs/<name>`, so a pack is fetched once
//! per data dir. A vector depends only on the chunk and the model, so a shared entry gives
//! exactly the bits a fresh computation would. Sharing is best effort: a store that fails here
//! is logged and the build goes on without it (it needs the store to publish anyway).

use std::io::Read;

use quire_index::EmbedCache;

use super::{EMBED_CACHE, Store};
use crate::artifacts::{Created, Key};
use crate::error::{IoContext, Result, StoreError};

/// Where packs live in the shared store.
pub(crate) const PACKS: &str = "embed-cache";

impl Store {
    /// Add every pack of `namespace` in the shared store that this data dir has not seen to
    /// `cache` (nothing without a store; failures are logged).
    pub(crate) fn fetch_embed_packs(&self, cache: &EmbedCache, namespace: &str) {
        if self.artifacts().is_none() {
            return;
        }
        match self.try_fetch_embed_packs(cache, namespace) {
            Ok(0) => {}
            Ok(added) => tracing::info!(namespace, added, "shared embedding cache fetched"),
            Err(e) => tracing::warn!(namespace, "shared embedding cache not fetched: {e}"),
        }
    }

    fn try_fetch_embed_packs(&self, cache: &EmbedCache, namespace: &str) -> Result<u64> {
        let Some(store) = self.artifacts() else {
            return Ok(0);
        };
        let prefix = packs_key(namespace)?;
        let seen = self.seen_packs_dir(namespace);
        let mut added = 0;
        for name in store.children(&prefix)? {
            if !name.ends_with(".pack") || seen.join(&name).exists() {
                continue;
            }
            let key = prefix
                .join(&name)
                .map_err(|e| invalid(store.location(), e))?;
            let Some(mut body) = store.get(&key)? else {
                continue;
            };
            let mut pack = Vec::new();
            body.read_to_end(&mut pack)
                .map_err(|e| StoreError::Artifact {
                    store: store.location().to_owned(),
                    key: key.to_string(),
                    reason: e.to_string(),
                })?;
            added += cache.unpack(namespace, &pack)?;
            std::fs::create_dir_all(&seen).at(&seen)?;
            std::fs::write(seen.join(&name), b"").at(&seen)?;
        }
        Ok(added)
    }

    /// Put the entries this build computed into the shared store as one pack (nothing without
    /// a store or without new entries; failures are logged).
    pub(crate) fn share_embed_pack(&self, cache: &EmbedCache, namespace: &str) {
        let Some(store) = self.artifacts() else {
            return;
        };
        let shared = (|| -> Result<Option<(String, Created)>> {
            let pack = cache.pack_written(namespace)?;
            if pack.is_empty() {
                return Ok(None);
            }
            let name = format!("{}.pack", blake3::hash(&pack).to_hex());
            let key = packs_key(namespace)?
                .join(&name)
                .map_err(|e| invalid(store.location(), e))?;
            let created = store.put_new(&key, &pack)?;
            // Ours: never fetched back.
            let seen = self.seen_packs_dir(namespace);
            std::fs::create_dir_all(&seen).at(&seen)?;
            std::fs::write(seen.join(&name), b"").at(&seen)?;
            Ok(Some((name, created)))
        })();
        match shared {
            Ok(Some((pack, created))) => {
                tracing::info!(namespace, pack, ?created, "embedding cache shared");
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(namespace, "embedding cache not shared: {e}"),
        }
    }

    fn seen_packs_dir(&self, namespace: &str) -> std::path::PathBuf {
        self.root().join(EMBED_CACHE).join(namespace).join("packs")
    }
}

fn packs_key(namespace: &str) -> Result<Key> {
    Key::new(&format!("{PACKS}/{namespace}")).map_err(|e| StoreError::Invalid {
        field: "embedding namespace",
        reason: e,
    })
}

fn invalid(store: &str, reason: String) -> StoreError {
    StoreError::ArtifactRefused {
        store: store.to_owned(),
        key: PACKS.to_owned(),
        reason,
    }
}
