//! The server's signing keys and the heads they sign.
//!
//! A channel's *head* is the hash of its newest message, the last link of its hash chain, so
//! it commits to the whole history. A [`SignedHead`] is the server saying "channel `C` had `N`
//! messages ending in head `H` at time `T`", signed with Ed25519 so that a participant can keep
//! it as proof of what they were shown: two different heads signed for the same channel and
//! seq are evidence against the server.
//!
//! # The bytes that are signed
//!
//! For a statement `{channel, seq, head, at}` the signed message is, byte for byte:
//!
//! ```text
//! "mcp-multiplayer signed head v1\n" || JCS({"channel": channel, "seq": seq, "head": head, "at": at})
//! ```
//!
//! - The prefix is those 31 ASCII bytes, ending in one line feed (0x0A). It names what is
//!   signed, so a signature over a head can never be taken for one over anything else.
//! - `JCS` is the JSON Canonicalization Scheme, RFC 8785, of an object with exactly these four
//!   members: `channel` the channel id as a string (`ch_` and 24 lowercase hex digits), `seq`
//!   the number of the channel's newest message as a JSON integer (0 before the first),
//!   `head` its hash as a string (`sha256:` and 64 lowercase hex digits), and `at` the time of
//!   the statement in milliseconds since the Unix epoch as a JSON integer. JCS sorts the
//!   members by name and writes no whitespace, so for example:
//!
//!   ```text
//!   {"at":1750000000000,"channel":"ch_0123456789abcdef01234567","head":"sha256:ab…ab","seq":42}
//!   ```
//! - No newline follows the JSON. The message is signed as is (Ed25519, RFC 8032, not
//!   pre-hashed), and the 64-byte signature is written base64url without padding
//!   (RFC 4648 §5).
//!
//! `signing_bytes_are_pinned` in this file's tests holds one example; a change of the format
//! must change the prefix's `v1`.
//!
//! # The bytes of a fetch attestation
//!
//! The witness's record of a fetch (`domain::attestation`) is signed the same way, bound to
//! where it belongs:
//!
//! ```text
//! "mcp-multiplayer fetch attestation v1\n" || JCS({"attestation": record, "channel": channel,
//!                                                  "requested_by": seq, "slot": slot, "tag": tag})
//! ```
//!
//! where `record` is the notice's `attestation` object as it stands in the transcript, and the
//! other members say which bot asked (its slot and tag, the seq of the event that asked) in
//! which channel, so that a record cannot be moved to another channel or bot.
//!
//! # Keys
//!
//! One key is active and signs. Rotation retires it and makes a new one; the public halves of
//! retired keys are kept forever, so heads signed long ago still verify. A key's id
//! ([`KeyId`]) is derived from its public key, so a list of keys cannot claim an id for a key
//! it does not hold. [`verify`] needs only [`PublicKeyInfo`]s, which the server publishes.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use domain::attestation::{Attestation, WitnessSignature};
use domain::{ChannelId, Seq, SlotLabel, Timestamp};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The signature algorithm, as named in the published key list.
pub const ALGORITHM: &str = "Ed25519";

/// What every signed message starts with; see the module documentation.
pub const SIGNED_HEAD_PREFIX: &str = "mcp-multiplayer signed head v1\n";

/// What every signed fetch attestation starts with; see the module documentation.
pub const ATTESTATION_PREFIX: &str = "mcp-multiplayer fetch attestation v1\n";

/// Bytes in a secret (seed) or public Ed25519 key.
pub const KEY_BYTES: usize = 32;

/// A key's short, stable name: `ed25519:` and the first 16 hex digits of the SHA-256 of its
/// 32 public key bytes. 64 bits tell a server's few keys apart; they are no security claim,
/// since [`verify`] checks the signature against the public key itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId(String);

impl KeyId {
    const PREFIX: &'static str = "ed25519:";
    const HEX_DIGITS: usize = 16;

    /// The id of the key with these public bytes.
    pub fn of(public: &[u8; KEY_BYTES]) -> Self {
        let mut digits = hex::encode(Sha256::digest(public));
        digits.truncate(Self::HEX_DIGITS);
        KeyId(format!("{}{digits}", Self::PREFIX))
    }

