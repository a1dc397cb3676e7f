//! Which waiting job gets the next free worker: a fair share of bot CPU between principals.
//!
//! Jobs wait in one queue per principal (the owner of the channel whose bot runs). When a
//! worker frees up, it goes to the waiting principal that used the least CPU recently (usage
//! decays with a half-life of [`HALF_LIFE`]); within a principal, jobs keep their order.
//!
//! One more rule makes the share hold when every worker is busy: the last idle worker never goes
//! to a principal that already has a job running. A principal with many busy bots therefore
//! occupies at most all workers but one, and anyone else's job starts at once instead of
//! waiting behind a full budget of someone else's work.
//!
//! Pure: the caller passes the time, so the policy is tested without a clock or a process.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How fast past CPU use is forgotten.
pub const HALF_LIFE: Duration = Duration::from_secs(2);

/// Whose work a job is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    /// The principal that owns the channel (it pays for its bots).
    pub principal: String,
    /// The channel, for accounting.
    pub channel: String,
}

/// CPU used, decaying over time.
#[derive(Debug, Clone, Copy)]
struct Decayed {
    nanos: f64,
    at: Instant,
}

impl Decayed {
    fn value_at(self, now: Instant) -> f64 {
        let age = now.saturating_duration_since(self.at).as_secs_f64();
        self.nanos * 0.5f64.powf(age / HALF_LIFE.as_secs_f64())
    }
}

/// The policy's state: waiting jobs, running counts, and CPU used.
#[derive(Debug)]
pub struct Fair<T> {
    waiting: HashMap<String, VecDeque<(u64, T)>>,
    running: HashMap<String, usize>,
    recent: HashMap<String, Decayed>,
    /// CPU used in all, per principal and per channel, since the start.
    total_by_principal: HashMap<String, Duration>,
    total_by_channel: HashMap<String, Duration>,
    next_ticket: u64,
}

impl<T> Default for Fair<T> {
    fn default() -> Self {
        Fair {
            waiting: HashMap::new(),
            running: HashMap::new(),
            recent: HashMap::new(),
            total_by_principal: HashMap::new(),
            total_by_channel: HashMap::new(),
            next_ticket: 0,
        }
    }
}

