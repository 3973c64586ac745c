//! Corpus import through the `quire` binary: canonical snapshot ids and clear refusals.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::{handbook, quire, tree};
use tempfile::TempDir;

fn snapshot_id(data: &Path, args: &[&str]) -> String {
    let mut full = vec!["--json", "import"];
    full.extend_from_slice(args);
    quire(data, &full).ok().json()["snapshot_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn same_documents_in_any_order_or_format_give_the_same_snapshot() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let a = dir.path().join("a.jsonl");
    let b = dir.path().join("b.jsonl");
    let beir = dir.path().join("corpus.jsonl");
    std::fs::write(
        &a,
        "{\"id\":\"1\",\"title\":\"One\",\"text\":\"first\"}\n{\"id\":\"2\",\"text\":\"second\"}\n",
    )
    .unwrap();
    std::fs::write(&b, "\n{\"text\":\"second\",\"id\":\"2\",\"title\":\"\"}\n{\"text\":\"first\",\"title\":\"One\",\"id\":\"1\"}").unwrap();
    std::fs::write(&beir, "{\"_id\":\"2\",\"title\":\"\",\"text\":\"second\"}\n{\"_id\":\"1\",\"title\":\"One\",\"text\":\"first\",\"metadata\":{}}\n").unwrap();
    let ids: Vec<String> = [&a, &b, &beir]
        .iter()
        .map(|p| snapshot_id(&data, &[p.to_str().unwrap_or_default()]))
        .collect();
    assert!(ids[0].starts_with("snap-"));
    assert_eq!(ids[0], ids[1]);
    assert_eq!(ids[0], ids[2]);
    let listed = quire(&data, &["--json", "snapshots"]).ok().json();
    assert_eq!(listed.as_array().map(Vec::len), Some(1));

    // A directory with the same documents, read as files.
    let root = dir.path().join("tree");
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("sub/x.md"), "# X\nbody").unwrap();
    std::fs::write(root.join("y.txt"), "why").unwrap();
    std::fs::write(root.join("ignored.pdf"), "binary").unwrap();
    let c = dir.path().join("c.jsonl");
    std::fs::write(&c, "{\"id\":\"y.txt\",\"text\":\"why\"}\n{\"id\":\"sub/x.md\",\"title\":\"X\",\"text\":\"# X\\nbody\"}\n").unwrap();
    assert_eq!(
        snapshot_id(&data, &[root.to_str().unwrap_or_default()]),
        snapshot_id(&data, &[c.to_str().unwrap_or_default()])
    );
}

