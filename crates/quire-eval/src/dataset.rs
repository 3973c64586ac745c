//! BEIR datasets: `queries.jsonl` and `qrels/<split>.tsv`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::EvalError;

/// Relevance judgments: query id -> document id -> graded relevance.
pub type Qrels = BTreeMap<String, BTreeMap<String, i32>>;

/// A dataset split ready to evaluate: the queries that have judgments, and the judgments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    /// Query id -> query text, for every judged query.
    pub queries: BTreeMap<String, String>,
    /// The judgments.
    pub qrels: Qrels,
}

/// The longest line of a dataset file (a query, a judgment) this reader accepts.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// The lines of `path` (without their `\n` or `\r\n`), each with its `file:line`. A line longer
/// than [`MAX_LINE_BYTES`] is an error after reading at most that many bytes of it, so an
/// endless one (`/dev/zero`) cannot exhaust memory.
fn lines(
    path: &Path,
) -> Result<impl Iterator<Item = (String, Result<String, EvalError>)>, EvalError> {
    let display = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| EvalError::Io {
        path: display.clone(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut line_no = 0u64;
    Ok(std::iter::from_fn(move || {
        line_no += 1;
        let origin = format!("{display}:{line_no}");
        let bad = |reason: String| EvalError::Malformed {
            origin: origin.clone(),
            reason,
        };
        let mut buf = Vec::new();
        let line = match (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf)
        {
            Ok(0) => return None,
            Err(e) => Err(bad(e.to_string())),
            Ok(_) if !buf.ends_with(b"\n") && buf.len() as u64 > MAX_LINE_BYTES => {
                Err(bad(format!("line is longer than {MAX_LINE_BYTES} bytes")))
            }
            Ok(_) => {
                let end = buf.strip_suffix(b"\n").map_or(buf.len(), <[u8]>::len);
                let end = buf[..end].strip_suffix(b"\r").map_or(end, <[u8]>::len);
                buf.truncate(end);
                String::from_utf8(buf).map_err(|e| {
                    bad(format!(
                        "invalid UTF-8 at byte {}",
                        e.utf8_error().valid_up_to()
                    ))
                })
            }
        };
        Some((origin.clone(), line))
    }))
}

/// Read `qrels/<split>.tsv`: a header line, then `query-id<TAB>corpus-id<TAB>score`.
pub fn read_qrels(path: &Path) -> Result<Qrels, EvalError> {
    let mut qrels = Qrels::new();
    for (n, (origin, line)) in lines(path)?.enumerate() {
        let line = line?;
        if n == 0 && line.starts_with("query-id") || line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::Malformed {
            origin: origin.clone(),
            reason,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let [query, doc, score] = fields.as_slice() else {
            return Err(bad(format!(
                "expected 3 tab-separated fields, found {}",
                fields.len()
            )));
        };
        let score: i32 = score
            .trim()
            .parse()
            .map_err(|_| bad(format!("score {score:?} is not an integer")))?;
        qrels
            .entry((*query).to_owned())
            .or_default()
            .insert((*doc).to_owned(), score);
    }
    Ok(qrels)
}

/// Read `queries.jsonl` (`{"_id", "text"}` per line).
pub fn read_queries(path: &Path) -> Result<BTreeMap<String, String>, EvalError> {
    let mut queries = BTreeMap::new();
    for (origin, line) in lines(path)? {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::Malformed {
            origin: origin.clone(),
            reason,
        };
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| bad(format!("malformed JSON: {e}")))?;
        let id = value
            .get("_id")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("missing string `_id`".into()))?;
        let text = value
            .get("text")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("missing string `text`".into()))?;
        queries.insert(id.to_owned(), text.to_owned());
    }
    Ok(queries)
}

/// `qrels/<split>.tsv` of the BEIR dataset in `dir`, refused naming the splits there when it
/// does not exist: a mistyped `--split` should say so, not report a missing file.
pub fn qrels_path(dir: &Path, split: &str) -> Result<PathBuf, EvalError> {
    let path = dir.join("qrels").join(format!("{split}.tsv"));
    if path.is_file() {
        return Ok(path);
    }
    let mut splits: Vec<String> = std::fs::read_dir(dir.join("qrels"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".tsv").map(str::to_owned)
        })
        .collect();
    splits.sort();
    Err(EvalError::NoSplit {
        dir: dir.display().to_string(),
        split: split.to_owned(),
        available: if splits.is_empty() {
            "none".into()
        } else {
            splits.join(", ")
        },
    })
}

