//! Bots in a channel, as the rules see them: which bot slot holds which bot (its public card:
//! name, code hash, params hash, seed commitment), bots' own posts, and the notices that make a
//! bot's life visible to everyone (attached, failed, disabled, seed revealed). The bot's source,
//! secret seed and state are the storage's and the runtime's business, not the aggregate's.

use serde_json::json;

use super::{Channel, SlotKind};
use crate::PrincipalId;
use crate::bot_output::{CapHit, OutputCap};
use crate::error::DomainError;
use crate::ids::{Seq, SlotLabel, Timestamp};
use crate::message::{Body, Message, MessageKind};
use crate::names::quote;

/// What participants may write as a recipient to mean "the channel's bot".
pub const BOT_ALIAS: &str = "bot";

/// Why a bot's event failed, as the channel records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotFailure {
    /// The class of failure, in snake_case (`threw`, `cpu_budget`…).
    pub kind: String,
    /// What happened; may contain the bot's own text, so it is untrusted.
    pub message: String,
    /// The line of the bot's source the error points at, when known.
    pub line: Option<u32>,
    /// The message whose event failed.
    pub event_seq: Seq,
}

/// What everyone may know about an attached bot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotCard {
    pub name: String,
    /// `javascript` or `python`.
    pub language: String,
    /// `sha256:` + hex of the exact source bytes.
    pub code_hash: String,
    /// `sha256:` + hex of the canonical JSON of the parameters.
    pub params_hash: String,
    /// The commitment to the bot's secret seed, revealed when the bot is detached.
    pub seed_commitment: String,
    /// Set after repeated failures; an admin re-attaches the bot to enable it again.
    pub disabled: bool,
}

impl Channel {
    /// The slot a bot goes to: `slot` if given (it must be a bot slot), else the first bot slot.
    pub fn bot_slot_for(&self, slot: Option<&SlotLabel>) -> Result<SlotLabel, DomainError> {
        match slot {
            Some(label) => {
                let found = self.slot(label)?;
                if found.kind != SlotKind::Bot {
                    return Err(DomainError::invalid(
                        "slot",
                        format!(
                            "{label} is not a bot slot; bots go in slots declared as bot:<name>"
                        ),
                    ));
                }
                Ok(label.clone())
            }
            None => self
                .slots
                .iter()
                .find(|slot| slot.kind == SlotKind::Bot)
                .map(|slot| slot.label.clone())
                .ok_or_else(|| {
                    DomainError::invalid(
                        "slot",
                        "this channel has no bot slot; create it with one such as \"bot:referee\"",
                    )
                }),
        }
    }

    /// Attaches a bot (replacing any bot in that slot). Admins only. Returns the seq of the
    /// notice, which is the bot's first event (`on_init`).
    pub fn attach_bot(
        &mut self,
        who: &PrincipalId,
        slot: &SlotLabel,
        card: BotCard,
        now: Timestamp,
    ) -> Result<Seq, DomainError> {
        if !self.is_admin(who) {
            return Err(DomainError::NotAdmin);
        }
        self.ensure_open()?;
        let index = self.slot_index(slot)?;
        if self.slots[index].kind != SlotKind::Bot {
            return Err(DomainError::invalid(
                "slot",
                format!("{slot} is not a bot slot"),
            ));
        }
        self.record(
            now,
            format!(
                "Bot {} is now in slot {slot} ({} code {}). Read its code with get_bot_code before playing.",
                card.name, card.language, card.code_hash
            ),
            json!({
                "event": "bot_attached",
                "slot": slot.as_str(),
                "name": card.name,
                "language": card.language,
                "code_hash": card.code_hash,
                "params_hash": card.params_hash,
                "seed_commitment": card.seed_commitment,
            }),
        );
        self.slots[index].bot = Some(card);
        Ok(self.last_seq)
    }

    /// A bot's post, from its own slot.
    pub fn bot_post(
        &mut self,
        slot: &SlotLabel,
        body: Body,
        to: Option<SlotLabel>,
        now: Timestamp,
    ) -> Result<Message, DomainError> {
        self.ensure_open()?;
        let index = self.slot_index(slot)?;
        let name = match &self.slots[index].bot {
            Some(card) if self.slots[index].kind == SlotKind::Bot => card.name.clone(),
            _ => {
                return Err(DomainError::invalid(
                    "slot",
                    format!("no bot in slot {slot}"),
                ));
            }
        };
        if let Some(to) = &to {
            self.slot(to)?;
        }
        self.last_seq = self.last_seq.next();
        let message = Message {
            seq: self.last_seq,
            kind: MessageKind::Bot,
            sender: Some(slot.clone()),
            sender_name: name,
            body,
            to,
            at: now,
        };
        self.new_messages.push(message.clone());
        Ok(message)
    }

