//! The channel aggregate: its slots, who holds which seat, who administers it, and every
//! operation that changes it.
//!
//! Operations check the caller's rights, change the aggregate in memory and queue the system
//! messages that record the change; storage then persists the new state and the queued messages
//! in one transaction, or nothing at all.

use crate::Principal;
use crate::chain::{ChainHash, Nonce};
use crate::error::DomainError;
use crate::ids::{ChannelId, PrincipalId, Seq, SlotLabel, Timestamp};
use crate::limits::MAX_SLOTS_PER_CHANNEL;
use crate::message::{Body, Draft, Message, MessageKind};
use crate::names::check_channel_name;
use crate::notice::Notice;
use crate::roster::Roster;
use crate::secret::{self, Redeemable, SecretHash, SecretSource};

/// What occupies a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    /// Reserved for a referee bot.
    Bot,
    /// A player seat, filled by redeeming its invite code.
    Invite,
    /// A read-only seat that sees public messages.
    Spectator,
}

impl SlotKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::Bot => "bot",
            SlotKind::Invite => "invite",
            SlotKind::Spectator => "spectator",
        }
    }

    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "bot" => Some(SlotKind::Bot),
            "invite" => Some(SlotKind::Invite),
            "spectator" => Some(SlotKind::Spectator),
            _ => None,
        }
    }

    /// Whether a person can sit here (bots' slots are filled by bots).
    pub fn is_seat(self) -> bool {
        !matches!(self, SlotKind::Bot)
    }
}

/// One entry of `slots` in a create request, such as `invite:alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    pub kind: SlotKind,
    pub label: SlotLabel,
}

impl SlotSpec {
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        let (kind, label) = raw.split_once(':').ok_or_else(|| {
            DomainError::invalid(
                "slots",
                format!("{raw:?} should look like \"invite:alice\", \"bot:referee\" or \"spectator:audience\""),
            )
        })?;
        let kind = match kind {
            "invite" => SlotKind::Invite,
            "bot" => SlotKind::Bot,
            "spectator" => SlotKind::Spectator,
            other => {
                return Err(DomainError::invalid(
                    "slots",
                    format!("unknown slot kind {other:?}; use invite, bot or spectator"),
                ));
            }
        };
        Ok(Self {
            kind,
            label: SlotLabel::parse(label)?,
        })
    }
}

/// A validated request to create a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub name: String,
    pub slots: Vec<SlotSpec>,
    /// Whether private messages to a bot become readable by all once its run ends. On by
    /// default: a referee's channel exists to be checked, and a finished game can then be
    /// audited in full by anyone, not only by the player who sent each move.
    pub reveal_private: bool,
    /// Whether the channel is in the public lobby, where anyone may take an open seat.
    pub listing: Option<Listing>,
}

/// How a channel is in the public lobby: its open invite seats are anyone's to take, without an
/// invite code, until the channel fills or closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Its creator listed it.
    Listed,
    /// A quick-match table: made for whoever asks to play its bot next.
    QuickMatch,
}

impl Listing {
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Listed => "listed",
            Listing::QuickMatch => "quick_match",
        }
    }

    /// The listing `as_str` wrote.
    pub fn parse(stored: &str) -> Option<Self> {
        [Listing::Listed, Listing::QuickMatch]
            .into_iter()
            .find(|listing| listing.as_str() == stored)
    }
}

