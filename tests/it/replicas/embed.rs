//! Builders share the embedding cache through the artifact store: a second builder, on a data
//! dir of its own, embeds nothing the first one did, and gets the same bits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use quire_core::BuildSpec;
use quire_index::NoProgress;
use quire_store::{Key, Store};

use super::Cluster;

/// `store` with all-MiniLM-L6-v2 (at `model`) registered.
fn with_minilm(store: Store, model: &std::path::Path) -> Store {
    let models = store.models().clone().with_local("all-minilm-l6-v2", model);
    store.with_models(models.unwrap())
}

#[test]
fn a_second_builder_reuses_the_first_ones_vectors_through_the_store() {
    let Some(model) = quire_testkit::minilm() else {
        return;
    };
    let Some(cluster) = Cluster::new() else {
        return;
    };
    let one = with_minilm(cluster.builder("one"), &model);
    let two = with_minilm(cluster.builder("two"), &model);
    let corpus = cluster.dir.path().join("corpus.jsonl");
    let docs = [
        ("leave", "Every new parent gets twenty weeks of paid leave."),
        ("sev", "SEV1 means the whole product is down for everyone."),
        ("expenses", "Submit receipts for travel within thirty days."),
        ("laptops", "Laptops are replaced every three years."),
    ];
    let lines: String = docs
        .iter()
        .map(|(id, text)| {
            format!(
                "{}\n",
                serde_json::json!({"id": id, "text": text, "acl": ["*"]})
            )
        })
        .collect();
    std::fs::write(&corpus, lines).unwrap();
    let snapshot = one.import_as(&corpus, None, "one").unwrap().snapshot_id;
    let spec_path = quire_testkit::workspace().join("specs/minilm.toml");
    let spec =
        BuildSpec::from_toml(&std::fs::read_to_string(spec_path).unwrap(), "minilm").unwrap();

    let first = one.build_as(&snapshot, &spec, &NoProgress, "one").unwrap();
    let computed = first.manifest.build.embed_cache;
    assert!(computed.hits == 0 && computed.misses > 0, "{computed:?}");
    let store = cluster.artifacts(None);
    let packs = store.list(&Key::new("embed-cache").unwrap()).unwrap();
    assert_eq!(packs.len(), 1, "one pack: {packs:?}");

    let second = two.build(&snapshot, &spec, &NoProgress).unwrap();
    assert!(!second.reused, "built on the second machine");
    let shared = second.manifest.build.embed_cache;
    assert_eq!(
        (shared.hits, shared.misses),
        (computed.misses, 0),
        "every vector came from the first builder"
    );
    assert_eq!(
        second.manifest.content_digest,
        first.manifest.content_digest
    );
    // Nothing new was computed, so nothing new was shared.
    assert_eq!(
        store.list(&Key::new("embed-cache").unwrap()).unwrap(),
        packs
    );
}
