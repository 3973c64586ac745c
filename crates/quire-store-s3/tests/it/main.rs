//! quire-store-s3 against a real S3 store (SeaweedFS from `scripts/test-services start`): the
//! artifact-store conformance suite, large objects, and fetches from a store that stops. Each
//! test works under a key prefix of its own. Without the store these tests skip, except under
//! `CI=true`, where they fail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod outage;

use std::io::Read;
use std::sync::Arc;

use quire_store::{ArtifactStore, Key};
use quire_store_s3::{Credentials, S3Config, S3Store};

/// The test store's keys.
pub fn credentials(s3: &quire_testkit::paths::S3) -> Credentials {
    Credentials::new(&s3.access_key_id, &s3.secret_access_key, None)
}

/// A client of the test store as `config` describes it.
pub fn connect(s3: &quire_testkit::paths::S3, config: &S3Config) -> S3Store {
    S3Store::connect(config, &credentials(s3)).unwrap()
}

/// A configuration for the test store under a prefix no other test or run uses, at
/// `endpoint` (the store's own when `None`).
pub fn config(s3: &quire_testkit::paths::S3, endpoint: Option<&str>) -> S3Config {
    let prefix = quire_testkit::paths::unique("t");
    let endpoint = endpoint.unwrap_or(&s3.endpoint);
    let mut config = S3Config::new(&s3.url, Some(endpoint), None).unwrap();
    config.url = config.url.with_subprefix(&prefix).unwrap();
    config
}

#[test]
fn s3_passes_the_artifact_store_conformance_suite() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let tmp = tempfile::TempDir::new().unwrap();
    let fresh = || -> Arc<dyn ArtifactStore> { Arc::new(connect(&s3, &config(&s3, None))) };
    quire_store::artifacts::conformance::run(&fresh, tmp.path());
}

#[test]
fn objects_larger_than_a_part_and_a_range_round_trip() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let store = connect(&s3, &config(&s3, None));
    let len = quire_store_s3::RANGE_BYTES as usize + quire_store_s3::PART_BYTES / 2 + 17;
    let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let key = Key::new("big/object.bin").unwrap();
    store.put(&key, &mut &body[..], len as u64).unwrap();
    let mut back = Vec::new();
    store
        .get(&key)
        .unwrap()
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert!(back == body, "{} bytes in parts, read back in ranges", len);
    let empty = Key::new("big/empty").unwrap();
    store.put(&empty, &mut &[][..], 0).unwrap();
    let mut nothing = Vec::new();
    store
        .get(&empty)
        .unwrap()
        .unwrap()
        .read_to_end(&mut nothing)
        .unwrap();
    assert!(nothing.is_empty());
}

#[test]
fn wrong_credentials_are_refused_naming_the_store_and_never_the_secret() {
    let Some(s3) = quire_testkit::s3() else {
        return;
    };
    let mut config = config(&s3, None);
    config.timeouts.retries = 0;
    let wrong = Credentials::new(&s3.access_key_id, "not-the-secret-42", None);
    let store = S3Store::connect(&config, &wrong).unwrap();
    let err = store
        .put_new(&Key::new("x").unwrap(), b"x")
        .expect_err("refused")
        .to_string();
    assert!(err.contains(&config.url.to_string()), "{err}");
    assert!(!err.contains("not-the-secret-42"), "{err}");
}