impl ChannelSpec {
    pub fn new(name: &str, slots: &[String]) -> Result<Self, DomainError> {
        let name = check_channel_name(name)?;
        if slots.len() > MAX_SLOTS_PER_CHANNEL {
            return Err(DomainError::LimitExceeded {
                what: "slots per channel",
                limit: MAX_SLOTS_PER_CHANNEL,
            });
        }
        let slots = slots
            .iter()
            .map(|raw| SlotSpec::parse(raw))
            .collect::<Result<Vec<_>, _>>()?;
        if !slots.iter().any(|slot| slot.kind == SlotKind::Invite) {
            return Err(DomainError::invalid(
                "slots",
                "a channel needs at least one invite slot, e.g. [\"invite:alice\", \"invite:bob\"]",
            ));
        }
        if let Some(slot) = slots
            .iter()
            .find(|slot| slot.kind != SlotKind::Bot && slot.label.as_str() == bots::BOT_ALIAS)
        {
            return Err(DomainError::invalid(
                "slots",
                format!(
                    "the label \"{}\" is reserved for bot slots (`to: \"bot\"` means the channel's bot); rename {}:{}",
                    bots::BOT_ALIAS,
                    slot.kind.as_str(),
                    slot.label
                ),
            ));
        }
        for (index, slot) in slots.iter().enumerate() {
            if slots[..index]
                .iter()
                .any(|earlier| earlier.label == slot.label)
            {
                return Err(DomainError::invalid(
                    "slots",
                    format!("slot label {:?} appears twice", slot.label.as_str()),
                ));
            }
        }
        Ok(Self {
            name,
            slots,
            reveal_private: true,
            listing: None,
        })
    }

    /// Refuses more than `max` bot slots: bots' output adds up per channel, so the operator
    /// decides how many one channel may hold.
    pub fn check_bot_slots(&self, max: usize) -> Result<(), DomainError> {
        let bots = self
            .slots
            .iter()
            .filter(|slot| slot.kind == SlotKind::Bot)
            .count();
        if bots > max {
            return Err(DomainError::LimitExceeded {
                what: "bot slots per channel (the operator sets this with --max-bot-slots)",
                limit: max,
            });
        }
        Ok(())
    }
}

/// A person in a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub holder: PrincipalId,
    pub holder_name: String,
    pub rejoin_hash: SecretHash,
    pub joined_at: Timestamp,
    /// The channel's last seq when this holder took the seat with an invite. Private messages
    /// up to it were for earlier holders of the slot and stay theirs; a rejoin token moves the
    /// seat with this value, since it is the same holder's history.
    pub since: Seq,
}

/// One slot of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub label: SlotLabel,
    pub kind: SlotKind,
    pub admin: bool,
    pub seat: Option<Seat>,
    /// The hash of the one invite code that can fill this slot now, if any.
    pub invite_hash: Option<SecretHash>,
    /// The bot attached to a bot slot: what everyone may know of it.
    pub bot: Option<BotCard>,
}

impl Slot {
    pub fn held_by(&self, who: &PrincipalId) -> bool {
        self.seat.as_ref().is_some_and(|seat| &seat.holder == who)
    }
}

/// A channel and everything about it except its message history.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub id: ChannelId,
    pub name: String,
    /// The creator, who stays an admin whether or not they hold a seat.
    pub owner: PrincipalId,
    pub created_at: Timestamp,
    pub closed: bool,
    /// The newest message's seq; the next message gets `last_seq.next()`.
    pub last_seq: Seq,
    /// The newest message's chain hash ([`ChainHash::genesis`] before the first).
    pub head: ChainHash,
    /// From which seq bot events saw a context folded from the transcript: 0, except for
    /// channels created before that was so, which replay checks from here on.
    pub faithful_from: Seq,
    /// Whether private messages to a bot become readable by all once the bot's run ends.
    pub reveal_private: bool,
    /// Whether (and how) the channel is in the public lobby.
    pub listing: Option<Listing>,
    pub slots: Vec<Slot>,
    /// Messages produced by operations since load, not yet stored.
    new_messages: Vec<Message>,
}

/// The result of creating a channel.
#[derive(Debug)]
pub struct Created {
    pub channel: Channel,
    /// One fresh invite code per open seat, shown once.
    pub invites: Vec<(SlotLabel, String)>,
    /// The creator's own seat, unless they asked not to join.
    pub joined: Option<Joined>,
}

/// A seat that was just taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    pub slot: SlotLabel,
    /// The secret that moves this seat to whoever presents it. Shown to the holder only.
    pub rejoin_token: String,
}

