//! Answering a query: embed it, run the retrievers (side by side when cores are idle), fuse,
//! and fetch text for the final hits only.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::Instant;

use memmap2::Mmap;
use quire_core::spec::FusionMethod;
use quire_embed::{EmbedError, Embedder};

use super::OpenIndex;
use crate::ann::{self, Allowed, Vectors};
use crate::cpu::CpuClock;
use crate::error::{IndexError, Result};
use crate::fusion;
use crate::graph::FrozenGraph;
use crate::plan::VectorPlan;
use crate::query::{Mode, Query, Response, Timings};

/// What a vector search reads, behind an `Arc` so a query can hand its vector side to another
/// thread.
pub(super) struct VectorSide {
    pub(super) vectors: Mmap,
    pub(super) dim: usize,
    pub(super) graph: FrozenGraph,
}

impl VectorSide {
    pub(super) fn vectors(&self) -> Vectors<'_> {
        // Checked at open: the map is page-aligned and a whole number of f32 rows.
        Vectors::new(
            bytemuck::try_cast_slice(&self.vectors).unwrap_or(&[]),
            self.dim,
        )
    }

    /// Top `depth` among `allowed` by `plan`.
    pub(super) fn run(
        &self,
        plan: VectorPlan,
        query: &[f32],
        allowed: &Allowed,
        depth: usize,
    ) -> Vec<(u32, f32)> {
        let filter = (allowed.count() < self.graph.len()).then_some(allowed);
        match plan {
            VectorPlan::Empty => Vec::new(),
            VectorPlan::Exact { .. } => ann::exact(self.vectors(), query, filter, depth),
            VectorPlan::Walk { ef } => {
                ann::search(&self.graph, self.vectors(), query, depth, ef, filter)
            }
        }
    }
}

/// A query's vector search, owned so the query pool can run it.
struct VectorTask {
    side: Arc<VectorSide>,
    plan: VectorPlan,
    query: Vec<f32>,
    allowed: Arc<Allowed>,
    depth: usize,
    span: tracing::Span,
}

impl VectorTask {
    fn run(&self) -> Measured {
        let _span = self.span.enter();
        timed(|| {
            self.side
                .run(self.plan, &self.query, &self.allowed, self.depth)
        })
    }
}

/// `search`'s hits, the wall microseconds it took and the CPU microseconds of this thread.
fn timed(search: impl FnOnce() -> Vec<(u32, f32)>) -> Measured {
    let t = Instant::now();
    let cpu = CpuClock::start();
    let hits = search();
    Measured {
        hits,
        wall_us: t.elapsed().as_micros() as u64,
        cpu_us: cpu.elapsed_us(),
        elsewhere: false,
    }
}

/// A [`VectorTask`] offered to the query pool: whichever thread claims it first runs it, so a
/// query whose BM25 side finishes before a pool thread wakes runs the vector side itself
/// instead of waiting for the wake-up.
struct Handoff {
    task: VectorTask,
    claimed: AtomicBool,
    result: Mutex<Option<std::thread::Result<Measured>>>,
    done: Condvar,
}

