//! The `bots`, `timers`, `fetches` and `leases` tables in PostgreSQL.
//!
//! Text sorts by bytes (`COLLATE "C"`), as in SQLite, whatever the database's collation: the
//! order of a channel's bots decides the order of their posts.
//!
//! Every guarded write (a bot's progress, a timer firing, a fetch answered) is one statement
//! whose `WHERE` names the state it expects, inside the channel's locked transaction: of two
//! instances racing, one changes a row and the other finds nothing and is refused.

use std::time::Duration;

use domain::{ChannelId, SlotLabel};
use sqlx::postgres::PgConnection;

use super::PgStore;
use crate::StoreError;
use crate::bots::{BotRecord, BotWrite, FetchWrite, PendingFetch, Timer, TimerWrite};
use crate::rows::{bot_from_row, fetch_from_row, timer_from_row};

/// The database's clock in ms since the epoch: leases are compared by one clock, whichever
/// instance's clock is off.
const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

#[async_trait::async_trait]
impl crate::bots::BotBackend for PgStore {
    async fn bots_of(&self, channel: &ChannelId) -> Result<Vec<BotRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel_id, slot, name, source, language, code_hash, params, params_hash, seed, \
             seed_commitment, state, processed_seq, failures, disabled, ended \
             FROM bots WHERE channel_id = $1 ORDER BY slot COLLATE \"C\"",
        )
        .bind(channel.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(bot_from_row).collect()
    }

    async fn timers_of(
        &self,
        channel: &ChannelId,
        slot: &SlotLabel,
    ) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel_id, slot, tag, due_at, set_by FROM timers \
             WHERE channel_id = $1 AND slot = $2 ORDER BY due_at, tag COLLATE \"C\"",
        )
        .bind(channel.as_str())
        .bind(slot.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn next_timers(&self, limit: usize) -> Result<Vec<Timer>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel_id, slot, tag, due_at, set_by FROM timers \
             ORDER BY due_at, channel_id COLLATE \"C\", slot COLLATE \"C\", tag COLLATE \"C\" \
             LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(timer_from_row).collect()
    }

    async fn drop_timer(&self, timer: &Timer) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM timers WHERE channel_id = $1 AND slot = $2 AND tag = $3 AND set_by = $4",
        )
        .bind(timer.channel_id.as_str())
        .bind(timer.slot.as_str())
        .bind(&timer.tag)
        .bind(timer.set_by.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn fetches_of(
        &self,
        channel: &ChannelId,
        slot: &SlotLabel,
    ) -> Result<Vec<PendingFetch>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel_id, slot, requested_by, position, tag, url, requested_at FROM fetches \
             WHERE channel_id = $1 AND slot = $2 ORDER BY requested_by, position",
        )
        .bind(channel.as_str())
        .bind(slot.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(fetch_from_row).collect()
    }

    async fn next_fetches(&self, limit: usize) -> Result<Vec<PendingFetch>, StoreError> {
        let rows = sqlx::query(
            "SELECT channel_id, slot, requested_by, position, tag, url, requested_at FROM fetches \
             ORDER BY requested_at, channel_id COLLATE \"C\", slot COLLATE \"C\", requested_by, \
             position LIMIT $1",
        )
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(fetch_from_row).collect()
    }

    async fn drop_fetch(&self, fetch: &PendingFetch) -> Result<(), StoreError> {
        sqlx::query(
            "DELETE FROM fetches WHERE channel_id = $1 AND slot = $2 \
             AND requested_by = $3 AND position = $4",
        )
        .bind(fetch.channel_id.as_str())
        .bind(fetch.slot.as_str())
        .bind(fetch.requested_by.0)
        .bind(i64::from(fetch.position))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn channels_with_bots_behind(&self) -> Result<Vec<ChannelId>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT b.channel_id FROM bots b JOIN channels c ON c.id = b.channel_id \
             WHERE NOT c.closed AND NOT b.disabled AND NOT b.ended AND b.processed_seq < c.last_seq",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id,)| ChannelId::from_trusted(id))
            .collect())
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        term: Duration,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(&format!(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, {NOW_MS} + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= {NOW_MS}"
        ))
        .bind(name)
        .bind(holder)
        .bind(i64::try_from(term.as_millis()).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn release_leases_of(&self, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE holder = $1")
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(super) async fn insert_bot(conn: &mut PgConnection, bot: BotRecord) -> Result<(), StoreError> {
    let params = serde_json::to_string(&bot.params)
        .map_err(|error| StoreError::Backend(error.to_string()))?;
    let state = bot
        .state
        .as_ref()
        .map(serde_json::to_string)
        .transpose()
        .map_err(|error| StoreError::Backend(error.to_string()))?;
    sqlx::query(
        "INSERT INTO bots (channel_id, slot, name, source, code_hash, params, params_hash, seed, \
         seed_commitment, state, processed_seq, failures, disabled, language, ended) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (channel_id, slot) DO UPDATE SET name = excluded.name, \
         source = excluded.source, language = excluded.language, code_hash = excluded.code_hash, \
         params = excluded.params, params_hash = excluded.params_hash, seed = excluded.seed, \
         seed_commitment = excluded.seed_commitment, state = excluded.state, \
         processed_seq = excluded.processed_seq, failures = excluded.failures, \
         disabled = excluded.disabled, ended = excluded.ended",
    )
    .bind(bot.channel_id.as_str())
    .bind(bot.slot.as_str())
    .bind(&bot.name)
    .bind(&bot.source)
    .bind(&bot.code_hash)
    .bind(params)
    .bind(&bot.params_hash)
    .bind(&bot.seed)
    .bind(&bot.seed_commitment)
    .bind(state)
    .bind(bot.processed_seq.0)
    .bind(i64::from(bot.failures))
    .bind(bot.disabled)
    .bind(&bot.language)
    .bind(bot.ended)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn write_bot(
    conn: &mut PgConnection,
    channel: &ChannelId,
    write: BotWrite,
) -> Result<(), StoreError> {
    match write {
        BotWrite::Attach(bot) => {
            // The new bot starts with no timers or fetches: the old one's must not wake it.
            clear_timers_and_fetches(&mut *conn, channel, &bot.slot).await?;
            insert_bot(conn, *bot).await
        }
        BotWrite::FireTimer { slot, tag, set_by } => {
            let fired = sqlx::query(
                "DELETE FROM timers WHERE channel_id = $1 AND slot = $2 AND tag = $3 AND set_by = $4",
            )
            .bind(channel.as_str())
            .bind(slot.as_str())
            .bind(&tag)
            .bind(set_by.0)
            .execute(conn)
            .await?
            .rows_affected();
            if fired == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "the timer {tag:?} of {slot} set at seq {} is no longer pending",
                    set_by.0
                )))
            }
        }
        BotWrite::AnswerFetch {
            slot,
            requested_by,
            position,
        } => {
            let answered = sqlx::query(
                "DELETE FROM fetches WHERE channel_id = $1 AND slot = $2 AND requested_by = $3 \
                 AND position = $4",
            )
            .bind(channel.as_str())
            .bind(slot.as_str())
            .bind(requested_by.0)
            .bind(i64::from(position))
            .execute(conn)
            .await?
            .rows_affected();
            if answered == 1 {
                Ok(())
            } else {
                Err(StoreError::Conflict(format!(
                    "fetch {position} of {slot} asked at seq {} is no longer pending",
                    requested_by.0
                )))
            }
        }
        BotWrite::Progress {
            slot,
            from,
            to,
            state,
            failures,
            disabled,
            ended,
            timers,
            fetches,
        } => {
            let state = state
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(|error| StoreError::Backend(error.to_string()))?;
            let moved = sqlx::query(
                "UPDATE bots SET processed_seq = $4, state = COALESCE($5, state), \
                 failures = $6, disabled = $7, ended = $8 \
                 WHERE channel_id = $1 AND slot = $2 AND processed_seq = $3",
            )
            .bind(channel.as_str())
            .bind(slot.as_str())
            .bind(from.0)
            .bind(to.0)
            .bind(state)
            .bind(i64::from(failures))
            .bind(disabled)
            .bind(ended)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if moved != 1 {
                return Err(StoreError::Conflict(format!(
                    "the bot in {slot} is no longer at seq {}",
                    from.0
                )));
            }
            if disabled || ended {
                return clear_timers_and_fetches(conn, channel, &slot).await;
            }
            for timer in timers {
                write_timer(&mut *conn, channel, &slot, timer).await?;
            }
            for fetch in fetches {
                write_fetch(&mut *conn, channel, &slot, fetch).await?;
            }
            Ok(())
        }
    }
}

