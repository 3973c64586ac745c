//! quire's artifact store on S3: [`S3Store`] implements quire-store's
//! [`ArtifactStore`](quire_store::ArtifactStore) over object_store's S3 client (reqwest with
//! rustls and ring; no C-built TLS or crypto), for AWS or any S3-compatible endpoint.
//!
//! - [`S3Config`]: `s3://bucket[/prefix]`, an endpoint, a region, [`Credentials`] from the
//!   environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; never
//!   the instance metadata service) and [`Timeouts`] that bound every request.
//! - Create-only puts (the commit markers) are conditional requests; reads are ranged GETs of
//!   [`RANGE_BYTES`] streamed as they arrive; large uploads go in parts of [`PART_BYTES`].
//! - The trait is synchronous; the store owns a one-thread runtime and callers wait on their
//!   own thread (quire-bridge), from plain threads and async contexts alike.

mod config;
mod error;
mod reader;
mod store;

pub use config::{Credentials, S3Config, S3Url, Timeouts};
pub use error::{Result, S3Error};
pub use reader::RANGE_BYTES;
pub use store::{PART_BYTES, S3Store};
