//! `server.toml`: API tokens, limits, TLS and embedding models, validated into checked types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::access_log::{AccessLogConfig, RawAccessLog};
use crate::auth::{Caller, Role};
use crate::error::{Result, ServiceError, quoted};
use crate::identity::{Binding, RunAs};
use crate::jwt::{JwtUse, JwtVerifier, RawJwt};
use crate::outcomes::{FeedbackConfig, RawFeedback};
use crate::replica::{RawReplica, ReplicaConfig};
use crate::sampler::{RawSampling, SamplingConfig};

/// Limits the server enforces on every request.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most hits a query may ask for.
    pub max_k: u32,
    /// Longest query text, in bytes. Paragraph-long queries (ArguAna-style) run to several KiB;
    /// embedding models truncate far below this anyway, and BM25 counts each distinct term once.
    pub max_query_bytes: usize,
    /// Largest single gRPC message, in bytes.
    pub max_request_bytes: usize,
    /// Largest corpus upload, in bytes.
    pub max_upload_bytes: u64,
    /// Largest document an import accepts (a JSONL or BEIR line, a directory's file), in bytes.
    pub max_document_bytes: u64,
    /// Time a unary request may take, in milliseconds.
    pub request_timeout_ms: u64,
    /// Requests served at once; more are refused with RESOURCE_EXHAUSTED.
    pub max_concurrent_requests: usize,
    /// Retrieve requests that compute at once; the others wait their turn in arrival order.
    /// Default: one more than the cores ([`Limits::query_threads`]).
    pub query_threads: Option<usize>,
    /// Builds that may wait behind the running one.
    pub build_queue: usize,
}

impl Limits {
    /// Retrieve requests that compute at once: `query_threads`, or one more than the cores.
    /// Queries are CPU work; beyond the cores, more at once only share them, so every query in
    /// flight slows and the slowest (the p99) slow the most. One spare keeps a core busy while
    /// another query's thread is handed its turn.
    pub fn query_threads(&self) -> usize {
        self.query_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from) + 1)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_k: 100,
            max_query_bytes: 32 << 10,
            max_request_bytes: 4 << 20,
            max_upload_bytes: 1 << 30,
            max_document_bytes: quire_store::import::DEFAULT_MAX_DOCUMENT_BYTES,
            request_timeout_ms: 30_000,
            max_concurrent_requests: 64,
            query_threads: None,
            build_queue: 4,
        }
    }
}

/// Release and cache settings (`[release]` in server.toml).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Release {
    /// GC keeps every index an alias used in its last this-many revisions.
    pub gc_keep_revisions: usize,
    /// With a shared store, GC keeps an index built less than this many seconds ago.
    pub gc_keep_fresh_secs: u64,
    /// Open indices not served by an alias are closed once their artifacts exceed this.
    pub cache_budget_mib: u64,
    /// Open indices not served by an alias are closed after this long unused.
    pub cache_idle_secs: u64,
    /// Evaluate every alias's canary (or shadow) on its sampled queries this often, e.g. `10m`;
    /// never when absent.
    pub canary_eval_every: Option<String>,
    /// Samples of this last stretch are replayed, e.g. `1h`.
    pub canary_eval_window: String,
    /// The newest this-many samples of each intent are replayed.
    pub canary_eval_per_intent: usize,
    /// Canary reports are kept this long, e.g. `90d`.
    pub canary_report_retention: String,
}

impl Default for Release {
    fn default() -> Self {
        let store = quire_store::StoreOptions::default();
        Self {
            gc_keep_revisions: store.gc_keep_revisions,
            gc_keep_fresh_secs: store.gc_fresh.as_secs(),
            cache_budget_mib: store.cache.budget_bytes >> 20,
            cache_idle_secs: store.cache.idle.as_secs(),
            canary_eval_every: None,
            canary_eval_window: "1h".into(),
            canary_eval_per_intent: 50,
            canary_report_retention: "90d".into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    version: u32,
    #[serde(default)]
    tokens: Vec<RawToken>,
    #[serde(default)]
    limits: Limits,
    tls: Option<Tls>,
    #[serde(default)]
    release: Release,
    #[serde(default)]
    models: Vec<ModelEntry>,
    #[serde(default)]
    import: RawImport,
    #[serde(default)]
    allow_plaintext: bool,
    #[serde(default)]
    allow_remote_metrics: bool,
    #[serde(default)]
    registry: RawRegistry,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    sampling: RawSampling,
    #[serde(default)]
    feedback: RawFeedback,
    #[serde(default)]
    replica: RawReplica,
    jwt: Option<RawJwt>,
    access_log: Option<RawAccessLog>,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    telemetry: crate::telemetry::RawTelemetry,
}

/// `[storage]`: a shared artifact store besides the data dir.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    url: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    connect_timeout_ms: Option<u64>,
    request_timeout_ms: Option<u64>,
    retries: Option<usize>,
}

/// Where builds and imports are shared with other machines (`[storage]` in server.toml, or
/// the CLI's `--store`): a directory, or an S3 bucket whose credentials come from the
/// environment when it is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageConfig {
    /// `file:///absolute/dir`.
    Dir(PathBuf),
    /// `s3://bucket[/prefix]`, its endpoint, region and timeouts.
    S3(quire_store_s3::S3Config),
}

