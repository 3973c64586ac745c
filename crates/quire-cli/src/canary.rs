//! `quire samples`: continuous evaluation's sampled production requests.

use std::io::Write;

use anyhow::Result;
use quire_server::CanaryApi;
use quire_store::{SampleListing, SampleRecord, SampledQuery};

use crate::output::{Outcome, emit};

fn print_sample(o: &mut dyn Write, s: &SampleRecord) -> std::io::Result<()> {
    let query = match &s.query {
        SampledQuery::Text(text) => format!("{text:?}"),
        SampledQuery::Blake3(hash) => format!("blake3 {hash}"),
    };
    writeln!(
        o,
        "{}  {}  {}@{} {:<7}  intent {}  {} hits  {} us  {query}",
        s.time,
        s.request_id,
        s.alias,
        s.revision,
        s.arm,
        s.intent_label(),
        s.doc_ids.len(),
        s.timings_us.total
    )
}

/// `quire samples`.
pub async fn samples<A: CanaryApi>(
    api: &A,
    listing: SampleListing,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let samples = api.samples(listing).await?;
    emit(out, json, &samples, |o| {
        if samples.is_empty() {
            writeln!(o, "no samples")?;
        }
        samples.iter().try_for_each(|s| print_sample(o, s))
    })?;
    Ok(Outcome::Ok)
}
