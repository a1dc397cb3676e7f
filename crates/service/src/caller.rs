//! [`Caller`]: who is asking, and what their credential lets them do.
//!
//! Authorization is decided here, on the decoded call, by the service method that runs it: each
//! method states the [`Access`] it needs before doing anything else. Transports only say who the
//! caller is; they never guess from the raw request whether it reads or writes.

use domain::Principal;

/// What a credential allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Read channels, messages and bots (`mcp:read`).
    Read,
    /// Also create, join, post and administer (`mcp:write`).
    Write,
}

/// An authenticated caller: the principal and the most its credential allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub access: Access,
}

impl Caller {
    pub fn new(principal: Principal, access: Access) -> Self {
        Self { principal, access }
    }

    /// A caller whose credential allows everything.
    pub fn writer(principal: Principal) -> Self {
        Self::new(principal, Access::Write)
    }

    pub(crate) fn may(&self, needed: Access) -> bool {
        self.access >= needed
    }
}
