//! Streaming an object in ranged requests, so that each request carries a bounded number of
//! bytes and the request timeout bounds a stalled transfer whatever the object's size.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore};
use quire_bridge::Bridge;

/// Bytes asked for per GET.
pub const RANGE_BYTES: u64 = 16 << 20;

/// A reader of one object: ranged GETs of [`RANGE_BYTES`], one after another, each body
/// streamed as it arrives (object_store retries a body cut mid-way from where it stopped).
pub(crate) struct ObjectReader {
    client: Arc<AmazonS3>,
    bridge: Arc<Bridge>,
    path: ObjectPath,
    size: u64,
    /// Bytes of the object received so far.
    offset: u64,
    body: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    pending: Bytes,
}

impl ObjectReader {
    pub(crate) fn new(
        client: Arc<AmazonS3>,
        bridge: Arc<Bridge>,
        path: ObjectPath,
        size: u64,
    ) -> Self {
        Self {
            client,
            bridge,
            path,
            size,
            offset: 0,
            body: None,
            pending: Bytes::new(),
        }
    }

    fn error(&self, e: impl std::fmt::Display) -> std::io::Error {
        std::io::Error::other(format!("at byte {}: {e}", self.offset))
    }

    /// Start the GET of the next range.
    fn request_next(&mut self) -> std::io::Result<()> {
        let end = (self.offset + RANGE_BYTES).min(self.size);
        let options = GetOptions {
            range: Some(GetRange::Bounded(self.offset..end)),
            ..GetOptions::default()
        };
        let result = self
            .bridge
            .block_on(self.client.get_opts(&self.path, options))
            .map_err(|e| self.error(e))?;
        self.body = Some(result.into_stream());
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending.split_to(n));
                return Ok(n);
            }
            if let Some(body) = self.body.as_mut() {
                match self.bridge.block_on(body.next()) {
                    Some(Ok(bytes)) => {
                        self.offset += bytes.len() as u64;
                        self.pending = bytes;
                    }
                    Some(Err(e)) => return Err(self.error(e)),
                    None => self.body = None,
                }
                continue;
            }
            if self.offset >= self.size {
                return Ok(0);
            }
            self.request_next()?;
        }
    }
}
