//! The subcommands, written once against [`QuireApi`] and run over a local data dir or a
//! remote server.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use quire_core::spec::{DEFAULT_SPEC_TOML, FusionMethod};
use quire_core::{BuildSpec, Reader};
use quire_embed::Models;
use quire_index::Query;
use quire_server::{
    CanaryApi, EvalApi, Local, QuireApi, RegistryConfig, ReleaseApi, Remote, local_actor, serve,
};
use quire_store::{IndexInfo, StoreOptions};
use serde_json::json;

use crate::args::{Cli, Command, FusionArg, RegistryCommand, SpecCommand, TokenCommand};
use crate::config_file::read_config;
use crate::output::{BuildOutput, Outcome, TokenOutput, emit};
use crate::progress::Bars;

/// Run one command, against the server named by `--server` or the local data dir.
pub async fn run(cli: &Cli, progress: bool) -> Result<Outcome> {
    let out = &mut std::io::stdout().lock();
    match &cli.command {
        Command::Spec {
            command: SpecCommand::Default,
        } => {
            write!(out, "{DEFAULT_SPEC_TOML}")?;
            return Ok(Outcome::Ok);
        }
        Command::Token {
            command: TokenCommand::New,
        } => {
            let token = new_token()?;
            let hash = blake3::hash(token.as_bytes()).to_hex().to_string();
            let value = TokenOutput {
                blake3: &hash,
                token: &token,
            };
            emit(out, cli.json, &value, |o| {
                writeln!(o, "token   {token}")?;
                writeln!(o, "blake3  {hash}")?;
                writeln!(o, "\n# server.toml (the token itself is never stored):")?;
                writeln!(
                    o,
                    "[[tokens]]\nname = \"<who>\"\nrole = \"reader\"\nblake3 = \"{hash}\""
                )
            })?;
            return Ok(Outcome::Ok);
        }
        Command::Serve { .. } => {
            crate::serve_cmd::serve(cli).await?;
            return Ok(Outcome::Ok);
        }
        Command::Registry {
            command: RegistryCommand::Migrate,
        } => return migrate_registry(cli, out),
        _ => {}
    }
    if let Some(url) = &cli.server {
        let remote = Remote::connect(url, cli.token.clone(), cli.ca.as_deref())
            .await
            .with_context(|| format!("connecting to {url}"))?
            .with_user_token(cli.user_token.clone());
        dispatch(&remote, cli, progress, out).await
    } else {
        if cli.user_token.is_some() {
            anyhow::bail!(
                "--user-token (QUIRE_USER_TOKEN) is for a server (--server); local mode reads the data dir as it stands"
            );
        }
        let access = cli.command.access();
        let mut options = StoreOptions::default();
        if let Command::Gc {
            keep_revisions,
            keep_fresh_secs,
            ..
        } = &cli.command
        {
            options.gc_keep_revisions = usize::try_from(*keep_revisions).unwrap_or(usize::MAX);
            options.gc_fresh = std::time::Duration::from_secs(*keep_fresh_secs);
        }
        let models = Models::from_dir(&cli.models)?;
        let registry = cli.registry_url()?.map(|url| RegistryConfig {
            url,
            migrate: false,
        });
        let storage = cli.storage()?;
        let store = serve::open_store(&cli.data, access, registry.as_ref(), storage.as_ref())
            .with_context(|| format!("opening data dir {}", cli.data.display()))?
            .with_options(options)
            .with_models(models);
        let local = Local::new(Arc::new(store), &local_actor());
        dispatch(&local, cli, progress, out).await
    }
}

/// `quire registry migrate`: apply the PostgreSQL registry's pending migrations.
fn migrate_registry(cli: &Cli, out: &mut dyn Write) -> Result<Outcome> {
    let Some(url) = cli.registry_url()? else {
        anyhow::bail!(
            "quire registry migrate needs --registry postgres://... (or QUIRE_REGISTRY); the \
             data dir's redb registry needs no migration"
        );
    };
    let report = quire_registry_pg::PgRegistry::migrate_at(&url)?;
    let value = json!({
        "registry": url.to_string(),
        "applied": report.applied,
        "version": report.version,
    });
    emit(out, cli.json, &value, |o| {
        let applied = match report.applied.as_slice() {
            [] => "none pending".to_owned(),
            versions => format!("applied {versions:?}"),
        };
        writeln!(
            o,
            "registry {url}: schema version {} ({applied})",
            report.version
        )
    })?;
    Ok(Outcome::Ok)
}

fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("reading /dev/urandom")?;
    Ok(format!("qt_{}", blake3::Hash::from(bytes).to_hex()))
}

async fn dispatch<A: QuireApi + ReleaseApi + EvalApi + CanaryApi>(
    api: &A,
    cli: &Cli,
    progress: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match &cli.command {
        Command::Spec { .. }
        | Command::Token { .. }
        | Command::Serve { .. }
        | Command::Registry { .. } => {}
        Command::Alias { command } => {
            return crate::release::alias(api, command, cli.json, out).await;
        }
        Command::Audit { command } => {
            return crate::release::audit(api, command, cli.json, out).await;
        }
        Command::Eval(args) => return crate::eval::eval(api, args, cli.json, out).await,
        Command::Feedback {
            request_id,
            success,
            label,
        } => {
            let label = label
                .as_deref()
                .map(quire_store::FeedbackLabel::new)
                .transpose()?;
            let receipt = api.feedback(request_id, *success, label).await?;
            emit(out, cli.json, &receipt, |o| {
                let intent = receipt.intent.as_ref().map_or("(none)", |i| i.as_str());
                writeln!(
                    o,
                    "feedback on {} counted for {} {} (intent {intent})",
                    receipt.request_id, receipt.alias, receipt.arm
                )
            })?;
        }
        Command::Samples {
            alias,
            intent,
            since,
            limit,
        } => {
            let listing = crate::args::sample_listing(
                alias.as_deref(),
                intent.as_deref(),
                since.as_deref(),
                *limit,
            )?;
            return crate::canary::samples(api, listing, cli.json, out).await;
        }
        Command::Compare { a, b, eval } => {
            return crate::eval::compare(api, a, b, eval, cli.json, out).await;
        }
        Command::Pin { .. }
        | Command::Unpin { .. }
        | Command::Pins
        | Command::Gc { .. }
        | Command::Delete { .. } => {
            if let Some(m) = cli.command.maintenance() {
                return crate::release::maintenance(api, m, cli.json, out).await;
            }
        }
        Command::Import {
            path,
            format,
            strict,
        } => {
            // Checked before importing: a rule that matches nothing is a mistake to see first.
            let rules = crate::acl_report::check(path, format.map(Into::into), *strict)?;
            // Errors already name the file (and line) at fault.
            let info = api.import(path, format.map(Into::into)).await?;
            let shown = crate::acl_report::Imported {
                snapshot: &info,
                acl_rules: rules.as_deref(),
            };
            emit(out, cli.json, &shown, |o| {
                writeln!(o, "{}", info.snapshot_id)?;
                writeln!(o, "  documents  {}", info.documents)?;
                writeln!(o, "  bytes      {}", info.bytes)?;
                writeln!(o, "  format     {}", info.format)?;
                crate::acl_report::print(o, rules.as_deref())
            })?;
        }
        Command::Build {
            source,
            spec,
            format,
        } => {
            let spec_toml = match spec {
                Some(path) => Some(read_config(path)?),
                None => None,
            };
            // Validate locally first so a bad spec names its file and imports nothing.
            if let (Some(text), Some(path)) = (&spec_toml, spec) {
                BuildSpec::from_toml(text, &path.display().to_string())?;
            }
            let snapshot = if Path::new(source).exists() {
                api.import(Path::new(source), format.map(Into::into))
                    .await?
                    .snapshot_id
                    .to_string()
            } else {
                source.clone()
            };
            let bars = Arc::new(Bars::new(progress));
            let built = api
                .build(&snapshot, spec_toml.as_deref(), bars.clone())
                .await
                .with_context(|| format!("building {snapshot}"))?;
            bars.finish();
            let m = &built.manifest;
            let value = BuildOutput {
                content_digest: &m.content_digest,
                counts: serde_json::to_value(m.counts)?,
                embed_cache: m.build.embed_cache,
                index_id: &m.index_id,
                reused: built.reused,
                snapshot_id: &m.snapshot_id,
                timings_ms: &m.build.timings_ms,
                unreadable_documents: built.unreadable_documents,
            };
            warn_unreadable(built.unreadable_documents, m.counts.documents)?;
            emit(out, cli.json, &value, |o| {
                writeln!(o, "{}", m.index_id)?;
                writeln!(o, "  content digest  {}", m.content_digest)?;
                writeln!(o, "  snapshot        {}", m.snapshot_id)?;
                writeln!(o, "  documents       {}", m.counts.documents)?;
                writeln!(o, "  chunks          {}", m.counts.chunks)?;
                writeln!(o, "  model           {}", m.embedding.model_id)?;
                if !built.reused {
                    let c = m.build.embed_cache;
                    writeln!(o, "  embed cache     {} hits, {} misses", c.hits, c.misses)?;
                }
                writeln!(
                    o,
                    "  {}",
                    if built.reused {
                        "already built; verified and reused"
                    } else {
                        "built"
                    }
                )
            })?;
        }
        Command::Query {
            target,
            text,
            user,
            groups,
            k,
            mode,
            fusion,
            candidates,
            routing_key,
            intent,
        } => {
            if text.trim().is_empty() {
                anyhow::bail!("the query text is empty");
            }
            let query = Query {
                text: text.clone(),
                reader: Reader::new(user.as_deref(), groups)?,
                k: *k as usize,
                mode: (*mode).into(),
                fusion: fusion.map(|f| match f {
                    FusionArg::Rrf => FusionMethod::Rrf,
                    FusionArg::Weighted => FusionMethod::Weighted,
                }),
                candidates: candidates.map(|c| c as usize),
            };
            let reader = query.reader.to_string();
            let meta = quire_server::RequestMeta {
                routing_key: routing_key.clone(),
                intent: intent
                    .as_deref()
                    .map(quire_store::Intent::new)
                    .transpose()?,
            };
            let response = api.retrieve_with(target, query, meta).await?;
            emit(out, cli.json, &response, |o| print_response(o, &response))?;
            if response.nothing_readable {
                writeln!(
                    std::io::stderr(),
                    "warning: reader {reader} may read no chunk of index {}, so no query finds \
                     anything: an index built from a corpus without ACLs needs `default_acl` in \
                     its spec (`default_acl = [\"*\"]` for a public corpus); otherwise query as \
                     a reader its ACLs admit (--user, --group)",
                    response.lineage.index_id
                )?;
            }
        }
        Command::Indexes => {
            let list = api.indexes().await?;
            emit(out, cli.json, &list, |o| {
                for i in &list {
                    let stale = if i.stale == Some(true) { "  STALE" } else { "" };
                    writeln!(
                        o,
                        "{}  {:>6} docs {:>7} chunks  {}  built {}{stale}",
                        i.index_id, i.documents, i.chunks, i.model, i.built_at
                    )?;
                }
                Ok(())
            })?;
        }
        Command::Snapshots => {
            let list = api.snapshots().await?;
            emit(out, cli.json, &list, |o| {
                for s in &list {
                    writeln!(
                        o,
                        "{}  {:>6} docs  {:>10} bytes  {} ({})",
                        s.snapshot_id, s.documents, s.bytes, s.source, s.format
                    )?;
                }
                Ok(())
            })?;
        }
        Command::Show { id } => {
            let IndexInfo { manifest, stale } = api.index(id).await?;
            let mut value = serde_json::to_value(&manifest)?;
            value["stale"] = json!(stale);
            emit(out, cli.json, &value, |o| {
                print_manifest(o, &manifest, stale)
            })?;
        }
        Command::Verify { id } => {
            let report = api.verify(id).await?;
            let check = &report.verification;
            emit(out, cli.json, &report, |o| {
                if check.ok {
                    writeln!(o, "ok {} {}", report.index_id, check.content_digest)
                } else {
                    writeln!(o, "FAILED {}", report.index_id)?;
                    check.problems.iter().try_for_each(|p| writeln!(o, "  {p}"))
                }
            })?;
            return Ok(if check.ok {
                Outcome::Ok
            } else {
                Outcome::CheckFailed
            });
        }
        Command::RebuildCheck { id } => {
            let bars = Arc::new(Bars::new(progress));
            let check = api.rebuild_check(id, bars.clone()).await?;
            bars.finish();
            emit(out, cli.json, &check, |o| {
                writeln!(
                    o,
                    "{} {}",
                    if check.ok { "ok" } else { "MISMATCH" },
                    check.index_id
                )?;
                writeln!(o, "  stored   {} {}", check.index_id, check.content_digest)?;
                writeln!(
                    o,
                    "  rebuilt  {} {}",
                    check.rebuilt_index_id, check.rebuilt_content_digest
                )?;
                check
                    .differing_files
                    .iter()
                    .try_for_each(|f| writeln!(o, "  differs: {f}"))?;
                check
                    .notes
                    .iter()
                    .try_for_each(|n| writeln!(o, "  note: {n}"))
            })?;
            return Ok(if check.ok {
                Outcome::Ok
            } else {
                Outcome::CheckFailed
            });
        }
    }
    Ok(Outcome::Ok)
}

