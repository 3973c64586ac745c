//! afl entry point of quire_fuzz::corpus_jsonl.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::corpus_jsonl(data));
}
