//! The caps one bot event runs under, with their defaults.

use std::time::Duration;

/// Largest bot source accepted, in bytes of UTF-8.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;

/// Most bytes one `ctx.random_bytes` call returns.
pub const MAX_RANDOM_BYTES: usize = 1024;

/// Caps applied to every event. Each event gets a fresh runtime, so none of them carries over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock budget for the whole event: compiling the source, the constructor, the handler
    /// and any promise jobs it leaves behind. Enforced by an interrupt that bot code cannot catch.
    pub cpu: Duration,
    /// Heap cap of the runtime, engine overhead included (a fresh runtime uses ~250 KiB).
    pub memory_bytes: usize,
    /// Native stack the engine may use. The calling thread needs at least this much free stack
    /// plus some margin; a Tokio blocking-pool thread (2 MiB) has plenty. Python bots run on a
    /// thread of their own and get one level of recursion per 2 KiB of this (256 by default,
    /// from 64 to 1000).
    pub stack_bytes: usize,
    /// Most posts (public and private) in one event.
    pub max_posts: usize,
    /// Largest state, in bytes of compact JSON.
    pub max_state_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu: Duration::from_millis(50),
            memory_bytes: 16 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            max_posts: 20,
            max_state_bytes: 64 * 1024,
        }
    }
}
