//! What the authorization server keeps: people, registered clients, authorization codes and
//! tokens, as plain records. The rules that decide what to store live in the `auth` crate; this
//! module only stores and finds, atomically where a rule needs it (a code is exchanged once, a
//! refresh token is rotated once).

use domain::{PrincipalId, SecretHash, Timestamp};

use crate::StoreError;
use crate::rows::Columns;

/// A principal created by the authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub id: PrincipalId,
    pub display_name: String,
    pub created_at: Timestamp,
}

/// A client registered through dynamic client registration (RFC 7591).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredClient {
    pub client_id: String,
    /// Present for confidential clients (`client_secret_post` / `client_secret_basic`).
    pub secret_hash: Option<SecretHash>,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub auth_method: String,
    pub created_at: Timestamp,
}

/// An authorization code waiting to be exchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: SecretHash,
    pub client_id: String,
    pub person: PrincipalId,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    /// Issued by `mcp-multiplayer token create` for scripts; used like an access token.
    Personal,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
            TokenKind::Personal => "personal",
        }
    }

    fn from_stored(raw: &str) -> Result<Self, StoreError> {
        match raw {
            "access" => Ok(TokenKind::Access),
            "refresh" => Ok(TokenKind::Refresh),
            "personal" => Ok(TokenKind::Personal),
            other => Err(StoreError::Corrupt(format!("unknown token kind {other:?}"))),
        }
    }
}

/// A token as stored: everything but the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token_hash: SecretHash,
    pub kind: TokenKind,
    /// The grant this token belongs to (see the `tokens` table).
    pub family: String,
    pub person: PrincipalId,
    pub client_id: Option<String>,
    /// The resource (RFC 8707) the token was issued for: its audience.
    pub resource: String,
    /// Space-separated scopes.
    pub scope: String,
    /// A personal token's name.
    pub name: Option<String>,
    pub created_at: Timestamp,
    /// `None` for a personal token without expiry.
    pub expires_at: Option<Timestamp>,
}

/// A stored token with what a request check needs beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    pub record: TokenRecord,
    pub display_name: String,
    /// A refresh token that was already exchanged for a new one.
    pub rotated: bool,
    pub revoked: bool,
}

/// What became of an attempt to exchange an authorization code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeExchange {
    /// The code was fresh: it is now spent and the tokens are stored.
    Issued,
    /// The code had been exchanged before: the tokens issued for it are now revoked.
    Replayed,
    /// No such code.
    Unknown,
}

/// What became of an attempt to rotate a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The old token is spent and the new tokens are stored.
    Rotated,
    /// The old token had been used before: its whole family is now revoked.
    Reused,
    /// No such token, or it is revoked.
    Unknown,
}

/// The authorization server's people, clients, codes and tokens, as every backend stores them
/// (see [`crate::Backend`]).
#[async_trait::async_trait]
pub trait AuthBackend: Send + Sync {
    async fn create_person(&self, person: Person) -> Result<(), StoreError>;

    async fn person(&self, id: &PrincipalId) -> Result<Option<Person>, StoreError>;

    async fn register_client(&self, client: RegisteredClient) -> Result<(), StoreError>;

    async fn registered_client(
        &self,
        client_id: &str,
    ) -> Result<Option<RegisteredClient>, StoreError>;

    /// Stores a code a person just granted, and remembers that its client was approved.
    async fn insert_code(&self, code: AuthorizationCode) -> Result<(), StoreError>;

    /// Whether a person ever approved `client_id` (see [`AuthBackend::insert_code`]).
    async fn client_approved(&self, client_id: &str) -> Result<bool, StoreError>;

