//! Evaluation for quire: BEIR datasets ([`dataset::load`]) and retrieval metrics with trec_eval
//! semantics ([`metrics::evaluate`]: nDCG@10, recall@10, recall@100, MRR@10), evaluation runs
//! of any retriever into pinned reports ([`runner::evaluate_with`], [`EvalReport`],
//! [`EvalSpec`]) and their comparison ([`runner::compare`]).
//!
//! The `quire eval` command, stored reports and promotion gates build on this crate.

pub mod dataset;
mod error;
pub mod metrics;
pub mod runner;

pub use dataset::{Dataset, Qrels};
pub use error::EvalError;
pub use metrics::{Metrics, evaluate};
pub use runner::{Comparison, EvalReport, EvalSpec, compare, evaluate_with};
