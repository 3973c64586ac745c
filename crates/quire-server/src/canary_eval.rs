//! Canary evaluation: replay an alias's sampled queries, each under its own principal, against
//! the primary and the canary (or shadow), summarise per intent and overall, store the report
//! (audited), and roll the canary back when the alias's policy says so.

use std::collections::BTreeMap;
use std::sync::Arc;

use quire_core::{IndexId, Mode, Query};
use quire_index::OpenIndex;
use quire_release::CanaryOutcome;
use quire_release::canary::{
    ArmSummary, CanaryEvalRequest, CanaryReport, CandidateArm, GateNdcg, MAX_PER_INTENT, Stratum,
};
use quire_release::sampling::{MAX_SAMPLE_LIST, SampleRecord, micros};
use quire_release::{AliasRevision, SampleQuery};

use crate::api::Local;
use crate::cancel::Cancel;
use crate::config::CanaryEvalSchedule;
use crate::error::{Result, ServiceError};
use crate::shadow::compare;

/// One sample replayed on both arms.
struct Replayed {
    intent: String,
    jaccard: f64,
    rbo: f64,
    empty: (bool, bool),
    micros: (f64, f64),
}

/// The candidate `arm` names in `current`, and its name.
fn candidate(current: &AliasRevision, arm: CandidateArm) -> Result<(IndexId, &'static str)> {
    let state = &current.state;
    let canary = state.canary.as_ref().map(|c| (c.index.clone(), "canary"));
    let shadow = state.shadow.clone().map(|s| (s, "shadow"));
    let chosen = match arm {
        CandidateArm::Auto => canary.or(shadow),
        CandidateArm::Canary => canary,
        CandidateArm::Shadow => shadow,
    };
    chosen.ok_or_else(|| {
        ServiceError::FailedPrecondition(format!(
            "alias {:?} has no {} to evaluate against its primary",
            current.alias,
            match arm {
                CandidateArm::Auto => "canary or shadow",
                CandidateArm::Canary => "canary",
                CandidateArm::Shadow => "shadow",
            }
        ))
    })
}

/// The newest `per_intent` samples of each intent, in (intent, time, id) order.
fn stratify(samples: Vec<SampleRecord>, per_intent: usize) -> Vec<SampleRecord> {
    let mut by_intent: BTreeMap<String, Vec<SampleRecord>> = BTreeMap::new();
    for s in samples {
        by_intent
            .entry(s.intent_label().to_owned())
            .or_default()
            .push(s);
    }
    by_intent
        .into_values()
        .flat_map(|mut v| {
            let skip = v.len().saturating_sub(per_intent);
            v.split_off(skip)
        })
        .collect()
}

fn mode_of(name: &str) -> Mode {
    match name {
        "bm25" => Mode::Bm25,
        "vector" => Mode::Vector,
        _ => Mode::Hybrid,
    }
}

/// Replay `sample` on both indices under its own principal; `None` when its text was not kept.
fn replay(
    sample: &SampleRecord,
    primary: &OpenIndex,
    candidate: &OpenIndex,
) -> Result<Option<Replayed>> {
    let Ok(text) = sample.replayable_text() else {
        return Ok(None);
    };
    let query = Query {
        text: text.to_owned(),
        reader: sample.reader()?,
        k: sample.k as usize,
        mode: mode_of(&sample.mode),
        fusion: None,
        candidates: None,
    };
    let a = primary.search(&query)?;
    let b = candidate.search(&query)?;
    let docs =
        |r: &quire_core::Response| r.hits.iter().map(|h| h.doc_id.clone()).collect::<Vec<_>>();
    let c = compare(&docs(&a), &docs(&b), 0.0);
    Ok(Some(Replayed {
        intent: sample.intent_label().to_owned(),
        jaccard: c.jaccard,
        rbo: c.rbo,
        empty: (a.hits.is_empty(), b.hits.is_empty()),
        micros: (a.timings_us.total as f64, b.timings_us.total as f64),
    }))
}

