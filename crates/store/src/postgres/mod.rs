//! The PostgreSQL backend: for several instances of the server on one database.
//!
//! Reads go to the database: every instance may have written since. A change to a channel
//! locks its row (`SELECT version … FOR UPDATE`) for the length of one transaction, so changes
//! to one channel queue up in the database while different channels commit in parallel. It
//! starts from the channel as this instance remembers it when the row's version is the one it
//! remembered it at, and loads it otherwise ([`Remembered`]). On one instance, the changes to a
//! channel that arrive while its transaction runs wait for the next one and commit together
//! (one fsync for the group), each in a savepoint so that a refused one undoes only itself.
//! After the commit a `NOTIFY` names the channel and its new seq, and PostgreSQL delivers it to
//! every instance's listener, which wakes the syncs waiting there ([`listener`]).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::{
    Channel, ChannelId, DomainError, Listing, Message, PageBudget, PrincipalId, SecretHash, Seq,
    Slot,
};
use hashlink::LruCache;
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use tokio::sync::oneshot;

use crate::bots::BotRecord;
use crate::rows::{
    ChangedRows, Columns, channel_from_rows, fill_page, message_from_row, stored_data,
};
use crate::signals::{Advance, Snapshot};
use crate::{
    Access, Audience, BackendStats, ChannelBackend, ChannelChange, ChannelListing, Durability,
    MessagePage, ReadMark, SeatSummary, Signals, StoreError, StoreSettings,
};

/// A handle to the PostgreSQL database. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    signals: Signals,
    /// Tells the other instances of this one's commits.
    notifier: listener::Notifier,
    /// Receives other instances' notices; stops when the last handle goes.
    listener: Option<Arc<listener::Listening>>,
    /// Changes waiting for their channel's next transaction on this instance; a channel is a
    /// key while a task commits its changes.
    queued: Arc<Mutex<HashMap<ChannelId, Vec<Queued>>>>,
    /// Channels as this instance's last groups left them.
    remembered: Arc<Mutex<LruCache<ChannelId, Remembered>>>,
}

/// A channel as committed at a version of its row. Every commit that changes what
/// [`load_channel`] returns moves the version on (the statement that inserts messages does,
/// and [`Decided::write`] for a change that writes no message), on whichever instance it runs,
/// so a version that matches is the state itself. Only groups of posts are remembered: their
/// state in memory is exactly what they wrote; any other change is loaded again next time.
struct Remembered {
    version: i64,
    channel: Channel,
}

/// How many channels an instance remembers; past it the one used least recently goes.
const REMEMBERED_CHANNELS: usize = 4096;

/// A change waiting for its channel's transaction, and where its outcome goes.
struct Queued {
    change: ChannelChange,
    done: Outcome,
}

/// Where a queued change's outcome goes: its new messages, or why it wrote nothing.
type Outcome = oneshot::Sender<Result<Vec<Message>, StoreError>>;

mod bots;
mod keys;
mod listener;
mod oauth;

impl PgStore {
    pub async fn open(
        url: &str,
        settings: StoreSettings,
        access: Access,
    ) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse()?;
        let pool = PgPoolOptions::new()
            // The listener holds one connection for good; the others serve requests.
            .max_connections(settings.connections.max(1) + 1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        // sqlx holds an advisory lock while it migrates, so instances starting together
        // migrate once.
        sqlx::migrate!("./migrations/postgres")
            .run(&pool)
            .await
            .map_err(|error| StoreError::Backend(format!("migration failed: {error}")))?;
        let signals = Signals::default();
        let listener = match access {
            Access::Everything => Some(Arc::new(
                listener::Listening::start(&pool, signals.clone()).await?,
            )),
            Access::PeopleAndTokens | Access::ServerKeys => None,
        };
        Ok(PgStore {
            notifier: listener::Notifier::start(pool.clone()),
            pool,
            signals,
            listener,
            queued: Arc::default(),
            remembered: Arc::new(Mutex::new(LruCache::new(REMEMBERED_CHANNELS))),
        })
    }
}

