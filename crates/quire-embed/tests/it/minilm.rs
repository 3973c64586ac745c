//! all-MiniLM-L6-v2 through quire's encoder: pinned digest, sensible similarities, truncation,
//! and bits that do not depend on batching, threads or the CPU kernel path. Skips with a message when
//! `models/all-minilm-l6-v2` is absent (`scripts/fetch-model` fetches it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use quire_core::BuildSpec;
use quire_core::spec::{EmbeddingSpec, Precision};
use quire_embed::{BertEmbedder, Embedder, KernelPath, Models};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model_dir() -> Option<PathBuf> {
    quire_testkit::minilm()
}

fn cos(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_matches_its_pin_and_embeds_sensibly() {
    let Some(dir) = model_dir() else { return };
    let model = BertEmbedder::load("all-minilm-l6-v2", &dir).unwrap();
    let spec = std::fs::read_to_string(workspace().join("specs/minilm.toml")).unwrap();
    let spec = BuildSpec::from_toml(&spec, "specs/minilm.toml").unwrap();
    assert_eq!(
        Some(model.digest()),
        spec.embedding.digest.as_deref(),
        "specs/minilm.toml pins another digest than models/all-minilm-l6-v2 has"
    );
    assert_eq!((model.dim(), model.max_seq_length()), (384, 256));

    let texts = [
        "Parental leave is twenty weeks for every new parent.",
        "How long can new mothers and fathers stay home after a birth?",
        "The incident severity matrix ranks outages from SEV1 to SEV4.",
        "",
    ];
    let rows = model.embed_batch(&texts).unwrap();
    for row in rows.rows().into_iter().take(3) {
        let norm: f32 = row.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    let r: Vec<Vec<f32>> = rows.rows().into_iter().map(|r| r.to_vec()).collect();
    let related = cos(&r[0], &r[1]);
    let unrelated = cos(&r[0], &r[2]);
    assert!(
        related > unrelated + 0.2,
        "related {related}, unrelated {unrelated}"
    );

    // Alone or in a batch, a text embeds to the same bits.
    let alone = model.embed_batch(&[texts[1]]).unwrap();
    assert_eq!(
        alone.row(0).iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        r[1].iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );

    // Truncation: everything past 256 word pieces is ignored.
    let long = format!("{} {}", "word ".repeat(300), "zebra ".repeat(50));
    let longer = format!("{} {}", "word ".repeat(300), "giraffe ".repeat(50));
    let pair = model.embed_batch(&[&long, &longer]).unwrap();
    assert_eq!(pair.row(0), pair.row(1));
}

#[test]
fn vectors_do_not_depend_on_the_thread_pool() {
    let Some(dir) = model_dir() else { return };
    let models = Models::builtin()
        .with_local("all-minilm-l6-v2", &dir)
        .unwrap();
    let spec = EmbeddingSpec {
        model: "all-minilm-l6-v2".into(),
        dim: None,
        digest: None,
        include_title: false,
        precision: Default::default(),
    };
    let model = models.resolve(&spec).unwrap();
    // Loaded once: a second resolution shares the same model.
    let again = models.resolve(&spec).unwrap();
    assert!(std::ptr::addr_eq(
        std::sync::Arc::as_ptr(&model),
        std::sync::Arc::as_ptr(&again)
    ));
    let texts: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "Document {i} talks about {} and more.",
                "leave ".repeat(i * 20)
            )
        })
        .collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| model.embed_batch(&refs).unwrap())
    };
    let (one, two) = (run(1), run(2));
    assert!(
        one.iter()
            .zip(two.iter())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );

    // A query embeds like the same text in a build: on its own thread, and with each step split
    // over a pool of two (several at once, so halves are stolen, run in place and interleaved).
    let alone: Vec<Vec<f32>> = refs.iter().map(|t| model.embed_query(t).unwrap()).collect();
    let split: Vec<Vec<f32>> = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| {
            use rayon::prelude::*;
            refs.par_iter()
                .map(|t| model.embed_query(t).unwrap())
                .collect()
        });
    for ((alone, split), want) in alone.iter().zip(&split).zip(one.rows()) {
        let want: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
        assert_eq!(alone.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want);
        assert_eq!(split.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), want);
    }

    let wrong = EmbeddingSpec {
        digest: Some("0".repeat(64)),
        include_title: false,
        precision: Default::default(),
        ..spec
    };
    let err = models.resolve(&wrong).err().unwrap().to_string();
    assert!(
        err.contains(&"0".repeat(64)) && err.contains(model.digest()),
        "{err}"
    );
}

