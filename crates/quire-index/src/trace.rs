//! Which retrieval steps open a span. A server traces a share of its requests (see
//! quire-server's telemetry); an untraced request's spans carry [`UNTRACED_TARGET`], which the
//! trace exporter's filter turns off. A step opens its span only under a span of a traced
//! request, so an untraced request costs the exporter nothing and no step of it becomes a
//! trace of its own.

use tracing::Span;

/// The tracing target of an untraced request's spans (log lines show them as usual).
pub const UNTRACED_TARGET: &str = "quire_server::untraced";

/// Whether spans opened under `parent` belong to a traced request: `parent` is open for some
/// layer and is not an untraced request's.
pub fn within_trace(parent: &Span) -> bool {
    parent
        .metadata()
        .is_some_and(|m| m.target() != UNTRACED_TARGET)
}

/// `open()`'s span when `parent` belongs to a traced request, else no span.
pub fn step(parent: &Span, open: impl FnOnce() -> Span) -> Span {
    if within_trace(parent) {
        open()
    } else {
        Span::none()
    }
}
