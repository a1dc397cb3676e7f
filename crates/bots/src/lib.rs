//! The bot sandbox: JavaScript bots run in QuickJS, one fresh runtime per event.
//!
//! A service calls [`run_event`] with the bot's source, what the bot may know of the channel
//! ([`EventContext`]) and the [`Event`]; it gets back a [`Reaction`] (posts and new state) to store
//! in the same transaction, or a [`BotError`] and nothing else. The crate does no I/O, holds no
//! global state and needs no async runtime; `docs/bot-api.md` is the guide for bot authors.
//!
//! - [`sandbox`]: one event in a fresh runtime under the [`Limits`], and error classification.
//! - `host` (private): the `ctx` object bots receive, written in Rust.
//! - [`event`]: what goes in ([`EventContext`], [`Event`]) and what comes out ([`Reaction`]).
//! - [`source`]: [`BotSource`] and its [`CodeHash`].
//! - [`limits`]: the per-event caps and their defaults.
//! - [`random`]: the seeded, replayable random stream.
//! - [`commitment`]: the commit-reveal encoding, shared with bots through `ctx.commit`.
//! - [`builtin`]: the bots compiled into the binary, and their catalog.
//! - [`bench`]: a measurement of the per-event cost.
//! - [`error`]: [`BotError`] and its kinds.

pub mod bench;
pub mod builtin;
pub mod commitment;
pub mod error;
pub mod event;
mod host;
pub mod limits;
pub mod random;
pub mod sandbox;
pub mod source;

pub use builtin::{BuiltinInfo, builtin, catalog};
pub use commitment::commitment;
pub use error::{BotError, BotErrorKind};
pub use event::{BotPost, BotSeed, Event, EventContext, Player, Reaction, SlotInfo};
pub use limits::Limits;
pub use sandbox::{check_source, run_event};
pub use source::{BotSource, CodeHash};
