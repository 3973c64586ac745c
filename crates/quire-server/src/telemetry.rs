//! Traces: `[telemetry] otlp_endpoint` in server.toml (the binary installs the exporter), and
//! the W3C trace context a caller sends (`traceparent` in gRPC metadata or HTTP headers), so a
//! request's span continues the caller's trace. Spans carry ids, names and counts, never query
//! or document text.

use opentelemetry::propagation::Extractor;
use serde::Deserialize;
use tonic::metadata::MetadataMap;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `[telemetry]` as written in server.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    otlp_endpoint: Option<String>,
}

impl RawTelemetry {
    /// The OTLP/gRPC collector to export traces to, if any; `Err` names the field and why.
    pub(crate) fn check(self) -> Result<Option<String>, (&'static str, String)> {
        match self.otlp_endpoint {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => Err((
                "telemetry.otlp_endpoint",
                format!("{url:?}: expected http://HOST:PORT or https://HOST:PORT (OTLP/gRPC)"),
            )),
            other => Ok(other),
        }
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
