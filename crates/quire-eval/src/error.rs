//! The error type of quire-eval.

use thiserror::Error;

/// What can go wrong loading a dataset, running an evaluation or comparing reports.
#[derive(Debug, Error)]
pub enum EvalError {
    /// Reading a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line of a dataset file is malformed.
    #[error("{origin}: {reason}")]
    Malformed {
        /// `file:line`.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The dataset has no qrels file for the split asked for.
    #[error("{dir}: no split {split:?} (no qrels/{split}.tsv; splits there: {available})")]
    NoSplit {
        /// The dataset directory.
        dir: String,
        /// The split asked for.
        split: String,
        /// The splits the dataset has, comma-separated (`none` when it has none).
        available: String,
    },
    /// A judged query has no text to run (an empty query would score 0 silently).
    #[error("query {query_id:?} is judged but has no text")]
    NoQueryText {
        /// The query id.
        query_id: String,
    },
    /// The retriever failed on a query.
    #[error("retrieval failed for query {query_id:?}: {reason}")]
    Retrieval {
        /// The query id.
        query_id: String,
        /// The retriever's error.
        reason: String,
    },
    /// Two reports cannot be compared.
    #[error("cannot compare: {0}")]
    Incomparable(String),
}
