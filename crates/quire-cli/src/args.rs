//! Every clap type of the `quire` command line, and the checked values they parse into
//! ([`EvalOptions::request`], [`Format`] to a corpus format, [`QueryMode`] to a retrieval mode).
//! Nothing else in the binary derives a clap trait.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use quire_store::Access;

mod release;

pub use release::*;

/// Reproducible index builds and retrieval for RAG.
#[derive(Debug, Parser)]
#[command(name = "quire", version = crate::VERSION, about, propagate_version = true)]
pub(crate) struct Cli {
    /// The data dir holding snapshots and indices.
    #[arg(long, global = true, env = "QUIRE_DATA", default_value = "quire-data")]
    pub(crate) data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Talk to this quire server instead of a local data dir, e.g. http://127.0.0.1:50051.
    #[arg(long, global = true, env = "QUIRE_SERVER")]
    pub(crate) server: Option<String>,
    /// API token for the server (sent as `authorization: Bearer`).
    #[arg(long, global = true, env = "QUIRE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// An end user's signed JWT, sent as `x-quire-user-token`: with `--server`, queries read as
    /// its user when the server trusts its issuer and the token may present one.
    #[arg(long, global = true, env = "QUIRE_USER_TOKEN", hide_env_values = true)]
    pub(crate) user_token: Option<String>,
    /// PEM file of the CA to trust for an https:// server.
    #[arg(long, global = true, env = "QUIRE_CA")]
    pub(crate) ca: Option<PathBuf>,
    /// Directory of local embedding models, one sentence-transformers directory per model, named
    /// after its subdirectory (`scripts/fetch-model` fills `models/all-minilm-l6-v2`).
    #[arg(long, global = true, env = "QUIRE_MODELS", default_value = "models")]
    pub(crate) models: PathBuf,
    /// Keep aliases, pins, manifests, reports and the audit log in this PostgreSQL database
    /// (postgres://user[:password]@host[:port][,host2...]/db) instead of the data dir's
    /// registry.redb; for `serve`, overrides server.toml's `[registry] url`.
    #[arg(
        long,
        global = true,
        env = "QUIRE_REGISTRY",
        hide_env_values = true,
        value_name = "URL"
    )]
    pub(crate) registry: Option<Secret>,
    /// Share snapshots and indices through this artifact store (s3://bucket[/prefix], or
    /// file:///dir): builds and imports publish there, missing indices are fetched from there.
    /// S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; for `serve`,
    /// overrides server.toml's `[storage]`.
    #[arg(long, global = true, env = "QUIRE_STORE", value_name = "URL")]
    pub(crate) store: Option<String>,
    /// The S3-compatible endpoint of `--store` (e.g. http://127.0.0.1:8333); AWS when absent.
    #[arg(long, global = true, env = "QUIRE_STORE_ENDPOINT", value_name = "URL")]
    pub(crate) store_endpoint: Option<String>,
    /// The region `--store` signs for (us-east-1 when absent).
    #[arg(long, global = true, env = "QUIRE_STORE_REGION")]
    pub(crate) store_region: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// A command-line value that may hold a password: never shown by `Debug`, and parsed by quire
