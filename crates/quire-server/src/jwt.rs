//! End users' identity as a signed JWT in request metadata (`x-quire-user-token`).
//!
//! An application that signs its users in with an identity provider passes the user's token
//! along with its own bearer token; the server checks the signature against the keys it trusts
//! (`[jwt]` in server.toml: PEM files or a JWKS file), the issuer, the audience, expiry and
//! not-before with a bounded clock skew, and reads the user and groups from the configured
//! claims. Only RS256, ES256 and EdDSA are accepted, and each trusted key verifies exactly the
//! algorithm it was configured (or published) for, so a token cannot pick a weaker one.

use std::path::PathBuf;
use std::sync::Arc;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use quire_core::Reader;
use serde::Deserialize;

use crate::jwks::{Jwks, TrustedKey, read_key_file};

/// The request metadata that carries an end user's JWT.
pub const USER_TOKEN_HEADER: &str = "x-quire-user-token";

/// Longest end-user token read; a longer one is refused before it is parsed.
pub const MAX_USER_TOKEN_BYTES: usize = 16 << 10;

/// Largest clock skew `leeway_secs` may allow.
const MAX_LEEWAY_SECS: u64 = 300;

/// The algorithms a trusted key may be for.
const ACCEPTED: [Algorithm; 3] = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA];

/// Whether a token's requests may, or must, carry an end user's JWT (`jwt` of a `[[tokens]]`
/// entry).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JwtUse {
    /// A request that presents one is refused (the default).
    #[default]
    Never,
    /// A request may present one, and then reads as its user; without one the token's own
    /// binding applies.
    Optional,
    /// Every request that reads documents must present one.
    Required,
}

impl JwtUse {
    /// The name server.toml and the access log use.
    pub fn as_str(self) -> &'static str {
        match self {
            JwtUse::Never => "never",
            JwtUse::Optional => "optional",
            JwtUse::Required => "required",
        }
    }
}

/// `[jwt]` as written in server.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJwt {
    issuer: String,
    audience: Vec<String>,
    jwks: Option<PathBuf>,
    #[serde(default)]
    keys: Vec<RawKey>,
    #[serde(default = "default_user_claim")]
    user_claim: String,
    #[serde(default = "default_groups_claim")]
    groups_claim: String,
    #[serde(default = "default_leeway")]
    leeway_secs: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    pem: PathBuf,
    alg: String,
    kid: Option<String>,
}