    /// Marks a consent form token as submitted, until `expires_at`. Answers whether this was
    /// its first submission.
    async fn spend_form(
        &self,
        hash: &SecretHash,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError>;

    /// The code stored under `hash`, spent or not, with whether it is spent.
    async fn code(
        &self,
        hash: &SecretHash,
    ) -> Result<Option<(AuthorizationCode, bool)>, StoreError>;

    /// Spends the code and stores `tokens` in one transaction (noting that their client has
    /// now obtained tokens); a code spent before revokes the tokens it was exchanged for instead.
    async fn exchange_code(
        &self,
        hash: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<CodeExchange, StoreError>;

    /// Spends the refresh token and stores `tokens` in one transaction; a refresh token used
    /// before revokes its whole family instead.
    async fn rotate_refresh(
        &self,
        old: &SecretHash,
        now: Timestamp,
        tokens: Vec<TokenRecord>,
    ) -> Result<Rotation, StoreError>;

    async fn insert_token(&self, token: TokenRecord) -> Result<(), StoreError>;

    async fn token(&self, hash: &SecretHash) -> Result<Option<StoredToken>, StoreError>;

    /// Revokes every token of `family`; returns how many were still live.
    async fn revoke_family(&self, family: &str, now: Timestamp) -> Result<u64, StoreError>;

    /// Personal tokens, live ones first.
    async fn personal_tokens(&self) -> Result<Vec<StoredToken>, StoreError>;

    /// The tokens of `person` that were not revoked (expired ones included), oldest first:
    /// what the connections page groups into grants.
    async fn tokens_of(&self, person: &PrincipalId) -> Result<Vec<StoredToken>, StoreError>;

    /// The value stored under `key`, or `value` stored now if there was none.
    async fn setting_or_insert(&self, key: &str, value: String) -> Result<String, StoreError>;

    /// Deletes codes and tokens that expired before `before`.
    async fn purge_expired(&self, before: Timestamp) -> Result<u64, StoreError>;

    /// Deletes what strangers left behind: clients registered before `before` that never
    /// obtained a token (with their codes and their approval), people created before `before` that hold nothing
    /// (no token of any kind, no code, no seat, no channel they own), and spent consent form
    /// tokens that expired before `now`.
    async fn sweep_unused(&self, before: Timestamp, now: Timestamp) -> Result<Swept, StoreError>;
}

/// What one sweep of unused registrations deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Registered clients that never obtained a token.
    pub clients: u64,
    /// People who hold nothing: no token, no code, no seat, no channel.
    pub people: u64,
    /// Spent consent form tokens past their expiry.
    pub forms: u64,
}

/// The columns [`stored_token_from_row`] reads, from `tokens t JOIN people p`, in either dialect.
pub(crate) const TOKEN_COLUMNS: &str = "t.token_hash, t.kind, t.family, t.person_id, t.client_id, \
    t.resource, t.scope, t.name, t.created_at, t.expires_at, t.rotated_at, t.revoked_at, \
    p.display_name";

/// A `people` row: `id, display_name, created_at`.
pub(crate) fn person_from_row(row: &impl Columns) -> Result<Person, StoreError> {
    Ok(Person {
        id: PrincipalId::new(row.text("id")?),
        display_name: row.text("display_name")?,
        created_at: Timestamp(row.int("created_at")?),
    })
}

/// The JSON text a client's redirect URIs are stored as.
pub(crate) fn stored_redirect_uris(client: &RegisteredClient) -> Result<String, StoreError> {
    serde_json::to_string(&client.redirect_uris)
        .map_err(|error| StoreError::Backend(format!("redirect_uris: {error}")))
}

/// An `oauth_clients` row: `client_id, secret_hash, name, redirect_uris, auth_method,
/// created_at`.
pub(crate) fn client_from_row(row: &impl Columns) -> Result<RegisteredClient, StoreError> {
    let uris = row.text("redirect_uris")?;
    Ok(RegisteredClient {
        client_id: row.text("client_id")?,
        secret_hash: row.maybe_text("secret_hash")?.map(SecretHash::from_trusted),
        name: row.text("name")?,
        redirect_uris: serde_json::from_str(&uris)
            .map_err(|error| StoreError::Corrupt(format!("redirect_uris: {error}")))?,
        auth_method: row.text("auth_method")?,
        created_at: Timestamp(row.int("created_at")?),
    })
}

/// An `oauth_codes` row (`code_hash, client_id, person_id, redirect_uri, code_challenge,
/// resource, scope, expires_at, used_at`) and whether the code is spent.
pub(crate) fn code_from_row(row: &impl Columns) -> Result<(AuthorizationCode, bool), StoreError> {
    let code = AuthorizationCode {
        code_hash: SecretHash::from_trusted(row.text("code_hash")?),
        client_id: row.text("client_id")?,
        person: PrincipalId::new(row.text("person_id")?),
        redirect_uri: row.text("redirect_uri")?,
        code_challenge: row.text("code_challenge")?,
        resource: row.text("resource")?,
        scope: row.text("scope")?,
        expires_at: Timestamp(row.int("expires_at")?),
    };
    Ok((code, row.maybe_int("used_at")?.is_some()))
}

/// A row of [`TOKEN_COLUMNS`].
pub(crate) fn stored_token_from_row(row: &impl Columns) -> Result<StoredToken, StoreError> {
    Ok(StoredToken {
        record: TokenRecord {
            token_hash: SecretHash::from_trusted(row.text("token_hash")?),
            kind: TokenKind::from_stored(&row.text("kind")?)?,
            family: row.text("family")?,
            person: PrincipalId::new(row.text("person_id")?),
            client_id: row.maybe_text("client_id")?,
            resource: row.text("resource")?,
            scope: row.text("scope")?,
            name: row.maybe_text("name")?,
            created_at: Timestamp(row.int("created_at")?),
            expires_at: row.maybe_int("expires_at")?.map(Timestamp),
        },
        display_name: row.text("display_name")?,
        rotated: row.maybe_int("rotated_at")?.is_some(),
        revoked: row.maybe_int("revoked_at")?.is_some(),
    })
}
