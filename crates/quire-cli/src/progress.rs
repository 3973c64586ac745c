//! Build progress on the terminal: one bar per stage, on stderr, hidden when not a terminal.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use quire_index::Progress;

/// Stage-by-stage progress bars.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
    enabled: bool,
}

impl Bars {
    /// Bars that draw only when `enabled`.
    pub fn new(enabled: bool) -> Self {
        Self {
            bar: Mutex::new(None),
            enabled,
        }
    }

    /// Finish the last stage's bar.
    pub fn finish(&self) {
        if let Some(bar) = self.bar.lock().ok().and_then(|mut b| b.take()) {
            bar.finish();
        }
    }
}

impl Progress for Bars {
    fn stage(&self, name: &'static str, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = ProgressBar::new(total).with_prefix(format!("{name:>6}"));
        let style =
            ProgressStyle::with_template("{prefix} [{bar:32}] {pos}/{len} {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut slot) = self.bar.lock()
            && let Some(previous) = slot.replace(bar)
        {
            previous.finish();
        }
    }

    fn embed_cache(&self, hits: u64, misses: u64) {
        if let Some(bar) = self.bar.lock().ok().as_ref().and_then(|b| b.as_ref()) {
            bar.println(format!(" embed cache: {hits} hits, {misses} misses"));
        }
    }

    fn reused(&self, stage: &'static str, from: &quire_core::IndexId) {
        if let Some(bar) = self.bar.lock().ok().as_ref().and_then(|b| b.as_ref()) {
            bar.println(format!(
                " {stage}: reused from {from} (same inputs, files verified)"
            ));
        }
    }

    fn advance(&self, n: u64) {
        if let Some(bar) = self.bar.lock().ok().as_ref().and_then(|b| b.as_ref()) {
            bar.inc(n);
        }
    }
}
