//! The embedded SQLite backend.
//!
//! SQLite allows one writer at a time, so one task owns the only writing connection and all
//! changes queue up for it. It commits them in groups: every change waiting when a transaction
//! starts joins it, each inside its own savepoint so that one failure undoes only itself, and
//! one `fsync` (`synchronous = FULL`) makes the whole group durable before anyone is answered.
//! The group's posts (changes that only add messages) are inserted together, a few dozen rows
//! per statement: each statement is a round trip to sqlx's connection thread.
//! Because that task is the only writer, it also keeps the channels it touched in memory.
//!
//! Reads go through a separate pool and never wait for the writer (WAL mode).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::{
    Channel, ChannelId, DomainError, Listing, Message, PageBudget, PrincipalId, SecretHash, Seq,
    Slot, SlotLabel,
};
use futures::future::BoxFuture;
use sqlx::Connection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use tokio::sync::{mpsc, oneshot};

mod bots;
mod chain;
mod keys;
mod oauth;
mod recent;

use recent::Recent;

use crate::rows::{ChangedRows, channel_from_rows, fill_page, message_from_row, stored_data};
use crate::signals::{Advance, Snapshot};
use crate::{
    Access, Audience, ChannelListing, Durability, MessagePage, ReadMark, SeatSummary, Signals,
    StoreError, StoreSettings,
};

/// The messages of channel ?1 with ?2 < seq <= ?3 that seat ?4 (held since ?6) may see, or all
/// of them when ?4 is NULL, oldest first, at most ?5. Mirrors `Message::visible_to`.
const VISIBLE_MESSAGES: &str = "SELECT seq, kind, sender, sender_name, body_text, body_data, recipient, nonce, at, hash \
     FROM messages \
     WHERE channel_id = ?1 AND seq > ?2 AND seq <= ?3 \
       AND (?4 IS NULL OR recipient IS NULL OR ((recipient = ?4 OR sender = ?4) AND seq > ?6)) \
     ORDER BY seq LIMIT ?5";

/// Channels kept in the writer's memory before it starts over.
const WRITER_CACHE_CAPACITY: usize = 10_000;
/// Changes waiting for the writer before callers are made to wait for room.
const WRITE_QUEUE_CAPACITY: usize = 4_096;

/// A handle to the SQLite database. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: mpsc::Sender<Job>,
    signals: Signals,
    committed: Committed,
    recent: Recent,
    /// Held for the store's lifetime: a second process on the same file would make the
    /// writer's memory of channels wrong. `None` for the administrative accesses
    /// ([`Access::PeopleAndTokens`], [`Access::ServerKeys`]).
    _exclusive: Option<Arc<std::fs::File>>,
}

/// One change for the writer. A job that writes more than one statement wraps them in a
/// savepoint, so its failure undoes only itself; a single statement is atomic on its own.
type Job = Box<dyn for<'w> FnOnce(&'w mut Writer) -> BoxFuture<'w, JobDone> + Send>;

struct JobDone {
    /// The database failed under this job: the group's transaction can no longer be trusted.
    breaks_group: bool,
    /// The channel as this job left it, for readers once the group is committed.
    committed: Option<Channel>,
    /// Called with the outcome of the whole group's commit.
    finish: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
    /// What to announce once the group is durable.
    advanced: Option<Advanced>,
}

/// A channel that moved forward in a job.
struct Advanced {
    channel_id: ChannelId,
    seq: Seq,
    /// The messages the job added, for the recent tails and the snapshot.
    messages: Vec<Message>,
    /// The channel after the job, for a snapshot; only kept when someone waits.
    watched: Option<Channel>,
}

impl Advanced {
    fn new(channel: &Channel, messages: &[Message], signals: &Signals) -> Self {
        Advanced {
            channel_id: channel.id.clone(),
            seq: channel.last_seq,
            messages: messages.to_vec(),
            watched: signals.is_watched(&channel.id).then(|| channel.clone()),
        }
    }
}

impl JobDone {
    /// A job that failed on its own, having written nothing (or undone it): its caller is told why.
    fn failed<T: Send + 'static>(
        error: StoreError,
        reply: oneshot::Sender<Result<T, StoreError>>,
    ) -> Self {
        JobDone {
            breaks_group: matches!(error, StoreError::Backend(_)),
            committed: None,
            finish: Box::new(move |_| {
                let _ = reply.send(Err(error));
            }),
            advanced: None,
        }
    }
}

