//! One bot event in the runtime of the bot's language, in this thread: the entry points a
//! worker process calls ([`run_call`]), and their typed forms for code that holds an [`Event`].
//!
//! Nothing here stops native code that never yields: the caller runs these in a process that
//! can be killed (see the `workers` crate), never on a thread the server needs.

use domain::{ChannelId, Seq, SlotLabel, Timestamp};

use crate::error::BotError;
use crate::event::{BotSeed, Call, Event, EventContext, Reaction};
use crate::limits::Limits;
use crate::source::{BotSource, Language};
use crate::{javascript, python};

/// Runs one event for `bot` and returns what it posted and saved, or why it failed.
///
/// On failure nothing of the event is kept: no posts, no state. Blocking and CPU-bound.
pub fn run_event(
    bot: &BotSource,
    context: &EventContext,
    event: &Event,
    limits: &Limits,
) -> Result<Reaction, BotError> {
    run_call(bot, context, Some(&event.call()), limits)
}

/// Loads `bot` the way every event does (compile, run the top level, find the bot's class)
/// without calling any handler, so a service can refuse broken code when it is attached rather
/// than at its first event.
pub fn check_source(bot: &BotSource, limits: &Limits) -> Result<(), BotError> {
    run_call(bot, &placeholder_context(), None, limits).map(|_| ())
}

/// Runs `call` for `bot`, or only loads the bot when `call` is `None`.
pub fn run_call(
    bot: &BotSource,
    context: &EventContext,
    call: Option<&Call>,
    limits: &Limits,
) -> Result<Reaction, BotError> {
    match bot.language() {
        Language::JavaScript => javascript::run(bot, context, call, limits),
        Language::Python => python::run(bot, context, call, limits),
    }
}

/// The context a source check runs in: no channel, no players, no state.
pub fn placeholder_context() -> EventContext {
    EventContext {
        channel_id: ChannelId::from_random([0; 12]),
        bot_slot: SlotLabel::from_trusted("bot".to_owned()),
        event_seq: Seq::ZERO,
        now: Timestamp(0),
        slots: Vec::new(),
        players: Vec::new(),
        params: serde_json::Value::Object(serde_json::Map::new()),
        state: None,
        seed: BotSeed([0; 32]),
        reveal_private: true,
    }
}