/// (whose errors leave it out) rather than by clap (whose errors repeat it).
#[derive(Clone)]
pub(crate) struct Secret(String);

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Cli {
    /// The `--store` artifact store, checked; `None`: the data dir alone.
    pub(crate) fn storage(&self) -> Result<Option<quire_server::StorageConfig>> {
        let Some(url) = &self.store else {
            anyhow::ensure!(
                self.store_endpoint.is_none() && self.store_region.is_none(),
                "--store-endpoint and --store-region go with --store (or QUIRE_STORE)"
            );
            return Ok(None);
        };
        let config = quire_server::StorageConfig::new(
            url,
            self.store_endpoint.as_deref(),
            self.store_region.as_deref(),
        )
        .map_err(|(_, reason)| anyhow::anyhow!("--store (or QUIRE_STORE): {reason}"))?;
        Ok(Some(config))
    }

    /// The `--registry` URL, checked; `None`: the data dir's redb registry.
    pub(crate) fn registry_url(&self) -> Result<Option<quire_registry_pg::PgUrl>> {
        self.registry
            .as_ref()
            .map(|s| s.0.parse().context("--registry (or QUIRE_REGISTRY)"))
            .transpose()
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Import a corpus as a snapshot and print its id.
    Import {
        /// A JSONL file, a BEIR corpus.jsonl, or a directory of .md/.txt files.
        path: PathBuf,
        /// The corpus format (detected when omitted).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Refuse a directory corpus whose quire-acl.toml has a rule that matches no document
        /// (without it: a warning).
        #[arg(long)]
        strict: bool,
    },
    /// Build an index from a snapshot (or a corpus path, imported first) and print its id.
    Build {
        /// A snapshot id (or unique prefix), or a corpus path.
        source: String,
        /// The build spec (TOML); the default spec when omitted.
        #[arg(long)]
        spec: Option<PathBuf>,
        /// The corpus format when SOURCE is a path.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// List published indices.
    Indexes,
    /// List stored snapshots.
    Snapshots,
    /// Show an index's manifest.
    Show {
        /// Index id or unique prefix (at least 12 hex characters).
        id: String,
    },
    /// Recompute an index's digest and compare it with the manifest.
    Verify {
        /// Index id or unique prefix.
        id: String,
    },
    /// Rebuild an index from its stored snapshot and spec and compare id and digest.
    RebuildCheck {
        /// Index id or unique prefix.
        id: String,
    },
    /// Retrieve from an index as a reader with the given user and groups.
    Query {
        /// An alias (`NAME`, or `NAME@REVISION` for exactly what served then), an index id, or
        /// a unique id prefix (at least 12 hex characters).
        target: String,
        /// The query text.
        text: String,
        /// The reader's user id.
        #[arg(long)]
        user: Option<String>,
        /// A group the reader belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Hits to return.
        #[arg(short, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
        k: u32,
        /// Retrievers to use.
        #[arg(long, value_enum, default_value_t = QueryMode::Hybrid)]
        mode: QueryMode,
        /// Fusion method for hybrid queries (the index's spec decides when omitted).
        #[arg(long, value_enum)]
        fusion: Option<FusionArg>,
        /// Candidates per retriever before fusion (the index's spec decides when omitted).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10000))]
        candidates: Option<u32>,
        /// Sticks this caller to one arm of an alias's canary (e.g. a user id); without one,
        /// each request is routed on its own.
        #[arg(long)]
        routing_key: Option<String>,
        /// What the request is for (1 to 64 of a-z A-Z 0-9 . _ -): samples and reports are
        /// stratified by it.
        #[arg(long)]
        intent: Option<String>,
    },
    /// Say what became of an answer: feedback on a request id a server returned (to the
    /// server that answered it, as the token that sent the request).
    Feedback {
        /// The request id (`request_id` of `quire --json query`).
        request_id: String,
        /// Whether the answer was a success.
        #[arg(long, action = clap::ArgAction::Set, value_name = "BOOL")]
        success: bool,
        /// A label (1 to 64 of a-z A-Z 0-9 . _ -), e.g. wrong-policy.
        #[arg(long)]
        label: Option<String>,
    },
    /// Release aliases: set, canary, shadow, promote, rollback, history.
    Alias {
        #[command(subcommand)]
        command: AliasCommand,
    },
    /// Pin an index so GC keeps it.
    Pin {
        /// Index id or unique prefix.
        index: String,
        /// Who holds the pin (an evaluation run, a team).
        #[arg(long)]
        holder: String,
        /// Lapse after this long, e.g. 30m, 12h, 7d, 2w (never when omitted).
        #[arg(long)]
        expires: Option<String>,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Remove a holder's pin.
    Unpin {
        /// Index id or unique prefix.
        index: String,
        /// The holder whose pin to remove.
        #[arg(long)]
        holder: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// List pins.
    Pins,
    /// Delete indices no alias (in its last N revisions), live pin or query holds.
    Gc {
        /// Only report what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Why (recorded in the audit log; required unless --dry-run).
        #[arg(long, required_unless_present = "dry_run")]
        reason: Option<String>,
        /// Keep indices an alias used in its last this-many revisions (local mode; a server
        /// uses its config).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
        keep_revisions: u64,
        /// With a shared store, keep indices, uploads and embedding packs written less than this
        /// many seconds ago by the store's clock (local mode).
        #[arg(long, default_value_t = 3600)]
        keep_fresh_secs: u64,
    },
    /// Delete one index; refused while an alias, a pin or a query holds it.
    Delete {
        /// Index id or unique prefix.
        index: String,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Evaluate an index on a BEIR dataset (`quire eval TARGET --dataset DIR`), or list stored
    /// reports (`quire eval list [TARGET]`).
    Eval(EvalArgs),
    /// Evaluate two indices on the same dataset and compare them query by query.
    Compare {
        /// The baseline: index id, prefix or alias.
        a: String,
        /// The candidate: index id, prefix or alias.
        b: String,
        #[command(flatten)]
        eval: EvalOptions,
    },
    /// Sampled production requests (recorded by a server with `[sampling]`), oldest first:
    /// ids, principal, arm, timings and result ids, never document text; the query text only
    /// where `store_text = true`, else its hash.
    Samples {
        /// Only this alias's.
        alias: Option<String>,
        /// Only this intent's.
        #[arg(long)]
        intent: Option<String>,
        /// Only those recorded in this last stretch, e.g. 1h, 7d.
        #[arg(long)]
        since: Option<String>,
        /// At most this many, the newest.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10000))]
        limit: u32,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Build specs.
    Spec {
        #[command(subcommand)]
        command: SpecCommand,
    },
    /// Run the gRPC server.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:50051")]
        addr: std::net::SocketAddr,
        /// Server configuration (tokens, limits, TLS); without one the server runs open on
        /// loopback only.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Import and build the bundled handbook on start and serve it as `handbook`.
        #[arg(long)]
        demo: bool,
        /// The demo's embedding model: all-MiniLM-L6-v2 when it is under --models (`auto`).
        #[arg(long, value_enum, default_value_t = DemoModel::Auto, requires = "demo")]
        demo_model: DemoModel,
        /// Serve the HTTP/JSON API here too (overrides `[http] addr` in server.toml).
        #[arg(long)]
        http_addr: Option<std::net::SocketAddr>,
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Apply pending registry schema migrations at start (a PostgreSQL registry).
        #[arg(long)]
        migrate_registry: bool,
        /// Serve as a read-only replica (`[replica] enabled` in server.toml): follow the
        /// shared registry, fetch what its aliases serve from the shared store, refuse every
        /// change.
        #[arg(long)]
        replica: bool,
    },
    /// The PostgreSQL registry's schema (`--registry` or QUIRE_REGISTRY names it).
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// API tokens for server.toml.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// Which model `serve --demo` builds the handbook with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum DemoModel {
    /// all-MiniLM-L6-v2 when `--models` holds it, else hash-v1.
    Auto,
    /// The built-in hash-v1 (lexical hashing, not semantic).
    HashV1,
    /// all-MiniLM-L6-v2 (specs/minilm.toml); refused when `--models` lacks it.
    Minilm,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Apply pending schema migrations (safe to run again, and from several machines at once).
    Migrate,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Print a new random token and the blake3 hash to put in server.toml.
    New,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SpecCommand {
    /// Print the default spec, with comments.
    Default,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum QueryMode {
    Hybrid,
    Bm25,
    Vector,
}

impl From<QueryMode> for quire_index::Mode {
    fn from(m: QueryMode) -> Self {
        match m {
            QueryMode::Hybrid => Self::Hybrid,
            QueryMode::Bm25 => Self::Bm25,
            QueryMode::Vector => Self::Vector,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum FusionArg {
    Rrf,
    Weighted,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum Format {
    Jsonl,
    Beir,
    Dir,
}

impl From<Format> for quire_store::CorpusFormat {
    fn from(f: Format) -> Self {
        match f {
            Format::Jsonl => quire_store::CorpusFormat::Jsonl,
            Format::Beir => quire_store::CorpusFormat::Beir,
            Format::Dir => quire_store::CorpusFormat::Dir,
        }
    }
}

/// `pin`, `unpin`, `pins`, `gc` and `delete`, taken out of a [`Command`] with their defaults
/// applied.
#[derive(Debug)]
pub(crate) enum Maintenance<'a> {
    /// Pin an index for a holder.
    Pin {
        index: &'a str,
        holder: &'a str,
        expires: Option<&'a str>,
        reason: &'a str,
    },
    /// Remove a holder's pin.
    Unpin {
        index: &'a str,
        holder: &'a str,
        reason: &'a str,
    },
    /// List pins.
    Pins,
    /// Collect garbage (a dry run's reason is "dry run").
    Gc { dry_run: bool, reason: String },
    /// Delete one index.
    Delete { index: &'a str, reason: &'a str },
}

impl Command {
    /// How the command holds a local data dir: writers take the exclusive lock.
    pub(crate) fn access(&self) -> Access {
        match self {
            Command::Import { .. }
            | Command::Build { .. }
            | Command::RebuildCheck { .. }
            | Command::Pin { .. }
            | Command::Unpin { .. }
            | Command::Gc { .. }
            | Command::Delete { .. }
            | Command::Compare { .. } => Access::Write,
            Command::Alias { command } if command.changes() => Access::Write,
            Command::Eval(args) if args.command.is_none() => Access::Write,
            Command::Alias { .. }
            | Command::Eval(_)
            | Command::Indexes
            | Command::Snapshots
            | Command::Show { .. }
            | Command::Verify { .. }
            | Command::Query { .. }
            | Command::Pins
            | Command::Samples { .. }
            | Command::Feedback { .. }
            | Command::Audit { .. }
            | Command::Spec { .. }
            | Command::Serve { .. }
            | Command::Registry { .. }
            | Command::Token { .. } => Access::Read,
        }
    }

    /// The maintenance command this is, if it is one.
    pub(crate) fn maintenance(&self) -> Option<Maintenance<'_>> {
        Some(match self {
            Command::Pin {
                index,
                holder,
                expires,
                reason,
            } => Maintenance::Pin {
                index,
                holder,
                expires: expires.as_deref(),
                reason,
            },
            Command::Unpin {
                index,
                holder,
                reason,
            } => Maintenance::Unpin {
                index,
                holder,
                reason,
            },
            Command::Pins => Maintenance::Pins,
            Command::Gc {
                dry_run, reason, ..
            } => Maintenance::Gc {
                dry_run: *dry_run,
                reason: reason.clone().unwrap_or_else(|| "dry run".into()),
            },
            Command::Delete { index, reason } => Maintenance::Delete { index, reason },
            _ => return None,
        })
    }
}
