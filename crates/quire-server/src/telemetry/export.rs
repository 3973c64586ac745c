//! Where logs and traces go: the log lines on stderr (`RUST_LOG`), and with `[telemetry]
//! otlp_endpoint` in server.toml every quire span (each request's, its retrieval steps') exported
//! over OTLP/gRPC, continuing the caller's W3C trace context. The binary installs this once per
//! process; so does the load bench, which measures what exporting costs a Retrieve.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use super::UNTRACED_TARGET;

/// The trace exporter, when there is one: [`Telemetry::shutdown`] sends what is buffered.
pub struct Telemetry(Option<SdkTracerProvider>);

/// Install the log lines at `default_level` (unless `RUST_LOG` says otherwise) and, with an
/// endpoint, the OTLP/gRPC trace exporter (which needs the tokio runtime: call this on it).
/// The process-wide subscriber is set once; a second call leaves the first one in place.
pub fn install(
    default_level: &str,
    otlp_endpoint: Option<&str>,
) -> Result<Telemetry, opentelemetry_otlp::ExporterBuildError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let Some(endpoint) = otlp_endpoint else {
        let _ = tracing_subscriber::registry().with(logs).try_init();
        return Ok(Telemetry(None));
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()?;
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
    // The request spans (info) and the retrieval and build steps (debug) of quire's crates,
    // but not the spans of requests the sampler passed over (their steps open no span).
    let quire = Targets::new()
        .with_target("quire_server", Level::INFO)
        .with_target(UNTRACED_TARGET, LevelFilter::OFF)
        .with_target("quire_index", Level::DEBUG)
        .with_target("quire_store", Level::DEBUG);
    // No source location or thread attributes: five per span that a trace reader does not need
    // (the span names say where), and about a fifth of a traced request's export cost.
    let traces = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("quire"))
        .with_location(false)
        .with_threads(false)
        .with_filter(quire);
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init();
    tracing::info!(endpoint, "exporting traces over OTLP/gRPC");
    Ok(Telemetry(Some(provider)))
}

impl Telemetry {
    /// Export what is buffered and stop (blocking: call it off the async threads).
    pub fn shutdown(self) {
        if let Some(provider) = self.0
            && let Err(e) = provider.shutdown()
        {
            tracing::warn!(error = %e, "exporting the last traces failed");
        }
    }
}
