//! Replicas and following a shared registry: `[replica]` in server.toml (or `quire serve
//! --replica`), the RPCs a read-only replica refuses, and the background task that keeps a
//! server's aliases in step with the registry and its health with what is local.
//!
//! A server on a PostgreSQL registry follows it whether or not it is a replica: it `LISTEN`s
//! for alias changes, polls every `poll_interval_ms` as well (notifications sent while it was
//! disconnected are lost) and re-reads after reconnecting. Each round fetches the arms of every
//! alias's newest revision into the data dir and only then switches the alias, so the
//! revision served before keeps serving meanwhile. Health is NOT_SERVING while an arm of a
//! served revision is not local. Staleness is bounded by the poll interval plus the time
//! the fetch takes.

use std::sync::Arc;
use std::time::Duration;

use quire_proto::pb;
use quire_store::{OnChange, Store};
use serde::Deserialize;
use tokio::sync::{Notify, watch};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::error::{Result, ServiceError};

/// `[replica]` as written in server.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReplica {
    #[serde(default)]
    enabled: bool,
    poll_interval_ms: Option<u64>,
}

/// Following the registry, and whether this server is a read-only replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaConfig {
    /// A read-only replica: it refuses every RPC that changes something, and writes nothing to
    /// the registry.
    pub enabled: bool,
    /// How often the registry is read when no notification came; GC waits twice this before
    /// deleting what it marked.
    pub poll_interval: Duration,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            poll_interval: quire_store::DEFAULT_POLL_INTERVAL,
        }
    }
}

/// The shortest and longest poll interval accepted.
const POLL_RANGE_MS: std::ops::RangeInclusive<u64> = 50..=600_000;

impl RawReplica {
    /// The checked settings; `Err` names the field and why.
    pub(crate) fn check(self) -> std::result::Result<ReplicaConfig, (&'static str, String)> {
        let poll_interval = match self.poll_interval_ms {
            None => quire_store::DEFAULT_POLL_INTERVAL,
            Some(ms) if POLL_RANGE_MS.contains(&ms) => Duration::from_millis(ms),
            Some(ms) => {
                return Err((
                    "replica.poll_interval_ms",
                    format!(
                        "{ms} is outside {}..={}",
                        POLL_RANGE_MS.start(),
                        POLL_RANGE_MS.end()
                    ),
                ));
            }
        };
        Ok(ReplicaConfig {
            enabled: self.enabled,
            poll_interval,
        })
    }
}

/// What a replica needs of the rest of the configuration: a shared registry and store, and
/// no background work that writes to the registry.
pub(crate) fn check_replica(config: &crate::ServerConfig) -> Result<()> {
    if !config.replica.enabled {
        return Ok(());
    }
    let refuse = |what: &str| Err(ServiceError::InvalidArgument(format!("replica: {what}")));
    if config.registry.is_none() {
        return refuse(
            "a replica follows a shared registry: set [registry] url (PostgreSQL); the data \
             dir's redb registry cannot be read while another process writes it",
        );
    }
    if config.storage.is_none() {
        return refuse("a replica fetches indices from a shared store: set [storage] url");
    }
    if config.sampling.enabled() || config.canary_eval.every.is_some() {
        return refuse(
            "a replica writes nothing to the registry: sample queries and evaluate canaries on \
             a writer ([sampling] and [release] canary_eval_every)",
        );
    }
    Ok(())
}

/// The RPCs that change something (the registry, the data dir's artifacts): a replica
/// refuses them.
const WRITES: &[&str] = &[
    "ImportSnapshot",
    "BuildIndex",
    "RebuildCheck",
    "ChangeAlias",
    "Pin",
    "Unpin",
    "CollectGarbage",
    "DeleteIndex",
    "Evaluate",
    "Gate",
    "Rebaseline",
    "EvaluateCanary",
    "Feedback",
];

/// Refuse `rpc` on a replica when it changes something.
pub(crate) fn refuse_write(replica: bool, rpc: &str) -> Result<()> {
    if replica && WRITES.contains(&rpc) {
        return Err(ServiceError::FailedPrecondition(format!(
            "{rpc} changes the registry or the artifacts, and this server is a read-only \
             replica (quire serve --replica); send it to a writer"
        )));
    }
    Ok(())
}

