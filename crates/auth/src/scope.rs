//! Scopes: what a token allows. `mcp:read` reads channels and messages; `mcp:write` also
//! creates, joins, posts and administers. A grant without an explicit scope gets both.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Write,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::Read, Scope::Write];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "mcp:read",
            Scope::Write => "mcp:write",
        }
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    read: bool,
    write: bool,
}

/// Scopes a client may ask for that we grant implicitly or ignore: refresh tokens are always
/// issued, so `offline_access` changes nothing.
const TOLERATED: &[&str] = &["offline_access"];

impl Scopes {
    pub fn all() -> Self {
        Scopes {
            read: true,
            write: true,
        }
    }

    pub fn contains(self, scope: Scope) -> bool {
        match scope {
            Scope::Read => self.read,
            Scope::Write => self.write,
        }
    }

    fn insert(&mut self, scope: Scope) {
        match scope {
            Scope::Read => self.read = true,
            Scope::Write => self.write = true,
        }
    }

    /// Parses a space-separated request. `None` or an empty string means everything; an
    /// unknown scope is refused with its name.
    pub fn parse_request(raw: Option<&str>) -> Result<Self, String> {
        let mut scopes = Scopes::default();
        let mut any = false;
        for word in raw.unwrap_or_default().split_ascii_whitespace() {
            any = true;
            match Scope::ALL.iter().find(|scope| scope.as_str() == word) {
                Some(scope) => scopes.insert(*scope),
                None if TOLERATED.contains(&word) => {}
                None => return Err(word.to_owned()),
            }
        }
        if !any || scopes == Scopes::default() {
            return Ok(Scopes::all());
        }
        Ok(scopes)
    }

    /// Reads back a stored scope string, ignoring anything unknown.
    pub fn from_stored(raw: &str) -> Self {
        let mut scopes = Scopes::default();
        for word in raw.split_ascii_whitespace() {
            if let Some(scope) = Scope::ALL.iter().find(|scope| scope.as_str() == word) {
                scopes.insert(*scope);
            }
        }
        scopes
    }

    /// Whether every scope in `self` is also in `other`.
    pub fn is_subset_of(self, other: Scopes) -> bool {
        Scope::ALL
            .iter()
            .all(|scope| !self.contains(*scope) || other.contains(*scope))
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = Scope::ALL
            .iter()
            .filter(|scope| self.contains(**scope))
            .map(|scope| scope.as_str())
            .collect();
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_to_known_scopes() {
        assert_eq!(Scopes::parse_request(None), Ok(Scopes::all()));
        assert_eq!(Scopes::parse_request(Some("  ")), Ok(Scopes::all()));
        assert_eq!(
            Scopes::parse_request(Some("offline_access")),
            Ok(Scopes::all())
        );
        let read = Scopes::parse_request(Some("mcp:read")).unwrap();
        assert!(read.contains(Scope::Read) && !read.contains(Scope::Write));
        assert_eq!(read.to_string(), "mcp:read");
        assert_eq!(
            Scopes::parse_request(Some("mcp:read admin")),
            Err("admin".into())
        );
        assert!(read.is_subset_of(Scopes::all()));
        assert!(!Scopes::all().is_subset_of(read));
        assert_eq!(Scopes::from_stored("mcp:write mcp:read"), Scopes::all());
    }
}
