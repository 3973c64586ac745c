//! afl entry point of quire_fuzz::server_config.

fn main() {
    afl::fuzz!(|data: &[u8]| quire_fuzz::server_config(data));
}
