//! The authorization server's tables in PostgreSQL.
//!
//! Every check-then-write is one guarded statement (`UPDATE … WHERE used_at IS NULL`,
//! `INSERT … ON CONFLICT`) inside one transaction, so two instances racing to spend the same
//! code, rotate the same refresh token, submit the same form or generate the same setting get
//! one winner: the second waits on the first's row lock and then finds the row changed.
//!
//! The sweep and a code exchange both touch a client that never obtained a token and its
//! codes; both lock the client row first, so they queue on it instead of deadlocking, and the
//! sweep never deletes a client (or its codes) that obtained tokens while it ran.

use domain::{PrincipalId, SecretHash, Timestamp};
use sqlx::postgres::PgConnection;

use super::PgStore;
use crate::StoreError;
use crate::oauth::{
    AuthorizationCode, CodeExchange, Person, RegisteredClient, Rotation, StoredToken, Swept,
    TOKEN_COLUMNS, TokenRecord, client_from_row, code_from_row, person_from_row,
    stored_redirect_uris, stored_token_from_row,
};

#[async_trait::async_trait]
impl crate::oauth::AuthBackend for PgStore {
    async fn create_person(&self, person: Person) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO people (id, display_name, created_at) VALUES ($1, $2, $3)")
            .bind(person.id.as_str())
            .bind(&person.display_name)
            .bind(person.created_at.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn person(&self, id: &PrincipalId) -> Result<Option<Person>, StoreError> {
        let row = sqlx::query("SELECT id, display_name, created_at FROM people WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn register_client(&self, client: RegisteredClient) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO oauth_clients \
             (client_id, secret_hash, name, redirect_uris, auth_method, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&client.client_id)
        .bind(client.secret_hash.as_ref().map(SecretHash::as_str))
        .bind(&client.name)
        .bind(stored_redirect_uris(&client)?)
        .bind(&client.auth_method)
        .bind(client.created_at.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn registered_client(
        &self,
        client_id: &str,
    ) -> Result<Option<RegisteredClient>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, secret_hash, name, redirect_uris, auth_method, created_at \
             FROM oauth_clients WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn insert_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO oauth_codes (code_hash, client_id, person_id, redirect_uri, \
             code_challenge, resource, scope, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(code.code_hash.as_str())
        .bind(&code.client_id)
        .bind(code.person.as_str())
        .bind(&code.redirect_uri)
        .bind(&code.code_challenge)
        .bind(&code.resource)
        .bind(&code.scope)
        .bind(code.expires_at.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO oauth_approved_clients (client_id, approved_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&code.client_id)
        .bind(code.expires_at.0)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_approved(&self, client_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM oauth_approved_clients WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn spend_form(
        &self,
        hash: &SecretHash,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO oauth_spent_forms (token_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT DO NOTHING",
        )
        .bind(hash.as_str())
        .bind(expires_at.0)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(inserted == 1)
    }

    async fn sweep_unused(&self, before: Timestamp, now: Timestamp) -> Result<Swept, StoreError> {
        let mut tx = self.pool.begin().await?;
        let swept = sweep_unused(&mut tx, before, now).await?;
        tx.commit().await?;
        Ok(swept)
    }

    async fn code(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<(AuthorizationCode, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT code_hash, client_id, person_id, redirect_uri, code_challenge, resource, \
             scope, expires_at, used_at FROM oauth_codes WHERE code_hash = $1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    async fn exchange_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<CodeExchange, StoreError> {
        let mut tx = self.pool.begin().await?;
        let family = tokens.first().map(|token| token.family.clone());
        let client_id = tokens.first().and_then(|token| token.client_id.clone());
        // A client that has not obtained a token yet is one the sweep may delete: lock it
        // before the code, in the sweep's order (see `sweep_unused`). Once it has tokens, the
        // sweep leaves it alone and no lock is needed.
        sqlx::query(
            "SELECT 1 FROM oauth_clients WHERE client_id = $1 AND token_issued_at IS NULL \
             FOR NO KEY UPDATE",
        )
        .bind(&client_id)
        .fetch_optional(&mut *tx)
        .await?;
        // Of two instances spending one code, the second waits on the row lock and then finds
        // it spent.
        let spent = sqlx::query(
            "UPDATE oauth_codes SET used_at = $2, family = $3 \
             WHERE code_hash = $1 AND used_at IS NULL",
        )
        .bind(hash.as_str())
        .bind(now.0)
        .bind(family)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let exchange = if spent == 1 {
            for token in tokens {
                insert_token(&mut tx, token).await?;
            }
            sqlx::query(
                "UPDATE oauth_clients SET token_issued_at = $2 \
                 WHERE client_id = $1 AND token_issued_at IS NULL",
            )
            .bind(client_id)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
            CodeExchange::Issued
        } else {
            let earlier: Option<(Option<String>,)> =
                sqlx::query_as("SELECT family FROM oauth_codes WHERE code_hash = $1")
                    .bind(hash.as_str())
                    .fetch_optional(&mut *tx)
                    .await?;
            match earlier {
                None => CodeExchange::Unknown,
                Some((family,)) => {
                    if let Some(family) = family {
                        revoke_family(&mut tx, &family, now).await?;
                    }
                    CodeExchange::Replayed
                }
            }
        };
        tx.commit().await?;
        Ok(exchange)
    }

    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<Rotation, StoreError> {
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE tokens SET rotated_at = $2 WHERE token_hash = $1 AND kind = 'refresh' \
             AND rotated_at IS NULL AND revoked_at IS NULL",
        )
        .bind(old.as_str())
        .bind(now.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let rotation = if spent == 1 {
            for token in tokens {
                insert_token(&mut tx, token).await?;
            }
            Rotation::Rotated
        } else {
            let earlier: Option<(String, Option<i64>)> = sqlx::query_as(
                "SELECT family, rotated_at FROM tokens WHERE token_hash = $1 AND kind = 'refresh'",
            )
            .bind(old.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            match earlier {
                Some((family, Some(_))) => {
                    revoke_family(&mut tx, &family, now).await?;
                    Rotation::Reused
                }
                _ => Rotation::Unknown,
            }
        };
        tx.commit().await?;
        Ok(rotation)
    }

    async fn insert_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        insert_token(&mut conn, token).await
    }

    async fn token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.token_hash = $1"
        ))
        .bind(hash.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(stored_token_from_row).transpose()
    }

    async fn revoke_family(&self, family: &str, now: Timestamp) -> Result<u64, StoreError> {
        let mut conn = self.pool.acquire().await?;
        revoke_family(&mut conn, family, now).await
    }

    async fn personal_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.kind = 'personal' ORDER BY t.revoked_at IS NOT NULL, t.created_at"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_token_from_row).collect()
    }

    async fn tokens_of(&self, person: &PrincipalId) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.person_id = $1 AND t.revoked_at IS NULL ORDER BY t.created_at, t.token_hash"
        ))
        .bind(person.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_token_from_row).collect()
    }

    async fn setting_or_insert(&self, key: &str, value: String) -> Result<String, StoreError> {
        // `DO UPDATE` (to the value already there) rather than `DO NOTHING` plus a read: a
        // read in the same statement uses the statement's snapshot, which misses a row that
        // another instance committed while this insert waited for it, and answers nothing.
        // `DO UPDATE` returns that row whatever the snapshot. Settings are generated at start,
        // so the rewrite it costs is rare.
        let (stored,): (String,) = sqlx::query_as(
            "INSERT INTO server_settings AS s (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = s.value RETURNING value",
        )
        .bind(key)
        .bind(&value)
        .fetch_one(&self.pool)
        .await?;
        Ok(stored)
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let codes = sqlx::query("DELETE FROM oauth_codes WHERE expires_at < $1")
            .bind(before.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // A rotated or revoked refresh token is kept until it expires: presenting it again must
        // still be recognised as reuse.
        let tokens = sqlx::query(
            "DELETE FROM tokens WHERE kind != 'personal' AND expires_at IS NOT NULL \
             AND expires_at < $1",
        )
        .bind(before.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(codes + tokens)
    }
}

async fn insert_token(conn: &mut PgConnection, token: TokenRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (token_hash, kind, family, person_id, client_id, resource, scope, \
         name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(token.token_hash.as_str())
    .bind(token.kind.as_str())
    .bind(&token.family)
    .bind(token.person.as_str())
    .bind(&token.client_id)
    .bind(&token.resource)
    .bind(&token.scope)
    .bind(&token.name)
    .bind(token.created_at.0)
    .bind(token.expires_at.map(|at| at.0))
    .execute(conn)
    .await?;
    Ok(())
}

async fn revoke_family(
    conn: &mut PgConnection,
    family: &str,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let revoked =
        sqlx::query("UPDATE tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL")
            .bind(family)
            .bind(now.0)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(revoked)
}

async fn sweep_unused(
    conn: &mut PgConnection,
    before: Timestamp,
    now: Timestamp,
) -> Result<Swept, StoreError> {
    // The clients first, then what they leave behind. Deleting the codes first (by a
    // subquery on the clients, as SQLite does) would trust the subquery's snapshot: a code an
    // exchange spent meanwhile would go while its client, now holding tokens, stays, and a
    // replay of that code would no longer be recognised. Deleting the client waits for such an
    // exchange (which locks the client first) and then re-checks `token_issued_at`.
    let clients: Vec<String> = sqlx::query_scalar(
        "DELETE FROM oauth_clients WHERE token_issued_at IS NULL AND created_at < $1 \
         RETURNING client_id",
    )
    .bind(before.0)
    .fetch_all(&mut *conn)
    .await?;
    for table in ["oauth_codes", "oauth_approved_clients"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE client_id = ANY($1)"))
            .bind(&clients)
            .execute(&mut *conn)
            .await?;
    }
    // Seats and channels name people without a foreign key, so they are checked here: a person
    // who holds a seat or owns a channel is never deleted. Tokens and codes have one: should
    // an instance give this person a token or a code while the sweep runs, one of the two
    // fails on the key rather than leaving a token without its person.
    let people = sqlx::query(
        "DELETE FROM people WHERE created_at < $1 \
         AND NOT EXISTS (SELECT 1 FROM tokens WHERE tokens.person_id = people.id) \
         AND NOT EXISTS (SELECT 1 FROM oauth_codes WHERE oauth_codes.person_id = people.id) \
         AND NOT EXISTS (SELECT 1 FROM slots WHERE slots.holder = people.id) \
         AND NOT EXISTS (SELECT 1 FROM channels WHERE channels.owner = people.id)",
    )
    .bind(before.0)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let forms = sqlx::query("DELETE FROM oauth_spent_forms WHERE expires_at < $1")
        .bind(now.0)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(Swept {
        clients: u64::try_from(clients.len()).unwrap_or(u64::MAX),
        people,
        forms,
    })
}
