//! Compiles `proto/quire/v1/*.proto` with protox (no system protoc) into Rust code and a
//! file descriptor set for server reflection.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "common",
        "snapshot",
        "index",
        "retrieval",
        "release",
        "audit",
        "eval",
        "canary",
    ]
    .map(|f| root.join(format!("quire/v1/{f}.proto")));
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("quire_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", root.display());
    Ok(())
}
