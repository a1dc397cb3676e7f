//! Durable storage for channels and their messages, behind one [`Store`] type.
//!
//! - [`sqlite`]: the embedded backend: one writer task that commits in groups, and a pool of
//!   readers. One process per database.
//! - [`postgres`]: the shared backend: row locks per channel, `NOTIFY` to wake the syncs of
//!   every instance, leases so that instances take turns at bot work.
//! - [`rows`]: reading rows back into domain types, once for both backends.
//! - [`testing`]: a test database on either backend, for the workspace's suites.
//! - [`bots`]: what is stored of attached bots beside their public card.
//! - [`oauth`]: people, OAuth clients, codes and tokens for the authorization server.
//! - [`keys`]: the server's signing keys, as bytes: the active one, the retired ones, rotation.
//! - [`signals`]: "channel X advanced to seq N" notifications that wake waiting syncs; a backend
//!   publishes them only after its commit.
//!
//! The contract: [`Store::update_channel`] loads a channel, runs a pure domain closure on it and
//! stores the changed channel together with the messages the closure produced, all in one
//! transaction or not at all. Nothing here knows HTTP, MCP or bots.

pub mod bots;
pub mod keys;
pub mod oauth;
pub mod postgres;
mod rows;
pub mod signals;
pub mod sqlite;
pub mod testing;

use domain::{
    Channel, ChannelId, DomainError, Listing, Message, PageBudget, PrincipalId, SecretHash, Seq,
    SlotLabel,
};

pub use signals::{Advance, Signals, Snapshot, Subscription};

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A domain rule refused the change; nothing was written.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The database failed or is unreachable. Details go to the log, never to callers.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// A stored row could not be read back into domain types.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The change was based on a state that moved on meanwhile; nothing was written.
    #[error("conflicting change: {0}")]
    Conflict(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

/// One seat a principal holds, with how much it has not read yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatSummary {
    pub slot: SlotLabel,
    pub unread: u64,
}

/// A channel as listed for one principal.
#[derive(Debug, Clone)]
pub struct ChannelListing {
    pub channel: Channel,
    pub seats: Vec<SeatSummary>,
}

/// "The holder of `slot` has read up to `seq`", for unread counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReadMark {
    pub channel: ChannelId,
    pub slot: SlotLabel,
    pub holder: PrincipalId,
    pub seq: Seq,
}

/// Which messages a reader may see.
#[derive(Debug, Clone, Copy)]
pub enum Audience<'a> {
    /// A seat: public messages plus the private ones it sent or received after `since`
    /// (see `domain::Seat::since`).
    Seat { slot: &'a SlotLabel, since: Seq },
    /// Everything (bots referee the whole channel).
    Everything,
}

/// How commits reach the disk (SQLite's names): an acknowledged write survives a power loss
/// only with `journal` = `wal` and `synchronous` = `full`, or stricter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    pub journal: String,
    pub synchronous: String,
}

/// A backend's connections and notices, as `/metrics` shows them.
#[derive(Debug, Clone, Default)]
pub struct BackendStats {
    /// Open connections, and how many of them are idle.
    pub connections: u32,
    pub idle_connections: u32,
    /// Notices of commits by other instances received (PostgreSQL), and the sum of their delays
    /// from the commit to their arrival here.
    pub notices: u64,
    pub notice_delay: std::time::Duration,
    /// Times the connection that receives notices was lost and made again.
    pub notice_reconnections: u64,
}

/// One page of a channel's messages.
#[derive(Debug, Default)]
pub struct MessagePage {
    pub messages: Vec<Message>,
    /// A visible message after the last one here exists (within the bound that was read).
    pub has_more: bool,
}

impl MessagePage {
    /// The page that `budget` makes of `messages` (visible ones, oldest first): it ends at the
    /// first message the budget refuses.
    pub fn filled<'m>(messages: impl IntoIterator<Item = &'m Message>, budget: PageBudget) -> Self {
        let mut fill = budget.fill();
        let mut page = MessagePage::default();
        for message in messages {
            if !fill.admit(message) {
                page.has_more = true;
                break;
            }
            page.messages.push(message.clone());
        }
        page
    }
}

/// What a process opening the database means to do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Serve: on SQLite the only process on the file, which keeps channels in memory; on
    /// PostgreSQL one of any number of instances.
    Everything,
    /// Administer people and tokens only. No server keeps those in memory beyond a few
    /// seconds, so this may run beside one.
    PeopleAndTokens,
    /// Administer the server's signing keys only. A server keeps its keys in memory and
    /// re-reads them at most a minute after a change, so this may run beside one.
    ServerKeys,
}

