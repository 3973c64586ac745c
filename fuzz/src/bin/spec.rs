//! afl entry point of quire_fuzz::spec.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::spec(data));
}
