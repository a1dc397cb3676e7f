//! The server's signing keys, as bytes: which key is active, the public halves of all of them,
//! and rotation. What the bytes mean (Ed25519, key ids, signatures) is the `transcript` crate's
//! business; this module only stores them, and keeps one key active at a time whoever writes.

use domain::Timestamp;

use crate::StoreError;
use crate::rows::Columns;

/// One signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKeyRecord {
    /// The key's id, derived from its public key by the caller.
    pub id: String,
    /// Hex of the secret key; `None` once the key is retired (rotation erases it).
    pub secret_hex: Option<String>,
    /// Hex of the public key.
    pub public_hex: String,
    pub created_at: Timestamp,
    /// `None` for the active key.
    pub retired_at: Option<Timestamp>,
}

/// Shows everything but the secret, so a logged record leaks nothing.
impl std::fmt::Debug for ServerKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeyRecord")
            .field("id", &self.id)
            .field("has_secret", &self.secret_hex.is_some())
            .field("public_hex", &self.public_hex)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// The server's signing keys, as every backend stores them (see [`crate::Backend`]).
#[async_trait::async_trait]
pub trait KeyBackend: Send + Sync {
    /// Every signing key, active and retired, in the order they were stored (the active key
    /// last).
    async fn server_keys(&self) -> Result<Vec<ServerKeyRecord>, StoreError>;

    /// Stores `key` unless that would make two active keys (or reuse an id); answers whether
    /// it was stored. Two processes creating the first key at once both call this and then
    /// re-read: one key wins, and both sign with it.
    async fn insert_server_key(&self, key: ServerKeyRecord) -> Result<bool, StoreError>;

    /// Retires the active key at `now` (erasing its secret) and stores `next` as the active
    /// key, in one transaction. Answers the id of the key retired, `None` if none was active.
    async fn rotate_server_key(
        &self,
        next: ServerKeyRecord,
        now: Timestamp,
    ) -> Result<Option<String>, StoreError>;
}

/// The columns [`key_from_row`] reads from `server_keys`, in either dialect.
pub(crate) const KEY_COLUMNS: &str = "id, secret_key, public_key, created_at, retired_at";

/// A row of [`KEY_COLUMNS`].
pub(crate) fn key_from_row(row: &impl Columns) -> Result<ServerKeyRecord, StoreError> {
    Ok(ServerKeyRecord {
        id: row.text("id")?,
        secret_hex: row.maybe_text("secret_key")?,
        public_hex: row.text("public_key")?,
        created_at: Timestamp(row.int("created_at")?),
        retired_at: row.maybe_int("retired_at")?.map(Timestamp),
    })
}