/// Channels as last committed, shared by the writer (which alone fills it) and the readers.
/// A reader that finds a channel here skips two queries; one that does not reads the database.
type Committed = Arc<RwLock<HashMap<ChannelId, Arc<Channel>>>>;

/// State owned by the writer task.
struct Writer {
    conn: SqliteConnection,
    signals: Signals,
    /// Channels as last written, committed or about to be within the current group.
    cache: HashMap<ChannelId, Channel>,
    committed: Committed,
    recent: Recent,
    /// Messages decided in this group and not inserted yet (see `apply_change`).
    unwritten: Vec<(ChannelId, Message)>,
}

impl SqliteStore {
    pub async fn open(
        url: &str,
        settings: StoreSettings,
        access: Access,
    ) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let exclusive = match access {
            Access::Everything => Some(Arc::new(lock_database(options.get_filename())?)),
            Access::PeopleAndTokens | Access::ServerKeys => None,
        };
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&mut conn)
            .await
            .map_err(|error| StoreError::Backend(format!("migration failed: {error}")))?;
        if access == Access::Everything {
            chain::link_unhashed(&mut conn).await?;
        }
        let readers = SqlitePoolOptions::new()
            .max_connections(settings.connections.max(1))
            .min_connections(1)
            .connect_with(options)
            .await?;
        let (writer, queue) = mpsc::channel(WRITE_QUEUE_CAPACITY);
        let signals = Signals::default();
        let committed = Committed::default();
        let recent = Recent::default();
        let max_group = settings.max_group_commit.max(1);
        // A task, not a thread of its own: the writer mostly waits on sqlx's connection thread,
        // and a thread more between the request and that one cost a context switch per hand-off
        // (a profile of a durable post had a third of the server's CPU there).
        tokio::spawn(run_writer(
            Writer {
                conn,
                signals: signals.clone(),
                cache: HashMap::new(),
                committed: committed.clone(),
                recent: recent.clone(),
                unwritten: Vec::new(),
            },
            queue,
            signals.clone(),
            max_group,
        ));
        Ok(Self {
            readers,
            writer,
            signals,
            committed,
            recent,
            _exclusive: exclusive,
        })
    }

    /// Runs `work` as one job of the writer's next group, inside its own savepoint.
    async fn submit_sql<T, W>(&self, work: W) -> Result<T, StoreError>
    where
        T: Send + 'static,
        W: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.submit(move |writer, reply| {
            Box::pin(async move {
                if let Err(error) = savepoint(&mut writer.conn).await {
                    return JobDone::failed(error, reply);
                }
                let outcome = work(&mut writer.conn).await;
                if let Err(error) = release(&mut writer.conn, outcome.is_ok()).await {
                    return JobDone::failed(error, reply);
                }
                match outcome {
                    Ok(value) => JobDone {
                        breaks_group: false,
                        committed: None,
                        finish: Box::new(move |commit| {
                            let _ = reply.send(commit.map(|()| value));
                        }),
                        advanced: None,
                    },
                    Err(error) => JobDone::failed(error, reply),
                }
            })
        })
        .await
    }

    /// Queues `job` for the writer and waits for its reply. The posts that earlier jobs of the
    /// group left unwritten are inserted first, so the job's SQL finds every row before it.
    async fn submit<T>(
        &self,
        job: impl for<'w> FnOnce(
            &'w mut Writer,
            oneshot::Sender<Result<T, StoreError>>,
        ) -> BoxFuture<'w, JobDone>
        + Send
        + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        self.submit_unflushed(move |writer, reply| {
            Box::pin(async move {
                if let Err(error) = writer.flush().await {
                    return JobDone::failed(error, reply);
                }
                job(writer, reply).await
            })
        })
        .await
    }

    /// [`Self::submit`] for a job that reads no message rows and may leave messages unwritten.
    async fn submit_unflushed<T>(
        &self,
        job: impl for<'w> FnOnce(
            &'w mut Writer,
            oneshot::Sender<Result<T, StoreError>>,
        ) -> BoxFuture<'w, JobDone>
        + Send
        + 'static,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |writer| job(writer, reply));
        self.writer
            .send(job)
            .await
            .map_err(|_| StoreError::Backend("the database writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the database writer dropped a change".into()))?
    }
}

#[async_trait::async_trait]
impl crate::ChannelBackend for SqliteStore {
    fn signals(&self) -> &Signals {
        &self.signals
    }

