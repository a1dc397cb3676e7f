//! The rules of MCP Multiplayer, with no I/O, no clock and no randomness of their own.
//!
//! Everything here is a plain value or a pure function: callers pass in the current time and the
//! random bytes a rule needs, and get back a decision or a [`DomainError`].
//!
//! - [`attestation`]: the record of an HTTPS fetch the server made for a bot (the witness).
//! - [`bot_output`]: the caps on what bots write across events, and the ledger that keeps them.
//! - [`ids`]: identifier newtypes (`ChannelId`, `PrincipalId`, `SlotLabel`, `Seq`, `Timestamp`).
//! - [`limits`]: every size and count cap, as documented constants.
//! - [`secret`]: invite codes and rejoin tokens, and the hashes under which they are stored.
//! - [`message`]: message kinds, bodies, drafts and who may see what.
//! - [`notice`]: the typed vocabulary of system notices and its versioned codec.
//! - [`chain`]: the hash chain over a channel's messages and their canonical encoding.
//! - [`roster`]: who sat where at any seq, folded from the notices.
//! - [`page`]: how many messages one sync page holds, by count and by bytes.
//! - [`names`]: the rule for display and channel names, and quoting untrusted text in notices.
//! - [`channel`]: the channel aggregate (slots, seats, admins) and every operation on it.
//! - [`error`]: [`DomainError`], one variant per refusal, each with a stable code.

pub mod attestation;
pub mod bot_output;
pub mod chain;
pub mod channel;
pub mod error;
pub mod ids;
pub mod limits;
pub mod message;
pub mod names;
pub mod notice;
pub mod page;
pub mod roster;
pub mod secret;

pub use chain::ChainHash;
pub use channel::{
    AdminOp, BOT_ALIAS, BotCard, BotFailure, Channel, ChannelSpec, Created, Joined, Listing, Seat,
    Slot, SlotKind, SlotSpec,
};
pub use error::{DomainError, ErrorCode};
pub use ids::{ChannelId, PrincipalId, Seq, SlotLabel, Timestamp};
pub use message::{Body, Draft, Message, MessageKind};
pub use notice::{NOTICE_VERSION, Notice, NoticeError};
pub use page::{PageBudget, PageFill};
pub use roster::{Roster, RosterSlot};
pub use secret::{SecretHash, SecretSource};

/// Who is calling: resolved by an authenticator before any rule runs.
///
/// The id is internal and never shown to other participants; the display name is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: PrincipalId,
    pub display_name: String,
}
