//! Outcomes: the requests the server answered through an alias, remembered (boundedly) so that
//! the application's feedback on a request id can be checked and charged to the arm, intent and
//! CPU cost of that request.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use quire_core::{IndexId, Response};
use quire_release::outcome::{CpuMicros, FeedbackLabel, FeedbackRecord};
use quire_release::sampling::micros;
use quire_release::{Intent, Via};
use serde::Deserialize;

use crate::error::{Result, ServiceError};
use crate::metrics::Metrics;
use crate::observe::{Observation, Observations};

/// `[feedback]` in server.toml, as written.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct RawFeedback {
    /// Answered requests remembered for feedback at most (0: no feedback).
    pub remember: usize,
    /// Feedback is taken this long after the answer, e.g. `1h`.
    pub window: String,
    /// Feedback records written per hour at most; more are refused (RESOURCE_EXHAUSTED).
    pub max_per_hour: u32,
    /// How long feedback records are kept, e.g. `30d`.
    pub retention: String,
}

impl Default for RawFeedback {
    fn default() -> Self {
        Self {
            remember: 10_000,
            window: "1h".into(),
            max_per_hour: 100_000,
            retention: "30d".into(),
        }
    }
}

/// Checked feedback settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackConfig {
    /// Requests remembered at most.
    pub remember: usize,
    /// How long after the answer feedback is taken, microseconds.
    pub window_us: u64,
    /// Feedback records per hour at most.
    pub max_per_hour: u32,
    /// How long records are kept.
    pub retention: std::time::Duration,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        RawFeedback::default()
            .check()
            .unwrap_or_else(|e| unreachable!("the defaults are valid: {e:?}"))
    }
}

impl RawFeedback {
    /// Check every bound; `Err` names the field and why.
    pub fn check(self) -> std::result::Result<FeedbackConfig, (String, String)> {
        let secs = |field: &str, text: &str| {
            quire_core::spec::parse_duration_secs(text)
                .ok()
                .filter(|s| *s <= 366 * 86_400)
                .ok_or_else(|| {
                    (
                        format!("feedback.{field}"),
                        format!("{text:?} is not a duration of at most 366d"),
                    )
                })
        };
        if self.remember > 1_000_000 {
            return Err(("feedback.remember".into(), "must be at most 1000000".into()));
        }
        if !(1..=10_000_000).contains(&self.max_per_hour) {
            return Err((
                "feedback.max_per_hour".into(),
                "must be 1 to 10000000".into(),
            ));
        }
        Ok(FeedbackConfig {
            remember: self.remember,
            window_us: secs("window", &self.window)?.saturating_mul(1_000_000),
            max_per_hour: self.max_per_hour,
            retention: std::time::Duration::from_secs(secs("retention", &self.retention)?),
        })
    }
}

/// An answered request waiting for feedback.
#[derive(Clone, Debug)]
struct Pending {
    caller: String,
    alias: String,
    revision: u64,
    arm: &'static str,
    index_id: IndexId,
    intent: Option<Intent>,
    latency_us: u64,
    cpu: CpuMicros,
    answered: bool,
}

/// The remembered requests, oldest first in `order`.
#[derive(Default)]
struct Recent {
    /// Looked up by id only (never iterated), so a hash map: every answered request is
    /// inserted and later evicted, and a B-tree's string comparisons showed in the load bench.
    by_id: HashMap<Arc<str>, Pending>,
    order: VecDeque<(u64, Arc<str>)>,
    hour: u64,
    written_this_hour: u32,
}

impl Recent {
    /// Forget requests past the window or beyond the capacity, oldest first.
    fn evict(&mut self, now_us: u64, config: &FeedbackConfig) {
        while let Some((time_us, _)) = self.order.front() {
            let expired = now_us.saturating_sub(*time_us) > config.window_us;
            if !expired && self.order.len() <= config.remember {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.by_id.remove(&id);
            }
        }
    }
}

/// One answered request, as the outcome tracker sees it.
pub struct Served<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// The caller (a token name), the only one whose feedback counts.
    pub caller: &'a str,
    /// How the alias routed it.
    pub via: &'a Via,
    /// Its intent.
    pub intent: Option<&'a Intent>,
    /// The answer.
    pub response: &'a Response,
}

/// The server's outcome tracker.
pub struct Outcomes {
    config: FeedbackConfig,
    recent: Mutex<Recent>,
    queue: Arc<Observations>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Outcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outcomes")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Outcomes {
    /// A tracker with `config`, writing through `queue`.
    pub fn new(
        config: FeedbackConfig,
        queue: Arc<Observations>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            config,
            recent: Mutex::default(),
            queue,
            metrics,
        }
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, Recent> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Remember `served` for feedback.
    pub fn remember(&self, served: &Served<'_>) {
        if self.config.remember == 0 {
            return;
        }
        let now = micros(jiff::Timestamp::now());
        let c = served.response.cpu_us;
        let pending = Pending {
            caller: served.caller.to_owned(),
            alias: served.via.alias.clone(),
            revision: served.via.revision,
            arm: served.via.arm.as_str(),
            index_id: served.response.lineage.index_id.clone(),
            intent: served.intent.cloned(),
            latency_us: served.response.timings_us.total,
            cpu: CpuMicros {
                embed: c.embed,
                bm25: c.bm25,
                vector: c.vector,
                fusion: c.fusion,
                shadow: 0,
                total: c.total,
            },
            answered: false,
        };
        let mut recent = self.recent();
        let id: Arc<str> = Arc::from(served.request_id);
        recent.order.push_back((now, id.clone()));
        recent.by_id.insert(id, pending);
        recent.evict(now, &self.config);
    }

