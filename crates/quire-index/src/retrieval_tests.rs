//! Property tests of permission-filtered retrieval against independent references.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use quire_core::{Acl, BuildSpec, Document, Reader, SnapshotId};
use quire_embed::Models;

use crate::ann::{self, Allowed};
use crate::{Bm25Plan, Bm25Planner, BuildRequest, Mode, NoProgress, OpenIndex, Query, build_index};

const VOCAB: [&str; 24] = [
    "leave", "salary", "band", "deploy", "rollback", "incident", "budget", "invoice", "contract",
    "privacy", "laptop", "password", "review", "offer", "heron", "price", "board", "travel",
    "expense", "policy", "engineer", "finance", "legal", "weeks",
];
const TOKENS: [&str; 6] = ["*", "group:a", "group:b", "group:c", "user:u1", "user:u2"];

#[derive(Clone, Debug)]
struct Case {
    docs: Vec<(Vec<usize>, Option<Vec<usize>>)>,
    default_acl: Option<Vec<usize>>,
    readers: Vec<(Option<usize>, Vec<usize>)>,
    queries: Vec<Vec<usize>>,
}

fn case() -> impl Strategy<Value = Case> {
    let acl = prop::collection::vec(0..TOKENS.len(), 0..3);
    let doc = (
        prop::collection::vec(0..VOCAB.len(), 3..40),
        prop::option::of(acl.clone()),
    );
    let reader = (
        prop::option::of(0..2usize),
        prop::collection::vec(0..3usize, 0..3),
    );
    (
        prop::collection::vec(doc, 1..40),
        prop::option::of(prop::collection::vec(0..TOKENS.len(), 1..2)),
        prop::collection::vec(reader, 1..4),
        prop::collection::vec(prop::collection::vec(0..VOCAB.len(), 1..4), 1..5),
    )
        .prop_map(|(docs, default_acl, readers, queries)| Case {
            docs,
            default_acl,
            readers,
            queries,
        })
}

/// The oracle: may this reader read a document with these ACL tokens? Written from the rule,
/// not from `Acl::admits`.
fn readable(tokens: &[&str], user: Option<usize>, groups: &[usize]) -> bool {
    tokens.iter().any(|t| {
        *t == "*"
            || user.is_some_and(|u| *t == format!("user:u{}", u + 1))
            || groups
                .iter()
                .any(|g| *t == format!("group:{}", ["a", "b", "c"][*g]))
    })
}

fn build(case: &Case, dir: &std::path::Path) -> (Vec<Vec<&'static str>>, OpenIndex) {
    build_only(case, |_| true, dir)
}

