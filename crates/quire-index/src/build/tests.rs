use super::*;
use crate::source::DocumentSource;
use quire_core::Document;
use quire_core::chunk::chunk_hash;
use quire_embed::Models;

fn doc(id: &str, title: Option<&str>, text: &str) -> Document {
    Document {
        id: id.into(),
        title: title.map(Into::into),
        metadata: BTreeMap::new(),
        acl: None,
        updated_at: None,
        text: text.into(),
    }
}

#[test]
fn titles_join_the_embedding_input_and_its_cache_key_only_when_asked() {
    let docs = [
        doc("a", Some("  Parental leave "), "Twenty weeks."),
        doc("b", None, "No title here."),
        doc("c", Some(""), "An empty title."),
    ];
    let inputs_for = |spec: &BuildSpec| -> (Vec<String>, Vec<String>) {
        docs.iter()
            .map(|d| {
                let input = scan::embedding_text(scan::embedding_title(spec, d), &d.text);
                let key = chunk_hash(&input);
                (input.into_owned(), key)
            })
            .unzip()
    };
    let mut spec = BuildSpec::default();
    let (plain, plain_keys) = inputs_for(&spec);
    let texts: Vec<&str> = docs.iter().map(|d| d.text.as_str()).collect();
    assert_eq!(plain, texts);
    let hashes: Vec<String> = texts.iter().map(|t| chunk_hash(t)).collect();
    assert_eq!(plain_keys, hashes);
    let (_, plain_build) = build_into(b"titles", &docs, &spec, &[]);

    spec.embedding.include_title = true;
    let (titled, titled_keys) = inputs_for(&spec);
    assert_eq!(
        titled,
        [
            "Parental leave Twenty weeks.",
            "No title here.",
            "An empty title."
        ]
    );
    assert_eq!(titled_keys[0], chunk_hash("Parental leave Twenty weeks."));
    assert_eq!(titled_keys[1..], hashes[1..]);
    let (_, titled_build) = build_into(b"titles", &docs, &spec, &[]);
    assert_ne!(
        plain_build.index_id, titled_build.index_id,
        "include_title must change the index id"
    );
    assert_ne!(
        plain_build.build.stages[stages::VECTORS].key,
        titled_build.build.stages[stages::VECTORS].key
    );
}

fn build_with(docs: &[Document], spec: &BuildSpec, threads: usize) -> (Manifest, Vec<u8>) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("pool");
    let (dir, manifest) = pool.install(|| build_into(b"builders", docs, spec, &[]));
    let graph = std::fs::read(dir.path().join(GRAPH_FILE)).expect("graph");
    (manifest, graph)
}

#[test]
fn the_spec_chooses_the_graph_builder_and_quire_builds_the_same_bytes_on_any_threads() {
    let words = [
        "leave", "salary", "deploy", "rollback", "budget", "privacy", "heron",
    ];
    let docs: Vec<Document> = (0..400)
        .map(|i| {
            let text: Vec<&str> = (0..12)
                .map(|j| words[(i * 7 + j * j) % words.len()])
                .collect();
            doc(&format!("d{i:04}"), None, &text.join(" "))
        })
        .collect();
    let mut spec = BuildSpec::default();
    let (old, old_graph) = build_with(&docs, &spec, 2);
    spec.hnsw.builder = HnswBuilder::Quire;
    let (one, one_graph) = build_with(&docs, &spec, 1);
    let (two, two_graph) = build_with(&docs, &spec, 2);
    assert_eq!(one.content_digest, two.content_digest);
    assert_eq!(one_graph, two_graph);
    assert_ne!(one.index_id, old.index_id);
    assert_ne!(one_graph, old_graph);
    let graph = FrozenGraph::from_bytes(&one_graph).expect("parse");
    assert_eq!(graph.len(), 400);
    assert!((0..400).all(|i| graph.layers[0].neighbours_at(i).len() <= 32));
}

