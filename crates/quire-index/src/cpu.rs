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
        let mut x = 0u64;
        let busy = std::time::Instant::now();
        while busy.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let worked = clock.elapsed_us() - slept;
        assert!(slept < 10_000, "sleeping cost {slept} us of CPU");
        assert!(worked > 10_000, "30 ms of work read {worked} us");
    }
}
