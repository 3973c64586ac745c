//! quire's gRPC contract.
//!
//! - [`pb`]: the code generated from `proto/quire/v1/*.proto` (messages, clients, servers).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors, for server reflection.
//! - [`convert`]: validating conversions between wire messages and domain types
//!   ([`convert::RetrieveParams`] for incoming queries).
//!
//! Wire types stop here: conversions into domain types validate on receipt.

/// Generated protobuf and gRPC code for `quire.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic, unused_qualifications)]
pub mod pb {
    tonic::include_proto!("quire.v1");
}

/// The encoded `FileDescriptorSet` of the contract.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("quire_descriptor");

pub mod canary;
pub mod convert;
pub mod eval;
pub mod release;
