//! Who may make a request right now: a token bucket per principal, and a cap on how many syncs
//! one principal may have waiting at once (each holds a connection open).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use domain::{DomainError, PrincipalId};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::error::ServiceError;

pub(crate) struct Admission {
    limiter: Option<DefaultKeyedRateLimiter<PrincipalId>>,
    max_waiting: usize,
    waiting: Arc<Waiting>,
}

/// The syncs waiting now: per principal for the cap, and in total, which `/healthz` reports
/// without taking the lock (tests wait on it to know a sync is parked before they post).
#[derive(Default)]
struct Waiting {
    per_principal: Mutex<HashMap<PrincipalId, usize>>,
    total: AtomicUsize,
}

impl Admission {
    /// `per_second` requests per principal with bursts of twice that; 0 turns limiting off.
    /// `max_waiting` concurrent waiting syncs per principal; 0 means no cap.
    pub(crate) fn new(per_second: u32, max_waiting: usize) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 is not zero"));
            DefaultKeyedRateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        Self {
            limiter,
            max_waiting,
            waiting: Arc::default(),
        }
    }

    pub(crate) fn admit(&self, who: &PrincipalId) -> Result<(), ServiceError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(who).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ServiceError::RateLimited {
                retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1),
            }
        })
    }

    /// Forgets principals idle long enough to have a full bucket again.
    pub(crate) fn forget_idle(&self) {
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// How many syncs `who` has waiting now: what tests wait on instead of sleeping.
    #[cfg(test)]
    pub(crate) fn waiting_of(&self, who: &PrincipalId) -> usize {
        let waiting = self
            .waiting
            .per_principal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        waiting.get(who).copied().unwrap_or_default()
    }

    /// Registers a waiting sync; the returned guard unregisters it.
    pub(crate) fn start_waiting(&self, who: &PrincipalId) -> Result<WaitingGuard, ServiceError> {
        let mut waiting = self
            .waiting
            .per_principal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let count = waiting.entry(who.clone()).or_default();
        if self.max_waiting != 0 && *count >= self.max_waiting {
            return Err(DomainError::LimitExceeded {
                what: "syncs waiting at once for one caller",
                limit: self.max_waiting,
            }
            .into());
        }
        *count += 1;
        self.waiting.total.fetch_add(1, Ordering::Relaxed);
        Ok(WaitingGuard {
            who: who.clone(),
            waiting: self.waiting.clone(),
        })
    }

    /// How many syncs are waiting now, over all principals.
    pub(crate) fn waiting_syncs(&self) -> usize {
        self.waiting.total.load(Ordering::Relaxed)
    }
}

pub(crate) struct WaitingGuard {
    who: PrincipalId,
    waiting: Arc<Waiting>,
}

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        self.waiting.total.fetch_sub(1, Ordering::Relaxed);
        let mut waiting = self
            .waiting
            .per_principal
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(count) = waiting.get_mut(&self.who) {
            *count -= 1;
            if *count == 0 {
                waiting.remove(&self.who);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_waiting_total_counts_every_principal_and_falls_when_a_sync_ends() {
        let admission = Admission::new(0, 2);
        let (alice, bob) = (PrincipalId::new("alice"), PrincipalId::new("bob"));
        let first = admission.start_waiting(&alice).expect("under the cap");
        let second = admission.start_waiting(&bob).expect("under the cap");
        assert_eq!(admission.waiting_syncs(), 2);
        drop(first);
        assert_eq!(admission.waiting_syncs(), 1);
        // A refusal at the cap is not a waiting sync.
        let _again = admission.start_waiting(&bob).expect("under the cap");
        assert!(admission.start_waiting(&bob).is_err());
        assert_eq!(admission.waiting_syncs(), 2);
        drop(second);
        assert_eq!(admission.waiting_syncs(), 1);
    }
}
