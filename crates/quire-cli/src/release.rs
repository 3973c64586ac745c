//! `quire alias ...`, `pin`, `unpin`, `pins`, `gc`, `delete` and `audit ...`.

use std::io::Write;

use anyhow::{Result, bail};
use clap::Subcommand;
use quire_server::{EvalApi, GateRequest, ReleaseApi};
use quire_store::{AliasChangeRequest, AliasRevision, Distribution};

use crate::commands::emit;
use crate::eval::EvalOptions;
use crate::{Command, Outcome};

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias or repoint its primary.
    Set {
        /// The alias.
        name: String,
        /// Index id or unique prefix.
        index: String,
        /// Why (recorded in the revision and the audit log).
        #[arg(long)]
        reason: String,
        /// Override a failing quality gate (admins; recorded in the audit log).
        #[arg(long)]
        force: bool,
    },
    /// Send a share of routing keys to a canary index (or remove the canary with --clear).
    Canary {
        /// The alias.
        name: String,
        /// Index id or unique prefix.
        #[arg(required_unless_present = "clear")]
        index: Option<String>,
        /// Share of routing keys, 0.01 to 100.
        #[arg(long, required_unless_present = "clear")]
        percent: Option<f64>,
        /// Remove the canary.
        #[arg(long, conflicts_with_all = ["index", "percent"])]
        clear: bool,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Shadow the primary with another index (or remove the shadow with --clear).
    Shadow {
        /// The alias.
        name: String,
        /// Index id or unique prefix.
        #[arg(required_unless_present = "clear")]
        index: Option<String>,
        /// Remove the shadow.
        #[arg(long, conflicts_with = "index")]
        clear: bool,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Make the canary the primary (a gated alias needs a passing evaluation report).
    Promote {
        /// The alias.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
        /// Override a failing quality gate (admins; recorded in the audit log).
        #[arg(long)]
        force: bool,
    },
    /// Go back to the previous primary, or to exactly what a revision served.
    Rollback {
        /// The alias.
        name: String,
        /// Restore this revision's primary, canary and shadow.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        to_revision: Option<u64>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Gate promotions on an evaluation: `alias promote` (and `alias set` to a new primary)
    /// then needs a stored report for the candidate under this eval spec and mode that reaches
    /// --min-ndcg10 and falls at most --max-regression below the primary. Evaluates the
    /// primary first when needed. Retuning keeps the eval spec; changing it is `rebaseline`.
    Gate {
        /// The alias.
        name: String,
        #[command(flatten)]
        eval: EvalOptions,
        /// A candidate's nDCG@10 must reach this.
        #[arg(long)]
        min_ndcg10: Option<f64>,
        /// A candidate's nDCG@10 may fall at most this far below the primary's.
        #[arg(long)]
        max_regression: Option<f64>,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Remove an alias's quality gate.
    Ungate {
        /// The alias.
        name: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Move an alias's gate to another dataset, split or mode, re-evaluating the primary.
    Rebaseline {
        /// The alias.
        name: String,
        #[command(flatten)]
        eval: EvalOptions,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Show an alias's current revision.
    Show {
        /// The alias.
        name: String,
    },
    /// Every revision of an alias.
    History {
        /// The alias.
        name: String,
    },
    /// Every alias.
    List,
    /// Overlap and latency of the shadow against the primary since the shadow began (kept by
    /// the server that runs the queries).
    ShadowReport {
        /// The alias.
        name: String,
    },
}

impl AliasCommand {
    /// Whether the command changes the alias.
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            Self::Show { .. } | Self::History { .. } | Self::List | Self::ShadowReport { .. }
        )
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the log.
    Log,
    /// Check the hash chain; exit code 3 names the first bad event.
    Verify,
    /// Print the log as JSON lines.
    Export,
}

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
pub async fn alias<A: ReleaseApi + EvalApi>(
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
    let request = match command {
        AliasCommand::Set {
            name,
            index,
            reason,
            ..
        } => Some(change(name, AliasChangeRequest::Set(index.clone()), reason)),
        AliasCommand::Canary {
            name,
            index,
            percent,
            clear,
            reason,
        } => Some(match (clear, index, percent) {
            (true, _, _) => change(name, AliasChangeRequest::ClearCanary, reason),
            (false, Some(index), Some(p)) => {
                change(name, AliasChangeRequest::Canary(index.clone(), *p), reason)
            }
            _ => bail!("alias canary needs INDEX and --percent, or --clear"),
        }),
        AliasCommand::Shadow {
            name,
            index,
            clear,
            reason,
        } => Some(match (clear, index) {
            (true, _) => change(name, AliasChangeRequest::ClearShadow, reason),
            (false, Some(index)) => change(name, AliasChangeRequest::Shadow(index.clone()), reason),
            _ => bail!("alias shadow needs INDEX or --clear"),
        }),
        AliasCommand::Promote { name, reason, .. } => {
            Some(change(name, AliasChangeRequest::Promote, reason))
        }
        AliasCommand::Ungate { name, reason } => {
            Some(change(name, AliasChangeRequest::ClearGate, reason))
        }
        AliasCommand::Rollback {
            name,
            to_revision,
            reason,
        } => Some(change(
            name,
            AliasChangeRequest::Rollback(*to_revision),
            reason,
        )),
        _ => None,
    };
    if let Some((name, change, reason)) = request {
        let revision = api.change_alias(&name, change, &reason, force).await?;
        emit(out, json, &revision, |o| print_revision(o, &revision))?;
        return Ok(Outcome::Ok);
    }
    match command {
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
        }
        AliasCommand::Rebaseline { name, eval, reason } => {
            let r = api.rebaseline(name, eval.request()?, reason).await?;
            emit(out, json, &r, |o| print_revision(o, &r))?;
        }
        AliasCommand::Show { name } => {
            let r = api.alias(name).await?;
            emit(out, json, &r, |o| print_revision(o, &r))?;
        }
        AliasCommand::History { name } => {
            let history = api.alias_history(name).await?;
            emit(out, json, &history, |o| {
                history.iter().try_for_each(|r| print_revision(o, r))
            })?;
        }
        AliasCommand::List => {
            let aliases = api.aliases().await?;
            emit(out, json, &aliases, |o| {
                if aliases.is_empty() {
                    writeln!(o, "no aliases")?;
                }
                aliases.iter().try_for_each(|r| print_revision(o, r))
            })?;
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
        }
        _ => unreachable!("changes are handled above"),
    }
    Ok(Outcome::Ok)
}

/// `quire pin`, `unpin`, `pins`, `gc`, `delete`.
pub async fn maintenance<A: ReleaseApi>(
    api: &A,
    command: &Command,
    json: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        Command::Pin {
            index,
            holder,
            expires,
            reason,
        } => {
            let pin = api.pin(index, holder, expires.as_deref(), reason).await?;
            emit(out, json, &pin, |o| {
                let until = pin.expires.as_deref().unwrap_or("never expires");
                writeln!(o, "pinned {} for {} ({until})", pin.index_id, pin.holder)
            })?;
        }
        Command::Unpin {
            index,
            holder,
            reason,
        } => {
            let pin = api.unpin(index, holder, reason).await?;
            emit(out, json, &pin, |o| {
                writeln!(o, "unpinned {} for {}", pin.index_id, pin.holder)
            })?;
        }
        Command::Pins => {
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
        Command::Gc {
            dry_run, reason, ..
        } => {
            let reason = reason.clone().unwrap_or_else(|| "dry run".into());
            let report = api.gc(*dry_run, &reason).await?;
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
                for (id, why) in &report.kept {
                    writeln!(o, "kept {id}: {}", why.join(", "))?;
                }
                Ok(())
            })?;
        }
        Command::Delete { index, reason } => {
            api.delete_index(index, reason).await?;
            emit(out, json, &serde_json::json!({ "deleted": index }), |o| {
                writeln!(o, "deleted {index}")
            })?;
        }
        _ => unreachable!("only maintenance commands are dispatched here"),
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