    fn is_shared(&self) -> bool {
        false
    }

    fn stats(&self) -> crate::BackendStats {
        crate::BackendStats {
            connections: self.readers.size() + 1,
            idle_connections: u32::try_from(self.readers.num_idle()).unwrap_or(u32::MAX),
            ..crate::BackendStats::default()
        }
    }

    /// How commits reach the disk, as the writer's own connection reports it.
    async fn durability(&self) -> Result<Durability, StoreError> {
        self.submit_sql(|conn| {
            Box::pin(async move {
                let (journal,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                    .fetch_one(&mut *conn)
                    .await?;
                let (level,): (i64,) = sqlx::query_as("PRAGMA synchronous")
                    .fetch_one(&mut *conn)
                    .await?;
                let synchronous = match level {
                    0 => "off",
                    1 => "normal",
                    2 => "full",
                    3 => "extra",
                    _ => "unknown",
                };
                Ok(Durability {
                    journal: journal.to_lowercase(),
                    synchronous: synchronous.to_owned(),
                })
            })
        })
        .await
    }

    async fn insert_channel(
        &self,
        mut channel: Channel,
        max_open_owned: usize,
        bots: Vec<crate::bots::BotRecord>,
    ) -> Result<Vec<Message>, StoreError> {
        self.submit(move |writer, reply| {
            Box::pin(async move {
                let messages = channel.take_new_messages();
                let result = async {
                    let (open_owned,): (i64,) = sqlx::query_as(
                        "SELECT COUNT(*) FROM channels WHERE owner = ?1 AND closed = 0",
                    )
                    .bind(channel.owner.as_str())
                    .fetch_one(&mut writer.conn)
                    .await?;
                    if usize::try_from(open_owned).unwrap_or(usize::MAX) >= max_open_owned {
                        return Err(StoreError::Domain(DomainError::LimitExceeded {
                            what: "open channels you own",
                            limit: max_open_owned,
                        }));
                    }
                    savepoint(&mut writer.conn).await?;
                    let mut written =
                        insert_channel_rows(&mut writer.conn, &channel, &messages).await;
                    for bot in bots {
                        if written.is_ok() {
                            written = bots::insert_bot(&mut writer.conn, bot).await;
                        }
                    }
                    release(&mut writer.conn, written.is_ok()).await?;
                    written
                }
                .await;
                match result {
                    Ok(()) => {
                        let advanced = Some(Advanced::new(&channel, &messages, &writer.signals));
                        writer.cache.insert(channel.id.clone(), channel.clone());
                        JobDone {
                            breaks_group: false,
                            committed: Some(channel),
                            finish: Box::new(move |commit| {
                                let _ = reply.send(commit.map(|()| messages));
                            }),
                            advanced,
                        }
                    }
                    Err(error) => JobDone::failed(error, reply),
                }
            })
        })
        .await
    }

    async fn apply_change(
        &self,
        id: &ChannelId,
        change: crate::ChannelChange,
    ) -> Result<Vec<Message>, StoreError> {
        let id = id.clone();
        self.submit_unflushed(move |writer, reply| {
            Box::pin(async move {
                let before = match writer.cached_or_load(&id).await {
                    Ok(channel) => channel,
                    Err(error) => return JobDone::failed(error, reply),
                };
                let mut after = before.clone();
                // A panicking rule must not take the writer, and every later write, down with it.
                let decided =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change(&mut after)));
                let bot_writes = match decided {
                    Err(_) => {
                        tracing::error!(channel = %id, "a channel rule panicked");
                        return JobDone::failed(
                            StoreError::Backend("a channel rule panicked".into()),
                            reply,
                        );
                    }
                    Ok(Ok(decided)) => decided,
                    // The closure refused before anything was written: nothing to undo.
                    Ok(Err(refusal)) => {
                        return JobDone {
                            breaks_group: false,
                            committed: None,
                            finish: Box::new(move |_| {
                                let _ = reply.send(Err(StoreError::Domain(refusal)));
                            }),
                            advanced: None,
                        };
                    }
                };
                let messages = after.take_new_messages();
                // The rules refuse closed channels one by one; this is the backstop where the
                // write happens: a channel closed before this change takes no new line.
                if before.closed && !messages.is_empty() {
                    tracing::error!(channel = %id, "a rule tried to write to a closed channel");
                    return JobDone {
                        breaks_group: false,
                        committed: None,
                        finish: Box::new(move |_| {
                            let _ = reply.send(Err(StoreError::Domain(DomainError::ChannelClosed)));
                        }),
                        advanced: None,
                    };
                }
                let rows = ChangedRows::between(&before, &after);
                let only_messages =
                    bot_writes.is_empty() && !rows.header_changed && rows.slots.is_empty();
                if only_messages {
                    // A post: its row waits to be inserted with the rest of the group's, in one
                    // statement (`Writer::flush`), before the next job that writes otherwise and
                    // before the commit. Until then the channel is in the cache, so nothing
                    // reads its messages from the table.
                    writer
                        .unwritten
                        .extend(messages.iter().map(|message| (id.clone(), message.clone())));
                } else {
                    let written = match writer.flush().await {
                        Ok(()) => {
                            persist_with_bots(
                                &mut writer.conn,
                                &before,
                                &after,
                                &messages,
                                bot_writes,
                            )
                            .await
                        }
                        Err(error) => Err(error),
                    };
                    if let Err(error) = written {
                        return JobDone::failed(error, reply);
                    }
                }
                let advanced = (!messages.is_empty())
                    .then(|| Advanced::new(&after, &messages, &writer.signals));
                let committed = (after != before).then(|| after.clone());
                writer.cache.insert(id, after);
                JobDone {
                    breaks_group: false,
                    committed,
                    finish: Box::new(move |commit| {
                        let _ = reply.send(commit.map(|()| messages));
                    }),
                    advanced,
                }
            })
        })
        .await
    }

    async fn mark_read(&self, marks: Vec<ReadMark>) -> Result<(), StoreError> {
        self.submit(move |writer, reply| {
            Box::pin(async move {
                if let Err(error) = savepoint(&mut writer.conn).await {
                    return JobDone::failed(error, reply);
                }
                for mark in &marks {
                    let result = sqlx::query(
                        "UPDATE slots SET read_seq = MAX(read_seq, ?4) \
                         WHERE channel_id = ?1 AND label = ?2 AND holder = ?3",
                    )
                    .bind(mark.channel.as_str())
                    .bind(mark.slot.as_str())
                    .bind(mark.holder.as_str())
                    .bind(mark.seq.0)
                    .execute(&mut writer.conn)
                    .await;
                    if let Err(error) = result {
                        let _ = release(&mut writer.conn, false).await;
                        return JobDone::failed(error.into(), reply);
                    }
                }
                if let Err(error) = release(&mut writer.conn, true).await {
                    return JobDone::failed(error, reply);
                }
                JobDone {
                    breaks_group: false,
                    committed: None,
                    finish: Box::new(move |commit| {
                        let _ = reply.send(commit);
                    }),
                    advanced: None,
                }
            })
        })
        .await
    }

    async fn load_channel(&self, id: &ChannelId) -> Result<Channel, StoreError> {
        let cached = self
            .committed
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(id)
            .cloned();
        if let Some(channel) = cached {
            return Ok(Channel::clone(&channel));
        }
        // One read transaction, so the header and the slots come from the same commit.
        let mut conn = self.readers.begin().await?;
        let channel = load_channel(&mut conn, id).await;
        conn.commit().await?;
        channel
    }

    async fn find_channel_by_secret(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ChannelId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT channel_id FROM slots WHERE invite_hash = ?1 OR rejoin_hash = ?1 LIMIT 1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|(id,)| ChannelId::from_trusted(id)))
    }

    async fn messages(
        &self,
        id: &ChannelId,
        audience: Audience<'_>,
        after: Seq,
        upto: Seq,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let (viewer, since) = match audience {
            Audience::Seat { slot, since } => (Some(slot.as_str()), since.0),
            Audience::Everything => (None, 0),
        };
        let rows = sqlx::query(VISIBLE_MESSAGES)
            .bind(id.as_str())
            .bind(after.0)
            .bind(upto.0)
            .bind(viewer)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(since)
            .fetch_all(&self.readers)
            .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn notices(
        &self,
        id: &ChannelId,
        after: Seq,
        upto: Seq,
    ) -> Result<Vec<Message>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, sender, sender_name, body_text, body_data, recipient, nonce, at, hash \
             FROM messages WHERE channel_id = ?1 AND seq > ?2 AND seq <= ?3 AND kind = 'system' \
             ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(after.0)
        .bind(upto.0)
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(message_from_row).collect()
    }

    async fn message_page(
        &self,
        id: &ChannelId,
        audience: Audience<'_>,
        after: Seq,
        upto: Seq,
        budget: PageBudget,
    ) -> Result<MessagePage, StoreError> {
        let seat = match audience {
            Audience::Seat { slot, since } => Some((slot, since)),
            Audience::Everything => None,
        };
        if let Some(page) = self.recent.page(id, seat, after, upto, budget) {
            return Ok(page);
        }
        let (viewer, since) = match seat {
            Some((slot, since)) => (Some(slot.as_str()), since.0),
            None => (None, 0),
        };
        // One row past the count, so that a page full by count still learns whether more follow.
        let bound = budget.max_messages.saturating_add(1);
        let rows = sqlx::query(VISIBLE_MESSAGES)
            .bind(id.as_str())
            .bind(after.0)
            .bind(upto.0)
            .bind(viewer)
            .bind(i64::try_from(bound).unwrap_or(i64::MAX))
            .bind(since)
            .fetch(&self.readers);
        fill_page(rows, budget).await
    }

    async fn quick_match_seat(
        &self,
        who: &PrincipalId,
        bot: &str,
    ) -> Result<Option<ChannelId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT c.id FROM channels c \
             WHERE c.listing = 'quick_match' AND c.closed = 0 \
             AND EXISTS (SELECT 1 FROM slots s WHERE s.channel_id = c.id AND s.holder = ?1) \
             AND EXISTS (SELECT 1 FROM bots b WHERE b.channel_id = c.id \
                         AND b.name = ?2 AND b.ended = 0 AND b.disabled = 0) \
             ORDER BY c.created_at DESC, c.id LIMIT 1",
        )
        .bind(who.as_str())
        .bind(bot)
        .fetch_optional(&self.readers)
        .await?;
        Ok(row.map(|(id,)| ChannelId::from_trusted(id)))
    }

    async fn lobby(
        &self,
        listing: Option<Listing>,
        bot: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ChannelId>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT c.id FROM channels c \
             WHERE c.listing IS NOT NULL AND c.closed = 0 \
             AND (?1 IS NULL OR c.listing = ?1) \
             AND EXISTS (SELECT 1 FROM slots s WHERE s.channel_id = c.id \
                         AND s.kind = 'invite' AND s.holder IS NULL) \
             AND (?2 IS NULL OR EXISTS (SELECT 1 FROM bots b WHERE b.channel_id = c.id \
                         AND b.name = ?2 AND b.ended = 0 AND b.disabled = 0)) \
             ORDER BY c.created_at, c.id LIMIT ?3",
        )
        .bind(listing.map(Listing::as_str))
        .bind(bot)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.readers)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id,)| ChannelId::from_trusted(id))
            .collect())
    }

    async fn channels_of(&self, who: &PrincipalId) -> Result<Vec<ChannelListing>, StoreError> {
        // One read transaction: every channel and count comes from the same commit.
        let mut conn = self.readers.begin().await?;
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM channels WHERE owner = ?1 \
             UNION SELECT channel_id FROM slots WHERE holder = ?1",
        )
        .bind(who.as_str())
        .fetch_all(&mut *conn)
        .await?;
        let mut listings = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let channel = load_channel(&mut conn, &ChannelId::from_trusted(id)).await?;
            let mut seats = Vec::new();
            for slot in channel.seats_of(who) {
                let (unread,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM messages m JOIN slots s \
                       ON s.channel_id = m.channel_id AND s.label = ?2 \
                     WHERE m.channel_id = ?1 AND m.seq > s.read_seq \
                       AND m.sender IS NOT ?2 \
                       AND (m.recipient IS NULL OR (m.recipient = ?2 AND m.seq > s.since_seq))",
                )
                .bind(channel.id.as_str())
                .bind(slot.label.as_str())
                .fetch_one(&mut *conn)
                .await?;
                seats.push(SeatSummary {
                    slot: slot.label.clone(),
                    unread: u64::try_from(unread).unwrap_or_default(),
                });
            }
            listings.push(ChannelListing { channel, seats });
        }
        conn.commit().await?;
        listings.sort_by_key(|listing| std::cmp::Reverse(listing.channel.created_at));
        Ok(listings)
    }
}