/// Warn (on stderr, so `--json` output stays clean) when a build left documents nobody may
/// read: fail-closed is right for documents without an ACL, but should not be silent.
fn warn_unreadable(unreadable: u64, documents: u64) -> Result<()> {
    if unreadable > 0 {
        writeln!(
            std::io::stderr(),
            "warning: {unreadable} of {documents} documents can be read by nobody: they carry no \
             ACL (or an empty one) and the spec sets no `default_acl` (`default_acl = [\"*\"]` \
             makes documents without an ACL public)"
        )?;
    }
    Ok(())
}

fn print_manifest(
    o: &mut dyn Write,
    m: &quire_core::Manifest,
    stale: Option<bool>,
) -> std::io::Result<()> {
    writeln!(o, "{}", m.index_id)?;
    writeln!(o, "  content digest     {}", m.content_digest)?;
    writeln!(o, "  snapshot           {}", m.snapshot_id)?;
    writeln!(o, "  documents          {}", m.counts.documents)?;
    writeln!(o, "  chunks             {}", m.counts.chunks)?;
    writeln!(
        o,
        "  embedding          {} (dim {}, digest {})",
        m.embedding.model_id, m.embedding.dim, m.embedding.digest
    )?;
    writeln!(o, "  permission digest  {}", m.permission_digest)?;
    writeln!(
        o,
        "  versions           format {}, quire {}, tantivy {}, hnsw_rs {}",
        m.versions.format, m.versions.quire, m.versions.tantivy, m.versions.hnsw_rs
    )?;
    writeln!(o, "  built at           {}", m.build.built_at)?;
    if let Some(kernel) = &m.build.embed_kernel {
        writeln!(o, "  embedding kernel   {kernel}")?;
    }
    let flag = match stale {
        Some(true) => " (STALE)",
        Some(false) => " (fresh)",
        None => "",
    };
    writeln!(o, "  source freshness   {}{flag}", m.build.source_freshness)?;
    writeln!(
        o,
        "  spec               {}",
        String::from_utf8_lossy(&m.spec.canonical_json())
    )
}

