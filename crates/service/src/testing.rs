//! What the service's tests share: a fixed clock and callers named after people.

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
