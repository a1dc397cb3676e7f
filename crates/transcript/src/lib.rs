//! The transcript's formats and checks: signed heads now; export and verification to come.
//!
//! - [`signing`]: the server's Ed25519 keys ([`Keyring`]), the statement it signs about a
//!   channel's head ([`HeadStatement`]), the exact bytes signed, and [`verify`], which needs
//!   only public keys so an offline verifier can run it.
//!
//! Nothing here does I/O or reads a clock or a random source: callers pass key bytes and
//! times in, and the store keeps the bytes. `ed25519_dalek` types stop here.

pub mod signing;

pub use signing::{
    HeadStatement, KeyId, Keyring, KeyringError, PublicKeyInfo, ServerKey, SignatureError,
    SignedHead, verify,
};
