//! The transcript's formats and checks: heads signed by the server, the export one participant
//! takes away, and its offline verification.
//!
//! - [`signing`]: the server's Ed25519 keys ([`Keyring`]), the statement it signs about a
//!   channel's head ([`HeadStatement`]), the exact bytes signed, and [`verify`], which needs
//!   only public keys so an offline verifier can run it.
//! - [`export`]: the exported transcript's JSON (`docs/transcript.md`).
//! - [`verify`]: [`check`] (chain, signatures, hashes, commitments) and [`replay`] (bot events
//!   run again and compared), each naming the first [`Divergence`].
//!
//! Nothing here does I/O or reads a clock or a random source: callers pass key bytes and
//! times in, and the store keeps the bytes. `ed25519_dalek` types stop here.

pub mod export;
pub mod signing;
pub mod verify;

pub use signing::{
    HeadStatement, KeyId, Keyring, KeyringError, PublicKeyInfo, ServerKey, SignatureError,
    SignedHead, verify,
};
pub use verify::{BotReplay, Checked, Divergence, ReplayEnd, check, replay};