impl Handoff {
    /// Run the task unless another thread claimed it. A panic is caught and kept for
    /// [`Self::wait`], so it reaches the query's own thread as it would without the handoff
    /// (and neither kills a pool thread nor leaves the query waiting).
    fn try_run(&self, elsewhere: bool) {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return;
        }
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Measured {
            elsewhere,
            ..self.task.run()
        }));
        *self.result.lock().unwrap_or_else(PoisonError::into_inner) = Some(outcome);
        self.done.notify_all();
    }

    /// The result, waiting for the thread that claimed the task.
    fn wait(&self) -> Measured {
        let mut result = self.result.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            match result.take() {
                Some(Ok(timed)) => return timed,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => {}
            }
            result = self
                .done
                .wait(result)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Queries being answered in this process now (every index).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts a query in flight until dropped.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The threads that run a hybrid query's vector side next to its BM25 side: one per core, kept
/// apart from the build's pool so a build in the same process cannot queue ahead of a query.
fn query_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores())
            .thread_name(|i| format!("quire-query-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// `embedder`'s vector for one query. While at most half the cores are answering queries, the
/// model runs on the query pool, where it may split each step over two threads (the bits do not
/// change); under load it runs on the caller's thread alone, since a second thread per query would
/// only queue behind busy cores.
pub(super) fn embed_query(
    embedder: &dyn Embedder,
    text: &str,
) -> std::result::Result<Vec<f32>, EmbedError> {
    embed_query_measured(embedder, text).map(|(vector, _, _)| vector)
}

/// [`embed_query`], with the CPU microseconds of the thread that ran it (a half of a split pass
/// that another pool thread stole is not counted) and whether that was a pool thread rather than
/// the caller.
fn embed_query_measured(
    embedder: &dyn Embedder,
    text: &str,
) -> std::result::Result<(Vec<f32>, u64, bool), EmbedError> {
    let idle = IN_FLIGHT.load(Ordering::Relaxed) * 2 <= cores();
    let measured = || {
        let clock = CpuClock::start();
        let vector = embedder.embed_query(text);
        (vector, clock.elapsed_us())
    };
    match query_pool() {
        Some(pool) if idle && rayon::current_thread_index().is_none() => {
            let (vector, cpu_us) = pool.install(measured);
            Ok((vector?, cpu_us, true))
        }
        _ => {
            let (vector, cpu_us) = measured();
            Ok((vector?, cpu_us, false))
        }
    }
}

/// One retriever's candidates and what they cost.
struct Measured {
    hits: Vec<(u32, f32)>,
    /// Wall-clock microseconds.
    wall_us: u64,
    /// CPU microseconds of the thread that ran it.
    cpu_us: u64,
    /// Whether a thread other than the query's ran it (its CPU is not in the query thread's).
    elsewhere: bool,
}

impl Measured {
    fn nothing() -> Self {
        Self {
            hits: Vec::new(),
            wall_us: 0,
            cpu_us: 0,
            elsewhere: false,
        }
    }
}

impl OpenIndex {
    /// Answer a query: the `q.k` best chunks.
    pub fn search(&self, q: &Query) -> Result<Response> {
        self.answer(q, false, None, None)
    }

    /// Answer a query at document level: the best chunk of each of the `q.k` best documents, a
    /// document ranking by its best chunk. When the candidate lists (`q.candidates`, or the
    /// spec's) hold fewer than `q.k` distinct documents, they are deepened fourfold until they
    /// do or the retrievers run out, so `k` documents come back whenever `k` are readable and
    /// match. Evaluation against document-level judgments uses this.
    pub fn search_documents(&self, q: &Query) -> Result<Response> {
        self.answer(q, true, None, None)
    }

    /// Answer `q` among the `allowed` chunks with a query vector already computed by this
    /// index's model (`None` embeds `q.text`); `q.reader` is not consulted. For callers that
    /// hold both, such as benchmarks timing retrieval without the model.
    pub fn search_in(
        &self,
        q: &Query,
        query_vector: Option<&[f32]>,
        allowed: Arc<Allowed>,
    ) -> Result<Response> {
        if query_vector.is_some_and(|v| v.len() != self.manifest.embedding.dim as usize) {
            return Err(IndexError::Invalid(format!(
                "query vector has {} dimensions, the index {}",
                query_vector.map_or(0, <[f32]>::len),
                self.manifest.embedding.dim
            )));
        }
        self.answer(q, false, query_vector, Some(allowed))
    }

    fn answer(
        &self,
        q: &Query,
        by_document: bool,
        given_vector: Option<&[f32]>,
        given_allowed: Option<Arc<Allowed>>,
    ) -> Result<Response> {
        let started = Instant::now();
        let thread_cpu = CpuClock::start();
        let _in_flight = InFlight::enter();
        let mut timings = Timings::default();
        let mut cpu = Timings::default();
        // CPU of the vector side when another thread ran it.
        let mut cpu_elsewhere = 0;
        let spec = &self.manifest.spec;
        let mut depth = q
            .candidates
            .unwrap_or(spec.fusion.candidates as usize)
            .max(q.k);
        let allowed = given_allowed.unwrap_or_else(|| self.allowed(&q.reader));
        let embedded;
        let query_vector = match (q.mode, given_vector) {
            (Mode::Bm25, _) => None,
            (_, Some(v)) => Some(v),
            (_, None) => {
                let t = Instant::now();
                let (vector, cpu_us, elsewhere) =
                    crate::trace::step(&tracing::Span::current(), || tracing::debug_span!("embed"))
                        .in_scope(|| embed_query_measured(self.embedder.as_ref(), &q.text))?;
                embedded = vector;
                timings.embed = t.elapsed().as_micros() as u64;
                cpu.embed = cpu_us;
                if elsewhere {
                    cpu_elsewhere += cpu_us;
                }
                Some(embedded.as_slice())
            }
        };
        let mut fused = loop {
            let (bm25_side, vector_side) = self.retrieve(q, &allowed, query_vector, depth)?;
            timings.bm25 += bm25_side.wall_us;
            timings.vector += vector_side.wall_us;
            cpu.bm25 += bm25_side.cpu_us;
            cpu.vector += vector_side.cpu_us;
            if vector_side.elsewhere {
                cpu_elsewhere += vector_side.cpu_us;
            }
            let (bm25, vector) = (bm25_side.hits, vector_side.hits);
            let _span =
                crate::trace::step(&tracing::Span::current(), || tracing::debug_span!("fusion"))
                    .entered();
            let t = Instant::now();
            let clock = CpuClock::start();
            let mut fused = match (q.mode, q.fusion.unwrap_or(spec.fusion.method)) {
                (Mode::Bm25, _) => fusion::single(&bm25, fusion::Source::Bm25),
                (Mode::Vector, _) => fusion::single(&vector, fusion::Source::Vector),
                (Mode::Hybrid, FusionMethod::Rrf) => fusion::rrf(&bm25, &vector, spec.fusion.rrf_k),
                (Mode::Hybrid, FusionMethod::Weighted) => {
                    fusion::weighted(&bm25, &vector, spec.fusion.alpha)
                }
            };
            if by_document {
                fusion::sort_best_first(&mut fused, |ordinal| self.chunk_id(ordinal));
                let mut seen = HashSet::new();
                fused.retain(|f| seen.insert(self.chunks[f.ordinal as usize].doc));
            } else {
                fusion::keep_best(&mut fused, q.k, |ordinal| self.chunk_id(ordinal));
            }
            timings.fusion += t.elapsed().as_micros() as u64;
            cpu.fusion += clock.elapsed_us();
            let exhausted = bm25.len() < depth && vector.len() < depth;
            if !by_document || fused.len() >= q.k || exhausted || depth >= self.chunks.len() {
                break fused;
            }
            depth = depth.saturating_mul(4).min(self.chunks.len());
        };
        let _span =
            crate::trace::step(&tracing::Span::current(), || tracing::debug_span!("fusion"))
                .entered();
        let t = Instant::now();
        let clock = CpuClock::start();
        fused.truncate(q.k);
        let hits = fused
            .iter()
            .map(|f| self.hit(f))
            .collect::<Result<Vec<_>>>()?;
        timings.fusion += t.elapsed().as_micros() as u64;
        cpu.fusion += clock.elapsed_us();
        timings.total = started.elapsed().as_micros() as u64;
        cpu.total = thread_cpu.elapsed_us() + cpu_elsewhere;
        Ok(Response {
            hits,
            lineage: self.lineage(),
            nothing_readable: allowed.count() == 0,
            timings_us: timings,
            cpu_us: cpu,
            request_id: None,
        })
    }

    /// Both retrievers' top `depth`. A hybrid query offers its vector side to the query pool
    /// while at most half the cores are answering queries, runs BM25, then takes the vector side
    /// back if no pool thread has started it: so it waits for the slower side when a core is
    /// free and costs one atomic swap when none is. Under load the two run one after the other,
    /// since a second thread per query would only add handoffs to cores that are already busy.
    fn retrieve(
        &self,
        q: &Query,
        allowed: &Arc<Allowed>,
        query_vector: Option<&[f32]>,
        depth: usize,
    ) -> Result<(Measured, Measured)> {
        let parent = tracing::Span::current();
        let bm25 = || -> Result<Measured> {
            if q.mode == Mode::Vector {
                return Ok(Measured::nothing());
            }
            let _span = crate::trace::step(
                &parent,
                || tracing::debug_span!(parent: &parent, "bm25", depth),
            )
            .entered();
            let t = Instant::now();
            let clock = CpuClock::start();
            let hits = self.bm25_in(&q.text, Some(allowed), depth)?;
            Ok(Measured {
                hits,
                wall_us: t.elapsed().as_micros() as u64,
                cpu_us: clock.elapsed_us(),
                elsewhere: false,
            })
        };
        let Some(query_vector) = query_vector else {
            return Ok((bm25()?, Measured::nothing()));
        };
        let plan = self.vector_plan(allowed, depth);
        let span = crate::trace::step(
            &parent,
            || tracing::debug_span!(parent: &parent, "vector", depth, allowed = allowed.count()),
        );
        let idle = IN_FLIGHT.load(Ordering::Relaxed) * 2 <= cores();
        match query_pool() {
            Some(pool) if q.mode == Mode::Hybrid && idle => {
                // Only a handed-off search needs owned copies of what it reads.
                let handoff = Arc::new(Handoff {
                    task: VectorTask {
                        side: self.vector_side.clone(),
                        plan,
                        query: query_vector.to_vec(),
                        allowed: allowed.clone(),
                        depth,
                        span,
                    },
                    claimed: AtomicBool::new(false),
                    result: Mutex::new(None),
                    done: Condvar::new(),
                });
                let offered = handoff.clone();
                pool.spawn(move || {
                    offered.try_run(true);
                });
                let bm25_side = bm25();
                // Take the vector side back unless a pool thread is running it already.
                handoff.try_run(false);
                Ok((bm25_side?, handoff.wait()))
            }
            _ => {
                let bm25_side = bm25()?;
                let _span = span.enter();
                let vector_side =
                    timed(|| self.vector_side.run(plan, query_vector, allowed, depth));
                Ok((bm25_side, vector_side))
            }
        }
    }
}
