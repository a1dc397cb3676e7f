//! The `server_keys` table in PostgreSQL.
//!
//! Every write first takes a lock on the table that only writers of keys contend for
//! (`SHARE ROW EXCLUSIVE`: readers go on), so writes to keys run one at a time, as SQLite's one
//! writer runs them. Without it, a rotation that raced another rotation (or the first key)
//! would not see the key committed meanwhile, retire nothing, and fail on the one-active
//! index instead of retiring it. Keys are written at start and by `keys rotate`, so the
//! queue is never long.

use domain::Timestamp;
use sqlx::postgres::PgConnection;

use super::PgStore;
use crate::StoreError;
use crate::keys::{KEY_COLUMNS, ServerKeyRecord, key_from_row};

#[async_trait::async_trait]
impl crate::keys::KeyBackend for PgStore {
    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM server_keys ORDER BY stored"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_server_key(&self, key: ServerKeyRecord) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        lock_keys(&mut tx).await?;
        // No conflict target: the one-active index, the primary key and the unique public key
        // all count, so of two instances making the first key at once, one stores it.
        let inserted = insert_key(&mut tx, &key, " ON CONFLICT DO NOTHING").await?;
        tx.commit().await?;
        Ok(inserted == 1)
    }

    async fn rotate_server_key(
        &self,
        next: ServerKeyRecord,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Before the update, so that its snapshot holds every key committed before ours.
        lock_keys(&mut tx).await?;
        let retired: Option<(String,)> = sqlx::query_as(
            "UPDATE server_keys SET retired_at = $1, secret_key = NULL \
             WHERE retired_at IS NULL RETURNING id",
        )
        .bind(now.0)
        .fetch_optional(&mut *tx)
        .await?;
        insert_key(&mut tx, &next, "").await?;
        tx.commit().await?;
        Ok(retired.map(|(id,)| id))
    }
}

/// Queues this transaction behind every other writer of keys until it ends.
async fn lock_keys(conn: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("LOCK TABLE server_keys IN SHARE ROW EXCLUSIVE MODE")
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_key(
    conn: &mut PgConnection,
    key: &ServerKeyRecord,
    on_conflict: &str,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO server_keys (id, secret_key, public_key, created_at, retired_at) \
         VALUES ($1, $2, $3, $4, $5){on_conflict}"
    ))
    .bind(&key.id)
    .bind(&key.secret_hex)
    .bind(&key.public_hex)
    .bind(key.created_at.0)
    .bind(key.retired_at.map(|at| at.0))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted)
}
