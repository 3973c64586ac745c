//! Query sampling: which Retrieve requests through an alias are recorded, and the background
//! writer that stores them in the registry without holding up the response.
//!
//! A request is sampled when a hash of its id and the configured seed falls under the alias's
//! rate (so the decision is reproducible), and only while its alias and intent are under their
//! hourly caps: a frequent intent cannot drown a rare one, and no caller can make the server
//! write more than `max_per_hour` records an hour, however many intent labels it invents.
//! Records go through the bounded queue of [`crate::observe`]; when it is full a record is
//! dropped and counted.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use quire_release::sampling::{SampleRecord, principal_of};
use quire_release::{Intent, SampledQuery, StepMicros, Via};
use serde::Deserialize;

use crate::metrics::Metrics;
use crate::observe::{Observation, Observations};

/// `[sampling.aliases.NAME]`: one alias's own rate or text policy.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AliasSampling {
    /// Share of this alias's requests to sample.
    pub rate: Option<f64>,
    /// Whether to keep this alias's query texts.
    pub store_text: Option<bool>,
}

/// `[sampling]` in server.toml, as written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RawSampling {
    /// Share of requests through an alias to record, 0 (off, the default) to 1.
    pub rate: f64,
    /// Keep the query text (needed to replay a sample); otherwise only its blake3 hash.
    pub store_text: bool,
    /// How long records are kept, e.g. `7d`.
    pub retention: String,
    /// Records per alias and intent per hour at most.
    pub cap_per_intent_per_hour: u32,
    /// Distinct intents per alias per hour that are sampled; later ones are not.
    pub max_intents_per_hour: u32,
    /// Records per hour at most, all aliases together.
    pub max_per_hour: u32,
    /// Seed of the sampling decision.
    pub seed: u64,
    /// Records waiting to be written at most; more are dropped and counted.
    pub queue: usize,
    /// Per-alias overrides.
    pub aliases: BTreeMap<String, AliasSampling>,
}

impl Default for RawSampling {
    fn default() -> Self {
        Self {
            rate: 0.0,
            store_text: false,
            retention: "7d".into(),
            cap_per_intent_per_hour: 100,
            max_intents_per_hour: 64,
            max_per_hour: 10_000,
            seed: 0,
            queue: 1024,
            aliases: BTreeMap::new(),
        }
    }
}

/// Checked sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    raw: RawSampling,
    retention: Duration,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        Self {
            raw: RawSampling::default(),
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// The longest retention, in seconds.
const MAX_RETENTION_SECS: u64 = 366 * 86_400;

/// Sampling decisions are made in millionths.
const SCALE: u64 = 1_000_000;

impl RawSampling {
    /// Check every bound; `Err` names the field and why.
    pub fn check(self) -> Result<SamplingConfig, (String, String)> {
        let rate_ok = |r: f64| r.is_finite() && (0.0..=1.0).contains(&r);
        if !rate_ok(self.rate) {
            return Err(("sampling.rate".into(), "must be between 0 and 1".into()));
        }
        for (name, a) in &self.aliases {
            if a.rate.is_some_and(|r| !rate_ok(r)) {
                let field = format!("sampling.aliases.{name}.rate");
                return Err((field, "must be between 0 and 1".into()));
            }
        }
        let retention = quire_core::spec::parse_duration_secs(&self.retention)
            .map_err(|e| ("sampling.retention".to_owned(), e))?;
        if retention > MAX_RETENTION_SECS {
            return Err(("sampling.retention".into(), "must be at most 366d".into()));
        }
        for (field, value, max) in [
            (
                "cap_per_intent_per_hour",
                self.cap_per_intent_per_hour,
                100_000,
            ),
            ("max_intents_per_hour", self.max_intents_per_hour, 10_000),
            ("max_per_hour", self.max_per_hour, 1_000_000),
            (
                "queue",
                u32::try_from(self.queue).unwrap_or(u32::MAX),
                65_536,
            ),
        ] {
            if !(1..=max).contains(&value) {
                return Err((format!("sampling.{field}"), format!("must be 1 to {max}")));
            }
        }
        Ok(SamplingConfig {
            raw: self,
            retention: Duration::from_secs(retention),
        })
    }
}

impl SamplingConfig {
    /// The share of `alias`'s requests to sample, in millionths.
    fn rate(&self, alias: &str) -> u64 {
        let rate = self
            .raw
            .aliases
            .get(alias)
            .and_then(|a| a.rate)
            .unwrap_or(self.raw.rate);
        (rate * SCALE as f64).round() as u64
    }

    /// Whether `alias`'s query texts are kept.
    pub fn store_text(&self, alias: &str) -> bool {
        self.raw
            .aliases
            .get(alias)
            .and_then(|a| a.store_text)
            .unwrap_or(self.raw.store_text)
    }

    /// Whether any request may be sampled.
    pub fn enabled(&self) -> bool {
        self.raw.rate > 0.0 || self.raw.aliases.values().any(|a| a.rate > Some(0.0))
    }

    /// How long records are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }
}

/// What this hour's sampling has used.
#[derive(Default)]
struct HourlyCounts {
    hour: u64,
    total: u32,
    /// Per alias, per intent label.
    per_intent: BTreeMap<(String, String), u32>,
    /// Distinct intents per alias.
    intents: BTreeMap<String, u32>,
}

/// Why a request selected by the rate was not recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Its intent, or the hour, reached its cap.
    Cap,
    /// Its alias already has `max_intents_per_hour` intents this hour.
    Intents,
    /// The write queue was full.
    Queue,
}

