//! What the host hands a bot for one event ([`EventContext`], [`Event`]) and what it gets back
//! ([`Reaction`], with [`RunEnd`] when the bot ended its run, and the [`TimerRequest`]s and
//! [`FetchRequest`]s it made).

use std::fmt;

use domain::{
    Body, ChannelId, Message, MessageKind, Notice, Roster, Seq, SlotKind, SlotLabel, Timestamp,
};

/// Something that happened in the channel, delivered to the bot in channel order.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The bot was attached; calls `on_init()`.
    Init,
    /// A participant took a seat; calls `on_join(player)`.
    Join(Player),
    /// A participant left a seat; calls `on_leave(player)`.
    Leave(Player),
    /// A message the bot may see (bots see private messages too); calls `on_message(msg)`.
    /// The service does not deliver the bot's own posts back to it.
    Message(Message),
    /// A timer the bot set came due; calls `on_timer(tag)`. It is recorded as a `timer_fired`
    /// notice, which is the event, so a replay from the transcript delivers it at the same seq.
    Timer { tag: String },
    /// A fetch the bot asked for was made; calls `on_fetch(result)`. It is recorded as a
    /// `fetch_attested` notice, which is the event: the result is built from the notice alone
    /// ([`fetch_result`]), so a replay hands the bot the same object without fetching.
    Fetch(serde_json::Value),
}

/// What `on_fetch` receives for the `fetch_attested` notice at `seq`: the record's fields, with
/// `seq`, `tag`, `requested_by`, `ok` and the server's signature beside them.
pub fn fetch_result(
    seq: Seq,
    tag: &str,
    requested_by: Seq,
    attestation: &domain::attestation::Attestation,
    witness: &domain::attestation::WitnessSignature,
) -> serde_json::Value {
    let mut result = match serde_json::to_value(attestation) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    result.insert("seq".into(), seq.0.into());
    result.insert("tag".into(), tag.into());
    result.insert("requested_by".into(), requested_by.0.into());
    result.insert("ok".into(), attestation.ok().into());
    result.insert(
        "witness".into(),
        serde_json::to_value(witness).unwrap_or(serde_json::Value::Null),
    );
    serde_json::Value::Object(result)
}

impl Event {
    /// What a channel message is for the bot in `slot`, if anything: every `user` message, the
    /// seat notices, and the notices of its own attachment, of its own timers firing and of its
    /// own fetches; never bots' posts (two echo bots would talk forever), another bot's timers
    /// or fetches, nor other notices.
    /// Notices are read with the codec of [`domain::notice`], never from their text, so the
    /// server and an offline verifier give a bot the same events. A system message this server
    /// cannot decode is no event.
    pub fn for_bot(slot: &SlotLabel, message: &Message) -> Option<Event> {
        let player = |slot: &SlotLabel, name: Option<&String>| Player {
            slot: slot.clone(),
            name: name.cloned().unwrap_or_default(),
        };
        match message.kind {
            MessageKind::User => Some(Event::Message(message.clone())),
            MessageKind::Bot => None,
            MessageKind::System => match message.notice()?.ok()? {
                Notice::Joined { slot, name } | Notice::Rejoined { slot, name } => {
                    Some(Event::Join(player(&slot, Some(&name))))
                }
                Notice::Left { slot, name } => Some(Event::Leave(player(&slot, Some(&name)))),
                Notice::Kicked { slot, name, .. } | Notice::SlotYielded { slot, name, .. } => {
                    Some(Event::Leave(player(&slot, name.as_ref())))
                }
                Notice::BotAttached { slot: attached, .. } if &attached == slot => {
                    Some(Event::Init)
                }
                Notice::TimerFired {
                    slot: fired_for,
                    tag,
                    ..
                } if &fired_for == slot => Some(Event::Timer { tag }),
                Notice::FetchAttested {
                    slot: fetched_for,
                    tag,
                    requested_by,
                    attestation,
                    witness,
                } if &fetched_for == slot => Some(Event::Fetch(fetch_result(
                    message.seq,
                    &tag,
                    requested_by,
                    &attestation,
                    &witness,
                ))),
                _ => None,
            },
        }
    }

