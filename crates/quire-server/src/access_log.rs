//! The access log file: one JSON line per request that reads documents (who, as whom, by which
//! mechanism, what), kept within a configured size and age (`[access_log]` in server.toml).
//!
//! The log is separate from the hash-chained audit log, which records changes: reads are far
//! more frequent and need retention, not a chain. The current file is `path`; past
//! `max_file_bytes` it is renamed to `path.<unix ms>` and a new one begun; rotated files older
//! than `max_age` or beyond the newest `max_files` are deleted. So the log never holds more
//! than `(max_files + 1) * max_file_bytes` (plus one line). Lines are appended with one write
//! each (no fsync: the log is as durable as the OS makes it); a failing write is reported in
//! the server log, never to the caller.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// How often, at most, rotated files are checked for age while no rotation happens.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// `[access_log]` as written in server.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAccessLog {
    path: PathBuf,
    #[serde(default = "default_max_file_mib")]
    max_file_mib: u64,
    #[serde(default = "default_max_files")]
    max_files: usize,
    #[serde(default = "default_max_age")]
    max_age: String,
}

fn default_max_file_mib() -> u64 {
    64
}

fn default_max_files() -> usize {
    10
}

fn default_max_age() -> String {
    "30d".into()
}

/// Where the access log goes and how much of it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// The current file (absolute); rotated ones sit beside it as `<name>.<unix ms>`.
    pub path: PathBuf,
    /// The current file is rotated once a line would take it past this.
    pub max_file_bytes: u64,
    /// Rotated files kept, newest first.
    pub max_files: usize,
    /// Rotated files older than this are deleted.
    pub max_age: Duration,
}

impl RawAccessLog {
    /// The checked settings; `Err` names the field and why.
    pub(crate) fn check(self) -> Result<AccessLogConfig, (&'static str, String)> {
        if !self.path.is_absolute() || self.path.file_name().is_none() {
            return Err((
                "access_log.path",
                format!(
                    "{:?} must be an absolute file path",
                    self.path.display().to_string()
                ),
            ));
        }
        if !(1..=4096).contains(&self.max_file_mib) {
            return Err((
                "access_log.max_file_mib",
                "must be between 1 and 4096".into(),
            ));
        }
        if !(1..=1000).contains(&self.max_files) {
            return Err(("access_log.max_files", "must be between 1 and 1000".into()));
        }
        let age = quire_core::spec::parse_duration_secs(&self.max_age)
            .map_err(|e| ("access_log.max_age", format!("{:?}: {e}", self.max_age)))?;
        if age == 0 {
            return Err(("access_log.max_age", "must be positive".into()));
        }
        Ok(AccessLogConfig {
            path: self.path,
            max_file_bytes: self.max_file_mib << 20,
            max_files: self.max_files,
            max_age: Duration::from_secs(age),
        })
    }
}

/// One access: a request that reads documents, allowed or refused.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct AccessEntry {
    /// When, RFC 3339 UTC.
    pub time: String,
    /// The RPC.
    pub rpc: String,
    /// The bearer token's name.
    pub token: String,
    /// Its role.
    pub role: String,
    /// How the effective principal was obtained (`bound`, `run_as`, `token`, `open`, `jwt`);
    /// absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mechanism: Option<String>,
    /// The principal the request read as; absent when refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The principal the request asserted.
    pub asserted: String,
    /// The index or alias read.
    pub resource: String,
    /// Whether the request was allowed to read.
    pub allowed: bool,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The open access log.
#[derive(Debug)]
pub struct AccessLog {
    config: AccessLogConfig,
    state: Mutex<State>,
    /// Whether the last write failed (so a failure is reported once, not per request).
    failing: AtomicBool,
}

#[derive(Debug)]
struct State {
    file: File,
    size: u64,
    pruned_at: SystemTime,
}

impl AccessLog {
    /// Open (or create) the current file and drop rotated files past the retention.
    pub fn open(config: AccessLogConfig) -> std::io::Result<Self> {
        let now = SystemTime::now();
        let file = append(&config.path)?;
        let size = file.metadata()?.len();
        let log = Self {
            config,
            state: Mutex::new(State {
                file,
                size,
                pruned_at: now,
            }),
            failing: AtomicBool::new(false),
        };
        log.prune(now)?;
        Ok(log)
    }

