//! `quire serve`: the server's configuration from server.toml and flags, the demo (the bundled
//! handbook, built with all-MiniLM-L6-v2 when the model is at hand, else hash-v1), the
//! listeners (gRPC, metrics, HTTP) and the lines scripts wait for.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use quire_core::BuildSpec;
use quire_embed::Models;
use quire_server::{RegistryConfig, ServerConfig, serve};

use crate::args::{Cli, Command, DemoModel};
use crate::config_file::read_config;

/// The build spec of the semantic demo: specs/minilm.toml (the model pinned by digest; no
/// `default_acl`, so the handbook's own ACLs are what readers get).
const MINILM_SPEC: &str = include_str!("../../../specs/minilm.toml");

/// The model the semantic demo needs, by its directory name under `--models`.
const MINILM: &str = "all-minilm-l6-v2";

/// What `serve --demo` builds with: the spec (`None`: the default, hash-v1) and, when the
/// semantic model was wanted but is not at hand, how to get it.
#[derive(Debug)]
pub(crate) struct DemoSpec {
    pub(crate) spec: Option<BuildSpec>,
    pub(crate) hint: Option<String>,
}

/// The demo's spec for `choice`, given the models directory.
pub(crate) fn demo_spec(choice: DemoModel, models: &Path) -> Result<DemoSpec> {
    let present = models.join(MINILM).join("model.safetensors").exists();
    let minilm = || BuildSpec::from_toml(MINILM_SPEC, "specs/minilm.toml");
    let missing = format!(
        "{MINILM} is not in {} (--models / QUIRE_MODELS); run scripts/fetch-model",
        models.display()
    );
    Ok(match (choice, present) {
        (DemoModel::HashV1, _) => DemoSpec {
            spec: None,
            hint: None,
        },
        (DemoModel::Auto | DemoModel::Minilm, true) => DemoSpec {
            spec: Some(minilm()?),
            hint: None,
        },
        (DemoModel::Minilm, false) => anyhow::bail!("--demo-model minilm: {missing}"),
        (DemoModel::Auto, false) => DemoSpec {
            spec: None,
            hint: Some(format!(
                "{missing} and restart for semantic retrieval; serving hash-v1 (lexical \
                 hashing, not semantic) meanwhile"
            )),
        },
    })
}

