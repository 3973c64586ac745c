//! Traces: `[telemetry] otlp_endpoint` in server.toml (exported by [`install`]), and
//! the W3C trace context a caller sends (`traceparent` in gRPC metadata or HTTP headers), so a
//! request's span continues the caller's trace. Spans carry ids, names and counts, never query
//! or document text.

mod export;
mod sampling;

pub use export::{Telemetry, install};
pub(crate) use sampling::TraceSampler;
pub use sampling::{DEFAULT_SAMPLE_RATIO, UNTRACED_TARGET};

use opentelemetry::propagation::Extractor;
use serde::Deserialize;
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `[telemetry]` as written in server.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    otlp_endpoint: Option<String>,
    sample_ratio: Option<f64>,
}

/// `[telemetry]`, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct TelemetryConfig {
    /// Export traces over OTLP/gRPC to this collector (`otlp_endpoint`).
    pub otlp_endpoint: Option<String>,
    /// The share of requests traced when the caller's `traceparent` does not decide
    /// (`sample_ratio`, 0 to 1, default [`DEFAULT_SAMPLE_RATIO`]).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            sample_ratio: DEFAULT_SAMPLE_RATIO,
        }
    }
}

impl RawTelemetry {
    /// Checked; `Err` names the field and why.
    pub(crate) fn check(self) -> Result<TelemetryConfig, (&'static str, String)> {
        if let Some(url) = &self.otlp_endpoint
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err((
                "telemetry.otlp_endpoint",
                format!("{url:?}: expected http://HOST:PORT or https://HOST:PORT (OTLP/gRPC)"),
            ));
        }
        let sample_ratio = self.sample_ratio.unwrap_or(DEFAULT_SAMPLE_RATIO);
        if !(0.0..=1.0).contains(&sample_ratio) {
            return Err((
                "telemetry.sample_ratio",
                format!("{sample_ratio}: expected a share from 0 to 1"),
            ));
        }
        Ok(TelemetryConfig {
            otlp_endpoint: self.otlp_endpoint,
            sample_ratio,
        })
    }
}

/// gRPC metadata (or HTTP headers) as the propagator reads them.
struct Metadata<'a>(&'a MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Make `span` continue the trace the request's `traceparent` names, if it names one (with
/// the propagator the binary installed; none installed: nothing happens).
pub(crate) fn continue_trace(span: &tracing::Span, metadata: &MetadataMap) {
    if metadata.get("traceparent").is_none() {
        return;
    }
    let context =
        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Metadata(metadata)));
    let _ = span.set_parent(context);
}
