//! Where logs and traces go: the log lines on stderr (`RUST_LOG`), and with `[telemetry]
//! otlp_endpoint` in server.toml every quire span (each request's, its retrieval steps') exported
//! over OTLP/gRPC, continuing the caller's W3C trace context.

use anyhow::{Context, Result};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The trace exporter, when there is one: [`Telemetry::shutdown`] sends what is buffered.
pub(crate) struct Telemetry(Option<SdkTracerProvider>);

/// Install the log lines at `default_level` (unless `RUST_LOG` says otherwise) and, with an
/// endpoint, the OTLP/gRPC trace exporter (which needs the tokio runtime: call this on it).
pub(crate) fn init(default_level: &str, otlp_endpoint: Option<&str>) -> Result<Telemetry> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let Some(endpoint) = otlp_endpoint else {
        tracing_subscriber::registry().with(logs).init();
        return Ok(Telemetry(None));
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .with_context(|| format!("the OTLP exporter for {endpoint}"))?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name("quire")
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    opentelemetry::global::set_text_map_propagator(
        opentelemetry_sdk::propagation::TraceContextPropagator::new(),
    );
    // The request spans (info) and the retrieval and build steps (debug) of quire's crates.
    let quire = Targets::new()
        .with_target("quire_server", Level::INFO)
        .with_target("quire_index", Level::DEBUG)
        .with_target("quire_store", Level::DEBUG);
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("quire"))
        .with_filter(quire);
    tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .init();
    tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
    Ok(Telemetry(Some(provider)))
}

impl Telemetry {
    /// Export what is buffered and stop (blocking: call it off the async threads).
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last traces failed");
        }
    }
}
