//! The exported transcript (version 1): one participant's view of a channel, with the hash of
//! everything they may not read, each bot's source, params and revealed seed, the signed head
//! and the server's public keys. `docs/transcript.md` is the specification; these types are its
//! JSON, read strictly (unknown fields are refused, since a verifier must not skip what it
//! cannot check).

use domain::chain::message_digest;
use domain::{Body, ChainHash, ChannelId, Message, MessageKind, Seq, SlotLabel, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::signing::{KeyId, PublicKeyInfo, SignedHead};

/// The `format` every export names.
pub const FORMAT: &str = "mcp-multiplayer-transcript";
/// The version this crate writes and reads.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    pub format: String,
    pub version: u32,
    /// When the export was made, in milliseconds since the Unix epoch.
    pub exported_at: i64,
    pub channel: ChannelHeader,
    pub viewer: Viewer,
    /// Every seq from 1 to `head.seq`, in order.
    pub messages: Vec<ExportedMessage>,
    pub bots: Vec<ExportedBot>,
    pub head: SignedHead,
    pub keys: Vec<ExportedKey>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelHeader {
    pub id: String,
    pub name: String,
    /// `kind:label`, in order, as the `created` notice lists them.
    pub slots: Vec<String>,
    pub closed: bool,
    /// Bot events after this seq saw a context folded from the transcript.
    pub faithful_from: i64,
    /// Private messages to a bot become readable by all once its seed is revealed.
    pub reveal_private: bool,
}

/// Whose view this is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub enum Viewer {
    /// A participant, through the seats they hold (none for an owner without a seat).
    Participant { slots: Vec<String> },
    /// The operator's CLI export, which withholds nothing.
    Operator { operator: bool },
}

/// One message: whole, or withheld with only its seq and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedMessage {
    pub seq: i64,
    #[serde(default, skip_serializing_if = "is_false")]
    pub withheld: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A private message's nonce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// A withheld message's digest, which its link covers ([`domain::chain`]); a readable
    /// message's digest is computed from its content instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub hash: String,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl ExportedMessage {
    /// A message the viewer may read, whole.
    pub fn readable(message: &Message) -> Self {
        ExportedMessage {
            seq: message.seq.0,
            withheld: false,
            kind: Some(message.kind.as_str().to_owned()),
            sender: message.sender.as_ref().map(|slot| slot.as_str().to_owned()),
            sender_name: Some(message.sender_name.clone()),
            to: message.to.as_ref().map(|slot| slot.as_str().to_owned()),
            nonce: message.nonce.clone(),
            at: Some(message.at.0),
            text: message.body.text.clone(),
            data: message.body.data.clone(),
            digest: None,
            hash: message.hash.as_str().to_owned(),
        }
    }

    /// A message the viewer may not read: its place, its digest and its link of the chain.
    pub fn withheld(channel: &ChannelId, message: &Message) -> Self {
        ExportedMessage {
            seq: message.seq.0,
            withheld: true,
            kind: None,
            sender: None,
            sender_name: None,
            to: None,
            nonce: None,
            at: None,
            text: None,
            data: None,
            digest: Some(message_digest(channel, message).as_str().to_owned()),
            hash: message.hash.as_str().to_owned(),
        }
    }

    /// A withheld message's digest, if it is one.
    pub fn given_digest(&self) -> Option<ChainHash> {
        self.digest.as_deref().and_then(ChainHash::parse)
    }

    /// The stored hash, if it is one.
    pub fn chain_hash(&self) -> Option<ChainHash> {
        ChainHash::parse(&self.hash)
    }

    /// The message as the chain hashes it; `Ok(None)` for a withheld one, `Err` for a shape
    /// the server never writes.
    pub fn message(&self) -> Result<Option<Message>, String> {
        if self.withheld {
            let any_content = self.kind.is_some()
                || self.sender.is_some()
                || self.sender_name.is_some()
                || self.to.is_some()
                || self.nonce.is_some()
                || self.at.is_some()
                || self.text.is_some()
                || self.data.is_some();
            return if any_content {
                Err("a withheld message carries content".into())
            } else {
                Ok(None)
            };
        }
        if self.digest.is_some() {
            return Err("a readable message carries a digest".into());
        }
        if let Some(nonce) = &self.nonce
            && !domain::chain::Nonce::is_well_formed(nonce)
        {
            return Err("a malformed nonce".into());
        }
        if self.nonce.is_some() && self.to.is_none() {
            return Err("a public message carries a nonce".into());
        }
        let label = |raw: &Option<String>, what: &str| {
            raw.as_deref()
                .map(|raw| {
                    SlotLabel::parse(raw).map_err(|_| format!("{what} {raw:?} is not a slot"))
                })
                .transpose()
        };
        let kind = self
            .kind
            .as_deref()
            .and_then(MessageKind::from_stored)
            .ok_or("no known kind")?;
        Ok(Some(Message {
            seq: Seq(self.seq),
            kind,
            sender: label(&self.sender, "sender")?,
            sender_name: self.sender_name.clone().ok_or("no sender_name")?,
            body: Body {
                text: self.text.clone(),
                data: self.data.clone(),
            },
            to: label(&self.to, "to")?,
            nonce: self.nonce.clone(),
            at: Timestamp(self.at.ok_or("no at")?),
            hash: self.chain_hash().ok_or("a malformed hash")?,
        }))
    }
}

/// The bot now in a bot slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedBot {
    pub slot: String,
    pub name: String,
    pub language: String,
    pub source: String,
    pub code_hash: String,
    pub params: Value,
    pub params_hash: String,
    pub seed_commitment: String,
    /// 64 hex digits, once revealed.
    pub seed: Option<String>,
    /// The seq of the `bot_attached` notice that started its run.
    pub attached_seq: i64,
    pub ended: bool,
    pub disabled: bool,
}

/// A public key as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedKey {
    pub id: KeyId,
    pub algorithm: String,
    pub public: String,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl From<&PublicKeyInfo> for ExportedKey {
    fn from(key: &PublicKeyInfo) -> Self {
        ExportedKey {
            id: key.id.clone(),
            algorithm: crate::signing::ALGORITHM.to_owned(),
            public: key.public.clone(),
            created_at: key.created_at.0,
            retired_at: key.retired_at.map(|at| at.0),
        }
    }
}

impl ExportedKey {
    pub fn info(&self) -> PublicKeyInfo {
        PublicKeyInfo {
            id: self.id.clone(),
            public: self.public.clone(),
            created_at: Timestamp(self.created_at),
            retired_at: self.retired_at.map(Timestamp),
        }
    }
}

impl Transcript {
    /// The channel id, if the header holds one.
    pub fn channel_id(&self) -> Option<ChannelId> {
        ChannelId::parse(&self.channel.id)
            .ok()
            .filter(|id| id.as_str() == self.channel.id)
    }
}
