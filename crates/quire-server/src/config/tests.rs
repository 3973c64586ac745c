//! Tests of server.toml parsing and validation.

use super::*;

#[test]
fn configs_are_validated_with_field_names() {
    let hash = blake3::hash(b"secret").to_hex().to_string();
    let ok = format!(
        "version = 1\n[[tokens]]\nname = \"ci\"\nrole = \"builder\"\nblake3 = \"{hash}\"\n[limits]\nmax_k = 50\n"
    );
    let config = ServerConfig::from_toml(&ok, "server.toml").map_err(|e| e.to_string());
    assert_eq!(
        config.map(|c| (c.tokens.len(), c.limits.max_k, c.limits.query_threads())),
        Ok((
            1,
            50,
            std::thread::available_parallelism().map_or(1, usize::from) + 1
        ))
    );
    let three = ServerConfig::from_toml("version = 1\n[limits]\nquery_threads = 3", "server.toml");
    assert_eq!(three.map(|c| c.limits.query_threads()).ok(), Some(3));
    for (text, want) in [
        ("version = 2", "field `version` = 2"),
        (
            "version = 1\n[[tokens]]\nname = \"x\"\nrole = \"reader\"\nblake3 = \"abc\"",
            "tokens[0].blake3",
        ),
        (
            "version = 1\n[[tokens]]\nname = \"x\"\nrole = \"god\"\nblake3 = \"abc\"",
            "god",
        ),
        ("version = 1\n[limits]\nmax_k = 0", "limits.max_k"),
        (
            "version = 1\n[limits]\nquery_threads = 0",
            "field `limits.query_threads` = 0: must be positive",
        ),
        ("version = 1\nport = 3", "port"),
        (
            "version = 1\n[[models]]\nname = \"m\"\npath = \"a\"\n[[models]]\nname = \"m\"\npath = \"b\"",
            "models[1].name",
        ),
        (
            "version = 1\n[[models]]\nname = \"m\"\npath = \"a\"\ndigest = \"x\"",
            "digest",
        ),
        (
            "version = 1\n[import]\nroots = [\"corpora\"]",
            "field `import.roots[0]` = \"corpora\": must be an absolute path",
        ),
        (
            "version = 1\n[import]\nroots = [\"/nonexistent-quire-root\"]",
            "field `import.roots[0]` = \"/nonexistent-quire-root\": No such file",
        ),
        (
            "version = 1\n[import]\nroot = \"/\"",
            "unknown field `root`",
        ),
        (
            "version = 1\n[registry]\nurl = \"mysql://u:pw@h/db\"",
            "field `registry.url`: registry url: expected postgres://",
        ),
        (
            "version = 1\n[registry]\nmigrate = true",
            "field `registry.migrate`: needs `registry.url`",
        ),
        (
            "version = 1\n[registry]\nurl = \"postgres://h/db\"\npool = 3",
            "unknown field `pool`",
        ),
        (
            "version = 1\n[sampling]\nrate = 2.0",
            "field `sampling.rate`: must be between 0 and 1",
        ),
        (
            "version = 1\n[http]\naddr = \"8080\"",
            "field `http.addr`: \"8080\"",
        ),
        (
            "version = 1\n[telemetry]\notlp_endpoint = \"collector:4317\"",
            "field `telemetry.otlp_endpoint`: \"collector:4317\"",
        ),
        (
            "version = 1\n[telemetry]\nsample_ratio = 1.5",
            "field `telemetry.sample_ratio`: 1.5: expected a share from 0 to 1",
        ),
        (
            "version = 1\n[sampling]\nstore = true",
            "unknown field `store`",
        ),
        (
            "version = 1\n[release]\ncanary_eval_every = \"often\"",
            "field `release.canary_eval_every`: \"often\"",
        ),
    ] {
        let text = &text.replace("HASH", &hash);
        let err = ServerConfig::from_toml(text, "server.toml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("server.toml") && err.contains(want),
            "{text:?}: {err}"
        );
        assert!(!err.contains("pw@"), "the password is not repeated: {err}");
    }
}

#[test]
fn a_registry_url_is_checked_and_shown_without_its_password() {
    let text = "version = 1\n[registry]\nurl = \"postgres://q:pw@db:6432/reg\"\nmigrate = true";
    let config = ServerConfig::from_toml(text, "server.toml").expect("config");
    let registry = config.registry.expect("a registry");
    assert!(registry.migrate);
    assert_eq!(registry.url.to_string(), "postgres://q@db:6432/reg");
    let shown = format!("{:?}", ServerConfig::from_toml(text, "s").expect("config"));
    assert!(!shown.contains("pw"), "{shown}");
    let default = ServerConfig::from_toml("version = 1", "server.toml").expect("config");
    assert_eq!(default.registry, None, "redb stays the default");
}

#[test]
fn a_storage_url_is_checked_with_its_endpoint_and_timeouts() {
    let text = "version = 1\n[storage]\nurl = \"s3://quire-art/prod\"\n\
                endpoint = \"http://127.0.0.1:8333\"\nrequest_timeout_ms = 5000";
    let config = ServerConfig::from_toml(text, "server.toml").expect("config");
    let Some(StorageConfig::S3(s3)) = &config.storage else {
        panic!("an S3 store: {:?}", config.storage);
    };
    assert_eq!(s3.url.to_string(), "s3://quire-art/prod");
    assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:8333"));
    assert_eq!(s3.timeouts.request, std::time::Duration::from_secs(5));
    let dir = "version = 1\n[storage]\nurl = \"file:///srv/quire\"";
    let config = ServerConfig::from_toml(dir, "server.toml").expect("config");
    assert_eq!(
        config.storage,
        Some(StorageConfig::Dir("/srv/quire".into()))
    );
    let default = ServerConfig::from_toml("version = 1", "server.toml").expect("config");
    assert_eq!(
        default.storage, None,
        "the data dir alone stays the default"
    );
    for (storage, want) in [
        (
            "url = \"s3://B\"",
            "field `storage.url`: storage url: the bucket",
        ),
        (
            "url = \"file://rel\"",
            "field `storage.url`: expected file:///",
        ),
        (
            "url = \"s3://bkt\"\nendpoint = \"http://k:pw@h\"",
            "field `storage.endpoint`",
        ),
        ("endpoint = \"http://h\"", "field `storage.url`: the other"),
        (
            "url = \"s3://bkt\"\nsecret = \"x\"",
            "unknown field `secret`",
        ),
        ("url = \"s3://bkt\"\nretries = -1", "integer `-1`"),
    ] {
        let text = format!("version = 1\n[storage]\n{storage}");
        let err = ServerConfig::from_toml(&text, "server.toml")
            .expect_err(storage)
            .to_string();
        assert!(err.contains(want), "{storage}: {err}");
        assert!(!err.contains("pw@"), "{err}");
    }
}

#[test]
fn gc_keeps_fresh_builds_an_hour_unless_configured() {
    let plain = ServerConfig::from_toml("version = 1\n", "server.toml").expect("plain");
    assert_eq!(plain.store_options().gc_fresh.as_secs(), 3600);
    let set = ServerConfig::from_toml(
        "version = 1\n[release]\ngc_keep_fresh_secs = 0\n",
        "server.toml",
    )
    .expect("set");
    assert!(set.store_options().gc_fresh.is_zero());
}