/// Tuning that the binary sets from its configuration.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Connections to the database: SQLite's read pool (its one writer comes on top), or
    /// PostgreSQL's pool for reads and writes.
    pub connections: u32,
    /// Most changes SQLite commits together in one transaction.
    pub max_group_commit: usize,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            connections: 8,
            max_group_commit: 256,
        }
    }
}

/// A change to one channel, as a backend runs it: a pure domain rule that may also ask for
/// bot rows to be written in the same transaction. Boxed so that backends can sit behind a
/// trait object; [`Store::update_channel_and_bots`] carries the rule's own outcome around it.
pub type ChannelChange =
    Box<dyn FnOnce(&mut Channel) -> Result<Vec<bots::BotWrite>, DomainError> + Send>;

/// Channels and their messages, as every backend stores them.
///
/// Each backend implements this and the three other parts of [`Backend`]; the contract of each
/// method is written here once, and a test suite (`tests.rs`) holds every backend to it.
#[async_trait::async_trait]
pub trait ChannelBackend: Send + Sync {
    /// How this store makes a commit durable: what the database itself reports, so a test and
    /// the startup log show the setting in force rather than the one intended.
    async fn durability(&self) -> Result<Durability, StoreError>;

    /// The wake-up signals fed by commits: this instance's, and (on a shared database) every
    /// other instance's.
    fn signals(&self) -> &Signals;

    /// Whether other instances may be serving the same database, so that work must be shared
    /// through leases ([`bots::BotBackend::take_lease`]) rather than in memory.
    fn is_shared(&self) -> bool;

    /// How the connections and the wake-ups from other instances are doing, for `/metrics`.
    fn stats(&self) -> BackendStats;

    /// Stores a new channel and the messages its creation produced, unless `owner` already has
    /// `max_open_owned` open channels.
    async fn insert_channel(
        &self,
        channel: Channel,
        max_open_owned: usize,
        bots: Vec<bots::BotRecord>,
    ) -> Result<Vec<Message>, StoreError>;

    /// Loads a channel, lets `change` decide, and stores the changed channel, its new messages
    /// and the bot rows `change` asked for, all in one transaction or not at all. A change to
    /// a channel that was closed before it may not add messages. Readers are woken once the
    /// change is durable. Use [`Store::update_channel`], which carries the rule's outcome.
    async fn apply_change(
        &self,
        id: &ChannelId,
        change: ChannelChange,
    ) -> Result<Vec<Message>, StoreError>;

    async fn load_channel(&self, id: &ChannelId) -> Result<Channel, StoreError>;

