//! Work on a blocking thread that stops when the request that started it is gone, and counts
//! against the request limits until it has stopped.
//!
//! A request's future is dropped when its deadline passes (the server's `request_timeout_ms`,
//! or the client's `grpc-timeout`, which tonic enforces) or when its client goes away (the
//! HTTP/2 stream is reset or the connection closes). Blocking work it started on another
//! thread does not stop with it. So [`crate::grpc::Server::handle`] runs every request inside a
//! [`RequestScope`]: a [`Cancel`] flag raised when the request's future is dropped, and the
//! request's concurrency permit. [`crate::api::Local::blocking`] takes the scope onto the
//! blocking thread, so the permit is released when the work ends, not when the caller was
//! answered; long work (an evaluation's queries, a rebuild-check's blocks) asks the flag
//! between steps and stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use quire_core::IndexId;
use quire_index::Progress;
use tokio::sync::OwnedSemaphorePermit;

use crate::error::{Result, ServiceError};

/// Raised once the request that started some work is gone.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Whether the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `DEADLINE_EXCEEDED` naming `what` once cancelled.
    pub fn check(&self, what: &str) -> Result<()> {
        match self.is_cancelled() {
            true => Err(ServiceError::DeadlineExceeded(format!(
                "{what} stopped: its request's deadline passed or its client went away"
            ))),
            false => Ok(()),
        }
    }

    fn raise(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// What a request lends the blocking work it starts: its cancel flag and its concurrency
/// permit (held until the work ends).
#[derive(Clone, Default)]
pub(crate) struct RequestScope {
    pub(crate) cancel: Cancel,
    _permit: Option<Arc<OwnedSemaphorePermit>>,
}

tokio::task_local! {
    static SCOPE: RequestScope;
}

/// Raises its scope's flag when dropped: held by the request's future only.
pub(crate) struct RaiseOnDrop(Cancel);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

impl RequestScope {
    /// A scope holding `permit`, and the guard that cancels it when dropped.
    pub(crate) fn new(permit: Option<OwnedSemaphorePermit>) -> (Self, RaiseOnDrop) {
        let scope = Self {
            cancel: Cancel::default(),
            _permit: permit.map(Arc::new),
        };
        let guard = RaiseOnDrop(scope.cancel.clone());
        (scope, guard)
    }

    /// Run `future` inside this scope.
    pub(crate) async fn run<F: Future>(self, future: F) -> F::Output {
        SCOPE.scope(self, future).await
    }

    /// The scope of the request being handled on this task (a fresh one outside any request:
    /// never cancelled, holding nothing).
    pub(crate) fn current() -> Self {
        SCOPE.try_with(Clone::clone).unwrap_or_default()
    }
}

/// Build progress that also stops when `cancel` is raised.
pub(crate) struct CancellableProgress<P: ?Sized> {
    pub(crate) inner: Arc<P>,
    pub(crate) cancel: Cancel,
}

impl<P: Progress + Send + Sync + ?Sized> Progress for CancellableProgress<P> {
    fn stage(&self, name: &'static str, total: u64) {
        self.inner.stage(name, total);
    }

    fn advance(&self, n: u64) {
        self.inner.advance(n);
    }

    fn embed_cache(&self, hits: u64, misses: u64) {
        self.inner.embed_cache(hits, misses);
    }

    fn reused(&self, stage: &'static str, from: &IndexId) {
        self.inner.reused(stage, from);
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_cancelled() || self.inner.cancelled()
    }
}
