//! Requests this server makes to addresses that others chose.
//!
//! - [`addresses`]: which IP addresses are public, from the IANA special-purpose registries; the
//!   OAuth client metadata fetch and the witness both ask it.
//! - [`witness`]: the witness's HTTPS fetch for a bot (`ctx.request_fetch`), which records what
//!   it saw (the address, the TLS session and certificate chain, the status, some headers, the
//!   body's digest and first bytes) as a [`domain::attestation::Attestation`].
//!
//! Every fetch here is fenced the same way: HTTPS only, the host's addresses checked where the
//! connection is made (a second DNS answer cannot swap in a private address), no redirects
//! followed, no proxies, and caps on time and size.

pub mod addresses;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod witness;

pub use witness::{HostPattern, Resolve, SystemResolver, Witness, WitnessPolicy};
