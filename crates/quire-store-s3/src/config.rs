//! Where the store is and how long it may take: [`S3Config`], validated from a URL, an
//! endpoint, a region and credentials from the environment.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use quire_store::Key;

use crate::error::{Result, S3Error};

/// `s3://bucket[/prefix]`: a bucket (S3's naming rules: 3 to 63 lowercase letters, digits,
/// dots and hyphens) and an optional key prefix every object goes under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Url {
    bucket: String,
    prefix: Option<Key>,
}

impl S3Url {
    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key prefix, if any.
    pub fn prefix(&self) -> Option<&Key> {
        self.prefix.as_ref()
    }

    /// This URL with `rel` appended to its prefix (tests give each run a prefix of its own).
    pub fn with_subprefix(&self, rel: &str) -> Result<Self> {
        let joined = match &self.prefix {
            Some(prefix) => prefix.join(rel),
            None => Key::new(rel),
        };
        Ok(Self {
            bucket: self.bucket.clone(),
            prefix: Some(joined.map_err(|reason| S3Error::Url { reason })?),
        })
    }
}

impl FromStr for S3Url {
    type Err = S3Error;

    fn from_str(text: &str) -> Result<Self> {
        let bad = |reason: &str| S3Error::Url {
            reason: reason.into(),
        };
        let rest = text
            .strip_prefix("s3://")
            .ok_or_else(|| bad("expected s3://bucket[/prefix]"))?;
        let (bucket, prefix) = match rest.split_once('/') {
            Some((bucket, prefix)) => (bucket, prefix.trim_end_matches('/')),
            None => (rest, ""),
        };
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid_bucket {
            return Err(bad(
                "the bucket must be 3 to 63 lowercase letters, digits, dots and hyphens",
            ));
        }
        let prefix = match prefix {
            "" => None,
            prefix => Some(Key::new(prefix).map_err(|reason| S3Error::Url { reason })?),
        };
        Ok(Self {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(prefix) => write!(f, "s3://{}/{prefix}", self.bucket),
            None => write!(f, "s3://{}", self.bucket),
        }
    }
}

/// Static credentials. `Debug` never shows the secret or the session token.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

impl Credentials {
    /// The environment variables read, as AWS's own tools name them.
    pub const ENV: [&'static str; 3] = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
    ];

    /// Credentials given explicitly.
    pub fn new(access_key_id: &str, secret_access_key: &str, session_token: Option<&str>) -> Self {
        Self {
            access_key_id: access_key_id.to_owned(),
            secret_access_key: secret_access_key.to_owned(),
            session_token: session_token.map(str::to_owned),
        }
    }

    /// `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` (both required), and
    /// `AWS_SESSION_TOKEN` if set. Nothing else is consulted: no instance metadata service,
    /// no profile files.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match (var(Self::ENV[0]), var(Self::ENV[1])) {
            (Some(id), Some(secret)) => Ok(Self::new(&id, &secret, var(Self::ENV[2]).as_deref())),
            _ => Err(S3Error::Credentials {
                reason: format!(
                    "set {} and {} in the environment ({} too for temporary credentials)",
                    Self::ENV[0],
                    Self::ENV[1],
                    Self::ENV[2]
                ),
            }),
        }
    }

    pub(crate) fn parts(&self) -> (&str, &str, Option<&str>) {
        (
            &self.access_key_id,
            &self.secret_access_key,
            self.session_token.as_deref(),
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, ..)", self.access_key_id)
    }
}

/// How long a request may take and how often it is retried, so every operation ends in
/// bounded time: at most `retries + 1` attempts of at most `request` each (connecting
/// included), within `retry_window`, with backoff between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to the store.
    pub connect: Duration,
    /// One request, its body included (reads are ranged, so a request carries at most
    /// [`crate::RANGE_BYTES`]).
    pub request: Duration,
    /// Retries of a failed request (transport errors, timeouts, 5xx).
    pub retries: usize,
    /// No retry starts later than this after the first attempt.
    pub retry_window: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
            retries: 3,
            retry_window: Duration::from_secs(60),
        }
    }
}

/// A validated store configuration (the credentials come separately, from the environment:
/// a configuration can be shown and compared).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// Bucket and prefix.
    pub url: S3Url,
    /// An S3-compatible endpoint (`http://127.0.0.1:8333`); `None`: AWS.
    pub endpoint: Option<String>,
    /// The region to sign for.
    pub region: String,
    /// Bounds on every request.
    pub timeouts: Timeouts,
}

impl S3Config {
    /// The store at `url`, checked: the endpoint must be an `http://` or `https://` URL
    /// without credentials or a path; the region defaults to `us-east-1`.
    pub fn new(url: &str, endpoint: Option<&str>, region: Option<&str>) -> Result<Self> {
        let url: S3Url = url.parse()?;
        if let Some(endpoint) = endpoint {
            check_endpoint(endpoint)?;
        }
        let region = region.unwrap_or("us-east-1");
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(S3Error::Setting {
                field: "region",
                reason: format!("{region:?} is not a region name"),
            });
        }
        Ok(Self {
            url,
            endpoint: endpoint.map(|e| e.trim_end_matches('/').to_owned()),
            region: region.to_owned(),
            timeouts: Timeouts::default(),
        })
    }
}

fn check_endpoint(endpoint: &str) -> Result<()> {
    let bad = |reason: &str| S3Error::Setting {
        field: "endpoint",
        reason: reason.into(),
    };
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("expected http://host[:port] or https://host[:port]"))?;
    let authority = rest.trim_end_matches('/');
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return Err(bad(
            "expected http://host[:port] or https://host[:port], without credentials or a path",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_settings_are_checked() {
        let url: S3Url = "s3://quire-art/team/prod/".parse().expect("url");
        assert_eq!(
            (url.bucket(), url.to_string()),
            ("quire-art", "s3://quire-art/team/prod".into())
        );
        assert_eq!("s3://bkt".parse::<S3Url>().expect("url").prefix(), None);
        for bad in [
            "s3:/x",
            "file:///x",
            "s3://UPPER",
            "s3://ab",
            "s3://b_c/x",
            "s3://bkt/../x",
            "s3://bkt/a b",
        ] {
            assert!(bad.parse::<S3Url>().is_err(), "{bad}");
        }
        let creds = Credentials::new("AKIA", "s3cret", Some("tok3n"));
        assert!(
            !format!("{creds:?}").contains("s3cret") && !format!("{creds:?}").contains("tok3n")
        );
        let ok = S3Config::new("s3://bkt", Some("http://127.0.0.1:8333/"), None);
        let ok = ok.expect("config");
        assert_eq!(
            (ok.endpoint.as_deref(), ok.region.as_str()),
            (Some("http://127.0.0.1:8333"), "us-east-1")
        );
        for (endpoint, region) in [
            (Some("ftp://h"), None),
            (Some("http://user:pw@h"), None),
            (Some("http://h/path"), None),
            (None, Some("us east")),
        ] {
            let err = S3Config::new("s3://bkt", endpoint, region).expect_err("bad");
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }
}
