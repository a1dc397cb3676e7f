//! The server's signing keys, between the store (which keeps bytes) and the `transcript` crate
//! (which knows Ed25519): loading them into a [`Keyring`], making the first key, rotating, and
//! noticing a rotation made by another process.
//!
//! Why here: `transcript` must not know the store, and the store must not know Ed25519. The
//! service already stands on the store and is where heads get signed, so it owns the glue;
//! the binary's `keys` commands call the same functions, so a key is made and read back one
//! way only. Secrets come from the operating system's CSPRNG through `rand`, as every other
//! secret of the service does.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use domain::Timestamp;
use rand::RngCore;
use store::keys::ServerKeyRecord;
use store::{Store, StoreError};
use tokio::time::Instant;
use transcript::signing::KEY_BYTES;
use transcript::{KeyId, Keyring, KeyringError, PublicKeyInfo, ServerKey};

use crate::{Service, ServiceError};

/// The signature algorithm, as the published key list names it.
pub use transcript::signing::ALGORITHM;

/// How often a running service looks for a key rotated by another process (`keys rotate`):
/// often enough that a rotation takes effect within a minute, rarely enough that looking costs
/// nothing (one small read per minute, and only when something is signed or published).
pub const KEY_RECHECK: Duration = Duration::from_secs(60);

/// Why the signing keys could not be loaded, made or rotated.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored key is not what this server writes: bad hex, a wrong length, or an id, public
    /// key and secret that do not belong together.
    #[error("stored signing key {id} is unusable: {reason}")]
    Corrupt { id: String, reason: String },
    /// No stored key is active, even after making one.
    #[error("no signing key is active")]
    NoActiveKey,
    /// The stored keys do not make a keyring (two active keys, say).
    #[error("the stored signing keys do not fit together: {0}")]
    Keyring(#[from] KeyringError),
}

/// What `rotate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The key that stopped signing, if one was active.
    pub retired: Option<KeyId>,
    /// The key that signs from now on.
    pub active: KeyId,
}

/// The keys as published: every public key, and which one signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedKeys {
    pub active: KeyId,
    /// Active and retired, in the order they were made.
    pub keys: Vec<PublicKeyInfo>,
}

/// Loads every key into a keyring, first making one if none is active.
///
/// Two processes starting at once on one database must not both make a key: each inserts its
/// own only if no key is active (a unique index in the store decides), then reads again, so
/// both end up signing with the one that was stored.
pub async fn load_keyring(store: &Store, now: Timestamp) -> Result<Keyring, KeysError> {
    let mut records = store.server_keys().await?;
    if !records.iter().any(|record| record.retired_at.is_none()) {
        let key = ServerKey::from_secret(random_secret(), now);
        if store.insert_server_key(record_of(&key)).await? {
            tracing::info!(key = %key.id(), "made the server's first signing key");
        }
        records = store.server_keys().await?;
    }
    keyring_of(records)
}

/// Retires the active key and makes a new one, in one transaction. The retired key's public
/// half is kept forever, so what it signed still verifies; its secret is erased.
pub async fn rotate(store: &Store, now: Timestamp) -> Result<Rotated, KeysError> {
    let next = ServerKey::from_secret(random_secret(), now);
    let retired = store.rotate_server_key(record_of(&next), now).await?;
    let retired = retired
        .map(|id| {
            KeyId::parse(&id).ok_or_else(|| KeysError::Corrupt {
                reason: "its id is not a key id".into(),
                id,
            })
        })
        .transpose()?;
    Ok(Rotated {
        retired,
        active: next.id().clone(),
    })
}

/// Every stored key's public half, in the order they were made, without loading a secret.
pub async fn public_keys(store: &Store) -> Result<Vec<PublicKeyInfo>, KeysError> {
    store.server_keys().await?.iter().map(info_of).collect()
}

/// The keyring a service signs with, loaded on first use and re-read at most once per
/// `recheck`, so a rotation made beside a running server takes effect without a restart.
pub(crate) struct ServerKeys {
    recheck: Duration,
    loaded: RwLock<Option<Loaded>>,
}

struct Loaded {
    keyring: Arc<Keyring>,
    checked_at: Instant,
}

impl ServerKeys {
    pub(crate) fn new(recheck: Duration) -> Self {
        ServerKeys {
            recheck,
            loaded: RwLock::new(None),
        }
    }

    /// Loads the keys now (making the first one if there is none) and keeps them.
    pub(crate) async fn load(
        &self,
        store: &Store,
        now: Timestamp,
    ) -> Result<Arc<Keyring>, KeysError> {
        let keyring = Arc::new(load_keyring(store, now).await?);
        self.keep(keyring.clone());
        Ok(keyring)
    }