#[test]
fn every_kernel_path_gives_the_same_bits() {
    let Some(dir) = model_dir() else { return };
    let texts = [
        "Short query?",
        "A longer passage about parental leave, incident severity and the on-call rota, which \
         runs past a few dozen word pieces so that several row tiles are used.",
        "same length one",
        "same length two",
    ];
    let mut runs = Vec::new();
    for path in KernelPath::available() {
        let model = BertEmbedder::load("all-minilm-l6-v2", &dir)
            .unwrap()
            .with_kernel(path)
            .unwrap();
        assert_eq!(model.kernel(), path);
        let rows = model.embed_batch(&texts).unwrap();
        runs.push((path, rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>()));
    }
    assert_eq!(runs[0].0, KernelPath::Scalar);
    for (path, bits) in &runs[1..] {
        assert!(bits == &runs[0].1, "{path} differs from the scalar path");
    }
}

#[test]
fn int8_is_exact_across_paths_and_batches_and_close_to_fp32() {
    let Some(dir) = model_dir() else { return };
    let texts = [
        "Parental leave is twenty weeks for every new parent.",
        "How long can new mothers and fathers stay home after a birth?",
        "The incident severity matrix ranks outages from SEV1 to SEV4.",
    ];
    let fp32 = BertEmbedder::load("all-minilm-l6-v2", &dir).unwrap();
    let want = fp32.embed_batch(&texts).unwrap();
    let mut runs = Vec::new();
    for path in KernelPath::available() {
        let int8 = BertEmbedder::load_at("all-minilm-l6-v2", &dir, Precision::Int8)
            .unwrap()
            .with_kernel(path)
            .unwrap();
        assert_eq!(
            (int8.precision(), int8.digest()),
            (Precision::Int8, fp32.digest())
        );
        assert_ne!(int8.cache_namespace(), fp32.cache_namespace());
        let rows = int8.embed_batch(&texts).unwrap();
        let alone = int8.embed_batch(&texts[1..2]).unwrap();
        assert!(
            alone
                .row(0)
                .iter()
                .zip(rows.row(1))
                .all(|(a, b)| a.to_bits() == b.to_bits())
        );
        for (a, b) in rows.rows().into_iter().zip(want.rows()) {
            let c = cos(a.as_slice().unwrap(), b.as_slice().unwrap());
            assert!(c > 0.99, "int8 vs fp32 cosine {c}");
        }
        runs.push(rows.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }
    assert!(
        runs.windows(2).all(|w| w[0] == w[1]),
        "int8 differs between kernel paths"
    );

    let models = Models::builtin()
        .with_local("all-minilm-l6-v2", &dir)
        .unwrap();
    let spec = EmbeddingSpec {
        model: "all-minilm-l6-v2".into(),
        dim: None,
        digest: Some(fp32.digest().into()),
        include_title: false,
        precision: Precision::Int8,
    };
    let resolved = models.resolve(&spec).unwrap();
    assert_eq!(resolved.precision(), Precision::Int8);
    let hash = EmbeddingSpec {
        precision: Precision::Int8,
        ..EmbeddingSpec::default()
    };
    let err = models.resolve(&hash).err().unwrap().to_string();
    assert!(err.contains("hash-v1 has only fp32"), "{err}");
}
