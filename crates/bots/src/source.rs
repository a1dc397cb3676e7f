//! Bot source code and the hash that names it.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::error::{BotError, BotErrorKind};
use crate::limits::MAX_SOURCE_BYTES;

/// `sha256:` followed by the lowercase hex SHA-256 of a source's exact bytes.
///
/// Anyone holding the source (from `get_bot_code`) can recompute it, e.g.
/// `sha256sum guess.js`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeHash(String);

impl CodeHash {
    pub const PREFIX: &'static str = "sha256:";

    pub fn of(source: &str) -> Self {
        Self(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(Sha256::digest(source.as_bytes()))
        ))
    }

    /// Wraps a value read back from storage, which only ever holds hashes built by this type.
    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bot's JavaScript source, checked for size and hashed. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSource {
    name: Arc<str>,
    source: Arc<str>,
    code_hash: CodeHash,
}

impl BotSource {
    /// Accepts a source up to [`MAX_SOURCE_BYTES`]. `name` labels the code in error positions
    /// (`guess.js:12`); it is not part of the hash.
    pub fn new(name: impl Into<Arc<str>>, source: impl Into<Arc<str>>) -> Result<Self, BotError> {
        let source: Arc<str> = source.into();
        if source.len() > MAX_SOURCE_BYTES {
            return Err(BotError::new(
                BotErrorKind::BadSource,
                format!(
                    "the source is {} bytes; the limit is {MAX_SOURCE_BYTES}",
                    source.len()
                ),
            ));
        }
        Ok(Self {
            name: name.into(),
            code_hash: CodeHash::of(&source),
            source,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn code_hash(&self) -> &CodeHash {
        &self.code_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_of_exact_bytes() {
        let bot = BotSource::new("empty.js", "").expect("empty source is small");
        assert_eq!(
            bot.code_hash().as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let spaced = BotSource::new("empty.js", " ").expect("small");
        assert_ne!(bot.code_hash(), spaced.code_hash());
    }

    #[test]
    fn oversized_sources_are_refused() {
        let err = BotSource::new("big.js", "x".repeat(MAX_SOURCE_BYTES + 1)).unwrap_err();
        assert_eq!(err.kind, BotErrorKind::BadSource);
    }
}
