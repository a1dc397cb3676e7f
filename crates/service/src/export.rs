//! The transcript as participants take it away: signed heads on every read of a channel, and
//! the export of one participant's view ([`transcript::export`], `docs/transcript.md`).

use std::collections::HashMap;
use std::sync::Mutex;

use domain::limits::{MAX_EXPORT_BYTES, MAX_EXPORT_MESSAGES};
use domain::{
    Channel, ChannelId, DomainError, Message, Notice, PrincipalId, Seq, SlotLabel, Timestamp,
};
use store::bots::BotRecord;
use store::{Audience, Store};
use transcript::export::{
    ChannelHeader, ExportedBot, ExportedKey, ExportedMessage, FORMAT, Transcript, VERSION, Viewer,
};
use transcript::{HeadStatement, Keyring, SignedHead};

use crate::caller::{Access, Caller};
use crate::error::ServiceError;
use crate::service::Service;

/// How long a signed head is handed out again to readers of an unchanged channel, instead of
/// signing anew: a statement a second old is as good a proof, and a busy channel's readers
/// would otherwise each pay for a signature.
const HEAD_REUSE_MS: i64 = 1_000;
/// Channels whose last signed head is kept; past it the memory starts over.
const HEAD_CACHE_CAPACITY: usize = 10_000;

/// The last head signed for each channel.
#[derive(Default)]
pub(crate) struct SignedHeads(Mutex<HashMap<ChannelId, SignedHead>>);

impl Service {
    /// The server's signed statement of `channel`'s head (its last seq and hash) now.
    pub async fn signed_head(&self, channel: &Channel) -> Result<SignedHead, ServiceError> {
        let now = self.now();
        let reusable = |head: &SignedHead| {
            head.seq == channel.last_seq
                && head.head == channel.head.as_str()
                && (0..HEAD_REUSE_MS).contains(&(now.0 - head.at.0))
        };
        if let Some(head) = self.heads().get(&channel.id).filter(|head| reusable(head)) {
            return Ok(head.clone());
        }
        let signed = self.keyring().await?.sign(HeadStatement {
            channel: channel.id.clone(),
            seq: channel.last_seq,
            head: channel.head.as_str().to_owned(),
            at: now,
        });
        let mut heads = self.heads();
        if heads.len() >= HEAD_CACHE_CAPACITY {
            heads.clear();
        }
        heads.insert(channel.id.clone(), signed.clone());
        Ok(signed)
    }