    /// Records that a bot failed on an event; after `disable` it gets no more events.
    ///
    /// The failure's message is the bot's own text (what it threw): the notice quotes it on one
    /// line ([`quote`]) and `data.message` keeps it exactly.
    pub fn bot_failed(
        &mut self,
        slot: &SlotLabel,
        failure: &BotFailure,
        disable: bool,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        // A bot event that was running when the channel closed has nothing more to say.
        self.ensure_open()?;
        let index = self.slot_index(slot)?;
        let line = failure
            .line
            .map(|line| format!(" (line {line})"))
            .unwrap_or_default();
        self.record(
            now,
            format!(
                "BOT_ERROR in {slot}: bot {}: {}{line}",
                failure.kind,
                quote(&failure.message)
            ),
            json!({
                "event": "bot_error",
                "code": "BOT_ERROR",
                "slot": slot.as_str(),
                "kind": failure.kind,
                "message": failure.message,
                "line": failure.line,
                "seq": failure.event_seq.0,
            }),
        );
        if disable {
            if let Some(card) = self.slots[index].bot.as_mut() {
                card.disabled = true;
            }
            self.record(
                now,
                format!(
                    "The bot in {slot} failed repeatedly and is disabled; an admin can attach it again with attach_bot."
                ),
                json!({"event": "bot_disabled", "slot": slot.as_str()}),
            );
        }
        Ok(())
    }

    /// Records that the reply of the bot in `slot` to message `trigger` was dropped because it
    /// would have gone past `hit`'s cap: nothing of it was stored. Says which cap and what to do.
    pub fn bot_output_capped(
        &mut self,
        slot: &SlotLabel,
        trigger: Seq,
        hit: &CapHit,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        self.ensure_open()?;
        self.slot_index(slot)?;
        let (messages, bytes) = (hit.limit.messages, hit.limit.bytes);
        let (scope, recovery) = match hit.cap {
            OutputCap::PerTrigger => (
                "in reply to one message, all bots of this channel together".to_owned(),
                "The next message starts a new turn; if this bot always writes this much, an admin can attach one that writes less.".to_owned(),
            ),
            OutputCap::PerChannelMinute => (
                "per minute, all bots of this channel together".to_owned(),
                format!("Bot replies are dropped until {}; wait, then post again.", until_text(hit, now)),
            ),
            OutputCap::PerOwnerMinute => (
                "per minute, all bots of the channels of this channel's owner together".to_owned(),
                format!("Bot replies are dropped until {}; wait, or close channels with busy bots.", until_text(hit, now)),
            ),
        };
        self.record(
            now,
            format!(
                "BOT_OUTPUT_CAPPED in {slot}: its reply to message {} was dropped (nothing of it is stored): bots may write at most {messages} messages and {bytes} bytes {scope}. {recovery}",
                trigger.0
            ),
            json!({
                "event": "bot_output_capped",
                "code": "BOT_OUTPUT_CAPPED",
                "slot": slot.as_str(),
                "seq": trigger.0,
                "cap": hit.cap.as_str(),
                "limit_messages": messages,
                "limit_bytes": bytes,
                "until_ms": hit.until.map(|until| until.0),
            }),
        );
        Ok(())
    }

    /// Publishes the seed of the bot being replaced in `slot` (and so ends its secrecy). Closing
    /// reveals seeds itself ([`Channel::close`]).
    pub fn reveal_bot_seed(
        &mut self,
        slot: &SlotLabel,
        seed_hex: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        self.ensure_open()?;
        self.record_seed_reveal(slot, seed_hex, now);
        Ok(())
    }

    pub(super) fn record_seed_reveal(&mut self, slot: &SlotLabel, seed_hex: &str, now: Timestamp) {
        self.record(
            now,
            format!("The seed of the bot in {slot} is revealed, so anyone can replay its run."),
            json!({"event": "bot_seed_revealed", "slot": slot.as_str(), "seed": seed_hex}),
        );
    }

    /// The slot a participant means by `to`: the slot itself, or the channel's only bot when
    /// they write [`BOT_ALIAS`] and no slot has that label.
    pub fn recipient(&self, to: &SlotLabel) -> Result<SlotLabel, DomainError> {
        if self.slot(to).is_ok() || to.as_str() != BOT_ALIAS {
            return self.slot(to).map(|slot| slot.label.clone());
        }
        let mut bots = self.slots.iter().filter(|slot| slot.kind == SlotKind::Bot);
        match (bots.next(), bots.next()) {
            (Some(only), None) => Ok(only.label.clone()),
            (None, _) => Err(DomainError::invalid("to", "this channel has no bot")),
            (Some(_), Some(_)) => Err(DomainError::invalid(
                "to",
                "this channel has several bots; name the bot's slot",
            )),
        }
    }
}

/// How long until a per-minute cap lets output through, in words.
fn until_text(hit: &CapHit, now: Timestamp) -> String {
    match hit.until {
        Some(until) => {
            let seconds = (until.0 - now.0).max(0).unsigned_abs().div_ceil(1000);
            format!("{seconds} s from now")
        }
        None => "the next message".to_owned(),
    }
}
