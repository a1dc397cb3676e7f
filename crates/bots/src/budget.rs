//! The clock an event's time budget runs on: the CPU time of the thread running the event.
//!
//! The service runs bot events below the priority of request handling, so on a busy server an
//! event's wall time stretches while it waits for a core. Counting the thread's CPU time charges
//! a bot for the computing it does, not for the time the scheduler gave to others. A wall-clock
//! cap of [`WALL_FACTOR`] times the budget still ends an event that is starved of CPU. Where no
//! thread CPU clock is available, the budget is counted in wall time.

use std::time::{Duration, Instant};

/// How many times its budget an event may take in wall time, however little CPU it got.
pub const WALL_FACTOR: u32 = 10;

/// One event's budget, started when the event starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    cpu: Duration,
    cpu_at_start: Duration,
    started: Instant,
}

impl Budget {
    pub(crate) fn start(cpu: Duration) -> Self {
        Self {
            cpu,
            cpu_at_start: thread_cpu_time().unwrap_or_default(),
            started: Instant::now(),
        }
    }

    pub(crate) fn is_spent(&self) -> bool {
        let wall = self.started.elapsed();
        let used = thread_cpu_time().map_or(wall, |now| now.saturating_sub(self.cpu_at_start));
        used >= self.cpu || wall >= self.cpu.saturating_mul(WALL_FACTOR)
    }
}

/// CPU time this thread has used since it started.
#[cfg(target_os = "linux")]
fn thread_cpu_time() -> Option<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Some(Duration::new(
        u64::try_from(now.tv_sec).ok()?,
        u32::try_from(now.tv_nsec).ok()?,
    ))
}

#[cfg(not(target_os = "linux"))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleeping_event_spends_no_budget_until_the_wall_clock_cap() {
        let budget = Budget::start(Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(60));
        if cfg!(target_os = "linux") {
            assert!(!budget.is_spent(), "sleeping used no CPU");
        }
        std::thread::sleep(Duration::from_millis(150));
        assert!(budget.is_spent(), "past ten times the budget in wall time");
    }

    #[test]
    fn a_busy_event_spends_its_budget() {
        let budget = Budget::start(Duration::from_millis(20));
        let mut spins = 0_u64;
        while !budget.is_spent() {
            spins = std::hint::black_box(spins + 1);
        }
        assert!(spins > 0);
    }
}