#[test]
fn handbook_acls_follow_the_last_matching_rule() {
    let data = TempDir::new().unwrap();
    let built = quire(
        data.path(),
        &["--json", "build", handbook().to_str().unwrap_or_default()],
    )
    .ok()
    .json();
    let id = built["index_id"].as_str().unwrap_or_default();
    let acl =
        std::fs::read_to_string(data.path().join("indexes").join(id).join("acl.jsonl")).unwrap();
    let line = |doc: &str| {
        acl.lines()
            .find(|l| l.contains(&format!("\"{doc}\"")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(line("hr/compensation-bands-and-salary-review.md").contains("[\"group:hr\"]"));
    assert!(line("hr/parental-leave-policy.md").contains("[\"group:all-staff\"]"));
    assert!(line("people/alice-offer-letter.md").contains("[\"user:alice\",\"group:hr\"]"));
    assert!(line("general/welcome.md").contains("[\"*\"]"));
    let docs = built["counts"]["documents"].as_u64().unwrap_or_default();
    assert!(
        docs >= 60,
        "the handbook should have at least 60 documents, has {docs}"
    );
}

/// Each bad corpus fails with exit 1, a one-line error containing `want`, and no change to a
/// data dir that already holds a snapshot.
fn assert_refused(setup: impl FnOnce(&Path) -> (Vec<String>, &'static str)) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    quire(&data, &["import", handbook().to_str().unwrap_or_default()]).ok();
    let before = tree(&data);
    let (args, want) = setup(dir.path());
    let mut full = vec!["import".to_owned()];
    full.extend(args);
    let run = quire(&data, &full.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 1, "expected exit 1 for {want:?}: {}", run.stderr);
    let stderr = run.stderr.trim_end();
    assert!(!stderr.contains('\n'), "error should be one line: {stderr}");
    assert!(
        stderr.contains(want),
        "error {stderr:?} should contain {want:?}"
    );
    assert_eq!(tree(&data), before, "a refused import changed the data dir");
}

fn jsonl(dir: &Path, body: &[u8]) -> Vec<String> {
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, body).unwrap();
    vec![path.to_string_lossy().into_owned()]
}

#[test]
fn malformed_json_names_file_and_line() {
    assert_refused(|d| {
        (
            jsonl(
                d,
                b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\": \"b\", \"text\": }\n",
            ),
            "bad.jsonl:2: malformed JSON",
        )
    });
}

#[test]
fn missing_or_empty_id_is_refused() {
    assert_refused(|d| (jsonl(d, b"{\"text\":\"x\"}\n"), "bad.jsonl:1: missing `id`"));
    assert_refused(|d| {
        (
            jsonl(d, b"{\"id\":\"\",\"text\":\"x\"}\n"),
            "bad.jsonl:1: `id` is empty",
        )
    });
}

#[test]
fn missing_text_is_refused() {
    assert_refused(|d| {
        (
            jsonl(d, b"{\"id\":\"a\",\"text\":\"x\"}\n\n{\"id\":\"b\"}\n"),
            "bad.jsonl:3: missing `text`",
        )
    });
}

#[test]
fn non_string_metadata_is_refused() {
    assert_refused(|d| {
        (
            jsonl(
                d,
                b"{\"id\":\"a\",\"text\":\"x\",\"metadata\":{\"year\":2024}}\n",
            ),
            "metadata value `year` must be a string",
        )
    });
}

#[test]
fn duplicate_ids_name_both_lines() {
    assert_refused(|d| {
        let args = jsonl(d, b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"b\",\"text\":\"y\"}\n{\"id\":\"a\",\"text\":\"z\"}\n");
        (args, "bad.jsonl:3: duplicate id \"a\" (first seen at ")
    });
    assert_refused(|d| {
        (
            jsonl(
                d,
                b"{\"id\":\"a\",\"text\":\"x\"}\n{\"id\":\"a\",\"text\":\"z\"}\n",
            ),
            "bad.jsonl:1)",
        )
    });
}

#[test]
fn invalid_utf8_is_refused() {
    assert_refused(|d| {
        (
            jsonl(d, b"{\"id\":\"a\",\"text\":\"caf\xe9\"}\n"),
            "bad.jsonl:1: invalid UTF-8 at byte 21",
        )
    });
    assert_refused(|d| {
        let root = d.join("tree");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("bad.md"), b"# T\n\xff").unwrap();
        (
            vec![root.to_string_lossy().into_owned()],
            "bad.md: invalid UTF-8 at byte 4",
        )
    });
}

#[test]
fn empty_corpus_is_refused() {
    assert_refused(|d| (jsonl(d, b"\n  \n"), "the corpus has no documents"));
    assert_refused(|d| {
        let root = d.join("empty");
        std::fs::create_dir_all(&root).unwrap();
        (
            vec![root.to_string_lossy().into_owned()],
            "the corpus has no documents",
        )
    });
}

#[test]
fn unreadable_paths_are_refused() {
    assert_refused(|d| {
        (
            vec![d.join("nope.jsonl").to_string_lossy().into_owned()],
            "nope.jsonl: No such file",
        )
    });
}

#[test]
fn symlinks_escaping_the_root_are_refused() {
    assert_refused(|d| {
        let root = d.join("tree");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(d.join("secret.md"), "# outside").unwrap();
        std::os::unix::fs::symlink(d.join("secret.md"), root.join("link.md")).unwrap();
        (
            vec![root.to_string_lossy().into_owned()],
            "link.md: symlink points outside the corpus root",
        )
    });
}

#[test]
fn bad_acls_are_refused() {
    assert_refused(|d| {
        (
            jsonl(d, b"{\"id\":\"a\",\"text\":\"x\",\"acl\":[\"hr\"]}\n"),
            "bad.jsonl:1: `acl`: invalid principal \"hr\"",
        )
    });
    assert_refused(|d| {
        let root = d.join("tree");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("a.md"), "# A").unwrap();
        std::fs::write(
            root.join("quire-acl.toml"),
            "version = 1\n[[rules]]\npaths = [\"[\"]\nacl = [\"*\"]\n",
        )
        .unwrap();
        (
            vec![root.to_string_lossy().into_owned()],
            "quire-acl.toml: rules[0].paths: bad glob \"[\"",
        )
    });
}

#[test]
fn bad_specs_are_refused_before_anything_is_stored() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let spec = dir.path().join("quire.toml");
    std::fs::write(
        &spec,
        "version = 1\n[hnsw]\nm = 1\nef_construction = 10\nef_search = 5\n",
    )
    .unwrap();
    let run = quire(
        &data,
        &[
            "build",
            handbook().to_str().unwrap_or_default(),
            "--spec",
            spec.to_str().unwrap_or_default(),
        ],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("quire.toml: field `hnsw.m` = 1: must be between 2 and 128"),
        "{}",
        run.stderr
    );
    assert!(!data.join("snapshots").exists() || tree(&data.join("snapshots")).is_empty());
}