impl Writer {
    /// Inserts the messages that jobs of this group left unwritten. A failure here breaks the
    /// group: those jobs have already reported success.
    async fn flush(&mut self) -> Result<(), StoreError> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.unwritten);
        insert_rows(&mut self.conn, &rows).await.map_err(|error| {
            StoreError::Backend(format!("inserting a group's messages failed: {error}"))
        })
    }

    async fn cached_or_load(&mut self, id: &ChannelId) -> Result<Channel, StoreError> {
        if let Some(channel) = self.cache.get(id) {
            return Ok(channel.clone());
        }
        // The cache is only ever trimmed between groups (see `run_writer`), so a channel missing
        // here has no write in the current group: what is read is committed state. It reaches
        // readers only through a job's `committed`, after the commit.
        let channel = load_channel(&mut self.conn, id).await?;
        self.cache.insert(id.clone(), channel.clone());
        Ok(channel)
    }
}

/// The writer task: takes every queued job, runs them in one transaction, commits once, then
/// answers each caller and wakes readers.
async fn run_writer(
    mut writer: Writer,
    mut queue: mpsc::Receiver<Job>,
    signals: Signals,
    max_group: usize,
) {
    let mut group = Vec::with_capacity(max_group);
    while queue.recv_many(&mut group, max_group).await > 0 {
        // Trimmed here, between groups, never inside one: a channel written earlier in a group
        // must not be reloaded through the open transaction as if it were committed.
        if writer.cache.len() >= WRITER_CACHE_CAPACITY {
            writer.cache.clear();
        }
        let mut done: Vec<JobDone> = Vec::with_capacity(group.len());
        let commit = match sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut writer.conn)
            .await
        {
            Ok(_) => {
                let mut broken = false;
                for job in group.drain(..) {
                    if broken {
                        // Dropping a job drops its reply channel: its caller gets an error.
                        continue;
                    }
                    let outcome = job(&mut writer).await;
                    broken = outcome.breaks_group;
                    done.push(outcome);
                }
                if !broken && let Err(error) = writer.flush().await {
                    tracing::error!(%error, "could not insert a group's messages");
                    broken = true;
                }
                if broken {
                    // Some SQLite errors roll back the whole transaction, after which later
                    // statements would autocommit one by one. Nothing of this group is kept.
                    writer.unwritten.clear();
                    Err(
                        "a change failed in the database; its whole group was rolled back"
                            .to_owned(),
                    )
                } else {
                    sqlx::query("COMMIT")
                        .execute(&mut writer.conn)
                        .await
                        .map(drop)
                        .map_err(|error| error.to_string())
                }
            }
            Err(error) => {
                group.clear();
                Err(error.to_string())
            }
        };
        if let Err(error) = &commit {
            tracing::error!(%error, jobs = done.len(), "group commit failed");
            // The cache may hold changes that never reached the disk.
            writer.cache.clear();
            let _ = sqlx::query("ROLLBACK").execute(&mut writer.conn).await;
        }
        // Readers see the new state before anyone hears of it: first the committed channels and
        // messages, then the callers' answers, then the wake-ups.
        let mut advances: HashMap<ChannelId, Advanced> = HashMap::new();
        if commit.is_ok() {
            publish_committed(
                &writer.committed,
                done.iter_mut().filter_map(|job| job.committed.take()),
            );
            for advanced in done.iter_mut().filter_map(|job| job.advanced.take()) {
                merge_advance(&mut advances, advanced);
            }
            for (channel_id, advanced) in &advances {
                writer.recent.extend(channel_id, &advanced.messages);
            }
        }
        for job in done.drain(..) {
            (job.finish)(commit.clone().map_err(StoreError::Backend));
        }
        for (channel_id, advanced) in advances {
            let messages = advanced.messages;
            let snapshot = advanced
                .watched
                .map(|channel| Arc::new(Snapshot { channel, messages }));
            signals.publish(
                &channel_id,
                Advance {
                    seq: advanced.seq,
                    snapshot,
                },
            );
        }
    }
    let _ = writer.conn.close().await;
}

