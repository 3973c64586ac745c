//! Which requests are traced. Exporting a Retrieve's six spans costs far more than a small
//! index's query (measured by the load bench), so a server traces the requests its callers
//! trace (a `traceparent` with the sampled flag) and a fixed share of the rest, counted rather
//! than drawn so the share is exact and runs repeat. An untraced request's spans never reach
//! the exporter's layer (see [`UNTRACED_TARGET`]).

use std::sync::atomic::{AtomicU64, Ordering};

use tonic::metadata::MetadataMap;

/// The tracing target of an untraced request's spans (`rpc`, `retrieve`): the exporter's
/// filter turns it off, and the retrieval steps open no span under it
/// (`quire_index::trace::within_trace`), so nothing of the request reaches the exporter; the
/// log lines are the same either way.
pub use quire_index::trace::UNTRACED_TARGET;

/// The share of requests without a caller's decision that are traced, by default.
pub const DEFAULT_SAMPLE_RATIO: f64 = 0.01;

/// Parts per million: the ratio as the integer the counter works in.
const PPM: u128 = 1_000_000;

/// Decides, per request, whether its spans are exported.
#[derive(Debug)]
pub(crate) struct TraceSampler {
    /// `None`: nothing is exported, so every request takes the ordinary span.
    ratio_ppm: Option<u128>,
    seen: AtomicU64,
}

impl TraceSampler {
    /// With `exporting` off every request is "traced" (its spans go to the log layer as
    /// always); with it on, `ratio` (0..=1) of the requests without a caller's decision.
    pub(crate) fn new(exporting: bool, ratio: f64) -> Self {
        Self {
            ratio_ppm: exporting.then(|| (ratio.clamp(0.0, 1.0) * PPM as f64).round() as u128),
            seen: AtomicU64::new(0),
        }
    }

    /// Trace this request? The caller's `traceparent` decides when it is valid; otherwise
    /// the n-th request is traced when the ratio's running total crosses an integer.
    pub(crate) fn sample(&self, metadata: &MetadataMap) -> bool {
        let Some(ppm) = self.ratio_ppm else {
            return true;
        };
        if let Some(sampled) = metadata
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(caller_sampled)
        {
            return sampled;
        }
        let n = u128::from(self.seen.fetch_add(1, Ordering::Relaxed));
        (n + 1) * ppm / PPM > n * ppm / PPM
    }
}

/// The sampled flag of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex flags>`); `None`
/// when it is not one.
fn caller_sampled(traceparent: &str) -> Option<bool> {
    let parts: Vec<&str> = traceparent.trim().split('-').collect();
    let [version, trace_id, parent_id, flags] = parts.as_slice() else {
        return None;
    };
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !(hex(version, 2) && hex(trace_id, 32) && hex(parent_id, 16) && hex(flags, 2)) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(flags & 1 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_traceparent(value: &str) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        metadata.insert("traceparent", value.parse().unwrap());
        metadata
    }

    fn traced_of(sampler: &TraceSampler, requests: usize) -> usize {
        let empty = MetadataMap::new();
        (0..requests).filter(|_| sampler.sample(&empty)).count()
    }

    #[test]
    fn the_ratio_is_exact_over_any_run_of_requests() {
        assert_eq!(traced_of(&TraceSampler::new(true, 0.01), 1000), 10);
        assert_eq!(traced_of(&TraceSampler::new(true, 0.25), 1000), 250);
        assert_eq!(traced_of(&TraceSampler::new(true, 1.0), 1000), 1000);
        assert_eq!(traced_of(&TraceSampler::new(true, 0.0), 1000), 0);
        // Spread, not bunched: one in every 100 consecutive requests.
        let sampler = TraceSampler::new(true, 0.01);
        for _ in 0..5 {
            assert_eq!(traced_of(&sampler, 100), 1);
        }
    }

    #[test]
    fn without_an_exporter_every_request_takes_the_ordinary_span() {
        assert_eq!(traced_of(&TraceSampler::new(false, 0.0), 100), 100);
        let unsampled = with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(TraceSampler::new(false, 0.0).sample(&unsampled));
    }

    #[test]
    fn the_callers_flag_decides_and_does_not_use_up_the_share() {
        let sampler = TraceSampler::new(true, 0.0);
        let sampled = with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let unsampled = with_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        assert!(sampler.sample(&sampled));
        assert!(!TraceSampler::new(true, 1.0).sample(&unsampled));
        let half = TraceSampler::new(true, 0.5);
        assert!(half.sample(&sampled));
        assert_eq!(traced_of(&half, 10), 5);
    }

    #[test]
    fn a_malformed_traceparent_is_no_decision() {
        for bad in [
            "",
            "00-xyz-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(caller_sampled(bad), None, "{bad:?}");
        }
        let sampler = TraceSampler::new(true, 1.0);
        assert!(sampler.sample(&with_traceparent("00-xyz-00f067aa0ba902b7-00")));
    }
}
