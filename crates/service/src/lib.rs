//! Every capability of MCP Multiplayer, one method each, shared by the MCP tools and the REST API.
//!
//! - [`service`]: [`Service`] and its methods.
//! - [`sync`]: the long-polling sync, in steps that a caller may run itself.
//! - [`error`]: [`ServiceError`] with its stable code and recovery hint.
//! - [`caller`]: who is asking and what their credential allows; each method checks it first.
//! - [`admission`]: per-principal rate limiting and the cap on waiting syncs.
//! - `bots`: attaching bots and running their events, exactly once and in order.
//! - [`reads`]: read progress for unread counts, written in batches.
//! - `export`: signed heads on every read of a channel, and the export of a participant's
//!   view.
//! - [`keys`]: the server's signing keys: loading them into a keyring, making the first one,
//!   rotation, and noticing a rotation made beside the running server.
//!
//! A method takes the authenticated [`Caller`] and plain arguments, checks the caller's access
//! (reading or writing) before anything else, checks the arguments through the
//! domain rules, runs the change through the store in one transaction, and returns domain values.
//! Nothing here knows HTTP, MCP or SQL.

mod admission;
mod bots;
mod caller;
mod error;
mod export;
mod fetches;
pub mod keys;
mod lobby;
#[cfg(test)]
mod model;
mod reads;
mod service;
mod sync;
#[cfg(test)]
mod testing;
mod timers;

pub use bots::{BotActivity, BotCode, BotRequest, BotTally, CodeOf, MAX_BOT_FAILURES};
pub use caller::{Access, Caller};
pub use domain::Principal;
pub use error::ServiceError;
pub use export::export_everything;
pub use fetches::FetchSettings;
pub use keys::{KeysError, PublishedKeys};
pub use lobby::{LOBBY_LIMIT, QUICK_MATCH_GAMES, QuickMatch, QuickMatchRequest};
pub use service::{
    AdminRequest, Clock, CreateRequest, Created, Joined, NotReady, PostRequest, Service,
    ServiceSettings, SystemClock,
};
pub use store::ChannelListing;
pub use sync::{PendingSync, SyncPage, SyncRequest, SyncStep, WokenSync};
