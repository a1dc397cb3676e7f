//! The development authenticator: each distinct token string is its own principal, named after
//! the token (`alice`, or `alice:some-secret` to keep the part after the colon out of what
//! others see). It trusts whoever can reach the port, so the binary allows it on loopback
//! addresses only.

use domain::limits::MAX_DISPLAY_NAME_CHARS;
use domain::{Principal, PrincipalId};
use sha2::{Digest, Sha256};

/// The id is a hash, so the token itself is never stored or shown through the id. The display
/// name is the token up to its first `:`, so `alice:s3cret` shows as `alice`.
pub(crate) fn principal(token: &str) -> Principal {
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