    fn heads(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, SignedHead>> {
        self.inner
            .heads
            .0
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// The transcript of `channel_id` as the caller may see it: every message their seats may
    /// read, the hash of every other, each bot's source, params and revealed seed, the signed
    /// head and the public keys.
    pub async fn export_transcript(
        &self,
        caller: &Caller,
        channel_id: &str,
    ) -> Result<Transcript, ServiceError> {
        let who = self.authorize(caller, Access::Read)?;
        let keyring = self.keyring().await?;
        export(
            &self.inner.store,
            &keyring,
            Some(&who.id),
            channel_id,
            self.now(),
        )
        .await
    }
}

/// The operator's export (the `export` command): everything, withholding nothing, signed with
/// the active key. Reads only, so it runs beside a server on the same database.
pub async fn export_everything(
    store: &Store,
    channel_id: &str,
    now: Timestamp,
) -> Result<Transcript, ServiceError> {
    let keyring = crate::keys::load_keyring(store, now)
        .await
        .map_err(ServiceError::internal)?;
    export(store, &keyring, None, channel_id, now).await
}

/// The transcript as `viewer` may see it (`None`: everything). A bot replaced while the
/// export reads makes it start over, a few times at most.
async fn export(
    store: &Store,
    keyring: &Keyring,
    viewer: Option<&PrincipalId>,
    channel_id: &str,
    now: Timestamp,
) -> Result<Transcript, ServiceError> {
    for _ in 0..3 {
        if let Some(transcript) = export_once(store, keyring, viewer, channel_id, now).await? {
            return Ok(transcript);
        }
    }
    Err(ServiceError::internal(
        "the channel's bots kept changing while it was exported; try again",
    ))
}

async fn export_once(
    store: &Store,
    keyring: &Keyring,
    viewer: Option<&PrincipalId>,
    channel_id: &str,
    now: Timestamp,
) -> Result<Option<Transcript>, ServiceError> {
    let id = ChannelId::parse(channel_id)?;
    let channel = store.load_channel(&id).await?;
    if let Some(viewer) = viewer
        && !channel.is_visible_to(viewer)
    {
        return Err(DomainError::NotMember.into());
    }
    let messages_in_channel = usize::try_from(channel.last_seq.0).unwrap_or(usize::MAX);
    if viewer.is_some() && messages_in_channel > MAX_EXPORT_MESSAGES {
        return Err(too_large(
            "messages in a transcript export (the operator can export it whole with `mcp-multiplayer export`)",
            MAX_EXPORT_MESSAGES,
        ));
    }
    let messages = store
        .messages(
            &id,
            Audience::Everything,
            Seq::ZERO,
            channel.last_seq,
            usize::try_from(channel.last_seq.0).unwrap_or(usize::MAX),
        )
        .await?;
    let seats: Option<Vec<(SlotLabel, Seq)>> = viewer.map(|viewer| {
        channel
            .seats_of(viewer)
            .map(|slot| {
                let since = slot.seat.as_ref().map_or(Seq::ZERO, |seat| seat.since);
                (slot.label.clone(), since)
            })
            .collect()
    });
    let reveals = seed_reveals(&messages);
    let readable = |message: &Message| match &seats {
        None => true,
        Some(seats) => {
            message.to.is_none()
                || seats
                    .iter()
                    .any(|(slot, since)| message.visible_to(slot, *since))
                || channel.revealed_after_run(message, &reveals)
        }
    };
    let mut bytes = 0usize;
    let mut exported = Vec::with_capacity(messages.len());
    for message in &messages {
        if readable(message) {
            bytes += message.body.text.as_ref().map_or(0, String::len)
                + message.body.data.as_ref().map_or(0, |data| {
                    serde_json::Value::Object(data.clone()).to_string().len()
                });
            if viewer.is_some() && bytes > MAX_EXPORT_BYTES {
                return Err(too_large(
                    "bytes of message text and data in a transcript export (the operator can export it whole with `mcp-multiplayer export`)",
                    MAX_EXPORT_BYTES,
                ));
            }
            exported.push(ExportedMessage::readable(message));
        } else {
            exported.push(ExportedMessage::withheld(&channel.id, message));
        }
    }
    let mut bots = Vec::new();
    for bot in store.bots_of(&id).await? {
        match exported_bot(bot, &messages) {
            Ok(bot) => bots.extend(bot),
            Err(Moved) => return Ok(None),
        }
    }
    let head = keyring.sign(HeadStatement {
        channel: channel.id.clone(),
        seq: channel.last_seq,
        head: channel.head.as_str().to_owned(),
        at: now,
    });
    Ok(Some(Transcript {
        format: FORMAT.to_owned(),
        version: VERSION,
        exported_at: now.0,
        channel: ChannelHeader {
            id: channel.id.to_string(),
            name: channel.name.clone(),
            slots: channel
                .slots
                .iter()
                .map(|slot| format!("{}:{}", slot.kind.as_str(), slot.label))
                .collect(),
            closed: channel.closed,
            faithful_from: channel.faithful_from.0,
            reveal_private: channel.reveal_private,
        },
        viewer: match seats {
            None => Viewer::Operator { operator: true },
            Some(seats) => Viewer::Participant {
                slots: seats
                    .into_iter()
                    .map(|(slot, _)| slot.to_string())
                    .collect(),
            },
        },
        messages: exported,
        bots,
        head,
        keys: keyring.keys().iter().map(ExportedKey::from).collect(),
    }))
}

/// Why a participant's export is refused: built whole in memory, it is capped. The operator
/// exports any channel whole from the command line.
fn too_large(what: &'static str, limit: usize) -> ServiceError {
    DomainError::LimitExceeded { what, limit }.into()
}

/// Where each bot slot's seeds were revealed.
fn seed_reveals(messages: &[Message]) -> Vec<(SlotLabel, Seq)> {
    messages
        .iter()
        .filter_map(|message| match message.notice()?.ok()? {
            Notice::BotSeedRevealed { slot, .. } => Some((slot, message.seq)),
            _ => None,
        })
        .collect()
}

/// The bot in a slot as exported: its seed only once a notice after its attachment revealed it.
///
/// The channel, its messages and its bots are separate reads: when the bot's row is not the
/// one its last attach notice announced (it was replaced in between), `Err(Moved)`, and the
/// export starts over. `ended` and `disabled` come from the notices, which the messages read
/// holds consistently.
fn exported_bot(bot: BotRecord, messages: &[Message]) -> Result<Option<ExportedBot>, Moved> {
    let Some((attached, announced)) =
        messages
            .iter()
            .rev()
            .find_map(|message| match message.notice()?.ok()? {
                Notice::BotAttached {
                    slot,
                    code_hash,
                    params_hash,
                    seed_commitment,
                    ..
                } if slot == bot.slot => {
                    Some((message.seq, (code_hash, params_hash, seed_commitment)))
                }
                _ => None,
            })
    else {
        // Attached after the messages were read: not part of this export.
        return Err(Moved);
    };
    if announced
        != (
            bot.code_hash.clone(),
            bot.params_hash.clone(),
            bot.seed_commitment.clone(),
        )
    {
        return Err(Moved);
    }
    let after = |wanted: fn(&Notice, &SlotLabel) -> bool| {
        messages.iter().any(|message| {
            message.seq > attached
                && message
                    .notice()
                    .and_then(Result::ok)
                    .is_some_and(|notice| wanted(&notice, &bot.slot))
        })
    };
    let revealed = after(
        |notice, slot| matches!(notice, Notice::BotSeedRevealed { slot: of, .. } if of == slot),
    );
    let ended =
        after(|notice, slot| matches!(notice, Notice::BotRunEnded { slot: of, .. } if of == slot));
    let disabled =
        after(|notice, slot| matches!(notice, Notice::BotDisabled { slot: of } if of == slot));
    Ok(Some(ExportedBot {
        slot: bot.slot.to_string(),
        name: bot.name,
        language: bot.language,
        source: bot.source,
        code_hash: bot.code_hash,
        params: bot.params,
        params_hash: bot.params_hash,
        seed_commitment: bot.seed_commitment,
        seed: revealed.then_some(bot.seed),
        attached_seq: attached.0,
        ended,
        disabled,
    }))
}

/// A bot was replaced while the export read the channel.
struct Moved;

#[cfg(test)]
pub(crate) mod tests;
