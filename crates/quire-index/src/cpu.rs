//! Thread CPU time: what a step of a query cost on the thread that ran it (the thread CPU
//! clock, `CLOCK_THREAD_CPUTIME_ID`), as opposed to wall time, which also counts waiting for a
//! core. Cost per successful query is counted in it.

use cpu_time::ThreadTime;

/// A running measurement of this thread's CPU time; reads as zero where the clock is missing.
#[derive(Debug)]
pub struct CpuClock(Option<ThreadTime>);

impl CpuClock {
    /// Start measuring the calling thread.
    pub fn start() -> Self {
        Self(ThreadTime::try_now().ok())
    }

    /// CPU microseconds this thread spent since [`CpuClock::start`] (call it on the same thread).
    pub fn elapsed_us(&self) -> u64 {
        self.0
            .as_ref()
            .and_then(|t| t.try_elapsed().ok())
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_counts_work_not_sleep() {
        let clock = CpuClock::start();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let slept = clock.elapsed_us();
        assert!(slept < 10_000, "sleeping cost {slept} us of CPU");
        // Work until the clock has counted 20 ms more; on a loaded machine that takes longer
        // than 20 ms of wall time, never forever.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while clock.elapsed_us() < slept + 20_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "the thread CPU clock does not advance with work"
            );
        }
        assert!(started.elapsed() >= std::time::Duration::from_millis(19));
    }
}
