//! [`Fake`]: an [`ArtifactStore`] around a real one, for interleaving machines
//! deterministically in tests: it runs a hook before deleting a given key, tells a channel
//! when a given key is found, and lists the objects under a prefix as older than they are.

use std::io::Read;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::artifacts::{ArtifactStore, Created, Key, Listed};
use crate::error::Result;

/// Runs once, before the store deletes the key it was set for.
pub type Hook = Box<dyn FnOnce() + Send>;

/// A store forwarding to `inner`, with the hooks set on it.
pub struct Fake {
    inner: Arc<dyn ArtifactStore>,
    before_delete: Mutex<Option<(Key, Hook)>>,
    on_found: Mutex<Option<(Key, Sender<&'static str>)>>,
    aged: Mutex<Vec<(String, Duration)>>,
}

impl std::fmt::Debug for Fake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fake").field("inner", &self.inner).finish()
    }
}

impl Fake {
    /// `inner`, with no hooks yet.
    pub fn new(inner: Arc<dyn ArtifactStore>) -> Self {
        Self {
            inner,
            before_delete: Mutex::new(None),
            on_found: Mutex::new(None),
            aged: Mutex::new(Vec::new()),
        }
    }

    /// Run `hook` before the first delete of `key`.
    pub fn before_delete(&self, key: Key, hook: Hook) {
        *lock(&self.before_delete) = Some((key, hook));
    }

    /// Send `"found"` to `tx` whenever a get of `key` finds it.
    pub fn on_found(&self, key: Key, tx: Sender<&'static str>) {
        *lock(&self.on_found) = Some((key, tx));
    }

    /// List every object whose key starts with `prefix` as written `by` earlier than it was
    /// (as if the store's clock had been that much behind when it was written).
    pub fn age(&self, prefix: &Key, by: Duration) {
        lock(&self.aged).push((prefix.to_string(), by));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ArtifactStore for Fake {
    fn location(&self) -> &str {
        self.inner.location()
    }

    fn put(&self, key: &Key, body: &mut dyn Read, len: u64) -> Result<()> {
        self.inner.put(key, body, len)
    }

    fn put_new(&self, key: &Key, bytes: &[u8]) -> Result<Created> {
        self.inner.put_new(key, bytes)
    }

    fn get(&self, key: &Key) -> Result<Option<Box<dyn Read + Send>>> {
        let got = self.inner.get(key)?;
        if got.is_some()
            && let Some((watched, tx)) = &*lock(&self.on_found)
            && watched == key
        {
            let _ = tx.send("found");
        }
        Ok(got)
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        self.inner.children(prefix)
    }

    fn list_objects(&self, prefix: &Key) -> Result<Vec<Listed>> {
        let aged = lock(&self.aged).clone();
        let mut objects = self.inner.list_objects(prefix)?;
        for object in &mut objects {
            for (under, by) in &aged {
                if object.key.as_str().starts_with(under.as_str()) {
                    object.modified -= *by;
                }
            }
        }
        Ok(objects)
    }

    fn delete(&self, key: &Key) -> Result<()> {
        let hook = {
            let mut slot = lock(&self.before_delete);
            match slot.take() {
                Some((watched, hook)) if watched == *key => Some(hook),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(hook) = hook {
            hook();
        }
        self.inner.delete(key)
    }
}