impl Dropped {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cap => "cap",
            Self::Intents => "intents",
            Self::Queue => "queue",
        }
    }
}

/// The server's sampler: decisions, caps and the queue to the writer.
pub struct Sampler {
    config: SamplingConfig,
    /// The decision hash's state after its context and seed, cloned per request.
    decision: blake3::Hasher,
    counts: Mutex<HourlyCounts>,
    queue: Arc<Observations>,
    dropped: AtomicU64,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// One answered request, as the sampler sees it.
pub struct Answered<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// How the alias routed it.
    pub via: &'a Via,
    /// The query, with the effective reader.
    pub query: &'a quire_core::Query,
    /// The caller's intent.
    pub intent: Option<&'a Intent>,
    /// The answer.
    pub response: &'a quire_core::Response,
}

impl Sampler {
    /// A sampler with `config`, writing through `queue`, reporting into `metrics`.
    pub fn new(
        config: SamplingConfig,
        queue: Arc<Observations>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        let mut decision = blake3::Hasher::new_derive_key("quire 2026 sampling decision v1");
        decision.update(&config.raw.seed.to_le_bytes());
        Self {
            config,
            decision,
            counts: Mutex::default(),
            queue,
            dropped: AtomicU64::new(0),
            metrics,
        }
    }

    /// The queue capacity `[sampling] queue` asks for.
    pub fn queue_capacity(config: &SamplingConfig) -> usize {
        config.raw.queue
    }

    /// The settings.
    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// Records dropped so far (caps and a full queue).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the rate selects `request_id` for `alias`: a hash of the seed and the id, so
    /// the same request is decided the same way on every run.
    pub fn selects(&self, alias: &str, request_id: &str) -> bool {
        let rate = self.config.rate(alias);
        if rate == 0 {
            return false;
        }
        let mut h = self.decision.clone();
        h.update(request_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&h.finalize().as_bytes()[..8]);
        u64::from_le_bytes(first) % SCALE < rate
    }

    /// Count one record of `alias` and `intent` against this hour's caps, or say why not.
    fn admit(&self, alias: &str, intent: &str, hour: u64) -> Result<(), Dropped> {
        let raw = &self.config.raw;
        let mut c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if c.hour != hour {
            *c = HourlyCounts {
                hour,
                ..HourlyCounts::default()
            };
        }
        if c.total >= raw.max_per_hour {
            return Err(Dropped::Cap);
        }
        let key = (alias.to_owned(), intent.to_owned());
        let seen = c.per_intent.get(&key).copied();
        if seen.is_none() && c.intents.get(alias).copied().unwrap_or(0) >= raw.max_intents_per_hour
        {
            return Err(Dropped::Intents);
        }
        if seen.unwrap_or(0) >= raw.cap_per_intent_per_hour {
            return Err(Dropped::Cap);
        }
        if seen.is_none() {
            *c.intents.entry(alias.to_owned()).or_default() += 1;
        }
        *c.per_intent.entry(key).or_default() += 1;
        c.total += 1;
        Ok(())
    }

