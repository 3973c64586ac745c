//! Prometheus metrics and the tiny HTTP endpoint that serves them.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    step: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AliasLabels {
    alias: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IndexLabels {
    index: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct IntentLabels {
    alias: String,
    intent: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ArmIntentLabels {
    alias: String,
    arm: String,
    intent: String,
}

type RatioGauge = Gauge<f64, AtomicU64>;

/// Intents of one canary report exported as metric labels at most (the report has them all).
const MAX_INTENT_LABELS: usize = 64;

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 50 us .. ~105 s.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 22))
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    request_seconds: HistogramFamily<RpcLabels>,
    step_seconds: HistogramFamily<StepLabels>,
    index_queries: Family<IndexLabels, Counter>,
    build_seconds: Histogram,
    shadow_jaccard: HistogramFamily<AliasLabels>,
    shadow_rbo: HistogramFamily<AliasLabels>,
    shadow_latency_delta: HistogramFamily<AliasLabels>,
    shadow_dropped: Family<AliasLabels, Counter>,
    samples: Family<AliasLabels, Counter>,
    samples_dropped: Family<ReasonLabels, Counter>,
    canary_overlap: Family<IntentLabels, RatioGauge>,
    canary_rbo: Family<IntentLabels, RatioGauge>,
    canary_empty_rate: Family<ArmIntentLabels, RatioGauge>,
    canary_evaluations: Family<AliasLabels, Counter>,
    canary_rollbacks: Family<AliasLabels, Counter>,
    cpu_seconds: HistogramFamily<StepLabels>,
    outcomes: Family<OutcomeLabels, Counter>,
    outcome_cpu_seconds: Family<ArmIntentLabels, Counter<f64, AtomicU64>>,
    intent_labels: std::sync::Mutex<std::collections::BTreeSet<String>>,
    follow: crate::follow_metrics::FollowMetrics,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    alias: String,
    arm: String,
    intent: String,
    outcome: String,
}

fn cpu_histogram() -> Histogram {
    // 10 us .. ~5 s.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

fn overlap_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::linear_buckets(
        0.1, 0.1, 10,
    ))
}

