//! Python bots, run by Monty. Not yet wired: see issue 10.

use crate::error::{BotError, BotErrorKind};
use crate::event::{Call, EventContext, Reaction};
use crate::limits::Limits;
use crate::source::BotSource;

pub(crate) fn run(
    _bot: &BotSource,
    _context: &EventContext,
    _call: Option<&Call>,
    _limits: &Limits,
) -> Result<Reaction, BotError> {
    Err(BotError::new(
        BotErrorKind::BadSource,
        "Python bots are not supported by this build",
    ))
}