/// The operations only an admin may perform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    Rename {
        name: String,
    },
    SetAdmin {
        slot: SlotLabel,
        admin: bool,
    },
    /// Vacates the slot (if held) and issues a fresh invite for it.
    YieldSlot {
        slot: SlotLabel,
    },
    /// Removes the holder; the slot stays empty until an invite is reissued.
    Kick {
        slot: SlotLabel,
    },
    /// Replaces the invite code of an empty slot; the old code stops working.
    ReissueInvite {
        slot: SlotLabel,
    },
    /// Makes the channel read-only for good.
    Close,
}

impl Channel {
    /// Builds a new channel from a validated spec. Every open seat gets an invite code; the
    /// creator takes the first invite slot unless `join` is false.
    pub fn create(
        id: ChannelId,
        spec: ChannelSpec,
        creator: &Principal,
        join: bool,
        now: Timestamp,
        secrets: &mut impl SecretSource,
    ) -> Created {
        let mut channel = Channel {
            id,
            name: spec.name,
            owner: creator.id.clone(),
            created_at: now,
            closed: false,
            last_seq: Seq::ZERO,
            head: ChainHash::genesis(),
            faithful_from: Seq::ZERO,
            reveal_private: spec.reveal_private,
            listing: spec.listing,
            slots: spec
                .slots
                .into_iter()
                .map(|spec| Slot {
                    bot: None,
                    label: spec.label,
                    kind: spec.kind,
                    admin: false,
                    seat: None,
                    invite_hash: None,
                })
                .collect(),
            new_messages: Vec::new(),
        };
        let slot_list: Vec<String> = channel
            .slots
            .iter()
            .map(|slot| format!("{}:{}", slot.kind.as_str(), slot.label))
            .collect();
        channel.record(
            now,
            Notice::Created {
                name: channel.name.clone(),
                by: creator.display_name.clone(),
                slots: slot_list,
                reveal_private: Some(channel.reveal_private),
            },
        );

        let mut joined = None;
        if join {
            let first_invite = channel
                .slots
                .iter()
                .position(|slot| slot.kind == SlotKind::Invite)
                .expect("ChannelSpec::new guarantees an invite slot");
            let token = channel.seat(first_invite, creator, now, secrets);
            channel.slots[first_invite].admin = true;
            joined = Some(Joined {
                slot: channel.slots[first_invite].label.clone(),
                rejoin_token: token,
            });
        }
        let mut invites = Vec::new();
        for slot in channel
            .slots
            .iter_mut()
            .filter(|slot| slot.kind.is_seat() && slot.seat.is_none())
        {
            let code = secret::new_invite_code(secrets);
            slot.invite_hash = Some(SecretHash::of(&code));
            invites.push((slot.label.clone(), code));
        }
        Created {
            channel,
            invites,
            joined,
        }
    }

    /// Rebuilds a channel from storage.
    pub fn from_stored(
        id: ChannelId,
        name: String,
        owner: PrincipalId,
        created_at: Timestamp,
        closed: bool,
        last_seq: Seq,
        slots: Vec<Slot>,
    ) -> Self {
        Self {
            id,
            name,
            owner,
            created_at,
            closed,
            last_seq,
            head: ChainHash::genesis(),
            slots,
            faithful_from: Seq::ZERO,
            reveal_private: false,
            listing: None,
            new_messages: Vec::new(),
        }
    }

    /// Sets what storage keeps of the transcript: the head's hash and the settings (see the
    /// fields).
    pub fn with_transcript(
        mut self,
        head: ChainHash,
        faithful_from: Seq,
        reveal_private: bool,
    ) -> Self {
        self.head = head;
        self.faithful_from = faithful_from;
        self.reveal_private = reveal_private;
        self
    }

    /// Sets how storage keeps the channel listed in the lobby.
    pub fn with_listing(mut self, listing: Option<Listing>) -> Self {
        self.listing = listing;
        self
    }

    /// Puts a channel being set up in the lobby (or not). A quick-match table keeps no admin
    /// seat: whoever opened it is a player like the others.
    pub fn list(&mut self, listing: Option<Listing>) {
        self.listing = listing;
        if listing == Some(Listing::QuickMatch) {
            for slot in &mut self.slots {
                slot.admin = false;
            }
        }
    }