/// Build `docs` as snapshot `snapshot` with `spec` into a fresh directory, reusing `donors`.
fn build_into(
    snapshot: &[u8],
    docs: &[Document],
    spec: &BuildSpec,
    donors: &[Donor],
) -> (tempfile::TempDir, Manifest) {
    let snapshot = SnapshotId::from_hash(blake3::hash(snapshot));
    let embedder = Models::builtin().resolve(&spec.embedding).expect("hash-v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let req = BuildRequest {
        snapshot_id: &snapshot,
        documents: &docs,
        spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors,
    };
    let manifest = build_index(&req, dir.path(), &NoProgress).expect("build");
    (dir, manifest)
}

fn donor(dir: &tempfile::TempDir, manifest: &Manifest) -> Donor {
    Donor {
        dir: dir.path().to_owned(),
        manifest: manifest.clone(),
    }
}

fn reused_from(m: &Manifest, stage: &str) -> Option<IndexId> {
    m.build.stages[stage].reused_from.clone()
}

#[test]
fn reused_stages_give_the_bytes_of_a_cold_build() {
    let docs: Vec<Document> = (0..120)
        .map(|i| {
            doc(
                &format!("d{i:03}"),
                Some("Handbook"),
                &format!("leave policy {i} days"),
            )
        })
        .collect();
    let mut spec = BuildSpec::default();
    spec.hnsw.builder = HnswBuilder::Quire;
    let (first_dir, first) = build_into(b"s1", &docs, &spec, &[]);
    let donors = [donor(&first_dir, &first)];

    // ACL-only change: a new snapshot with the same texts. Vectors, graph and BM25 (which holds
    // no ACLs) are reused; only the tables are written.
    let mut restricted = docs.clone();
    restricted[3].acl = Some(quire_core::Acl::parse(["group:hr"]).expect("acl"));
    let (_, warm) = build_into(b"s2", &restricted, &spec, &donors);
    let (_, cold) = build_into(b"s2", &restricted, &spec, &[]);
    assert_eq!(warm.index_id, cold.index_id);
    assert_eq!(warm.files, cold.files);
    assert_eq!(warm.content_digest, cold.content_digest);
    assert_eq!(
        reused_from(&warm, stages::VECTORS),
        Some(first.index_id.clone())
    );
    assert_eq!(
        reused_from(&warm, stages::GRAPH),
        Some(first.index_id.clone())
    );
    assert_eq!(
        reused_from(&warm, stages::BM25),
        Some(first.index_id.clone())
    );
    assert_ne!(warm.permission_digest, first.permission_digest);
    for stage in [stages::VECTORS, stages::GRAPH, stages::BM25] {
        assert_eq!(warm.build.stages[stage].key, cold.build.stages[stage].key);
    }

    // A text change: every stage is computed again.
    let mut edited = docs.clone();
    edited[5].text = "leave policy rewritten".into();
    let (_, warm) = build_into(b"s3", &edited, &spec, &donors);
    assert!(warm.build.stages.values().all(|r| r.reused_from.is_none()));

    // A graph parameter change: vectors and BM25 (renamed to the new segment) are reused.
    let mut wider = spec.clone();
    wider.hnsw.m = 8;
    let (_, warm) = build_into(b"s1", &docs, &wider, &donors);
    let (_, cold) = build_into(b"s1", &docs, &wider, &[]);
    assert_eq!(warm.content_digest, cold.content_digest);
    assert_eq!(
        reused_from(&warm, stages::BM25),
        Some(first.index_id.clone())
    );
    assert_eq!(reused_from(&warm, stages::GRAPH), None);

    // A donor whose file no longer matches its manifest is skipped, not trusted.
    let vectors = first_dir.path().join(VECTORS_FILE);
    let mut bytes = std::fs::read(&vectors).expect("vectors");
    bytes[0] ^= 1;
    std::fs::write(&vectors, bytes).expect("tamper");
    let (_, warm) = build_into(b"s2", &restricted, &spec, &donors);
    let (_, cold) = build_into(b"s2", &restricted, &spec, &[]);
    assert_eq!(warm.content_digest, cold.content_digest);
    assert_eq!(reused_from(&warm, stages::VECTORS), None);
    assert_eq!(reused_from(&warm, stages::GRAPH), Some(first.index_id));
}

