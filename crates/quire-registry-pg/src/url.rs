//! [`PgUrl`]: a checked PostgreSQL connection URL that never shows its password.

use std::fmt;
use std::str::FromStr;

use tokio_postgres::config::Host;

use crate::error::PgError;

/// A PostgreSQL connection URL, `postgres://[user[:password]@]host[:port][,host2[:port2]...]/db
/// [?option=value...]` (several hosts: tried in order, for failover; add
/// `target_session_attrs=read-write` to skip standbys). `Display` and `Debug` show it without
/// the password or options, so it can be logged and put in error messages.
#[derive(Clone)]
pub struct PgUrl {
    config: tokio_postgres::Config,
    shown: String,
}

impl PgUrl {
    /// The parsed connection settings.
    pub(crate) fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The URL without credentials, e.g. `postgres://quire@db1:5432,db2:5432/quire`.
    pub fn redacted(&self) -> &str {
        &self.shown
    }
}

impl FromStr for PgUrl {
    type Err = PgError;

    fn from_str(text: &str) -> Result<Self, PgError> {
        if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
            return Err(PgError::Url {
                reason: "expected postgres://[user[:password]@]host[:port]/database".into(),
            });
        }
        let config: tokio_postgres::Config = text.parse().map_err(|e| PgError::Url {
            reason: format!("not a PostgreSQL connection url: {e}"),
        })?;
        if config.get_hosts().is_empty() {
            return Err(PgError::Url {
                reason: "names no host".into(),
            });
        }
        let shown = redact(&config);
        Ok(Self { config, shown })
    }
}

fn redact(config: &tokio_postgres::Config) -> String {
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let name = match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            };
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{name}:{port}")
        })
        .collect();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{db}", hosts.join(","))
}

impl fmt::Display for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgUrl({})", self.shown)
    }
}

impl PartialEq for PgUrl {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_their_password() {
        let url: PgUrl = "postgres://quire:s3cret@db1:6432,db2/registry?application_name=x"
            .parse()
            .expect("url");
        assert_eq!(
            url.to_string(),
            "postgres://quire@db1:6432,db2:5432/registry"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
        let plain: PgUrl = "postgresql://127.0.0.1/q".parse().expect("url");
        assert_eq!(plain.redacted(), "postgres://127.0.0.1:5432/q");
        for bad in ["redb", "mysql://x/y", "postgres://u:pw@h:notaport/db"] {
            let err = bad.parse::<PgUrl>().expect_err(bad).to_string();
            assert!(err.starts_with("registry url: "), "{err}");
            assert!(!err.contains("pw@"), "{err}");
        }
    }
}
