//! Bots in a channel, as the rules see them: which bot slot holds which bot (its public card:
//! name, code hash, params hash, seed commitment), bots' own posts, and the notices that make a
//! bot's life visible to everyone (attached, failed, disabled, seed revealed). The bot's source,
//! secret seed and state are the storage's and the runtime's business, not the aggregate's.

use super::{Channel, SlotKind};
use crate::PrincipalId;
use crate::attestation::{Attestation, WitnessSignature};
use crate::bot_output::CapHit;
use crate::chain::Nonce;
use crate::error::DomainError;
use crate::ids::{Seq, SlotLabel, Timestamp};
use crate::message::{Body, Message, MessageKind};
use crate::notice::Notice;

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
    /// Set when the bot ended its own run (`ctx.end`): its seed is public, it gets no events.
    pub ended: bool,
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
            Notice::BotAttached {
                slot: slot.clone(),
                name: card.name.clone(),
                language: card.language.clone(),
                code_hash: card.code_hash.clone(),
                params_hash: card.params_hash.clone(),
                seed_commitment: card.seed_commitment.clone(),
            },
        );
        self.slots[index].bot = Some(card);
        Ok(self.last_seq)
    }

    /// A bot's post, from its own slot.
    /// A private post uses `nonce` ([`crate::chain`]).
    pub fn bot_post(
        &mut self,
        slot: &SlotLabel,
        body: Body,
        to: Option<SlotLabel>,
        nonce: Nonce,
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
        let nonce = to.is_some().then_some(nonce);
        Ok(self.append(
            MessageKind::Bot,
            Some(slot.clone()),
            name,
            body,
            to,
            nonce,
            now,
        ))
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
        self.record(
            now,
            Notice::BotError {
                slot: slot.clone(),
                kind: failure.kind.clone(),
                message: failure.message.clone(),
                line: failure.line,
                seq: failure.event_seq,
            },
        );
        if disable {
            if let Some(card) = self.slots[index].bot.as_mut() {
                card.disabled = true;
            }
            self.record(now, Notice::BotDisabled { slot: slot.clone() });
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
        self.record(now, Notice::output_capped(slot, trigger, hit));
        Ok(())
    }

    /// Records that the bot in `slot` ended its own run (game over) and publishes its seed at
    /// once, so the game can be checked as soon as it is over, not when the channel closes.
    pub fn end_bot_run(
        &mut self,
        slot: &SlotLabel,
        reason: Option<String>,
        seed_hex: &str,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        self.ensure_open()?;
        let index = self.slot_index(slot)?;
        match self.slots[index].bot.as_mut() {
            Some(card) if !card.ended => card.ended = true,
            _ => {
                return Err(DomainError::invalid(
                    "slot",
                    format!("no running bot in slot {slot}"),
                ));
            }
        }
        self.record(
            now,
            Notice::BotRunEnded {
                slot: slot.clone(),
                reason,
            },
        );
        self.record_seed_reveal(slot, seed_hex, now);
        Ok(())
    }

    /// Whether the bot in `slot` still runs: the channel is open and the bot neither disabled
    /// nor ended. Only a running bot's timers fire and its fetches are made.
    pub fn bot_is_running(&self, slot: &SlotLabel) -> bool {
        self.ensure_running_bot(slot).is_ok()
    }

    fn ensure_running_bot(&self, slot: &SlotLabel) -> Result<(), DomainError> {
        self.ensure_open()?;
        let index = self.slot_index(slot)?;
        match &self.slots[index].bot {
            Some(card) if !card.ended && !card.disabled => Ok(()),
            _ => Err(DomainError::invalid(
                "slot",
                format!("no running bot in slot {slot}"),
            )),
        }
    }

    /// Records that a timer of the bot in `slot` came due: the bot's `on_timer(tag)` event.
    /// Refused once the channel is closed or the bot no longer runs (disabled, run ended): a
    /// timer outlives neither.
    pub fn fire_timer(
        &mut self,
        slot: &SlotLabel,
        tag: String,
        set_by: Seq,
        due: Timestamp,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        self.ensure_running_bot(slot)?;
        self.record(
            now,
            Notice::TimerFired {
                slot: slot.clone(),
                tag,
                set_by,
                due,
            },
        );
        Ok(())
    }

    /// Records what the server saw when it fetched a URL the bot in `slot` asked for, with the
    /// server's signature: the bot's `on_fetch(result)` event. Refused, like a timer, once the
    /// channel is closed or the bot no longer runs.
    pub fn record_fetch(
        &mut self,
        slot: &SlotLabel,
        tag: String,
        requested_by: Seq,
        attestation: Attestation,
        witness: WitnessSignature,
        now: Timestamp,
    ) -> Result<(), DomainError> {
        self.ensure_running_bot(slot)?;
        self.record(
            now,
            Notice::FetchAttested {
                slot: slot.clone(),
                tag,
                requested_by,
                attestation: Box::new(attestation),
                witness,
            },
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
            Notice::BotSeedRevealed {
                slot: slot.clone(),
                seed: seed_hex.to_owned(),
            },
        );
    }

    /// Whether `message`, private, is readable by all in an export: a private message to a bot
    /// whose seed was revealed after it (its run ended, it was replaced, or the channel closed),
    /// in a channel with [`Channel::reveal_private`]. `reveals` are the seed reveals' slots and
    /// seqs. The rule next to [`Message::visible_to`], which decides everything else.
    pub fn revealed_after_run(&self, message: &Message, reveals: &[(SlotLabel, Seq)]) -> bool {
        self.reveal_private
            && message.to.as_ref().is_some_and(|to| {
                self.slot(to).is_ok_and(|slot| slot.kind == SlotKind::Bot)
                    && reveals
                        .iter()
                        .any(|(slot, seq)| slot == to && *seq > message.seq)
            })
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
