//! Deterministic chunking.
//!
//! A chunk is a byte range of its document's text, so the text of a chunk is always a slice of
//! the stored snapshot. Chunk ids are `<doc id>#<ordinal>`; a chunk's content hash is blake3 of
//! its text (context [`context::CHUNK`]).

use crate::ids::{context, hash_hex};
use crate::spec::Chunking;

/// A chunk of one document: its ordinal within the document and its byte range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkSpan {
    /// Position of the chunk within its document, from 0.
    pub ordinal: u32,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

/// The stable id of chunk `ordinal` of document `doc_id`.
pub fn chunk_id(doc_id: &str, ordinal: u32) -> String {
    format!("{doc_id}#{ordinal}")
}

/// The content hash of a chunk's text.
pub fn chunk_hash(text: &str) -> String {
    hash_hex(context::CHUNK, text.as_bytes())
}

/// Byte ranges of the words of `text`: maximal runs of alphanumeric characters.
pub fn word_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// Cut `text` into chunks. Every document yields at least one chunk; a text without words
/// yields a single chunk covering all of it.
pub fn chunk_text(text: &str, chunking: &Chunking) -> Vec<ChunkSpan> {
    let ranges = match *chunking {
        Chunking::Fixed {
            max_tokens,
            overlap,
        } => fixed_windows(text, 0, text.len(), max_tokens as usize, overlap as usize),
        Chunking::Sentences { max_tokens } => pack_units(
            text,
            &units(text, 0, text.len(), false),
            max_tokens as usize,
        ),
        Chunking::Markdown { max_tokens } => sections(text)
            .into_iter()
            .flat_map(|(s, e)| pack_units(text, &units(text, s, e, true), max_tokens as usize))
            .collect(),
    };
    // Punctuation-only pieces (a `---` rule, say) carry nothing to retrieve.
    let mut ranges: Vec<_> = ranges
        .into_iter()
        .filter(|&(s, e)| !word_spans(&text[s..e]).is_empty())
        .collect();
    if ranges.is_empty() {
        ranges.push((0, text.len()));
    }
    ranges
        .into_iter()
        .enumerate()
        .map(|(i, (start, end))| ChunkSpan {
            ordinal: i as u32,
            start,
            end,
        })
        .collect()
}

fn fixed_windows(
    text: &str,
    from: usize,
    to: usize,
    max: usize,
    overlap: usize,
) -> Vec<(usize, usize)> {
    let words: Vec<_> = word_spans(&text[from..to])
        .into_iter()
        .map(|(s, e)| (s + from, e + from))
        .collect();
    let stride = max - overlap;
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let j = (i + max).min(words.len());
        out.push((words[i].0, words[j - 1].1));
        if j == words.len() {
            break;
        }
        i += stride;
    }
    out
}

/// Sentence-like units of `text[from..to]`, trimmed of surrounding whitespace. A unit ends after
/// `.`, `!` or `?` followed by whitespace, at a blank line, and (for Markdown) before a line that
/// starts a list item, a heading, a table row or a quote.
fn units(text: &str, from: usize, to: usize, markdown: bool) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = from;
    let mut i = from;
    while i < to {
        let b = bytes[i];
        let cut = match b {
            b'.' | b'!' | b'?' => {
                bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace()) || i + 1 == to
            }
            b'\n' => {
                let rest = &text[i + 1..to];
                rest.trim_start_matches([' ', '\t', '\r']).starts_with('\n')
                    || (markdown && starts_block(rest))
            }
            _ => false,
        };
        if cut {
            push_trimmed(text, start, i + 1, &mut out);
            start = i + 1;
        }
        i += 1;
    }
    push_trimmed(text, start, to, &mut out);
    out
}

fn starts_block(line: &str) -> bool {
    let l = line.trim_start_matches([' ', '\t']);
    let numbered = l
        .find(|c: char| !c.is_ascii_digit())
        .is_some_and(|n| n > 0 && l[n..].starts_with(". "));
    l.starts_with("- ")
        || l.starts_with("* ")
        || l.starts_with("+ ")
        || l.starts_with('#')
        || l.starts_with('|')
        || l.starts_with('>')
        || numbered
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let slice = &text[start..end];
    let lead = slice.len() - slice.trim_start().len();
    let trimmed = slice.trim();
    if !trimmed.is_empty() {
        out.push((start + lead, start + lead + trimmed.len()));
    }
}

