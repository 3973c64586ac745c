//! The error type of quire's services, and its one mapping to gRPC status codes.

use quire_index::IndexError;
use quire_store::StoreError;
use thiserror::Error;

/// What a service call can fail with. Every variant maps to exactly one gRPC code.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// The request is malformed or names an impossible value.
    #[error("{0}")]
    InvalidArgument(String),
    /// The target does not exist.
    #[error("{0}")]
    NotFound(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials, insufficient role.
    #[error("{0}")]
    PermissionDenied(String),
    /// The system is not in a state that allows the operation (stored data fails verification,
    /// the data dir is busy, a model is missing).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A limit was reached: queue, concurrency, size.
    #[error("{0}")]
    ResourceExhausted(String),
    /// The request ran out of time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// The server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// A bug or an I/O failure; the message is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The longest part of a request's value quoted back in an error message.
const QUOTED_CHARS: usize = 200;

/// `value` for an error message: Debug-quoted, cut after [`QUOTED_CHARS`] characters.
pub(crate) fn quoted(value: &str) -> String {
    match value.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}... ({} bytes)", &value[..cut], value.len()),
        None => format!("{value:?}"),
    }
}

/// Shorthand for results of service calls.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        let message = e.to_string();
        match e {
            StoreError::Corpus { .. }
            | StoreError::Core(_)
            | StoreError::PrefixTooShort { .. }
            | StoreError::Ambiguous { .. }
            | StoreError::Invalid { .. } => ServiceError::InvalidArgument(message),
            StoreError::NotFound { .. } | StoreError::MissingDataDir { .. } => {
                ServiceError::NotFound(message)
            }
            StoreError::Locked { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Embed(_)
            | StoreError::ReadOnly { .. }
            | StoreError::Release { .. }
            | StoreError::Gate { .. }
            | StoreError::Live { .. }
            | StoreError::ArtifactRefused { .. }
            | StoreError::MarkedForDeletion { .. } => ServiceError::FailedPrecondition(message),
            StoreError::Artifact { .. } => ServiceError::Unavailable(message),
            StoreError::Index(IndexError::Embed(_) | IndexError::Corrupt { .. }) => {
                ServiceError::FailedPrecondition(message)
            }
            StoreError::Index(IndexError::Cancelled) => ServiceError::DeadlineExceeded(message),
            StoreError::Index(
                IndexError::Io { .. }
                | IndexError::Tantivy(_)
                | IndexError::Invalid(_)
                | IndexError::Source(_),
            )
            | StoreError::Io { .. }
            | StoreError::Registry { .. }
            | StoreError::Backend { .. }
            | StoreError::Encode { .. } => ServiceError::Internal(message),
        }
    }
}

impl From<quire_release::ReleaseError> for ServiceError {
    fn from(e: quire_release::ReleaseError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<IndexError> for ServiceError {
    fn from(e: IndexError) -> Self {
        StoreError::from(e).into()
    }
}

impl From<quire_core::CoreError> for ServiceError {
    fn from(e: quire_core::CoreError) -> Self {
        ServiceError::InvalidArgument(e.to_string())
    }
}

impl ServiceError {
    /// The gRPC status code: the one mapping from quire's errors to the wire.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            ServiceError::InvalidArgument(_) => Code::InvalidArgument,
            ServiceError::NotFound(_) => Code::NotFound,
            ServiceError::Unauthenticated(_) => Code::Unauthenticated,
            ServiceError::PermissionDenied(_) => Code::PermissionDenied,
            ServiceError::FailedPrecondition(_) => Code::FailedPrecondition,
            ServiceError::ResourceExhausted(_) => Code::ResourceExhausted,
            ServiceError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ServiceError::Unavailable(_) => Code::Unavailable,
            ServiceError::Internal(_) => Code::Internal,
        }
    }
}

/// The longest message sent to a client, in bytes: a request's megabyte-long value is named
/// by its start, not echoed whole (which would also overflow the client's header limit).
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to at most [`MAX_MESSAGE_BYTES`] at a character boundary, saying so.
fn cut(message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    let note = format!("... (message cut: {} bytes in all)", message.len());
    let mut end = MAX_MESSAGE_BYTES - note.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{note}", &message[..end])
}

impl From<ServiceError> for tonic::Status {
    fn from(e: ServiceError) -> Self {
        let code = e.code();
        match e {
            ServiceError::Internal(m) => {
                tracing::error!(error = %cut(m), "internal error");
                tonic::Status::new(code, "internal error (details are in the server log)")
            }
            other => tonic::Status::new(code, cut(other.to_string())),
        }
    }
}

impl From<tonic::Status> for ServiceError {
    fn from(s: tonic::Status) -> Self {
        use tonic::Code;
        let m = s.message().to_owned();
        match s.code() {
            Code::InvalidArgument | Code::OutOfRange => ServiceError::InvalidArgument(m),
            Code::NotFound => ServiceError::NotFound(m),
            Code::Unauthenticated => ServiceError::Unauthenticated(m),
            Code::PermissionDenied => ServiceError::PermissionDenied(m),
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => {
                ServiceError::FailedPrecondition(m)
            }
            Code::ResourceExhausted => ServiceError::ResourceExhausted(m),
            Code::DeadlineExceeded | Code::Cancelled => ServiceError::DeadlineExceeded(m),
            Code::Unavailable => ServiceError::Unavailable(m),
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => {
                ServiceError::Internal(format!("{:?}: {m}", s.code()))
            }
        }
    }
}
