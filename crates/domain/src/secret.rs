//! Invite codes and rejoin tokens: how they look, how they are made, how they are stored.
//!
//! Only the SHA-256 of a secret is ever stored; the secret itself is shown once, to the person
//! it belongs to.

use sha2::{Digest, Sha256};

/// Where random bytes come from. The service passes the OS generator; tests pass a fixed one.
pub trait SecretSource {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The stored form of a secret: lowercase hex of its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SecretHash(String);

impl SecretHash {
    pub fn of(secret: &str) -> Self {
        Self(hex::encode(Sha256::digest(secret.as_bytes())))
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a code handed to `join_channel` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redeemable {
    Invite(SecretHash),
    Rejoin(SecretHash),
}

pub const INVITE_PREFIX: &str = "inv_";
pub const REJOIN_PREFIX: &str = "rejoin_";

/// A single-use invite code: 128 random bits.
pub fn new_invite_code(source: &mut impl SecretSource) -> String {
    let mut bytes = [0u8; 16];
    source.fill(&mut bytes);
    format!("{INVITE_PREFIX}{}", hex::encode(bytes))
}

/// A seat's rejoin token: 256 random bits.
pub fn new_rejoin_token(source: &mut impl SecretSource) -> String {
    let mut bytes = [0u8; 32];
    source.fill(&mut bytes);
    format!("{REJOIN_PREFIX}{}", hex::encode(bytes))
}

/// Tells an invite code from a rejoin token by its prefix; anything else cannot be valid.
pub fn classify(code: &str) -> Option<Redeemable> {
    let code = code.trim();
    if code.len() > 128 {
        return None;
    }
    if code.starts_with(INVITE_PREFIX) {
        Some(Redeemable::Invite(SecretHash::of(code)))
    } else if code.starts_with(REJOIN_PREFIX) {
        Some(Redeemable::Rejoin(SecretHash::of(code)))
    } else {
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic source for tests: a counter, so every secret differs.
    #[derive(Default)]
    pub struct CountingSource(pub u64);

    impl SecretSource for CountingSource {
        fn fill(&mut self, buf: &mut [u8]) {
            for byte in buf.iter_mut() {
                self.0 = self.0.wrapping_add(1);
                *byte = (self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8;
            }
        }
    }

    #[test]
    fn codes_have_enough_entropy_and_classify() {
        let mut source = CountingSource::default();
        let invite = new_invite_code(&mut source);
        let rejoin = new_rejoin_token(&mut source);
        assert_eq!(invite.len(), INVITE_PREFIX.len() + 32);
        assert_eq!(rejoin.len(), REJOIN_PREFIX.len() + 64);
        assert_eq!(
            classify(&invite),
            Some(Redeemable::Invite(SecretHash::of(&invite)))
        );
        assert_eq!(
            classify(&rejoin),
            Some(Redeemable::Rejoin(SecretHash::of(&rejoin)))
        );
        assert_eq!(classify("hello"), None);
        assert_ne!(SecretHash::of(&invite), SecretHash::of(&rejoin));
    }
}
