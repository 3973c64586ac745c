//! afl entry point of quire_fuzz::corpus_dir.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::corpus_dir(data));
}
