//! The bridge from quire's synchronous traits (the registry, the artifact store) to async
//! clients (tokio-postgres, object_store): the client owns a small tokio runtime (one worker
//! thread) that drives every connection's socket, and a caller waits for a request on its own
//! thread.
//!
//! [`Bridge::block_on`] polls the request's future on the calling thread, parking between
//! polls, with the client's runtime entered so that connections, timers and pools register
//! with it. The future itself only exchanges messages with the connection tasks running on the
//! client's worker, so it needs no runtime of the caller's: the same call works from a plain
//! thread (the CLI), from tokio's blocking pool (the server's `spawn_blocking`) and even from
//! a worker of another runtime, where tokio's own `block_on` would panic. Waiting blocks the
//! caller's thread, as a redb commit's fsync does.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// A client's runtime; shut down in the background when dropped (so dropping a client inside
/// an async context never blocks or panics).
#[derive(Debug)]
pub struct Bridge {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Bridge {
    /// Start the runtime, its worker thread named `thread`.
    pub fn new(thread: &str) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(thread)
            .enable_io()
            .enable_time()
            .build()?;
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Run `future` to completion on this thread, with the client's runtime entered.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        let _entered = self.runtime.as_ref().map(|r| r.enter());
        wait(future)
    }

    /// Run `future` in the background on the client's runtime, until it ends or the bridge is
    /// dropped (a client's long-lived task, such as a listening connection).
    pub fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        if let Some(runtime) = &self.runtime {
            drop(runtime.spawn(future));
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Wakes a parked thread.
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Poll `future` on this thread until it is ready, parking while it waits.
fn wait<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_completes_on_a_plain_thread_and_inside_another_runtime() {
        let bridge = Bridge::new("test").expect("runtime");
        // Lazily, as every future a client waits for is: created inside `block_on`.
        let sleep = || async { tokio::time::sleep(std::time::Duration::from_millis(5)).await };
        bridge.block_on(sleep());
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("outer runtime");
        outer.block_on(async { bridge.block_on(sleep()) });
        // Dropping the bridge inside an async context does not panic.
        outer.block_on(async move { drop(bridge) });
    }
}