    /// Whether the lobby shows this channel: listed, open, with a free invite seat.
    pub fn in_lobby(&self) -> bool {
        self.listing.is_some() && !self.closed && self.open_invite_seats().next().is_some()
    }

    /// The invite seats nobody holds.
    pub fn open_invite_seats(&self) -> impl Iterator<Item = &Slot> {
        self.slots
            .iter()
            .filter(|slot| slot.kind == SlotKind::Invite && slot.seat.is_none())
    }

    /// Takes an open invite seat of a listed channel without a code: `requested`, or the first
    /// open one. Someone who already holds a seat here takes no second one from the lobby.
    pub fn take_open_seat(
        &mut self,
        who: &Principal,
        requested: Option<&SlotLabel>,
        now: Timestamp,
        secrets: &mut impl SecretSource,
    ) -> Result<Joined, DomainError> {
        if self.listing.is_none() {
            return Err(DomainError::invalid(
                "channel_id",
                "this channel is not in the lobby; join it with an invite code",
            ));
        }
        self.ensure_open()?;
        if self.seats_of(&who.id).next().is_some() {
            return Err(DomainError::invalid(
                "channel_id",
                "you already hold a seat here; sync from it",
            ));
        }
        let index = match requested {
            Some(label) => {
                let index = self.slot_index(label)?;
                let slot = &self.slots[index];
                if slot.kind != SlotKind::Invite || slot.seat.is_some() {
                    return Err(DomainError::invalid(
                        "slot",
                        format!("{label} is not an open player seat; leave slot out to take any"),
                    ));
                }
                index
            }
            None => self
                .slots
                .iter()
                .position(|slot| slot.kind == SlotKind::Invite && slot.seat.is_none())
                .ok_or_else(|| {
                    DomainError::invalid(
                        "channel_id",
                        "every seat here is taken; pick another game",
                    )
                })?,
        };
        let token = self.seat(index, who, now, secrets);
        Ok(Joined {
            slot: self.slots[index].label.clone(),
            rejoin_token: token,
        })
    }

