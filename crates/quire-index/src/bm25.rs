//! The tantivy side of an index: schema, analyzers, and a deterministic single-segment writer.
//!
//! tantivy normally names segments with random UUIDs and may split a corpus over several
//! segments. quire writes exactly one segment, with one [`SegmentWriter`], under a segment id
//! derived from the index id; the segment files and `meta.json` are then byte-identical across
//! builds. tantivy's `.managed.json` (a hash set, in arbitrary order) is removed after writing and
//! lock files are ignored by verification. Within the single segment, tantivy's doc id equals
//! quire's chunk ordinal.
//!
//! Permissions are not in the segment: a search filters by the reader's allowed set of chunk
//! ordinals inside tantivy's top-k loop ([`crate::OpenIndex::bm25`]), so the segment depends on
//! titles and texts only, and an ACL change leaves it as it was. Format 2 indices also hold an
//! `acl` field, which is ignored.
//!
//! A chunk's title and text are indexed as two values of one field, `text`, so BM25 scores them
//! as one bag of words with one length normalisation (as Anserini and BEIR index
//! `title + text`). Separate title and body fields, their BM25 scores summed, count every term
//! of a short title twice over, at a title-only IDF: on SciFact (test split, top-10 documents)
//! that gave nDCG@10 0.6625 against 0.6876 for the single field.

use std::path::Path;

use quire_core::IndexId;
use quire_core::spec::Analyzer;
use tantivy::index::SegmentId;
use tantivy::indexer::{AddOperation, SegmentWriter};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexSettings, TantivyDocument};

use crate::error::{IndexError, IoContext, Result};

/// Subdirectory of an index holding the tantivy index.
pub const BM25_DIR: &str = "bm25";
/// Files tantivy creates that are not part of the artifact.
pub const EPHEMERAL_FILES: [&str; 3] = [
    ".managed.json",
    ".tantivy-meta.lock",
    ".tantivy-writer.lock",
];

/// The fields of the BM25 schema.
#[derive(Clone, Copy, Debug)]
pub struct Bm25Fields {
    /// What BM25 scores: the document title (repeated on each of its chunks) and the chunk
    /// text, as two values of one field. Indexed, not stored.
    pub text: Field,
    /// The chunk text as stored for hits; not indexed.
    pub body: Field,
}

/// The tokenizer name registered for an analyzer.
pub fn analyzer_name(analyzer: Analyzer) -> &'static str {
    match analyzer {
        Analyzer::English => "quire_english",
        Analyzer::Plain => "quire_plain",
    }
}

/// The text analyzer for `analyzer`.
pub fn text_analyzer(analyzer: Analyzer) -> Result<TextAnalyzer> {
    let base = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    Ok(match analyzer {
        Analyzer::Plain => base.build(),
        Analyzer::English => {
            let stop = StopWordFilter::new(Language::English)
                .ok_or_else(|| IndexError::Invalid("tantivy lacks English stopwords".into()))?;
            base.filter(stop)
                .filter(Stemmer::new(Language::English))
                .build()
        }
    })
}

/// The schema for `analyzer`.
pub fn schema(analyzer: Analyzer) -> (Schema, Bm25Fields) {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(analyzer_name(analyzer))
        .set_index_option(IndexRecordOption::WithFreqs);
    let mut builder = Schema::builder();
    let text = builder.add_text_field(
        "text",
        TextOptions::default().set_indexing_options(indexing),
    );
    let body = builder.add_text_field("body", TextOptions::default().set_stored());
    (builder.build(), Bm25Fields { text, body })
}

/// Register quire's analyzers on an opened or created index.
pub fn register_analyzers(index: &Index) -> Result<()> {
    for analyzer in [Analyzer::English, Analyzer::Plain] {
        index
            .tokenizers()
            .register(analyzer_name(analyzer), text_analyzer(analyzer)?);
    }
    Ok(())
}

/// One chunk as BM25 sees it.
pub struct Bm25Row<'a> {
    /// Title of the chunk's document.
    pub title: Option<&'a str>,
    /// The chunk text.
    pub body: &'a str,
}

/// Writes one deterministic segment into an empty directory, a row at a time, so a build can
/// stream chunks from its snapshot instead of holding them all.
pub struct Bm25Writer {
    dir: std::path::PathBuf,
    index: Index,
    fields: Bm25Fields,
    segment: tantivy::Segment,
    writer: SegmentWriter,
    rows: u64,
}