/// The value at quantile `q` of `values` (sorted here).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}

fn arm_summary(replays: &[&Replayed], side: impl Fn(&Replayed) -> (bool, f64)) -> ArmSummary {
    let n = replays.len().max(1) as f64;
    let empty = replays.iter().filter(|r| side(r).0).count() as f64;
    let mut latency: Vec<f64> = replays.iter().map(|r| side(r).1).collect();
    ArmSummary {
        empty_rate: empty / n,
        p50_us: quantile(&mut latency, 0.5),
        p99_us: quantile(&mut latency, 0.99),
    }
}

fn stratum(replays: &[&Replayed]) -> Stratum {
    let n = replays.len().max(1) as f64;
    Stratum {
        replayed: u32::try_from(replays.len()).unwrap_or(u32::MAX),
        jaccard: replays.iter().map(|r| r.jaccard).sum::<f64>() / n,
        rbo: replays.iter().map(|r| r.rbo).sum::<f64>() / n,
        primary: arm_summary(replays, |r| (r.empty.0, r.micros.0)),
        candidate: arm_summary(replays, |r| (r.empty.1, r.micros.1)),
    }
}

/// Why nothing could be replayed.
fn nothing_to_replay(alias: &str, considered: usize, window_secs: u64) -> ServiceError {
    ServiceError::FailedPrecondition(if considered == 0 {
        format!(
            "alias {alias:?} has no sampled requests in the last {window_secs} s: sampling needs \
             a rate for it ([sampling] in server.toml) and traffic through it"
        )
    } else {
        format!(
            "none of the {considered} sampled requests of alias {alias:?} can be replayed: only \
             their query's hash was stored (sampling with store_text = false); set store_text = \
             true for this alias to evaluate canaries on its traffic"
        )
    })
}

impl Local {
    /// Evaluate `alias`'s candidate on its sampled queries, store the report and apply the
    /// alias's auto-rollback policy (blocking). Stops between samples once `cancel` is raised
    /// (its request's deadline passed or its client went away), storing nothing and rolling
    /// nothing back.
    pub(crate) fn evaluate_canary_now(
        &self,
        alias: &str,
        request: &CanaryEvalRequest,
        cancel: &Cancel,
    ) -> Result<CanaryOutcome> {
        const WHAT: &str = "the canary evaluation";
        let store = self.store();
        let current = store.alias(alias)?;
        let (candidate_id, arm) = candidate(&current, request.arm)?;
        let now = jiff::Timestamp::now();
        let samples = store.samples(&SampleQuery {
            alias: Some(alias.to_owned()),
            since_us: micros(now).saturating_sub(request.window_secs.saturating_mul(1_000_000)),
            limit: MAX_SAMPLE_LIST,
        })?;
        let chosen = stratify(samples, request.per_intent.clamp(1, MAX_PER_INTENT));
        let primary: Arc<OpenIndex> = store.open_index(&current.state.primary)?;
        let candidate_index = store.open_index(&candidate_id)?;
        let mut replays = Vec::new();
        for sample in &chosen {
            cancel.check(WHAT)?;
            replays.extend(replay(sample, &primary, &candidate_index)?);
        }
        if replays.is_empty() {
            return Err(nothing_to_replay(alias, chosen.len(), request.window_secs));
        }
        let mut per_intent: BTreeMap<String, Vec<&Replayed>> = BTreeMap::new();
        for r in &replays {
            per_intent.entry(r.intent.clone()).or_default().push(r);
        }
        let all: Vec<&Replayed> = replays.iter().collect();
        let mut report = CanaryReport {
            report_id: String::new(),
            alias: alias.to_owned(),
            revision: current.revision,
            primary: current.state.primary.clone(),
            candidate: candidate_id,
            arm: arm.to_owned(),
            created: now.to_string(),
            created_us: micros(now),
            actor: self.actor().to_owned(),
            window_secs: request.window_secs,
            considered: u32::try_from(chosen.len()).unwrap_or(u32::MAX),
            not_replayable: u32::try_from(chosen.len() - replays.len()).unwrap_or(u32::MAX),
            overall: stratum(&all),
            per_intent: per_intent
                .iter()
                .map(|(i, r)| (i.clone(), stratum(r)))
                .collect(),
            ndcg_at_10: self.gate_ndcg(&current)?,
            policy: current.state.auto_rollback.clone(),
            breaches: Vec::new(),
        };
        if let Some(policy) = &report.policy {
            report.breaches = policy.breaches(&report);
        }
        report.identify()?;
        cancel.check(WHAT)?;
        store.store_canary_report(&report)?;
        let rolled_back = if report.asks_rollback() {
            Some(store.auto_rollback(alias, &report, self.actor())?)
        } else {
            None
        };
        if let Some(m) = self.metrics() {
            m.record_canary(&report, rolled_back.is_some());
        }
        Ok(CanaryOutcome {
            report,
            rolled_back,
        })
    }

