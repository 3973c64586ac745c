//! Several machines on one machine (issue 15): a builder and replicas on the test PostgreSQL
//! and SeaweedFS (quire-testkit's `replicas`). Without the services these tests skip, except
//! under `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod crash;
mod embed;
mod evict;
mod failures;
mod follow;
mod race;

pub use quire_testkit::replicas::{Cluster, Replica, set, two_indexes};
