//! The authorization server's tables in SQLite. Writes run as writer jobs, so they join the
//! group commit like every other change; reads use the read pool.

use domain::{PrincipalId, SecretHash, Timestamp};
use sqlx::sqlite::SqliteConnection;

use super::SqliteStore;
use crate::StoreError;
use crate::oauth::{
    AuthorizationCode, CodeExchange, Person, RegisteredClient, Rotation, StoredToken, Swept,
    TOKEN_COLUMNS, TokenRecord, client_from_row, code_from_row, person_from_row,
    stored_redirect_uris, stored_token_from_row,
};

#[async_trait::async_trait]
impl crate::oauth::AuthBackend for SqliteStore {
    async fn create_person(&self, person: Person) -> Result<(), StoreError> {
        self.submit_sql(move |conn| Box::pin(insert_person(conn, person)))
            .await
    }

    async fn person(&self, id: &PrincipalId) -> Result<Option<Person>, StoreError> {
        let row = sqlx::query("SELECT id, display_name, created_at FROM people WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&self.readers)
            .await?;
        row.as_ref().map(person_from_row).transpose()
    }

    async fn register_client(&self, client: RegisteredClient) -> Result<(), StoreError> {
        self.submit_sql(move |conn| Box::pin(insert_client(conn, client)))
            .await
    }

    async fn registered_client(
        &self,
        client_id: &str,
    ) -> Result<Option<RegisteredClient>, StoreError> {
        let row = sqlx::query(
            "SELECT client_id, secret_hash, name, redirect_uris, auth_method, created_at \
             FROM oauth_clients WHERE client_id = ?1",
        )
        .bind(client_id)
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn insert_code(&self, code: AuthorizationCode) -> Result<(), StoreError> {
        self.submit_sql(move |conn| Box::pin(insert_code(conn, code)))
            .await
    }

    async fn client_approved(&self, client_id: &str) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM oauth_approved_clients WHERE client_id = ?1")
            .bind(client_id)
            .fetch_optional(&self.readers)
            .await?;
        Ok(row.is_some())
    }

    async fn spend_form(
        &self,
        hash: &SecretHash,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let hash = hash.clone();
        self.submit_sql(move |conn| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO oauth_spent_forms (token_hash, expires_at) VALUES (?1, ?2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(hash.as_str())
                .bind(expires_at.0)
                .execute(conn)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            })
        })
        .await
    }

    async fn sweep_unused(&self, before: Timestamp, now: Timestamp) -> Result<Swept, StoreError> {
        self.submit_sql(move |conn| Box::pin(sweep_unused(conn, before, now)))
            .await
    }

    async fn code(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<(AuthorizationCode, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT code_hash, client_id, person_id, redirect_uri, code_challenge, resource, \
             scope, expires_at, used_at FROM oauth_codes WHERE code_hash = ?1",
        )
        .bind(hash.as_str())
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(code_from_row).transpose()
    }

    async fn exchange_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<CodeExchange, StoreError> {
        let hash = hash.clone();
        self.submit_sql(move |conn| Box::pin(exchange_code(conn, hash, now, tokens)))
            .await
    }

    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<Rotation, StoreError> {
        let old = old.clone();
        self.submit_sql(move |conn| Box::pin(rotate_refresh(conn, old, now, tokens)))
            .await
    }

    async fn insert_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.submit_sql(move |conn| Box::pin(insert_token(conn, token)))
            .await
    }

    async fn token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.token_hash = ?1"
        ))
        .bind(hash.as_str())
        .fetch_optional(&self.readers)
        .await?;
        row.as_ref().map(stored_token_from_row).transpose()
    }

    async fn revoke_family(&self, family: &str, now: Timestamp) -> Result<u64, StoreError> {
        let family = family.to_owned();
        self.submit_sql(move |conn| Box::pin(revoke_family(conn, family, now)))
            .await
    }

    async fn personal_tokens(&self) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.kind = 'personal' ORDER BY t.revoked_at IS NOT NULL, t.created_at"
        ))
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(stored_token_from_row).collect()
    }

    async fn tokens_of(&self, person: &PrincipalId) -> Result<Vec<StoredToken>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens t JOIN people p ON p.id = t.person_id \
             WHERE t.person_id = ?1 AND t.revoked_at IS NULL ORDER BY t.created_at, t.token_hash"
        ))
        .bind(person.as_str())
        .fetch_all(&self.readers)
        .await?;
        rows.iter().map(stored_token_from_row).collect()
    }

    async fn setting_or_insert(&self, key: &str, value: String) -> Result<String, StoreError> {
        let key = key.to_owned();
        self.submit_sql(move |conn| Box::pin(setting_or_insert(conn, key, value)))
            .await
    }

    async fn purge_expired(&self, before: Timestamp) -> Result<u64, StoreError> {
        self.submit_sql(move |conn| Box::pin(purge_expired(conn, before)))
            .await
    }
}