/// Channel $1 in one query: one row per slot (in order, each with its bot's public card), each
/// carrying the channel's header with its last seq and chain head (see
/// `rows::channel_from_rows`, and [`insert_messages`], which keeps them); a single row with
/// NULL slot columns for a channel without slots.
const CHANNEL: &str = "SELECT c.name, c.owner, c.created_at, c.closed, c.faithful_from, c.reveal_private, c.listing, \
     c.last_seq, c.head, \
     s.label, s.kind, s.admin, s.holder, s.holder_name, s.rejoin_hash, s.joined_at, s.since_seq, \
     s.invite_hash, b.name AS bot_name, b.language, b.code_hash, b.params_hash, \
     b.seed_commitment, b.disabled, b.ended \
     FROM channels c \
     LEFT JOIN slots s ON s.channel_id = c.id \
     LEFT JOIN bots b ON b.channel_id = s.channel_id AND b.slot = s.label \
     WHERE c.id = $1 ORDER BY s.position";

/// The messages of channel $1 with $2 < seq <= $3 that seat $4 (held since $6) may see, or all
/// of them when $4 is NULL, oldest first, at most $5. Mirrors `Message::visible_to`.
const VISIBLE_MESSAGES: &str = "SELECT seq, kind, sender, sender_name, body_text, body_data, recipient, nonce, at, hash \
     FROM messages \
     WHERE channel_id = $1 AND seq > $2 AND seq <= $3 \
       AND ($4::TEXT IS NULL OR recipient IS NULL OR ((recipient = $4 OR sender = $4) AND seq > $6)) \
     ORDER BY seq LIMIT $5";

