//! Building an index artifact from a snapshot's documents and a build spec.
//!
//! A build streams its documents ([`DocumentSource`]) in passes and keeps only a few bytes per
//! chunk between them:
//!
//! 1. `chunk` ([`scan`]): chunk every document, write the chunk, document and ACL tables, and
//!    hash the keys of the later stages.
//! 2. `embed` ([`embed`]): read the chunks again and append their vectors to `vectors.f32`.
//! 3. `hnsw`: build the graph from a memory map of `vectors.f32`.
//! 4. `bm25`: read the chunks again into one tantivy segment; it runs alongside 2 and 3.
//!
//! Each of 2-4 is taken from a donor index instead when its key matches ([`crate::stages`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use hnsw_rs::hnsw::Hnsw;
use quire_core::ids::context;
use quire_core::manifest::content_digest;
use quire_core::spec::HnswBuilder;
use quire_core::{
    BuildInfo, BuildSpec, Counts, Document, EmbedCacheStats, FORMAT_VERSION, IndexId, Manifest,
    ModelInfo, SnapshotId, StageRecord, Versions,
};
use quire_embed::Embedder;

use crate::ann::{HalfVectors, Vectors};
use crate::bm25::{BM25_DIR, Bm25Row, Bm25Writer};
use crate::cache::EmbedCache;
use crate::distance::DotDistance;
use crate::error::{IndexError, Result};
use crate::files::{MANIFEST_FILE, artifact_files, map_file, sync_tree, write_synced};
use crate::graph::{FrozenGraph, GRAPH_FILE};
use crate::hnsw_build::{self, HnswParams};
use crate::source::DocumentSource;
use crate::stages::{self, Donor, KeyHasher};
use crate::{HNSW_RS_VERSION, TANTIVY_VERSION};

mod background;
mod embed;
mod scan;
#[cfg(test)]
mod tests;

use background::Background;
use embed::embed_to_file;
use scan::{Scan, Span, scan};

/// File name of the vectors: `chunks x dim` little-endian f32, row-major.
pub const VECTORS_FILE: &str = "vectors.f32";

/// Receives build progress: stages in order, then units of work within each.
pub trait Progress: Sync {
    /// A stage begins, with `total` units of work.
    fn stage(&self, name: &'static str, total: u64);
    /// `n` more units of the current stage are done.
    fn advance(&self, n: u64);
    /// The embed stage is done: `hits` chunks came from the embedding cache, `misses` were
    /// computed. Not called when the build used no cache.
    fn embed_cache(&self, hits: u64, misses: u64) {
        let _ = (hits, misses);
    }
    /// The stage that just began took its files from the index `from` instead of computing
    /// them (see [`crate::stages`]).
    fn reused(&self, stage: &'static str, from: &IndexId) {
        let _ = (stage, from);
    }
    /// Whether the build should stop (its deadline passed, its caller went away); asked at
    /// every block boundary, and the build then fails with [`IndexError::Cancelled`].
    fn cancelled(&self) -> bool {
        false
    }
}

/// [`IndexError::Cancelled`] when `progress` says the build should stop.
pub(crate) fn stop_if_cancelled(progress: &dyn Progress) -> Result<()> {
    match progress.cancelled() {
        true => Err(IndexError::Cancelled),
        false => Ok(()),
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
}

/// What to build.
pub struct BuildRequest<'a> {
    /// The snapshot the documents come from.
    pub snapshot_id: &'a SnapshotId,
    /// The snapshot's documents, sorted by id (a slice of them, or a streaming reader).
    pub documents: &'a dyn DocumentSource,
    /// The validated spec.
    pub spec: &'a BuildSpec,
    /// The model named by the spec.
    pub embedder: &'a dyn Embedder,
    /// When the snapshot was imported (freshness for documents without `updated_at`).
    pub imported_at: &'a str,
    /// Vectors computed before, reused by chunk hash (never changes the result); `None` computes
    /// every vector.
    pub cache: Option<&'a EmbedCache>,
    /// Published indices whose stages may be reused when their inputs are the same (never
    /// changes the result); empty computes every stage.
    pub donors: &'a [Donor],
}

impl BuildRequest<'_> {
    /// The id the index will have.
    pub fn index_id(&self) -> IndexId {
        IndexId::derive(
            self.snapshot_id,
            &self.spec.canonical_json(),
            FORMAT_VERSION,
        )
    }
}

