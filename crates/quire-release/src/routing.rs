//! Canary routing: a routing key lands in one of [`BUCKETS`] buckets by its blake3 hash, and a
//! canary at `p` basis points takes the buckets below `p`. The same key always gets the same arm.

use quire_core::{Arm, IndexId};

use crate::alias::AliasState;
pub use crate::alias::BUCKETS;

/// The routing bucket of a key: the first 8 bytes of its blake3 hash, little-endian, modulo
/// [`BUCKETS`]. The same key always lands in the same bucket.
pub fn bucket(routing_key: &str) -> u64 {
    let hash = blake3::hash(routing_key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_bytes()[..8]);
    u64::from_le_bytes(first) % BUCKETS
}

/// Which arm of `state` serves `routing_key`.
pub fn route<'a>(state: &'a AliasState, routing_key: &str) -> (&'a IndexId, Arm) {
    match &state.canary {
        Some(c) if bucket(routing_key) < u64::from(c.basis_points) => (&c.index, Arm::Canary),
        _ => (&state.primary, Arm::Primary),
    }
}

/// A parsed query target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The index that answers.
    pub index: IndexId,
    /// The alias, revision and arm it was reached through, when it was.
    pub via: Option<Via>,
}

/// How an alias routed a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// The alias.
    pub alias: String,
    /// The revision that served.
    pub revision: u64,
    /// The arm that served.
    pub arm: Arm,
    /// The revision's shadow, to be queried in the background.
    pub shadow: Option<IndexId>,
}