/// Load split `split` of the BEIR dataset in `dir`, keeping the queries that have judgments.
/// A judged query missing from `queries.jsonl`, or whose text there is empty, is an error naming
/// it (and counting the others): evaluating it as an empty query would score 0 silently.
pub fn load(dir: &Path, split: &str) -> Result<Dataset, EvalError> {
    let qrels_path = qrels_path(dir, split)?;
    let qrels = read_qrels(&qrels_path)?;
    let mut all = read_queries(&dir.join("queries.jsonl"))?;
    let mut queries = BTreeMap::new();
    let mut lacking = Vec::new();
    for id in qrels.keys() {
        match all.remove(id) {
            Some(text) if !text.trim().is_empty() => {
                queries.insert(id.clone(), text);
            }
            text => lacking.push((id, text.is_some())),
        }
    }
    if let Some((id, present)) = lacking.first() {
        let what = if *present {
            "its text in queries.jsonl is empty"
        } else {
            "not in queries.jsonl"
        };
        let others = match lacking.len() {
            1 => String::new(),
            n => format!(" ({n} judged queries of split {split:?} have no text there)"),
        };
        return Err(EvalError::Malformed {
            origin: qrels_path.display().to_string(),
            reason: format!("query {id:?} is judged but {what}{others}"),
        });
    }
    Ok(Dataset { queries, qrels })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scifact_test_split_loads_when_present() -> Result<(), EvalError> {
        let Some(dir) = quire_testkit::scifact() else {
            return Ok(());
        };
        let d = load(&dir, "test")?;
        assert_eq!(d.queries.len(), 300);
        assert_eq!(d.qrels.values().map(BTreeMap::len).sum::<usize>(), 339);
        Ok(())
    }

    #[test]
    fn malformed_lines_are_named() {
        let dir = std::env::temp_dir().join(format!("quire-eval-{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir.join("qrels"));
        let qrels = dir.join("qrels/test.tsv");
        let _ = std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\n");
        let err = read_qrels(&qrels)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.ends_with("test.tsv:3: expected 3 tab-separated fields, found 2"),
            "{err}"
        );
        let _ = std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nq1\td1\tyes\n");
        let err = read_qrels(&qrels)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.ends_with("test.tsv:2: score \"yes\" is not an integer"),
            "{err}"
        );
        let _ = std::fs::write(
            dir.join("queries.jsonl"),
            "{\"_id\": \"q9\", \"text\": \"x\"}\n",
        );
        let _ = std::fs::write(&qrels, "query-id\tcorpus-id\tscore\nq1\td1\t1\n");
        let err = load(&dir, "test")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("query \"q1\" is judged but not in queries.jsonl"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 16: `--split train` on SciFact, whose `queries.jsonl` holds the test queries only,
    /// is refused naming a query, instead of evaluating 809 empty queries.
    #[test]
    fn scifact_train_split_without_its_queries_is_refused() {
        let Some(dir) = quire_testkit::scifact() else {
            return;
        };
        let err = load(&dir, "train")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.ends_with(
                "train.tsv: query \"0\" is judged but not in queries.jsonl \
                 (809 judged queries of split \"train\" have no text there)"
            ),
            "{err}"
        );
    }

    #[test]
    fn missing_splits_and_empty_query_texts_are_refused() {
        let dir = tempfile::TempDir::new().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let err =
            |r: Result<Dataset, EvalError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(
            err(load(root, "dev")),
            format!(
                "{}: no split \"dev\" (no qrels/dev.tsv; splits there: none)",
                root.display()
            )
        );
        let _ = std::fs::create_dir_all(root.join("qrels"));
        for split in ["train", "test"] {
            let _ = std::fs::write(
                root.join(format!("qrels/{split}.tsv")),
                "query-id\tcorpus-id\tscore\nq1\td1\t1\n",
            );
        }
        assert_eq!(
            err(load(root, "dev")),
            format!(
                "{}: no split \"dev\" (no qrels/dev.tsv; splits there: test, train)",
                root.display()
            )
        );
        let _ = std::fs::write(
            root.join("queries.jsonl"),
            "{\"_id\": \"q1\", \"text\": \" \"}\n",
        );
        assert!(
            err(load(root, "test")).ends_with(
                "test.tsv: query \"q1\" is judged but its text in queries.jsonl is empty"
            ),
            "{}",
            err(load(root, "test"))
        );
    }

    /// Issue 14, finding 3: an endless line is refused after [`MAX_LINE_BYTES`], naming the
    /// file and line, instead of being read until memory runs out.
    #[test]
    fn endless_lines_are_refused() {
        for err in [
            read_queries(Path::new("/dev/zero")).err(),
            read_qrels(Path::new("/dev/zero")).err(),
        ] {
            let err = err.map(|e| e.to_string()).unwrap_or_default();
            assert_eq!(err, "/dev/zero:1: line is longer than 16777216 bytes");
        }
    }
}
