//! `quire eval`, `quire eval list`, `quire compare`, and the gate options of `quire alias`.

use std::io::Write;

use anyhow::{Context, Result};
use quire_eval::{EvalReport, compare as compare_reports};
use quire_server::EvalApi;
use quire_store::ReportRecord;

use crate::args::{EvalArgs, EvalCommand, EvalOptions};
use crate::output::{Outcome, emit};

fn print_record(o: &mut dyn Write, r: &ReportRecord) -> std::io::Result<()> {
    writeln!(
        o,
        "{}  {}  {:<6} nDCG@10 {:.4}  R@10 {:.4}  R@100 {:.4}  MRR@10 {:.4}  ({})",
        r.report_id,
        r.index_id,
        r.mode,
        r.ndcg_at_10,
        r.recall_at_10,
        r.recall_at_100,
        r.mrr_at_10,
        r.created
    )
}

/// `quire eval ...`.
pub async fn eval<A: EvalApi>(
    api: &A,
    args: &EvalArgs,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if let Some(EvalCommand::List { target }) = &args.command {
        let reports = api.reports(target.as_deref()).await?;
        emit(out, json, &reports, |o| {
            if reports.is_empty() {
                writeln!(o, "no evaluation reports")?;
            }
            reports.iter().try_for_each(|r| print_record(o, r))
        })?;
        return Ok(Outcome::Ok);
    }
    let (Some(target), Some(options)) = (&args.target, &args.options) else {
        anyhow::bail!("quire eval needs TARGET and --dataset DIR");
    };
    let record = api.evaluate(target, options.request()?).await?;
    emit(out, json, &record, |o| {
        writeln!(o, "{}", record.report_id)?;
        writeln!(o, "  index      {}", record.index_id)?;
        let identical = if options.ignore_identical_ids {
            "identical ids ignored"
        } else {
            "identical ids kept"
        };
        writeln!(
            o,
            "  eval spec  {} ({} split, {identical})",
            record.eval_spec, options.split
        )?;
        writeln!(o, "  mode       {}", record.mode)?;
        writeln!(o, "  nDCG@10    {:.4}", record.ndcg_at_10)?;
        writeln!(o, "  recall@10  {:.4}", record.recall_at_10)?;
        writeln!(o, "  recall@100 {:.4}", record.recall_at_100)?;
        writeln!(o, "  MRR@10     {:.4}", record.mrr_at_10)
    })?;
    Ok(Outcome::Ok)
}

/// `quire compare A B --dataset DIR`.
pub async fn compare<A: EvalApi>(
    api: &A,
    a: &str,
    b: &str,
    options: &EvalOptions,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let request = options.request()?;
    let ra = api.evaluate(a, request.clone()).await?;
    let rb = api.evaluate(b, request).await?;
    let report = |r: &ReportRecord| -> Result<EvalReport> {
        serde_json::from_value(r.report.clone())
            .with_context(|| format!("report {} is not an evaluation report", r.report_id))
    };
    let c = compare_reports(&report(&ra)?, &report(&rb)?)?;
    emit(out, json, &c, |o| {
        writeln!(o, "eval spec {}", c.eval_spec)?;
        writeln!(
            o,
            "{:<10} {:>9} {:>9} {:>9} {:>9}",
            "", "nDCG@10", "R@10", "R@100", "MRR@10"
        )?;
        for (name, side) in [("A", &c.a), ("B", &c.b)] {
            let m = side.metrics;
            writeln!(
                o,
                "{name:<10} {:>9.4} {:>9.4} {:>9.4} {:>9.4}  {}",
                m.ndcg_at_10, m.recall_at_10, m.recall_at_100, m.mrr_at_10, side.index_id
            )?;
        }
        writeln!(
            o,
            "B vs A: {} wins, {} ties, {} losses; mean top-10 overlap (Jaccard) {:.3}",
            c.wins, c.ties, c.losses, c.mean_top10_jaccard
        )?;
        let mut moved: Vec<_> = c.per_query.iter().filter(|q| q.delta != 0.0).collect();
        moved.sort_by(|x, y| y.delta.abs().total_cmp(&x.delta.abs()));
        if !moved.is_empty() {
            writeln!(o, "largest per-query nDCG@10 changes (all in --json):")?;
        }
        for q in moved.iter().take(10) {
            writeln!(
                o,
                "  {:<12} {:.4} -> {:.4} ({:+.4}), top-10 overlap {:.2}",
                q.query_id, q.a, q.b, q.delta, q.top10_jaccard
            )?;
        }
        Ok(())
    })?;
    Ok(Outcome::Ok)
}
