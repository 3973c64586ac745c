//! `quire`: build reproducible, hash-addressed hybrid indices and inspect them.
//!
//! Every subcommand works on a data dir (`--data`, default `./quire-data`). Global flags go
//! before the subcommand: `quire [--data DIR] [--json] <command> ...`.
//!
//! Exit codes: 0 success; 1 error (bad input, missing id, locked data dir, ...); 2 usage;
//! 3 a check ran and failed (`verify`, `rebuild-check`).

mod commands;
mod eval;
mod progress;
mod release;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Reproducible index builds and retrieval for RAG.
#[derive(Debug, Parser)]
#[command(name = "quire", version, about, propagate_version = true)]
struct Cli {
    /// The data dir holding snapshots and indices.
    #[arg(long, global = true, env = "QUIRE_DATA", default_value = "quire-data")]
    data: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Talk to this quire server instead of a local data dir, e.g. http://127.0.0.1:50051.
    #[arg(long, global = true, env = "QUIRE_SERVER")]
    server: Option<String>,
    /// API token for the server (sent as `authorization: Bearer`).
    #[arg(long, global = true, env = "QUIRE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM file of the CA to trust for an https:// server.
    #[arg(long, global = true, env = "QUIRE_CA")]
    ca: Option<PathBuf>,
    /// Directory of local embedding models, one sentence-transformers directory per model, named
    /// after its subdirectory (`scripts/fetch-model` fills `models/all-minilm-l6-v2`).
    #[arg(long, global = true, env = "QUIRE_MODELS", default_value = "models")]
    models: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import a corpus as a snapshot and print its id.
    Import {
        /// A JSONL file, a BEIR corpus.jsonl, or a directory of .md/.txt files.
        path: PathBuf,
        /// The corpus format (detected when omitted).
        #[arg(long, value_enum)]
        format: Option<Format>,
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
    },
    /// Release aliases: set, canary, shadow, promote, rollback, history.
    Alias {
        #[command(subcommand)]
        command: release::AliasCommand,
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
    Eval(eval::EvalArgs),
    /// Evaluate two indices on the same dataset and compare them query by query.
    Compare {
        /// The baseline: index id, prefix or alias.
        a: String,
        /// The candidate: index id, prefix or alias.
        b: String,
        #[command(flatten)]
        eval: eval::EvalOptions,
    },
    /// The tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        command: release::AuditCommand,
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
        /// Serve Prometheus metrics at http://ADDR/metrics.
        #[arg(long)]
        metrics_addr: Option<std::net::SocketAddr>,
    },
    /// API tokens for server.toml.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Print a new random token and the blake3 hash to put in server.toml.
    New,
}

#[derive(Debug, Subcommand)]
enum SpecCommand {
    /// Print the default spec, with comments.
    Default,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum QueryMode {
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
enum FusionArg {
    Rrf,
    Weighted,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
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

/// How a command ended, when it did not fail outright.
pub enum Outcome {
    /// Success.
    Ok,
    /// A check ran and did not pass.
    CheckFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = if matches!(cli.command, Command::Serve { .. }) {
        "info,hnsw_rs=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let progress = !cli.json && std::io::stderr().is_terminal();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            let _ = writeln!(
                std::io::stderr(),
                "error: starting the async runtime: {err}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(&cli, progress)) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::CheckFailed) => ExitCode::from(3),
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
