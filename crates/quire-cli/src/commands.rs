//! The subcommands, over the local data dir.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use quire_core::BuildSpec;
use quire_core::Reader;
use quire_core::spec::DEFAULT_SPEC_TOML;
use quire_core::spec::FusionMethod;
use quire_index::{Mode, Query};
use quire_store::{Access, RetrievalService, Store};
use serde::Serialize;
use serde_json::json;

use crate::progress::Bars;
use crate::{Cli, Command, FusionArg, Outcome, QueryMode, SpecCommand};

/// Run one command.
pub fn run(cli: &Cli, progress: bool) -> Result<Outcome> {
    let out = &mut std::io::stdout().lock();
    let open = |access| {
        Store::open(&cli.data, access)
            .with_context(|| format!("opening data dir {}", cli.data.display()))
    };
    match &cli.command {
        Command::Spec {
            command: SpecCommand::Default,
        } => {
            write!(out, "{DEFAULT_SPEC_TOML}")?;
        }
        Command::Import { path, format } => {
            let store = open(Access::Write)?;
            // Store errors already name the file (and line) at fault.
            let info = store.import(path, format.map(Into::into))?;
            emit(out, cli.json, &info, |o| {
                writeln!(o, "{}", info.snapshot_id)?;
                writeln!(o, "  documents  {}", info.documents)?;
                writeln!(o, "  bytes      {}", info.bytes)?;
                writeln!(o, "  format     {}", info.format)
            })?;
        }
        Command::Build {
            source,
            spec,
            format,
        } => {
            let spec = load_spec(spec.as_deref())?;
            let store = open(Access::Write)?;
            let snapshot = if Path::new(source).exists() {
                let path = Path::new(source);
                store.import(path, format.map(Into::into))?.snapshot_id
            } else {
                store
                    .resolve_snapshot(source)
                    .with_context(|| format!("{source:?} is neither a snapshot nor a path"))?
            };
            let bars = Bars::new(progress);
            let built = store
                .build(&snapshot, &spec, &bars)
                .with_context(|| format!("building {snapshot}"))?;
            bars.finish();
            let m = &built.manifest;
            let value = json!({
                "index_id": m.index_id,
                "content_digest": m.content_digest,
                "snapshot_id": m.snapshot_id,
                "reused": built.reused,
                "counts": m.counts,
                "timings_ms": m.build.timings_ms,
            });
            emit(out, cli.json, &value, |o| {
                writeln!(o, "{}", m.index_id)?;
                writeln!(o, "  content digest  {}", m.content_digest)?;
                writeln!(o, "  snapshot        {}", m.snapshot_id)?;
                writeln!(o, "  documents       {}", m.counts.documents)?;
                writeln!(o, "  chunks          {}", m.counts.chunks)?;
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
        } => {
            if text.trim().is_empty() {
                anyhow::bail!("the query text is empty");
            }
            let reader = Reader::new(user.as_deref(), groups)?;
            let query = Query {
                text: text.clone(),
                reader,
                k: *k as usize,
                mode: match mode {
                    QueryMode::Hybrid => Mode::Hybrid,
                    QueryMode::Bm25 => Mode::Bm25,
                    QueryMode::Vector => Mode::Vector,
                },
                fusion: fusion.map(|f| match f {
                    FusionArg::Rrf => FusionMethod::Rrf,
                    FusionArg::Weighted => FusionMethod::Weighted,
                }),
                candidates: candidates.map(|c| c as usize),
            };
            let store = open(Access::Read)?;
            let response = store.retrieve(target, &query)?;
            emit(out, cli.json, &response, |o| print_response(o, &response))?;
        }
        Command::Indexes => {
            let list = open(Access::Read)?.indexes()?;
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
            let list = open(Access::Read)?.snapshots()?;
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
            let store = open(Access::Read)?;
            let id = store.resolve_index(id)?;
            let manifest = store.manifest(&id)?;
            let stale = store
                .indexes()?
                .into_iter()
                .find(|i| i.index_id == id)
                .and_then(|i| i.stale);
            let mut value = serde_json::to_value(&manifest)?;
            value["stale"] = json!(stale);
            emit(out, cli.json, &value, |o| {
                let m = &manifest;
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
            })?;
        }
        Command::Verify { id } => {
            let store = open(Access::Read)?;
            let id = store.resolve_index(id)?;
            let check = store.verify(&id)?;
            let value = json!({ "index_id": id, "ok": check.ok, "content_digest": check.content_digest, "problems": check.problems });
            emit(out, cli.json, &value, |o| {
                if check.ok {
                    writeln!(o, "ok {id} {}", check.content_digest)
                } else {
                    writeln!(o, "FAILED {id}")?;
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
            let store = open(Access::Write)?;
            let id = store.resolve_index(id)?;
            let bars = Bars::new(progress);
            let check = store.rebuild_check(&id, &bars)?;
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
                    .try_for_each(|f| writeln!(o, "  differs: {f}"))
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
    )
}

fn load_spec(path: Option<&Path>) -> Result<BuildSpec> {
    let Some(path) = path else {
        return Ok(BuildSpec::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading spec {}", path.display()))?;
    Ok(BuildSpec::from_toml(&text, &path.display().to_string())?)
}

fn emit<T: Serialize>(
    out: &mut dyn Write,
    json: bool,
    value: &T,
    text: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    if json {
        serde_json::to_writer_pretty(&mut *out, value)?;
        writeln!(out)?;
    } else {
        text(out)?;
    }
    Ok(())
}
