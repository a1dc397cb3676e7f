//! The `server_keys` table in SQLite (migration `0007_server_keys.sql`). Writes run as writer
//! jobs, in the group commit like every other change; the list is read from the read pool.

use domain::Timestamp;
use sqlx::sqlite::SqliteConnection;

use super::SqliteStore;
use crate::StoreError;
use crate::keys::{KEY_COLUMNS, ServerKeyRecord, key_from_row};

#[async_trait::async_trait]
impl crate::keys::KeyBackend for SqliteStore {
    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError> {
        // In the order they were stored (rows are never deleted, so rowids only grow), not by
        // `created_at`: a key rotated in by `keys rotate` carries that process's clock.
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM server_keys ORDER BY rowid"
        ))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn insert_server_key(&self, key: ServerKeyRecord) -> Result<bool, StoreError> {
        self.submit_sql(move |conn| {
            Box::pin(async move {
                // No conflict target: the one-active index and the primary key both count.
                let inserted = insert_key(conn, &key, " ON CONFLICT DO NOTHING").await?;
                Ok(inserted == 1)
            })
        })
        .await
    }

    async fn rotate_server_key(
        &self,
        next: ServerKeyRecord,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        self.submit_sql(move |conn| Box::pin(rotate(conn, next, now)))
            .await
    }
}

/// Runs inside the job's savepoint, so the retirement and the insert commit together or not
/// at all.
async fn rotate(
    conn: &mut SqliteConnection,
    next: ServerKeyRecord,
    now: Timestamp,
) -> Result<Option<String>, StoreError> {
    let retired: Option<(String,)> = sqlx::query_as(
        "UPDATE server_keys SET retired_at = ?1, secret_key = NULL \
         WHERE retired_at IS NULL RETURNING id",
    )
    .bind(now.0)
    .fetch_optional(&mut *conn)
    .await?;
    insert_key(conn, &next, "").await?;
    Ok(retired.map(|(id,)| id))
}

async fn insert_key(
    conn: &mut SqliteConnection,
    key: &ServerKeyRecord,
    on_conflict: &str,
) -> Result<u64, StoreError> {
    let inserted = sqlx::query(&format!(
        "INSERT INTO server_keys (id, secret_key, public_key, created_at, retired_at) \
         VALUES (?1, ?2, ?3, ?4, ?5){on_conflict}"
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
