//! The commitment encoding bots use to commit to a secret value and reveal it later.
//!
//! ```text
//! commitment = "sha256:" + hex(SHA-256( lp("mcp-multiplayer/commit/v1") || lp(channel_id) || lp(bot_slot)
//!                           || lp(value) || lp(salt) ))
//! lp(x)      = be64(byte length of x) || x
//! ```
//!
//! Strings are their UTF-8 bytes; the salt is raw bytes (it travels as hex). Prefixing every field
//! with its length means no two different inputs encode to the same bytes, and the label, channel
//! and bot bind the commitment to one game so it cannot be replayed elsewhere. A salt of at least
//! 128 random bits keeps a small value space (a number from 1 to 100) from being brute-forced.
//!
//! Check a reveal from a shell:
//!
//! ```text
//! python3 -c 'import hashlib,struct,sys;lp=lambda b:struct.pack(">Q",len(b))+b;print("sha256:"+hashlib.sha256(b"".join(lp(x) for x in [b"mcp-multiplayer/commit/v1",sys.argv[1].encode(),sys.argv[2].encode(),sys.argv[3].encode(),bytes.fromhex(sys.argv[4])])).hexdigest())' CHANNEL_ID BOT_SLOT VALUE SALT_HEX
//! ```

use sha2::{Digest, Sha256};

/// Domain-separation label, the first field of every commitment.
pub const COMMIT_LABEL: &str = "mcp-multiplayer/commit/v1";

/// Least salt accepted, in bytes (128 bits).
pub const MIN_SALT_BYTES: usize = 16;

/// The commitment to `value` by the bot in `bot_slot` of `channel_id`: `sha256:` + lowercase
/// hex, the format of every hash users see.
pub fn commitment(channel_id: &str, bot_slot: &str, value: &str, salt: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for field in [
        COMMIT_LABEL.as_bytes(),
        channel_id.as_bytes(),
        bot_slot.as_bytes(),
        value.as_bytes(),
        salt,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_slide_into_each_other() {
        let salt = [0u8; 16];
        assert_ne!(
            commitment("ch_a", "bot", "12", &salt),
            commitment("ch_a", "bot1", "2", &salt)
        );
        assert_ne!(
            commitment("ch_a", "bot", "1", &salt),
            commitment("ch_a", "bot", "1", &[0u8; 17])
        );
    }

    #[test]
    fn known_answer() {
        // Computed with the python line in the module docs; pinned so the encoding never drifts.
        let salt = hex::decode("000102030405060708090a0b0c0d0e0f").expect("valid hex");
        assert_eq!(
            commitment("ch_000000000000000000000000", "referee", "42", &salt),
            "sha256:7ed59369cf6b2fa4c6434550f17e6f0a5109d1c36c35a688e125e4a413dd5cd9"
        );
    }
}
