//! The bot runtimes: JavaScript bots run in QuickJS and Python bots in Monty, one fresh runtime
//! per event.
//!
//! [`run_event`] takes the bot's source, what the bot may know of the channel
//! ([`EventContext`]) and the [`Event`]; it gives back a [`Reaction`] (posts, new state, a
//! [`RunEnd`] if the bot ended its run, and the [`TimerRequest`]s it made) to store in the same
//! transaction, or a [`BotError`] and nothing else. The crate does no I/O and needs no async runtime; its one
//! global state is a cache of compiled JavaScript sources, which changes how long an event
//! takes and nothing else; `docs/bot-api.md` is the guide for bot authors. Because a runtime cannot interrupt every native loop, the server never calls this
//! crate on its own threads: it sends a [`Job`] to a worker process (the `workers` crate).
//!
//! - [`sandbox`]: one event in the bot's runtime, dispatched on its [`Language`].
//! - `javascript` (private): QuickJS under the [`Limits`], and error classification.
//! - `compiled` (private): the per-process cache of compiled JavaScript sources.
//! - `python` (private): Monty under the [`Limits`], on a thread of its own; the `ctx` Python bots
//!   receive (a small Python class appended to the source, whose calls the host answers in Rust),
//!   and error classification.
//! - `host` (private): the `ctx` object JavaScript bots receive, written in Rust.
//! - `ctx_rules` (private): what both languages' `ctx` check (posts, recipients, bodies, state,
//!   random ranges, commitment salts, end reasons, timers), so they refuse the same things in
//!   the same words.
//! - [`job`]: a self-contained unit of work and its wire form, for worker processes.
//! - [`event`]: what goes in ([`EventContext`], [`Event`]) and what comes out ([`Reaction`]).
//! - [`source`]: [`BotSource`], its [`Language`] and its [`CodeHash`].
//! - [`limits`]: the per-event caps and their defaults.
//! - [`random`]: the seeded, replayable random stream.
//! - [`commitment`]: the commit-reveal encoding, shared with bots through `ctx.commit`.
//! - [`builtin`]: the bots compiled into the binary, and their catalog.
//! - [`bench`]: a measurement of the per-event cost.
//! - [`error`]: [`BotError`] and its kinds.

pub mod bench;
pub mod builtin;
pub mod commitment;
mod compiled;
mod ctx_rules;
pub mod error;
pub mod event;
mod host;
mod javascript;
pub mod job;
pub mod limits;
mod python;
pub mod random;
pub mod sandbox;
pub mod source;

pub use builtin::{BuiltinInfo, builtin, catalog};
pub use commitment::commitment;
pub use ctx_rules::{
    DEFAULT_FETCH_TAG, MAX_END_REASON_BYTES, MAX_FETCH_CALLS, MAX_FETCH_URL_BYTES,
    MAX_PENDING_FETCHES, MAX_PENDING_TIMERS, MAX_TIMER_CALLS, MAX_TIMER_MS, MAX_TIMER_TAG_BYTES,
    pending_fetches_after, pending_timers_after,
};
pub use error::{BotError, BotErrorKind};
pub use event::{
    BotPost, BotSeed, Call, Event, EventContext, FetchRequest, Player, Reaction, RunEnd, SlotInfo,
    TimerRequest, fetch_result,
};
pub use job::Job;
pub use limits::Limits;
pub use sandbox::{check_source, run_call, run_event};
pub use source::{BotSource, CodeHash, Language};