    /// Append `entry`; a failure is logged (once until writes succeed again).
    pub fn record(&self, entry: &AccessEntry) {
        let result = serde_json::to_vec(entry)
            .map_err(std::io::Error::other)
            .and_then(|mut line| {
                line.push(b'\n');
                self.append_at(&line, SystemTime::now())
            });
        match result {
            Ok(()) => self.failing.store(false, Ordering::Relaxed),
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(file = %self.config.path.display(), "access log write failed: {e}");
                }
            }
        }
    }

    /// Append one line at time `now`, rotating first when it would overfill the file.
    fn append_at(&self, line: &[u8], now: SystemTime) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.size > 0 && state.size + line.len() as u64 > self.config.max_file_bytes {
            let rotated = self.rotated_name(now);
            std::fs::rename(&self.config.path, rotated)?;
            state.file = append(&self.config.path)?;
            state.size = 0;
            state.pruned_at = now;
            self.prune(now)?;
        } else if now.duration_since(state.pruned_at).unwrap_or_default() >= PRUNE_EVERY {
            state.pruned_at = now;
            self.prune(now)?;
        }
        state.file.write_all(line)?;
        state.size += line.len() as u64;
        Ok(())
    }

    /// `path.<unix ms>`, one past the newest rotated file if that is not later (two rotations
    /// in one millisecond, or a clock set back).
    fn rotated_name(&self, now: SystemTime) -> PathBuf {
        let mut ms = unix_ms(now);
        if let Some((newest, _)) = self.rotated().last() {
            ms = ms.max(newest + 1);
        }
        suffixed(&self.config.path, ms)
    }

    /// The rotated files, oldest first, with their rotation time in unix ms.
    fn rotated(&self) -> Vec<(u64, PathBuf)> {
        let (Some(dir), Some(name)) = (self.config.path.parent(), self.config.path.file_name())
        else {
            return Vec::new();
        };
        let prefix = format!("{}.", name.to_string_lossy());
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let file = entry.file_name().to_string_lossy().into_owned();
                let ms = file.strip_prefix(&prefix)?;
                let ms = ms
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| ms.parse::<u64>().ok())??;
                Some((ms, entry.path()))
            })
            .collect();
        files.sort();
        files
    }

    /// Delete rotated files older than `max_age` at `now`, and all but the newest `max_files`.
    fn prune(&self, now: SystemTime) -> std::io::Result<()> {
        let oldest_kept = unix_ms(now).saturating_sub(self.config.max_age.as_millis() as u64);
        let files = self.rotated();
        let surplus = files.len().saturating_sub(self.config.max_files);
        for (i, (ms, path)) in files.iter().enumerate() {
            if i < surplus || *ms < oldest_kept {
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn suffixed(path: &Path, ms: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{ms}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn log(dir: &Path, max_file_bytes: u64, max_files: usize, max_age_secs: u64) -> AccessLog {
        AccessLog::open(AccessLogConfig {
            path: dir.join("access.jsonl"),
            max_file_bytes,
            max_files,
            max_age: Duration::from_secs(max_age_secs),
        })
        .unwrap()
    }

    fn files(dir: &Path) -> Vec<(String, u64)> {
        let mut names: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        names.sort();
        names
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    #[test]
    fn files_rotate_by_size_and_only_the_newest_are_kept() {
        let dir = tempfile::TempDir::new().unwrap();
        let log = log(dir.path(), 100, 3, 86_400);
        let line = [b'x'; 39]
            .iter()
            .copied()
            .chain(std::iter::once(b'\n'))
            .collect::<Vec<u8>>();
        for i in 0..40 {
            log.append_at(&line, at(i)).unwrap();
        }
        let kept = files(dir.path());
        // The current file and three rotated ones, each at most 100 bytes (two lines).
        assert_eq!(kept.len(), 4, "{kept:?}");
        assert!(kept.iter().all(|(_, size)| *size <= 100), "{kept:?}");
        assert_eq!(kept[0], ("access.jsonl".into(), 80));
        let rotated: Vec<&str> = kept[1..].iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            rotated,
            [
                "access.jsonl.1800000034000",
                "access.jsonl.1800000036000",
                "access.jsonl.1800000038000"
            ]
        );
    }

    #[test]
    fn rotated_files_past_their_age_are_deleted() {
        let dir = tempfile::TempDir::new().unwrap();
        let log = log(dir.path(), 10, 100, 3600);
        for i in 0..3 {
            log.append_at(b"0123456789\n", at(i * 1000)).unwrap();
        }
        assert_eq!(files(dir.path()).len(), 3, "two rotations so far");
        // Two hours on, both rotated files are older than an hour: the next check drops them.
        log.append_at(b"0123456789\n", at(2000 + 7200)).unwrap();
        let kept: Vec<String> = files(dir.path()).into_iter().map(|(n, _)| n).collect();
        assert_eq!(kept, ["access.jsonl", "access.jsonl.1800009200000"]);
        // Reopening keeps the young file and drops nothing else.
        drop(log);
        let reopened = AccessLog::open(AccessLogConfig {
            path: dir.path().join("access.jsonl"),
            max_file_bytes: 10,
            max_files: 100,
            max_age: Duration::from_secs(u64::from(u32::MAX)),
        })
        .unwrap();
        assert_eq!(reopened.state.lock().unwrap().size, 11);
    }

    #[test]
    fn entries_are_json_lines() {
        let dir = tempfile::TempDir::new().unwrap();
        let log = log(dir.path(), 1 << 20, 2, 60);
        let entry = AccessEntry {
            time: "2026-12-03T17:00:00Z".into(),
            rpc: "Retrieve".into(),
            token: "rag-app".into(),
            role: "reader".into(),
            mechanism: Some("jwt".into()),
            principal: Some("user:dana,group:eng".into()),
            asserted: "*".into(),
            resource: "handbook".into(),
            allowed: true,
            reason: None,
        };
        log.record(&entry);
        log.record(&AccessEntry {
            allowed: false,
            mechanism: None,
            principal: None,
            reason: Some("the end user's JWT has expired".into()),
            ..entry
        });
        let text = std::fs::read_to_string(dir.path().join("access.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["mechanism"], "jwt");
        assert_eq!(lines[0]["principal"], "user:dana,group:eng");
        assert_eq!(lines[1]["allowed"], false);
        assert!(lines[1].get("principal").is_none(), "{}", lines[1]);
    }
}