/// Greedily pack units into chunks of at most `max` words; a unit longer than `max` is cut into
/// windows of its own.
fn pack_units(text: &str, units: &[(usize, usize)], max: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, usize, usize)> = None; // (start, end, words)
    for &(s, e) in units {
        let words = word_spans(&text[s..e]).len();
        if words > max {
            out.extend(current.take().map(|(s, e, _)| (s, e)));
            out.extend(fixed_windows(text, s, e, max, 0));
            continue;
        }
        current = match current {
            Some((cs, _, cw)) if cw + words <= max => Some((cs, e, cw + words)),
            Some((cs, ce, _)) => {
                out.push((cs, ce));
                Some((s, e, words))
            }
            None => Some((s, e, words)),
        };
    }
    out.extend(current.map(|(s, e, _)| (s, e)));
    out
}

/// Markdown sections: each starts at an ATX heading line (outside fenced code) and runs to the
/// next one; text before the first heading is a section of its own.
fn sections(text: &str) -> Vec<(usize, usize)> {
    let mut starts = vec![0];
    let mut in_fence = false;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            in_fence = !in_fence;
        } else if !in_fence && is_heading(t) && offset > 0 {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    starts
        .windows(2)
        .map(|w| (w[0], w[1]))
        .filter(|(s, e)| s < e)
        .collect()
}

fn is_heading(line: &str) -> bool {
    let hashes = line.bytes().take_while(|&b| b == b'#').count();
    (1..=6).contains(&hashes) && line[hashes..].starts_with([' ', '\t', '\n', '\r'])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn texts<'a>(text: &'a str, chunks: &[ChunkSpan]) -> Vec<&'a str> {
        chunks.iter().map(|c| &text[c.start..c.end]).collect()
    }

    #[test]
    fn fixed_windows_overlap() {
        let text = "a b c d e f g";
        let chunks = chunk_text(
            text,
            &Chunking::Fixed {
                max_tokens: 3,
                overlap: 1,
            },
        );
        assert_eq!(texts(text, &chunks), ["a b c", "c d e", "e f g"]);
    }

    #[test]
    fn sentences_pack_without_splitting() {
        let text = "One two three. Four five! Six seven eight nine? Ten.";
        let chunks = chunk_text(text, &Chunking::Sentences { max_tokens: 5 });
        assert_eq!(
            texts(text, &chunks),
            ["One two three. Four five!", "Six seven eight nine? Ten."]
        );
    }

    #[test]
    fn markdown_splits_on_headings_first() {
        let text = "# Title\nIntro words here.\n\n## Leave\n- twenty weeks paid\n- two weeks more\n```\n# not a heading\n```\n## Pay\nBands.";
        let chunks = chunk_text(text, &Chunking::Markdown { max_tokens: 50 });
        let t = texts(text, &chunks);
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(t[0].starts_with("# Title"));
        assert!(t[1].starts_with("## Leave") && t[1].contains("# not a heading"));
        assert_eq!(t[2], "## Pay\nBands.");
        assert_eq!(
            chunks.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
            [0, 1, 2]
        );
    }

    #[test]
    fn wordless_text_is_one_chunk() {
        for text in ["", "  ...  "] {
            let chunks = chunk_text(text, &Chunking::default());
            assert_eq!(
                chunks,
                [ChunkSpan {
                    ordinal: 0,
                    start: 0,
                    end: text.len()
                }]
            );
        }
    }

    fn strategy() -> impl Strategy<Value = Chunking> {
        prop_oneof![
            (8u32..40, 0u32..8).prop_map(|(m, o)| Chunking::Fixed {
                max_tokens: m,
                overlap: o
            }),
            (8u32..40).prop_map(|m| Chunking::Sentences { max_tokens: m }),
            (8u32..40).prop_map(|m| Chunking::Markdown { max_tokens: m }),
        ]
    }

    proptest! {
        #[test]
        fn chunks_are_in_order_on_char_boundaries_and_cover_every_word(
            text in "(# [a-z]{1,5}\n|[A-Za-zé0-9]{1,8}[ .!?\n-]{1,3}){0,80}",
            chunking in strategy(),
        ) {
            let chunks = chunk_text(&text, &chunking);
            prop_assert!(!chunks.is_empty());
            let max = match chunking { Chunking::Fixed { max_tokens, .. } | Chunking::Sentences { max_tokens } | Chunking::Markdown { max_tokens } => max_tokens as usize };
            for (i, c) in chunks.iter().enumerate() {
                prop_assert_eq!(c.ordinal as usize, i);
                prop_assert!(c.start <= c.end && text.is_char_boundary(c.start) && text.is_char_boundary(c.end));
                prop_assert!(word_spans(&text[c.start..c.end]).len() <= max);
            }
            prop_assert_eq!(chunk_text(&text, &chunking), chunks.clone());
            for (s, e) in word_spans(&text) {
                prop_assert!(chunks.iter().any(|c| c.start <= s && e <= c.end), "word {}..{} not covered", s, e);
            }
        }
    }
}