    /// Charge a shadow query's CPU to the request it shadowed (while it is remembered).
    pub fn add_shadow_cpu(&self, request_id: &str, cpu_us: u64) {
        if let Some(p) = self.recent().by_id.get_mut(request_id) {
            p.cpu.shadow += cpu_us;
            p.cpu.total += cpu_us;
        }
    }

    /// Take `caller`'s feedback on `request_id`: once per request, from the caller that sent
    /// it, within the window, under the hourly cap. The record is queued for the registry.
    pub fn feedback(
        &self,
        caller: &str,
        request_id: &str,
        success: bool,
        label: Option<FeedbackLabel>,
    ) -> Result<FeedbackRecord> {
        let now = jiff::Timestamp::now();
        let now_us = micros(now);
        let record = {
            let mut recent = self.recent();
            recent.evict(now_us, &self.config);
            let hour = now_us / 3_600_000_000;
            if recent.hour != hour {
                (recent.hour, recent.written_this_hour) = (hour, 0);
            }
            if recent.written_this_hour >= self.config.max_per_hour {
                return Err(ServiceError::ResourceExhausted(format!(
                    "more than {} feedback records this hour",
                    self.config.max_per_hour
                )));
            }
            let Some(p) = recent.by_id.get_mut(request_id) else {
                return Err(ServiceError::NotFound(format!(
                    "no answered request {request_id:?} is remembered: it is unknown, was not \
                     through an alias, or is older than the feedback window"
                )));
            };
            if p.caller != caller {
                return Err(ServiceError::PermissionDenied(format!(
                    "request {request_id} was sent by another caller; only its sender may give feedback"
                )));
            }
            if p.answered {
                return Err(ServiceError::FailedPrecondition(format!(
                    "feedback on request {request_id} was given already"
                )));
            }
            p.answered = true;
            let record = FeedbackRecord {
                request_id: request_id.to_owned(),
                time: now.to_string(),
                time_us: now_us,
                alias: p.alias.clone(),
                revision: p.revision,
                arm: p.arm.to_owned(),
                index_id: p.index_id.clone(),
                intent: p.intent.clone(),
                success,
                label,
                latency_us: p.latency_us,
                cpu_us: p.cpu,
            };
            recent.written_this_hour += 1;
            record
        };
        if let Some(m) = &self.metrics {
            m.record_outcome(&record);
        }
        if !self.queue.offer(Observation::Feedback(record.clone())) {
            tracing::warn!(
                request = record.request_id,
                "feedback queue full: the record was not stored"
            );
            if let Some(m) = &self.metrics {
                m.record_sample_dropped("feedback-queue");
            }
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(toml_text: &str) -> Outcomes {
        let raw: RawFeedback = toml::from_str(toml_text).expect("toml");
        Outcomes::new(
            raw.check().expect("checked"),
            Arc::new(Observations::new(8)),
            None,
        )
    }

    fn served(outcomes: &Outcomes, id: &str, caller: &str) {
        let via = Via {
            alias: "prod".into(),
            revision: 2,
            arm: quire_core::Arm::Canary,
            shadow: None,
        };
        let response = Response {
            hits: Vec::new(),
            lineage: quire_core::Lineage {
                index_id: format!("idx-{}", "1".repeat(64)).parse().unwrap(),
                content_digest: String::new(),
                snapshot_id: format!("snap-{}", "2".repeat(64)).parse().unwrap(),
                embedding_model: String::new(),
                embedding_digest: String::new(),
                alias: None,
                revision: None,
                arm: None,
            },
            nothing_readable: false,
            timings_us: quire_core::Timings::default(),
            cpu_us: quire_core::Timings {
                total: 700,
                ..quire_core::Timings::default()
            },
            request_id: Some(id.into()),
        };
        outcomes.remember(&Served {
            request_id: id,
            caller,
            via: &via,
            intent: None,
            response: &response,
        });
    }

    #[test]
    fn feedback_is_taken_once_from_the_sender_of_a_remembered_request() {
        let o = tracker("remember = 2\nmax_per_hour = 2");
        for id in ["rq-a", "rq-b", "rq-c"] {
            served(&o, id, "app");
        }
        let code = |r: Result<FeedbackRecord>| r.err().map(|e| e.code());
        assert_eq!(
            code(o.feedback("app", "rq-a", true, None)),
            Some(tonic::Code::NotFound),
            "evicted"
        );
        assert_eq!(
            code(o.feedback("other", "rq-b", true, None)),
            Some(tonic::Code::PermissionDenied)
        );
        o.add_shadow_cpu("rq-b", 300);
        let record = o.feedback("app", "rq-b", false, None).unwrap();
        assert_eq!(
            (
                record.arm.as_str(),
                record.cpu_us.total,
                record.cpu_us.shadow
            ),
            ("canary", 1000, 300)
        );
        assert_eq!(
            code(o.feedback("app", "rq-b", true, None)),
            Some(tonic::Code::FailedPrecondition)
        );
        o.feedback("app", "rq-c", true, None).unwrap();
        served(&o, "rq-d", "app");
        assert_eq!(
            code(o.feedback("app", "rq-d", true, None)),
            Some(tonic::Code::ResourceExhausted),
            "the hourly cap"
        );
    }
}
