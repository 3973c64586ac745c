//! Reading configuration files (build specs, server.toml) with a bound on their size.

use std::path::Path;

use anyhow::{Context, Result};

/// The most a configuration file (a build spec, server.toml) may hold.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Read a configuration file of at most [`MAX_CONFIG_BYTES`] (so `--spec /dev/zero` is
/// refused rather than read until memory runs out).
pub(crate) fn read_config(path: &Path) -> Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
        .with_context(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        anyhow::bail!(
            "{}: longer than {MAX_CONFIG_BYTES} bytes, the most a configuration file may hold",
            path.display()
        );
    }
    String::from_utf8(bytes).with_context(|| format!("reading {}", path.display()))
}
