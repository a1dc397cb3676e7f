//! Authentication: the boundary that turns a bearer token into a [`Principal`].
//!
//! Every request passes through [`Authenticator::authenticate`] before any tool or endpoint
//! runs; nothing downstream ever takes identity from an argument or an MCP session id.
//!
//! Only the development authenticator exists so far: each distinct token string is its own
//! principal, named after the token (`alice`, or `alice:some-secret` to keep the part after the
//! colon out of what others see). It trusts whoever can reach the port, so the binary allows it
//! on loopback addresses only.

use domain::limits::MAX_DISPLAY_NAME_CHARS;
use domain::{Principal, PrincipalId};
use sha2::{Digest, Sha256};

/// Longest bearer token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Why a request could not be tied to a principal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …` header.
    #[error("missing bearer token")]
    Missing,
    /// The token is malformed, unknown, expired or revoked.
    #[error("invalid bearer token")]
    Invalid,
}

/// How tokens are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authenticator {
    /// Development only: any token is accepted and names its own principal.
    Dev,
}

impl Authenticator {
    /// Resolves the value of an `Authorization` header.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let token =
            bearer_token(authorization.ok_or(AuthError::Missing)?).ok_or(AuthError::Invalid)?;
        match self {
            Authenticator::Dev => Ok(dev_principal(token)),
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

/// The id is a hash, so the token itself is never stored or shown through the id. The display
/// name is the token up to its first `:`, so `alice:s3cret` shows as `alice`.
fn dev_principal(token: &str) -> Principal {
    let digest = Sha256::digest(token.as_bytes());
    let name = token
        .split(':')
        .next()
        .filter(|name| !name.is_empty())
        .unwrap_or("user");
    Principal {
        id: PrincipalId::new(format!("dev:{}", hex::encode(&digest[..16]))),
        display_name: name.chars().take(MAX_DISPLAY_NAME_CHARS).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dev_token_is_its_own_principal() {
        let auth = Authenticator::Dev;
        let alice = auth.authenticate(Some("Bearer alice")).unwrap();
        let again = auth.authenticate(Some("bearer alice")).unwrap();
        let bob = auth.authenticate(Some("Bearer bob")).unwrap();
        assert_eq!(alice, again);
        assert_ne!(alice.id, bob.id);
        assert_eq!(alice.display_name, "alice");
        assert!(
            !alice.id.as_str().contains("alice"),
            "the id does not reveal the token"
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        let auth = Authenticator::Dev;
        assert_eq!(auth.authenticate(None), Err(AuthError::Missing));
        for bad in [
            "alice",
            "Basic YWxpY2U=",
            "Bearer ",
            "Bearer a b",
            "Bearer \u{7}",
        ] {
            assert_eq!(
                auth.authenticate(Some(bad)),
                Err(AuthError::Invalid),
                "{bad:?}"
            );
        }
        let huge = format!("Bearer {}", "x".repeat(MAX_TOKEN_BYTES + 1));
        assert_eq!(auth.authenticate(Some(&huge)), Err(AuthError::Invalid));
    }
}