/// Folds the advances of one group together, so each channel is announced once, with every
/// message the group added to it.
fn merge_advance(advances: &mut HashMap<ChannelId, Advanced>, next: Advanced) {
    match advances.get_mut(&next.channel_id) {
        None => {
            advances.insert(next.channel_id.clone(), next);
        }
        Some(earlier) => {
            earlier.seq = next.seq;
            earlier.messages.extend(next.messages);
            earlier.watched = next.watched;
        }
    }
}

/// Takes an exclusive lock on `<database>.lock`, refusing to open a database that another
/// process is serving. The operating system drops the lock when the process ends, however it
/// ends.
fn lock_database(database: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let mut lock_path = database.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|error| {
            StoreError::Backend(format!("cannot open {}: {error}", lock_path.display()))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Backend(format!(
            "{} is in use by another process; stop it first (one server per SQLite file)",
            database.display()
        ))),
        Err(std::fs::TryLockError::Error(error)) => Err(StoreError::Backend(format!(
            "cannot lock {}: {error}",
            lock_path.display()
        ))),
    }
}

/// Makes `channels` the state readers see, replacing older versions.
fn publish_committed(committed: &Committed, channels: impl IntoIterator<Item = Channel>) {
    let mut map = committed
        .write()
        .unwrap_or_else(|poison| poison.into_inner());
    for channel in channels {
        if map.len() >= WRITER_CACHE_CAPACITY && !map.contains_key(&channel.id) {
            map.clear();
        }
        map.insert(channel.id.clone(), Arc::new(channel));
    }
}

