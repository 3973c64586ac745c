//! afl entry point of quire_fuzz::corpus_beir.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::corpus_beir(data));
}
