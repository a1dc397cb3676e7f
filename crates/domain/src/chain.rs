//! The hash chain over a channel's messages: each message's hash covers the previous hash and
//! the message's canonical encoding, so the newest hash (the head) commits to the whole history,
//! private messages included.
//!
//! ```text
//! canonical(m) = RFC 8785 JSON of {"channel", "seq", "kind", "sender"?, "sender_name", "to"?,
//!                                   "nonce"?, "at", "text"?, "data"?}   (absent fields omitted)
//! digest(m)    = "sha256:" + hex(SHA-256(canonical(m)))
//! hash(m)      = "sha256:" + hex(SHA-256(prev + "\n" + digest(m) + "\n" + scope(m)))
//! scope(m)     = "private" when m has `to`, else "public"
//! prev         = hash of the message before, or GENESIS for seq 1
//! ```
//!
//! The link covers the digest, not the message itself, so that someone who may not read a
//! message is given its digest and still recomputes every link from the first: nothing before
//! a withheld message can be changed unseen. The link also says whether the message is private,
//! so a public message (a notice, a move) cannot be passed off as withheld: only private ones
//! may be. A private message carries a random `nonce`, so its
//! digest does not give away a content with few candidates (a move "5"). Hashes and digests
//! enter as their ASCII text (`sha256:…`). `docs/transcript.md` states the same for writers of
//! other verifiers.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::ids::ChannelId;
use crate::message::Message;

/// A `sha256:` + 64 lowercase hex digits hash: a link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainHash(String);

impl ChainHash {
    /// What the first message of a channel links to.
    pub fn genesis() -> Self {
        ChainHash(format!("sha256:{}", "0".repeat(64)))
    }

    /// Reads a hash in the one format users see; anything else is refused.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex = raw.strip_prefix("sha256:")?;
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| ChainHash(raw.to_owned()))
    }

    /// Wraps a value read back from storage, which only ever holds hashes built here.
    pub fn from_trusted(raw: String) -> Self {
        ChainHash(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash of `message` of `channel`, linked to `self` (the hash of the message before).
    pub fn link(&self, channel: &ChannelId, message: &Message) -> ChainHash {
        self.link_digest(&message_digest(channel, message), message.to.is_some())
    }

    /// The hash of the message with this digest, private or not, linked to `self`: how a
    /// verifier links a message it may not read (always a private one).
    pub fn link_digest(&self, digest: &ChainHash, private: bool) -> ChainHash {
        let mut hasher = Sha256::new();
        hasher.update(self.0.as_bytes());
        hasher.update(b"\n");
        hasher.update(digest.0.as_bytes());
        hasher.update(if private {
            &b"\nprivate"[..]
        } else {
            &b"\npublic"[..]
        });
        ChainHash(format!("sha256:{}", hex::encode(hasher.finalize())))
    }
}

impl TryFrom<String> for ChainHash {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        ChainHash::parse(&raw).ok_or_else(|| format!("{raw:?} is not a sha256:<64 hex> hash"))
    }
}

impl From<ChainHash> for String {
    fn from(hash: ChainHash) -> String {
        hash.0
    }
}