/// The index of the case's documents `keep` admits (by position in `case.docs`; they keep
/// their ids, texts and ACLs), and every document's effective ACL tokens.
fn build_only(
    case: &Case,
    keep: impl Fn(usize) -> bool,
    dir: &std::path::Path,
) -> (Vec<Vec<&'static str>>, OpenIndex) {
    let mut spec = BuildSpec::from_toml(
        "version = 1\n[chunking]\nstrategy = \"fixed\"\nmax_tokens = 8\noverlap = 2\n[embedding]\nmodel = \"hash-v1\"\ndim = 32\n[hnsw]\nm = 6\nef_construction = 32\nef_search = 16",
        "<test>",
    )
    .unwrap();
    spec.default_acl = case
        .default_acl
        .as_ref()
        .map(|v| Acl::parse(v.iter().map(|&i| TOKENS[i])).unwrap());
    let docs: Vec<Document> = case
        .docs
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, (words, acl))| Document {
            id: format!("d{i:03}"),
            title: None,
            metadata: Default::default(),
            acl: acl
                .as_ref()
                .map(|v| Acl::parse(v.iter().map(|&t| TOKENS[t])).unwrap()),
            updated_at: None,
            text: words
                .iter()
                .map(|&w| VOCAB[w])
                .collect::<Vec<_>>()
                .join(" "),
        })
        .collect();
    let effective: Vec<Vec<&str>> = case
        .docs
        .iter()
        .map(|(_, acl)| {
            acl.as_ref()
                .or(case.default_acl.as_ref())
                .map(|v| v.iter().map(|&i| TOKENS[i]).collect())
                .unwrap_or_default()
        })
        .collect();
    let embedder = Models::builtin().resolve(&spec.embedding).unwrap();
    let snapshot = SnapshotId::from_hash(blake3::hash(b"proptest"));
    let req = BuildRequest {
        snapshot_id: &snapshot,
        documents: &docs,
        spec: &spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors: &[],
    };
    build_index(&req, dir, &NoProgress).unwrap();
    std::fs::rename(dir, dir.with_file_name(req.index_id().as_str())).unwrap();
    let open = OpenIndex::open(
        &dir.with_file_name(req.index_id().as_str()),
        &Models::builtin(),
    )
    .unwrap();
    (effective, open.with_planner(crate::Planner::Walk))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: RngSeed::Fixed(20261126), ..ProptestConfig::default() })]

    #[test]
    fn filtered_retrieval_never_leaks_and_matches_references(case in case()) {
        let tmp = tempfile::tempdir().unwrap();
        let (effective, index) = build(&case, &tmp.path().join("build"));
        let n = index.chunks().len();
        let (mut found, mut wanted) = (0usize, 0usize);
        for (user, groups) in &case.readers {
            let user_name = user.map(|u| format!("u{}", u + 1));
            let group_names: Vec<&str> = groups.iter().map(|&g| ["a", "b", "c"][g]).collect();
            let reader = Reader::new(user_name.as_deref(), &group_names).unwrap();
            let doc_ok: Vec<bool> = effective.iter().map(|t| readable(t, *user, groups)).collect();
            let chunk_ok = |o: u32| doc_ok[index.chunks()[o as usize].doc as usize];
            for words in &case.queries {
                let text = words.iter().map(|&w| VOCAB[w]).collect::<Vec<_>>().join(" ");
                // Every mode: no hit the reader may not read.
                for mode in [Mode::Hybrid, Mode::Bm25, Mode::Vector] {
                    let q = Query { text: text.clone(), reader: reader.clone(), k: 10, mode, fusion: None, candidates: Some(20) };
                    let response = index.search(&q).unwrap();
                    for hit in &response.hits {
                        let doc = index.docs().iter().position(|d| d.doc_id == hit.doc_id).unwrap();
                        prop_assert!(doc_ok[doc], "{:?} leaked {} in {:?}", reader, hit.chunk_id, mode);
                    }
                }
                // BM25: the filtered list holds the same chunks as the unfiltered list restricted
                // to readable chunks (its scores are the reader's own: see the next proptest).
                let filtered = index.bm25(&text, &reader, n).unwrap();
                let reference: BTreeSet<u32> = index.bm25_in(&text, None, n).unwrap().into_iter().map(|(o, _)| o).filter(|&o| chunk_ok(o)).collect();
                prop_assert_eq!(filtered.iter().map(|h| h.0).collect::<BTreeSet<u32>>(), reference);
                prop_assert_eq!(filtered.len(), filtered.iter().map(|h| h.0).collect::<BTreeSet<u32>>().len());
                // Documents: BM25's best chunk of each of the best 5 readable documents, even
                // though 5 candidates hold fewer than 5 documents; every mode, distinct documents.
                let by_doc: Vec<String> = {
                    let mut seen = BTreeSet::new();
                    filtered.iter().filter(|&&(o, _)| seen.insert(index.chunks()[o as usize].doc)).take(5).map(|&(o, _)| index.chunks()[o as usize].chunk_id.clone()).collect()
                };
                for mode in [Mode::Hybrid, Mode::Bm25, Mode::Vector] {
                    let q = Query { text: text.clone(), reader: reader.clone(), k: 5, mode, fusion: None, candidates: Some(5) };
                    let hits = index.search_documents(&q).unwrap().hits;
                    let docs: BTreeSet<&str> = hits.iter().map(|h| h.doc_id.as_str()).collect();
                    prop_assert_eq!(docs.len(), hits.len(), "{:?}: a document twice", mode);
                    prop_assert!(hits.len() <= 5);
                    for hit in &hits {
                        let doc = index.docs().iter().position(|d| d.doc_id == hit.doc_id).unwrap();
                        prop_assert!(doc_ok[doc], "{:?} leaked {} in {:?}", reader, hit.chunk_id, mode);
                    }
                    if mode == Mode::Bm25 {
                        let got: Vec<String> = hits.iter().map(|h| h.chunk_id.clone()).collect();
                        prop_assert_eq!(&got, &by_doc);
                    }
                }
                // Vectors: graph search against exact search over the readable chunks.
                let qv = index.embed(&text).unwrap();
                let allowed = Allowed::from_fn(n, chunk_ok);
                let truth = ann::exact(index.vectors(), &qv, Some(&allowed), 10);
                let got = index.vector(&qv, &index.allowed(&reader), 10);
                prop_assert!(got.iter().all(|&(o, _)| chunk_ok(o)));
                let truth_ids: BTreeSet<u32> = truth.iter().map(|t| t.0).collect();
                found += got.iter().filter(|g| truth_ids.contains(&g.0)).count();
                wanted += truth.len();
            }
        }
        let recall = if wanted == 0 { 1.0 } else { found as f64 / wanted as f64 };
        prop_assert!(recall >= 0.95, "filtered vector recall@10 {recall}");
    }
}