    /// nDCG@10 of the primary and the candidate under the alias's gate, from stored reports.
    fn gate_ndcg(&self, current: &AliasRevision) -> Result<Option<GateNdcg>> {
        let Some(policy) = &current.state.policy else {
            return Ok(None);
        };
        let reports = self.store().eval_reports(None)?;
        let candidate = current
            .state
            .canary
            .as_ref()
            .map(|c| &c.index)
            .or(current.state.shadow.as_ref());
        let latest = |index: &IndexId| quire_release::gate::latest(&reports, index, policy);
        Ok(
            match (latest(&current.state.primary), candidate.and_then(latest)) {
                (Some(p), Some(c)) => Some(GateNdcg {
                    primary_report: p.report_id.clone(),
                    primary: p.ndcg_at_10,
                    candidate_report: c.report_id.clone(),
                    candidate: c.ndcg_at_10,
                }),
                _ => None,
            },
        )
    }
}

/// The actor recorded for the server's scheduled evaluations and the rollbacks they make.
pub const CANARY_ACTOR: &str = "quire-serve:canary-eval";

/// Evaluate every alias with a canary (or shadow) every `schedule.every`, first one period after
/// the start, and delete reports past their retention, until `stop` changes.
pub(crate) async fn evaluate_canaries(
    local: Local,
    schedule: CanaryEvalSchedule,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Some(every) = schedule.every else {
        return;
    };
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let schedule = schedule.clone();
        let done = local
            .blocking(move |l| {
                evaluate_due(l, &schedule);
                Ok(())
            })
            .await;
        if done.is_err() {
            tracing::error!("a scheduled canary evaluation failed");
        }
    }
}

/// One round: every alias with a candidate arm, then retention.
fn evaluate_due(local: &Local, schedule: &CanaryEvalSchedule) {
    // No request to go away: a round runs to its end.
    let cancel = Cancel::default();
    for alias in local.store().aliases() {
        if alias.state.canary.is_none() && alias.state.shadow.is_none() {
            continue;
        }
        match local.evaluate_canary_now(&alias.alias, &schedule.request, &cancel) {
            Ok(outcome) => tracing::info!(
                alias = alias.alias,
                report = outcome.report.report_id,
                breaches = outcome.report.breaches.len(),
                rolled_back = outcome.rolled_back.map(|r| r.revision),
                "canary evaluated"
            ),
            // No samples yet, or none replayable: not an error of the server.
            Err(ServiceError::FailedPrecondition(why)) => {
                tracing::debug!(alias = alias.alias, why, "canary not evaluated");
            }
            Err(e) => tracing::warn!(alias = alias.alias, error = %e, "canary evaluation failed"),
        }
    }
    let now = micros(jiff::Timestamp::now());
    let retention = u64::try_from(schedule.report_retention.as_micros()).unwrap_or(u64::MAX);
    if let Err(e) = local
        .store()
        .prune_canary_reports(now.saturating_sub(retention))
    {
        tracing::warn!(error = %e, "could not delete expired canary reports");
    }
}