    /// The keyring to sign with. Past `recheck` since the last look, one caller reads the
    /// keys again while the others go on with the keyring they have; a failed look keeps it.
    pub(crate) async fn current(
        &self,
        store: &Store,
        now: Timestamp,
    ) -> Result<Arc<Keyring>, KeysError> {
        let stale = {
            // The lock is never held across an await, and what it guards is replaced whole, so
            // a poisoned lock still holds a consistent value.
            let mut loaded = self
                .loaded
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match loaded.as_mut() {
                None => None,
                Some(loaded) if loaded.checked_at.elapsed() < self.recheck => {
                    return Ok(loaded.keyring.clone());
                }
                Some(loaded) => {
                    // Claimed: callers until this look ends use the keyring as it is.
                    loaded.checked_at = Instant::now();
                    Some(loaded.keyring.clone())
                }
            }
        };
        let Some(stale) = stale else {
            return self.load(store, now).await;
        };
        match self.reread(store, &stale).await {
            Ok(None) => Ok(stale),
            Ok(Some(fresh)) => {
                tracing::info!(
                    retired = %stale.active_id(),
                    active = %fresh.active_id(),
                    "signing with a key rotated in by another process"
                );
                let fresh = Arc::new(fresh);
                self.keep(fresh.clone());
                Ok(fresh)
            }
            Err(error) => {
                tracing::warn!(%error, key = %stale.active_id(), "could not look for a rotated signing key; signing with the one loaded");
                Ok(stale)
            }
        }
    }

    /// A new keyring if another key became active since `stale` was loaded.
    async fn reread(&self, store: &Store, stale: &Keyring) -> Result<Option<Keyring>, KeysError> {
        let records = store.server_keys().await?;
        let unchanged = records
            .iter()
            .any(|record| record.retired_at.is_none() && record.id == stale.active_id().as_str());
        if unchanged {
            Ok(None)
        } else {
            keyring_of(records).map(Some)
        }
    }

    fn keep(&self, keyring: Arc<Keyring>) {
        *self
            .loaded
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Loaded {
            keyring,
            checked_at: Instant::now(),
        });
    }
}

impl Service {
    /// Loads the signing keys now, making the first one if there is none. The binary calls it
    /// at start, so that keys that cannot be loaded stop the server before it serves.
    pub async fn load_keys(&self) -> Result<Arc<Keyring>, KeysError> {
        self.inner.keys.load(&self.inner.store, self.now()).await
    }

    /// The keyring that signs heads; a key rotated by another process is noticed within
    /// `ServiceSettings::key_recheck`.
    pub async fn keyring(&self) -> Result<Arc<Keyring>, ServiceError> {
        self.inner
            .keys
            .current(&self.inner.store, self.now())
            .await
            .map_err(ServiceError::internal)
    }

    /// Every public key and which one signs, for `/.well-known/mcp-multiplayer-keys`. It takes
    /// no caller, unlike every other method: the keys are published so that anyone can verify
    /// a signed head, and reading them costs no more than an answer from memory.
    pub async fn published_keys(&self) -> Result<PublishedKeys, ServiceError> {
        let keyring = self.keyring().await?;
        Ok(PublishedKeys {
            active: keyring.active_id().clone(),
            keys: keyring.keys().to_vec(),
        })
    }
}

fn random_secret() -> [u8; KEY_BYTES] {
    let mut secret = [0u8; KEY_BYTES];
    rand::rng().fill_bytes(&mut secret);
    secret
}

fn record_of(key: &ServerKey) -> ServerKeyRecord {
    ServerKeyRecord {
        id: key.id().as_str().to_owned(),
        secret_hex: Some(hex::encode(key.secret())),
        public_hex: hex::encode(key.public_bytes()),
        created_at: key.created_at(),
        retired_at: None,
    }
}

/// The keyring of these records: the active one's secret signs, all of them verify.
fn keyring_of(records: Vec<ServerKeyRecord>) -> Result<Keyring, KeysError> {
    let infos = records.iter().map(info_of).collect::<Result<Vec<_>, _>>()?;
    let active = records
        .iter()
        .find(|record| record.retired_at.is_none())
        .ok_or(KeysError::NoActiveKey)?;
    let corrupt = |reason: &str| KeysError::Corrupt {
        id: active.id.clone(),
        reason: reason.into(),
    };
    let secret: [u8; KEY_BYTES] = active
        .secret_hex
        .as_deref()
        .and_then(|secret| hex::decode(secret).ok())
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt("its secret is missing or not 32 bytes of hex"))?;
    let key = ServerKey::from_secret(secret, active.created_at);
    if key.id().as_str() != active.id {
        return Err(corrupt("its secret is not the secret of its public key"));
    }
    Ok(Keyring::new(key, infos)?)
}

/// What is published of a stored key; its id must be the id of its public key.
fn info_of(record: &ServerKeyRecord) -> Result<PublicKeyInfo, KeysError> {
    let corrupt = |reason: &str| KeysError::Corrupt {
        id: record.id.clone(),
        reason: reason.into(),
    };
    let public: [u8; KEY_BYTES] = hex::decode(&record.public_hex)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt("its public key is not 32 bytes of hex"))?;
    let info = PublicKeyInfo::from_public_bytes(&public, record.created_at, record.retired_at);
    if info.id.as_str() != record.id {
        return Err(corrupt("its id is not the id of its public key"));
    }
    Ok(info)
}

#[cfg(test)]
mod tests;