impl StorageConfig {
    /// `url` (`s3://bucket[/prefix]` or `file:///dir`) with an S3 endpoint and region (AWS's
    /// defaults when `None`); `Err` names the field at fault.
    pub fn new(
        url: &str,
        endpoint: Option<&str>,
        region: Option<&str>,
    ) -> std::result::Result<Self, (&'static str, String)> {
        if let Some(path) = url.strip_prefix("file://") {
            if endpoint.is_some() || region.is_some() {
                return Err((
                    "storage.endpoint",
                    "an endpoint or region goes with an s3:// url only".into(),
                ));
            }
            let path = PathBuf::from(path);
            if !path.is_absolute() {
                return Err(("storage.url", "expected file:///absolute/path".into()));
            }
            return Ok(Self::Dir(path));
        }
        let config = quire_store_s3::S3Config::new(url, endpoint, region).map_err(|e| {
            let field = match e {
                quire_store_s3::S3Error::Url { .. } => "storage.url",
                _ => "storage.endpoint",
            };
            (field, format!("{e} (or file:///dir)"))
        })?;
        Ok(Self::S3(config))
    }

    /// The store as shown in messages.
    pub fn location(&self) -> String {
        match self {
            Self::Dir(path) => format!("file://{}", path.display()),
            Self::S3(config) => config.url.to_string(),
        }
    }
}

impl RawStorage {
    fn check(self) -> std::result::Result<Option<StorageConfig>, (&'static str, String)> {
        let Some(url) = &self.url else {
            let stray = self.endpoint.is_some()
                || self.region.is_some()
                || self.connect_timeout_ms.is_some()
                || self.request_timeout_ms.is_some()
                || self.retries.is_some();
            return match stray {
                true => Err(("storage.url", "the other [storage] settings need it".into())),
                false => Ok(None),
            };
        };
        let mut config = StorageConfig::new(url, self.endpoint.as_deref(), self.region.as_deref())?;
        if let StorageConfig::S3(s3) = &mut config {
            let t = &mut s3.timeouts;
            for (field, value, slot) in [
                (
                    "storage.connect_timeout_ms",
                    self.connect_timeout_ms,
                    &mut t.connect,
                ),
                (
                    "storage.request_timeout_ms",
                    self.request_timeout_ms,
                    &mut t.request,
                ),
            ] {
                match value {
                    Some(0) => return Err((field, "must be positive".into())),
                    Some(ms) => *slot = std::time::Duration::from_millis(ms),
                    None => {}
                }
            }
            t.retries = self.retries.unwrap_or(t.retries);
        }
        Ok(Some(config))
    }
}

/// `[registry]`: a database instead of the data dir's redb file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    url: Option<String>,
    #[serde(default)]
    migrate: bool,
}

/// Where aliases, pins, manifests, reports and the audit log live when not in the data dir's
/// `registry.redb` (`[registry]` in server.toml, or the CLI's `--registry`).
#[derive(Clone, Debug, PartialEq)]
pub struct RegistryConfig {
    /// The PostgreSQL database (shown without its password).
    pub url: quire_registry_pg::PgUrl,
    /// Apply pending schema migrations at start.
    pub migrate: bool,
}

impl RawRegistry {
    fn check(self) -> std::result::Result<Option<RegistryConfig>, (&'static str, String)> {
        match self.url {
            None if self.migrate => Err((
                "registry.migrate",
                "needs `registry.url` (the data dir's redb registry needs no migration)".into(),
            )),
            None => Ok(None),
            Some(url) => Ok(Some(RegistryConfig {
                url: url.parse().map_err(|e| ("registry.url", format!("{e}")))?,
                migrate: self.migrate,
            })),
        }
    }
}

/// `[import]`: where on the server's filesystem requests may read.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImport {
    #[serde(default)]
    roots: Vec<PathBuf>,
}

