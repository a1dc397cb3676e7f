//! The `server_keys` table in PostgreSQL.

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
        let mut conn = self.pool.acquire().await?;
        // No conflict target: the one-active index and the primary key both count, so of two
        // instances making the first key at once, one stores it.
        let inserted = insert_key(&mut conn, &key, " ON CONFLICT DO NOTHING").await?;
        Ok(inserted == 1)
    }

    async fn rotate_server_key(
        &self,
        next: ServerKeyRecord,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        let mut tx = self.pool.begin().await?;
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
