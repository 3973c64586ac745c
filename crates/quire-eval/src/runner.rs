//! Running an evaluation and comparing two reports.
//!
//! [`evaluate_with`] asks a retriever (any closure from query text to document ids, best first)
//! every judged query of a [`Dataset`] and scores the rankings into an [`EvalReport`]. The report
//! carries the [`EvalSpec`] hash: blake3 over the dataset files' hashes, the split, the metric
//! definitions, the evaluator version and whether identical ids are ignored (BEIR's rule). [`compare`] refuses reports whose eval specs differ:
//! numbers measured against different judgments or metric code are never compared.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::EvalError;
use crate::metrics::{Metrics, score_query};

/// Version of the evaluator: bump it whenever the metric code changes what it computes.
pub const EVALUATOR_VERSION: &str = "quire-eval 1";

/// What each metric means, hashed into every eval spec.
pub const METRIC_DEFINITIONS: [&str; 4] = [
    "ndcg_at_10: trec_eval ndcg_cut.10; gain = graded relevance, log2(rank + 1) discount, ideal \
     from the judgments, unjudged = 0",
    "recall_at_10: judged-relevant (relevance > 0) documents in the top 10 / all judged-relevant",
    "recall_at_100: judged-relevant documents in the top 100 / all judged-relevant",
    "mrr_at_10: 1 / rank of the first judged-relevant document within the top 10, else 0",
];

/// Conventions every metric shares, hashed with the definitions.
const CONVENTIONS: &str = "a document repeated in a ranking counts once, at its first rank; \
     means are over the judged queries of the split; a query without results scores 0";

/// The deepest cutoff of any metric (recall@100): rankings are scored on this many documents.
pub const METRIC_DEPTH: usize = 100;

/// blake3 derive-key context of eval spec hashes.
const EVAL_SPEC_CONTEXT: &str = "quire 2026-11 eval spec v1";

/// Everything that decides what an evaluation's numbers mean, except the index evaluated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvalSpec {
    /// The split evaluated (`qrels/<split>.tsv`).
    pub split: String,
    /// blake3 (hex) of each dataset file, by path relative to the dataset directory:
    /// `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv`.
    pub files: BTreeMap<String, String>,
    /// [`METRIC_DEFINITIONS`] and the shared conventions.
    pub metrics: Vec<String>,
    /// [`EVALUATOR_VERSION`].
    pub evaluator: String,
    /// Whether a retrieved document whose id equals the query id is dropped before scoring, as
    /// BEIR's evaluator does by default (`ignore_identical_ids`): on datasets whose queries are
    /// also documents (ArguAna, Quora) the query's own document would otherwise rank first and
    /// count as irrelevant. The judgments are left as they are, as in BEIR. Serialised only
    /// when true: a spec with `false` is byte for byte a spec from before the field existed,
    /// so its hash, and the reports and gates pinned to it, stay valid.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_identical_ids: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl EvalSpec {
    /// The spec of evaluating split `split` of the BEIR dataset in `dir` with this evaluator,
    /// ignoring identical ids as BEIR does (set [`EvalSpec::ignore_identical_ids`] to `false`
    /// for the evaluator's behaviour before it had the field). A missing split is refused
    /// naming the splits the dataset has.
    pub fn for_dataset(dir: &Path, split: &str) -> Result<Self, EvalError> {
        crate::dataset::qrels_path(dir, split)?;
        let mut files = BTreeMap::new();
        for rel in [
            "corpus.jsonl".to_owned(),
            "queries.jsonl".to_owned(),
            format!("qrels/{split}.tsv"),
        ] {
            let path = dir.join(&rel);
            let io = |source| EvalError::Io {
                path: path.display().to_string(),
                source,
            };
            let file = std::fs::File::open(&path).map_err(io)?;
            let mut hasher = blake3::Hasher::new();
            hasher.update_reader(file).map_err(io)?;
            files.insert(rel, hasher.finalize().to_hex().to_string());
        }
        let mut metrics: Vec<String> = METRIC_DEFINITIONS.iter().map(|d| (*d).into()).collect();
        metrics.push(CONVENTIONS.into());
        Ok(Self {
            split: split.into(),
            files,
            metrics,
            evaluator: EVALUATOR_VERSION.into(),
            ignore_identical_ids: true,
        })
    }

    /// How many documents a retriever should return per query: [`METRIC_DEPTH`], and one more
    /// when identical ids are dropped. BEIR retrieves `max(k_values)` documents (1000 in its
    /// runs) before dropping the query's own id, so its @100 metrics still see 100 documents;
    /// at most one document carries the query's id, so one extra gives the same 100.
    pub fn retrieval_depth(&self) -> usize {
        METRIC_DEPTH + usize::from(self.ignore_identical_ids)
    }

    /// The spec's hash: blake3 (derive-key mode) over its canonical JSON, in hex.
    pub fn hash(&self) -> String {
        // Struct fields serialise in declaration order and maps in key order: canonical. These
        // bytes are the spec's identity: never let a failure hash empty bytes.
        let json = serde_json::to_vec(self)
            .expect("an eval spec serialises: strings, numbers and string-keyed maps");
        blake3::Hasher::new_derive_key(EVAL_SPEC_CONTEXT)
            .update(&json)
            .finalize()
            .to_hex()
            .to_string()
    }
}