    /// Reads an id in its one written form; anything else (uppercase digits included) is
    /// refused, so that one key has one id.
    pub fn parse(raw: &str) -> Option<Self> {
        let digits = raw.strip_prefix(Self::PREFIX)?;
        (digits.len() == Self::HEX_DIGITS && digits.bytes().all(is_lower_hex))
            .then(|| KeyId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for KeyId {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        KeyId::parse(&raw).ok_or_else(|| format!("{raw:?} is not a key id (ed25519:<16 hex>)"))
    }
}

impl From<KeyId> for String {
    fn from(id: KeyId) -> String {
        id.0
    }
}

/// The public half of one of the server's keys, as published: all a verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKeyInfo {
    pub id: KeyId,
    /// The 32 bytes of the Ed25519 public key, base64url without padding.
    pub public: String,
    pub created_at: Timestamp,
    /// When it stopped signing; `None` for the active key.
    ///
    /// Not a bound on the heads it signed: a running server goes on signing with a key until
    /// it notices the rotation, so a head may be dated a little after its key's retirement.
    pub retired_at: Option<Timestamp>,
}

impl PublicKeyInfo {
    /// The published form of the key with these public bytes: its id derived, its bytes in
    /// base64url.
    pub fn from_public_bytes(
        public: &[u8; KEY_BYTES],
        created_at: Timestamp,
        retired_at: Option<Timestamp>,
    ) -> Self {
        PublicKeyInfo {
            id: KeyId::of(public),
            public: URL_SAFE_NO_PAD.encode(public),
            created_at,
            retired_at,
        }
    }

    /// Whether this key still signs.
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }

    /// The key itself, once its bytes and its id are found to agree.
    fn verifying_key(&self) -> Result<VerifyingKey, SignatureError> {
        let bytes: [u8; KEY_BYTES] = URL_SAFE_NO_PAD
            .decode(&self.public)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                SignatureError::Malformed(format!(
                    "public key {} is not 32 bytes of base64url without padding",
                    self.id
                ))
            })?;
        if KeyId::of(&bytes) != self.id {
            return Err(SignatureError::Malformed(format!(
                "key id {} is not the id of its public key",
                self.id
            )));
        }
        VerifyingKey::from_bytes(&bytes).map_err(|_| {
            SignatureError::Malformed(format!("public key {} is not a curve point", self.id))
        })
    }
}

/// A signing key, secret included. Built from bytes the caller drew from a CSPRNG (this crate
/// has no randomness) or read back from the store.
pub struct ServerKey {
    signing: SigningKey,
    id: KeyId,
    created_at: Timestamp,
}

impl ServerKey {
    /// The key whose 32-byte secret (the RFC 8032 seed) is `secret`.
    pub fn from_secret(secret: [u8; KEY_BYTES], created_at: Timestamp) -> Self {
        let signing = SigningKey::from_bytes(&secret);
        let id = KeyId::of(&signing.verifying_key().to_bytes());
        ServerKey {
            signing,
            id,
            created_at,
        }
    }

    /// The secret, for storage only.
    pub fn secret(&self) -> [u8; KEY_BYTES] {
        self.signing.to_bytes()
    }

    pub fn id(&self) -> &KeyId {
        &self.id
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }

    /// The 32 bytes of the public key.
    pub fn public_bytes(&self) -> [u8; KEY_BYTES] {
        self.signing.verifying_key().to_bytes()
    }

    /// The public key, base64url without padding.
    pub fn public(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_bytes())
    }

    /// What is published of this key while it is active.
    pub fn info(&self) -> PublicKeyInfo {
        PublicKeyInfo::from_public_bytes(&self.public_bytes(), self.created_at, None)
    }
}

/// Shows the key's id, never its secret.
impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerKey")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What the server states about a channel, before it is signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadStatement {
    pub channel: ChannelId,
    /// The channel's newest message (0 before the first).
    pub seq: Seq,
    /// That message's chain hash: `sha256:` and 64 lowercase hex digits.
    pub head: String,
    /// When the server made the statement.
    pub at: Timestamp,
}

impl HeadStatement {
    /// The exact bytes signed: [`SIGNED_HEAD_PREFIX`] followed by the RFC 8785 canonical JSON
    /// of `{"channel", "seq", "head", "at"}` (ids and the head as strings, `seq` and `at` as
    /// integers, `at` in milliseconds since the Unix epoch), with nothing after it. The module
    /// documentation spells it out for writers of other verifiers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let fields = serde_json::json!({
            "channel": self.channel.as_str(),
            "seq": self.seq.0,
            "head": self.head,
            "at": self.at.0,
        });
        let canonical = serde_json_canonicalizer::to_vec(&fields)
            .expect("an object of strings and integers always has a canonical form");
        let mut bytes = Vec::with_capacity(SIGNED_HEAD_PREFIX.len() + canonical.len());
        bytes.extend_from_slice(SIGNED_HEAD_PREFIX.as_bytes());
        bytes.extend_from_slice(&canonical);
        bytes
    }
}

