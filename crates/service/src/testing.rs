//! What the service's tests share: a fixed clock, callers named after people, and bot workers
//! (this test binary, re-run as one).

use domain::{Principal, PrincipalId, Timestamp};

use crate::{Caller, Clock};

/// Always the same instant, so tests read no wall clock.
pub(crate) struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(1_750_000_000_000)
    }
}

/// A caller with full access, whose id is derived from `name`.
pub(crate) fn person(name: &str) -> Caller {
    Caller::writer(Principal {
        id: PrincipalId::new(format!("id-{name}")),
        display_name: name.into(),
    })
}

#[test]
fn bot_worker() {
    workers::testing::serve_if_worker();
}

/// A small pool of workers for a test's service.
pub(crate) async fn workers() -> workers::Pool {
    workers::Pool::start(workers::PoolConfig {
        size: 2,
        command: workers::testing::worker_command("testing::bot_worker"),
        watchdog: workers::Watchdog::default(),
    })
    .await
    .expect("bot workers start")
}