/// Build the index into `dir`, which must be empty or absent (it is created), and return its manifest (also
/// written to `dir/manifest.json`). Every file is fsynced; publishing is the caller's job.
///
/// The BM25 pass runs alongside the embed and graph stages (on another thread of the current
/// rayon pool, when it has one): they write different files from the same inputs, so their
/// order cannot change a byte. Progress still reports one stage after another: BM25's is held
/// back until the graph stage is done (see [`Background`]).
pub fn build_index(
    req: &BuildRequest<'_>,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let index_id = req.index_id();
    // One span per build and per stage (traces: ids and counts only).
    let build_span =
        tracing::debug_span!("build_index", index = %index_id, chunks = tracing::field::Empty);
    let _entered = build_span.enter();
    std::fs::create_dir_all(dir).map_err(|source| IndexError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut timings = BTreeMap::new();
    let clock = Instant::now();
    stop_if_cancelled(progress)?;
    progress.stage("chunk", req.documents.document_count());
    let scan = tracing::debug_span!("chunk").in_scope(|| scan(req, dir, progress))?;
    timings.insert("chunk".to_owned(), elapsed_ms(clock));
    let chunks = scan.spans.len() as u64;
    build_span.record("chunks", chunks);

    let bm25_progress = Background::new(progress, "bm25", chunks);
    let (vector_side, bm25_side) = rayon::join(
        || {
            let _build = build_span.enter();
            let side = vector_stages(req, &scan, dir, &index_id, progress);
            bm25_progress.show();
            side
        },
        || {
            // Maybe on another rayon thread: enter the build's span there, so the exporter's
            // filter sees this span inside an exported one.
            let _build = build_span.enter();
            let _span = tracing::debug_span!("bm25").entered();
            let clock = Instant::now();
            bm25_stage(req, &scan, dir, &index_id, &bm25_progress).map(|r| (r, elapsed_ms(clock)))
        },
    );
    let VectorSide {
        mut stages,
        timings: vector_timings,
        cache_stats,
    } = vector_side?;
    let (bm25_record, bm25_ms) = bm25_side?;
    stages.insert(stages::BM25.to_owned(), bm25_record);
    timings.extend(vector_timings);
    timings.insert("bm25".to_owned(), bm25_ms);

    let clock = Instant::now();
    stop_if_cancelled(progress)?;
    progress.stage("write", 2);
    let write_span = tracing::debug_span!("write").entered();
    sync_tree(dir)?;
    progress.advance(1);
    let files = artifact_files(dir)?;
    progress.advance(1);
    drop(write_span);
    timings.insert("write".to_owned(), elapsed_ms(clock));

    let manifest = Manifest {
        index_id,
        content_digest: content_digest(&files),
        snapshot_id: req.snapshot_id.clone(),
        spec: req.spec.clone(),
        counts: Counts {
            documents: scan.documents,
            chunks,
            vectors: chunks,
        },
        embedding: ModelInfo {
            model_id: req.embedder.model_id().into(),
            digest: req.embedder.digest().into(),
            dim: req.embedder.dim() as u32,
        },
        permission_digest: scan.permission_digest,
        versions: Versions {
            format: FORMAT_VERSION,
            quire: env!("CARGO_PKG_VERSION").into(),
            tantivy: TANTIVY_VERSION.into(),
            hnsw_rs: HNSW_RS_VERSION.into(),
        },
        files,
        build: BuildInfo {
            built_at: jiff::Timestamp::now().to_string(),
            source_freshness: scan
                .newest_update
                .map_or_else(|| req.imported_at.to_owned(), |ts| ts.to_string()),
            timings_ms: timings,
            threads: rayon::current_num_threads() as u32,
            embed_cache: cache_stats,
            embed_kernel: req.embedder.kernel().map(str::to_owned),
            stages,
        },
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

/// What the embed and graph stages leave for the manifest.
struct VectorSide {
    stages: BTreeMap<String, StageRecord>,
    timings: BTreeMap<String, u64>,
    cache_stats: EmbedCacheStats,
}

/// The embed stage, then the graph over its vectors; each taken from a donor when its key
/// matches.
fn vector_stages(
    req: &BuildRequest<'_>,
    scan: &Scan,
    dir: &Path,
    index_id: &IndexId,
    progress: &dyn Progress,
) -> Result<VectorSide> {
    let chunks = scan.spans.len() as u64;
    let mut side = VectorSide {
        stages: BTreeMap::new(),
        timings: BTreeMap::new(),
        cache_stats: EmbedCacheStats::default(),
    };
    let clock = Instant::now();
    stop_if_cancelled(progress)?;
    progress.stage("embed", chunks);
    let embed_span =
        tracing::debug_span!("embed", chunks, reused = tracing::field::Empty).entered();
    let reused = stages::reuse(
        req.donors,
        stages::VECTORS,
        &scan.vectors_key,
        dir,
        index_id,
    )?;
    let vectors_file = match &reused {
        Some(donor) => {
            progress.reused(stages::VECTORS, &donor.index_id);
            donor.hash_of(VECTORS_FILE)?
        }
        None => {
            let (file, stats) = embed_to_file(req, &scan.spans, dir, progress)?;
            side.cache_stats = stats;
            file
        }
    };
    let reused = reused.map(|d| d.index_id);
    embed_span.record("reused", reused.is_some());
    side.stages.insert(
        stages::VECTORS.to_owned(),
        record(&scan.vectors_key, reused),
    );
    side.timings.insert("embed".to_owned(), elapsed_ms(clock));
    drop(embed_span);

    let clock = Instant::now();
    stop_if_cancelled(progress)?;
    progress.stage("hnsw", chunks);
    let _span = tracing::debug_span!("hnsw", chunks).entered();
    let graph_key = graph_key(req, &vectors_file);
    let reused = stages::reuse(req.donors, stages::GRAPH, &graph_key, dir, index_id)?;
    match &reused {
        Some(donor) => progress.reused(stages::GRAPH, &donor.index_id),
        None => {
            let graph = build_graph(req, dir, scan.spans.len(), progress)?;
            stop_if_cancelled(progress)?;
            write_synced(dir, GRAPH_FILE, &graph.to_bytes())?;
        }
    }
    let reused = reused.map(|d| d.index_id);
    side.stages
        .insert(stages::GRAPH.to_owned(), record(&graph_key, reused));
    side.timings.insert("hnsw".to_owned(), elapsed_ms(clock));
    Ok(side)
}

/// The BM25 stage: taken from a donor when its key matches, else read from the chunks again.
fn bm25_stage(
    req: &BuildRequest<'_>,
    scan: &Scan,
    dir: &Path,
    index_id: &IndexId,
    progress: &dyn Progress,
) -> Result<StageRecord> {
    stop_if_cancelled(progress)?;
    let reused = stages::reuse(req.donors, stages::BM25, &scan.bm25_key, dir, index_id)?;
    match &reused {
        Some(donor) => progress.reused(stages::BM25, &donor.index_id),
        None => write_bm25(req, scan, dir, index_id, progress)?,
    }
    Ok(record(&scan.bm25_key, reused.map(|d| d.index_id)))
}

fn elapsed_ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// Write `manifest.json` (pretty JSON, trailing newline), fsynced.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let mut json =
        serde_json::to_vec_pretty(manifest).map_err(|e| IndexError::Invalid(e.to_string()))?;
    json.push(b'\n');
    write_synced(dir, MANIFEST_FILE, &json)
}

/// One chunk met again on a later pass.
struct ChunkRef<'b> {
    doc: &'b Document,
    text: &'b str,
}

/// Read the documents again and call `visit` with each block's chunks, in chunk-ordinal order.
/// Fails if the source no longer yields the chunks the first pass found.
fn rescan(
    documents: &dyn DocumentSource,
    spans: &[Span],
    visit: &mut dyn FnMut(&[ChunkRef<'_>]) -> Result<()>,
) -> Result<()> {
    let mut first_doc = 0usize;
    let mut next_chunk = 0usize;
    documents.for_each_block(&mut |block| {
        let end_doc = first_doc + block.len();
        let rest = &spans[next_chunk..];
        let count = rest.partition_point(|s| (s.doc as usize) < end_doc);
        let chunks = rest[..count]
            .iter()
            .map(|span| {
                let doc = &block[span.doc as usize - first_doc];
                let text = doc.text.get(span.start as usize..span.end as usize);
                let text = text.ok_or_else(|| changed_source(&doc.id))?;
                Ok(ChunkRef { doc, text })
            })
            .collect::<Result<Vec<_>>>()?;
        first_doc = end_doc;
        next_chunk += count;
        visit(&chunks)
    })?;
    if next_chunk != spans.len() {
        return Err(changed_source("the end"));
    }
    Ok(())
}

fn changed_source(at: &str) -> IndexError {
    IndexError::Invalid(format!(
        "the documents changed during the build (at {at:?}): their source must yield the same \
         documents on every read"
    ))
}

/// Read the chunks again into one BM25 segment.
fn write_bm25(
    req: &BuildRequest<'_>,
    scan: &Scan,
    dir: &Path,
    index_id: &IndexId,
    progress: &dyn Progress,
) -> Result<()> {
    let mut writer = Bm25Writer::create(&dir.join(BM25_DIR), index_id, req.spec.bm25.analyzer)?;
    rescan(req.documents, &scan.spans, &mut |chunks| {
        for chunk in chunks {
            writer.add(Bm25Row {
                title: chunk.doc.title.as_deref(),
                body: chunk.text,
            })?;
        }
        progress.advance(chunks.len() as u64);
        stop_if_cancelled(progress)
    })?;
    writer.finish()
}

/// Build the graph over `dir/vectors.f32`, read through a memory map.
fn build_graph(
    req: &BuildRequest<'_>,
    dir: &Path,
    n: usize,
    progress: &dyn Progress,
) -> Result<FrozenGraph> {
    let dim = req.embedder.dim();
    let map = map_file(&dir.join(VECTORS_FILE))?;
    let vectors: &[f32] = bytemuck::try_cast_slice(&map)
        .ok()
        .filter(|v: &&[f32]| v.len() == n * dim)
        .ok_or_else(|| IndexError::Corrupt {
            file: VECTORS_FILE.into(),
            reason: format!("not {n} rows of {dim} f32"),
        })?;
    let h = req.spec.hnsw;
    if h.builder == HnswBuilder::Quire {
        let params = HnswParams {
            m: h.m as usize,
            ef_construction: h.ef_construction as usize,
        };
        let halves = HalfVectors::from_f32(Vectors::new(vectors, dim));
        // The builder reads only the halves: unmapping the f32 rows keeps them out of the RSS.
        drop(map);
        return hnsw_build::build_from_halves(&halves, params, |k| progress.advance(k));
    }
    let hnsw = Hnsw::<f32, DotDistance>::new(
        h.m as usize,
        n.max(1),
        16,
        h.ef_construction as usize,
        DotDistance,
    );
    // Serial insertion in ordinal order: hnsw_rs's parallel insert is not deterministic.
    for (i, v) in vectors.chunks_exact(dim).enumerate() {
        hnsw.insert_slice((v, i));
        progress.advance(1);
        if i % 1024 == 1023 {
            stop_if_cancelled(progress)?;
        }
    }
    FrozenGraph::from_hnsw(&hnsw, n)
}

fn record(key: &str, reused_from: Option<IndexId>) -> StageRecord {
    StageRecord {
        key: key.to_owned(),
        reused_from,
    }
}

/// The graph stage key: the vectors file and every parameter of the builder.
fn graph_key(req: &BuildRequest<'_>, vectors_file: &str) -> String {
    let h = req.spec.hnsw;
    let mut key = KeyHasher::new(context::STAGE_GRAPH);
    key.field(vectors_file)
        .field((req.embedder.dim() as u64).to_le_bytes())
        .field(h.m.to_le_bytes())
        .field(h.ef_construction.to_le_bytes());
    match h.builder {
        HnswBuilder::Quire => key
            .field("quire")
            .field(hnsw_build::BUILDER_VERSION.to_le_bytes()),
        HnswBuilder::HnswRs => key.field("hnsw_rs").field(HNSW_RS_VERSION),
    };
    key.finish()
}
