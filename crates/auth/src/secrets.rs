//! How the authorization server's secrets and ids look. Each kind has its own prefix, so a
//! token pasted in the wrong place is recognised (and secret scanners can find leaked ones).
//! Every secret carries 256 random bits; ids carry 128.

use rand::RngCore;

pub(crate) const ACCESS_TOKEN: &str = "mcp_at_";
pub(crate) const REFRESH_TOKEN: &str = "mcp_rt_";
pub(crate) const PERSONAL_TOKEN: &str = "mcp_pat_";
pub(crate) const AUTHORIZATION_CODE: &str = "mcp_code_";
pub(crate) const CLIENT_SECRET: &str = "mcp_cs_";
pub(crate) const CLIENT_ID: &str = "mcpc_";
pub(crate) const PERSON_ID: &str = "usr_";
pub(crate) const FAMILY_ID: &str = "fam_";

/// A fresh secret: `prefix` and 256 random bits in hex.
pub(crate) fn secret(prefix: &str) -> String {
    random_hex(prefix, 32)
}

/// A fresh identifier: `prefix` and 128 random bits in hex.
pub(crate) fn id(prefix: &str) -> String {
    random_hex(prefix, 16)
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn random_hex(prefix: &str, len: usize) -> String {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}
