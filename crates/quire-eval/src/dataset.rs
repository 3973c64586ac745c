//! BEIR datasets: `queries.jsonl` and `qrels/<split>.tsv`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

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

/// Load split `split` of the BEIR dataset in `dir`, keeping the queries that have judgments.
/// A judged query missing from `queries.jsonl` is an error naming it.
pub fn load(dir: &Path, split: &str) -> Result<Dataset, EvalError> {
    let qrels_path = dir.join("qrels").join(format!("{split}.tsv"));
    let qrels = read_qrels(&qrels_path)?;
    let mut all = read_queries(&dir.join("queries.jsonl"))?;
    let mut queries = BTreeMap::new();
    for id in qrels.keys() {
        let text = all.remove(id).ok_or_else(|| EvalError::Malformed {
            origin: qrels_path.display().to_string(),
            reason: format!("query {id:?} is judged but not in queries.jsonl"),
        })?;
        queries.insert(id.clone(), text);
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
