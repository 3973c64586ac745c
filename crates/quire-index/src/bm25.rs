//! The tantivy side of an index: schema, analyzers, and a deterministic single-segment writer.
//!
//! tantivy normally names segments with random UUIDs and may split a corpus over several
//! segments. quire writes exactly one segment, with one [`SegmentWriter`], under a segment id
//! derived from the index id; the segment files and `meta.json` are then byte-identical across
//! builds. tantivy's `.managed.json` (a hash set, in arbitrary order) is removed after writing and
//! lock files are ignored by verification. Within the single segment, tantivy's doc id equals
//! quire's chunk ordinal.
//!
//! A chunk's title and text are indexed as two values of one field, `text`, so BM25 scores them
//! as one bag of words with one length normalisation (as Anserini and BEIR index
//! `title + text`). Separate title and body fields, their BM25 scores summed, count every term
//! of a short title twice over, at a title-only IDF: on SciFact (test split, top-10 documents)
//! that gave nDCG@10 0.6625 against 0.6876 for the single field.

use std::path::Path;

use quire_core::spec::Analyzer;
use quire_core::{Acl, IndexId};
use tantivy::index::SegmentId;
use tantivy::indexer::{AddOperation, SegmentWriter};
use tantivy::schema::{Field, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions};
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
    /// Principal tokens allowed to read the chunk (raw, indexed, not stored).
    pub acl: Field,
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
    let acl = builder.add_text_field("acl", STRING);
    (builder.build(), Bm25Fields { text, body, acl })
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
    /// The document's effective ACL.
    pub acl: &'a Acl,
}

/// Write `rows` as a single deterministic segment into the empty directory `dir`.
pub fn write<'a>(
    dir: &Path,
    index_id: &IndexId,
    analyzer: Analyzer,
    rows: impl Iterator<Item = Bm25Row<'a>>,
    mut on_row: impl FnMut(),
) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let (schema, fields) = schema(analyzer);
    let index = Index::builder()
        .schema(schema)
        .settings(IndexSettings::default())
        .create_in_dir(dir)?;
    register_analyzers(&index)?;
    let segment_id = SegmentId::from_uuid_string(&index_id.hex()[..32])
        .map_err(|e| IndexError::Invalid(format!("segment id from index id: {e}")))?;
    let segment = index.segment(index.new_segment_meta(segment_id, 0));
    // The arena grows as needed; the budget only matters to IndexWriter's flushing, unused here.
    let mut writer = SegmentWriter::for_segment(256 << 20, segment.clone())?;
    for (opstamp, row) in rows.enumerate() {
        let mut doc = TantivyDocument::default();
        // Two values of one field: term frequencies add up and the field length is the sum.
        if let Some(title) = row.title {
            doc.add_text(fields.text, title);
        }
        doc.add_text(fields.text, row.body);
        doc.add_text(fields.body, row.body);
        for principal in row.acl.principals() {
            doc.add_text(fields.acl, principal.token());
        }
        writer.add_document(AddOperation {
            opstamp: opstamp as u64,
            document: doc,
        })?;
        on_row();
    }
    let max_doc = writer.max_doc();
    writer.finalize()?;
    let segment = segment.with_max_doc(max_doc);
    let mut meta = index.load_metas()?;
    meta.segments = vec![segment.meta().clone()];
    meta.opstamp = u64::from(max_doc);
    let mut json =
        serde_json::to_vec_pretty(&meta).map_err(|e| IndexError::Invalid(e.to_string()))?;
    json.push(b'\n');
    let meta_path = dir.join("meta.json");
    std::fs::write(&meta_path, json).at(&meta_path)?;
    drop(index);
    for name in EPHEMERAL_FILES {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).at(&path)?;
        }
    }
    Ok(())
}
