//! Bot source code, its language, and the hash that names it.

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

/// The language a bot is written in, which picks its runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// Runs in QuickJS; the source defines `class Bot`.
    JavaScript,
    /// Runs in Monty; the bot is the top-level class `Bot`, or the only top-level class, as the
    /// Python prototype's bots were.
    Python,
}

impl Language {
    /// Every language, in the order the docs list them.
    pub const ALL: [Language; 2] = [Language::JavaScript, Language::Python];

    /// The name used in `bot_language`, notices and the code view.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::JavaScript => "javascript",
            Language::Python => "python",
        }
    }

    /// Reads a language name as a caller gives it (any case; `js` and `py` too).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw.to_ascii_lowercase().as_str() {
            "javascript" | "js" => Some(Language::JavaScript),
            "python" | "py" => Some(Language::Python),
            _ => None,
        }
    }

    /// The language a source is written in, when nobody said: Python if a line opens a `def`
    /// or `class …:` block or is a bare `import`/`from … import`, JavaScript otherwise.
    pub fn infer(source: &str) -> Self {
        let python = source.lines().map(str::trim_start).any(|line| {
            let opens_block = line.trim_end().ends_with(':');
            let block_keyword = line.starts_with("def ") || line.starts_with("class ");
            (block_keyword && opens_block)
                || (line.starts_with("import ") && !line.contains(['{', ';', '\'', '"']))
                || (line.starts_with("from ") && line.contains(" import "))
        });
        if python {
            Language::Python
        } else {
            Language::JavaScript
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bot's source, checked for size, hashed, and tagged with its language. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotSource {
    name: Arc<str>,
    source: Arc<str>,
    language: Language,
    code_hash: CodeHash,
}

impl BotSource {
    /// Accepts a source up to [`MAX_SOURCE_BYTES`], its language inferred
    /// ([`Language::infer`]). `name` labels the code in error positions (`guess.js:12`); it is
    /// not part of the hash.
    pub fn new(name: impl Into<Arc<str>>, source: impl Into<Arc<str>>) -> Result<Self, BotError> {
        let source: Arc<str> = source.into();
        let language = Language::infer(&source);
        Self::with_language(name, source, language)
    }

    /// Like [`BotSource::new`], in the language given.
    pub fn with_language(
        name: impl Into<Arc<str>>,
        source: impl Into<Arc<str>>,
        language: Language,
    ) -> Result<Self, BotError> {
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
            language,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn language(&self) -> Language {
        self.language
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
    fn language_is_inferred_from_block_openers_and_imports() {
        let echo = "class EchoBot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n";
        assert_eq!(Language::infer(echo), Language::Python);
        assert_eq!(Language::infer("import random\n"), Language::Python);
        assert_eq!(
            Language::infer("from math import floor\n"),
            Language::Python
        );
        assert_eq!(
            Language::infer("class Bot { on_init() {} }"),
            Language::JavaScript
        );
        assert_eq!(
            Language::infer("import { x } from 'y';"),
            Language::JavaScript
        );
        assert_eq!(Language::infer(""), Language::JavaScript);
        for python in [
            "def on_message(msg):\n  return",
            "import json\nclass Bot:\n  pass",
        ] {
            assert_eq!(Language::infer(python), Language::Python, "{python}");
        }
        for javascript in [
            "class Bot { constructor(ctx) { this.ctx = ctx; } }",
            "const label = { a: 1 };\nclass Bot {}",
            "// def f(): in a comment does not open a block",
        ] {
            assert_eq!(
                Language::infer(javascript),
                Language::JavaScript,
                "{javascript}"
            );
        }
        assert_eq!(Language::parse("Python"), Some(Language::Python));
        assert_eq!(Language::parse("JS"), Some(Language::JavaScript));
        assert_eq!(Language::parse("ruby"), None);
    }

    #[test]
    fn oversized_sources_are_refused() {
        let err = BotSource::new("big.js", "x".repeat(MAX_SOURCE_BYTES + 1)).unwrap_err();
        assert_eq!(err.kind, BotErrorKind::BadSource);
    }
}
