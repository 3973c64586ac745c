//! Every committed fuzz input, the corpora (`fuzz/corpus/<harness>/`) and the findings
//! (`fuzz/findings/<harness>/`, each once a crash or hang), replayed through its harness.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<harness>/`, sorted (none if the directory does not exist).
fn inputs(kind: &str, harness: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(harness);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(kind: &str) -> usize {
    let mut n = 0;
    for (harness, run) in quire_fuzz::HARNESSES {
        for path in inputs(kind, harness) {
            let data = std::fs::read(&path).expect("read a fuzz input");
            eprintln!("{}", path.display());
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn every_harness_has_a_committed_corpus() {
    for (harness, _) in quire_fuzz::HARNESSES {
        assert!(
            !inputs("corpus", harness).is_empty(),
            "fuzz/corpus/{harness}/ is empty or missing"
        );
    }
}

#[test]
fn corpora_replay_without_a_panic() {
    assert!(replay("corpus") > 0);
}

#[test]
fn findings_replay_without_a_panic() {
    replay("findings");
}

/// The seeds reach past the parsers' first refusal: some spec and some server.toml of the
/// corpus are accepted, so the harnesses' checks on accepted values run.
#[test]
fn corpora_hold_accepted_configs() {
    let accepted = |harness: &str, parse: &dyn Fn(&str) -> bool| {
        inputs("corpus", harness)
            .iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|text| parse(&text)))
    };
    assert!(accepted("spec", &|t| quire_core::BuildSpec::from_toml(
        t, "s"
    )
    .is_ok()));
    assert!(accepted("server_config", &|t| {
        quire_server::ServerConfig::from_toml(t, "s").is_ok()
    }));
}