fn default_user_claim() -> String {
    "sub".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_leeway() -> u64 {
    60
}

/// Checks end users' tokens: the validated `[jwt]` section with its keys loaded.
#[derive(Clone)]
pub struct JwtVerifier {
    /// The PEM keys, read at start.
    keys: Vec<TrustedKey>,
    /// The JWKS file's keys, re-read when the file changes.
    jwks: Option<Arc<Jwks>>,
    issuer: String,
    audience: Vec<String>,
    leeway_secs: u64,
    user_claim: String,
    groups_claim: String,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("keys", &self.keys.len())
            .field("jwks", &self.jwks)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

/// Why a `[jwt]` setting is refused: the field (under `jwt.`) and the reason.
type Refusal = (String, String);

impl RawJwt {
    /// Validate the settings and load the keys (absolute paths only: the files are read now,
    /// and a relative path would depend on the directory the server starts in).
    pub(crate) fn check(self) -> Result<JwtVerifier, Refusal> {
        let refuse = |field: &str, why: String| (format!("jwt.{field}"), why);
        if self.issuer.trim().is_empty() {
            return Err(refuse("issuer", "is empty".into()));
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(refuse(
                "audience",
                "list at least one audience, none empty".into(),
            ));
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(refuse(
                "leeway_secs",
                format!("{} is more than {MAX_LEEWAY_SECS}", self.leeway_secs),
            ));
        }
        for (field, claim) in [
            ("user_claim", &self.user_claim),
            ("groups_claim", &self.groups_claim),
        ] {
            if claim.trim().is_empty() {
                return Err(refuse(field, "is empty".into()));
            }
        }
        let mut keys = Vec::new();
        for (i, raw) in self.keys.iter().enumerate() {
            keys.push(pem_key(raw).map_err(|why| refuse(&format!("keys[{i}]"), why))?);
        }
        let jwks = match &self.jwks {
            Some(path) => Some(Arc::new(
                Jwks::load(path).map_err(|why| refuse("jwks", why))?,
            )),
            None => None,
        };
        if keys.is_empty() && jwks.is_none() {
            return Err(refuse(
                "keys",
                "no key to verify with: list PEM `keys` or a `jwks` file".into(),
            ));
        }
        Ok(JwtVerifier {
            keys,
            jwks,
            issuer: self.issuer,
            audience: self.audience,
            leeway_secs: self.leeway_secs,
            user_claim: self.user_claim,
            groups_claim: self.groups_claim,
        })
    }
}

/// A PEM public key for the algorithm its entry names.
fn pem_key(raw: &RawKey) -> Result<TrustedKey, String> {
    let pem = read_key_file(&raw.pem)?;
    let alg: Algorithm = raw
        .alg
        .parse()
        .ok()
        .filter(|a| ACCEPTED.contains(a))
        .ok_or_else(|| format!("alg {:?}: expected RS256, ES256 or EdDSA", raw.alg))?;
    let key = match alg {
        Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
        Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        _ => DecodingKey::from_ed_pem(&pem),
    }
    .map_err(|e| format!("{}: not a {alg:?} public key: {e}", raw.pem.display()))?;
    Ok(TrustedKey {
        kid: raw.kid.clone(),
        alg,
        key,
    })
}

impl JwtVerifier {
    /// The end user `token` names, once its signature, issuer, audience and validity are
    /// checked; `Err` says what is wrong with it (never repeating the token).
    pub fn verify(&self, token: &str) -> Result<Reader, String> {
        if token.len() > MAX_USER_TOKEN_BYTES {
            return Err(format!("is longer than {MAX_USER_TOKEN_BYTES} bytes"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| format!("is not a JWT ({e})"))?;
        if !ACCEPTED.contains(&header.alg) {
            return Err(format!(
                "algorithm {:?} is not accepted (RS256, ES256, EdDSA)",
                header.alg
            ));
        }
        let jwks = self.jwks.as_ref().map(|j| j.keys());
        let trusted = self.keys.iter().chain(jwks.iter().flat_map(|k| k.iter()));
        let mut candidates = trusted.filter(|k| {
            k.alg == header.alg
                && match (&k.kid, &header.kid) {
                    (Some(ours), Some(theirs)) => ours == theirs,
                    _ => true,
                }
        });
        let mut tried = false;
        let claims = loop {
            let Some(key) = candidates.next() else {
                return Err(match tried {
                    true => "its signature does not verify with any trusted key".into(),
                    false => format!(
                        "no trusted key is for {:?}{}",
                        header.alg,
                        header
                            .kid
                            .as_deref()
                            .map(|k| format!(" with kid {}", crate::error::quoted(k)))
                            .unwrap_or_default()
                    ),
                });
            };
            tried = true;
            let decoded = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
                token,
                &key.key,
                &self.validation(key.alg),
            );
            match decoded {
                Ok(data) => break data.claims,
                // Another key of the same algorithm may be the one (a rotation without kids).
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => continue,
                Err(e) => return Err(describe_error(e.kind())),
            }
        };
        self.reader(&claims)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.leeway = self.leeway_secs;
        v.validate_nbf = true;
        v
    }

    /// The user and groups of verified claims.
    fn reader(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Reader, String> {
        let user = claims
            .get(&self.user_claim)
            .and_then(serde_json::Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| format!("has no `{}` claim naming the user", self.user_claim))?;
        let groups: Vec<&str> = match claims.get(&self.groups_claim) {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|g| g.as_str())
                .collect::<Option<_>>()
                .ok_or_else(|| format!("claim `{}` holds a non-string", self.groups_claim))?,
            Some(_) => {
                return Err(format!(
                    "claim `{}` is not a list of group names",
                    self.groups_claim
                ));
            }
        };
        Reader::new(Some(user), groups).map_err(|e| format!("names an invalid principal: {e}"))
    }
}

/// What is wrong with a token whose signature verified, or which could not be read.
fn describe_error(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "has expired".into(),
        ErrorKind::ImmatureSignature => "is not valid yet (nbf)".into(),
        ErrorKind::InvalidIssuer => "was issued by an issuer this server does not trust".into(),
        ErrorKind::InvalidAudience => "is not meant for this server (audience)".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("has no `{claim}` claim"),
        ErrorKind::InvalidSignature => "its signature does not verify".into(),
        other => format!("is malformed ({other:?})"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;

    /// A fixture of quire-testkit's `fixtures/jwt` (test-only keys).
    fn fixture(name: &str) -> PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../quire-testkit/fixtures/jwt")
            .join(name)
    }

    fn signer(name: &str, alg: Algorithm) -> EncodingKey {
        let pem = std::fs::read(fixture(&format!("{name}.key.pem"))).unwrap();
        match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap()
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    /// Claims of dana in eng, valid for an hour, from the trusted issuer to quire.
    fn claims() -> serde_json::Value {
        json!({
            "iss": "https://idp.test", "aud": "quire", "sub": "dana",
            "groups": ["eng", "all-staff"], "exp": now() + 3600, "iat": now(),
        })
    }

    fn sign(key: &str, alg: Algorithm, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&header, claims, &signer(key, alg)).unwrap()
    }

    fn raw(keys: &str) -> RawJwt {
        toml::from_str(&format!(
            "issuer = \"https://idp.test\"\naudience = [\"quire\"]\n{keys}"
        ))
        .unwrap()
    }

    fn pem_keys() -> String {
        format!(
            "keys = [{{ pem = {:?}, alg = \"RS256\" }}, {{ pem = {:?}, alg = \"ES256\", kid = \"ec-1\" }}, {{ pem = {:?}, alg = \"EdDSA\" }}]",
            fixture("rs256.pub.pem"),
            fixture("es256.pub.pem"),
            fixture("eddsa.pub.pem")
        )
    }

    fn verifier() -> JwtVerifier {
        raw(&pem_keys()).check().unwrap()
    }

    #[test]
    fn each_algorithm_verifies_with_its_key() {
        let v = verifier();
        let dana = Reader::new(Some("dana"), ["eng", "all-staff"]).unwrap();
        for (key, alg, kid) in [
            ("rs256", Algorithm::RS256, None),
            ("es256", Algorithm::ES256, Some("ec-1")),
            ("es256", Algorithm::ES256, None),
            ("eddsa", Algorithm::EdDSA, Some("any")),
        ] {
            assert_eq!(
                v.verify(&sign(key, alg, kid, &claims())),
                Ok(dana.clone()),
                "{alg:?}"
            );
        }
    }

    #[test]
    fn bad_tokens_are_refused_saying_why() {
        let v = verifier();
        let with = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut c = claims();
            edit(&mut c);
            sign("es256", Algorithm::ES256, None, &c)
        };
        let cases: Vec<(String, &str)> = vec![
            (with(&|c| c["exp"] = json!(now() - 3600)), "has expired"),
            (
                with(&|c| c["nbf"] = json!(now() + 3600)),
                "is not valid yet",
            ),
            (with(&|c| c["iss"] = json!("https://evil.test")), "issuer"),
            (with(&|c| c["aud"] = json!("other-service")), "audience"),
            (
                with(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
                "no `exp` claim",
            ),
            (
                with(&|c| drop(c.as_object_mut().unwrap().remove("sub"))),
                "no `sub` claim",
            ),
            (
                with(&|c| c["groups"] = json!("eng")),
                "not a list of group names",
            ),
            (with(&|c| c["groups"] = json!([1])), "holds a non-string"),
            (
                with(&|c| c["groups"] = json!(["has space"])),
                "invalid principal",
            ),
            (
                sign("other", Algorithm::ES256, None, &claims()),
                "does not verify with any trusted key",
            ),
            (
                sign("es256", Algorithm::ES256, Some("ec-2"), &claims()),
                "no trusted key is for ES256 with kid \"ec-2\"",
            ),
            ("not.a.jwt".into(), "is not a JWT"),
            ("x".repeat(MAX_USER_TOKEN_BYTES + 1), "is longer than"),
        ];
        for (token, want) in cases {
            let err = v.verify(&token).expect_err(want);
            assert!(err.contains(want), "{want}: {err}");
        }
        // A token signed with the RSA key's public half as an HMAC secret (alg confusion).
        let public = std::fs::read(fixture("rs256.pub.pem")).unwrap();
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(&public).unwrap(),
        )
        .unwrap();
        let err = v.verify(&hs).expect_err("HS256");
        assert!(err.contains("HS256 is not accepted"), "{err}");
    }

    #[test]
    fn a_skew_within_the_leeway_is_accepted() {
        let v = verifier();
        let mut c = claims();
        c["exp"] = json!(now() - 5);
        assert!(v.verify(&sign("eddsa", Algorithm::EdDSA, None, &c)).is_ok());
    }

    #[test]
    fn keys_come_from_a_jwks_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut keys = Vec::new();
        for (name, alg, kid) in [
            ("rs256", Algorithm::RS256, "r1"),
            ("eddsa", Algorithm::EdDSA, "e1"),
        ] {
            let mut jwk = Jwk::from_encoding_key(&signer(name, alg), alg).unwrap();
            jwk.common.key_id = Some(kid.into());
            keys.push(jwk);
        }
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, serde_json::to_vec(&JwkSet { keys }).unwrap()).unwrap();
        let v = raw(&format!("jwks = {jwks:?}")).check().unwrap();
        assert!(
            v.verify(&sign("rs256", Algorithm::RS256, Some("r1"), &claims()))
                .is_ok()
        );
        assert!(
            v.verify(&sign("eddsa", Algorithm::EdDSA, Some("e1"), &claims()))
                .is_ok()
        );
        let err = v
            .verify(&sign("es256", Algorithm::ES256, None, &claims()))
            .expect_err("no EC key in the set");
        assert!(err.contains("no trusted key is for ES256"), "{err}");
    }

    #[test]
    fn which_tokens_may_present_one_is_checked_against_their_binding() {
        let token = |extra: &str| {
            let hash = blake3::hash(b"t").to_hex();
            format!(
                "version = 1\n[[tokens]]\nname = \"app\"\nrole = \"reader\"\nblake3 = \"{hash}\"\n{extra}\n"
            )
        };
        let jwt = format!(
            "[jwt]\nissuer = \"https://idp.test\"\naudience = [\"quire\"]\n{}",
            pem_keys()
        );
        let parse = |text: String| crate::ServerConfig::from_toml(&text, "server.toml");
        let config =
            parse(token("jwt = \"optional\"\nrun_as = { users = [\"*\"] }") + &jwt).unwrap();
        let caller = config.tokens.values().next().unwrap();
        assert_eq!(caller.jwt, JwtUse::Optional);
        assert!(config.jwt.is_some());
        for (extra, with_jwt, want) in [
            (
                "jwt = \"required\"",
                false,
                "field `tokens[0].jwt` = \"required\": needs a [jwt] section",
            ),
            (
                "jwt = \"optional\"\nprincipal = { user = \"d\" }",
                true,
                "a token bound to a principal",
            ),
            (
                "jwt = \"required\"\nrun_as = { users = [\"*\"] }",
                true,
                "`run_as` would never apply",
            ),
            ("jwt = \"always\"", true, "unknown variant `always`"),
        ] {
            let text = token(extra) + if with_jwt { &jwt } else { "" };
            let err = parse(text).expect_err(extra).to_string();
            assert!(
                err.contains("server.toml") && err.contains(want),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn settings_are_checked_naming_the_field() {
        let pub_ec = fixture("es256.pub.pem");
        for (text, want) in [
            ("", "jwt.keys"),
            (
                "keys = [{ pem = \"rel.pem\", alg = \"ES256\" }]",
                "must be an absolute path",
            ),
            (
                &format!("keys = [{{ pem = {pub_ec:?}, alg = \"HS256\" }}]"),
                "alg \"HS256\": expected RS256, ES256 or EdDSA",
            ),
            (
                &format!("keys = [{{ pem = {pub_ec:?}, alg = \"RS256\" }}]"),
                "not a RS256 public key",
            ),
            (
                "jwks = \"/nonexistent/jwks.json\"",
                "/nonexistent/jwks.json",
            ),
            (
                &format!("{}\nleeway_secs = 900", pem_keys()),
                "jwt.leeway_secs",
            ),
        ] {
            let (field, why) = raw(text).check().expect_err(text);
            let got = format!("{field}: {why}");
            assert!(got.contains(want), "{text}: {got}");
        }
    }
}