fn delta_histogram() -> Histogram {
    // -50 ms .. +50 ms in 5 ms steps; further out lands in the end buckets.
    Histogram::new(prometheus_client::metrics::histogram::linear_buckets(
        -0.05, 0.005, 21,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with quire's metrics.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RpcLabels, Counter>::default();
        let request_seconds: HistogramFamily<RpcLabels> =
            Family::new_with_constructor(latency_histogram);
        let step_seconds: HistogramFamily<StepLabels> =
            Family::new_with_constructor(latency_histogram);
        let index_queries = Family::<IndexLabels, Counter>::default();
        let build_seconds = Histogram::new(exponential_buckets(0.01, 2.0, 20));
        registry.register(
            "quire_requests",
            "gRPC requests by method and status code",
            requests.clone(),
        );
        registry.register(
            "quire_request_seconds",
            "gRPC request latency by method and status code",
            request_seconds.clone(),
        );
        registry.register(
            "quire_retrieval_step_seconds",
            "Retrieval latency per step",
            step_seconds.clone(),
        );
        registry.register(
            "quire_index_queries",
            "Queries answered per index",
            index_queries.clone(),
        );
        registry.register(
            "quire_build_seconds",
            "Index build durations",
            build_seconds.clone(),
        );
        let shadow_jaccard: HistogramFamily<AliasLabels> =
            Family::new_with_constructor(overlap_histogram);
        let shadow_rbo: HistogramFamily<AliasLabels> =
            Family::new_with_constructor(overlap_histogram);
        let shadow_latency_delta: HistogramFamily<AliasLabels> =
            Family::new_with_constructor(delta_histogram);
        let shadow_dropped = Family::<AliasLabels, Counter>::default();
        registry.register(
            "quire_shadow_jaccard",
            "Jaccard overlap of top-k document ids, shadow vs primary, per alias",
            shadow_jaccard.clone(),
        );
        registry.register(
            "quire_shadow_rbo",
            "Rank-biased overlap (p=0.9) of top-k document ids, shadow vs primary, per alias",
            shadow_rbo.clone(),
        );
        registry.register(
            "quire_shadow_latency_delta_seconds",
            "Shadow minus primary latency per alias",
            shadow_latency_delta.clone(),
        );
        registry.register(
            "quire_shadow_dropped",
            "Shadow queries dropped because the shadow queue was full",
            shadow_dropped.clone(),
        );
        let samples = Family::<AliasLabels, Counter>::default();
        let samples_dropped = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "quire_samples",
            "Retrieve requests sampled (queued for the registry), per alias",
            samples.clone(),
        );
        registry.register(
            "quire_samples_dropped",
            "Sampled requests not recorded: an hourly cap (cap, intents) or a full queue (queue)",
            samples_dropped.clone(),
        );
        let canary_overlap = Family::<IntentLabels, RatioGauge>::default();
        let canary_rbo = Family::<IntentLabels, RatioGauge>::default();
        let canary_empty_rate = Family::<ArmIntentLabels, RatioGauge>::default();
        let canary_evaluations = Family::<AliasLabels, Counter>::default();
        let canary_rollbacks = Family::<AliasLabels, Counter>::default();
        registry.register(
            "quire_canary_overlap",
            "Mean top-k Jaccard overlap, candidate vs primary, in the latest canary report (intent overall or per intent)",
            canary_overlap.clone(),
        );
        registry.register(
            "quire_canary_rbo",
            "Mean rank-biased overlap (p=0.9), candidate vs primary, in the latest canary report",
            canary_rbo.clone(),
        );
        registry.register(
            "quire_canary_empty_rate",
            "Share of replayed queries with no hits per arm (primary, candidate) in the latest canary report",
            canary_empty_rate.clone(),
        );
        registry.register(
            "quire_canary_evaluations",
            "Canary evaluations stored, per alias",
            canary_evaluations.clone(),
        );
        registry.register(
            "quire_canary_rollbacks",
            "Canaries rolled back by an alias's auto-rollback policy",
            canary_rollbacks.clone(),
        );
        let cpu_seconds: HistogramFamily<StepLabels> = Family::new_with_constructor(cpu_histogram);
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        let outcome_cpu_seconds = Family::<ArmIntentLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "quire_retrieval_cpu_seconds",
            "Thread CPU time per retrieval step (embed, bm25, vector, fusion, total; shadow for shadow queries)",
            cpu_seconds.clone(),
        );
        registry.register(
            "quire_outcomes",
            "Feedback on answered requests per alias, arm and intent (outcome success or failure)",
            outcomes.clone(),
        );
        registry.register(
            "quire_outcome_cpu_seconds",
            "CPU time of the requests with feedback per alias, arm and intent; divided by quire_outcomes{outcome=\"success\"} it is the CPU per successful query",
            outcome_cpu_seconds.clone(),
        );
        let follow = crate::follow_metrics::FollowMetrics::register(&mut registry);
        Self {
            registry,
            requests,
            request_seconds,
            step_seconds,
            index_queries,
            build_seconds,
            shadow_jaccard,
            shadow_rbo,
            shadow_latency_delta,
            shadow_dropped,
            samples,
            samples_dropped,
            canary_overlap,
            canary_rbo,
            canary_empty_rate,
            canary_evaluations,
            canary_rollbacks,
            cpu_seconds,
            outcomes,
            outcome_cpu_seconds,
            intent_labels: std::sync::Mutex::default(),
            follow,
        }
    }

    /// The metrics of following the registry.
    pub(crate) fn follow(&self) -> &crate::follow_metrics::FollowMetrics {
        &self.follow
    }

    /// Record one step's CPU time.
    pub fn record_cpu(&self, step: &str, cpu_us: u64) {
        self.cpu_seconds
            .get_or_create(&StepLabels { step: step.into() })
            .observe(cpu_us as f64 / 1e6);
    }

    /// `intent` as a metric label: the first [`MAX_INTENT_LABELS`] intents seen keep their
    /// name, later ones are `(other)`, so callers inventing labels cannot grow the metrics.
    fn intent_label(&self, intent: &str) -> String {
        let mut seen = self.intent_labels.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(intent) || seen.len() < MAX_INTENT_LABELS {
            seen.insert(intent.to_owned());
            intent.to_owned()
        } else {
            "(other)".to_owned()
        }
    }

    /// Record one feedback: its outcome and, for the CPU per successful query, its cost.
    pub fn record_outcome(&self, r: &quire_release::outcome::FeedbackRecord) {
        let intent = self.intent_label(
            r.intent
                .as_ref()
                .map_or(quire_release::sampling::NO_INTENT, |i| i.as_str()),
        );
        let outcome = if r.success { "success" } else { "failure" };
        self.outcomes
            .get_or_create(&OutcomeLabels {
                alias: r.alias.clone(),
                arm: r.arm.clone(),
                intent: intent.clone(),
                outcome: outcome.into(),
            })
            .inc();
        self.outcome_cpu_seconds
            .get_or_create(&ArmIntentLabels {
                alias: r.alias.clone(),
                arm: r.arm.clone(),
                intent,
            })
            .inc_by(r.cpu_us.total as f64 / 1e6);
    }

    /// Record a stored canary report (overall and up to [`MAX_INTENT_LABELS`] intents) and
    /// whether it rolled the canary back.
    pub fn record_canary(&self, report: &quire_release::CanaryReport, rolled_back: bool) {
        let alias = AliasLabels {
            alias: report.alias.clone(),
        };
        self.canary_evaluations.get_or_create(&alias).inc();
        if rolled_back {
            self.canary_rollbacks.get_or_create(&alias).inc();
        }
        let strata = std::iter::once(("overall", &report.overall)).chain(
            report
                .per_intent
                .iter()
                .take(MAX_INTENT_LABELS)
                .map(|(i, s)| (i.as_str(), s)),
        );
        for (intent, s) in strata {
            let labels = IntentLabels {
                alias: report.alias.clone(),
                intent: intent.to_owned(),
            };
            self.canary_overlap.get_or_create(&labels).set(s.jaccard);
            self.canary_rbo.get_or_create(&labels).set(s.rbo);
            for (arm, side) in [("primary", &s.primary), ("candidate", &s.candidate)] {
                let labels = ArmIntentLabels {
                    alias: report.alias.clone(),
                    arm: arm.to_owned(),
                    intent: intent.to_owned(),
                };
                self.canary_empty_rate
                    .get_or_create(&labels)
                    .set(side.empty_rate);
            }
        }
    }

    /// Record one finished RPC.
    pub fn record_request(&self, rpc: &str, code: tonic::Code, elapsed: Duration) {
        let labels = RpcLabels {
            rpc: rpc.into(),
            code: format!("{code:?}"),
        };
        self.requests.get_or_create(&labels).inc();
        self.request_seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Record one answered query's step timings and CPU times.
    pub fn record_retrieval(
        &self,
        index: &str,
        timings: &quire_index::Timings,
        cpu: &quire_index::Timings,
    ) {
        for (step, us) in [
            ("embed", cpu.embed),
            ("bm25", cpu.bm25),
            ("vector", cpu.vector),
            ("fusion", cpu.fusion),
            ("total", cpu.total),
        ] {
            self.record_cpu(step, us);
        }
        self.index_queries
            .get_or_create(&IndexLabels {
                index: index.into(),
            })
            .inc();
        for (step, us) in [
            ("embed", timings.embed),
            ("bm25", timings.bm25),
            ("vector", timings.vector),
            ("fusion", timings.fusion),
            ("total", timings.total),
        ] {
            self.step_seconds
                .get_or_create(&StepLabels { step: step.into() })
                .observe(us as f64 / 1e6);
        }
    }

    /// Record one finished build.
    pub fn record_build(&self, elapsed: Duration) {
        self.build_seconds.observe(elapsed.as_secs_f64());
    }

    /// Record one shadow comparison.
    pub fn record_shadow(&self, alias: &str, c: &crate::shadow::Comparison) {
        let labels = AliasLabels {
            alias: alias.into(),
        };
        self.shadow_jaccard
            .get_or_create(&labels)
            .observe(c.jaccard);
        self.shadow_rbo.get_or_create(&labels).observe(c.rbo);
        self.shadow_latency_delta
            .get_or_create(&labels)
            .observe(c.latency_delta_us / 1e6);
    }

    /// Record one shadow query dropped for lack of a slot.
    pub fn record_shadow_dropped(&self, alias: &str) {
        self.shadow_dropped
            .get_or_create(&AliasLabels {
                alias: alias.into(),
            })
            .inc();
    }

    /// Record one sampled request.
    pub fn record_sampled(&self, alias: &str) {
        self.samples
            .get_or_create(&AliasLabels {
                alias: alias.into(),
            })
            .inc();
    }

    /// Record one sampled request that was not recorded, and why.
    pub fn record_sample_dropped(&self, reason: &str) {
        self.samples_dropped
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Serve `GET /metrics` on `listener` until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let response = if request.starts_with("GET /metrics ") {
                let body = metrics.encode();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            };
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}