#[test]
fn spec_default_round_trips() {
    let dir = TempDir::new().unwrap();
    let run = quire(dir.path(), &["spec", "default"]).ok();
    assert!(run.stdout.contains("version = 1") && run.stdout.contains("# "));
    let spec = dir.path().join("quire.toml");
    std::fs::write(&spec, &run.stdout).unwrap();
    let with_file = quire(
        dir.path(),
        &[
            "--json",
            "build",
            handbook().to_str().unwrap_or_default(),
            "--spec",
            spec.to_str().unwrap_or_default(),
        ],
    )
    .ok()
    .json();
    let without = quire(
        dir.path(),
        &["--json", "build", handbook().to_str().unwrap_or_default()],
    )
    .ok()
    .json();
    assert_eq!(with_file["index_id"], without["index_id"]);
}

#[test]
fn a_locked_data_dir_is_refused_clearly() {
    let dir = TempDir::new().unwrap();
    let _held = quire_store::Store::open(dir.path(), quire_store::Access::Write).unwrap();
    let run = quire(
        dir.path(),
        &["import", handbook().to_str().unwrap_or_default()],
    );
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is locked by another quire process"),
        "{}",
        run.stderr
    );
}

#[test]
fn readers_do_not_create_data_dirs() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("typo");
    let run = quire(&missing, &["indexes"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("is not a quire data dir"),
        "{}",
        run.stderr
    );
    assert!(!missing.exists(), "a read must not create the data dir");
}

/// Finding 3 of issue 14: `/dev/zero` is one endless line. Every reader (JSONL, BEIR, format
/// detection, a directory's files) stops at the largest document it accepts, naming the file
/// and line, in bounded memory (the run is capped at 2 GiB of address space), and nothing is
/// stored.
#[test]
fn endless_lines_and_huge_files_are_refused_in_bounded_memory() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    for args in [
        &["import", "/dev/zero"][..],
        &["import", "--format", "jsonl", "/dev/zero"],
        &["import", "--format", "beir", "/dev/zero"],
        &["build", "/dev/zero"],
    ] {
        let run = common::quire_capped(&data, args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("/dev/zero:1: line is longer than 16777216 bytes"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("internal error"), "{}", run.stderr);
    }
    // Sparse files of 8 GiB of zeros: as a JSONL file, and as a directory's Markdown file and
    // ACL rules.
    let sparse = |path: &Path| {
        std::fs::File::create(path)
            .unwrap()
            .set_len(8 << 30)
            .unwrap();
    };
    let big = dir.path().join("big.jsonl");
    sparse(&big);
    let tree_dir = dir.path().join("tree");
    std::fs::create_dir_all(&tree_dir).unwrap();
    std::fs::write(tree_dir.join("small.md"), "# Small\nfine").unwrap();
    sparse(&tree_dir.join("huge.md"));
    let acl_dir = dir.path().join("acl");
    std::fs::create_dir_all(&acl_dir).unwrap();
    std::fs::write(acl_dir.join("a.md"), "# A").unwrap();
    sparse(&acl_dir.join("quire-acl.toml"));
    for (path, want) in [
        (&big, "big.jsonl:1: line is longer than 16777216 bytes"),
        (&tree_dir, "huge.md: file is longer than 16777216 bytes"),
        (
            &acl_dir,
            "quire-acl.toml: file is longer than 16777216 bytes",
        ),
    ] {
        let run = common::quire_capped(&data, &["import", path.to_str().unwrap()]);
        assert_eq!(run.code, 1, "{path:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{path:?}: {}", run.stderr);
    }
    // A build spec is bounded too.
    let hb = handbook();
    let run = common::quire_capped(
        &data,
        &["build", hb.to_str().unwrap(), "--spec", "/dev/zero"],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("/dev/zero: longer than 1048576 bytes"),
        "{}",
        run.stderr
    );
    assert!(!data.join("snapshots").exists() || tree(&data.join("snapshots")).is_empty());
}

