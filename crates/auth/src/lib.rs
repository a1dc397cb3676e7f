//! Authentication: the boundary that turns a bearer token into a [`Caller`], and the OAuth 2.1
//! authorization server that issues those tokens.
//!
//! Every request passes through [`Authenticator::authenticate`] before any tool or endpoint
//! runs; nothing downstream ever takes identity from an argument or an MCP session id.
//!
//! - [`oauth`]: the authorization server (metadata, registration, consent, codes, tokens,
//!   revocation) and the check of the tokens it issued.
//! - [`personal`]: long-lived personal tokens for scripts, issued from the command line.
//! - [`scope`]: what a token allows.
//! - the development authenticator (`dev`): any token names its own principal; loopback only.

mod dev;
pub mod oauth;
pub mod personal;
pub mod scope;
mod secrets;

use std::sync::Arc;

use domain::Principal;

pub use oauth::{ApprovalMode, Connection, Holder, OAuthConfig, OAuthServer};
pub use scope::{Scope, Scopes};

/// Longest bearer token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Who is calling and what their token allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub principal: Principal,
    pub scopes: Scopes,
}

/// Why a request could not be tied to a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is malformed, unknown, expired, revoked or meant for another resource.
    #[error("invalid bearer token")]
    Invalid,
    /// Storage failed while checking the token; the caller may retry.
    #[error("could not check the token: {0}")]
    Unavailable(String),
}

/// How tokens are checked.
#[derive(Clone)]
pub enum Authenticator {
    /// Development only: any token is accepted and names its own principal.
    Dev,
    /// Tokens issued by our authorization server (or the `token` command).
    OAuth(Arc<OAuthServer>),
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Authenticator::Dev => "Authenticator::Dev",
            Authenticator::OAuth(_) => "Authenticator::OAuth",
        })
    }
}

impl Authenticator {
    /// Resolves the value of an `Authorization` header.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let token =
            bearer_token(authorization.ok_or(AuthError::Missing)?).ok_or(AuthError::Invalid)?;
        match self {
            Authenticator::Dev => Ok(Caller {
                principal: dev::principal(token),
                scopes: Scopes::all(),
            }),
            Authenticator::OAuth(server) => server.check_bearer(token).await,
        }
    }

    /// The authorization server, when there is one.
    pub fn oauth(&self) -> Option<&Arc<OAuthServer>> {
        match self {
            Authenticator::Dev => None,
            Authenticator::OAuth(server) => Some(server),
        }
    }
}

/// Extracts the token from `Bearer <token>` (the scheme is case-insensitive, RFC 7235).
fn bearer_token(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    let token = token.trim();
    let printable = token.bytes().all(|b| b.is_ascii_graphic());
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_TOKEN_BYTES
        && printable)
        .then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_dev_token_is_its_own_principal() {
        let auth = Authenticator::Dev;
        let alice = auth.authenticate(Some("Bearer alice")).await.unwrap();
        let again = auth.authenticate(Some("bearer alice")).await.unwrap();
        let bob = auth.authenticate(Some("Bearer bob")).await.unwrap();
        assert_eq!(alice, again);
        assert_ne!(alice.principal.id, bob.principal.id);
        assert_eq!(alice.principal.display_name, "alice");
        assert!(
            !alice.principal.id.as_str().contains("alice"),
            "the id does not reveal the token"
        );
    }

    #[tokio::test]
    async fn malformed_headers_are_refused() {
        let auth = Authenticator::Dev;
        assert_eq!(auth.authenticate(None).await, Err(AuthError::Missing));
        for bad in [
            "alice",
            "Basic YWxpY2U=",
            "Bearer ",
            "Bearer a b",
            "Bearer \u{7}",
        ] {
            assert_eq!(
                auth.authenticate(Some(bad)).await,
                Err(AuthError::Invalid),
                "{bad:?}"
            );
        }
        let huge = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(
            auth.authenticate(Some(&huge)).await,
            Err(AuthError::Invalid)
        );
    }
}