/// A [`HeadStatement`] with the server's signature, as it appears in answers and exports:
/// `{"channel", "seq", "head", "at", "key_id", "signature"}`, `at` in milliseconds (the value
/// signed). Reading one refuses fields that are not in their one written form, since the
/// signature covers the exact text; fields beyond these six are ignored and covered by nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SignedHeadWire", into = "SignedHeadWire")]
pub struct SignedHead {
    pub channel: ChannelId,
    pub seq: Seq,
    pub head: String,
    pub at: Timestamp,
    /// The key that signed, to look up among the published keys.
    pub key_id: KeyId,
    /// The 64-byte Ed25519 signature over [`HeadStatement::signing_bytes`], base64url without
    /// padding.
    pub signature: String,
}

impl SignedHead {
    /// The statement the signature claims to cover.
    pub fn statement(&self) -> HeadStatement {
        HeadStatement {
            channel: self.channel.clone(),
            seq: self.seq,
            head: self.head.clone(),
            at: self.at,
        }
    }
}

/// [`SignedHead`] as JSON: domain types carry no serde, so the edge converts by hand.
#[derive(Serialize, Deserialize)]
struct SignedHeadWire {
    channel: String,
    seq: i64,
    head: String,
    at: i64,
    key_id: KeyId,
    signature: String,
}

impl TryFrom<SignedHeadWire> for SignedHead {
    type Error = String;

    fn try_from(wire: SignedHeadWire) -> Result<Self, String> {
        let channel = ChannelId::parse(&wire.channel)
            .ok()
            .filter(|channel| channel.as_str() == wire.channel)
            .ok_or_else(|| format!("{:?} is not a channel id", wire.channel))?;
        if wire.seq < 0 {
            return Err(format!("seq {} is negative", wire.seq));
        }
        if !is_head(&wire.head) {
            return Err(format!(
                "{:?} is not a head (sha256:<64 lowercase hex>)",
                wire.head
            ));
        }
        Ok(SignedHead {
            channel,
            seq: Seq(wire.seq),
            head: wire.head,
            at: Timestamp(wire.at),
            key_id: wire.key_id,
            signature: wire.signature,
        })
    }
}

impl From<SignedHead> for SignedHeadWire {
    fn from(signed: SignedHead) -> Self {
        SignedHeadWire {
            channel: signed.channel.as_str().to_owned(),
            seq: signed.seq.0,
            head: signed.head,
            at: signed.at.0,
            key_id: signed.key_id,
            signature: signed.signature,
        }
    }
}

/// The server's keys: the active one, which signs, and the public halves of all of them
/// (active and retired), which verify.
pub struct Keyring {
    active: ServerKey,
    keys: Vec<PublicKeyInfo>,
}

impl Keyring {
    /// A keyring signing with `active`. `keys` lists every key, `active` among them as the one
    /// not retired; each listed id must be the id of its public key.
    pub fn new(active: ServerKey, keys: Vec<PublicKeyInfo>) -> Result<Self, KeyringError> {
        let mut seen = std::collections::HashSet::new();
        let mut active_listed = false;
        for key in &keys {
            if !seen.insert(&key.id) {
                return Err(KeyringError::Duplicate(key.id.clone()));
            }
            key.verifying_key()
                .map_err(|error| KeyringError::Malformed(error.to_string()))?;
            if key.id == active.id {
                if !key.is_active() || key.public != active.public() {
                    return Err(KeyringError::ActiveNotListed(active.id.clone()));
                }
                active_listed = true;
            } else if key.is_active() {
                return Err(KeyringError::NotRetired(key.id.clone()));
            }
        }
        if !active_listed {
            return Err(KeyringError::ActiveNotListed(active.id.clone()));
        }
        Ok(Keyring { active, keys })
    }

    /// The id of the key that signs.
    pub fn active_id(&self) -> &KeyId {
        &self.active.id
    }

    /// Every key, active and retired, in the order given to [`Keyring::new`].
    pub fn keys(&self) -> &[PublicKeyInfo] {
        &self.keys
    }

    /// Signs `statement` with the active key.
    pub fn sign(&self, statement: HeadStatement) -> SignedHead {
        let signature = self.active.signing.sign(&statement.signing_bytes());
        SignedHead {
            channel: statement.channel,
            seq: statement.seq,
            head: statement.head,
            at: statement.at,
            key_id: self.active.id.clone(),
            signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }
    }

    /// [`verify`] against this keyring's keys.
    pub fn verify(&self, signed: &SignedHead) -> Result<(), SignatureError> {
        verify(signed, &self.keys)
    }

    /// Signs a fetch attestation with the active key.
    pub fn sign_attestation(&self, statement: &AttestationStatement<'_>) -> WitnessSignature {
        let signature = self.active.signing.sign(&statement.signing_bytes());
        WitnessSignature {
            key_id: self.active.id.to_string(),
            signature: URL_SAFE_NO_PAD.encode(signature.to_bytes()),
        }
    }
}

