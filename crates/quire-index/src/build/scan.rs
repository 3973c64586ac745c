//! The first pass of a build: chunk every document, write the chunk, document and ACL tables,
//! and hash the keys of the stages that follow, keeping only a [`Span`] per chunk.

use std::borrow::Cow;
use std::path::Path;

use quire_core::chunk::{chunk_hash, chunk_id, chunk_text};
use quire_core::ids::context;
use quire_core::{BuildSpec, Document, FORMAT_VERSION};
use rayon::prelude::*;

use super::{BuildRequest, Progress};
use crate::TANTIVY_VERSION;
use crate::error::{IndexError, Result};
use crate::stages::KeyHasher;
use crate::tables::{
    ACL_FILE, AclRecord, CHUNKS_FILE, ChunkRecord, DOCS_FILE, DocRecord, JsonlWriter,
};

/// Where one chunk lies: its document's ordinal and its byte range in that document's text.
#[derive(Clone, Copy, Debug)]
pub(super) struct Span {
    pub doc: u32,
    pub start: u64,
    pub end: u64,
}

/// What the first pass leaves for the others.
pub(super) struct Scan {
    /// One per chunk, in chunk-ordinal order.
    pub spans: Vec<Span>,
    pub documents: u64,
    pub vectors_key: String,
    pub bm25_key: String,
    /// Hash of `acl.jsonl`'s bytes under the permissions context.
    pub permission_digest: String,
    /// The newest `updated_at` that parses, if any.
    pub newest_update: Option<jiff::Timestamp>,
}

/// A chunk as the first pass computes it, in parallel per document.
struct ChunkOut {
    ordinal: u32,
    start: usize,
    end: usize,
    hash: String,
    /// The embedding input's key when it differs from the chunk hash (a title is prepended).
    titled_key: Option<String>,
}

/// Run the first pass, writing the three tables into `dir`.
pub(super) fn scan(req: &BuildRequest<'_>, dir: &Path, progress: &dyn Progress) -> Result<Scan> {
    let mut chunks_out = JsonlWriter::create(dir.join(CHUNKS_FILE))?;
    let mut docs_out = JsonlWriter::create(dir.join(DOCS_FILE))?;
    let mut acl_out = JsonlWriter::create(dir.join(ACL_FILE))?.hashed(context::PERMISSIONS);
    let mut vectors_key = KeyHasher::new(context::STAGE_VECTORS);
    let embedder = req.embedder;
    vectors_key
        .field(embedder.model_id())
        .field(embedder.cache_namespace())
        .field((embedder.dim() as u64).to_le_bytes());
    let mut bm25_key = KeyHasher::new(context::STAGE_BM25);
    bm25_key
        .field(FORMAT_VERSION.to_le_bytes())
        .field(TANTIVY_VERSION)
        .field(format!("{:?}", req.spec.bm25.analyzer));
    let mut spans: Vec<Span> = Vec::new();
    let mut documents = 0u64;
    let mut newest_update = None;
    let mut previous_id: Option<String> = None;

    req.documents.for_each_block(&mut |block| {
        let chunked: Vec<Vec<ChunkOut>> = block
            .par_iter()
            .map(|doc| chunk_document(req.spec, doc))
            .collect();
        for (doc, chunks) in block.iter().zip(chunked) {
            if let Some(previous) = previous_id.as_ref().filter(|p| **p >= doc.id) {
                return Err(IndexError::Invalid(format!(
                    "documents must be sorted by id and unique: {:?} follows {previous:?}",
                    doc.id
                )));
            }
            let ordinal = u32::try_from(documents)
                .map_err(|_| IndexError::Invalid("more than 2^32 - 1 documents".into()))?;
            let first_chunk = u32::try_from(spans.len())
                .ok()
                .filter(|first| first.checked_add(chunks.len() as u32).is_some())
                .ok_or_else(|| IndexError::Invalid("more than 2^32 - 1 chunks".into()))?;
            docs_out.write(&DocRecord {
                doc_id: doc.id.clone(),
                title: doc.title.clone(),
                metadata: doc.metadata.clone(),
                first_chunk,
                chunks: chunks.len() as u32,
            })?;
            acl_out.write(&AclRecord {
                doc_id: doc.id.clone(),
                acl: req.spec.effective_acl(doc.acl.as_ref()),
            })?;
            for chunk in chunks {
                vectors_key.field(chunk.titled_key.as_deref().unwrap_or(&chunk.hash));
                bm25_key
                    .optional(doc.title.as_deref())
                    .field(&doc.text[chunk.start..chunk.end]);
                chunks_out.write(&ChunkRecord {
                    chunk_id: chunk_id(&doc.id, chunk.ordinal),
                    doc: ordinal,
                    start: chunk.start as u64,
                    end: chunk.end as u64,
                    hash: chunk.hash,
                })?;
                spans.push(Span {
                    doc: ordinal,
                    start: chunk.start as u64,
                    end: chunk.end as u64,
                });
            }
            let updated = doc.updated_at.as_deref().and_then(|t| t.parse().ok());
            newest_update = newest_update.max(updated);
            documents += 1;
            previous_id = Some(doc.id.clone());
        }
        progress.advance(block.len() as u64);
        super::stop_if_cancelled(progress)
    })?;
    chunks_out.finish()?;
    docs_out.finish()?;
    let permission_digest = acl_out.finish()?.unwrap_or_default();
    vectors_key.field((spans.len() as u64).to_le_bytes());
    Ok(Scan {
        spans,
        documents,
        vectors_key: vectors_key.finish(),
        bm25_key: bm25_key.finish(),
        permission_digest,
        newest_update,
    })
}

fn chunk_document(spec: &BuildSpec, doc: &Document) -> Vec<ChunkOut> {
    let title = embedding_title(spec, doc);
    chunk_text(&doc.text, &spec.chunking)
        .into_iter()
        .map(|span| {
            let text = &doc.text[span.start..span.end];
            let hash = chunk_hash(text);
            let titled_key = title.map(|t| chunk_hash(&embedding_text(Some(t), text)));
            ChunkOut {
                ordinal: span.ordinal,
                start: span.start,
                end: span.end,
                hash,
                titled_key,
            }
        })
        .collect()
}

/// The title the model sees before each chunk of `doc`: only when the spec says
/// `include_title` and the title is not blank.
pub(super) fn embedding_title<'d>(spec: &BuildSpec, doc: &'d Document) -> Option<&'d str> {
    doc.title
        .as_deref()
        .map(str::trim)
        .filter(|t| spec.embedding.include_title && !t.is_empty())
}

/// What the model embeds for a chunk: `"<title> <text>"`, or the text alone. Its cache key is the
/// chunk hash of exactly this input, so two chunks share a cached vector exactly when the model
/// sees the same text.
pub(super) fn embedding_text<'t>(title: Option<&str>, text: &'t str) -> Cow<'t, str> {
    match title {
        Some(title) => Cow::Owned(format!("{title} {text}")),
        None => Cow::Borrowed(text),
    }
}
