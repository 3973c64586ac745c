//! What the server records of its traffic (sampled requests, feedback) on their way to the
//! registry: one bounded queue, so no request waits on a registry write (a full queue drops and
//! counts), and one writer task that stores them in batches and enforces retention.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use quire_release::outcome::FeedbackRecord;
use quire_release::sampling::{SampleRecord, micros};
use quire_store::Store;
use tokio::sync::{mpsc, watch};

/// One record for the registry.
#[derive(Debug)]
pub enum Observation {
    /// A sampled request.
    Sample(SampleRecord),
    /// Feedback on a request.
    Feedback(FeedbackRecord),
}

/// The bounded queue to the writer.
#[derive(Debug)]
pub struct Observations {
    queue: mpsc::Sender<Observation>,
    receiver: Mutex<Option<mpsc::Receiver<Observation>>>,
}

impl Observations {
    /// A queue of `capacity` records.
    pub fn new(capacity: usize) -> Self {
        let (queue, receiver) = mpsc::channel(capacity.max(1));
        Self {
            queue,
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// Queue `record`; false when the queue is full and it was dropped (never waits).
    pub fn offer(&self, record: Observation) -> bool {
        self.queue.try_send(record).is_ok()
    }

    /// The receiving end, for the one writer ([`write_observations`]).
    pub fn take_receiver(&self) -> Option<mpsc::Receiver<Observation>> {
        self.receiver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

/// How long each kind of record is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Sampled requests.
    pub samples: Duration,
    /// Feedback.
    pub feedback: Duration,
}

/// Records written to the registry in one transaction at most.
const BATCH: usize = 256;
/// How often expired records are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// How long the writer gathers records after the first of a batch before it commits: a steady
/// trickle of samples then costs a few transactions (and fsyncs) a second, not one per record.
const GATHER_FOR: Duration = Duration::from_millis(250);

/// Store one batch (blocking).
fn store_batch(store: &Store, batch: Vec<Observation>) -> quire_store::Result<()> {
    let (mut samples, mut feedback) = (Vec::new(), Vec::new());
    for record in batch {
        match record {
            Observation::Sample(s) => samples.push(s),
            Observation::Feedback(f) => feedback.push(f),
        }
    }
    if !samples.is_empty() {
        store.record_samples(&samples)?;
    }
    if !feedback.is_empty() {
        store.record_feedback(&feedback)?;
    }
    Ok(())
}

/// Delete what is older than its retention (blocking).
fn prune(store: &Store, retention: Retention) -> quire_store::Result<()> {
    let now = micros(jiff::Timestamp::now());
    let before = |d: Duration| now.saturating_sub(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    store.prune_samples(before(retention.samples))?;
    store.prune_feedback(before(retention.feedback))?;
    Ok(())
}

/// Write queued records to the registry in batches, and delete expired ones now and then, until
/// `stop` turns true (or its sender is gone); then write what is queued and return.
pub async fn write_observations(
    store: Arc<Store>,
    mut queue: mpsc::Receiver<Observation>,
    retention: Retention,
    mut stop: watch::Receiver<bool>,
) {
    let mut prune_tick = tokio::time::interval(PRUNE_EVERY);
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            received = queue.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
            }
            _ = prune_tick.tick() => {
                let store = store.clone();
                let pruned = tokio::task::spawn_blocking(move || prune(&store, retention)).await;
                if !matches!(pruned, Ok(Ok(()))) {
                    tracing::warn!("could not delete expired samples or feedback");
                }
                continue;
            }
            _ = stop.changed() => {}
        }
        let done = complete(&mut queue, &mut batch, &mut stop).await;
        for batch in in_batches(batch) {
            let store = store.clone();
            let written = tokio::task::spawn_blocking(move || store_batch(&store, batch)).await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::error!("could not store sampled requests or feedback");
            }
        }
        if done {
            return;
        }
    }
}

/// Complete a batch: [`gather`], and once stopping, close the queue and take everything still
/// in it. Returns whether the writer is stopping.
async fn complete<T>(
    queue: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    gather(queue, batch, stop).await;
    let stopping = *stop.borrow() || stop.has_changed().is_err();
    if stopping {
        queue.close();
        while queue.recv_many(batch, BATCH).await > 0 {}
    }
    stopping
}