/// Issue 14 (item 7): what the user got wrong is reported as such (exit 1, the file named),
/// never as an "internal error".
#[test]
fn user_errors_are_not_internal_errors() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("a.md"), "# A").unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.md"), root.join("dangling.md")).unwrap();
    let missing = dir.path().join("nonexistent.jsonl");
    for (args, want) in [
        (
            vec!["import", "/nonexistent-quire-corpus"],
            "/nonexistent-quire-corpus: No such file",
        ),
        (
            vec!["import", "--format", "jsonl", missing.to_str().unwrap()],
            "nonexistent.jsonl: No such file",
        ),
        (
            vec!["build", "/nonexistent-quire-corpus/x.jsonl"],
            "no snapshot matches",
        ),
        (vec!["import", root.to_str().unwrap()], "dangling.md"),
    ] {
        let run = quire(&data, &args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(want), "{args:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("internal error"),
            "{args:?}: {}",
            run.stderr
        );
    }
}

/// Issue 14, item 5: ACL rules that can never match (`./`, `..`, absolute) are refused naming
/// the rule; a rule that matches no document (here `hr/**` against a folder named `HR/`:
/// matching is case-sensitive) is a warning, or with `--strict` a refusal before anything is
/// stored; `import` prints how many documents each rule matches.
#[test]
fn acl_rules_are_checked_and_counted() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("data");
    let root = dir.path().join("corpus");
    std::fs::create_dir_all(root.join("HR")).unwrap();
    std::fs::write(root.join("HR/pay.md"), "# Pay\nsalaries").unwrap();
    std::fs::write(root.join("welcome.md"), "# Welcome\nhello").unwrap();
    let rules = |paths: &str| {
        let text = format!(
            "version = 1\n[[rules]]\npaths = [\"**\"]\nacl = [\"*\"]\n[[rules]]\npaths = [{paths}]\nacl = [\"group:hr\"]\n"
        );
        std::fs::write(root.join("quire-acl.toml"), text).unwrap();
    };
    let r = root.to_str().unwrap_or_default();
    for (paths, want) in [
        (
            "\"./HR/**\"",
            "rules[1].paths: \"./HR/**\" has a `.` component",
        ),
        ("\"../x\"", "rules[1].paths: \"../x\" climbs out"),
        ("\"/etc/**\"", "rules[1].paths: \"/etc/**\" is absolute"),
    ] {
        rules(paths);
        let run = quire(&data, &["import", r]);
        assert_eq!(run.code, 1, "{paths}: {}", run.stderr);
        assert!(
            run.stderr.contains("quire-acl.toml: ") && run.stderr.contains(want),
            "{paths}: {}",
            run.stderr
        );
    }

    rules("\"hr/**\"");
    let unmatched = "rules[1] (hr/**) matches no document (matching is case-sensitive; 1 would match ignoring case)";
    let strict = quire(&data, &["import", "--strict", r]);
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert!(strict.stderr.contains(unmatched), "{}", strict.stderr);
    let stored = quire(&data, &["--json", "snapshots"]).ok().json();
    assert_eq!(
        stored.as_array().map(Vec::len),
        Some(0),
        "--strict stores nothing"
    );
    let run = quire(&data, &["import", r]).ok();
    assert!(
        run.stderr.contains("warning: ") && run.stderr.contains(unmatched),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("    rules[0]      2  **\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("    rules[1]      0  hr/**\n"),
        "{}",
        run.stdout
    );
    let json = quire(&data, &["--json", "import", r]).ok().json();
    assert!(
        json["snapshot_id"]
            .as_str()
            .is_some_and(|s| s.starts_with("snap-"))
    );
    assert_eq!(json["acl_rules"][1]["files"], 0, "{json}");
    assert_eq!(json["acl_rules"][1]["files_ignoring_case"], 1, "{json}");

    rules("\"HR/**\"");
    let run = quire(&data, &["import", "--strict", r]).ok();
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);
    assert!(
        run.stdout.contains("    rules[1]      1  HR/**\n"),
        "{}",
        run.stdout
    );
}
