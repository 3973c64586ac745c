//! Opening an index for queries: memory-mapped, shared, safe for concurrent readers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use quire_core::{Acl, Manifest, Reader};
use quire_embed::{Embedder, Models};
use tantivy::schema::Value;
use tantivy::{DocAddress, Index, IndexReader, ReloadPolicy, TantivyDocument};

use crate::ann::{Allowed, Vectors};
use crate::bm25::{self, BM25_DIR, Bm25Fields};
use crate::error::{IndexError, IoContext, Result};
use crate::files::{map_file, verify_files};
use crate::fusion;
use crate::graph::{FrozenGraph, GRAPH_FILE};
use crate::plan::{Bm25Planner, EXACT_SCAN_FLOATS, Planner, VectorPlan};
use crate::query::{Hit, Lineage, RetrieverHit};
use crate::tables::{
    ACL_FILE, AclRecord, CHUNKS_FILE, ChunkRecord, DOCS_FILE, DocRecord, read_jsonl,
};
use crate::{READABLE_FORMATS, VECTORS_FILE, read_manifest};

mod lexical;
mod search;
mod stats;
mod top;

use search::VectorSide;

/// Decompressed 16 KiB blocks of chunk text tantivy's doc store keeps per open index (8 MiB;
/// tantivy's default is 100). A hit's text costs a block decompression on a miss: on SciFact
/// (about 500 blocks) fetching 10 hits' texts took 117 us with the default cache.
const DOC_STORE_CACHE_BLOCKS: usize = 512;
/// Distinct readers whose allowed sets are cached per index.
const ALLOWED_CACHE: usize = 256;
/// Bytes the allowed-set cache of one index may hold (keys and sets).
pub const ALLOWED_CACHE_BYTES: usize = 64 << 20;

/// An index opened for queries. Share it with `Arc`; every method takes `&self`.
pub struct OpenIndex {
    manifest: Manifest,
    embedder: Arc<dyn Embedder>,
    reader: IndexReader,
    fields: Bm25Fields,
    analyzer: tantivy::tokenizer::TextAnalyzer,
    vector_side: Arc<VectorSide>,
    chunks: Vec<ChunkRecord>,
    docs: Vec<DocRecord>,
    acls: Vec<Acl>,
    allowed_cache: Mutex<AllowedCache>,
    /// Each chunk's BM25 token count, read on the first query of a reader who may not read
    /// every chunk ([`stats::chunk_tokens`]).
    chunk_tokens: OnceLock<Vec<u32>>,
    /// Zeroed per-chunk score arrays for term-at-a-time BM25, reused across queries.
    bm25_scratch: lexical::Scratch,
    planner: Planner,
    bm25_planner: Bm25Planner,
}

/// Allowed sets by the blake3 hash of the reader's canonical principal tokens (so a huge
/// principal costs 32 bytes here), least recently used out past [`ALLOWED_CACHE`] entries or
/// [`ALLOWED_CACHE_BYTES`].
#[derive(Default)]
struct AllowedCache {
    entries: HashMap<[u8; 32], (Arc<Allowed>, u64)>,
    bytes: usize,
    tick: u64,
}

impl AllowedCache {
    /// What an entry costs: its key and its set.
    fn cost(allowed: &Allowed) -> usize {
        32 + allowed.heap_bytes()
    }

    fn insert(&mut self, key: [u8; 32], allowed: Arc<Allowed>) {
        let cost = Self::cost(&allowed);
        if cost > ALLOWED_CACHE_BYTES || self.entries.contains_key(&key) {
            return;
        }
        while !self.entries.is_empty()
            && (self.entries.len() >= ALLOWED_CACHE || self.bytes + cost > ALLOWED_CACHE_BYTES)
        {
            let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, v)| v.1)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some((gone, _)) = self.entries.remove(&oldest) {
                self.bytes -= Self::cost(&gone);
            }
        }
        self.bytes += cost;
        self.entries.insert(key, (allowed, self.tick));
    }
}

/// The cache key of a reader: blake3 over its canonical principal tokens, each
/// length-prefixed.
fn reader_key(reader: &Reader) -> [u8; 32] {
    let mut h = quire_core::ids::hasher(quire_core::ids::context::READER);
    for p in reader.tokens() {
        let token = p.token();
        h.update(&(token.len() as u64).to_le_bytes());
        h.update(token.as_bytes());
    }
    *h.finalize().as_bytes()
}

