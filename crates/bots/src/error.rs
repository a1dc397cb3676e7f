//! Why a bot event failed: [`BotError`] and its [`BotErrorKind`].
//!
//! A failed event leaves nothing behind (no posts, no state), so the error is the only trace of
//! it; its message is written for the channel, where the bot's author will read it.

use std::fmt;

/// The class of failure, stable enough for a service to map to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotErrorKind {
    /// The source is too large, does not compile, uses Python Monty does not support, or
    /// defines no usable bot class.
    BadSource,
    /// Bot code threw an exception (any value) that nobody caught, or its handler's promise
    /// rejected.
    Threw,
    /// The event ran past its time budget (or, in Python, made more host calls than the cap).
    /// Bot code cannot catch this.
    CpuBudget,
    /// The runtime's memory cap was reached; in Python, a single result was estimated above it,
    /// or the bot raised `MemoryError`.
    Memory,
    /// Recursion went past the stack cap (in Python, an uncaught `RecursionError`).
    StackOverflow,
    /// The bot posted more messages in one event than the cap allows.
    TooManyPosts,
    /// The state given to `ctx.set_state` is larger than the cap once serialized.
    StateTooLarge,
    /// The state given to `ctx.set_state` cannot be represented as JSON.
    BadState,
    /// A post was refused: bad body shape, body over the message caps, or unknown recipient.
    BadPost,
    /// A `ctx` function was called with arguments of the wrong type or range.
    BadArgument,
    /// The worker process running the event died in a way the runtime did not report (a
    /// native crash, an allocator abort).
    Crashed,
    /// The host itself failed; not the bot's fault.
    Internal,
}

impl BotErrorKind {
    /// A short snake_case name, for logs and for the channel message.
    pub fn as_str(self) -> &'static str {
        match self {
            BotErrorKind::BadSource => "bad_source",
            BotErrorKind::Threw => "threw",
            BotErrorKind::CpuBudget => "cpu_budget",
            BotErrorKind::Memory => "memory",
            BotErrorKind::StackOverflow => "stack_overflow",
            BotErrorKind::TooManyPosts => "too_many_posts",
            BotErrorKind::StateTooLarge => "state_too_large",
            BotErrorKind::BadState => "bad_state",
            BotErrorKind::BadPost => "bad_post",
            BotErrorKind::BadArgument => "bad_argument",
            BotErrorKind::Crashed => "crashed",
            BotErrorKind::Internal => "internal",
        }
    }

    /// Every kind, for parsing and for tests.
    pub const ALL: [BotErrorKind; 12] = [
        BotErrorKind::BadSource,
        BotErrorKind::Threw,
        BotErrorKind::CpuBudget,
        BotErrorKind::Memory,
        BotErrorKind::StackOverflow,
        BotErrorKind::TooManyPosts,
        BotErrorKind::StateTooLarge,
        BotErrorKind::BadState,
        BotErrorKind::BadPost,
        BotErrorKind::BadArgument,
        BotErrorKind::Crashed,
        BotErrorKind::Internal,
    ];

    /// The kind named by [`BotErrorKind::as_str`].
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

impl fmt::Display for BotErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed bot event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bot {kind}: {message}{}", line.map(|line| format!(" (line {line})")).unwrap_or_default())]
pub struct BotError {
    pub kind: BotErrorKind,
    /// What happened, in words meant for the bot's author. Bot-controlled text (a thrown
    /// message) is included but cut to [`MAX_MESSAGE_CHARS`].
    pub message: String,
    /// The line of the bot source the error points at, when the engine knows it.
    pub line: Option<u32>,
}

/// Longest error message kept, in characters, so a bot cannot flood the channel through its
/// errors.
pub const MAX_MESSAGE_CHARS: usize = 500;

impl BotError {
    pub fn new(kind: BotErrorKind, message: impl Into<String>) -> Self {
        let mut message: String = message.into();
        if let Some((cut, _)) = message.char_indices().nth(MAX_MESSAGE_CHARS) {
            message.truncate(cut);
            message.push('…');
        }
        Self {
            kind,
            message,
            line: None,
        }
    }

    /// The event used up its CPU budget: one wording, whichever runtime or watchdog saw it.
    pub fn over_budget(budget: std::time::Duration) -> Self {
        Self::new(
            BotErrorKind::CpuBudget,
            format!(
                "the event ran past its CPU budget of {} ms",
                budget.as_millis()
            ),
        )
    }

    pub fn at_line(mut self, line: Option<u32>) -> Self {
        self.line = line;
        self
    }
}
