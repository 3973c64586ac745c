//! A JWKS file's signing keys, re-read when the file changes.
//!
//! An identity provider rotates its keys by publishing a new set; quire reads the set from a
//! file (`[jwt] jwks`), which whatever fetches it replaces. Each verification asks [`Jwks::keys`],
//! which looks at the file's modification time, size and inode at most every
//! [`RECHECK`] and reads it again when they changed. A set that does not parse or holds no
//! usable key is refused with a warning and the previous keys stay in use (so a half-written
//! file never locks users out); the next change is read again. Replace the file by renaming a
//! complete one into place. PEM `keys` are read at start only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey};

/// A key the server trusts to sign end-user tokens.
#[derive(Clone)]
pub(crate) struct TrustedKey {
    /// Matched against a token's `kid` header when both have one.
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The largest key file (a PEM key or a JWKS document) read: 1 MiB, far above any real one.
pub(crate) const MAX_KEY_FILE_BYTES: u64 = 1 << 20;

/// The contents of a key file named by an absolute path, of at most [`MAX_KEY_FILE_BYTES`]: a
/// longer one (or an endless one, `/dev/zero`) is refused after reading that many bytes, not
/// read until memory runs out.
pub(crate) fn read_key_file(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read;
    if !path.is_absolute() {
        return Err(format!(
            "{:?} must be an absolute path",
            path.display().to_string()
        ));
    }
    let failed = |e: std::io::Error| format!("{}: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_KEY_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(failed)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(format!(
            "{}: longer than {MAX_KEY_FILE_BYTES} bytes, the largest key file accepted",
            path.display()
        ));
    }
    Ok(bytes)
}

/// How often at most the file is looked at.
pub(crate) const RECHECK: Duration = Duration::from_millis(250);

/// What tells one version of the file from another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
        inode,
    })
}

/// The keys of a JWKS file, kept current.
pub(crate) struct Jwks {
    path: PathBuf,
    recheck: Duration,
    state: RwLock<State>,
}

struct State {
    keys: Arc<[TrustedKey]>,
    /// The version `keys` were read from.
    loaded: Option<Stamp>,
    /// A version that was refused (not read again until the file changes).
    refused: Option<Stamp>,
    checked: Instant,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys = self.state.read().map_or(0, |s| s.keys.len());
        f.debug_struct("Jwks")
            .field("path", &self.path)
            .field("keys", &keys)
            .finish_non_exhaustive()
    }
}

impl Jwks {
    /// The keys of the file at `path` (an absolute path), which must hold at least one.
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let loaded = stamp(path);
        let keys = jwks_keys(path)?;
        Ok(Self {
            path: path.to_owned(),
            recheck: RECHECK,
            state: RwLock::new(State {
                keys: keys.into(),
                loaded,
                refused: None,
                checked: Instant::now(),
            }),
        })
    }

    /// The current keys: read again first if the file changed since they were read.
    pub(crate) fn keys(&self) -> Arc<[TrustedKey]> {
        {
            let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
            if state.checked.elapsed() < self.recheck {
                return state.keys.clone();
            }
        }
        let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() >= self.recheck {
            state.checked = Instant::now();
            // The stamp is taken before reading: a change during the read shows next time.
            let now = stamp(&self.path);
            if now.is_some() && now != state.loaded && now != state.refused {
                match jwks_keys(&self.path) {
                    Ok(keys) => {
                        tracing::info!(file = %self.path.display(), keys = keys.len(), "JWKS reloaded");
                        state.keys = keys.into();
                        state.loaded = now;
                        state.refused = None;
                    }
                    Err(why) => {
                        tracing::warn!(file = %self.path.display(), "JWKS not reloaded, the previous keys stay in use: {why}");
                        state.refused = now;
                    }
                }
            }
        }
        state.keys.clone()
    }
}

/// The signing keys of a JWKS file. Keys for other uses or algorithms (encryption keys, RS512,
/// ...) are skipped with a warning: an identity provider's set often holds some.
pub(crate) fn jwks_keys(path: &Path) -> Result<Vec<TrustedKey>, String> {
    let text = read_key_file(path)?;
    let set: JwkSet = serde_json::from_slice(&text)
        .map_err(|e| format!("{}: not a JWKS document: {e}", path.display()))?;
    let mut keys = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        match jwk_key(jwk) {
            Ok(key) => keys.push(key),
            Err(why) => tracing::warn!(file = %path.display(), key = i, "JWKS key skipped: {why}"),
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "{}: holds no RS256, ES256 or EdDSA signing key",
            path.display()
        ));
    }
    Ok(keys)
}