/// Opens the savepoint that makes the following statements one unit within the group.
async fn savepoint(conn: &mut SqliteConnection) -> Result<(), StoreError> {
    sqlx::query("SAVEPOINT job").execute(conn).await?;
    Ok(())
}

/// Closes the savepoint, keeping its writes or undoing them.
async fn release(conn: &mut SqliteConnection, keep: bool) -> Result<(), StoreError> {
    if !keep {
        sqlx::query("ROLLBACK TO job").execute(&mut *conn).await?;
    }
    sqlx::query("RELEASE job").execute(&mut *conn).await?;
    Ok(())
}

async fn load_channel(conn: &mut SqliteConnection, id: &ChannelId) -> Result<Channel, StoreError> {
    let header = sqlx::query(
        "SELECT name, owner, created_at, closed, faithful_from, reveal_private, listing, \
         COALESCE((SELECT MAX(seq) FROM messages WHERE channel_id = ?1), 0) AS last_seq, \
         (SELECT hash FROM messages WHERE channel_id = ?1 ORDER BY seq DESC LIMIT 1) AS head \
         FROM channels WHERE id = ?1",
    )
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::Domain(DomainError::ChannelNotFound))?;
    let slot_rows = sqlx::query(
        "SELECT s.label, s.kind, s.admin, s.holder, s.holder_name, s.rejoin_hash, s.joined_at, \
         s.since_seq, s.invite_hash, b.name AS bot_name, b.language, b.code_hash, b.params_hash, \
         b.seed_commitment, b.disabled, b.ended \
         FROM slots s LEFT JOIN bots b ON b.channel_id = s.channel_id AND b.slot = s.label \
         WHERE s.channel_id = ?1 ORDER BY s.position",
    )
    .bind(id.as_str())
    .fetch_all(&mut *conn)
    .await?;
    channel_from_rows(id, &header, &slot_rows)
}