/// One query's scores and what was retrieved for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryScores {
    /// The query id.
    pub query_id: String,
    /// Its metrics.
    pub metrics: Metrics,
    /// The first 10 distinct document ids retrieved, best first.
    pub top10: Vec<String>,
}

/// The outcome of evaluating one index against one eval spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// The index evaluated (resolved, never an alias).
    pub index_id: String,
    /// [`EvalSpec::hash`] of the spec evaluated against.
    pub eval_spec: String,
    /// The split, for display (the hash covers it).
    pub split: String,
    /// Means over the judged queries.
    pub metrics: Metrics,
    /// Every judged query, sorted by query id.
    pub per_query: Vec<QueryScores>,
}

/// Evaluate `retrieve` on every judged query of `dataset`, which must be the split `spec`
/// describes. `retrieve` maps query text to document ids, best first; return at least
/// [`EvalSpec::retrieval_depth`] distinct documents when there are that many, or recall@100 is
/// understated. Repeated ids (several chunks of one document) count once, at their first rank.
/// With [`EvalSpec::ignore_identical_ids`], a document whose id is the query's is dropped from
/// the ranking first. A judged query without text is an error naming it.
pub fn evaluate_with<E: Display>(
    index_id: &str,
    spec: &EvalSpec,
    dataset: &Dataset,
    mut retrieve: impl FnMut(&str) -> Result<Vec<String>, E>,
) -> Result<EvalReport, EvalError> {
    let mut per_query = Vec::with_capacity(dataset.qrels.len());
    for (query_id, judged) in &dataset.qrels {
        let text = dataset
            .queries
            .get(query_id)
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| EvalError::NoQueryText {
                query_id: query_id.clone(),
            })?;
        let mut ranked = retrieve(text).map_err(|e| EvalError::Retrieval {
            query_id: query_id.clone(),
            reason: e.to_string(),
        })?;
        if spec.ignore_identical_ids {
            ranked.retain(|d| d != query_id);
        }
        let mut seen = BTreeSet::new();
        let top10 = ranked
            .iter()
            .filter(|d| seen.insert(d.as_str()))
            .take(10)
            .cloned()
            .collect();
        per_query.push(QueryScores {
            query_id: query_id.clone(),
            metrics: score_query(&ranked, judged),
            top10,
        });
    }
    Ok(EvalReport {
        index_id: index_id.into(),
        eval_spec: spec.hash(),
        split: spec.split.clone(),
        metrics: mean(per_query.iter().map(|q| &q.metrics)),
        per_query,
    })
}

fn mean<'a>(all: impl ExactSizeIterator<Item = &'a Metrics>) -> Metrics {
    let n = all.len().max(1) as f64;
    let sum = all.fold(Metrics::default(), |a, m| Metrics {
        ndcg_at_10: a.ndcg_at_10 + m.ndcg_at_10,
        recall_at_10: a.recall_at_10 + m.recall_at_10,
        recall_at_100: a.recall_at_100 + m.recall_at_100,
        mrr_at_10: a.mrr_at_10 + m.mrr_at_10,
    });
    Metrics {
        ndcg_at_10: sum.ndcg_at_10 / n,
        recall_at_10: sum.recall_at_10 / n,
        recall_at_100: sum.recall_at_100 / n,
        mrr_at_10: sum.mrr_at_10 / n,
    }
}

