//! Evaluation for quire: BEIR datasets ([`dataset::load`]) and retrieval metrics with trec_eval
//! semantics ([`metrics::evaluate`]: nDCG@10, recall@10, recall@100, MRR@10).
//!
//! The `quire eval` command, stored reports and promotion gates build on this crate.

pub mod dataset;
mod error;
pub mod metrics;

pub use dataset::{Dataset, Qrels};
pub use error::EvalError;
pub use metrics::{Metrics, evaluate};