    /// Hands the messages produced since load over to storage.
    pub fn take_new_messages(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.new_messages)
    }

    pub fn slot(&self, label: &SlotLabel) -> Result<&Slot, DomainError> {
        self.slots
            .iter()
            .find(|slot| &slot.label == label)
            .ok_or_else(|| DomainError::SlotNotFound {
                slot: label.as_str().to_owned(),
            })
    }

    pub(crate) fn slot_index(&self, label: &SlotLabel) -> Result<usize, DomainError> {
        self.slots
            .iter()
            .position(|slot| &slot.label == label)
            .ok_or_else(|| DomainError::SlotNotFound {
                slot: label.as_str().to_owned(),
            })
    }

    /// The seats `who` holds here, in slot order.
    pub fn seats_of<'a>(&'a self, who: &PrincipalId) -> impl Iterator<Item = &'a Slot> + use<'a> {
        let who = who.clone();
        self.slots.iter().filter(move |slot| slot.held_by(&who))
    }

    /// How the holder of `slot` is shown beside the others: the display name, or, when another
    /// seat's holder has the same name (ignoring case), the name followed by the seat, such as
    /// `alice (invite:p2)`, so that two people called alice are told apart. `None` for an
    /// empty slot.
    pub fn holder_display(&self, slot: &Slot) -> Option<String> {
        let name = &slot.seat.as_ref()?.holder_name;
        let namesakes = self
            .slots
            .iter()
            .filter_map(|other| other.seat.as_ref())
            .filter(|seat| seat.holder_name.to_lowercase() == name.to_lowercase())
            .count();
        Some(if namesakes > 1 {
            format!("{name} ({}:{})", slot.kind.as_str(), slot.label)
        } else {
            name.clone()
        })
    }

    /// The roster this channel had when it was created, before anyone sat down: where a fold
    /// of its notices starts ([`Roster`]).
    pub fn empty_roster(&self) -> Roster {
        Roster::new(
            self.slots
                .iter()
                .map(|slot| (slot.label.clone(), slot.kind)),
        )
    }

    /// Whether `who` administers the channel: its owner or an admin seat's holder. A
    /// quick-match table has no admin: whoever opened it is one of the players, like the others.
    pub fn is_admin(&self, who: &PrincipalId) -> bool {
        self.listing != Some(Listing::QuickMatch)
            && (&self.owner == who || self.seats_of(who).any(|slot| slot.admin))
    }

    /// Whether `who` may see that this channel exists and how it is set up.
    pub fn is_visible_to(&self, who: &PrincipalId) -> bool {
        &self.owner == who || self.seats_of(who).next().is_some()
    }

    /// The seat through which `who` acts: the one named, or the only one they hold.
    pub fn acting_seat(
        &self,
        who: &PrincipalId,
        requested: Option<&SlotLabel>,
    ) -> Result<&Slot, DomainError> {
        match requested {
            Some(label) => {
                let slot = self.slot(label)?;
                if slot.held_by(who) {
                    Ok(slot)
                } else {
                    Err(DomainError::NotMember)
                }
            }
            None => {
                let mut held = self.seats_of(who);
                match (held.next(), held.next()) {
                    (None, _) => Err(DomainError::NotMember),
                    (Some(only), None) => Ok(only),
                    (Some(_), Some(_)) => Err(DomainError::SlotRequired {
                        held: self
                            .seats_of(who)
                            .map(|slot| slot.label.to_string())
                            .collect(),
                    }),
                }
            }
        }
    }

    /// Redeems an invite code (takes its seat) or a rejoin token (moves its seat to `who`).
    /// `code` is the raw secret the caller presented.
    pub fn redeem(
        &mut self,
        code: &str,
        who: &Principal,
        now: Timestamp,
        secrets: &mut impl SecretSource,
    ) -> Result<Joined, DomainError> {
        match secret::classify(code).ok_or(DomainError::InviteInvalid)? {
            Redeemable::Invite(hash) => {
                let index = self
                    .slots
                    .iter()
                    .position(|slot| slot.invite_hash.as_ref() == Some(&hash))
                    .ok_or(DomainError::InviteInvalid)?;
                self.ensure_open()?;
                let token = self.seat(index, who, now, secrets);
                Ok(Joined {
                    slot: self.slots[index].label.clone(),
                    rejoin_token: token,
                })
            }
            Redeemable::Rejoin(hash) => {
                let index = self
                    .slots
                    .iter()
                    .position(|slot| {
                        slot.seat
                            .as_ref()
                            .is_some_and(|seat| seat.rejoin_hash == hash)
                    })
                    .ok_or(DomainError::InviteInvalid)?;
                let label = self.slots[index].label.clone();
                let moves = !self.slots[index].held_by(&who.id);
                if moves {
                    // Moving a seat is a change, and a closed channel takes none.
                    if self.closed {
                        return Err(DomainError::ChannelClosed);
                    }
                    let seat = self.slots[index]
                        .seat
                        .as_mut()
                        .expect("position() matched a held seat");
                    seat.holder = who.id.clone();
                    seat.holder_name = who.display_name.clone();
                    seat.joined_at = now;
                    self.record(
                        now,
                        Notice::Rejoined {
                            slot: label.clone(),
                            name: who.display_name.clone(),
                        },
                    );
                }
                Ok(Joined {
                    slot: label,
                    rejoin_token: code.trim().to_owned(),
                })
            }
        }
    }

    /// Accepts a participant's message from the seat they act through.
    pub fn post(
        &mut self,
        who: &PrincipalId,
        slot: Option<&SlotLabel>,
        draft: Draft,
        now: Timestamp,
    ) -> Result<Message, DomainError> {
        let sender = self.acting_seat(who, slot)?;
        if sender.kind == SlotKind::Spectator {
            return Err(DomainError::ReadOnlySeat);
        }
        self.ensure_open()?;
        let sender_label = sender.label.clone();
        let sender_name = sender
            .seat
            .as_ref()
            .map(|seat| seat.holder_name.clone())
            .unwrap_or_default();
        let mut draft = draft;
        if let Some(to) = &draft.to {
            let to = self.recipient(to)?;
            if to == sender_label {
                return Err(DomainError::invalid(
                    "to",
                    "a private message needs another slot as recipient",
                ));
            }
            draft.to = Some(to);
        }
        let nonce = draft.to.is_some().then_some(draft.nonce);
        Ok(self.append(
            MessageKind::User,
            Some(sender_label),
            sender_name,
            draft.body,
            draft.to,
            nonce,
            now,
        ))
    }

    /// Gives up the caller's seat. The slot stays empty until an admin reissues its invite.
    pub fn leave(
        &mut self,
        who: &Principal,
        slot: Option<&SlotLabel>,
        now: Timestamp,
    ) -> Result<SlotLabel, DomainError> {
        let label = self.acting_seat(&who.id, slot)?.label.clone();
        self.ensure_open()?;
        let index = self.slot_index(&label)?;
        self.slots[index].seat = None;
        self.slots[index].admin = false;
        self.record(
            now,
            Notice::Left {
                slot: label.clone(),
                name: who.display_name.clone(),
            },
        );
        Ok(label)
    }

    /// Applies an admin operation. Returns a fresh invite code when the operation made one.
    pub fn administer(
        &mut self,
        who: &Principal,
        op: AdminOp,
        now: Timestamp,
        secrets: &mut impl SecretSource,
    ) -> Result<Option<(SlotLabel, String)>, DomainError> {
        if !self.is_admin(&who.id) {
            return Err(DomainError::NotAdmin);
        }
        if self.closed {
            return if op == AdminOp::Close {
                Ok(None)
            } else {
                Err(DomainError::ChannelClosed)
            };
        }
        let by = who.display_name.clone();
        match op {
            AdminOp::Rename { name } => {
                let name = check_channel_name(&name)?;
                self.name.clone_from(&name);
                self.record(now, Notice::Renamed { name, by });
                Ok(None)
            }
            AdminOp::SetAdmin { slot, admin } => {
                let index = self.slot_index(&slot)?;
                if !self.slots[index].kind.is_seat() {
                    return Err(DomainError::invalid("slot", "bot slots cannot be admins"));
                }
                self.slots[index].admin = admin;
                self.record(now, Notice::AdminChanged { slot, admin, by });
                Ok(None)
            }
            AdminOp::YieldSlot { slot } => {
                let index = self.seat_slot_index(&slot)?;
                self.ensure_may_unseat(who, index)?;
                let former = self.slots[index].seat.take().map(|seat| seat.holder_name);
                self.slots[index].admin = false;
                let code = secret::new_invite_code(secrets);
                self.slots[index].invite_hash = Some(SecretHash::of(&code));
                self.record(
                    now,
                    Notice::SlotYielded {
                        slot: slot.clone(),
                        name: former,
                        by,
                    },
                );
                Ok(Some((slot, code)))
            }
            AdminOp::Kick { slot } => {
                let index = self.seat_slot_index(&slot)?;
                if self.slots[index].seat.is_none() {
                    return Err(DomainError::invalid(
                        "slot",
                        format!("seat {slot} is empty"),
                    ));
                }
                self.ensure_may_unseat(who, index)?;
                let former = self.slots[index].seat.take().map(|seat| seat.holder_name);
                self.slots[index].admin = false;
                self.record(
                    now,
                    Notice::Kicked {
                        slot,
                        name: former,
                        by,
                    },
                );
                Ok(None)
            }
            AdminOp::ReissueInvite { slot } => {
                let index = self.seat_slot_index(&slot)?;
                if self.slots[index].seat.is_some() {
                    return Err(DomainError::invalid(
                        "slot",
                        format!("seat {slot} is taken; use yield_slot to hand it to someone else"),
                    ));
                }
                let code = secret::new_invite_code(secrets);
                self.slots[index].invite_hash = Some(SecretHash::of(&code));
                self.record(
                    now,
                    Notice::InviteReissued {
                        slot: slot.clone(),
                        by,
                    },
                );
                Ok(Some((slot, code)))
            }
            AdminOp::Close => {
                self.close(who, &[], now)?;
                Ok(None)
            }
        }
    }

    /// Makes the channel read-only for good (admins only). The close notice is followed by the
    /// reveal of each bot's seed in `seeds`, and by nothing else ever: every operation that
    /// writes refuses a closed channel. Closing a closed channel changes nothing.
    pub fn close(
        &mut self,
        who: &Principal,
        seeds: &[(SlotLabel, String)],
        now: Timestamp,
    ) -> Result<(), DomainError> {
        if !self.is_admin(&who.id) {
            return Err(DomainError::NotAdmin);
        }
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        for slot in &mut self.slots {
            slot.invite_hash = None;
        }
        self.record(
            now,
            Notice::Closed {
                by: who.display_name.clone(),
            },
        );
        for (slot, seed) in seeds {
            self.record_seed_reveal(slot, seed, now);
        }
        Ok(())
    }

    fn seat_slot_index(&self, label: &SlotLabel) -> Result<usize, DomainError> {
        let index = self.slot_index(label)?;
        if self.slots[index].kind.is_seat() {
            Ok(index)
        } else {
            Err(DomainError::invalid(
                "slot",
                format!("{label} is a bot slot, not a seat"),
            ))
        }
    }

    /// Only the owner may unseat the owner.
    fn ensure_may_unseat(&self, who: &Principal, index: usize) -> Result<(), DomainError> {
        let target_is_owner = self.slots[index].held_by(&self.owner);
        if target_is_owner && who.id != self.owner {
            Err(DomainError::NotAdmin)
        } else {
            Ok(())
        }
    }

    pub(crate) fn ensure_open(&self) -> Result<(), DomainError> {
        if self.closed {
            Err(DomainError::ChannelClosed)
        } else {
            Ok(())
        }
    }

    /// Puts `who` in the slot at `index` and returns the seat's new rejoin token.
    fn seat(
        &mut self,
        index: usize,
        who: &Principal,
        now: Timestamp,
        secrets: &mut impl SecretSource,
    ) -> String {
        let token = secret::new_rejoin_token(secrets);
        let since = self.last_seq;
        let slot = &mut self.slots[index];
        slot.invite_hash = None;
        slot.seat = Some(Seat {
            holder: who.id.clone(),
            holder_name: who.display_name.clone(),
            rejoin_hash: SecretHash::of(&token),
            joined_at: now,
            since,
        });
        let label = slot.label.clone();
        self.record(
            now,
            Notice::Joined {
                slot: label,
                name: who.display_name.clone(),
            },
        );
        token
    }

    /// Queues a system message recording a change.
    pub(crate) fn record(&mut self, now: Timestamp, notice: Notice) {
        let body = notice.body(now);
        self.append(
            MessageKind::System,
            None,
            "system".into(),
            body,
            None,
            None,
            now,
        );
    }

    /// Queues the channel's next message, linked into the hash chain: the one place a message
    /// gets its seq and its hash. A private message must come with a nonce.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn append(
        &mut self,
        kind: MessageKind,
        sender: Option<SlotLabel>,
        sender_name: String,
        body: Body,
        to: Option<SlotLabel>,
        nonce: Option<Nonce>,
        at: Timestamp,
    ) -> Message {
        debug_assert_eq!(
            to.is_some(),
            nonce.is_some(),
            "private messages, and only they, carry a nonce"
        );
        let mut message = Message {
            seq: self.last_seq.next(),
            kind,
            sender,
            sender_name,
            body,
            to,
            nonce: nonce.map(|nonce| nonce.hex()),
            at,
            hash: ChainHash::genesis(),
        };
        message.hash = self.head.link(&self.id, &message);
        self.last_seq = message.seq;
        self.head = message.hash.clone();
        self.new_messages.push(message.clone());
        message
    }
}

mod bots;

pub use bots::{BOT_ALIAS, BotCard, BotFailure};

#[cfg(test)]
mod tests;
