//! `quire samples` and the canary reports of `quire alias evaluate` and `alias canary-reports`.

use std::io::Write;

use anyhow::Result;
use quire_server::CanaryApi;
use quire_store::canary::Stratum;
use quire_store::outcome::OutcomeRow;
use quire_store::{AliasReport, CanaryReport, SampleListing, SampleRecord, SampledQuery};

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

fn print_stratum(o: &mut dyn Write, name: &str, s: &Stratum) -> std::io::Result<()> {
    writeln!(
        o,
        "  {name:<16} {:>5} {:>8.3} {:>6.3} {:>7.1}% {:>7.1}% {:>9.0} {:>9.0} {:>9.0} {:>9.0}",
        s.replayed,
        s.jaccard,
        s.rbo,
        s.primary.empty_rate * 100.0,
        s.candidate.empty_rate * 100.0,
        s.primary.p50_us,
        s.candidate.p50_us,
        s.primary.p99_us,
        s.candidate.p99_us
    )
}

/// A canary report as text: one row overall and one per intent.
pub fn print_report(o: &mut dyn Write, r: &CanaryReport) -> std::io::Result<()> {
    writeln!(
        o,
        "{}  {}@{}  {} {} vs primary {}  ({}, by {})",
        r.report_id, r.alias, r.revision, r.arm, r.candidate, r.primary, r.created, r.actor
    )?;
    writeln!(
        o,
        "  considered {} samples of the last {} s; {} not replayable (query text not stored)",
        r.considered, r.window_secs, r.not_replayable
    )?;
    writeln!(
        o,
        "  {:<16} {:>5} {:>8} {:>6} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "intent",
        "n",
        "jaccard",
        "rbo",
        "empty P",
        "empty C",
        "p50 P us",
        "p50 C us",
        "p99 P us",
        "p99 C us"
    )?;
    print_stratum(o, "overall", &r.overall)?;
    for (intent, s) in &r.per_intent {
        print_stratum(o, intent, s)?;
    }
    if let Some(n) = &r.ndcg_at_10 {
        writeln!(
            o,
            "  nDCG@10 under the gate: primary {:.4} ({}), candidate {:.4} ({})",
            n.primary, n.primary_report, n.candidate, n.candidate_report
        )?;
    }
    if let Some(p) = &r.policy {
        writeln!(o, "  auto-rollback policy {p}")?;
    }
    r.breaches
        .iter()
        .try_for_each(|b| writeln!(o, "  BREACH {b}"))
}

fn print_outcome(o: &mut dyn Write, r: &OutcomeRow) -> std::io::Result<()> {
    writeln!(
        o,
        "  {:<16} {:<8} {:>8} {:>8.1}% {:>12.3} {:>9} {:>9}",
        r.intent,
        r.arm,
        r.feedback,
        r.success_rate * 100.0,
        r.cpu_ms_per_success,
        r.latency_p50_us,
        r.latency_p99_us
    )
}

/// `quire alias report`: each intent's arms on consecutive rows.
pub fn print_alias_report(o: &mut dyn Write, r: &AliasReport) -> std::io::Result<()> {
    writeln!(o, "{}: feedback of the last {} s", r.alias, r.since_secs)?;
    if r.rows.is_empty() {
        return writeln!(o, "  no feedback");
    }
    writeln!(
        o,
        "  {:<16} {:<8} {:>8} {:>9} {:>12} {:>9} {:>9}",
        "intent", "arm", "feedback", "success", "cpu ms/succ", "p50 us", "p99 us"
    )?;
    r.rows.iter().try_for_each(|row| print_outcome(o, row))
}