fn print_response(o: &mut dyn Write, r: &quire_index::Response) -> std::io::Result<()> {
    if r.hits.is_empty() {
        writeln!(o, "no hits")?;
    }
    for (i, h) in r.hits.iter().enumerate() {
        let rank =
            |x: Option<quire_index::RetrieverHit>| x.map_or("-".to_owned(), |x| x.rank.to_string());
        writeln!(
            o,
            "{:>2}. {:.4}  {}  (bm25 #{}, vector #{})",
            i + 1,
            h.score,
            h.chunk_id,
            rank(h.bm25),
            rank(h.vector)
        )?;
        if let Some(title) = &h.title {
            writeln!(o, "    {title}")?;
        }
        let snippet: String = h
            .text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(160)
            .collect();
        writeln!(o, "    {snippet}")?;
    }
    let l = &r.lineage;
    if let (Some(alias), Some(revision), Some(arm)) = (&l.alias, l.revision, l.arm) {
        writeln!(o, "alias {alias}@{revision}  arm {}", arm.as_str())?;
    }
    if let Some(id) = &r.request_id {
        writeln!(o, "request {id}")?;
    }
    writeln!(o, "index {}  digest {}", l.index_id, l.content_digest)?;
    writeln!(
        o,
        "snapshot {}  model {} {}",
        l.snapshot_id, l.embedding_model, l.embedding_digest
    )?;
    let t = &r.timings_us;
    writeln!(
        o,
        "timings (us): embed {} bm25 {} vector {} fusion {} total {}",
        t.embed, t.bm25, t.vector, t.fusion, t.total
    )?;
    let c = &r.cpu_us;
    writeln!(
        o,
        "cpu (us):     embed {} bm25 {} vector {} fusion {} total {}",
        c.embed, c.bm25, c.vector, c.fusion, c.total
    )
}