/// `quire serve ...`.
pub(crate) async fn serve(cli: &Cli) -> Result<()> {
    let Command::Serve {
        addr,
        config,
        demo,
        demo_model,
        http_addr,
        metrics_addr,
        migrate_registry,
        replica,
    } = &cli.command
    else {
        anyhow::bail!("not a serve command");
    };
    let (addr, metrics_addr) = (*addr, *metrics_addr);
    let mut config = match config {
        None => ServerConfig::default(),
        Some(path) => {
            let text = read_config(path)?;
            let mut config = ServerConfig::from_toml(&text, &path.display().to_string())?;
            // Model paths in server.toml are relative to the file.
            let base = path.parent().unwrap_or(Path::new("."));
            for m in &mut config.models {
                m.path = base.join(&m.path);
            }
            config
        }
    };
    if let Some(url) = cli.registry_url()? {
        let migrate = config.registry.as_ref().is_some_and(|r| r.migrate);
        config.registry = Some(RegistryConfig { url, migrate });
    }
    if let Some(storage) = cli.storage()? {
        config.storage = Some(storage);
    }
    if *migrate_registry {
        match &mut config.registry {
            Some(registry) => registry.migrate = true,
            None => anyhow::bail!(
                "--migrate-registry needs a PostgreSQL registry (--registry, QUIRE_REGISTRY or \
                 [registry] url in server.toml)"
            ),
        }
    }
    config.replica.enabled |= *replica;
    if http_addr.is_some() {
        config.http_addr = *http_addr;
    }
    serve::check_exposure(addr, &config)?;
    if let Some(metrics) = metrics_addr {
        serve::check_metrics_exposure(metrics, &config)?;
    }
    if let Some(http) = config.http_addr {
        serve::check_http_exposure(http, &config)?;
    }
    let endpoint = config.telemetry.otlp_endpoint.as_deref();
    let telemetry = quire_server::telemetry::install("info,hnsw_rs=warn", endpoint)
        .with_context(|| format!("the OTLP exporter for {}", endpoint.unwrap_or_default()))?;
    let demo = match demo {
        true => Some((demo_corpus()?, demo_spec(*demo_model, &cli.models)?)),
        false => None,
    };
    let options = serve::ServeOptions {
        data: cli.data.clone(),
        config: config.clone(),
        demo_corpus: demo.as_ref().map(|(corpus, _)| corpus.clone()),
        demo_spec: demo.as_ref().and_then(|(_, d)| d.spec.clone()),
        models: Models::from_dir(&cli.models)?,
        artifacts: None,
    };
    let (local, metrics) = tokio::task::spawn_blocking(move || serve::prepare(&options)).await??;
    if let Some((_, spec)) = &demo {
        let model = serve::demo_model(local.store())?;
        tracing::info!(
            model,
            "the demo `{}` is served with {model}",
            serve::DEMO_NAME
        );
        let mut stderr = std::io::stderr().lock();
        writeln!(
            stderr,
            "demo: `{}` is served with the embedding model {model}",
            serve::DEMO_NAME
        )?;
        if let Some(hint) = &spec.hint {
            writeln!(stderr, "demo: {hint}")?;
        }
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let http = match config.http_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding HTTP address {a}"))?,
        ),
        None => None,
    };
    // Lines on stdout that scripts (and tests binding port 0) can wait for: gRPC first.
    let mut stdout = std::io::stdout().lock();
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    writeln!(
        stdout,
        "quire listening on {scheme}://{}",
        listener.local_addr()?
    )?;
    if let Some(http) = &http {
        writeln!(stdout, "quire HTTP API on http://{}", http.local_addr()?)?;
    }
    stdout.flush()?;
    drop(stdout);
    let metrics_listener = match metrics_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("binding metrics address {a}"))?,
        ),
        None => None,
    };
    let listeners = serve::Listeners {
        grpc: listener,
        metrics: metrics_listener,
        http,
    };
    let served = serve::run_with(local, config, metrics, listeners, serve::shutdown_signal()).await;
    tokio::task::spawn_blocking(move || telemetry.shutdown()).await?;
    Ok(served?)
}

/// The bundled handbook: `corpora/handbook` under the working directory, else in the source tree
/// this binary was built from.
fn demo_corpus() -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("corpora/handbook"),
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../corpora/handbook"
        )),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("quire-acl.toml").exists())
        .ok_or_else(|| {
            anyhow::anyhow!("--demo needs the bundled corpora/handbook; run from a quire checkout")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_of(d: &DemoSpec) -> String {
        d.spec
            .as_ref()
            .map_or("hash-v1".to_owned(), |s| s.embedding.model.clone())
    }

    #[test]
    fn the_demo_uses_minilm_exactly_when_it_is_at_hand_or_asked_for() -> Result<()> {
        let empty = tempfile::TempDir::new()?;
        let with = tempfile::TempDir::new()?;
        std::fs::create_dir_all(with.path().join(MINILM))?;
        std::fs::write(with.path().join(MINILM).join("model.safetensors"), b"")?;

        let auto_without = demo_spec(DemoModel::Auto, empty.path())?;
        assert_eq!(model_of(&auto_without), "hash-v1");
        let hint = auto_without.hint.unwrap_or_default();
        assert!(hint.contains("scripts/fetch-model"), "{hint}");

        let auto_with = demo_spec(DemoModel::Auto, with.path())?;
        assert_eq!(model_of(&auto_with), MINILM);
        assert!(auto_with.hint.is_none());
        let spec = auto_with.spec.expect("a spec");
        assert!(
            spec.default_acl.is_none(),
            "the handbook's own ACLs are kept"
        );

        let forced = demo_spec(DemoModel::HashV1, with.path())?;
        assert_eq!(model_of(&forced), "hash-v1");
        assert!(forced.hint.is_none());

        let refused = demo_spec(DemoModel::Minilm, empty.path()).expect_err("no model");
        assert!(
            refused.to_string().contains("scripts/fetch-model"),
            "{refused}"
        );
        Ok(())
    }
}