impl Bm25Writer {
    /// Start a segment named after `index_id` in the (created if missing) directory `dir`.
    pub fn create(dir: &Path, index_id: &IndexId, analyzer: Analyzer) -> Result<Self> {
        std::fs::create_dir_all(dir).at(dir)?;
        let (schema, fields) = schema(analyzer);
        let index = Index::builder()
            .schema(schema)
            .settings(IndexSettings::default())
            .create_in_dir(dir)?;
        register_analyzers(&index)?;
        let segment = index.segment(index.new_segment_meta(segment_id(index_id)?, 0));
        // The arena grows as needed; the budget only matters to IndexWriter's flushing, unused here.
        let writer = SegmentWriter::for_segment(256 << 20, segment.clone())?;
        Ok(Self {
            dir: dir.to_owned(),
            index,
            fields,
            segment,
            writer,
            rows: 0,
        })
    }

    /// Add the next chunk (tantivy doc id = chunk ordinal).
    pub fn add(&mut self, row: Bm25Row<'_>) -> Result<()> {
        let mut doc = TantivyDocument::default();
        // Two values of one field: term frequencies add up and the field length is the sum.
        if let Some(title) = row.title {
            doc.add_text(self.fields.text, title);
        }
        doc.add_text(self.fields.text, row.body);
        doc.add_text(self.fields.body, row.body);
        self.writer.add_document(AddOperation {
            opstamp: self.rows,
            document: doc,
        })?;
        self.rows += 1;
        Ok(())
    }

    /// Write the segment and `meta.json`, and remove tantivy's ephemeral files.
    pub fn finish(self) -> Result<()> {
        let max_doc = self.writer.max_doc();
        self.writer.finalize()?;
        let segment = self.segment.with_max_doc(max_doc);
        let mut meta = self.index.load_metas()?;
        meta.segments = vec![segment.meta().clone()];
        meta.opstamp = u64::from(max_doc);
        let mut json =
            serde_json::to_vec_pretty(&meta).map_err(|e| IndexError::Invalid(e.to_string()))?;
        json.push(b'\n');
        let meta_path = self.dir.join("meta.json");
        std::fs::write(&meta_path, json).at(&meta_path)?;
        drop(self.index);
        for name in EPHEMERAL_FILES {
            let path = self.dir.join(name);
            if path.exists() {
                std::fs::remove_file(&path).at(&path)?;
            }
        }
        Ok(())
    }
}

/// Write `rows` as a single deterministic segment into the empty directory `dir`.
pub fn write<'a>(
    dir: &Path,
    index_id: &IndexId,
    analyzer: Analyzer,
    rows: impl Iterator<Item = Bm25Row<'a>>,
    mut on_row: impl FnMut(),
) -> Result<()> {
    let mut writer = Bm25Writer::create(dir, index_id, analyzer)?;
    for row in rows {
        writer.add(row)?;
        on_row();
    }
    writer.finish()
}

fn segment_id(index_id: &IndexId) -> Result<SegmentId> {
    SegmentId::from_uuid_string(&index_id.hex()[..32])
        .map_err(|e| IndexError::Invalid(format!("segment id from index id: {e}")))
}

/// Files of a segment written for `index_id`: `(name it has, name it gets for `new_id`)`.
///
/// The segment id (derived from the index id) appears only in file names and `meta.json`;
/// the files' bytes depend on the rows alone. So another index's segment over the same rows
/// becomes this index's segment by renaming, which is what stage reuse does.
pub fn rename_segment(
    names: &[String],
    from_id: &IndexId,
    to_id: &IndexId,
) -> Result<Vec<(String, String)>> {
    let (from, to) = (segment_id(from_id)?, segment_id(to_id)?);
    let (from_files, to_files) = (from.uuid_string(), to.uuid_string());
    names
        .iter()
        .map(|name| match name.strip_prefix(&from_files) {
            Some(ext) => Ok((name.clone(), format!("{to_files}{ext}"))),
            None if name == "meta.json" => Ok((name.clone(), name.clone())),
            None => Err(IndexError::Corrupt {
                file: format!("{BM25_DIR}/{name}"),
                reason: format!("not a file of segment {from_files}"),
            }),
        })
        .collect()
}

/// `meta.json` of a segment written for `from_id`, rewritten to name the segment of `to_id`.
pub fn rename_segment_meta(meta: &str, from_id: &IndexId, to_id: &IndexId) -> Result<String> {
    let hyphenated = |id: SegmentId| {
        let hex = id.uuid_string();
        format!(
            "\"{}-{}-{}-{}-{}\"",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    };
    let (from, to) = (
        hyphenated(segment_id(from_id)?),
        hyphenated(segment_id(to_id)?),
    );
    if meta.matches(&from).count() != 1 {
        return Err(IndexError::Corrupt {
            file: format!("{BM25_DIR}/meta.json"),
            reason: format!("does not name segment {from} exactly once"),
        });
    }
    Ok(meta.replace(&from, &to))
}