impl fmt::Display for ChainHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 16 random bytes a private message carries, drawn by the caller (the rules have no
/// randomness of their own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; 16]);

impl Nonce {
    /// As the message stores and shows it: 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `raw` is a nonce as stored: 32 lowercase hex digits.
    pub fn is_well_formed(raw: &str) -> bool {
        raw.len() == 32
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    }
}

/// The digest of `message` of `channel`: what its link of the chain covers. A digest has the
/// format of a [`ChainHash`].
pub fn message_digest(channel: &ChannelId, message: &Message) -> ChainHash {
    ChainHash(sha256_tagged(
        canonical_message(channel, message).as_bytes(),
    ))
}

/// The message as the chain hashes it: RFC 8785 canonical JSON, absent fields omitted.
pub fn canonical_message(channel: &ChannelId, message: &Message) -> String {
    let mut fields = Map::new();
    fields.insert("channel".into(), channel.as_str().into());
    fields.insert("seq".into(), message.seq.0.into());
    fields.insert("kind".into(), message.kind.as_str().into());
    if let Some(sender) = &message.sender {
        fields.insert("sender".into(), sender.as_str().into());
    }
    fields.insert("sender_name".into(), message.sender_name.clone().into());
    if let Some(to) = &message.to {
        fields.insert("to".into(), to.as_str().into());
    }
    if let Some(nonce) = &message.nonce {
        fields.insert("nonce".into(), nonce.clone().into());
    }
    fields.insert("at".into(), message.at.0.into());
    if let Some(text) = &message.body.text {
        fields.insert("text".into(), text.clone().into());
    }
    if let Some(data) = &message.body.data {
        fields.insert("data".into(), Value::Object(data.clone()));
    }
    canonical_json(&Value::Object(fields))
}

/// RFC 8785 canonical JSON of a value.
pub fn canonical_json(value: &Value) -> String {
    // A `serde_json::Value` holds no NaN or infinity, the only inputs JCS refuses.
    serde_json_canonicalizer::to_string(value).expect("a JSON value always canonicalizes")
}

/// `sha256:` + hex of SHA-256 over `bytes`: the one format of every hash users see.
pub fn sha256_tagged(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{Seq, SlotLabel, Timestamp};
    use crate::message::{Body, MessageKind};
    use serde_json::json;

    fn message(text: &str) -> Message {
        Message {
            seq: Seq(1),
            kind: MessageKind::User,
            sender: Some(SlotLabel::parse("alice").expect("label")),
            sender_name: "Alice".into(),
            body: Body {
                text: Some(text.into()),
                data: match json!({"b": 1.0, "a": [1, "é"]}) {
                    Value::Object(map) => Some(map),
                    _ => None,
                },
            },
            to: None,
            nonce: None,
            at: Timestamp(1_700_000_000_000),
            hash: ChainHash::genesis(),
        }
    }

    #[test]
    fn the_encoding_is_canonical_and_pinned() {
        let channel = ChannelId::from_trusted("ch_000000000000000000000001".into());
        assert_eq!(
            canonical_message(&channel, &message("hi")),
            r#"{"at":1700000000000,"channel":"ch_000000000000000000000001","data":{"a":[1,"é"],"b":1},"kind":"user","sender":"alice","sender_name":"Alice","seq":1,"text":"hi"}"#
        );
        // Known answers, so the format cannot drift without this test noticing; the
        // Python oracle in tests/e2e computes the same.
        assert_eq!(
            message_digest(&channel, &message("hi")).as_str(),
            "sha256:3fe55357d9f66bdf507a86cf895d6e25c50cd8a33e330b0cb4162478c35931dd"
        );
        assert_eq!(
            ChainHash::genesis().link(&channel, &message("hi")).as_str(),
            "sha256:cb5f70e8716fa2d72a07e0d2e510cb03782ea84ebd3659e3398c48f6b8e3d9c1"
        );
    }

    #[test]
    fn every_field_and_the_link_change_the_hash() {
        let channel = ChannelId::from_trusted("ch_000000000000000000000001".into());
        let base = ChainHash::genesis().link(&channel, &message("hi"));
        let other = ChannelId::from_trusted("ch_000000000000000000000002".into());
        assert_ne!(ChainHash::genesis().link(&other, &message("hi")), base);
        assert_ne!(ChainHash::genesis().link(&channel, &message("ho")), base);
        assert_ne!(base.link(&channel, &message("hi")), base);
        let mut private = message("hi");
        private.to = Some(SlotLabel::parse("bob").expect("label"));
        private.nonce = Some(Nonce([7; 16]).hex());
        let salted = ChainHash::genesis().link(&channel, &private);
        assert_ne!(salted, base);
        private.nonce = Some(Nonce([8; 16]).hex());
        assert_ne!(
            ChainHash::genesis().link(&channel, &private),
            salted,
            "the nonce is hashed"
        );
        // A verifier that may not read the message links its digest to the same hash.
        assert_eq!(
            ChainHash::genesis().link_digest(&message_digest(&channel, &private), true),
            ChainHash::genesis().link(&channel, &private)
        );
    }

    #[test]
    fn only_the_one_format_parses() {
        assert!(ChainHash::parse(ChainHash::genesis().as_str()).is_some());
        for bad in [
            "",
            "sha256:",
            "sha256:ABCDEF0000000000000000000000000000000000000000000000000000000000",
            "sha1:0000000000000000000000000000000000000000000000000000000000000000",
            "0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            assert!(ChainHash::parse(bad).is_none(), "{bad}");
        }
    }
}