impl<T> Fair<T> {
    /// Queues a job of `principal`.
    pub fn push(&mut self, principal: &str, job: T) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.waiting
            .entry(principal.to_owned())
            .or_default()
            .push_back((ticket, job));
    }

    /// Jobs waiting, all principals together.
    pub fn waiting(&self) -> usize {
        self.waiting.values().map(VecDeque::len).sum()
    }

    /// Takes the job that should run next on one of `idle` free workers, and counts it as
    /// running. `None` when nothing waits, or only principals the last idle worker is kept from.
    pub fn pick(&mut self, idle: usize, now: Instant) -> Option<(String, T)> {
        if idle == 0 {
            return None;
        }
        let chosen = self
            .waiting
            .iter()
            .filter(|(principal, _)| idle > 1 || self.running_of(principal) == 0)
            .filter_map(|(principal, queue)| {
                let (ticket, _) = queue.front()?;
                let used = self.recent.get(principal).map_or(0.0, |d| d.value_at(now));
                Some((used, *ticket, principal.clone()))
            })
            .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))?
            .2;
        let queue = self.waiting.get_mut(&chosen)?;
        let (_, job) = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&chosen);
        }
        *self.running.entry(chosen.clone()).or_default() += 1;
        Some((chosen, job))
    }

    /// Records that a job of `account` ended after using `cpu`.
    pub fn finished(&mut self, account: &Account, cpu: Duration, now: Instant) {
        if let Some(running) = self.running.get_mut(&account.principal) {
            *running = running.saturating_sub(1);
            if *running == 0 {
                self.running.remove(&account.principal);
            }
        }
        let recent = self
            .recent
            .entry(account.principal.clone())
            .or_insert(Decayed {
                nanos: 0.0,
                at: now,
            });
        *recent = Decayed {
            nanos: recent.value_at(now) + cpu.as_nanos() as f64,
            at: now,
        };
        *self
            .total_by_principal
            .entry(account.principal.clone())
            .or_default() += cpu;
        *self
            .total_by_channel
            .entry(account.channel.clone())
            .or_default() += cpu;
        // Forget principals whose recent use has faded to nothing, so the map stays small.
        self.recent
            .retain(|_, decayed| decayed.value_at(now) >= 1_000.0);
    }

    /// Removes every waiting job, for a shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        self.waiting
            .drain()
            .flat_map(|(_, queue)| queue.into_iter().map(|(_, job)| job))
            .collect()
    }

    /// CPU used in all by `principal`'s bots.
    pub fn total_of_principal(&self, principal: &str) -> Duration {
        self.total_by_principal
            .get(principal)
            .copied()
            .unwrap_or_default()
    }

    /// CPU used in all by the bots of `channel`.
    pub fn total_of_channel(&self, channel: &str) -> Duration {
        self.total_by_channel
            .get(channel)
            .copied()
            .unwrap_or_default()
    }

    fn running_of(&self, principal: &str) -> usize {
        self.running.get(principal).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(principal: &str) -> Account {
        Account {
            principal: principal.to_owned(),
            channel: format!("{principal}-channel"),
        }
    }

    #[test]
    fn jobs_of_one_principal_keep_their_order() {
        let mut fair = Fair::default();
        let now = Instant::now();
        for job in 0..3 {
            fair.push("alice", job);
        }
        let order: Vec<i32> = (0..3)
            .map(|_| {
                let (_, job) = fair.pick(3, now).expect("waiting");
                job
            })
            .collect();
        assert_eq!(order, [0, 1, 2]);
        assert_eq!(fair.pick(3, now), None);
    }

    #[test]
    fn the_last_idle_worker_is_kept_for_principals_with_nothing_running() {
        let mut fair = Fair::default();
        let now = Instant::now();
        fair.push("busy", "b1");
        fair.push("busy", "b2");
        assert_eq!(fair.pick(2, now), Some(("busy".to_owned(), "b1")));
        // One idle worker left, and `busy` already runs a job: it waits.
        assert_eq!(fair.pick(1, now), None);
        fair.push("quiet", "q1");
        assert_eq!(fair.pick(1, now), Some(("quiet".to_owned(), "q1")));
        // With a single worker in all, a principal with nothing running always gets it.
        let mut single = Fair::default();
        single.push("busy", 1);
        assert_eq!(single.pick(1, now), Some(("busy".to_owned(), 1)));
    }

    #[test]
    fn the_principal_that_used_less_cpu_goes_first() {
        let mut fair = Fair::default();
        let start = Instant::now();
        fair.push("heavy", "h1");
        let (_, _) = fair.pick(4, start).expect("runs");
        fair.finished(&account("heavy"), Duration::from_millis(50), start);
        fair.push("heavy", "h2");
        fair.push("light", "l1");
        assert_eq!(fair.pick(4, start), Some(("light".to_owned(), "l1")));
        assert_eq!(fair.pick(4, start), Some(("heavy".to_owned(), "h2")));
    }

    #[test]
    fn past_use_fades() {
        let mut fair: Fair<&str> = Fair::default();
        let start = Instant::now();
        fair.push("a", "a1");
        fair.pick(2, start);
        fair.finished(&account("a"), Duration::from_millis(100), start);
        let later = start + HALF_LIFE;
        let recent = fair.recent["a"].value_at(later);
        assert!((recent - 50e6).abs() < 1e3, "{recent}");
        // Long after, the entry is forgotten.
        fair.finished(&account("b"), Duration::ZERO, start + HALF_LIFE * 60);
        assert!(!fair.recent.contains_key("a"));
        assert_eq!(fair.total_of_principal("a"), Duration::from_millis(100));
        assert_eq!(
            fair.total_of_channel("a-channel"),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_flood_from_one_principal_does_not_delay_another_by_more_than_one_pick() {
        let mut fair = Fair::default();
        let now = Instant::now();
        for job in 0..100 {
            fair.push("flood", job);
        }
        // Two workers: the flood takes one; the other stays idle for anyone else.
        assert!(fair.pick(2, now).is_some());
        assert_eq!(fair.pick(1, now), None);
        fair.push("echo", 1000);
        assert_eq!(fair.pick(1, now), Some(("echo".to_owned(), 1000)));
        assert_eq!(fair.waiting(), 99);
        assert_eq!(fair.drain().len(), 99);
        assert_eq!(fair.waiting(), 0);
    }
}
