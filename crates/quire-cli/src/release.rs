//! `quire alias ...`, `pin`, `unpin`, `pins`, `gc`, `delete` and `audit ...`.

use std::io::Write;

use anyhow::{Result, bail};
use quire_server::{CanaryApi, EvalApi, GateRequest, ReleaseApi};
use quire_store::{AliasChangeRequest, AliasRevision, Distribution, RollbackPolicy};

use crate::args::{AliasCommand, AuditCommand, Maintenance};
use crate::output::{DeleteOutput, Outcome, emit};

fn percent(bp: u32) -> String {
    format!("{}%", f64::from(bp) / 100.0)
}

fn print_revision(o: &mut dyn Write, r: &AliasRevision) -> std::io::Result<()> {
    writeln!(
        o,
        "{}@{}  {}  by {} at {}: {}",
        r.alias, r.revision, r.action, r.actor, r.time, r.reason
    )?;
    writeln!(o, "  primary  {}", r.state.primary)?;
    if let Some(c) = &r.state.canary {
        writeln!(o, "  canary   {} ({})", c.index, percent(c.basis_points))?;
    }
    if let Some(p) = &r.state.policy {
        let bound = |x: Option<f64>| x.map_or("-".to_owned(), |x| x.to_string());
        writeln!(
            o,
            "  gate     eval spec {} ({} mode), min nDCG@10 {}, max regression {}",
            p.eval_spec,
            p.mode,
            bound(p.min_ndcg10),
            bound(p.max_regression)
        )?;
    }
    if let Some(s) = &r.state.shadow {
        writeln!(o, "  shadow   {s}")?;
    }
    if let Some(p) = &r.state.auto_rollback {
        writeln!(o, "  auto-rollback {p}")?;
    }
    Ok(())
}

fn print_distribution(o: &mut dyn Write, name: &str, d: &Distribution) -> std::io::Result<()> {
    writeln!(
        o,
        "  {name:<17} mean {:>9.3}  p50 {:>9.3}  p90 {:>9.3}  p99 {:>9.3}  min {:>9.3}  max {:>9.3}",
        d.mean, d.p50, d.p90, d.p99, d.min, d.max
    )
}