async fn insert_channel_rows(
    conn: &mut SqliteConnection,
    channel: &Channel,
    messages: &[Message],
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO channels (id, name, owner, created_at, closed, faithful_from, reveal_private, \
         listing) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(channel.id.as_str())
    .bind(&channel.name)
    .bind(channel.owner.as_str())
    .bind(channel.created_at.0)
    .bind(i64::from(channel.closed))
    .bind(channel.faithful_from.0)
    .bind(i64::from(channel.reveal_private))
    .bind(channel.listing.map(Listing::as_str))
    .execute(&mut *conn)
    .await?;
    for (position, slot) in channel.slots.iter().enumerate() {
        sqlx::query(
            "INSERT INTO slots (channel_id, position, label, kind) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(channel.id.as_str())
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(slot.label.as_str())
        .bind(slot.kind.as_str())
        .execute(&mut *conn)
        .await?;
        write_slot(conn, &channel.id, position, slot, false).await?;
    }
    insert_messages(conn, &channel.id, messages).await
}

/// [`persist_changes`] and the bot rows, all or nothing.
async fn persist_with_bots(
    conn: &mut SqliteConnection,
    before: &Channel,
    after: &Channel,
    messages: &[Message],
    bot_writes: Vec<crate::bots::BotWrite>,
) -> Result<(), StoreError> {
    if bot_writes.is_empty() {
        return persist_changes(conn, before, after, messages).await;
    }
    sqlx::query("SAVEPOINT bots").execute(&mut *conn).await?;
    let mut written = persist_changes(conn, before, after, messages).await;
    for write in bot_writes {
        if written.is_ok() {
            written = bots::write_bot(conn, &after.id, write).await;
        }
    }
    if written.is_err() {
        sqlx::query("ROLLBACK TO bots").execute(&mut *conn).await?;
    }
    sqlx::query("RELEASE bots").execute(&mut *conn).await?;
    written
}

/// Writes what changed between `before` and `after`, plus the new messages.
///
/// A channel's last seq is not stored: it is the largest seq of its messages, so a post is one
/// `INSERT`, atomic without a savepoint. Changes of several rows get a savepoint.
async fn persist_changes(
    conn: &mut SqliteConnection,
    before: &Channel,
    after: &Channel,
    messages: &[Message],
) -> Result<(), StoreError> {
    let ChangedRows {
        header_changed,
        slots: changed_slots,
    } = ChangedRows::between(before, after);
    let statements = usize::from(header_changed) + changed_slots.len() + messages.len();
    if statements > 1 {
        savepoint(conn).await?;
    }
    let written = write_changes(conn, after, header_changed, &changed_slots, messages).await;
    if statements > 1 {
        release(conn, written.is_ok()).await?;
    }
    written
}

async fn write_changes(
    conn: &mut SqliteConnection,
    after: &Channel,
    header_changed: bool,
    changed_slots: &[(usize, &Slot, bool)],
    messages: &[Message],
) -> Result<(), StoreError> {
    if header_changed {
        sqlx::query("UPDATE channels SET name = ?2, closed = ?3 WHERE id = ?1")
            .bind(after.id.as_str())
            .bind(&after.name)
            .bind(i64::from(after.closed))
            .execute(&mut *conn)
            .await?;
    }
    for (position, slot, holder_changed) in changed_slots {
        write_slot(conn, &after.id, *position, slot, *holder_changed).await?;
    }
    insert_messages(conn, &after.id, messages).await
}

async fn write_slot(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    position: usize,
    slot: &Slot,
    reset_read: bool,
) -> Result<(), StoreError> {
    let seat = slot.seat.as_ref();
    sqlx::query(
        "UPDATE slots SET admin = ?3, holder = ?4, holder_name = ?5, rejoin_hash = ?6, joined_at = ?7, \
         invite_hash = ?8, read_seq = CASE WHEN ?9 THEN 0 ELSE read_seq END, since_seq = ?10 \
         WHERE channel_id = ?1 AND position = ?2",
    )
    .bind(channel.as_str())
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(i64::from(slot.admin))
    .bind(seat.map(|s| s.holder.as_str()))
    .bind(seat.map(|s| s.holder_name.as_str()))
    .bind(seat.map(|s| s.rejoin_hash.as_str()))
    .bind(seat.map(|s| s.joined_at.0))
    .bind(slot.invite_hash.as_ref().map(SecretHash::as_str))
    .bind(reset_read)
    .bind(seat.map_or(0, |s| s.since.0))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn insert_messages(
    conn: &mut SqliteConnection,
    channel: &ChannelId,
    messages: &[Message],
) -> Result<(), StoreError> {
    let rows: Vec<(ChannelId, Message)> = messages
        .iter()
        .map(|message| (channel.clone(), message.clone()))
        .collect();
    insert_rows(conn, &rows).await
}

/// Rows per `INSERT`: SQLite caps a statement's parameters, and each row count is a statement
/// of its own in the cache.
const ROWS_PER_INSERT: usize = 32;

/// Inserts messages, of any channels, a few dozen per statement.
async fn insert_rows(
    conn: &mut SqliteConnection,
    rows: &[(ChannelId, Message)],
) -> Result<(), StoreError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at, hash, nonce) ",
        );
        insert.push_values(chunk, |mut row, (channel, message)| {
            row.push_bind(channel.as_str())
                .push_bind(message.seq.0)
                .push_bind(message.kind.as_str())
                .push_bind(message.sender.as_ref().map(SlotLabel::as_str))
                .push_bind(message.sender_name.as_str())
                .push_bind(message.body.text.as_deref())
                .push_bind(stored_data(message))
                .push_bind(message.to.as_ref().map(SlotLabel::as_str))
                .push_bind(message.at.0)
                .push_bind(message.hash.as_str())
                .push_bind(message.nonce.as_deref());
        });
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}