/// A JWKS key, for the algorithm it names or, without one, the only accepted one its type
/// allows.
fn jwk_key(jwk: &Jwk) -> Result<TrustedKey, String> {
    if jwk.common.public_key_use == Some(jsonwebtoken::jwk::PublicKeyUse::Encryption) {
        return Err("an encryption key".into());
    }
    let by_type = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return Err("not an RSA, P-256 or Ed25519 key".into()),
    };
    let named = match jwk.common.key_algorithm {
        None => None,
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(other) => return Err(format!("algorithm {other:?} is not accepted")),
    };
    if named.is_some_and(|a| a != by_type) {
        return Err(format!("algorithm {named:?} does not fit the key's type"));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    Ok(TrustedKey {
        kid: jwk.common.key_id.clone(),
        alg: by_type,
        key,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    fn signer(name: &str, alg: Algorithm) -> EncodingKey {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../quire-testkit/fixtures/jwt")
            .join(format!("{name}.key.pem"));
        let pem = std::fs::read(path).unwrap();
        match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap()
    }

    fn token(name: &str, alg: Algorithm) -> String {
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let claims =
            json!({"iss": "https://idp.test", "aud": "quire", "sub": "dana", "exp": now + 3600});
        jsonwebtoken::encode(&Header::new(alg), &claims, &signer(name, alg)).unwrap()
    }

    /// Write a set of `keys` to `path` as a rotation would: a complete file renamed into place.
    fn publish(path: &Path, keys: &[(&str, Algorithm)]) {
        let keys = keys
            .iter()
            .map(|(name, alg)| Jwk::from_encoding_key(&signer(name, *alg), *alg).unwrap())
            .collect();
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn verifies(v: &crate::jwt::JwtVerifier, token: &str) -> Result<(), String> {
        v.verify(token).map(drop)
    }

    /// Wait out the recheck interval, so the next verification looks at the file.
    fn settle() {
        std::thread::sleep(RECHECK + Duration::from_millis(20));
    }

    /// A rotated JWKS file is used without a restart: the new set's keys verify and the
    /// dropped ones no longer do; a broken file keeps the previous keys, and the file is read
    /// again once it is fixed. (Before, the file was read at start only.)
    #[test]
    fn a_rotated_jwks_file_is_read_again() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("jwks.json");
        publish(&path, &[("rs256", Algorithm::RS256)]);
        let v: crate::jwt::RawJwt = toml::from_str(&format!(
            "issuer = \"https://idp.test\"\naudience = [\"quire\"]\njwks = {path:?}"
        ))
        .unwrap();
        let v = v.check().unwrap();
        let (rsa, ed) = (
            token("rs256", Algorithm::RS256),
            token("eddsa", Algorithm::EdDSA),
        );
        assert_eq!(verifies(&v, &rsa), Ok(()));
        let err = verifies(&v, &ed).unwrap_err();
        assert!(err.contains("no trusted key is for EdDSA"), "{err}");

        publish(&path, &[("eddsa", Algorithm::EdDSA)]);
        settle();
        assert_eq!(verifies(&v, &ed), Ok(()), "the new key verifies");
        let err = verifies(&v, &rsa).unwrap_err();
        assert!(
            err.contains("no trusted key is for RS256"),
            "the dropped key does not: {err}"
        );

        std::fs::write(&path, b"{\"keys\": [").unwrap();
        settle();
        assert_eq!(
            verifies(&v, &ed),
            Ok(()),
            "a broken file keeps the keys in use"
        );
        publish(
            &path,
            &[("rs256", Algorithm::RS256), ("eddsa", Algorithm::EdDSA)],
        );
        settle();
        assert_eq!(verifies(&v, &rsa), Ok(()), "the fixed file is read");
        assert_eq!(verifies(&v, &ed), Ok(()));
    }

    /// A key file past the size limit is refused naming it, after reading at most the limit
    /// (before, it was read whole: `pem = "/dev/zero"` grew the server until it aborted).
    #[test]
    fn a_key_file_past_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge.pem");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_KEY_FILE_BYTES + 1).unwrap();
        let err = read_key_file(&path).unwrap_err();
        assert!(
            err.contains("huge.pem") && err.contains("longer than"),
            "{err}"
        );
        file.set_len(MAX_KEY_FILE_BYTES).unwrap();
        assert_eq!(
            read_key_file(&path).unwrap().len() as u64,
            MAX_KEY_FILE_BYTES
        );
        if Path::new("/dev/zero").exists() {
            let Err(err) = read_key_file(Path::new("/dev/zero")) else {
                panic!("an endless file is accepted");
            };
            assert!(err.contains("longer than"), "{err}");
        }
    }
}
