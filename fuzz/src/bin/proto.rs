//! afl entry point of quire_fuzz::proto.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::proto(data));
}
