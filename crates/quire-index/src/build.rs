//! Building an index artifact from a snapshot's documents and a build spec.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use hnsw_rs::hnsw::Hnsw;
use quire_core::chunk::{ChunkSpan, chunk_hash, chunk_id, chunk_text};
use quire_core::ids::{context, hash_hex};
use quire_core::manifest::content_digest;
use quire_core::spec::HnswBuilder;
use quire_core::{
    BuildInfo, BuildSpec, Counts, Document, EmbedCacheStats, FORMAT_VERSION, IndexId, Manifest,
    ModelInfo, SnapshotId, StageRecord, Versions,
};
use quire_embed::Embedder;
use rayon::prelude::*;

use crate::ann::Vectors;
use crate::bm25::{self, BM25_DIR, Bm25Row};
use crate::cache::EmbedCache;
use crate::distance::DotDistance;
use crate::error::IoContext;
use crate::error::{IndexError, Result};
use crate::files::{MANIFEST_FILE, artifact_files, sync_tree, write_synced};
use crate::graph::{FrozenGraph, GRAPH_FILE};
use crate::hnsw_build::{self, HnswParams};
use crate::stages::{self, Donor, KeyHasher};
use crate::tables::{
    ACL_FILE, AclRecord, CHUNKS_FILE, ChunkRecord, DOCS_FILE, DocRecord, to_jsonl,
};
use crate::{HNSW_RS_VERSION, TANTIVY_VERSION};

/// File name of the vectors: `chunks x dim` little-endian f32, row-major.
pub const VECTORS_FILE: &str = "vectors.f32";

/// Texts embedded per call; each row depends only on its own text, so this affects speed only.
/// Small, so that even a small corpus spreads over every thread (models embed one text at a
/// time anyway).
const EMBED_BATCH: usize = 8;

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
    /// The snapshot's documents, sorted by id.
    pub documents: &'a [Document],
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

struct Chunked {
    records: Vec<ChunkRecord>,
    docs: Vec<DocRecord>,
}