impl std::fmt::Debug for OpenIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenIndex")
            .field("index_id", &self.manifest.index_id)
            .finish_non_exhaustive()
    }
}

impl OpenIndex {
    /// Open the index in `dir`, once every file's blake3 matches the manifest
    /// ([`verify_files`]: what is served is what was published). The model the index was
    /// built with must be among `models` (same name and digest), or opening fails naming the
    /// model.
    pub fn open(dir: &Path, models: &Models) -> Result<Self> {
        let manifest = read_manifest(dir)?;
        verify_files(dir, &manifest)?;
        if !READABLE_FORMATS.contains(&manifest.versions.format) {
            return Err(IndexError::Invalid(format!(
                "index {} has format {}, this quire reads formats {}-{}: rebuild it",
                manifest.index_id,
                manifest.versions.format,
                READABLE_FORMATS.start(),
                READABLE_FORMATS.end()
            )));
        }
        let m = &manifest.embedding;
        let precision = manifest.spec.embedding.precision;
        let embedder = models.resolve_pinned(&m.model_id, m.dim, &m.digest, precision)?;
        let index = Index::open_in_dir(dir.join(BM25_DIR))?;
        bm25::register_analyzers(&index)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS)
            .try_into()?;
        let (_, fields) = bm25::schema(manifest.spec.bm25.analyzer);
        let analyzer = bm25::text_analyzer(manifest.spec.bm25.analyzer)?;
        let vectors = map_file(&dir.join(VECTORS_FILE))?;
        let graph_path = dir.join(GRAPH_FILE);
        let graph = FrozenGraph::from_bytes(&std::fs::read(&graph_path).at(&graph_path)?)?;
        let chunks: Vec<ChunkRecord> = read_jsonl(dir, CHUNKS_FILE)?;
        let docs: Vec<DocRecord> = read_jsonl(dir, DOCS_FILE)?;
        let acls = read_jsonl::<AclRecord>(dir, ACL_FILE)?
            .into_iter()
            .map(|r| r.acl)
            .collect::<Vec<_>>();
        let n = chunks.len();
        let dim = m.dim as usize;
        if graph.len() != n
            || vectors.len() != n * dim * 4
            || acls.len() != docs.len()
            || chunks.iter().any(|c| c.doc as usize >= docs.len())
        {
            return Err(IndexError::Corrupt {
                file: CHUNKS_FILE.into(),
                reason: "tables, vectors and graph disagree on sizes".into(),
            });
        }
        bytemuck::try_cast_slice::<u8, f32>(&vectors).map_err(|e| IndexError::Corrupt {
            file: VECTORS_FILE.into(),
            reason: format!("{e:?}"),
        })?;
        Ok(Self {
            manifest,
            embedder,
            reader,
            fields,
            analyzer,
            vector_side: Arc::new(VectorSide {
                vectors,
                dim,
                graph,
            }),
            chunks,
            docs,
            acls,
            allowed_cache: Mutex::default(),
            chunk_tokens: OnceLock::new(),
            bm25_scratch: lexical::Scratch::default(),
            planner: Planner::Cost,
            bm25_planner: Bm25Planner::Cost,
        })
    }

    /// Choose vector plans with `planner` instead of the cost model (tests and benchmarks that
    /// must exercise one path).
    pub fn with_planner(mut self, planner: Planner) -> Self {
        self.planner = planner;
        self
    }

    /// Choose BM25 plans with `planner` instead of the cost model (tests and benchmarks).
    pub fn with_bm25_planner(mut self, planner: Bm25Planner) -> Self {
        self.bm25_planner = planner;
        self
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The chunk vectors.
    pub fn vectors(&self) -> Vectors<'_> {
        self.vector_side.vectors()
    }

    /// Bytes the allowed-set cache holds: its keys and its sets (at most
    /// [`ALLOWED_CACHE_BYTES`]).
    pub fn allowed_cache_bytes(&self) -> usize {
        self.allowed_cache.lock().map_or(0, |cache| cache.bytes)
    }

    /// The chunks `reader` may read, cached per distinct set of principals (by hash).
    pub fn allowed(&self, reader: &Reader) -> Arc<Allowed> {
        let key = reader_key(reader);
        if let Ok(mut cache) = self.allowed_cache.lock() {
            cache.tick += 1;
            let tick = cache.tick;
            if let Some(entry) = cache.entries.get_mut(&key) {
                entry.1 = tick;
                return entry.0.clone();
            }
        }
        let readable: Vec<bool> = self.acls.iter().map(|acl| acl.admits(reader)).collect();
        let allowed = Arc::new(Allowed::from_fn(self.chunks.len(), |i| {
            readable[self.chunks[i as usize].doc as usize]
        }));
        if let Ok(mut cache) = self.allowed_cache.lock() {
            cache.insert(key, allowed.clone());
        }
        allowed
    }

    /// How [`Self::vector`] answers for `depth` hits among `allowed`: see [`crate::plan`].
    pub fn vector_plan(&self, allowed: &Allowed, depth: usize) -> VectorPlan {
        let exact_below = if self.embedder.graph_friendly() {
            0
        } else {
            let rows = EXACT_SCAN_FLOATS / (self.manifest.embedding.dim as usize).max(1);
            if allowed.count() < self.chunks.len() {
                rows.saturating_mul(2)
            } else {
                rows
            }
        };
        self.planner.plan(
            self.chunks.len(),
            allowed.count(),
            self.manifest.spec.hnsw.ef_search as usize,
            depth,
            exact_below,
        )
    }

    /// Vector top-`depth` among the allowed chunks, by the cheaper of a graph walk and an exact
    /// scan ([`Self::vector_plan`]).
    pub fn vector(&self, query: &[f32], allowed: &Allowed, depth: usize) -> Vec<(u32, f32)> {
        let plan = self.vector_plan(allowed, depth);
        self.vector_side.run(plan, query, allowed, depth)
    }

    /// Embed `text` with the index's own model: a query's vector, the same bits as the text's in
    /// a build, computed on the query pool's threads when they are idle (see
    /// [`search::embed_query`]).
    pub fn embed(&self, text: &str) -> Result<Vec<f32>> {
        Ok(search::embed_query(self.embedder.as_ref(), text)?)
    }

    /// The frozen HNSW graph.
    pub fn graph(&self) -> &FrozenGraph {
        &self.vector_side.graph
    }

    /// The chunk table: line `i` describes chunk ordinal `i`.
    pub fn chunks(&self) -> &[ChunkRecord] {
        &self.chunks
    }

    /// The document table.
    pub fn docs(&self) -> &[DocRecord] {
        &self.docs
    }

    /// The effective ACL of each document, in document-table order.
    pub fn acls(&self) -> &[Acl] {
        &self.acls
    }

    fn chunk_id(&self, ordinal: u32) -> &str {
        &self.chunks[ordinal as usize].chunk_id
    }

    /// The text of chunk `ordinal`, from tantivy's doc store.
    pub fn chunk_text(&self, ordinal: u32) -> Result<String> {
        let stored: TantivyDocument = self.reader.searcher().doc(DocAddress::new(0, ordinal))?;
        Ok(stored
            .get_first(self.fields.body)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned())
    }

    fn hit(&self, f: &fusion::Fused) -> Result<Hit> {
        let chunk = &self.chunks[f.ordinal as usize];
        let doc = &self.docs[chunk.doc as usize];
        let text = self.chunk_text(f.ordinal)?;
        let retriever = |r: Option<(u32, f32)>| r.map(|(rank, score)| RetrieverHit { rank, score });
        Ok(Hit {
            chunk_id: chunk.chunk_id.clone(),
            doc_id: doc.doc_id.clone(),
            title: doc.title.clone(),
            text,
            score: f.score,
            bm25: retriever(f.bm25),
            vector: retriever(f.vector),
            metadata: doc.metadata.clone(),
        })
    }

    /// Which artifact this is.
    pub fn lineage(&self) -> Lineage {
        let m = &self.manifest;
        Lineage {
            index_id: m.index_id.clone(),
            content_digest: m.content_digest.clone(),
            snapshot_id: m.snapshot_id.clone(),
            embedding_model: m.embedding.model_id.clone(),
            embedding_digest: m.embedding.digest.clone(),
            alias: None,
            revision: None,
            arm: None,
        }
    }
}
