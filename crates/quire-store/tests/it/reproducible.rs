//! Property: the same input gives the same snapshot id, index id and content digest, whatever
//! the order of the documents, whichever data dir builds it and on how many threads, with either
//! HNSW builder.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use quire_core::BuildSpec;
use quire_index::NoProgress;
use quire_store::{Access, CorpusFormat, Store};
use tempfile::TempDir;

fn corpus() -> impl Strategy<Value = Vec<(String, String, Vec<String>)>> {
    let doc = (
        "[a-z]{1,6}",
        proptest::collection::vec("[a-z]{1,8}", 0..60).prop_map(|w| w.join(" ")),
        proptest::sample::subsequence(vec!["*", "group:hr", "group:eng", "user:alice"], 0..3)
            .prop_map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()),
    );
    proptest::collection::btree_map("[a-z0-9]{1,8}", doc, 1..25).prop_map(|m| {
        m.into_iter()
            .map(|(id, (title, text, acl))| (id, format!("{title} {text}"), acl))
            .collect()
    })
}

fn write_jsonl(path: &std::path::Path, docs: &[(String, String, Vec<String>)]) {
    let lines: Vec<String> = docs
        .iter()
        .map(|(id, text, acl)| serde_json::json!({"id": id, "text": text, "acl": acl}).to_string())
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

fn spec(strategy: u8) -> BuildSpec {
    let chunking = match strategy % 3 {
        0 => "strategy = \"fixed\"\nmax_tokens = 8\noverlap = 2",
        1 => "strategy = \"sentences\"\nmax_tokens = 12",
        _ => "strategy = \"markdown\"\nmax_tokens = 16",
    };
    let text = format!(
        "version = 1\n[embedding]\nmodel = \"hash-v1\"\ndim = 32\n[hnsw]\nm = 4\nef_construction = 16\nef_search = 8\n[chunking]\n{chunking}"
    );
    BuildSpec::from_toml(&text, "<test>").unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn same_input_same_ids_and_digest(docs in corpus(), seed in any::<u64>(), strategy in 0u8..3, quire_builder in any::<bool>()) {
        let (a, b) = (TempDir::new().unwrap(), TempDir::new().unwrap());
        let mut shuffled = docs.clone();
        // A deterministic permutation driven by the seed.
        shuffled.sort_by_key(|d| blake3::hash(format!("{seed}{}", d.0).as_bytes()).to_hex().to_string());
        write_jsonl(&a.path().join("in.jsonl"), &docs);
        write_jsonl(&b.path().join("in.jsonl"), &shuffled);
        let mut spec = spec(strategy);
        if quire_builder {
            spec.hnsw.builder = quire_core::spec::HnswBuilder::Quire;
        }
        let mut results = Vec::new();
        // Different data dirs, document orders and thread counts (the quire builder is parallel).
        for (dir, threads) in [(&a, 1), (&b, 4)] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let store = Store::open(dir.path().join("data"), Access::Write).unwrap();
            let snap = store.import(&dir.path().join("in.jsonl"), Some(CorpusFormat::Jsonl)).unwrap();
            let built = pool.install(|| store.build(&snap.snapshot_id, &spec, &NoProgress)).unwrap();
            prop_assert!(!built.reused);
            prop_assert_eq!(built.manifest.build.threads, threads as u32);
            results.push((snap.snapshot_id, built.manifest.index_id, built.manifest.content_digest, built.manifest.permission_digest));
        }
        prop_assert_eq!(&results[0], &results[1]);
    }
}

#[test]
fn a_snapshot_edited_on_disk_is_refused_by_the_build_and_nothing_is_published() {
    let dir = TempDir::new().unwrap();
    let docs: Vec<(String, String, Vec<String>)> = (0..5000)
        .map(|i| {
            (
                format!("d{i:05}"),
                format!("note {i} about leave"),
                vec!["*".into()],
            )
        })
        .collect();
    write_jsonl(&dir.path().join("in.jsonl"), &docs);
    let store = Store::open(dir.path().join("data"), Access::Write).unwrap();
    let snap = store
        .import(&dir.path().join("in.jsonl"), Some(CorpusFormat::Jsonl))
        .unwrap();
    // More documents than one block holds: the build streams the snapshot in blocks.
    assert!(snap.documents as usize > quire_index::source::BLOCK_DOCS);
    let stored = dir
        .path()
        .join("data/snapshots")
        .join(snap.snapshot_id.as_str())
        .join("documents.jsonl");
    let mut bytes = std::fs::read(&stored).unwrap();
    let at = bytes.len() - 20;
    bytes[at] = if bytes[at] == b'1' { b'2' } else { b'1' };
    let mut permissions = std::fs::metadata(&stored).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    permissions.set_readonly(false);
    std::fs::set_permissions(&stored, permissions).unwrap();
    std::fs::write(&stored, bytes).unwrap();

    let err = store
        .build(&snap.snapshot_id, &spec(0), &NoProgress)
        .unwrap_err();
    assert!(
        matches!(err, quire_store::StoreError::Corrupt { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("documents.jsonl hashes to snap-"),
        "{err}"
    );
    assert!(store.indexes().unwrap().is_empty());
}