/// Build the index into `dir`, which must be empty or absent (it is created), and return its manifest (also
/// written to `dir/manifest.json`). Every file is fsynced; publishing is the caller's job.
pub fn build_index(
    req: &BuildRequest<'_>,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<Manifest> {
    let index_id = req.index_id();
    if req.documents.windows(2).any(|w| w[0].id >= w[1].id) {
        return Err(IndexError::Invalid(
            "documents must be sorted by id and unique".into(),
        ));
    }
    std::fs::create_dir_all(dir).at(dir)?;
    let mut timings = BTreeMap::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str, timings: &mut BTreeMap<String, u64>| {
        timings.insert(name.to_owned(), clock.elapsed().as_millis() as u64);
        clock = Instant::now();
    };

    progress.stage("chunk", req.documents.len() as u64);
    let chunked = chunk_all(req, progress);
    lap("chunk", &mut timings);
    let texts: Vec<&str> = chunked
        .records
        .iter()
        .map(|c| &req.documents[c.doc as usize].text[c.start as usize..c.end as usize])
        .collect();

    progress.stage("embed", texts.len() as u64);
    let (inputs, keys) = embedding_inputs(req, &chunked.records, &texts);
    let inputs: Vec<&str> = inputs.iter().map(AsRef::as_ref).collect();
    let keys: Vec<&str> = keys.iter().map(AsRef::as_ref).collect();
    let mut stages = BTreeMap::new();
    let vectors_key = vectors_key(req.embedder, &keys);
    let reused = stages::reuse(req.donors, stages::VECTORS, &vectors_key, dir, &index_id)?;
    let (vectors, vectors_file, cache_stats) = match &reused {
        Some(from) => {
            progress.reused(stages::VECTORS, from);
            let bytes = std::fs::read(dir.join(VECTORS_FILE)).at(dir.join(VECTORS_FILE))?;
            let vectors = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (
                vectors,
                stages::file_hash(&bytes),
                EmbedCacheStats::default(),
            )
        }
        None => {
            let cache = req.cache.filter(|_| req.embedder.cacheable());
            let (vectors, stats) = embed_all(req.embedder, &inputs, &keys, cache, progress)?;
            if cache.is_some() {
                progress.embed_cache(stats.hits, stats.misses);
            }
            let bytes = vectors_bytes(&vectors);
            write_synced(dir, VECTORS_FILE, &bytes)?;
            (vectors, stages::file_hash(&bytes), stats)
        }
    };
    stages.insert(stages::VECTORS.to_owned(), record(vectors_key, reused));
    lap("embed", &mut timings);

    progress.stage("bm25", texts.len() as u64);
    let acls: Vec<_> = req
        .documents
        .iter()
        .map(|d| req.spec.effective_acl(d.acl.as_ref()))
        .collect();
    let rows = chunked.records.iter().zip(&texts).map(|(c, text)| Bm25Row {
        title: req.documents[c.doc as usize].title.as_deref(),
        body: text,
        acl: &acls[c.doc as usize],
    });
    let bm25_key = bm25_key(req, rows.clone());
    let reused = stages::reuse(req.donors, stages::BM25, &bm25_key, dir, &index_id)?;
    match &reused {
        Some(from) => progress.reused(stages::BM25, from),
        None => bm25::write(
            &dir.join(BM25_DIR),
            &index_id,
            req.spec.bm25.analyzer,
            rows,
            || progress.advance(1),
        )?,
    }
    stages.insert(stages::BM25.to_owned(), record(bm25_key, reused));
    lap("bm25", &mut timings);

    progress.stage("hnsw", texts.len() as u64);
    let graph_key = graph_key(req, &vectors_file);
    let reused = stages::reuse(req.donors, stages::GRAPH, &graph_key, dir, &index_id)?;
    match &reused {
        Some(from) => progress.reused(stages::GRAPH, from),
        None => write_synced(
            dir,
            GRAPH_FILE,
            &build_graph(req, &vectors, progress)?.to_bytes(),
        )?,
    }
    drop(vectors);
    stages.insert(stages::GRAPH.to_owned(), record(graph_key, reused));
    lap("hnsw", &mut timings);

    progress.stage("write", 5);
    write_synced(dir, CHUNKS_FILE, &to_jsonl(&chunked.records))?;
    write_synced(dir, DOCS_FILE, &to_jsonl(&chunked.docs))?;
    let acl_table: Vec<_> = req
        .documents
        .iter()
        .zip(acls)
        .map(|(d, acl)| AclRecord {
            doc_id: d.id.clone(),
            acl,
        })
        .collect();
    let acl_bytes = to_jsonl(&acl_table);
    write_synced(dir, ACL_FILE, &acl_bytes)?;
    progress.advance(3);
    sync_tree(dir)?;
    let files = artifact_files(dir)?;
    progress.advance(2);
    lap("write", &mut timings);

    let manifest = Manifest {
        index_id,
        content_digest: content_digest(&files),
        snapshot_id: req.snapshot_id.clone(),
        spec: req.spec.clone(),
        counts: Counts {
            documents: req.documents.len() as u64,
            chunks: chunked.records.len() as u64,
            vectors: chunked.records.len() as u64,
        },
        embedding: ModelInfo {
            model_id: req.embedder.model_id().into(),
            digest: req.embedder.digest().into(),
            dim: req.embedder.dim() as u32,
        },
        permission_digest: hash_hex(context::PERMISSIONS, &acl_bytes),
        versions: Versions {
            format: FORMAT_VERSION,
            quire: env!("CARGO_PKG_VERSION").into(),
            tantivy: TANTIVY_VERSION.into(),
            hnsw_rs: HNSW_RS_VERSION.into(),
        },
        files,
        build: BuildInfo {
            built_at: jiff_now(),
            source_freshness: source_freshness(req.documents, req.imported_at),
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

/// Write `manifest.json` (pretty JSON, trailing newline), fsynced.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let mut json =
        serde_json::to_vec_pretty(manifest).map_err(|e| IndexError::Invalid(e.to_string()))?;
    json.push(b'\n');
    write_synced(dir, MANIFEST_FILE, &json)
}

fn chunk_all(req: &BuildRequest<'_>, progress: &dyn Progress) -> Chunked {
    let spans: Vec<Vec<ChunkSpan>> = req
        .documents
        .par_iter()
        .map(|d| {
            progress.advance(1);
            chunk_text(&d.text, &req.spec.chunking)
        })
        .collect();
    let mut records = Vec::new();
    let mut docs = Vec::with_capacity(req.documents.len());
    for (doc_ordinal, (doc, spans)) in req.documents.iter().zip(spans).enumerate() {
        docs.push(DocRecord {
            doc_id: doc.id.clone(),
            title: doc.title.clone(),
            metadata: doc.metadata.clone(),
            first_chunk: records.len() as u32,
            chunks: spans.len() as u32,
        });
        records.extend(spans.into_iter().map(|s| ChunkRecord {
            chunk_id: chunk_id(&doc.id, s.ordinal),
            doc: doc_ordinal as u32,
            start: s.start as u64,
            end: s.end as u64,
            hash: chunk_hash(&doc.text[s.start..s.end]),
        }));
    }
    Chunked { records, docs }
}

/// Embed every chunk, in parallel batches of fixed composition. With a cache, each chunk is looked
/// up by (model digest, chunk hash) first and only the misses are embedded (and then stored).
/// What the model embeds for each chunk (the chunk text, or `"<title> <text>"` when the spec
/// says `include_title`), and each input's cache key: the chunk hash of the exact input, so two
/// chunks share a cached vector exactly when the model sees the same text.
fn embedding_inputs<'t>(
    req: &'t BuildRequest<'_>,
    records: &'t [ChunkRecord],
    texts: &[&'t str],
) -> (Vec<Cow<'t, str>>, Vec<Cow<'t, str>>) {
    records
        .iter()
        .zip(texts)
        .map(|(record, &text)| {
            let title = req.documents[record.doc as usize]
                .title
                .as_deref()
                .map(str::trim)
                .filter(|t| req.spec.embedding.include_title && !t.is_empty());
            match title {
                Some(title) => {
                    let input = format!("{title} {text}");
                    let key = chunk_hash(&input);
                    (Cow::Owned(input), Cow::Owned(key))
                }
                None => (Cow::Borrowed(text), Cow::Borrowed(record.hash.as_str())),
            }
        })
        .unzip()
}

fn embed_all(
    embedder: &dyn Embedder,
    texts: &[&str],
    hashes: &[&str],
    cache: Option<&EmbedCache>,
    progress: &dyn Progress,
) -> Result<(Vec<f32>, EmbedCacheStats)> {
    let dim = embedder.dim();
    let digest = embedder.cache_namespace();
    let digest = digest.as_str();
    let mut stats = EmbedCacheStats::default();
    let batches: Vec<(Vec<f32>, u64)> = texts
        .par_chunks(EMBED_BATCH)
        .zip(hashes.par_chunks(EMBED_BATCH))
        .map(|(batch, batch_hashes)| {
            let mut out = vec![0.0f32; batch.len() * dim];
            let mut missing = Vec::new();
            for (i, hash) in batch_hashes.iter().enumerate() {
                match cache.and_then(|c| c.get(digest, hash, dim)) {
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
                        cache.put(digest, batch_hashes[i], slot)?;
                    }
                }
            }
            progress.advance(batch.len() as u64);
            Ok((out, (batch.len() - missing.len()) as u64))
        })
        .collect::<Result<_>>()?;
    let mut vectors = Vec::with_capacity(texts.len() * dim);
    for (rows, hits) in batches {
        vectors.extend_from_slice(&rows);
        stats.hits += hits;
    }
    if cache.is_some() {
        stats.misses = texts.len() as u64 - stats.hits;
    } else {
        stats.hits = 0;
    }
    Ok((vectors, stats))
}

fn build_graph(
    req: &BuildRequest<'_>,
    vectors: &[f32],
    progress: &dyn Progress,
) -> Result<FrozenGraph> {
    let dim = req.embedder.dim();
    let n = vectors.len() / dim.max(1);
    let h = req.spec.hnsw;
    if h.builder == HnswBuilder::Quire {
        let params = HnswParams {
            m: h.m as usize,
            ef_construction: h.ef_construction as usize,
        };
        return hnsw_build::build(Vectors::new(vectors, dim), params, |k| progress.advance(k));
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
    }
    FrozenGraph::from_hnsw(&hnsw, n)
}

fn record(key: String, reused_from: Option<IndexId>) -> StageRecord {
    StageRecord { key, reused_from }
}

/// The vectors' stage key: the model as the embedding cache names it, and every input's hash.
fn vectors_key(embedder: &dyn Embedder, input_keys: &[&str]) -> String {
    let mut key = KeyHasher::new(context::STAGE_VECTORS);
    key.field(embedder.model_id())
        .field(embedder.cache_namespace())
        .field((embedder.dim() as u64).to_le_bytes())
        .field((input_keys.len() as u64).to_le_bytes());
    for input in input_keys {
        key.field(input);
    }
    key.finish()
}

/// The BM25 stage key: what the segment's bytes depend on, row by row.
fn bm25_key<'a>(req: &BuildRequest<'_>, rows: impl Iterator<Item = Bm25Row<'a>>) -> String {
    let mut key = KeyHasher::new(context::STAGE_BM25);
    key.field(FORMAT_VERSION.to_le_bytes())
        .field(TANTIVY_VERSION)
        .field(format!("{:?}", req.spec.bm25.analyzer));
    for row in rows {
        key.optional(row.title).field(row.body);
        let principals: Vec<String> = row.acl.principals().map(|p| p.token()).collect();
        key.field((principals.len() as u64).to_le_bytes());
        for p in principals {
            key.field(p);
        }
    }
    key.finish()
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

fn vectors_bytes(vectors: &[f32]) -> Vec<u8> {
    vectors.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn source_freshness(documents: &[Document], imported_at: &str) -> String {
    documents
        .iter()
        .filter_map(|d| d.updated_at.as_deref()?.parse::<jiff::Timestamp>().ok())
        .max()
        .map(|ts| ts.to_string())
        .unwrap_or_else(|| imported_at.to_owned())
}

fn jiff_now() -> String {
    jiff::Timestamp::now().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use quire_embed::Models;

    fn doc(id: &str, title: Option<&str>, text: &str) -> Document {
        Document {
            id: id.into(),
            title: title.map(Into::into),
            metadata: BTreeMap::new(),
            acl: None,
            updated_at: None,
            text: text.into(),
        }
    }

    #[test]
    fn titles_join_the_embedding_input_and_its_cache_key_only_when_asked() {
        let docs = [
            doc("a", Some("  Parental leave "), "Twenty weeks."),
            doc("b", None, "No title here."),
            doc("c", Some(""), "An empty title."),
        ];
        let records: Vec<ChunkRecord> = docs
            .iter()
            .enumerate()
            .map(|(i, d)| ChunkRecord {
                chunk_id: chunk_id(&d.id, 0),
                doc: i as u32,
                start: 0,
                end: d.text.len() as u64,
                hash: chunk_hash(&d.text),
            })
            .collect();
        let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
        let snapshot = SnapshotId::from_hash(blake3::hash(b"titles"));
        let embedder = Models::builtin()
            .resolve(&BuildSpec::default().embedding)
            .expect("hash-v1");
        let mut spec = BuildSpec::default();
        let inputs_for = |spec: &BuildSpec| {
            let req = BuildRequest {
                snapshot_id: &snapshot,
                documents: &docs,
                spec,
                embedder: embedder.as_ref(),
                imported_at: "2026-01-01T00:00:00Z",
                cache: None,
                donors: &[],
            };
            let (inputs, keys) = embedding_inputs(&req, &records, &texts);
            let owned = |v: Vec<Cow<'_, str>>| v.into_iter().map(Cow::into_owned).collect();
            (owned(inputs), owned(keys), req.index_id())
        };
        let (plain, plain_keys, plain_id): (Vec<String>, Vec<String>, _) = inputs_for(&spec);
        assert_eq!(plain, texts);
        let hashes: Vec<String> = records.iter().map(|r| r.hash.clone()).collect();
        assert_eq!(plain_keys, hashes);

        spec.embedding.include_title = true;
        let (titled, titled_keys, titled_id): (Vec<String>, Vec<String>, _) = inputs_for(&spec);
        assert_eq!(
            titled,
            [
                "Parental leave Twenty weeks.",
                "No title here.",
                "An empty title."
            ]
        );
        assert_eq!(titled_keys[0], chunk_hash("Parental leave Twenty weeks."));
        assert_eq!(titled_keys[1..], hashes[1..]);
        assert_ne!(
            plain_id, titled_id,
            "include_title must change the index id"
        );
    }

    fn build_with(docs: &[Document], spec: &BuildSpec, threads: usize) -> (Manifest, Vec<u8>) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        let (dir, manifest) = pool.install(|| build_into(b"builders", docs, spec, &[]));
        let graph = std::fs::read(dir.path().join(GRAPH_FILE)).expect("graph");
        (manifest, graph)
    }

    #[test]
    fn the_spec_chooses_the_graph_builder_and_quire_builds_the_same_bytes_on_any_threads() {
        let words = [
            "leave", "salary", "deploy", "rollback", "budget", "privacy", "heron",
        ];
        let docs: Vec<Document> = (0..400)
            .map(|i| {
                let text: Vec<&str> = (0..12)
                    .map(|j| words[(i * 7 + j * j) % words.len()])
                    .collect();
                doc(&format!("d{i:04}"), None, &text.join(" "))
            })
            .collect();
        let mut spec = BuildSpec::default();
        let (old, old_graph) = build_with(&docs, &spec, 2);
        spec.hnsw.builder = HnswBuilder::Quire;
        let (one, one_graph) = build_with(&docs, &spec, 1);
        let (two, two_graph) = build_with(&docs, &spec, 2);
        assert_eq!(one.content_digest, two.content_digest);
        assert_eq!(one_graph, two_graph);
        assert_ne!(one.index_id, old.index_id);
        assert_ne!(one_graph, old_graph);
        let graph = FrozenGraph::from_bytes(&one_graph).expect("parse");
        assert_eq!(graph.len(), 400);
        assert!((0..400).all(|i| graph.layers[0].neighbours_at(i).len() <= 32));
    }

    /// Build `docs` as snapshot `snapshot` with `spec` into a fresh directory, reusing `donors`.
    fn build_into(
        snapshot: &[u8],
        docs: &[Document],
        spec: &BuildSpec,
        donors: &[Donor],
    ) -> (tempfile::TempDir, Manifest) {
        let snapshot = SnapshotId::from_hash(blake3::hash(snapshot));
        let embedder = Models::builtin().resolve(&spec.embedding).expect("hash-v1");
        let dir = tempfile::tempdir().expect("tempdir");
        let req = BuildRequest {
            snapshot_id: &snapshot,
            documents: docs,
            spec,
            embedder: embedder.as_ref(),
            imported_at: "2026-01-01T00:00:00Z",
            cache: None,
            donors,
        };
        let manifest = build_index(&req, dir.path(), &NoProgress).expect("build");
        (dir, manifest)
    }

    fn donor(dir: &tempfile::TempDir, manifest: &Manifest) -> Donor {
        Donor {
            dir: dir.path().to_owned(),
            manifest: manifest.clone(),
        }
    }

    fn reused_from(m: &Manifest, stage: &str) -> Option<IndexId> {
        m.build.stages[stage].reused_from.clone()
    }

    #[test]
    fn reused_stages_give_the_bytes_of_a_cold_build() {
        let docs: Vec<Document> = (0..120)
            .map(|i| {
                doc(
                    &format!("d{i:03}"),
                    Some("Handbook"),
                    &format!("leave policy {i} days"),
                )
            })
            .collect();
        let mut spec = BuildSpec::default();
        spec.hnsw.builder = HnswBuilder::Quire;
        let (first_dir, first) = build_into(b"s1", &docs, &spec, &[]);
        let donors = [donor(&first_dir, &first)];

        // ACL-only change: a new snapshot with the same texts. Vectors and graph are reused.
        let mut restricted = docs.clone();
        restricted[3].acl = Some(quire_core::Acl::parse(["group:hr"]).expect("acl"));
        let (_, warm) = build_into(b"s2", &restricted, &spec, &donors);
        let (_, cold) = build_into(b"s2", &restricted, &spec, &[]);
        assert_eq!(warm.index_id, cold.index_id);
        assert_eq!(warm.files, cold.files);
        assert_eq!(warm.content_digest, cold.content_digest);
        assert_eq!(
            reused_from(&warm, stages::VECTORS),
            Some(first.index_id.clone())
        );
        assert_eq!(
            reused_from(&warm, stages::GRAPH),
            Some(first.index_id.clone())
        );
        assert_eq!(reused_from(&warm, stages::BM25), None);
        for stage in [stages::VECTORS, stages::GRAPH, stages::BM25] {
            assert_eq!(warm.build.stages[stage].key, cold.build.stages[stage].key);
        }

        // A graph parameter change: vectors and BM25 (renamed to the new segment) are reused.
        let mut wider = spec.clone();
        wider.hnsw.m = 8;
        let (_, warm) = build_into(b"s1", &docs, &wider, &donors);
        let (_, cold) = build_into(b"s1", &docs, &wider, &[]);
        assert_eq!(warm.content_digest, cold.content_digest);
        assert_eq!(
            reused_from(&warm, stages::BM25),
            Some(first.index_id.clone())
        );
        assert_eq!(reused_from(&warm, stages::GRAPH), None);

        // A donor whose file no longer matches its manifest is skipped, not trusted.
        let vectors = first_dir.path().join(VECTORS_FILE);
        let mut bytes = std::fs::read(&vectors).expect("vectors");
        bytes[0] ^= 1;
        std::fs::write(&vectors, bytes).expect("tamper");
        let (_, warm) = build_into(b"s2", &restricted, &spec, &donors);
        let (_, cold) = build_into(b"s2", &restricted, &spec, &[]);
        assert_eq!(warm.content_digest, cold.content_digest);
        assert_eq!(reused_from(&warm, stages::VECTORS), None);
        assert_eq!(reused_from(&warm, stages::GRAPH), Some(first.index_id));
    }
}
