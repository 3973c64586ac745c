//! [`DirStore`]: an artifact store in a local (or mounted) directory, `file:///path`.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{ArtifactStore, Created, Key, Listed};
use crate::error::{Result, StoreError};

/// Objects as files under a root directory: a key is a relative path. Writes go to a temporary
/// name (`~`, which no key may contain) in the object's directory, are fsynced and then
/// renamed (or, create-only, hard-linked, which fails when the target exists).
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
    location: String,
}

static TEMP: AtomicU64 = AtomicU64::new(0);

impl DirStore {
    /// The store rooted at `root` (an absolute directory, created when missing).
    pub fn open(root: &Path) -> Result<Self> {
        let location = format!("file://{}", root.display());
        if !root.is_absolute() {
            return Err(StoreError::Artifact {
                store: location,
                key: String::new(),
                reason: "the directory must be an absolute path".into(),
            });
        }
        std::fs::create_dir_all(root).map_err(|e| StoreError::Artifact {
            store: location.clone(),
            key: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            root: root.to_owned(),
            location,
        })
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key.as_str())
    }

    fn fail(&self, key: &Key, e: impl std::fmt::Display) -> StoreError {
        StoreError::Artifact {
            store: self.location.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        }
    }

    /// Write `body` to a fresh temporary file beside `key`'s path, fsynced; its path.
    fn write_temp(&self, key: &Key, body: &mut dyn Read) -> std::io::Result<PathBuf> {
        let target = self.path(key);
        let dir = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let temp = dir.join(format!(
            "~{}-{}",
            std::process::id(),
            TEMP.fetch_add(1, Ordering::Relaxed)
        ));
        let written = (|| {
            let mut file = File::create(&temp)?;
            std::io::copy(body, &mut file)?;
            file.flush()?;
            file.sync_all()
        })();
        match written {
            Ok(()) => Ok(temp),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => File::open(dir)?.sync_all(),
        None => Ok(()),
    }
}

impl ArtifactStore for DirStore {
    fn location(&self) -> &str {
        &self.location
    }

    fn put(&self, key: &Key, body: &mut dyn Read, len: u64) -> Result<()> {
        let mut body = body.take(len);
        let temp = self
            .write_temp(key, &mut body)
            .map_err(|e| self.fail(key, e))?;
        let target = self.path(key);
        std::fs::rename(&temp, &target)
            .and_then(|()| sync_dir(&target))
            .map_err(|e| {
                let _ = std::fs::remove_file(&temp);
                self.fail(key, e)
            })
    }

    fn put_new(&self, key: &Key, bytes: &[u8]) -> Result<Created> {
        let temp = self
            .write_temp(key, &mut &bytes[..])
            .map_err(|e| self.fail(key, e))?;
        let target = self.path(key);
        // A hard link is created atomically, and only when nothing has the name.
        let linked = std::fs::hard_link(&temp, &target);
        let _ = std::fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                sync_dir(&target).map_err(|e| self.fail(key, e))?;
                Ok(Created::Created)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::Exists),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn get(&self, key: &Key) -> Result<Option<Box<dyn Read + Send>>> {
        match File::open(self.path(key)) {
            Ok(file) => Ok(Some(Box::new(file))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(self.path(prefix)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(prefix, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let name = entry.map_err(|e| self.fail(prefix, e))?.file_name();
            // Temporary files (`~...`) are not objects.
            if let Some(name) = name.to_str().filter(|n| Key::new(n).is_ok()) {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn list_objects(&self, prefix: &Key) -> Result<Vec<Listed>> {
        let mut objects = Vec::new();
        for name in self.children(prefix)? {
            let key = prefix.join(&name).map_err(|e| self.fail(prefix, e))?;
            let meta = match std::fs::metadata(self.path(&key)) {
                Ok(meta) => meta,
                // Deleted since the directory was read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.fail(&key, e)),
            };
            if meta.is_dir() {
                objects.extend(self.list_objects(&key)?);
            } else {
                let modified = meta.modified().map_err(|e| self.fail(&key, e))?;
                objects.push(Listed { key, modified });
            }
        }
        Ok(objects)
    }

    fn delete(&self, key: &Key) -> Result<()> {
        match std::fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }
}