/// The directories whose contents a request may name by path (`ImportSnapshot`'s
/// `server_path`, an evaluation's dataset), canonical. None by default: corpora are uploaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportRoots(Vec<PathBuf>);

impl ImportRoots {
    /// Roots from absolute directory paths, canonicalised (so a path is checked against where
    /// the root really is). `origin` names the configuration in errors.
    pub fn new(roots: &[PathBuf], origin: &str) -> Result<Self> {
        let mut canonical = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            let bad = |reason: String| {
                ServiceError::InvalidArgument(format!(
                    "{origin}: field `import.roots[{i}]` = {:?}: {reason}",
                    root.display().to_string()
                ))
            };
            if !root.is_absolute() {
                return Err(bad("must be an absolute path".into()));
            }
            let resolved = root.canonicalize().map_err(|e| bad(e.to_string()))?;
            if !resolved.is_dir() {
                return Err(bad("is not a directory".into()));
            }
            canonical.push(resolved);
        }
        Ok(Self(canonical))
    }

    /// Resolve a path a request names: canonicalised (symlinks and `..` resolved), it must lie
    /// under a root. Every refusal is the same PERMISSION_DENIED with the same message, whether
    /// the path exists or not, so a refusal tells nothing about the server's filesystem.
    pub fn resolve(&self, requested: &str) -> Result<PathBuf> {
        let refused = || {
            ServiceError::PermissionDenied(format!(
                "{} is not under one of this server's [import] roots; upload the corpus instead",
                quoted(requested)
            ))
        };
        let path = std::path::Path::new(requested);
        if self.0.is_empty() || !path.is_absolute() {
            return Err(refused());
        }
        let canonical = path.canonicalize().map_err(|_| refused())?;
        if self.0.iter().any(|root| canonical.starts_with(root)) {
            Ok(canonical)
        } else {
            Err(refused())
        }
    }
}

/// A local embedding model registered by name: a sentence-transformers directory.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModelEntry {
    /// The name build specs and index manifests use, e.g. `all-minilm-l6-v2`.
    pub name: String,
    /// The model directory (relative paths are relative to the config file).
    pub path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    role: Role,
    /// blake3 of the token, hex (`printf %s "$TOKEN" | b3sum`, or `quire token new`).
    blake3: String,
    /// The fixed principal this token reads as.
    principal: Option<RawPrincipal>,
    /// The end users this (application) token may assert.
    run_as: Option<RawRunAs>,
    /// Whether its requests may (`optional`) or must (`required`) carry an end user's JWT.
    #[serde(default)]
    jwt: JwtUse,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    user: Option<String>,
    #[serde(default)]
    groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRunAs {
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl RawToken {
    /// Whose permissions the token's requests read with; `Err` holds the field and reason.
    fn binding(&self) -> std::result::Result<Binding, (&'static str, String)> {
        match (&self.principal, &self.run_as) {
            (Some(_), Some(_)) => Err((
                "run_as",
                "a token is bound to a principal or may run as others, not both".into(),
            )),
            (Some(p), None) => quire_core::Reader::new(p.user.as_deref(), &p.groups)
                .map(Binding::Bound)
                .map_err(|e| ("principal", e.to_string())),
            (None, Some(r)) => RunAs::new(r.users.clone(), r.groups.clone())
                .map(Binding::RunAs)
                .map_err(|e| ("run_as", e)),
            (None, None) => Ok(Binding::Unbound),
        }
    }

    /// Whether the token's `jwt` setting fits its binding and the server's `[jwt]` section.
    fn check_jwt(&self, verifier: Option<&JwtVerifier>) -> std::result::Result<(), String> {
        let refuse = |why: &str| Err(format!("= {:?}: {why}", self.jwt.as_str()));
        match self.jwt {
            JwtUse::Never => Ok(()),
            _ if verifier.is_none() => refuse("needs a [jwt] section with the keys to verify with"),
            _ if self.principal.is_some() => {
                refuse("a token bound to a principal reads as it, not as an end user's token")
            }
            JwtUse::Required if self.run_as.is_some() => {
                refuse("with every request carrying a JWT, `run_as` would never apply")
            }
            _ => Ok(()),
        }
    }
}

/// `[http]` as written in server.toml.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    addr: Option<String>,
}

impl RawHttp {
    /// The address to serve HTTP on, if any; `Err` names the field and why.
    fn check(self) -> std::result::Result<Option<std::net::SocketAddr>, (&'static str, String)> {
        self.addr
            .map(|a| {
                a.parse()
                    .map_err(|e| ("http.addr", format!("{a:?}: {e} (e.g. \"127.0.0.1:8080\")")))
            })
            .transpose()
    }
}