/// Yields its documents in blocks of 1, 2, 3, ... documents; from read `edit_on_read` on
/// (counting from 0), the first document's text is replaced.
struct UnevenBlocks {
    docs: Vec<Document>,
    reads: std::sync::atomic::AtomicUsize,
    edit_on_read: usize,
}

impl DocumentSource for UnevenBlocks {
    fn document_count(&self) -> u64 {
        self.docs.len() as u64
    }

    fn for_each_block(&self, visit: &mut dyn FnMut(&[Document]) -> Result<()>) -> Result<()> {
        let read = self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut docs = self.docs.clone();
        if read >= self.edit_on_read {
            docs[0].text = "edited between passes".into();
        }
        let (mut start, mut size) = (0, 1);
        while start < docs.len() {
            let end = (start + size).min(docs.len());
            visit(&docs[start..end])?;
            (start, size) = (end, size + 1);
        }
        Ok(())
    }
}

fn build_from(source: &dyn DocumentSource, spec: &BuildSpec) -> Result<Manifest> {
    let snapshot = SnapshotId::from_hash(blake3::hash(b"sources"));
    let embedder = Models::builtin().resolve(&spec.embedding).expect("hash-v1");
    let dir = tempfile::tempdir().expect("tempdir");
    let req = BuildRequest {
        snapshot_id: &snapshot,
        documents: source,
        spec,
        embedder: embedder.as_ref(),
        imported_at: "2026-01-01T00:00:00Z",
        cache: None,
        donors: &[],
    };
    build_index(&req, dir.path(), &NoProgress)
}

fn paragraphs(n: usize) -> Vec<Document> {
    (0..n)
        .map(|i| {
            let text: Vec<String> = (0..40 + i % 30)
                .map(|j| format!("w{}", (i * 31 + j * 7) % 97))
                .collect();
            doc(
                &format!("d{i:03}"),
                (i % 3 == 0).then_some("Title"),
                &text.join(" "),
            )
        })
        .collect()
}

#[test]
fn any_block_boundaries_give_the_same_index() {
    let docs = paragraphs(60);
    let mut spec = BuildSpec::default();
    spec.chunking = quire_core::spec::Chunking::Fixed {
        max_tokens: 16,
        overlap: 4,
    };
    spec.embedding.include_title = true;
    let whole = build_from(&docs, &spec).expect("slice");
    let uneven = UnevenBlocks {
        docs,
        reads: Default::default(),
        edit_on_read: usize::MAX,
    };
    let streamed = build_from(&uneven, &spec).expect("uneven blocks");
    assert!(whole.counts.chunks > 120, "documents span several chunks");
    assert_eq!(streamed.files, whole.files);
    assert_eq!(streamed.build.stages, whole.build.stages);
    assert_eq!(
        uneven.reads.into_inner(),
        3,
        "chunk, embed and bm25 each read once"
    );
}

#[test]
fn a_source_that_changes_between_passes_or_is_unsorted_is_refused() {
    for edit_on_read in [1, 2] {
        let changing = UnevenBlocks {
            docs: paragraphs(10),
            reads: Default::default(),
            edit_on_read,
        };
        let err = build_from(&changing, &BuildSpec::default()).expect_err("changed");
        assert!(
            err.to_string()
                .contains("the documents changed during the build"),
            "{err}"
        );
    }
    let mut unsorted = paragraphs(5);
    unsorted.swap(1, 3);
    let err = build_from(&unsorted, &BuildSpec::default()).expect_err("unsorted");
    assert!(
        err.to_string().contains(r#""d002" follows "d003""#),
        "{err}"
    );
}
