//! How a command ends and how it prints: one value serialised for `--json`, or rendered as
//! text.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// How a command ended, when it did not fail outright.
pub enum Outcome {
    /// Success.
    Ok,
    /// A check ran and did not pass.
    CheckFailed,
}

/// Print `value` as pretty JSON (`json`), or as `text` renders it.
pub(crate) fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        text(out)?;
    }
    Ok(())
}
