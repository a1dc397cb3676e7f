//! OAuth error responses (RFC 6749 §5.2, RFC 7591 §3.2.2): a registered `error` code and a
//! human description. The HTTP layer picks the status from the code.

/// An error the authorization server answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {description}")]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new("invalid_client", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn server_error(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "authorization server failure");
        Self::new(
            "server_error",
            "the server could not complete the request; try again",
        )
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> u16 {
        match self.error {
            "invalid_client" => 401,
            "too_many_requests" => 429,
            "server_error" => 500,
            "temporarily_unavailable" => 503,
            _ => 400,
        }
    }
}

impl From<store::StoreError> for OAuthError {
    fn from(error: store::StoreError) -> Self {
        OAuthError::server_error(error)
    }
}
