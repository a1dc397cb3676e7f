//! The development authenticator: each distinct token string is its own principal, named after
//! the token (`alice`, or `alice:some-secret` to keep the part after the colon out of what
//! others see). It trusts whoever can reach the port, so the binary allows it on loopback
//! addresses only.

use domain::limits::MAX_DISPLAY_NAME_CHARS;
use domain::names::check_display_name;
use domain::{Principal, PrincipalId};
use sha2::{Digest, Sha256};

/// The id is a hash, so the token itself is never stored or shown through the id. The display
/// name is the token up to its first `:`, so `alice:s3cret` shows as `alice`.
pub(crate) fn principal(token: &str) -> Principal {
    let digest = Sha256::digest(token.as_bytes());
    let name: String = token
        .split(':')
        .next()
        .unwrap_or_default()
        .chars()
        .take(MAX_DISPLAY_NAME_CHARS)
        .collect();
    Principal {
        id: PrincipalId::new(format!("dev:{}", hex::encode(&digest[..16]))),
        // The same rule as every other entry point; a name it refuses shows as `user`.
        display_name: check_display_name(&name).unwrap_or_else(|_| "user".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::principal;

    #[test]
    fn names_follow_the_display_name_rule() {
        assert_eq!(principal("alice:s3cret").display_name, "alice");
        assert_eq!(principal(":s3cret").display_name, "user");
        // A header value may carry a tab: refused by the rule, so the name falls back.
        assert_eq!(principal("al\tice").display_name, "user");
    }
}
