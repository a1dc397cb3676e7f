//! The caps one bot event runs under, with their defaults.

use std::time::Duration;

/// Largest bot source accepted, in bytes of UTF-8.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// Most bytes one `ctx.random_bytes` call returns.
pub const MAX_RANDOM_BYTES: usize = 1024;

/// Caps applied to every event. Each event gets a fresh runtime, so none of them carries over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// CPU-time budget for the whole event: compiling the source, the constructor, the handler
    /// and any promise jobs it leaves behind. Counted on the thread that runs the event, so a
    /// busy machine slows a bot without failing it. The runtimes stop bot code at the budget;
    /// the worker's watchdog kills whatever they cannot stop.
    pub cpu: Duration,
    /// Heap cap of the runtime, engine overhead included (a fresh runtime uses ~250 KiB).
    pub memory_bytes: usize,
    /// Native stack the engine may use. The calling thread needs at least this much free stack
    /// plus some margin; a Tokio blocking-pool thread (2 MiB) has plenty. Python bots run on a
    /// thread of their own and get one level of recursion per 2 KiB of this (256 by default,
    /// from 64 to 1000).
    pub stack_bytes: usize,
    /// Most posts (public and private) in one event.
    pub max_posts: usize,
    /// Largest state, in bytes of compact JSON.
    pub max_state_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            memory_bytes: 16 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            max_posts: 20,
            max_state_bytes: 64 * 1024,
        }
    }
}

/// The moment an event's CPU budget runs out, on the calling thread's CPU clock.
#[derive(Debug, Clone, Copy)]
pub struct CpuDeadline(Duration);

impl CpuDeadline {
    /// `budget` of CPU time from now, for the calling thread.
    pub fn after(budget: Duration) -> Self {
        CpuDeadline(thread_cpu_time() + budget)
    }

    /// Whether the calling thread has used up the budget.
    pub fn passed(self) -> bool {
        thread_cpu_time() >= self.0
    }
}

/// CPU time the calling thread has used.
pub fn thread_cpu_time() -> Duration {
    let time = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(time.tv_sec).unwrap_or(0),
        u32::try_from(time.tv_nsec).unwrap_or(0),
    )
}
