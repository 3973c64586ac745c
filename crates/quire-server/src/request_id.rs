//! Request ids: unique in a process (a counter) and unguessable (the counter hashed with a key
//! drawn from the operating system at start), so a caller cannot name another caller's request
//! in feedback by guessing, and two server runs never hand out the same id.

use std::io::Read;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The process's secret key for request ids.
fn key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut key));
        if read.is_err() {
            // No OS randomness: ids stay unique (the counter) and differ per run, but are
            // guessable by whoever knows the start time and process id.
            tracing::warn!("no /dev/urandom: request ids are unique but guessable");
            let seed = format!("{:?} {}", std::time::SystemTime::now(), std::process::id());
            key = *blake3::hash(seed.as_bytes()).as_bytes();
        }
        key
    })
}

/// A new request id: `rq-` and 32 hex characters (128 bits).
pub fn next_request_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let hash = blake3::keyed_hash(key(), &n.to_le_bytes());
    format!("rq-{}", &hash.to_hex()[..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_well_formed() {
        let ids: std::collections::BTreeSet<String> =
            (0..1000).map(|_| next_request_id()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(
            ids.iter().all(|id| id.len() == 35 && id.starts_with("rq-")),
            "{ids:?}"
        );
    }
}
