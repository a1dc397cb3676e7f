//! Identifier newtypes, so that a channel id is never passed where a slot label belongs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::limits::MAX_SLOT_LABEL_CHARS;

/// A channel's public identifier, `ch_` followed by 24 hex digits (96 random bits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(String);

impl ChannelId {
    pub const PREFIX: &'static str = "ch_";

    /// Builds a fresh id from random bytes.
    pub fn from_random(bytes: [u8; 12]) -> Self {
        Self(format!("{}{}", Self::PREFIX, hex::encode(bytes)))
    }

    /// Parses a caller-supplied id; anything not shaped like one of ours is refused before it
    /// reaches storage.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let hex_part = raw.strip_prefix(Self::PREFIX).unwrap_or("");
        if hex_part.len() == 24 && hex_part.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(raw.to_ascii_lowercase()))
        } else {
            Err(DomainError::ChannelNotFound)
        }
    }

    /// Wraps a value read back from storage, which only ever holds ids built by this type.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stable internal id of a person or script, assigned by the authenticator.
/// Never shown to other participants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PrincipalId(String);

impl PrincipalId {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The name of a slot within its channel, such as `alice` in `invite:alice`.
/// Lowercase ASCII letters, digits, `-` and `_`, starting with a letter or digit.
///
/// Serde reads one only through [`SlotLabel::parse`], so a notice or a transcript cannot
/// smuggle in a label the rules would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SlotLabel(String);

impl SlotLabel {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let valid_start = raw
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if valid_start && valid_chars && raw.len() <= MAX_SLOT_LABEL_CHARS {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::invalid(
                "slot",
                format!(
                    "slot label {raw:?} must be 1-{MAX_SLOT_LABEL_CHARS} characters of a-z, 0-9, '-' or '_'"
                ),
            ))
        }
    }

    /// Wraps a value read back from storage.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SlotLabel {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, DomainError> {
        SlotLabel::parse(&raw)
    }
}

impl From<SlotLabel> for String {
    fn from(label: SlotLabel) -> String {
        label.0
    }
}

impl fmt::Display for SlotLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message's position in its channel: 1, 2, 3… with no gaps. `Seq(0)` is "before the first".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub i64);

impl Seq {
    pub const ZERO: Seq = Seq(0);

    pub fn next(self) -> Seq {
        Seq(self.0 + 1)
    }
}

/// Milliseconds since the Unix epoch, as given by the caller's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_ids_round_trip_and_reject_foreign_shapes() {
        let id = ChannelId::from_random([0xab; 12]);
        assert_eq!(ChannelId::parse(id.as_str()), Ok(id.clone()));
        for bad in [
            "",
            "ch_",
            "ch_xyz",
            "abababababababababababab",
            "ch_../../etc/passwd",
        ] {
            assert_eq!(
                ChannelId::parse(bad),
                Err(DomainError::ChannelNotFound),
                "{bad}"
            );
        }
    }

    #[test]
    fn slot_labels_are_restricted() {
        assert!(SlotLabel::parse("alice").is_ok());
        assert!(SlotLabel::parse("player_2").is_ok());
        for bad in [
            "",
            "Alice",
            "-x",
            "a b",
            "é",
            &"a".repeat(MAX_SLOT_LABEL_CHARS + 1),
        ] {
            assert!(SlotLabel::parse(bad).is_err(), "{bad}");
        }
    }
}