/// Add to `batch` what arrives within [`GATHER_FOR`], up to [`BATCH`] records; returns early
/// when `stop` changes (the caller then takes the rest).
async fn gather<T>(
    queue: &mut mpsc::Receiver<T>,
    batch: &mut Vec<T>,
    stop: &mut watch::Receiver<bool>,
) {
    let deadline = tokio::time::Instant::now() + GATHER_FOR;
    while batch.len() < BATCH && !*stop.borrow() {
        tokio::select! {
            received = queue.recv_many(batch, BATCH - batch.len()) => {
                if received == 0 {
                    return;
                }
            }
            () = tokio::time::sleep_until(deadline) => return,
            _ = stop.changed() => return,
        }
    }
}

/// `records` split into transactions of at most [`BATCH`].
fn in_batches<T>(mut records: Vec<T>) -> Vec<Vec<T>> {
    let mut batches = Vec::new();
    while records.len() > BATCH {
        let rest = records.split_off(BATCH);
        batches.push(std::mem::replace(&mut records, rest));
    }
    if !records.is_empty() {
        batches.push(records);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_batch_gathers_for_its_time_from_the_first_record() {
        let (tx, mut rx) = mpsc::channel::<usize>(1024);
        let (_stop_tx, mut stop) = watch::channel(false);
        // One record every 40 ms for 600 ms: a batch takes those of its first 250 ms (a timer
        // restarted by each record would take them all).
        let sender = tokio::spawn(async move {
            for i in 0..15 {
                tx.send(i).await.unwrap();
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
            tokio::time::sleep(GATHER_FOR).await;
            for i in 0..300 {
                tx.send(100 + i).await.unwrap();
            }
        });
        let mut batch = vec![rx.recv().await.unwrap()];
        assert!(!complete(&mut rx, &mut batch, &mut stop).await);
        assert_eq!(batch, (0..=6).collect::<Vec<_>>(), "one commit per 250 ms");
        let mut rest = Vec::new();
        while rest.len() < 8 {
            rest.push(rx.recv().await.unwrap());
        }
        let mut batch = vec![rx.recv().await.unwrap()];
        assert_eq!(batch, [100]);
        complete(&mut rx, &mut batch, &mut stop).await;
        assert_eq!(batch.len(), BATCH, "a full batch commits at once");
        sender.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_takes_everything_still_queued() {
        // Stopped before the batch is completed: more than a batch is queued.
        let (tx, mut rx) = mpsc::channel::<usize>(1024);
        let (stop_tx, mut stop) = watch::channel(false);
        for i in 0..300 {
            tx.try_send(i).unwrap();
        }
        stop_tx.send(true).unwrap();
        let mut batch = Vec::new();
        assert!(complete(&mut rx, &mut batch, &mut stop).await);
        assert_eq!(batch, (0..300).collect::<Vec<_>>());
        assert!(tx.try_send(300).is_err(), "the queue is closed");

        // Stopped while gathering, with records sent right after the stop.
        let (tx, mut rx) = mpsc::channel::<usize>(1024);
        let (stop_tx, mut stop) = watch::channel(false);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            tx.try_send(1).unwrap();
            stop_tx.send(true).unwrap();
            for i in 2..=20 {
                tx.try_send(i).unwrap();
            }
        });
        let start = tokio::time::Instant::now();
        let mut batch = vec![0];
        assert!(complete(&mut rx, &mut batch, &mut stop).await);
        assert_eq!(batch, (0..=20).collect::<Vec<_>>());
        assert!(start.elapsed() < GATHER_FOR, "{:?}", start.elapsed());

        // The stop's sender gone counts as a stop.
        let (tx, mut rx) = mpsc::channel::<usize>(1024);
        let (stop_tx, mut stop) = watch::channel(false);
        tx.try_send(7).unwrap();
        drop(stop_tx);
        let mut batch = Vec::new();
        assert!(complete(&mut rx, &mut batch, &mut stop).await);
        assert_eq!(batch, [7]);
    }

    #[test]
    fn transactions_hold_at_most_a_batch() {
        let sizes = |n: usize| {
            in_batches((0..n).collect())
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(BATCH), [BATCH]);
        assert_eq!(sizes(2 * BATCH + 3), [BATCH, BATCH, 3]);
        let joined: Vec<usize> = in_batches((0..600).collect()).concat();
        assert_eq!(joined, (0..600).collect::<Vec<_>>());
    }
}
