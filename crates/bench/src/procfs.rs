//! Figures about a process read from Linux's /proc: resident memory (`VmRSS`, `VmHWM`) and CPU
//! time, plus the wait for a server to go quiet. Elsewhere these readings are simply absent.

use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Clock ticks per second in /proc/<pid>/stat (`USER_HZ`), 100 on every mainstream Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// A memory reading, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Resident set size now.
    pub rss_kib: u64,
    /// Peak resident set size since the process started.
    pub peak_kib: u64,
}

/// Reads the memory figures of `pid`.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(Memory {
        rss_kib: status_kib(&status, "VmRSS")?,
        peak_kib: status_kib(&status, "VmHWM")?,
    })
}

/// The value of a `Field:   1234 kB` line of /proc/<pid>/status.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// User plus system CPU time of `pid` (or of this process), in clock ticks.
pub fn cpu_ticks(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_owned(),
    };
    stat_cpu_ticks(&std::fs::read_to_string(path).ok()?)
}

/// utime + stime from the text of /proc/<pid>/stat. The command name may hold spaces and
/// parentheses, so fields are counted after its last `)`: state is field 3, utime 14, stime 15.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(user + system)
}

/// CPU used by the server and by this process over a phase.
pub struct CpuMeter {
    server_pid: Option<u32>,
    server_start: Option<u64>,
    own_start: Option<u64>,
    started: Instant,
}

/// CPU use over a phase, in percent of one core.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuUse {
    pub server: Option<f64>,
    pub bench: Option<f64>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> Self {
        Self {
            server_pid,
            server_start: server_pid.and_then(|pid| cpu_ticks(Some(pid))),
            own_start: cpu_ticks(None),
            started: Instant::now(),
        }
    }

    pub fn finish(&self) -> CpuUse {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let percent = |start: Option<u64>, now: Option<u64>| {
            Some(now?.saturating_sub(start?) as f64 / TICKS_PER_SECOND / secs * 100.0)
        };
        CpuUse {
            server: percent(
                self.server_start,
                self.server_pid.and_then(|pid| cpu_ticks(Some(pid))),
            ),
            bench: percent(self.own_start, cpu_ticks(None)),
        }
    }
}

impl CpuUse {
    /// `CPU: server 95% bench 80% (of 200%)`, or empty when nothing could be read.
    pub fn brief(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) * 100;
        match (self.server, self.bench) {
            (Some(server), Some(bench)) => {
                format!("CPU: server {server:.0}%, bench {bench:.0}% (of {cores}%)")
            }
            (None, Some(bench)) => format!("CPU: bench {bench:.0}% (of {cores}%)"),
            _ => String::new(),
        }
    }
}

/// Waits at least `min`, then (when the server's pid is known) until the server's CPU use over
/// a 200 ms window drops to about 10% of a core, or `max` has passed: the sign that every request
/// sent has been read and is parked. Returns the time waited.
pub async fn settle(server_pid: Option<u32>, min: Duration, max: Duration) -> Duration {
    const WINDOW: Duration = Duration::from_millis(200);
    const QUIET_TICKS: u64 = 2;
    let started = Instant::now();
    sleep(min).await;
    let Some(pid) = server_pid else {
        return started.elapsed();
    };
    let mut before = cpu_ticks(Some(pid));
    while started.elapsed() < max {
        sleep(WINDOW).await;
        let now = cpu_ticks(Some(pid));
        match (before, now) {
            (Some(before), Some(now)) if now.saturating_sub(before) <= QUIET_TICKS => break,
            (_, None) => break,
            _ => before = now,
        }
    }
    started.elapsed()
}

/// Waits until the resident memory of `pid` stops falling: less than 1% over a second, or
/// `max` has passed. The allocator hands the memory of a burst back to the system over a few
/// seconds, and the figure that matters is the one it settles at. Returns the reading and the
/// time waited.
pub async fn settle_memory(pid: Option<u32>, max: Duration) -> (Option<Memory>, Duration) {
    const WINDOW: Duration = Duration::from_secs(1);
    let started = Instant::now();
    let Some(pid) = pid else {
        return (None, Duration::ZERO);
    };
    let mut before = memory(pid);
    while started.elapsed() < max {
        sleep(WINDOW).await;
        let now = memory(pid);
        match (before, now) {
            (Some(before), Some(now)) if now.rss_kib * 100 >= before.rss_kib * 99 => {
                return (Some(now), started.elapsed());
            }
            (_, None) => return (None, started.elapsed()),
            _ => before = now,
        }
    }
    (before, started.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status = "Name:\tmcp-multiplayer\nVmPeak:\t  123456 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   20480 kB\nThreads:\t3\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(20480));
        assert_eq!(status_kib(status, "VmHWM"), Some(40960));
        assert_eq!(status_kib(status, "VmSwap"), None);
        assert_eq!(status_kib(status, "Vm"), None);
    }

    #[test]
    fn stat_cpu_fields_survive_odd_names() {
        let stat = "4242 (mcp (multi) player) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 3 0 100 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(175));
        assert_eq!(stat_cpu_ticks("4242 (x) S 1"), None);
    }

    #[test]
    fn this_process_can_be_read_on_linux() {
        if cfg!(target_os = "linux") {
            let own = std::process::id();
            assert!(memory(own).is_some_and(|m| m.rss_kib > 0 && m.peak_kib >= m.rss_kib));
            assert!(cpu_ticks(None).is_some());
        }
    }
}