/// One side of a comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// The index.
    pub index_id: String,
    /// Its mean metrics.
    pub metrics: Metrics,
}

/// One query's nDCG@10 under both indexes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryDelta {
    /// The query id.
    pub query_id: String,
    /// nDCG@10 of A.
    pub a: f64,
    /// nDCG@10 of B.
    pub b: f64,
    /// `b - a`.
    pub delta: f64,
    /// Jaccard overlap of the two top-10 document sets (1 when both are empty).
    pub top10_jaccard: f64,
}

/// Two reports under the same eval spec, side by side. Wins, ties and losses are B's, by
/// nDCG@10 per query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// The shared eval spec hash.
    pub eval_spec: String,
    /// The baseline.
    pub a: Side,
    /// The candidate.
    pub b: Side,
    /// Queries where B's nDCG@10 is higher.
    pub wins: usize,
    /// Queries where they are equal (within 1e-9).
    pub ties: usize,
    /// Queries where B's nDCG@10 is lower.
    pub losses: usize,
    /// Mean over queries of the Jaccard overlap of the top-10 document sets.
    pub mean_top10_jaccard: f64,
    /// Every query, sorted by query id.
    pub per_query: Vec<QueryDelta>,
}

/// Queries whose nDCG@10 differs by at most this much tie.
const TIE: f64 = 1e-9;

/// Compare baseline `a` with candidate `b`. Refuses reports with different eval specs, or
/// (which the same spec should rule out) different query sets.
pub fn compare(a: &EvalReport, b: &EvalReport) -> Result<Comparison, EvalError> {
    if a.eval_spec != b.eval_spec {
        return Err(EvalError::Incomparable(format!(
            "eval specs differ ({} vs {}): numbers from different datasets, splits or \
             evaluators are never compared",
            a.eval_spec, b.eval_spec
        )));
    }
    let ids = |r: &EvalReport| -> Vec<String> {
        r.per_query.iter().map(|q| q.query_id.clone()).collect()
    };
    if ids(a) != ids(b) {
        return Err(EvalError::Incomparable(
            "the reports score different queries".into(),
        ));
    }
    let mut per_query = Vec::with_capacity(a.per_query.len());
    let (mut wins, mut ties, mut losses) = (0, 0, 0);
    for (qa, qb) in a.per_query.iter().zip(&b.per_query) {
        let delta = qb.metrics.ndcg_at_10 - qa.metrics.ndcg_at_10;
        if delta > TIE {
            wins += 1;
        } else if delta < -TIE {
            losses += 1;
        } else {
            ties += 1;
        }
        per_query.push(QueryDelta {
            query_id: qa.query_id.clone(),
            a: qa.metrics.ndcg_at_10,
            b: qb.metrics.ndcg_at_10,
            delta,
            top10_jaccard: jaccard(&qa.top10, &qb.top10),
        });
    }
    let n = per_query.len().max(1) as f64;
    Ok(Comparison {
        eval_spec: a.eval_spec.clone(),
        a: Side {
            index_id: a.index_id.clone(),
            metrics: a.metrics,
        },
        b: Side {
            index_id: b.index_id.clone(),
            metrics: b.metrics,
        },
        wins,
        ties,
        losses,
        mean_top10_jaccard: per_query.iter().map(|q| q.top10_jaccard).sum::<f64>() / n,
        per_query,
    })
}