/// TLS certificate and key (PEM files).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Certificate chain.
    pub cert: PathBuf,
    /// Private key.
    pub key: PathBuf,
}

/// A validated server configuration.
#[derive(Clone, Debug, Default)]
pub struct ServerConfig {
    /// Token hash -> caller. Empty: the server runs open (loopback only).
    pub tokens: BTreeMap<String, Caller>,
    /// Request limits.
    pub limits: Limits,
    /// TLS, when configured.
    pub tls: Option<Tls>,
    /// Release and cache settings.
    pub release: Release,
    /// Local embedding models, in the order listed.
    pub models: Vec<ModelEntry>,
    /// Where requests may name server paths (none: uploads only).
    pub import_roots: ImportRoots,
    /// Serve gRPC without TLS on a non-loopback address (a proxy terminates TLS).
    pub allow_plaintext: bool,
    /// Serve the metrics endpoint (no authentication) on a non-loopback address.
    pub allow_remote_metrics: bool,
    /// A PostgreSQL registry; `None`: the data dir's redb registry.
    pub registry: Option<RegistryConfig>,
    /// A shared artifact store; `None`: the data dir alone.
    pub storage: Option<StorageConfig>,
    /// Query sampling (`[sampling]`; off unless a rate is set).
    pub sampling: SamplingConfig,
    /// Scheduled canary evaluation (`[release] canary_eval_*`).
    pub canary_eval: CanaryEvalSchedule,
    /// Feedback on answered requests (`[feedback]`).
    pub feedback: FeedbackConfig,
    /// Following a shared registry, and the read-only replica role (`[replica]`).
    pub replica: ReplicaConfig,
    /// The keys and rules end users' JWTs are checked with (`[jwt]`); `None`: none accepted.
    pub jwt: Option<JwtVerifier>,
    /// Where every read's principal is logged, and how much is kept (`[access_log]`).
    pub access_log: Option<AccessLogConfig>,
    /// Serve the HTTP/JSON API here too (`[http] addr`).
    pub http_addr: Option<std::net::SocketAddr>,
    /// Trace export: the OTLP/gRPC collector and the share of requests traced (`[telemetry]`).
    pub telemetry: crate::telemetry::TelemetryConfig,
}

/// When the server evaluates canaries on its own, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CanaryEvalSchedule {
    /// How often; never when `None`.
    pub every: Option<std::time::Duration>,
    /// What each evaluation replays.
    pub request: quire_release::canary::CanaryEvalRequest,
    /// Reports older than this are deleted.
    pub report_retention: std::time::Duration,
}

impl Default for CanaryEvalSchedule {
    fn default() -> Self {
        Self {
            every: None,
            request: quire_release::canary::CanaryEvalRequest::default(),
            report_retention: std::time::Duration::from_secs(90 * 86_400),
        }
    }
}

impl Release {
    /// The checked canary schedule; `Err` names the field and why.
    fn canary_eval(&self) -> std::result::Result<CanaryEvalSchedule, (&'static str, String)> {
        let secs = |field: &'static str, text: &str| {
            quire_core::spec::parse_duration_secs(text)
                .map_err(|e| (field, format!("{text:?}: {e}")))
                .and_then(|s| {
                    (s <= 366 * 86_400)
                        .then_some(s)
                        .ok_or((field, format!("{text:?} is longer than 366d")))
                })
        };
        let every = self
            .canary_eval_every
            .as_deref()
            .map(|t| secs("release.canary_eval_every", t))
            .transpose()?;
        let window = secs("release.canary_eval_window", &self.canary_eval_window)?;
        let request = quire_release::canary::CanaryEvalRequest::new(
            window,
            self.canary_eval_per_intent,
            quire_release::canary::CandidateArm::Auto,
        )
        .map_err(|e| ("release.canary_eval_per_intent", e.to_string()))?;
        let retention = secs(
            "release.canary_report_retention",
            &self.canary_report_retention,
        )?;
        Ok(CanaryEvalSchedule {
            every: every.map(std::time::Duration::from_secs),
            request,
            report_retention: std::time::Duration::from_secs(retention),
        })
    }
}

