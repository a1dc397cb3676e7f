//! [`ServiceError`]: what a caller of the service can be told, with a stable code and a hint.

use domain::{DomainError, ErrorCode};
use store::StoreError;

/// Why a capability refused or failed. Surfaces map it to their wire format exactly once.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A channel rule refused; the message and hint are safe to show.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The caller sent too many requests; try again after `retry_after_ms`.
    #[error("too many requests; retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The caller's credential may only read, and this capability writes.
    #[error("this token may only read")]
    InsufficientScope,
    /// Something broke on our side. The details were logged; the caller sees only this.
    #[error("internal error; the server logged the details")]
    Internal,
}

impl From<StoreError> for ServiceError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Domain(refusal) => ServiceError::Domain(refusal),
            StoreError::Backend(_) | StoreError::Corrupt(_) | StoreError::Conflict(_) => {
                tracing::error!(%error, "storage failed");
                ServiceError::Internal
            }
        }
    }
}

impl ServiceError {
    /// An internal failure: logged here, once, and shown to the caller only as `INTERNAL`.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal failure");
        ServiceError::Internal
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ServiceError::Domain(refusal) => refusal.code(),
            ServiceError::RateLimited { .. } => ErrorCode::RateLimited,
            ServiceError::InsufficientScope => ErrorCode::InsufficientScope,
            ServiceError::Internal => ErrorCode::Internal,
        }
    }

    pub fn hint(&self) -> String {
        match self {
            ServiceError::Domain(refusal) => refusal.hint(),
            ServiceError::RateLimited { retry_after_ms } => {
                format!(
                    "Wait {retry_after_ms} ms before the next call; sync_messages with wait_ms waits without using up requests."
                )
            }
            ServiceError::InsufficientScope => "Authorize again and grant the mcp:write scope, \
                 or use a token created with it."
                .into(),
            ServiceError::Internal => {
                "Try again in a moment; if it persists, tell the server operator.".into()
            }
        }
    }
}