async fn write_timer(
    conn: &mut PgConnection,
    channel: &ChannelId,
    slot: &SlotLabel,
    timer: TimerWrite,
) -> Result<(), StoreError> {
    match timer {
        TimerWrite::Set { tag, due, set_by } => {
            sqlx::query(
                "INSERT INTO timers (channel_id, slot, tag, due_at, set_by) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (channel_id, slot, tag) DO UPDATE SET \
                 due_at = excluded.due_at, set_by = excluded.set_by",
            )
            .bind(channel.as_str())
            .bind(slot.as_str())
            .bind(tag)
            .bind(due.0)
            .bind(set_by.0)
            .execute(conn)
            .await?;
        }
        TimerWrite::Cancel { tag } => {
            sqlx::query("DELETE FROM timers WHERE channel_id = $1 AND slot = $2 AND tag = $3")
                .bind(channel.as_str())
                .bind(slot.as_str())
                .bind(tag)
                .execute(conn)
                .await?;
        }
    }
    Ok(())
}

async fn write_fetch(
    conn: &mut PgConnection,
    channel: &ChannelId,
    slot: &SlotLabel,
    fetch: FetchWrite,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO fetches (channel_id, slot, requested_by, position, tag, url, requested_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(channel.as_str())
    .bind(slot.as_str())
    .bind(fetch.requested_by.0)
    .bind(i64::from(fetch.position))
    .bind(fetch.tag)
    .bind(fetch.url)
    .bind(fetch.requested_at.0)
    .execute(conn)
    .await?;
    Ok(())
}

async fn clear_timers_and_fetches(
    conn: &mut PgConnection,
    channel: &ChannelId,
    slot: &SlotLabel,
) -> Result<(), StoreError> {
    for table in ["timers", "fetches"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE channel_id = $1 AND slot = $2"
        ))
        .bind(channel.as_str())
        .bind(slot.as_str())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