    /// The channel holding an open invite or a seat with this secret hash, if any.
    async fn find_channel_by_secret(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ChannelId>, StoreError>;

    /// Messages with `after < seq <= upto` that `audience` may see, oldest first, at most `limit`.
    async fn messages(
        &self,
        id: &ChannelId,
        audience: Audience<'_>,
        after: Seq,
        upto: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError>;

    /// The notices (`system` messages) with `after < seq <= upto`, oldest first: what a roster
    /// is folded from.
    async fn notices(
        &self,
        id: &ChannelId,
        after: Seq,
        upto: Seq,
    ) -> Result<Vec<Message>, StoreError>;

    /// The messages with `after < seq <= upto` that `audience` may see, oldest first, as many
    /// as `budget` lets one page hold, and whether more follow. Rows are read one at a time and
    /// the read stops at the first message the page refuses, so a page of large messages never
    /// loads more than it returns.
    async fn message_page(
        &self,
        id: &ChannelId,
        audience: Audience<'_>,
        after: Seq,
        upto: Seq,
        budget: PageBudget,
    ) -> Result<MessagePage, StoreError>;

    /// The channels where `who` holds a seat or is the owner, most recently active first.
    async fn channels_of(&self, who: &PrincipalId) -> Result<Vec<ChannelListing>, StoreError>;

    /// The newest open quick-match table where `who` holds a seat and whose bot named `bot`
    /// still runs: where a repeated quick match goes back to.
    async fn quick_match_seat(
        &self,
        who: &PrincipalId,
        bot: &str,
    ) -> Result<Option<ChannelId>, StoreError>;

    /// The channels in the public lobby (listed, open, with a player seat nobody holds),
    /// oldest first, at most `limit`: only those listed as `listing`, and only those whose bot
    /// named `bot` is still running, when given.
    async fn lobby(
        &self,
        listing: Option<Listing>,
        bot: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChannelId>, StoreError>;

    /// Records how far seat holders have read. A mark never moves backwards; each mark stands
    /// on its own (a failure may leave the ones before it recorded).
    async fn mark_read(&self, marks: Vec<ReadMark>) -> Result<(), StoreError>;
}

/// Everything a backend stores. Implemented for every type that implements the four parts.
pub trait Backend:
    ChannelBackend + bots::BotBackend + oauth::AuthBackend + keys::KeyBackend
{
}

impl<T> Backend for T where
    T: ChannelBackend + bots::BotBackend + oauth::AuthBackend + keys::KeyBackend
{
}

/// The storage of one deployment: a backend behind a trait object. Cheap to clone.
///
/// A trait object rather than an enum of backends: each backend implements the [`Backend`]
/// traits once, in its own module, and nothing dispatches by hand. The one generic operation,
/// [`Store::update_channel`], boxes its rule ([`ChannelChange`]); that costs one allocation
/// per write, next to a database round trip.
#[derive(Clone)]
pub struct Store(std::sync::Arc<dyn Backend>);

impl std::ops::Deref for Store {
    type Target = dyn Backend;

    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl Store {
    /// Opens the database named by `url` and brings its schema up to date.
    pub async fn open(url: &str, settings: StoreSettings) -> Result<Self, StoreError> {
        Self::open_with(url, settings, Access::Everything).await
    }

    /// Opens the database for [`Access::PeopleAndTokens`] only, beside a server that may be
    /// running on it (the `token` commands).
    pub async fn open_for_token_admin(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, StoreSettings::default(), Access::PeopleAndTokens).await
    }

    /// Opens the database for [`Access::ServerKeys`] only, beside a server that may be running
    /// on it (the `keys` commands).
    pub async fn open_for_key_admin(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, StoreSettings::default(), Access::ServerKeys).await
    }

    async fn open_with(
        url: &str,
        settings: StoreSettings,
        access: Access,
    ) -> Result<Self, StoreError> {
        let backend: std::sync::Arc<dyn Backend> = match url.split(':').next() {
            Some("sqlite") => {
                std::sync::Arc::new(sqlite::SqliteStore::open(url, settings, access).await?)
            }
            Some("postgres" | "postgresql") => {
                std::sync::Arc::new(postgres::PgStore::open(url, settings, access).await?)
            }
            scheme => {
                return Err(StoreError::Backend(format!(
                    "unsupported database URL scheme {:?}; use sqlite://path/to/file.db or \
                     postgres://user@host/database",
                    scheme.unwrap_or_default()
                )));
            }
        };
        Ok(Store(backend))
    }

    /// Loads a channel, lets `change` decide, and stores the result atomically. Readers are
    /// woken once the change is durable.
    pub async fn update_channel<T, F>(
        &self,
        id: &ChannelId,
        change: F,
    ) -> Result<(T, Vec<Message>), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Channel) -> Result<T, DomainError> + Send + 'static,
    {
        self.update_channel_and_bots(id, move |channel| {
            change(channel).map(|outcome| (outcome, Vec::new()))
        })
        .await
    }

    /// As [`Store::update_channel`], and the bot rows `change` asks for are written in the same
    /// transaction.
    pub async fn update_channel_and_bots<T, F>(
        &self,
        id: &ChannelId,
        change: F,
    ) -> Result<(T, Vec<Message>), StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Channel) -> Result<(T, Vec<bots::BotWrite>), DomainError> + Send + 'static,
    {
        // The backend runs the rule on its own task; the rule leaves its outcome here.
        let outcome = std::sync::Arc::new(std::sync::Mutex::new(None));
        let slot = outcome.clone();
        let change: ChannelChange = Box::new(move |channel| {
            let (decided, writes) = change(channel)?;
            *slot.lock().unwrap_or_else(|poison| poison.into_inner()) = Some(decided);
            Ok(writes)
        });
        let messages = self.0.apply_change(id, change).await?;
        let decided = outcome
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .take()
            .ok_or_else(|| StoreError::Backend("a committed change left no outcome".into()))?;
        Ok((decided, messages))
    }
}

#[cfg(test)]
mod tests;