/// `quire alias ...`.
pub async fn alias<A: ReleaseApi + EvalApi + CanaryApi>(
    api: &A,
    command: &AliasCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let change = |name: &str, change: AliasChangeRequest, reason: &str| {
        (name.to_owned(), change, reason.to_owned())
    };
    let force = matches!(
        command,
        AliasCommand::Set { force: true, .. } | AliasCommand::Promote { force: true, .. }
    );
    let (name, change, reason) = match command {
        AliasCommand::Set {
            name,
            index,
            reason,
            ..
        } => change(name, AliasChangeRequest::Set(index.clone()), reason),
        AliasCommand::Canary {
            name,
            index,
            percent,
            clear,
            reason,
        } => match (clear, index, percent) {
            (true, _, _) => change(name, AliasChangeRequest::ClearCanary, reason),
            (false, Some(index), Some(p)) => {
                change(name, AliasChangeRequest::Canary(index.clone(), *p), reason)
            }
            _ => bail!("alias canary needs INDEX and --percent, or --clear"),
        },
        AliasCommand::Shadow {
            name,
            index,
            clear,
            reason,
        } => match (clear, index) {
            (true, _) => change(name, AliasChangeRequest::ClearShadow, reason),
            (false, Some(index)) => change(name, AliasChangeRequest::Shadow(index.clone()), reason),
            _ => bail!("alias shadow needs INDEX or --clear"),
        },
        AliasCommand::Promote { name, reason, .. } => {
            change(name, AliasChangeRequest::Promote, reason)
        }
        AliasCommand::Ungate { name, reason } => {
            change(name, AliasChangeRequest::ClearGate, reason)
        }
        AliasCommand::Rollback {
            name,
            to_revision,
            reason,
        } => change(name, AliasChangeRequest::Rollback(*to_revision), reason),
        AliasCommand::Gate {
            name,
            eval,
            min_ndcg10,
            max_regression,
            reason,
        } => {
            let gate = GateRequest {
                eval: eval.request()?,
                min_ndcg10: *min_ndcg10,
                max_regression: *max_regression,
            };
            let r = api.gate(name, gate, reason).await?;
            emit(out, json, &r, |o| print_revision(o, &r))?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::Rebaseline { name, eval, reason } => {
            let r = api.rebaseline(name, eval.request()?, reason).await?;
            emit(out, json, &r, |o| print_revision(o, &r))?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::Policy {
            name,
            auto_rollback,
            reason,
        } => {
            let policy = match auto_rollback.as_str() {
                "off" => None,
                text => Some(text.parse::<RollbackPolicy>()?),
            };
            change(name, AliasChangeRequest::AutoRollback(policy), reason)
        }
        AliasCommand::Evaluate {
            name,
            window,
            per_intent,
            arm,
        } => {
            let request = crate::args::canary_eval_request(window, *per_intent, *arm)?;
            let outcome = api.evaluate_canary(name, request).await?;
            emit(out, json, &outcome, |o| {
                crate::canary::print_report(o, &outcome.report)?;
                match &outcome.rolled_back {
                    Some(r) => writeln!(o, "rolled back: {}@{} {}", r.alias, r.revision, r.reason),
                    None => Ok(()),
                }
            })?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::Report { name, since } => {
            let since = quire_core::spec::parse_duration_secs(since)
                .map_err(|e| anyhow::anyhow!("--since {since:?}: {e}"))?;
            let report = api.alias_report(name, since).await?;
            emit(out, json, &report, |o| {
                crate::canary::print_alias_report(o, &report)
            })?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::CanaryReports { name } => {
            let reports = api.canary_reports(name).await?;
            emit(out, json, &reports, |o| {
                if reports.is_empty() {
                    writeln!(o, "no canary reports")?;
                }
                reports
                    .iter()
                    .try_for_each(|r| crate::canary::print_report(o, r))
            })?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::Show { name } => {
            let r = api.alias(name).await?;
            emit(out, json, &r, |o| print_revision(o, &r))?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::History { name } => {
            let history = api.alias_history(name).await?;
            emit(out, json, &history, |o| {
                history.iter().try_for_each(|r| print_revision(o, r))
            })?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::List => {
            let aliases = api.aliases().await?;
            emit(out, json, &aliases, |o| {
                if aliases.is_empty() {
                    writeln!(o, "no aliases")?;
                }
                aliases.iter().try_for_each(|r| print_revision(o, r))
            })?;
            return Ok(Outcome::Ok);
        }
        AliasCommand::ShadowReport { name } => {
            let r = api.shadow_report(name).await?;
            emit(out, json, &r, |o| {
                match &r.shadow_index {
                    None => writeln!(o, "{}: no shadow queries since the server started", r.alias)?,
                    Some(s) => writeln!(o, "{} shadow {s} since {}", r.alias, r.since)?,
                }
                writeln!(
                    o,
                    "  compared {}  dropped {}  failed {}",
                    r.compared, r.dropped, r.failed
                )?;
                print_distribution(o, "jaccard@k", &r.jaccard)?;
                print_distribution(o, "rbo@k", &r.rbo)?;
                print_distribution(o, "latency delta us", &r.latency_delta_us)
            })?;
            return Ok(Outcome::Ok);
        }
    };
    let revision = api.change_alias(&name, change, &reason, force).await?;
    emit(out, json, &revision, |o| print_revision(o, &revision))?;
    Ok(Outcome::Ok)
}

/// `quire pin`, `unpin`, `pins`, `gc`, `delete`.
pub async fn maintenance<A: ReleaseApi>(
    api: &A,
    command: Maintenance<'_>,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        Maintenance::Pin {
            index,
            holder,
            expires,
            reason,
        } => {
            let pin = api.pin(index, holder, expires, reason).await?;
            emit(out, json, &pin, |o| {
                let until = pin.expires.as_deref().unwrap_or("never expires");
                writeln!(o, "pinned {} for {} ({until})", pin.index_id, pin.holder)
            })?;
        }
        Maintenance::Unpin {
            index,
            holder,
            reason,
        } => {
            let pin = api.unpin(index, holder, reason).await?;
            emit(out, json, &pin, |o| {
                writeln!(o, "unpinned {} for {}", pin.index_id, pin.holder)
            })?;
        }
        Maintenance::Pins => {
            let pins = api.pins().await?;
            emit(out, json, &pins, |o| {
                if pins.is_empty() {
                    writeln!(o, "no pins")?;
                }
                pins.iter().try_for_each(|p| {
                    let until = p.expires.as_deref().unwrap_or("never");
                    writeln!(
                        o,
                        "{}  {}  expires {until}  ({})",
                        p.index_id, p.holder, p.reason
                    )
                })
            })?;
        }
        Maintenance::Gc { dry_run, reason } => {
            let report = api.gc(dry_run, &reason).await?;
            emit(out, json, &report, |o| {
                let verb = if report.dry_run {
                    "would delete"
                } else {
                    "deleted"
                };
                for id in &report.deleted_indexes {
                    writeln!(o, "{verb} {id}")?;
                }
                for id in &report.deleted_snapshots {
                    writeln!(o, "{verb} {id}")?;
                }
                for u in &report.deleted_uploads {
                    let (id, digest, n) = (&u.index_id, &u.content_digest, u.objects);
                    let objects = if n == 1 { "object" } else { "objects" };
                    writeln!(o, "{verb} abandoned upload {id}/{digest} ({n} {objects})")?;
                }
                for p in &report.deleted_packs {
                    let (namespace, n) = (&p.namespace, p.packs);
                    let packs = if n == 1 { "pack" } else { "packs" };
                    writeln!(o, "{verb} embedding cache {namespace} ({n} {packs})")?;
                }
                for (id, why) in &report.kept {
                    writeln!(o, "kept {id}: {}", why.join(", "))?;
                }
                Ok(())
            })?;
        }
        Maintenance::Delete { index, reason } => {
            api.delete_index(index, reason).await?;
            emit(out, json, &DeleteOutput { deleted: index }, |o| {
                writeln!(o, "deleted {index}")
            })?;
        }
    }
    Ok(Outcome::Ok)
}

/// `quire audit ...`.
pub async fn audit<A: ReleaseApi>(
    api: &A,
    command: &AuditCommand,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        AuditCommand::Log => {
            let events = api.audit_log().await?;
            emit(out, json, &events, |o| {
                events.iter().try_for_each(|e| {
                    writeln!(
                        o,
                        "{:>5}  {}  {:<12} {:<16} {}  {}",
                        e.seq, e.time, e.actor, e.action, e.target, e.reason
                    )
                })
            })?;
        }
        AuditCommand::Export => {
            for event in api.audit_log().await? {
                serde_json::to_writer(&mut *out, &event)?;
                writeln!(out)?;
            }
        }
        AuditCommand::Verify => {
            let v = api.audit_verify().await?;
            emit(out, json, &v, |o| {
                if v.ok {
                    writeln!(
                        o,
                        "ok: {} events, head {} {}",
                        v.events, v.head_seq, v.head_hash
                    )
                } else {
                    writeln!(
                        o,
                        "FAILED at event {}: {}",
                        v.first_bad_seq.unwrap_or(0),
                        v.problem.as_deref().unwrap_or("")
                    )
                }
            })?;
            if !v.ok {
                return Ok(Outcome::CheckFailed);
            }
        }
    }
    Ok(Outcome::Ok)
}