    /// The handler method this event calls on the bot object.
    pub fn handler_name(&self) -> &'static str {
        match self {
            Event::Init => "on_init",
            Event::Join(_) => "on_join",
            Event::Leave(_) => "on_leave",
            Event::Message(_) => "on_message",
            Event::Timer { .. } => "on_timer",
            Event::Fetch(_) => "on_fetch",
        }
    }

    /// The call this event makes, in the shape every runtime hands to bot code.
    pub fn call(&self) -> Call {
        let argument = match self {
            Event::Init => None,
            Event::Join(player) | Event::Leave(player) => {
                Some(serde_json::json!({"slot": player.slot.as_str(), "name": player.name}))
            }
            Event::Message(message) => Some(serde_json::json!({
                "seq": message.seq.0,
                "kind": message.kind.as_str(),
                "sender": message.sender.as_ref().map(SlotLabel::as_str),
                "sender_name": message.sender_name,
                "body": {
                    "text": message.body.text,
                    "data": message.body.data,
                },
                "private": message.to.is_some(),
                "to": message.to.as_ref().map(SlotLabel::as_str),
                "at": message.at.0,
            })),
            Event::Timer { tag } => Some(serde_json::Value::String(tag.clone())),
            Event::Fetch(result) => Some(result.clone()),
        };
        Call {
            handler: self.handler_name().to_owned(),
            argument,
        }
    }
}

/// The handlers a [`Call`] may name, as `'static` names for error messages.
pub const HANDLERS: [&str; 6] = [
    "on_init",
    "on_join",
    "on_leave",
    "on_message",
    "on_timer",
    "on_fetch",
];

/// The `'static` form of a handler name, if it is one of [`HANDLERS`].
pub fn handler_name(name: &str) -> Option<&'static str> {
    HANDLERS.into_iter().find(|known| *known == name)
}

/// An event as bot code receives it: the handler to call and its one argument, as JSON
/// (`player` for joins and leaves, `msg` for messages, the tag string for timers, nothing for
/// `on_init`). This is what crosses into a worker process; the runtimes never see the channel's
/// own types.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Call {
    pub handler: String,
    pub argument: Option<serde_json::Value>,
}

/// A seated participant, as bots see them: `{slot, name}` in JavaScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    pub slot: SlotLabel,
    pub name: String,
}

/// One of the channel's slots: `{slot, kind, holder}` in JavaScript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotInfo {
    pub slot: SlotLabel,
    pub kind: SlotKind,
    /// Display name of whoever holds the slot, if anyone.
    pub holder: Option<String>,
}

/// The secret a bot's randomness is derived from, fixed when the bot is attached.
///
/// Its `Debug` output hides the bytes, since secrets are never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct BotSeed(pub [u8; 32]);

impl BotSeed {
    /// Reads the 64 hex digits a seed is stored and revealed as.
    pub fn from_hex(raw: &str) -> Option<BotSeed> {
        let bytes = hex::decode(raw).ok()?;
        <[u8; 32]>::try_from(bytes).ok().map(BotSeed)
    }
}

impl fmt::Debug for BotSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotSeed(..)")
    }
}

/// Everything the bot may know about the channel at the time of the event.
#[derive(Debug, Clone, PartialEq)]
pub struct EventContext {
    pub channel_id: ChannelId,
    /// The bot's own slot; it is also the bot's identity in commitments.
    pub bot_slot: SlotLabel,
    /// The seq of the channel message that records this event (the attach notice for `Init`,
    /// the join or leave notice, or the message itself). Randomness is derived from it, so it
    /// must differ between events of one bot.
    pub event_seq: Seq,
    /// The event's timestamp: `ctx.now()`, `Date.now()` and `new Date()` all return it.
    pub now: Timestamp,
    pub slots: Vec<SlotInfo>,
    /// Seated participants, in the order they took their seats.
    pub players: Vec<Player>,
    /// The JSON the bot was attached with; the second argument of the constructor.
    pub params: serde_json::Value,
    /// What the bot saved with `ctx.set_state` in its last successful event, if anything.
    pub state: Option<serde_json::Value>,
    pub seed: BotSeed,
    /// The channel's `reveal_private` setting (`ctx.reveal_private`): whether its export shows
    /// private messages to a bot once the bot's run is over. A bot that promises secrecy past
    /// its run (a sealed exchange called off) checks it.
    pub reveal_private: bool,
}

