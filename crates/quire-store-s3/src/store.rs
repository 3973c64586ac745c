//! [`S3Store`]: quire-store's [`ArtifactStore`] over object_store's S3 client.

use std::io::Read;
use std::sync::Arc;

use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};
use quire_bridge::Bridge;
use quire_store::{ArtifactStore, Created, Key, Listed, StoreError};

use crate::config::{Credentials, S3Config};
use crate::error::{Result, S3Error};
use crate::reader::ObjectReader;

/// Bodies up to this size go up in one request; larger ones in parts of this size.
pub const PART_BYTES: usize = 8 << 20;

/// An artifact store in an S3 bucket (AWS, or any S3-compatible endpoint such as SeaweedFS or
/// MinIO). Objects live under the URL's prefix; create-only puts are conditional requests
/// (`If-None-Match: *`). Every request is bounded by the configured timeouts and retries.
#[derive(Debug)]
pub struct S3Store {
    client: Arc<AmazonS3>,
    bridge: Arc<Bridge>,
    prefix: Option<Key>,
    location: String,
}

impl S3Store {
    /// A client for the store `config` describes, signing with `credentials`. Nothing is sent
    /// until it is used.
    pub fn connect(config: &S3Config, credentials: &Credentials) -> Result<Self> {
        let location = config.url.to_string();
        let fail = |reason: String| S3Error::Client {
            store: location.clone(),
            reason,
        };
        let t = config.timeouts;
        let options = ClientOptions::new()
            .with_connect_timeout(t.connect)
            .with_timeout(t.request)
            .with_allow_http(
                config
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| e.starts_with("http://")),
            );
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: std::time::Duration::from_millis(100),
                max_backoff: std::time::Duration::from_secs(2),
                base: 2.0,
            },
            max_retries: t.retries,
            retry_timeout: t.retry_window,
        };
        let (id, secret, token) = credentials.parts();
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(config.url.bucket())
            .with_region(&config.region)
            .with_access_key_id(id)
            .with_secret_access_key(secret)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry);
        if let Some(token) = token {
            builder = builder.with_token(token);
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let client = builder.build().map_err(|e| fail(e.to_string()))?;
        let bridge = Bridge::new("quire-store-s3").map_err(|e| fail(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
            bridge: Arc::new(bridge),
            prefix: config.url.prefix().cloned(),
            location,
        })
    }

    pub(crate) fn path(&self, key: &Key) -> ObjectPath {
        match &self.prefix {
            Some(prefix) => ObjectPath::from(format!("{prefix}/{key}")),
            None => ObjectPath::from(key.as_str()),
        }
    }

    /// The key of an object path below the prefix.
    fn key_of(&self, path: &ObjectPath) -> Option<Key> {
        let text = path.as_ref();
        let rel = match &self.prefix {
            Some(prefix) => text.strip_prefix(prefix.as_str())?.strip_prefix('/')?,
            None => text,
        };
        Key::new(rel).ok()
    }

    pub(crate) fn fail(&self, key: &Key, e: impl std::fmt::Display) -> StoreError {
        StoreError::Artifact {
            store: self.location.clone(),
            key: key.to_string(),
            reason: e.to_string(),
        }
    }

    /// Upload `body` in parts of [`PART_BYTES`], one after another; aborted on any error so no
    /// parts are left behind.
    fn put_parts(&self, key: &Key, body: &mut dyn Read, len: u64) -> Result<(), StoreError> {
        let path = self.path(key);
        let mut upload = self
            .bridge
            .block_on(self.client.put_multipart(&path))
            .map_err(|e| self.fail(key, e))?;
        let mut sent = 0u64;
        let outcome = loop {
            let want = (len - sent).min(PART_BYTES as u64) as usize;
            if want == 0 {
                break self.bridge.block_on(upload.complete()).map(|_| ());
            }
            let part = match read_exact(body, want) {
                Ok(part) => part,
                Err(e) => {
                    break Err(object_store::Error::Generic {
                        store: "local file",
                        source: Box::new(e),
                    });
                }
            };
            sent += part.len() as u64;
            if let Err(e) = self
                .bridge
                .block_on(upload.put_part(PutPayload::from(part)))
            {
                break Err(e);
            }
        };
        if let Err(e) = outcome {
            let _ = self.bridge.block_on(upload.abort());
            return Err(self.fail(key, e));
        }
        Ok(())
    }
}

/// Exactly `len` bytes of `body` (a shorter body is an error: the caller said how long it is).
fn read_exact(body: &mut dyn Read, len: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0; len];
    body.read_exact(&mut bytes)?;
    Ok(bytes)
}

impl ArtifactStore for S3Store {
    fn location(&self) -> &str {
        &self.location
    }

    fn put(&self, key: &Key, body: &mut dyn Read, len: u64) -> Result<(), StoreError> {
        if len > PART_BYTES as u64 {
            return self.put_parts(key, body, len);
        }
        let bytes = read_exact(body, len as usize).map_err(|e| self.fail(key, e))?;
        self.bridge
            .block_on(self.client.put(&self.path(key), PutPayload::from(bytes)))
            .map(|_| ())
            .map_err(|e| self.fail(key, e))
    }

    fn put_new(&self, key: &Key, bytes: &[u8]) -> Result<Created, StoreError> {
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        let payload = PutPayload::from(bytes.to_vec());
        match self
            .bridge
            .block_on(self.client.put_opts(&self.path(key), payload, options))
        {
            Ok(_) => Ok(Created::Created),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Created::Exists),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn get(&self, key: &Key) -> Result<Option<Box<dyn Read + Send>>, StoreError> {
        let path = self.path(key);
        match self.bridge.block_on(self.client.head(&path)) {
            Ok(meta) => Ok(Some(Box::new(ObjectReader::new(
                self.client.clone(),
                self.bridge.clone(),
                path,
                meta.size,
            )))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    fn children(&self, prefix: &Key) -> Result<Vec<String>, StoreError> {
        let listed = self
            .bridge
            .block_on(self.client.list_with_delimiter(Some(&self.path(prefix))))
            .map_err(|e| self.fail(prefix, e))?;
        let objects = listed.objects.iter().map(|o| &o.location);
        let mut names: Vec<String> = listed
            .common_prefixes
            .iter()
            .chain(objects)
            .filter_map(|p| self.key_of(p))
            .filter_map(|k| k.as_str().rsplit('/').next().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn list_objects(&self, prefix: &Key) -> Result<Vec<Listed>, StoreError> {
        let path = self.path(prefix);
        let mut stream = self.client.list(Some(&path));
        let mut objects = Vec::new();
        while let Some(meta) = self.bridge.block_on(stream.next()) {
            let meta = meta.map_err(|e| self.fail(prefix, e))?;
            if let Some(key) = self.key_of(&meta.location) {
                // `Last-Modified`, set by the store's clock.
                let modified: std::time::SystemTime = meta.last_modified.into();
                objects.push(Listed { key, modified });
            }
        }
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    fn delete(&self, key: &Key) -> Result<(), StoreError> {
        match self.bridge.block_on(self.client.delete(&self.path(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(key, e)),
        }
    }
}