    /// Record `answered` if it is selected and under the caps: queued for the writer, never
    /// waited on.
    pub fn offer(&self, answered: &Answered<'_>) {
        let alias = answered.via.alias.as_str();
        if !self.selects(alias, answered.request_id) {
            return;
        }
        let now = jiff::Timestamp::now();
        let hour = quire_release::sampling::micros(now) / 3_600_000_000;
        let intent = answered
            .intent
            .map_or(quire_release::sampling::NO_INTENT, Intent::as_str);
        let outcome = self.admit(alias, intent, hour).and_then(|()| {
            let record = self.record(answered, now);
            if self.queue.offer(Observation::Sample(record)) {
                Ok(())
            } else {
                Err(Dropped::Queue)
            }
        });
        match outcome {
            Ok(()) => {
                if let Some(m) = &self.metrics {
                    m.record_sampled(alias);
                }
            }
            Err(why) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(m) = &self.metrics {
                    m.record_sample_dropped(why.as_str());
                }
            }
        }
    }

    fn record(&self, a: &Answered<'_>, now: jiff::Timestamp) -> SampleRecord {
        let (user, groups) = principal_of(&a.query.reader);
        let t = a.response.timings_us;
        SampleRecord {
            request_id: a.request_id.to_owned(),
            time: now.to_string(),
            time_us: quire_release::sampling::micros(now),
            alias: a.via.alias.clone(),
            revision: a.via.revision,
            arm: a.via.arm.as_str().to_owned(),
            index_id: a.response.lineage.index_id.clone(),
            intent: a.intent.cloned(),
            user,
            groups,
            k: u32::try_from(a.query.k).unwrap_or(u32::MAX),
            mode: a.query.mode.as_str().to_owned(),
            timings_us: StepMicros {
                embed: t.embed,
                bm25: t.bm25,
                vector: t.vector,
                fusion: t.fusion,
                total: t.total,
            },
            chunk_ids: a.response.hits.iter().map(|h| h.chunk_id.clone()).collect(),
            doc_ids: a.response.hits.iter().map(|h| h.doc_id.clone()).collect(),
            query: SampledQuery::new(&a.query.text, self.config.store_text(&a.via.alias)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampler(toml_text: &str) -> Sampler {
        let raw: RawSampling = toml::from_str(toml_text).expect("toml");
        Sampler::new(
            raw.check().expect("checked"),
            Arc::new(Observations::new(8)),
            None,
        )
    }

    #[test]
    fn the_rate_decides_by_request_id_and_seed() {
        let s = sampler("rate = 0.25\n[aliases.off]\nrate = 0.0");
        let ids: Vec<String> = (0..4000).map(|i| format!("rq-{i}")).collect();
        let chosen = ids.iter().filter(|id| s.selects("prod", id)).count();
        assert!((800..=1200).contains(&chosen), "{chosen} of 4000 at 25%");
        assert!(
            ids.iter()
                .all(|id| s.selects("prod", id) == s.selects("prod", id))
        );
        assert!(
            !ids.iter().any(|id| s.selects("off", id)),
            "a per-alias override"
        );
        // The decision is the documented hash: derive-key context, seed, then the id.
        let reference = |id: &str| {
            let mut h = blake3::Hasher::new_derive_key("quire 2026 sampling decision v1");
            h.update(&s.config.raw.seed.to_le_bytes());
            h.update(id.as_bytes());
            let bytes: [u8; 8] = h.finalize().as_bytes()[..8].try_into().unwrap();
            u64::from_le_bytes(bytes) % SCALE < s.config.rate("prod")
        };
        assert!(ids.iter().all(|id| s.selects("prod", id) == reference(id)));
        let reseeded = sampler("rate = 0.25\nseed = 7");
        assert!(
            ids.iter()
                .any(|id| s.selects("prod", id) != reseeded.selects("prod", id))
        );
    }

    #[test]
    fn caps_bound_each_intent_the_number_of_intents_and_the_hour() {
        let s = sampler(
            "rate = 1.0\ncap_per_intent_per_hour = 2\nmax_intents_per_hour = 2\nmax_per_hour = 5",
        );
        assert_eq!(s.admit("prod", "a", 1), Ok(()));
        assert_eq!(s.admit("prod", "a", 1), Ok(()));
        assert_eq!(
            s.admit("prod", "a", 1),
            Err(Dropped::Cap),
            "a frequent intent"
        );
        assert_eq!(
            s.admit("prod", "b", 1),
            Ok(()),
            "a rare intent still gets in"
        );
        assert_eq!(s.admit("prod", "c", 1), Err(Dropped::Intents));
        assert_eq!(s.admit("other", "c", 1), Ok(()));
        assert_eq!(s.admit("other", "d", 1), Ok(()));
        assert_eq!(
            s.admit("other", "d", 1),
            Err(Dropped::Cap),
            "the hour is full"
        );
        assert_eq!(s.admit("prod", "a", 2), Ok(()), "a new hour starts over");
    }

    #[test]
    fn settings_are_bounded_and_named() {
        for (text, field) in [
            ("rate = 1.5", "sampling.rate"),
            ("[aliases.prod]\nrate = -1.0", "sampling.aliases.prod.rate"),
            ("retention = \"forever\"", "sampling.retention"),
            (
                "cap_per_intent_per_hour = 0",
                "sampling.cap_per_intent_per_hour",
            ),
            ("queue = 100000", "sampling.queue"),
        ] {
            let raw: RawSampling = toml::from_str(text).expect("toml");
            assert_eq!(
                raw.check().err().map(|e| e.0),
                Some(field.to_owned()),
                "{text}"
            );
        }
        assert!(
            toml::from_str::<RawSampling>("ratio = 1.0").is_err(),
            "unknown fields"
        );
    }
}