impl ServerConfig {
    /// Parse and validate `server.toml`; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let bad = |m: String| ServiceError::InvalidArgument(format!("{origin}: {m}"));
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| bad(e.to_string().trim_end().replace('\n', " ")))?;
        if raw.version != 1 {
            return Err(bad(format!(
                "field `version` = {}: this quire reads version 1",
                raw.version
            )));
        }
        let jwt = raw
            .jwt
            .map(RawJwt::check)
            .transpose()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let mut tokens = BTreeMap::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in raw.tokens.into_iter().enumerate() {
            let hash = t.blake3.to_ascii_lowercase();
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "field `tokens[{i}].blake3`: expected 64 hex characters"
                )));
            }
            if t.name.trim().is_empty() || !names.insert(t.name.clone()) {
                return Err(bad(format!(
                    "field `tokens[{i}].name` = {:?}: must be non-empty and unique",
                    t.name
                )));
            }
            let binding = t
                .binding()
                .map_err(|(field, reason)| bad(format!("field `tokens[{i}].{field}`: {reason}")))?;
            t.check_jwt(jwt.as_ref())
                .map_err(|reason| bad(format!("field `tokens[{i}].jwt` {reason}")))?;
            let caller = Caller::new(t.name, t.role, binding).with_jwt(t.jwt);
            if tokens.insert(hash, caller).is_some() {
                return Err(bad(format!(
                    "field `tokens[{i}].blake3`: the same token is listed twice"
                )));
            }
        }
        let l = &raw.limits;
        for (field, value) in [
            ("limits.max_k", l.max_k as u64),
            ("limits.max_query_bytes", l.max_query_bytes as u64),
            ("limits.max_request_bytes", l.max_request_bytes as u64),
            ("limits.max_upload_bytes", l.max_upload_bytes),
            ("limits.max_document_bytes", l.max_document_bytes),
            ("limits.request_timeout_ms", l.request_timeout_ms),
            (
                "limits.max_concurrent_requests",
                l.max_concurrent_requests as u64,
            ),
            ("limits.query_threads", l.query_threads.unwrap_or(1) as u64),
            (
                "release.gc_keep_revisions",
                raw.release.gc_keep_revisions as u64,
            ),
            ("release.cache_idle_secs", raw.release.cache_idle_secs),
        ] {
            if value == 0 {
                return Err(bad(format!("field `{field}` = 0: must be positive")));
            }
        }
        let mut model_names = std::collections::BTreeSet::new();
        for (i, m) in raw.models.iter().enumerate() {
            if m.name.trim().is_empty()
                || m.name.contains(char::is_whitespace)
                || m.name == "hash-v1"
                || !model_names.insert(m.name.clone())
            {
                return Err(bad(format!(
                    "field `models[{i}].name` = {:?}: must be a unique word other than `hash-v1`",
                    m.name
                )));
            }
        }
        let import_roots = ImportRoots::new(&raw.import.roots, origin)?;
        let registry = raw
            .registry
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let storage = raw
            .storage
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let canary_eval = raw
            .release
            .canary_eval()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let feedback = raw
            .feedback
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let sampling = raw
            .sampling
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let replica = raw
            .replica
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let access_log = raw
            .access_log
            .map(RawAccessLog::check)
            .transpose()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let http_addr = raw
            .http
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let telemetry = raw
            .telemetry
            .check()
            .map_err(|(field, reason)| bad(format!("field `{field}`: {reason}")))?;
        let config = Self {
            telemetry,
            http_addr,
            tokens,
            limits: raw.limits,
            tls: raw.tls,
            release: raw.release,
            models: raw.models,
            import_roots,
            allow_plaintext: raw.allow_plaintext,
            allow_remote_metrics: raw.allow_remote_metrics,
            registry,
            storage,
            sampling,
            canary_eval,
            feedback,
            replica,
            jwt,
            access_log,
        };
        crate::replica::check_replica(&config).map_err(|e| bad(e.to_string()))?;
        Ok(config)
    }

    /// The data dir tunables this configuration asks for.
    pub fn store_options(&self) -> quire_store::StoreOptions {
        quire_store::StoreOptions {
            gc_keep_revisions: self.release.gc_keep_revisions,
            cache: quire_store::CachePolicy {
                budget_bytes: self.release.cache_budget_mib.saturating_mul(1 << 20),
                idle: std::time::Duration::from_secs(self.release.cache_idle_secs),
            },
            max_document_bytes: self.limits.max_document_bytes,
            gc_grace: 2 * self.replica.poll_interval,
            // A replica's data dir is a cache of the shared store.
            evict_unused: self.replica.enabled,
            gc_fresh: std::time::Duration::from_secs(self.release.gc_keep_fresh_secs),
        }
    }
}

#[cfg(test)]
mod tests;