/// `hits` by chunk id, so lists from different indices compare.
fn named(index: &OpenIndex, hits: Vec<(u32, f32)>) -> Vec<(String, f32)> {
    hits.into_iter()
        .map(|(o, score)| (index.chunks()[o as usize].chunk_id.clone(), score))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: RngSeed::Fixed(20261203), ..ProptestConfig::default() })]

    /// Issue 14, finding 4: BM25's document frequencies, document count and token total are the
    /// reader's, so a score depends on nothing the reader cannot read. Against an index built
    /// from only the documents the reader may read: the same chunks in the same order with the
    /// same scores, bit for bit, at every depth (ties at the cut included), and hybrid
    /// `explain`'s raw BM25 rank and score of each hit are the ones that index gives the chunk.
    #[test]
    fn a_readers_bm25_results_and_scores_are_those_of_an_index_of_only_what_it_may_read(case in case()) {
        let tmp = tempfile::tempdir().unwrap();
        let (effective, index) = build(&case, &tmp.path().join("all").join("build"));
        let n = index.chunks().len();
        let texts: Vec<String> = case.queries.iter().map(|words| words.iter().map(|&w| VOCAB[w]).collect::<Vec<_>>().join(" ")).collect();
        let mut owned: Vec<(Vec<bool>, OpenIndex)> = Vec::new();
        for (r, (user, groups)) in case.readers.iter().enumerate() {
            let user_name = user.map(|u| format!("u{}", u + 1));
            let group_names: Vec<&str> = groups.iter().map(|&g| ["a", "b", "c"][g]).collect();
            let reader = Reader::new(user_name.as_deref(), &group_names).unwrap();
            let doc_ok: Vec<bool> = effective.iter().map(|t| readable(t, *user, groups)).collect();
            if !doc_ok.contains(&true) {
                for text in &texts {
                    prop_assert!(index.bm25(text, &reader, n).unwrap().is_empty());
                }
                continue;
            }
            // Readers who may read the same documents share their index.
            let own = match owned.iter().position(|(ok, _)| *ok == doc_ok) {
                Some(i) => &owned[i].1,
                None => {
                    let (_, own) = build_only(&case, |i| doc_ok[i], &tmp.path().join(format!("reader{r}")).join("build"));
                    owned.push((doc_ok.clone(), own));
                    &owned[owned.len() - 1].1
                }
            };
            prop_assert_eq!(own.allowed(&reader).count(), own.chunks().len());
            for text in &texts {
                for depth in [1, 2, 3, 10, n] {
                    let got = named(&index, index.bm25(text, &reader, depth).unwrap());
                    let want = named(own, own.bm25(text, &reader, depth).unwrap());
                    prop_assert_eq!(&got, &want, "{:?}, {:?}, depth {}", reader, text, depth);
                }
                let candidates = 20;
                let own_list = named(own, own.bm25(text, &reader, candidates).unwrap());
                for mode in [Mode::Hybrid, Mode::Bm25] {
                    let q = Query { text: text.clone(), reader: reader.clone(), k: 10, mode, fusion: None, candidates: Some(candidates) };
                    for hit in index.search(&q).unwrap().hits {
                        if let Some(bm25) = hit.bm25 {
                            prop_assert_eq!(&own_list[bm25.rank as usize - 1], &(hit.chunk_id.clone(), bm25.score), "{:?}, {:?}, {:?}", reader, text, mode);
                        } else {
                            prop_assert!(own_list.iter().all(|(id, _)| *id != hit.chunk_id), "{:?}: {} is BM25's but has no BM25 rank", mode, hit.chunk_id);
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, rng_seed: RngSeed::Fixed(20261204), ..ProptestConfig::default() })]

    /// Both BM25 plans (block-max WAND then a term-order re-sum, and term at a time) give the
    /// same chunks in the same order with the same scores, bit for bit, for every reader, at
    /// every depth; the cost-based choice is therefore invisible in results.
    #[test]
    fn both_bm25_plans_give_the_same_hits_and_scores(case in case()) {
        let tmp = tempfile::tempdir().unwrap();
        let (_, pruned) = build(&case, &tmp.path().join("build"));
        let dir = tmp.path().join(pruned.manifest().index_id.as_str());
        let pruned = pruned.with_bm25_planner(Bm25Planner::Pruned);
        let taat = OpenIndex::open(&dir, &Models::builtin()).unwrap().with_bm25_planner(Bm25Planner::TermAtATime);
        let n = pruned.chunks().len();
        let mut readers = Vec::new();
        for (user, groups) in &case.readers {
            let user_name = user.map(|u| format!("u{}", u + 1));
            let group_names: Vec<&str> = groups.iter().map(|&g| ["a", "b", "c"][g]).collect();
            readers.push(Reader::new(user_name.as_deref(), &group_names).unwrap());
        }
        // Queries with repeated and many terms, so sums of several terms tie and reorder.
        let mut texts: Vec<String> = case.queries.iter().map(|words| words.iter().map(|&w| VOCAB[w]).collect::<Vec<_>>().join(" ")).collect();
        texts.push(VOCAB.join(" "));
        for reader in &readers {
            for text in &texts {
                prop_assert_eq!(pruned.bm25_plan(text).unwrap(), Bm25Plan::Pruned);
                prop_assert_eq!(taat.bm25_plan(text).unwrap(), Bm25Plan::TermAtATime);
                let bits = |hits: Vec<(u32, f32)>| hits.into_iter().map(|(o, s)| (o, s.to_bits())).collect::<Vec<_>>();
                for depth in [1, 2, 3, 10, n] {
                    let want = bits(pruned.bm25(text, reader, depth).unwrap());
                    prop_assert_eq!(bits(taat.bm25(text, reader, depth).unwrap()), want, "{:?}, {:?}, depth {}", reader, text, depth);
                    // Every chunk readable: no filter, tantivy's own statistics.
                    let want = bits(pruned.bm25_in(text, None, depth).unwrap());
                    prop_assert_eq!(bits(taat.bm25_in(text, None, depth).unwrap()), want, "{:?}, depth {}", text, depth);
                }
            }
        }
    }
}

#[test]
fn an_index_of_another_format_refuses_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let case = Case {
        docs: vec![(vec![0, 1, 2], Some(vec![0]))],
        default_acl: None,
        readers: Vec::new(),
        queries: Vec::new(),
    };
    let (_, index) = build(&case, &tmp.path().join("build"));
    let dir = tmp.path().join(index.manifest().index_id.as_str());
    drop(index);
    let path = dir.join(crate::MANIFEST_FILE);
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["versions"]["format"] = 1.into();
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = OpenIndex::open(&dir, &Models::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has format 1, this quire reads formats 2-3: rebuild it"),
        "{err}"
    );
}

/// Issue 14, finding 5: the allowed-set cache grew by every distinct principal it saw (a reader
/// sending huge principals grew the server by gigabytes). It holds a hash of each principal
/// and stays within its byte budget however large and many the principals are.
#[test]
fn the_allowed_set_cache_stays_within_its_byte_budget() {
    let tmp = tempfile::tempdir().unwrap();
    let case = Case {
        docs: vec![(vec![0, 1, 2], Some(vec![0])), (vec![3, 4], Some(vec![1]))],
        default_acl: None,
        readers: Vec::new(),
        queries: Vec::new(),
    };
    let (_, index) = build(&case, &tmp.path().join("build"));
    let pad = "x".repeat(90);
    for i in 0..300 {
        // About 1 MiB of principal each: 10,000 groups of 100 bytes.
        let groups: Vec<String> = (0..10_000).map(|j| format!("{pad}{i:04}{j:05}")).collect();
        let reader = Reader::new(Some("u"), &groups).unwrap();
        assert_eq!(index.allowed(&reader).count(), 1, "public chunks only");
    }
    let held = index.allowed_cache_bytes();
    assert!(
        held <= crate::ALLOWED_CACHE_BYTES,
        "the allowed-set cache holds {held} bytes"
    );
    // Still a cache: the same reader again is answered, and correctly.
    let a = Reader::new(None, ["a"]).unwrap();
    assert_eq!(index.allowed(&a).count(), index.allowed(&a).count());
}