#[async_trait::async_trait]
impl ChannelBackend for PgStore {
    async fn durability(&self) -> Result<Durability, StoreError> {
        // PostgreSQL always writes ahead; whether a commit waits for the disk is
        // `synchronous_commit` (and `fsync`, which only an operator turns off).
        let (fsync, synchronous): (String, String) = sqlx::query_as(
            "SELECT current_setting('fsync'), current_setting('synchronous_commit')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Durability {
            journal: if fsync == "on" {
                "wal"
            } else {
                "wal without fsync"
            }
            .to_owned(),
            synchronous,
        })
    }

    fn signals(&self) -> &Signals {
        &self.signals
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn stats(&self) -> BackendStats {
        let mut stats = BackendStats {
            connections: self.pool.size(),
            idle_connections: u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX),
            ..BackendStats::default()
        };
        if let Some(listening) = &self.listener {
            let notices = &listening.stats;
            stats.notices = notices.received.load(Ordering::Relaxed);
            stats.notice_delay = Duration::from_micros(notices.lag_micros.load(Ordering::Relaxed));
            stats.notice_reconnections = notices.reconnections.load(Ordering::Relaxed);
        }
        stats
    }

    async fn insert_channel(
        &self,
        mut channel: Channel,
        max_open_owned: usize,
        bots: Vec<BotRecord>,
    ) -> Result<Vec<Message>, StoreError> {
        let messages = channel.take_new_messages();
        let mut tx = self.pool.begin().await?;
        // Two instances creating channels for one owner at once must not both pass the count:
        // the owner's channels are counted under a lock on the owner's name.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(channel.owner.as_str())
            .execute(&mut *tx)
            .await?;
        let (open_owned,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM channels WHERE owner = $1 AND NOT closed")
                .bind(channel.owner.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if usize::try_from(open_owned).unwrap_or(usize::MAX) >= max_open_owned {
            return Err(StoreError::Domain(DomainError::LimitExceeded {
                what: "open channels you own",
                limit: max_open_owned,
            }));
        }
        sqlx::query(
            "INSERT INTO channels (id, name, owner, created_at, closed, faithful_from, \
             reveal_private, listing) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(channel.id.as_str())
        .bind(&channel.name)
        .bind(channel.owner.as_str())
        .bind(channel.created_at.0)
        .bind(channel.closed)
        .bind(channel.faithful_from.0)
        .bind(channel.reveal_private)
        .bind(channel.listing.map(Listing::as_str))
        .execute(&mut *tx)
        .await?;
        for (position, slot) in channel.slots.iter().enumerate() {
            sqlx::query(
                "INSERT INTO slots (channel_id, position, label, kind) VALUES ($1, $2, $3, $4)",
            )
            .bind(channel.id.as_str())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(slot.label.as_str())
            .bind(slot.kind.as_str())
            .execute(&mut *tx)
            .await?;
            write_slot(&mut tx, &channel.id, position, slot, false).await?;
        }
        insert_messages(&mut tx, &channel.id, &messages).await?;
        for bot in bots {
            bots::insert_bot(&mut tx, bot).await?;
        }
        tx.commit().await?;
        self.publish(channel, &messages);
        Ok(messages)
    }

    async fn apply_change(
        &self,
        id: &ChannelId,
        change: ChannelChange,
    ) -> Result<Vec<Message>, StoreError> {
        let (done, outcome) = oneshot::channel();
        let lead = {
            let mut queues = self.lock_queues();
            match queues.get_mut(id) {
                Some(queue) => {
                    queue.push(Queued { change, done });
                    false
                }
                None => {
                    queues.insert(id.clone(), vec![Queued { change, done }]);
                    true
                }
            }
        };
        if lead {
            // Its own task: a caller that goes away must not strand the changes queued
            // behind it.
            let (store, id) = (self.clone(), id.clone());
            tokio::spawn(async move { store.commit_queued(&id).await });
        }
        outcome
            .await
            .map_err(|_| StoreError::Backend("the change's transaction task ended".into()))?
    }

    async fn load_channel(&self, id: &ChannelId) -> Result<Channel, StoreError> {
        // One statement, so the header and the slots come from the same commit.
        let mut conn = self.pool.acquire().await?;
        load_channel(&mut conn, id).await
    }

    async fn find_channel_by_secret(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<ChannelId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT channel_id FROM slots WHERE invite_hash = $1 OR rejoin_hash = $1 LIMIT 1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
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
        let rows = visible_messages(id, audience, after, upto, limit)
            .fetch_all(&self.pool)
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
             FROM messages WHERE channel_id = $1 AND seq > $2 AND seq <= $3 AND kind = 'system' \
             ORDER BY seq",
        )
        .bind(id.as_str())
        .bind(after.0)
        .bind(upto.0)
        .fetch_all(&self.pool)
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
        // One row past the count, so that a page full by count still learns whether more follow.
        let bound = budget.max_messages.saturating_add(1);
        fill_page(
            visible_messages(id, audience, after, upto, bound).fetch(&self.pool),
            budget,
        )
        .await
    }

    async fn quick_match_seat(
        &self,
        who: &PrincipalId,
        bot: &str,
    ) -> Result<Option<ChannelId>, StoreError> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT c.id FROM channels c \
             WHERE c.listing = 'quick_match' AND NOT c.closed \
             AND EXISTS (SELECT 1 FROM slots s WHERE s.channel_id = c.id AND s.holder = $1) \
             AND EXISTS (SELECT 1 FROM bots b WHERE b.channel_id = c.id \
                         AND b.name = $2 AND NOT b.ended AND NOT b.disabled) \
             ORDER BY c.created_at DESC, c.id LIMIT 1",
        )
        .bind(who.as_str())
        .bind(bot)
        .fetch_optional(&self.pool)
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
             WHERE c.listing IS NOT NULL AND NOT c.closed \
             AND ($1 IS NULL OR c.listing = $1) \
             AND EXISTS (SELECT 1 FROM slots s WHERE s.channel_id = c.id \
                         AND s.kind = 'invite' AND s.holder IS NULL) \
             AND ($2 IS NULL OR EXISTS (SELECT 1 FROM bots b WHERE b.channel_id = c.id \
                         AND b.name = $2 AND NOT b.ended AND NOT b.disabled)) \
             ORDER BY c.created_at, c.id LIMIT $3",
        )
        .bind(listing.map(Listing::as_str))
        .bind(bot)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id,)| ChannelId::from_trusted(id))
            .collect())
    }

    async fn channels_of(&self, who: &PrincipalId) -> Result<Vec<ChannelListing>, StoreError> {
        // One repeatable-read transaction: every channel and count comes from the same snapshot.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let ids: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM channels WHERE owner = $1 \
             UNION SELECT channel_id FROM slots WHERE holder = $1",
        )
        .bind(who.as_str())
        .fetch_all(&mut *tx)
        .await?;
        let mut listings = Vec::with_capacity(ids.len());
        for (id,) in ids {
            let channel = load_channel(&mut tx, &ChannelId::from_trusted(id)).await?;
            let mut seats = Vec::new();
            for slot in channel.seats_of(who) {
                let (unread,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM messages m JOIN slots s \
                       ON s.channel_id = m.channel_id AND s.label = $2 \
                     WHERE m.channel_id = $1 AND m.seq > s.read_seq \
                       AND m.sender IS DISTINCT FROM $2 \
                       AND (m.recipient IS NULL OR (m.recipient = $2 AND m.seq > s.since_seq))",
                )
                .bind(channel.id.as_str())
                .bind(slot.label.as_str())
                .fetch_one(&mut *tx)
                .await?;
                seats.push(SeatSummary {
                    slot: slot.label.clone(),
                    unread: u64::try_from(unread).unwrap_or_default(),
                });
            }
            listings.push(ChannelListing { channel, seats });
        }
        tx.commit().await?;
        listings.sort_by_key(|listing| std::cmp::Reverse(listing.channel.created_at));
        Ok(listings)
    }

    async fn mark_read(&self, marks: Vec<ReadMark>) -> Result<(), StoreError> {
        // One statement per mark rather than one transaction: the marks come in no order, and
        // a transaction locking several slot rows in no order could deadlock with a channel
        // change (which locks them in position order), and PostgreSQL would abort one of them.
        let mut conn = self.pool.acquire().await?;
        for mark in &marks {
            sqlx::query(
                "UPDATE slots SET read_seq = GREATEST(read_seq, $4) \
                 WHERE channel_id = $1 AND label = $2 AND holder = $3",
            )
            .bind(mark.channel.as_str())
            .bind(mark.slot.as_str())
            .bind(mark.holder.as_str())
            .bind(mark.seq.0)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

impl PgStore {
    /// Wakes this instance's waiters on `channel` with the committed state itself, and has the
    /// other instances told.
    fn lock_queues(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Vec<Queued>>> {
        self.queued
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Commits the changes queued for `id`, a group per transaction, until none is left.
    async fn commit_queued(&self, id: &ChannelId) {
        loop {
            let group = {
                let mut queues = self.lock_queues();
                let Some(queue) = queues.get_mut(id) else {
                    return;
                };
                if queue.is_empty() {
                    queues.remove(id);
                    return;
                }
                std::mem::take(queue)
            };
            self.commit_group(id, group).await;
        }
    }

    /// Runs a group of changes to one channel in one transaction, each on the state the one
    /// before it left, and answers each once the transaction is durable (or failed). A change
    /// refused by its rule, or whose writes fail, is undone alone (a savepoint) and told so;
    /// the others commit. Every change gets an answer, whatever fails.
    async fn commit_group(&self, id: &ChannelId, group: Vec<Queued>) {
        let mut waiting = group.into_iter();
        let mut answers = Vec::with_capacity(waiting.len());
        let outcome = self.write_group(id, &mut waiting, &mut answers).await;
        match outcome {
            Ok((channel, written)) => {
                if !written.is_empty() {
                    self.publish(channel, &written);
                }
                for (done, answer) in answers {
                    let _ = done.send(answer);
                }
            }
            // Nothing of the group was written: each change is told so, a refused one keeps
            // its own reason.
            Err(error) => {
                self.forget(id);
                tracing::warn!(channel = %id, %error, "a channel's transaction failed");
                for (done, answer) in answers {
                    let _ = done.send(answer.and(Err(same_error(&error))));
                }
                for Queued { done, .. } in waiting {
                    let _ = done.send(Err(same_error(&error)));
                }
                match self.repair_head(id).await {
                    Ok(false) => {}
                    Ok(true) => tracing::warn!(
                        channel = %id,
                        "the channel's last seq was behind its messages (written by an instance \
                         older than migration 3?) and was brought up to them"
                    ),
                    Err(error) => {
                        tracing::warn!(channel = %id, %error, "could not check the channel's head");
                    }
                }
            }
        }
    }

    /// The transaction of [`Self::commit_group`]: takes changes from `waiting` and leaves the
    /// answer of each one it took in `answers`. The committed channel and every new message.
    async fn write_group(
        &self,
        id: &ChannelId,
        waiting: &mut std::vec::IntoIter<Queued>,
        answers: &mut Vec<(Outcome, Result<Vec<Message>, StoreError>)>,
    ) -> Result<(Channel, Vec<Message>), StoreError> {
        let alone = waiting.len() == 1;
        // Named, not assumed: the lock below must answer the row as the last holder left it,
        // which a server-wide default of REPEATABLE READ would refuse to do.
        let mut tx = self
            .pool
            .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
            .await?;
        // The row lock queues every other change to this channel, on any instance, until this
        // transaction ends: the rules decide on the state they will replace. It is taken by a
        // statement of its own: a statement that waited for the lock still reads through the
        // snapshot it started with, which lacks the messages the previous holder committed.
        let (version,): (i64,) =
            sqlx::query_as("SELECT version FROM channels WHERE id = $1 FOR UPDATE")
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::Domain(DomainError::ChannelNotFound))?;
        let mut current = match self.recall(id, version) {
            Some(channel) => channel,
            None => load_channel(&mut tx, id).await?,
        };
        let mut only_posts = true;
        let mut written = Vec::new();
        let mut unwritten = Vec::new();
        for Queued { change, done } in waiting.by_ref() {
            // A refusal by the rule writes nothing, and needs no savepoint to undo.
            let decided = match Decided::by(&current, change) {
                Ok(decided) => decided,
                Err(refused) => {
                    answers.push((done, Err(refused)));
                    if alone {
                        // Nothing to commit: dropping the transaction ends it.
                        self.remember(id, version, &current);
                        return Ok((current, Vec::new()));
                    }
                    continue;
                }
            };
            let applied = if decided.only_messages() {
                // Posts wait to be inserted together, in one statement. Its failure is the
                // database's (the rules' checks are behind it), and PostgreSQL then aborts the
                // whole transaction: the group fails, and every change in it is told so.
                unwritten.extend(decided.messages.iter().cloned());
                Ok((decided.after, decided.messages))
            } else if alone {
                only_posts = false;
                decided.write(&mut tx).await
            } else {
                only_posts = false;
                if let Err(broken) = insert_messages(&mut tx, id, &unwritten).await {
                    answers.push((done, Err(same_error(&broken))));
                    return Err(broken);
                }
                unwritten.clear();
                match in_savepoint(&mut tx, decided).await {
                    Ok(applied) => applied,
                    Err(broken) => {
                        answers.push((done, Err(same_error(&broken))));
                        return Err(broken);
                    }
                }
            };
            match applied {
                Ok((after, messages)) => {
                    current = after;
                    written.extend(messages.iter().cloned());
                    answers.push((done, Ok(messages)));
                }
                // Alone, without a savepoint, a refusal may follow some of its own writes (a
                // guarded bot write that finds the state moved on): the transaction is dropped,
                // which rolls them back.
                Err(refused) if alone => {
                    answers.push((done, Err(refused)));
                    self.remember(id, version, &current);
                    return Ok((current, Vec::new()));
                }
                Err(refused) => answers.push((done, Err(refused))),
            }
        }
        let moved_to = insert_messages(&mut tx, id, &unwritten).await?;
        tx.commit().await?;
        if only_posts {
            self.remember(id, moved_to.unwrap_or(version), &current);
        } else {
            self.forget(id);
        }
        Ok((current, written))
    }

    /// Brings the channel row's `last_seq` and `head` up to its newest message if they are
    /// behind, and whether they were. Only an instance from before migration 3, which inserted
    /// messages without moving them, leaves them so; every later change to the channel would
    /// then fail on a repeated seq, for good.
    async fn repair_head(&self, id: &ChannelId) -> Result<bool, StoreError> {
        let repaired = sqlx::query(
            "UPDATE channels c SET last_seq = newest.seq, head = newest.hash, version = c.version + 1 \
             FROM (SELECT seq, hash FROM messages WHERE channel_id = $1 ORDER BY seq DESC LIMIT 1) newest \
             WHERE c.id = $1 AND c.last_seq < newest.seq",
        )
        .bind(id.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(repaired > 0)
    }

    /// The channel as this instance remembers it at `version`, if it does.
    fn recall(&self, id: &ChannelId, version: i64) -> Option<Channel> {
        self.lock_remembered()
            .get(id)
            .filter(|remembered| remembered.version == version)
            .map(|remembered| remembered.channel.clone())
    }

    fn remember(&self, id: &ChannelId, version: i64, channel: &Channel) {
        let channel = channel.clone();
        self.lock_remembered()
            .insert(id.clone(), Remembered { version, channel });
    }

    fn forget(&self, id: &ChannelId) {
        self.lock_remembered().remove(id);
    }

    fn lock_remembered(&self) -> std::sync::MutexGuard<'_, LruCache<ChannelId, Remembered>> {
        self.remembered
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn publish(&self, channel: Channel, messages: &[Message]) {
        self.notifier.announce(&channel);
        let snapshot = self.signals.is_watched(&channel.id).then(|| {
            Arc::new(Snapshot {
                channel: channel.clone(),
                messages: messages.to_vec(),
            })
        });
        self.signals.publish(
            &channel.id,
            Advance {
                seq: channel.last_seq,
                snapshot,
            },
        );
    }
}

/// A change's writes inside a savepoint, so that their failure undoes only them. The outer
/// error means the transaction itself broke.
async fn in_savepoint(
    tx: &mut PgConnection,
    decided: Decided,
) -> Result<Result<(Channel, Vec<Message>), StoreError>, StoreError> {
    sqlx::query("SAVEPOINT change").execute(&mut *tx).await?;
    let applied = decided.write(tx).await;
    let end = if applied.is_ok() {
        "RELEASE SAVEPOINT change"
    } else {
        "ROLLBACK TO SAVEPOINT change"
    };
    sqlx::query(end).execute(&mut *tx).await?;
    Ok(applied)
}

/// `error` again, for another waiter.
fn same_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Domain(refusal) => StoreError::Domain(refusal.clone()),
        StoreError::Conflict(reason) => StoreError::Conflict(reason.clone()),
        StoreError::Corrupt(reason) => StoreError::Corrupt(reason.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

/// A change its rule accepted, not written yet.
struct Decided {
    header_changed: bool,
    /// The position of each slot that changed, and whether its holder did.
    changed_slots: Vec<(usize, bool)>,
    after: Channel,
    messages: Vec<Message>,
    bot_writes: Vec<crate::bots::BotWrite>,
}

impl Decided {
    /// Runs the rule of `change` on `before`. Writes nothing.
    fn by(before: &Channel, change: ChannelChange) -> Result<Self, StoreError> {
        let mut after = before.clone();
        // A panicking rule must not take the transaction's task down with it.
        let bot_writes =
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change(&mut after))) {
                Err(_) => {
                    tracing::error!(channel = %before.id, "a channel rule panicked");
                    return Err(StoreError::Backend("a channel rule panicked".into()));
                }
                Ok(decided) => decided?,
            };
        let messages = after.take_new_messages();
        // The rules refuse closed channels one by one; this is the backstop where the write
        // happens: a channel closed before this change takes no new line.
        if before.closed && !messages.is_empty() {
            tracing::error!(channel = %before.id, "a rule tried to write to a closed channel");
            return Err(StoreError::Domain(DomainError::ChannelClosed));
        }
        let rows = ChangedRows::between(before, &after);
        let header_changed = rows.header_changed;
        let changed_slots = rows
            .slots
            .iter()
            .map(|&(position, _, holder_changed)| (position, holder_changed))
            .collect();
        Ok(Decided {
            header_changed,
            changed_slots,
            after,
            messages,
            bot_writes,
        })
    }

    /// Whether it only adds messages (a post does).
    fn only_messages(&self) -> bool {
        self.bot_writes.is_empty() && !self.header_changed && self.changed_slots.is_empty()
    }

    /// Writes it in `tx`: the channel after it and its new messages.
    async fn write(self, tx: &mut PgConnection) -> Result<(Channel, Vec<Message>), StoreError> {
        let after = &self.after;
        if self.header_changed {
            sqlx::query("UPDATE channels SET name = $2, closed = $3 WHERE id = $1")
                .bind(after.id.as_str())
                .bind(&after.name)
                .bind(after.closed)
                .execute(&mut *tx)
                .await?;
        }
        for &(position, holder_changed) in &self.changed_slots {
            let slot = &after.slots[position];
            write_slot(&mut *tx, &after.id, position, slot, holder_changed).await?;
        }
        let moved = insert_messages(&mut *tx, &after.id, &self.messages).await?;
        for write in self.bot_writes {
            bots::write_bot(&mut *tx, &after.id, write).await?;
        }
        if moved.is_none() {
            // Inserting messages moves the version on; a change without any must too, or
            // another instance would start from the channel as it was before it.
            sqlx::query("UPDATE channels SET version = version + 1 WHERE id = $1")
                .bind(after.id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        Ok((self.after, self.messages))
    }
}

fn visible_messages<'q>(
    id: &'q ChannelId,
    audience: Audience<'q>,
    after: Seq,
    upto: Seq,
    limit: usize,
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    let (viewer, since) = match audience {
        Audience::Seat { slot, since } => (Some(slot.as_str()), since.0),
        Audience::Everything => (None, 0),
    };
    sqlx::query(VISIBLE_MESSAGES)
        .bind(id.as_str())
        .bind(after.0)
        .bind(upto.0)
        .bind(viewer)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .bind(since)
}

async fn load_channel(conn: &mut PgConnection, id: &ChannelId) -> Result<Channel, StoreError> {
    let rows = sqlx::query(CHANNEL)
        .bind(id.as_str())
        .fetch_all(&mut *conn)
        .await?;
    let header = rows
        .first()
        .ok_or(StoreError::Domain(DomainError::ChannelNotFound))?;
    let slots = match header.maybe_text("label")? {
        Some(_) => rows.as_slice(),
        None => &[],
    };
    channel_from_rows(id, header, slots)
}

async fn write_slot(
    conn: &mut PgConnection,
    channel: &ChannelId,
    position: usize,
    slot: &Slot,
    reset_read: bool,
) -> Result<(), StoreError> {
    let seat = slot.seat.as_ref();
    sqlx::query(
        "UPDATE slots SET admin = $3, holder = $4, holder_name = $5, rejoin_hash = $6, joined_at = $7, \
         invite_hash = $8, read_seq = CASE WHEN $9 THEN 0 ELSE read_seq END, since_seq = $10 \
         WHERE channel_id = $1 AND position = $2",
    )
    .bind(channel.as_str())
    .bind(i64::try_from(position).unwrap_or(i64::MAX))
    .bind(slot.admin)
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

/// Appends `messages` (in seq order, following the channel's last) to `channel`'s transcript
/// and moves the channel's `last_seq` and `head` to the last of them and its version on, in one
/// statement: a group of posts is one round trip, not one per post. The channel's new version,
/// or `None` when there was nothing to insert.
async fn insert_messages(
    conn: &mut PgConnection,
    channel: &ChannelId,
    messages: &[Message],
) -> Result<Option<i64>, StoreError> {
    let Some(newest) = messages.last() else {
        return Ok(None);
    };
    let column = |field: fn(&Message) -> Option<String>| -> Vec<Option<String>> {
        messages.iter().map(field).collect()
    };
    let (version,): (i64,) = sqlx::query_as(
        "WITH inserted AS (\
           INSERT INTO messages (channel_id, seq, kind, sender, sender_name, body_text, body_data, recipient, at, hash, nonce) \
           SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[])) \
         UPDATE channels SET last_seq = $12, head = $13, version = version + 1 WHERE id = $1 \
         RETURNING version",
    )
    .bind(channel.as_str())
    .bind(messages.iter().map(|m| m.seq.0).collect::<Vec<_>>())
    .bind(column(|m| Some(m.kind.as_str().to_owned())))
    .bind(column(|m| m.sender.as_ref().map(|s| s.as_str().to_owned())))
    .bind(column(|m| Some(m.sender_name.clone())))
    .bind(column(|m| m.body.text.clone()))
    .bind(column(stored_data))
    .bind(column(|m| m.to.as_ref().map(|s| s.as_str().to_owned())))
    .bind(messages.iter().map(|m| m.at.0).collect::<Vec<_>>())
    .bind(column(|m| Some(m.hash.as_str().to_owned())))
    .bind(column(|m| m.nonce.clone()))
    .bind(newest.seq.0)
    .bind(newest.hash.as_str())
    .fetch_one(&mut *conn)
    .await?;
    Ok(Some(version))
}