/// A fetch attestation and where it belongs: what the server signs for a `fetch_attested`
/// notice.
#[derive(Debug, Clone, Copy)]
pub struct AttestationStatement<'a> {
    pub channel: &'a ChannelId,
    pub slot: &'a SlotLabel,
    pub tag: &'a str,
    pub requested_by: Seq,
    pub attestation: &'a Attestation,
}

impl AttestationStatement<'_> {
    /// The exact bytes signed; see the module documentation.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let fields = serde_json::json!({
            "attestation": self.attestation,
            "channel": self.channel.as_str(),
            "requested_by": self.requested_by.0,
            "slot": self.slot.as_str(),
            "tag": self.tag,
        });
        let canonical = serde_json_canonicalizer::to_vec(&fields)
            .expect("a record of strings, integers and booleans always has a canonical form");
        let mut bytes = Vec::with_capacity(ATTESTATION_PREFIX.len() + canonical.len());
        bytes.extend_from_slice(ATTESTATION_PREFIX.as_bytes());
        bytes.extend_from_slice(&canonical);
        bytes
    }
}

/// Checks the server's signature over a fetch attestation, as [`verify`] does for a head.
pub fn verify_attestation(
    statement: &AttestationStatement<'_>,
    witness: &WitnessSignature,
    keys: &[PublicKeyInfo],
) -> Result<(), SignatureError> {
    let key_id = KeyId::parse(&witness.key_id).ok_or_else(|| {
        SignatureError::Malformed(format!("{:?} is not a key id", witness.key_id))
    })?;
    verify_bytes(
        &key_id,
        &witness.signature,
        &statement.signing_bytes(),
        keys,
    )
}

/// Shows the key ids, never a secret.
impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active.id)
            .field(
                "keys",
                &self.keys.iter().map(|key| &key.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Checks that `signed` carries a valid signature over its own statement by the key it names,
/// found among `keys` (the published list). Needs no secret and no server.
///
/// Uses Ed25519's strict verification (RFC 8032 §5.1.7 with canonical `S` and no small-order
/// keys), so no second encoding of a signature verifies.
pub fn verify(signed: &SignedHead, keys: &[PublicKeyInfo]) -> Result<(), SignatureError> {
    verify_bytes(
        &signed.key_id,
        &signed.signature,
        &signed.statement().signing_bytes(),
        keys,
    )
}

/// Checks `signature` (base64url) by the key `key_id`, found among `keys`, over `message`.
fn verify_bytes(
    key_id: &KeyId,
    signature: &str,
    message: &[u8],
    keys: &[PublicKeyInfo],
) -> Result<(), SignatureError> {
    let key = keys
        .iter()
        .find(|key| &key.id == key_id)
        .ok_or_else(|| SignatureError::UnknownKey(key_id.clone()))?;
    let verifying = key.verifying_key()?;
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            SignatureError::Malformed(
                "the signature is not 64 bytes of base64url without padding".into(),
            )
        })?;
    verifying
        .verify_strict(message, &Signature::from_bytes(&signature))
        .map_err(|_| SignatureError::BadSignature)
}

/// Why a signed head did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No key with the signed head's `key_id` is among the keys given.
    #[error("no public key {0} among the server's keys")]
    UnknownKey(KeyId),
    /// The signature or the public key is not in its encoding, or a key's id is not its own.
    #[error("malformed: {0}")]
    Malformed(String),
    /// The signature is well formed but does not match the statement and the key.
    #[error("the signature does not match the statement and the key")]
    BadSignature,
}

impl SignatureError {
    /// A stable code for reports and answers.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::UnknownKey(_) => "unknown_key",
            SignatureError::Malformed(_) => "malformed",
            SignatureError::BadSignature => "bad_signature",
        }
    }
}

/// Why a set of keys cannot make a [`Keyring`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// The signing key is missing from the list, listed as retired, or listed with another
    /// public key.
    #[error("the active key {0} is not listed as the active key")]
    ActiveNotListed(KeyId),
    /// A key other than the signing one is not retired: there is one active key at a time.
    #[error("key {0} is not retired, but another key signs")]
    NotRetired(KeyId),
    /// Two keys share an id.
    #[error("key {0} is listed twice")]
    Duplicate(KeyId),
    /// A listed public key is not in its encoding, or not the key of its id.
    #[error("{0}")]
    Malformed(String),
}

fn is_lower_hex(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)
}

/// `sha256:` and 64 lowercase hex digits.
fn is_head(raw: &str) -> bool {
    raw.strip_prefix("sha256:")
        .is_some_and(|digits| digits.len() == 64 && digits.bytes().all(is_lower_hex))
}

#[cfg(test)]
mod tests;
