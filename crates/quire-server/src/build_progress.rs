//! Progress of builds run for gRPC callers: forwarded into a build's response stream, or
//! bounded by a deadline (a rebuild-check); both say when the work should stop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use quire_index::Progress;
use quire_proto::pb;
use tokio::sync::mpsc;
use tonic::Status;

/// Build progress forwarded into the response stream. Advances carry the running total, so a
/// dropped one (the channel being full) loses nothing. The build is cancelled once the client
/// has gone (the stream's receiver dropped) or its deadline (`grpc-timeout`) has passed.
pub(crate) struct StreamProgress {
    pub(crate) tx: mpsc::Sender<Result<pb::BuildIndexEvent, Status>>,
    pub(crate) done: AtomicU64,
    pub(crate) deadline: Option<Instant>,
}

/// The deadline a client set on its call (`grpc-timeout`: up to 8 digits and a unit), counted
/// from `now`.
pub(crate) fn client_deadline(
    metadata: &tonic::metadata::MetadataMap,
    now: Instant,
) -> Option<Instant> {
    let text = metadata.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = (digits.len() <= 8).then(|| digits.parse().ok())??;
    let timeout = match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    };
    now.checked_add(timeout)
}

/// Progress of work that must stop at a deadline (a rebuild-check within its request's time),
/// holding the build slot for as long as the work runs.
pub(crate) struct DeadlineProgress {
    pub(crate) deadline: Instant,
    pub(crate) _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Progress for DeadlineProgress {
    fn stage(&self, _: &'static str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn cancelled(&self) -> bool {
        Instant::now() >= self.deadline
    }
}

impl StreamProgress {
    pub(crate) fn event(
        event: pb::build_index_event::Event,
    ) -> Result<pb::BuildIndexEvent, Status> {
        Ok(pb::BuildIndexEvent { event: Some(event) })
    }
}

impl Progress for StreamProgress {
    fn stage(&self, name: &'static str, total: u64) {
        self.done.store(0, Ordering::Relaxed);
        let _ = self
            .tx
            .blocking_send(Self::event(pb::build_index_event::Event::Stage(
                pb::BuildStage {
                    name: name.into(),
                    total,
                },
            )));
    }

    fn advance(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        let _ = self
            .tx
            .try_send(Self::event(pb::build_index_event::Event::Advance(
                pb::BuildAdvance { done },
            )));
    }

    fn embed_cache(&self, hits: u64, misses: u64) {
        let _ = self
            .tx
            .blocking_send(Self::event(pb::build_index_event::Event::EmbedCache(
                pb::BuildEmbedCache { hits, misses },
            )));
    }

    fn cancelled(&self) -> bool {
        self.tx.is_closed() || self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    fn reused(&self, stage: &'static str, from: &quire_core::IndexId) {
        let _ = self
            .tx
            .blocking_send(Self::event(pb::build_index_event::Event::Reused(
                pb::BuildReused {
                    stage: stage.into(),
                    from_index: from.to_string(),
                },
            )));
    }
}
