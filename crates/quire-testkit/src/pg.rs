//! Fresh databases on the test PostgreSQL ([`crate::postgres`]), one per call, so tests never
//! share registry state.

/// The URL of a new, empty database on the test server; `None` (skip) when there is no
/// server, a panic under CI.
pub fn fresh_database() -> Option<String> {
    let base = crate::postgres()?;
    let name = crate::paths::unique("quire_t");
    with_client(&base, async |client| {
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    });
    Some(with_database(&base, &name))
}

/// `url` with its database replaced by `db` (query options kept).
pub fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// url");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let query = path
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{scheme}://{authority}/{db}{query}")
}

/// Run `f` with a client of the database at `url` on a runtime of its own.
fn with_client<T>(url: &str, f: impl AsyncFnOnce(&tokio_postgres::Client) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("the test PostgreSQL at {url}: {e}"));
        let driver = tokio::spawn(connection);
        let out = f(&client).await;
        drop(client);
        let _ = driver.await;
        out
    })
}

/// Kill every other session on the database at `url` (`pg_terminate_backend`), as a
/// database restart or a network cut would: how many went.
pub fn terminate_sessions(url: &str) -> u64 {
    with_client(url, async |client| {
        let rows = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("pg_terminate_backend: {e}"));
        rows.len() as u64
    })
}

/// The one `bigint` that `sql` selects on the database at `url` (a count, say).
pub fn scalar(url: &str, sql: &str) -> i64 {
    with_client(url, async |client| {
        client
            .query_one(sql, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    })
}

/// A PostgreSQL server of one test's own (`scripts/test-services own-postgres`), for a test
/// that kills it with `kill -9` and starts it again; stopped and removed when dropped.
pub struct OwnServer {
    dir: std::path::PathBuf,
    /// Its URL (database `postgres`).
    pub url: String,
}

impl OwnServer {
    /// Start one; `None` (skip) without the test services, a panic under CI.
    pub fn start() -> Option<Self> {
        crate::postgres()?;
        let dir =
            std::path::PathBuf::from(format!("/tmp/quire-own-pg.{}", crate::paths::unique("s")));
        let url = own_postgres("start", &dir);
        Some(Self { dir, url })
    }

    /// `kill -9` of the server (the postmaster; its backends follow it).
    pub fn kill(&self) {
        let pid_file = self.dir.join("data/postmaster.pid");
        let text = std::fs::read_to_string(&pid_file).expect("the server's pid file");
        let pid = text.lines().next().expect("a pid").trim().to_owned();
        let killed = std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -9 {pid}");
    }

    /// Start it again after [`OwnServer::kill`], on the same port (crash recovery runs).
    pub fn restart(&self) {
        assert_eq!(own_postgres("start", &self.dir), self.url);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        own_postgres("stop", &self.dir);
    }
}

/// `scripts/test-services own-postgres WHAT DIR`: what it printed.
fn own_postgres(what: &str, dir: &std::path::Path) -> String {
    let out = std::process::Command::new(crate::workspace().join("scripts/test-services"))
        .args(["own-postgres", what])
        .arg(dir)
        .output()
        .expect("scripts/test-services");
    assert!(
        out.status.success(),
        "test-services own-postgres {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