async fn insert_person(conn: &mut SqliteConnection, person: Person) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO people (id, display_name, created_at) VALUES (?1, ?2, ?3)")
        .bind(person.id.as_str())
        .bind(&person.display_name)
        .bind(person.created_at.0)
        .execute(conn)
        .await?;
    Ok(())
}

async fn insert_client(
    conn: &mut SqliteConnection,
    client: RegisteredClient,
) -> Result<(), StoreError> {
    let uris = stored_redirect_uris(&client)?;
    sqlx::query(
        "INSERT INTO oauth_clients \
         (client_id, secret_hash, name, redirect_uris, auth_method, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(&client.client_id)
    .bind(client.secret_hash.as_ref().map(SecretHash::as_str))
    .bind(&client.name)
    .bind(uris)
    .bind(&client.auth_method)
    .bind(client.created_at.0)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_code(
    conn: &mut SqliteConnection,
    code: AuthorizationCode,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO oauth_codes (code_hash, client_id, person_id, redirect_uri, \
         code_challenge, resource, scope, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(code.code_hash.as_str())
    .bind(&code.client_id)
    .bind(code.person.as_str())
    .bind(&code.redirect_uri)
    .bind(&code.code_challenge)
    .bind(&code.resource)
    .bind(&code.scope)
    .bind(code.expires_at.0)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO oauth_approved_clients (client_id, approved_at) VALUES (?1, ?2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&code.client_id)
    .bind(code.expires_at.0)
    .execute(conn)
    .await?;
    Ok(())
}

async fn exchange_code(
    conn: &mut SqliteConnection,
    hash: SecretHash,
    now: Timestamp,
    tokens: Vec<TokenRecord>,
) -> Result<CodeExchange, StoreError> {
    let family = tokens.first().map(|token| token.family.clone());
    let client_id = tokens.first().and_then(|token| token.client_id.clone());
    let spent = sqlx::query(
        "UPDATE oauth_codes SET used_at = ?2, family = ?3 \
         WHERE code_hash = ?1 AND used_at IS NULL",
    )
    .bind(hash.as_str())
    .bind(now.0)
    .bind(family)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if spent == 1 {
        for token in tokens {
            insert_token(conn, token).await?;
        }
        sqlx::query(
            "UPDATE oauth_clients SET token_issued_at = ?2 \
             WHERE client_id = ?1 AND token_issued_at IS NULL",
        )
        .bind(client_id)
        .bind(now.0)
        .execute(&mut *conn)
        .await?;
        return Ok(CodeExchange::Issued);
    }
    let earlier: Option<(Option<String>,)> =
        sqlx::query_as("SELECT family FROM oauth_codes WHERE code_hash = ?1")
            .bind(hash.as_str())
            .fetch_optional(&mut *conn)
            .await?;
    match earlier {
        None => Ok(CodeExchange::Unknown),
        Some((family,)) => {
            if let Some(family) = family {
                revoke_family(conn, family, now).await?;
            }
            Ok(CodeExchange::Replayed)
        }
    }
}

async fn rotate_refresh(
    conn: &mut SqliteConnection,
    old: SecretHash,
    now: Timestamp,
    tokens: Vec<TokenRecord>,
) -> Result<Rotation, StoreError> {
    let spent = sqlx::query(
        "UPDATE tokens SET rotated_at = ?2 WHERE token_hash = ?1 AND kind = 'refresh' \
         AND rotated_at IS NULL AND revoked_at IS NULL",
    )
    .bind(old.as_str())
    .bind(now.0)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if spent == 1 {
        for token in tokens {
            insert_token(conn, token).await?;
        }
        return Ok(Rotation::Rotated);
    }
    let earlier: Option<(String, Option<i64>)> = sqlx::query_as(
        "SELECT family, rotated_at FROM tokens WHERE token_hash = ?1 AND kind = 'refresh'",
    )
    .bind(old.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match earlier {
        Some((family, Some(_))) => {
            revoke_family(conn, family, now).await?;
            Ok(Rotation::Reused)
        }
        _ => Ok(Rotation::Unknown),
    }
}

async fn insert_token(conn: &mut SqliteConnection, token: TokenRecord) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (token_hash, kind, family, person_id, client_id, resource, scope, \
         name, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
    conn: &mut SqliteConnection,
    family: String,
    now: Timestamp,
) -> Result<u64, StoreError> {
    let revoked =
        sqlx::query("UPDATE tokens SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL")
            .bind(&family)
            .bind(now.0)
            .execute(conn)
            .await?
            .rows_affected();
    Ok(revoked)
}

async fn setting_or_insert(
    conn: &mut SqliteConnection,
    key: String,
    value: String,
) -> Result<String, StoreError> {
    sqlx::query("INSERT INTO server_settings (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
        .bind(&key)
        .bind(&value)
        .execute(&mut *conn)
        .await?;
    let (stored,): (String,) = sqlx::query_as("SELECT value FROM server_settings WHERE key = ?1")
        .bind(&key)
        .fetch_one(conn)
        .await?;
    Ok(stored)
}

async fn purge_expired(conn: &mut SqliteConnection, before: Timestamp) -> Result<u64, StoreError> {
    let codes = sqlx::query("DELETE FROM oauth_codes WHERE expires_at < ?1")
        .bind(before.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    // A rotated or revoked refresh token is kept until it expires: presenting it again must
    // still be recognised as reuse.
    let tokens = sqlx::query(
        "DELETE FROM tokens WHERE kind != 'personal' AND expires_at IS NOT NULL \
         AND expires_at < ?1",
    )
    .bind(before.0)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(codes + tokens)
}

async fn sweep_unused(
    conn: &mut SqliteConnection,
    before: Timestamp,
    now: Timestamp,
) -> Result<Swept, StoreError> {
    let unused_clients = "SELECT client_id FROM oauth_clients \
        WHERE token_issued_at IS NULL AND created_at < ?1";
    for table in ["oauth_codes", "oauth_approved_clients"] {
        sqlx::query(&format!(
            "DELETE FROM {table} WHERE client_id IN ({unused_clients})"
        ))
        .bind(before.0)
        .execute(&mut *conn)
        .await?;
    }
    let clients =
        sqlx::query("DELETE FROM oauth_clients WHERE token_issued_at IS NULL AND created_at < ?1")
            .bind(before.0)
            .execute(&mut *conn)
            .await?
            .rows_affected();
    // Seats and channels name people without a foreign key, so they are checked here: a person
    // who holds a seat or owns a channel is never deleted.
    let people = sqlx::query(
        "DELETE FROM people WHERE created_at < ?1 \
         AND NOT EXISTS (SELECT 1 FROM tokens WHERE tokens.person_id = people.id) \
         AND NOT EXISTS (SELECT 1 FROM oauth_codes WHERE oauth_codes.person_id = people.id) \
         AND NOT EXISTS (SELECT 1 FROM slots WHERE slots.holder = people.id) \
         AND NOT EXISTS (SELECT 1 FROM channels WHERE channels.owner = people.id)",
    )
    .bind(before.0)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    let forms = sqlx::query("DELETE FROM oauth_spent_forms WHERE expires_at < ?1")
        .bind(now.0)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(Swept {
        clients,
        people,
        forms,
    })
}