/// Report every quire service (and the server as a whole, `""`) as serving or not.
pub(crate) async fn set_health(reporter: &HealthReporter, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    for name in [
        "",
        pb::retrieval_service_server::SERVICE_NAME,
        pb::index_service_server::SERVICE_NAME,
        pb::snapshot_service_server::SERVICE_NAME,
        pb::release_service_server::SERVICE_NAME,
        pb::audit_service_server::SERVICE_NAME,
        pb::eval_service_server::SERVICE_NAME,
        pb::canary_service_server::SERVICE_NAME,
    ] {
        reporter.set_service_status(name, status).await;
    }
}

/// Follow the registry until `stop`: a round at start, then one after every notification or
/// `every` without one. Health follows [`Store::arms_local`] after each round; `metrics` get
/// each round's outcome and lag.
pub(crate) async fn follow(
    store: Arc<Store>,
    metrics: Arc<crate::metrics::Metrics>,
    every: Duration,
    health: HealthReporter,
    mut stop: watch::Receiver<bool>,
) {
    let wake = Arc::new(Notify::new());
    let notify = wake.clone();
    let on_change: OnChange = Arc::new(move || notify.notify_one());
    let listener = store.clone();
    match tokio::task::spawn_blocking(move || listener.listen_registry(on_change)).await {
        Ok(Ok(true)) => tracing::info!("listening for alias changes"),
        Ok(Ok(false)) => tracing::info!(ms = every.as_millis() as u64, "polling for alias changes"),
        Ok(Err(e)) => tracing::warn!("cannot listen for alias changes, polling only: {e}"),
        Err(e) => tracing::warn!("cannot listen for alias changes, polling only: {e}"),
    }
    let mut serving = None;
    loop {
        let (round, metrics) = (store.clone(), metrics.clone());
        let local = tokio::task::spawn_blocking(move || {
            let report = round.follow_aliases();
            if let Err(e) = &report {
                tracing::warn!("following the registry: {e}");
            }
            let served: Vec<(String, u64)> = round
                .aliases()
                .into_iter()
                .map(|r| (r.alias, r.revision))
                .collect();
            metrics.follow().record_round(&report, &served);
            round.arms_local()
        })
        .await
        .unwrap_or(false);
        if serving != Some(local) {
            tracing::info!(serving = local, "health");
            set_health(&health, local).await;
            serving = Some(local);
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = wake.notified() => {}
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ServerConfig;

    fn refusal(toml: &str) -> String {
        ServerConfig::from_toml(toml, "server.toml")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn a_replica_needs_a_shared_registry_and_store_and_a_sane_poll_interval() {
        let plain = ServerConfig::from_toml("version = 1\n", "server.toml").expect("plain");
        assert!(!plain.replica.enabled);
        assert_eq!(
            plain.replica.poll_interval,
            quire_store::DEFAULT_POLL_INTERVAL
        );
        let alone = refusal("version = 1\n[replica]\nenabled = true\n");
        assert!(alone.contains("[registry] url (PostgreSQL)"), "{alone}");
        let no_store = refusal(
            "version = 1\n[replica]\nenabled = true\n\
             [registry]\nurl = \"postgres://quire@db:5432/quire\"\n",
        );
        assert!(no_store.contains("[storage] url"), "{no_store}");
        let fast = refusal("version = 1\n[replica]\npoll_interval_ms = 10\n");
        assert!(fast.contains("replica.poll_interval_ms"), "{fast}");
        let unknown = refusal("version = 1\n[replica]\npoll = 10\n");
        assert!(unknown.contains("poll"), "{unknown}");
        let replica = ServerConfig::from_toml(
            "version = 1\n[replica]\nenabled = true\npoll_interval_ms = 500\n\
             [registry]\nurl = \"postgres://quire@db:5432/quire\"\n\
             [storage]\nurl = \"file:///srv/quire\"\n",
            "server.toml",
        )
        .expect("a replica");
        assert!(replica.replica.enabled);
        assert_eq!(replica.store_options().gc_grace.as_millis(), 1000);
        assert!(
            replica.store_options().evict_unused,
            "a replica's data dir is a cache"
        );
        assert!(!plain.store_options().evict_unused);
    }
}
