//! Progress of a stage that runs alongside others.

use std::sync::Mutex;

use quire_core::IndexId;

use super::Progress;

/// The progress of a stage that runs alongside the stages reported before it, held back until
/// [`Background::show`] announces it. Consumers of [`Progress`] then still see one stage after
/// another: the held-back work arrives as one advance, the rest as it happens.
pub(super) struct Background<'p> {
    inner: &'p dyn Progress,
    name: &'static str,
    total: u64,
    state: Mutex<Held>,
}

#[derive(Default)]
struct Held {
    shown: bool,
    done: u64,
    reused_from: Option<IndexId>,
}

impl<'p> Background<'p> {
    pub(super) fn new(inner: &'p dyn Progress, name: &'static str, total: u64) -> Self {
        Self {
            inner,
            name,
            total,
            state: Mutex::new(Held::default()),
        }
    }

    /// Announce the stage with what it has done so far, and forward everything from now on.
    pub(super) fn show(&self) {
        let mut held = self.held();
        if held.shown {
            return;
        }
        self.inner.stage(self.name, self.total);
        if let Some(from) = held.reused_from.take() {
            self.inner.reused(self.name, &from);
        }
        if held.done > 0 {
            self.inner.advance(held.done);
        }
        held.shown = true;
    }

    fn held(&self) -> std::sync::MutexGuard<'_, Held> {
        // A panic while the lock was held loses at most a progress count.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Progress for Background<'_> {
    /// The stage is announced by [`Background::show`], not by the work.
    fn stage(&self, _: &'static str, _: u64) {}

    fn advance(&self, n: u64) {
        let mut held = self.held();
        if held.shown {
            self.inner.advance(n);
        } else {
            held.done += n;
        }
    }

    fn embed_cache(&self, hits: u64, misses: u64) {
        self.inner.embed_cache(hits, misses);
    }

    fn cancelled(&self) -> bool {
        self.inner.cancelled()
    }

    fn reused(&self, _: &'static str, from: &IndexId) {
        let mut held = self.held();
        if held.shown {
            self.inner.reused(self.name, from);
        } else {
            held.reused_from = Some(from.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Log(Mutex<Vec<String>>);

    impl Progress for Log {
        fn stage(&self, name: &'static str, total: u64) {
            self.0.lock().unwrap().push(format!("stage {name} {total}"));
        }
        fn advance(&self, n: u64) {
            self.0.lock().unwrap().push(format!("advance {n}"));
        }
    }

    #[test]
    fn held_back_work_arrives_after_the_stage_then_the_rest_as_it_happens() {
        let log = Log::default();
        let background = Background::new(&log, "bm25", 10);
        background.advance(3);
        background.advance(4);
        log.stage("hnsw", 5);
        log.advance(5);
        background.show();
        background.advance(3);
        assert_eq!(
            *log.0.lock().unwrap(),
            [
                "stage hnsw 5",
                "advance 5",
                "stage bm25 10",
                "advance 7",
                "advance 3"
            ]
        );
    }
}
