//! The authorization server's rules, against a real SQLite store.