fn jaccard(a: &[String], b: &[String]) -> f64 {
    let a: BTreeSet<&String> = a.iter().collect();
    let b: BTreeSet<&String> = b.iter().collect();
    let union = a.union(&b).count();
    if union == 0 {
        1.0
    } else {
        a.intersection(&b).count() as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Qrels;

    fn dataset() -> Dataset {
        let qrels: Qrels = [
            ("q1".to_owned(), [("d1".to_owned(), 1)].into()),
            (
                "q2".to_owned(),
                [("d2".to_owned(), 2), ("d3".to_owned(), 1)].into(),
            ),
        ]
        .into();
        Dataset {
            queries: [
                ("q1".to_owned(), "first".to_owned()),
                ("q2".to_owned(), "second".to_owned()),
            ]
            .into(),
            qrels,
        }
    }

    fn spec(split: &str) -> EvalSpec {
        EvalSpec {
            split: split.into(),
            files: [("corpus.jsonl".to_owned(), "00".to_owned())].into(),
            metrics: METRIC_DEFINITIONS.iter().map(|d| (*d).into()).collect(),
            evaluator: EVALUATOR_VERSION.into(),
            ignore_identical_ids: true,
        }
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn run(index: &str, answers: [(&str, Vec<String>); 2]) -> EvalReport {
        let answers: BTreeMap<&str, Vec<String>> = answers.into();
        evaluate_with(index, &spec("test"), &dataset(), |q| {
            answers
                .get(q)
                .cloned()
                .ok_or_else(|| format!("no answer for {q}"))
        })
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn report_scores_each_query_and_keeps_distinct_top10() {
        let r = run(
            "idx-a",
            [
                ("first", ids(&["d1", "d1", "x"])),
                ("second", ids(&["d3", "d2"])),
            ],
        );
        assert_eq!(r.per_query.len(), 2);
        assert_eq!(r.per_query[0].query_id, "q1");
        assert_eq!(r.per_query[0].top10, ids(&["d1", "x"]));
        assert_eq!(r.per_query[0].metrics.ndcg_at_10, 1.0);
        // q2: gains 1, 2 against ideal 2, 1.
        let l3 = 3f64.log2();
        let want = (1.0 + 2.0 / l3) / (2.0 + 1.0 / l3);
        assert!((r.per_query[1].metrics.ndcg_at_10 - want).abs() < 1e-12);
        assert!((r.metrics.ndcg_at_10 - (1.0 + want) / 2.0).abs() < 1e-12);
        let json = serde_json::to_value(&r).unwrap_or_default();
        for field in ["index_id", "eval_spec", "metrics", "per_query"] {
            assert!(json.get(field).is_some(), "{field} missing from {json}");
        }
        for field in ["ndcg_at_10", "recall_at_10", "recall_at_100", "mrr_at_10"] {
            assert!(json["metrics"].get(field).is_some(), "{field} missing");
        }
    }

    #[test]
    fn retrieval_errors_name_the_query() {
        let err = evaluate_with("i", &spec("test"), &dataset(), |_| {
            Err::<Vec<String>, _>("boom")
        })
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert_eq!(err, "retrieval failed for query \"q1\": boom");
    }

    #[test]
    fn spec_hash_is_deterministic_and_covers_every_input() {
        let base = spec("test");
        assert_eq!(base.hash(), spec("test").hash());
        assert_eq!(base.hash().len(), 64);
        let mut other = base.clone();
        other.split = "dev".into();
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.files.insert("corpus.jsonl".into(), "01".into());
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.evaluator = "quire-eval 2".into();
        assert_ne!(base.hash(), other.hash());
        let mut other = base.clone();
        other.metrics.pop();
        assert_ne!(base.hash(), other.hash());
    }

    /// Issue 16: BEIR's evaluator drops a hit whose id is the query's before scoring
    /// (`ignore_identical_ids`, on by default), and so does quire unless the spec says not to.
    #[test]
    fn identical_ids_are_dropped_by_default_keeping_the_depth() {
        let data = Dataset {
            queries: [("q1".to_owned(), "first".to_owned())].into(),
            qrels: [("q1".to_owned(), [("d1".to_owned(), 1)].into())].into(),
        };
        // The query's own document first, the relevant one at rank 2.
        let answer = ids(&["q1", "d1", "x"]);
        let eval = |spec: &EvalSpec, answer: &[String]| {
            evaluate_with("i", spec, &data, |_| Ok::<_, String>(answer.to_vec()))
                .unwrap_or_else(|e| panic!("{e}"))
        };
        let beir = spec("test");
        assert!(beir.ignore_identical_ids);
        let r = eval(&beir, &answer);
        assert_eq!(r.per_query[0].top10, ids(&["d1", "x"]));
        assert_eq!(r.metrics.ndcg_at_10, 1.0);
        assert_eq!(r.metrics.mrr_at_10, 1.0);
        let kept = EvalSpec {
            ignore_identical_ids: false,
            ..spec("test")
        };
        let r = eval(&kept, &answer);
        assert_eq!(r.per_query[0].top10, answer);
        assert_eq!(r.metrics.mrr_at_10, 0.5);
        assert!((r.metrics.ndcg_at_10 - 1.0 / 3f64.log2()).abs() < 1e-12);
        // The retriever is asked for one more document, so that after the drop recall@100
        // still sees 100: the relevant document at rank 101 of the retrieved list counts.
        assert_eq!(beir.retrieval_depth(), 101);
        assert_eq!(kept.retrieval_depth(), 100);
        let mut deep: Vec<String> = (0..99).map(|i| format!("n{i}")).collect();
        deep.insert(0, "q1".into());
        deep.push("d1".into());
        assert_eq!(deep.len(), beir.retrieval_depth());
        assert_eq!(eval(&beir, &deep).metrics.recall_at_100, 1.0);
        assert_eq!(eval(&kept, &deep).metrics.recall_at_100, 0.0);
    }

    /// Issue 16: a judged query without text was evaluated as an empty query, silently.
    #[test]
    fn judged_queries_without_text_are_errors_naming_them() {
        for text in [None, Some(""), Some("  ")] {
            let mut data = dataset();
            data.qrels
                .insert("q3".into(), [("d9".to_owned(), 1)].into());
            if let Some(text) = text {
                data.queries.insert("q3".into(), text.into());
            }
            let err = evaluate_with("i", &spec("test"), &data, |_| Ok::<_, String>(ids(&["d1"])))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert_eq!(err, "query \"q3\" is judged but has no text", "{text:?}");
        }
    }

    /// Keeping identical ids is the evaluator as it was before the field existed, so its hash
    /// is the one reports and gates were pinned to then; ignoring them is a new spec, so a gate
    /// pinned to an old spec asks for `alias rebaseline` instead of comparing unlike numbers.
    #[test]
    fn keeping_identical_ids_hashes_as_before_and_ignoring_them_does_not() {
        let kept = EvalSpec {
            ignore_identical_ids: false,
            ..spec("test")
        };
        let json = serde_json::to_value(&kept).unwrap_or_default();
        assert!(json.get("ignore_identical_ids").is_none(), "{json}");
        // spec("test").hash() as computed before `ignore_identical_ids` existed.
        let before = "848b6b9ffe812d6a88b2af96d54199b99e135a8bb82d0a5d287677c99df6a6b0";
        assert_eq!(kept.hash(), before);
        assert_ne!(spec("test").hash(), before);
        let back: EvalSpec = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, kept);
    }

    #[test]
    fn compare_counts_wins_ties_losses_and_overlap() {
        let a = run(
            "a",
            [("first", ids(&["d1"])), ("second", ids(&["x", "d2"]))],
        );
        let b = run(
            "b",
            [("first", ids(&["d1"])), ("second", ids(&["d2", "y"]))],
        );
        let c = compare(&a, &b).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.wins, c.ties, c.losses), (1, 1, 0));
        assert_eq!(c.per_query[0].top10_jaccard, 1.0);
        // {x, d2} vs {d2, y}: one shared of three.
        assert!((c.per_query[1].top10_jaccard - 1.0 / 3.0).abs() < 1e-12);
        assert!((c.mean_top10_jaccard - 2.0 / 3.0).abs() < 1e-12);
        assert!(c.per_query[1].delta > 0.0);
        let back = compare(&b, &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.wins, back.ties, back.losses), (0, 1, 1));
    }

    #[test]
    fn compare_refuses_different_eval_specs() {
        let a = run("a", [("first", ids(&["d1"])), ("second", ids(&[]))]);
        let mut b = a.clone();
        b.eval_spec = spec("dev").hash();
        let err = compare(&a, &b)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("cannot compare: eval specs differ"),
            "{err}"
        );
    }
}
