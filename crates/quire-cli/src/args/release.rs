//! The arguments of the release, evaluation and audit commands (`alias`, `eval`, `samples`,
//! `audit`) and the checked requests they make.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use quire_core::Reader;
use quire_server::EvalRequest;

use super::QueryMode;

/// The checked listing `quire samples` asks for.
pub(crate) fn sample_listing(
    alias: Option<&str>,
    intent: Option<&str>,
    since: Option<&str>,
    limit: u32,
) -> Result<quire_store::SampleListing> {
    let intent = intent.map(quire_store::Intent::new).transpose()?;
    let since = since
        .map(|s| {
            quire_core::spec::parse_duration_secs(s)
                .map_err(|e| anyhow::anyhow!("--since {s:?}: {e}"))
        })
        .transpose()?;
    Ok(quire_store::SampleListing::new(
        alias.map(str::to_owned),
        intent,
        since,
        limit as usize,
    )?)
}

/// Dataset, split, mode and reader of an evaluation.
#[derive(Debug, Args)]
pub struct EvalOptions {
    /// A BEIR dataset directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv); with
    /// --server, a path on the server.
    #[arg(long)]
    pub dataset: PathBuf,
    /// The qrels split.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Retrievers to use.
    #[arg(long, value_enum, default_value_t = QueryMode::Hybrid)]
    pub mode: QueryMode,
    /// The reader's user id.
    #[arg(long)]
    pub user: Option<String>,
    /// A group the reader belongs to (repeatable).
    #[arg(long = "group")]
    pub groups: Vec<String>,
    /// Drop a retrieved document whose id equals the query id before scoring, as BEIR does;
    /// `false` is the evaluator from before this option (and its eval spec hash).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub ignore_identical_ids: bool,
}

impl EvalOptions {
    /// The request these options describe.
    pub fn request(&self) -> Result<EvalRequest> {
        // A relative path means the caller's directory; the server must get it absolute.
        let dataset = std::path::absolute(&self.dataset)
            .with_context(|| format!("dataset path {}", self.dataset.display()))?;
        Ok(EvalRequest {
            dataset,
            split: self.split.clone(),
            mode: self.mode.into(),
            reader: Reader::new(self.user.as_deref(), &self.groups)?,
            ignore_identical_ids: self.ignore_identical_ids,
        })
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: Option<EvalCommand>,
    /// Index id, unique prefix, alias (resolved to its primary once, at the start) or
    /// alias@revision.
    #[arg(required = true)]
    pub target: Option<String>,
    #[command(flatten)]
    pub options: Option<EvalOptions>,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Stored evaluation reports, oldest first.
    List {
        /// Only this index's reports (id, prefix or alias).
        target: Option<String>,
    },
}

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
    /// Replay the alias's sampled queries, each under its own principal, against its primary
    /// and its canary (or shadow): top-k overlap, empty-result rate and latency per intent and
    /// overall. Stores the report (audited) and applies the alias's auto-rollback policy.
    Evaluate {
        /// The alias.
        name: String,
        /// Samples of this last stretch, e.g. 1h, 1d.
        #[arg(long, default_value = "1h")]
        window: String,
        /// The newest this-many samples of each intent.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        per_intent: u32,
        /// Compare the canary or the shadow (the canary if there is one, else the shadow).
        #[arg(long, value_enum)]
        arm: Option<CandidateArmArg>,
    },
    /// The alias's arms side by side from the feedback on their requests: success rate, CPU
    /// milliseconds per successful query and latency, overall and per intent.
    Report {
        /// The alias.
        name: String,
        /// Feedback of this last stretch, e.g. 1h, 1d.
        #[arg(long, default_value = "1h")]
        since: String,
    },
    /// Stored canary reports of the alias, oldest first.
    CanaryReports {
        /// The alias.
        name: String,
    },
    /// Set the alias's auto-rollback policy: a canary evaluation (scheduled by the server's
    /// `[release] canary_eval_every`, or `alias evaluate`) that crosses it rolls the canary back.
    Policy {
        /// The alias.
        name: String,
        /// Terms separated by commas: overlap<X, rbo<X (0 to 1), empty>+N%, p99>+N%,
        /// samples>=N (replayed samples a stratum needs; 10 by default); `off` removes it.
        /// E.g. 'overlap<0.6,empty>+5%'.
        #[arg(long)]
        auto_rollback: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Which arm `alias evaluate` compares with the primary.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CandidateArmArg {
    /// The canary.
    Canary,
    /// The shadow.
    Shadow,
}

/// The checked request of `alias evaluate`.
pub(crate) fn canary_eval_request(
    window: &str,
    per_intent: u32,
    arm: Option<CandidateArmArg>,
) -> Result<quire_store::CanaryEvalRequest> {
    let window_secs = quire_core::spec::parse_duration_secs(window)
        .map_err(|e| anyhow::anyhow!("--window {window:?}: {e}"))?;
    let arm = match arm {
        None => quire_store::CandidateArm::Auto,
        Some(CandidateArmArg::Canary) => quire_store::CandidateArm::Canary,
        Some(CandidateArmArg::Shadow) => quire_store::CandidateArm::Shadow,
    };
    Ok(quire_store::CanaryEvalRequest::new(
        window_secs,
        per_intent as usize,
        arm,
    )?)
}

impl AliasCommand {
    /// Whether the command changes the alias.
    pub fn changes(&self) -> bool {
        !matches!(
            self,
            Self::Show { .. }
                | Self::History { .. }
                | Self::List
                | Self::ShadowReport { .. }
                | Self::CanaryReports { .. }
                | Self::Report { .. }
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
