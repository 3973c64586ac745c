//! The embedding pass: chunk texts read again from the source ([`super::rescan`]), embedded a block at a time
//! and appended to `vectors.f32`, so no more than a block's vectors are ever in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use quire_core::EmbedCacheStats;
use quire_core::chunk::chunk_hash;
use quire_core::ids::{context, hasher};
use quire_embed::Embedder;
use rayon::prelude::*;

use super::scan::{Span, embedding_text, embedding_title};
use super::{BuildRequest, Progress, VECTORS_FILE, rescan};
use crate::cache::EmbedCache;
use crate::error::{IndexError, IoContext, Result};

/// Texts embedded per call; each row depends only on its own text, so this affects speed only.
/// Small, so that even a small corpus spreads over every thread (models embed one text at a
/// time anyway).
const EMBED_BATCH: usize = 8;

/// Embed every chunk into `dir/vectors.f32`; returns the file's hash and the cache counts.
pub(super) fn embed_to_file(
    req: &BuildRequest<'_>,
    spans: &[Span],
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(String, EmbedCacheStats)> {
    let path = dir.join(VECTORS_FILE);
    let mut out = BufWriter::new(File::create(&path).at(&path)?);
    let mut file_hash = hasher(context::FILE);
    let mut stats = EmbedCacheStats::default();
    let cache = req.cache.filter(|_| req.embedder.cacheable());
    let mut bytes = Vec::new();
    rescan(req.documents, spans, &mut |chunks| {
        let inputs: Vec<_> = chunks
            .iter()
            .map(|c| embedding_text(embedding_title(req.spec, c.doc), c.text))
            .collect();
        let inputs: Vec<&str> = inputs.iter().map(AsRef::as_ref).collect();
        // Cache keys are only needed to look vectors up; without a cache they are not computed.
        let keys: Vec<String> = match cache {
            Some(_) => inputs.par_iter().map(|input| chunk_hash(input)).collect(),
            None => Vec::new(),
        };
        let (vectors, hits) = embed_block(req.embedder, &inputs, &keys, cache, progress)?;
        stats.hits += hits;
        bytes.clear();
        bytes.extend(vectors.iter().flat_map(|v| v.to_le_bytes()));
        file_hash.update(&bytes);
        out.write_all(&bytes).at(&path)
    })?;
    let file = out
        .into_inner()
        .map_err(std::io::IntoInnerError::into_error)
        .at(&path)?;
    file.sync_all().at(&path)?;
    if cache.is_some() {
        stats.misses = spans.len() as u64 - stats.hits;
        progress.embed_cache(stats.hits, stats.misses);
    } else {
        stats.hits = 0;
    }
    Ok((file_hash.finalize().to_hex().to_string(), stats))
}

/// Embed one block's inputs in parallel batches of fixed composition. With a cache, each input
/// is looked up by (model, key) first and only the misses are embedded (and then stored); `keys`
/// has one per text with a cache, and may be empty without one. Returns the vectors, row-major,
/// and how many came from the cache.
fn embed_block(
    embedder: &dyn Embedder,
    texts: &[&str],
    keys: &[String],
    cache: Option<&EmbedCache>,
    progress: &dyn Progress,
) -> Result<(Vec<f32>, u64)> {
    let dim = embedder.dim();
    let namespace = embedder.cache_namespace();
    let namespace = namespace.as_str();
    let mut vectors = vec![0.0f32; texts.len() * dim];
    let hits: Vec<u64> = vectors
        .par_chunks_mut(EMBED_BATCH * dim.max(1))
        .zip(texts.par_chunks(EMBED_BATCH))
        .enumerate()
        .map(|(b, (out, batch))| {
            let batch_keys = keys.get(b * EMBED_BATCH..).unwrap_or_default();
            let mut missing = Vec::new();
            for i in 0..batch.len() {
                match cache.and_then(|c| c.get(namespace, &batch_keys[i], dim)) {
                    Some(v) => out[i * dim..(i + 1) * dim].copy_from_slice(&v),
                    None => missing.push(i),
                }
            }
            if !missing.is_empty() {
                let miss_texts: Vec<&str> = missing.iter().map(|&i| batch[i]).collect();
                let rows = embedder.embed_batch(&miss_texts)?;
                if rows.dim() != (missing.len(), dim) {
                    return Err(IndexError::Invalid(format!(
                        "model {} returned {:?} for {} texts of dim {dim}",
                        embedder.model_id(),
                        rows.dim(),
                        missing.len()
                    )));
                }
                for (&i, row) in missing.iter().zip(rows.rows()) {
                    let slot = &mut out[i * dim..(i + 1) * dim];
                    slot.iter_mut().zip(row).for_each(|(o, v)| *o = *v);
                    if let Some(cache) = cache {
                        cache.put(namespace, &batch_keys[i], slot)?;
                    }
                }
            }
            progress.advance(batch.len() as u64);
            super::stop_if_cancelled(progress)?;
            Ok((batch.len() - missing.len()) as u64)
        })
        .collect::<Result<_>>()?;
    Ok((vectors, hits.iter().sum()))
}