impl EventContext {
    /// The context of the event recorded by `event`, for the bot in `bot_slot`: the roster is
    /// the transcript folded up to the event's seq ([`Roster`]), the time is the event's, and
    /// the random stream is keyed by the seed and the event's seq. Nothing comes from the live
    /// channel, so anyone with the transcript, the params and the seed rebuilds it exactly.
    pub fn at(
        channel_id: ChannelId,
        bot_slot: SlotLabel,
        event: &Message,
        roster: &Roster,
        params: serde_json::Value,
        state: Option<serde_json::Value>,
        seed: BotSeed,
    ) -> Self {
        EventContext {
            channel_id,
            bot_slot,
            event_seq: event.seq,
            now: event.at,
            slots: roster
                .slots
                .iter()
                .map(|slot| SlotInfo {
                    slot: slot.label.clone(),
                    kind: slot.kind,
                    holder: slot.holder.clone(),
                })
                .collect(),
            players: roster
                .players()
                .into_iter()
                .map(|(slot, name)| Player { slot, name })
                .collect(),
            params,
            state,
            seed,
            reveal_private: roster.reveal_private,
        }
    }
}

/// A message the bot asked to post.
#[derive(Debug, Clone, PartialEq)]
pub struct BotPost {
    /// `Some(slot)` for `ctx.post_to(slot, …)`: only that slot sees it.
    pub to: Option<SlotLabel>,
    /// Checked against the same caps as participants' bodies.
    pub body: Body,
}

/// The outcome of a successful event, to be stored in the same transaction as the event.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reaction {
    /// Posts in the order the bot made them.
    pub posts: Vec<BotPost>,
    /// `Some` when the bot called `ctx.set_state`: the value to store in place of the old one.
    /// `None` leaves the stored state as it was.
    pub state: Option<serde_json::Value>,
    /// `Some` when the bot called `ctx.end`: its run is over (game over). The posts and state
    /// above are kept as usual; the bot gets no more events and its seed is revealed.
    pub end: Option<RunEnd>,
    /// The event's `ctx.set_timer` and `ctx.cancel_timer` calls, in call order (empty when
    /// none). They are requests: the service applies them in this order, so a later call with
    /// the same tag wins, and it alone caps how many timers a bot may have pending.
    pub timers: Vec<TimerRequest>,
    /// The event's `ctx.request_fetch` calls, in call order (empty when none): the service
    /// stores them with the reaction and fetches each once.
    pub fetches: Vec<FetchRequest>,
}

/// One `ctx.request_fetch(url, {tag})` call, within the rules of `ctx_rules::fetch`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FetchRequest {
    pub url: String,
    pub tag: String,
}

/// One `ctx.set_timer` or `ctx.cancel_timer` call, within the rules of
/// [`MAX_TIMER_MS`](crate::MAX_TIMER_MS) and [`MAX_TIMER_TAG_BYTES`](crate::MAX_TIMER_TAG_BYTES).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum TimerRequest {
    /// Sets the timer `tag` to fire `ms` after the event's time, replacing any pending timer
    /// with that tag.
    Set { tag: String, ms: u64 },
    /// Cancels the pending timer `tag`, if any.
    Cancel { tag: String },
}

/// A bot's word that its run is over, from `ctx.end(reason)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEnd {
    /// The public reason the bot gave (`"alice wins"`), at most
    /// [`MAX_END_REASON_BYTES`](crate::MAX_END_REASON_BYTES) bytes; `None` when it gave none.
    pub reason: Option<String>,
}
