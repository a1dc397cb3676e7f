//! The language-neutral rules of `ctx`, shared by the JavaScript and Python runtimes: how many
//! posts an event may make, who a private post may go to, what a body and a state may be, the
//! ranges of the random functions, the salt of a commitment, the reason a run ends with, the
//! timers an event may set or cancel, and the fetches it may ask for.
//!
//! Each runtime reads its own values (a QuickJS `Value`, a Monty `MontyObject`) into Rust types
//! and then asks these functions, so both languages refuse the same things with the same
//! [`BotErrorKind`] and the same words.

use domain::{Body, SlotLabel};
use sha2::{Digest, Sha256};

use crate::commitment::{MIN_SALT_BYTES, commitment};
use crate::error::{BotError, BotErrorKind};
use crate::event::{FetchRequest, RunEnd, TimerRequest};
use crate::limits::MAX_RANDOM_BYTES;
use crate::random::EventRandom;

/// Largest magnitude `ctx.random_int` accepts as a bound: JavaScript's
/// `Number.MAX_SAFE_INTEGER`, in both languages, so the two draw the same values.
pub(crate) const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

pub(crate) const POST: &str = "ctx.post(body)";
pub(crate) const POST_TO: &str = "ctx.post_to(slot, body)";
pub(crate) const SET_STATE: &str = "ctx.set_state(state)";
pub(crate) const RANDOM_INT: &str = "ctx.random_int(lo, hi)";
pub(crate) const RANDOM_BYTES: &str = "ctx.random_bytes(n)";
pub(crate) const COMMIT: &str = "ctx.commit(value, salt_hex)";
pub(crate) const SHA256: &str = "ctx.sha256(text)";
pub(crate) const END: &str = "ctx.end(reason)";
pub(crate) const SET_TIMER: &str = "ctx.set_timer(ms, tag)";
pub(crate) const CANCEL_TIMER: &str = "ctx.cancel_timer(tag)";
pub(crate) const REQUEST_FETCH: &str = "ctx.request_fetch(url, options)";

/// Longest URL `ctx.request_fetch` accepts, in bytes.
pub const MAX_FETCH_URL_BYTES: usize = 2048;

/// Most `ctx.request_fetch` calls one event may make.
pub const MAX_FETCH_CALLS: usize = 4;

/// Most fetches one bot may have pending at once. The server refuses, as the event's failure,
/// a reaction that would leave more ([`pending_fetches_after`]).
pub const MAX_PENDING_FETCHES: usize = 8;

/// The tag of a fetch whose options name none.
pub const DEFAULT_FETCH_TAG: &str = "fetch";

/// The refusal of a reaction whose fetches would leave the bot with more than
/// [`MAX_PENDING_FETCHES`] pending, given how many it has now.
pub fn pending_fetches_after(pending: usize, requests: &[FetchRequest]) -> Result<(), BotError> {
    let after = pending.saturating_add(requests.len());
    if after > MAX_PENDING_FETCHES {
        return Err(bad_argument(
            REQUEST_FETCH,
            &format!(
                "the bot would have {after} fetches pending; at most {MAX_PENDING_FETCHES} may be (wait for on_fetch)"
            ),
        ));
    }
    Ok(())
}

/// Longest reason `ctx.end(reason)` accepts, in bytes of UTF-8: a line for the channel's closing
/// notice ("alice wins"), not a report. Results belong in a post before the end.
pub const MAX_END_REASON_BYTES: usize = 200;

/// Longest delay `ctx.set_timer(ms, tag)` accepts, in ms: 24 hours. A turn clock needs seconds
/// or minutes; a longer wait is a game that should end and be attached again.
pub const MAX_TIMER_MS: u64 = 86_400_000;

/// Longest tag `ctx.set_timer` and `ctx.cancel_timer` accept, in bytes of UTF-8. The tag is
/// recorded in the `timer_fired` notice, so it names a timer ("turn-3"), it carries no data.
pub const MAX_TIMER_TAG_BYTES: usize = 64;

/// Most `ctx.set_timer` and `ctx.cancel_timer` calls one event may make, together. Each one is
/// work for the service after the event, so a loop of them is refused rather than queued.
pub const MAX_TIMER_CALLS: usize = 16;

/// Most timers one bot may have pending at once. The server refuses, as the event's failure
/// (`bad_argument`), a reaction that would leave more; replay applies the same rule.
pub const MAX_PENDING_TIMERS: usize = 16;

/// The tags a bot has pending after a reaction's timer calls, or the refusal when that would
/// be more than [`MAX_PENDING_TIMERS`].
pub fn pending_timers_after(
    pending: &[&str],
    requests: &[TimerRequest],
) -> Result<Vec<String>, BotError> {
    let mut tags: Vec<String> = pending.iter().map(|tag| (*tag).to_owned()).collect();
    for request in requests {
        match request {
            TimerRequest::Set { tag, .. } => {
                if !tags.contains(tag) {
                    tags.push(tag.clone());
                }
            }
            TimerRequest::Cancel { tag } => tags.retain(|pending| pending != tag),
        }
    }
    if tags.len() > MAX_PENDING_TIMERS {
        return Err(BotError::new(
            BotErrorKind::BadArgument,
            format!(
                "ctx.set_timer: the bot would have {} timers pending; at most {MAX_PENDING_TIMERS} may be (cancel some, or reuse tags)",
                tags.len()
            ),
        ));
    }
    Ok(tags)
}

/// The delays `ctx.set_timer` accepts, as the integer bounds the runtimes read arguments with.
pub(crate) const TIMER_MS_BOUNDS: (i64, i64) = (1, MAX_TIMER_MS as i64);

/// Refuses a post once `posted` reached the cap. Checked before reading a body (so a flood stops
/// cheaply) and again before recording it.
pub(crate) fn check_room(posted: usize, max_posts: usize, call: &str) -> Result<(), BotError> {
    if posted >= max_posts {
        return Err(BotError::new(
            BotErrorKind::TooManyPosts,
            format!("{call}: a bot may post at most {max_posts} messages per event"),
        ));
    }
    Ok(())
}

/// The slot a private post goes to, if the channel has it.
pub(crate) fn recipient(slots: &[SlotLabel], label: &str) -> Result<SlotLabel, BotError> {
    slots
        .iter()
        .find(|slot| slot.as_str() == label)
        .cloned()
        .ok_or_else(|| {
            BotError::new(
                BotErrorKind::BadPost,
                format!("{POST_TO}: the channel has no slot {label:?}; ctx.slots() lists them"),
            )
        })
}

/// A post body from its parts, under the same caps as participants' bodies. The error is the
/// reason alone; the caller words it as a [`BotErrorKind::BadPost`] for its call.
pub(crate) fn body(
    text: Option<String>,
    data: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Body, String> {
    Body::new(text, data).map_err(|error| error.to_string())
}

/// The refusal of a post whose body is wrong, for `reason`.
pub(crate) fn bad_post(call: &str, reason: &str) -> BotError {
    BotError::new(BotErrorKind::BadPost, format!("{call}: {reason}"))
}

/// Checks a new state against the size cap; gives back its compact JSON text.
pub(crate) fn state_text(
    state: &serde_json::Value,
    max_state_bytes: usize,
) -> Result<String, BotError> {
    let text = state.to_string();
    if text.len() > max_state_bytes {
        return Err(BotError::new(
            BotErrorKind::StateTooLarge,
            format!(
                "{SET_STATE}: the state is {} bytes of JSON; the limit is {max_state_bytes}",
                text.len()
            ),
        ));
    }
    Ok(text)
}

/// The refusal of a state that has no JSON form, for `reason`.
pub(crate) fn bad_state(reason: &str) -> BotError {
    BotError::new(BotErrorKind::BadState, format!("{SET_STATE}: {reason}"))
}

/// The refusal of an argument, for `reason` (`"{call}: {reason}"`).
pub(crate) fn bad_argument(call: &str, reason: &str) -> BotError {
    BotError::new(BotErrorKind::BadArgument, format!("{call}: {reason}"))
}

/// The refusal of an integer argument outside `min..=max`; `got` describes what was passed.
pub(crate) fn bad_integer(call: &str, name: &str, (min, max): (i64, i64), got: &str) -> BotError {
    bad_argument(
        call,
        &format!("{name} must be an integer from {min} to {max}, got {got}"),
    )
}

/// The bounds `ctx.random_int` accepts.
pub(crate) const RANDOM_INT_BOUNDS: (i64, i64) = (-MAX_SAFE_INTEGER, MAX_SAFE_INTEGER);

/// The counts `ctx.random_bytes` accepts.
pub(crate) const RANDOM_BYTES_BOUNDS: (i64, i64) = (1, MAX_RANDOM_BYTES as i64);

/// `ctx.random_int(lo, hi)` once both bounds are known to be in [`RANDOM_INT_BOUNDS`].
pub(crate) fn random_int(random: &mut EventRandom, lo: i64, hi: i64) -> Result<i64, BotError> {
    if lo > hi {
        return Err(bad_argument(
            RANDOM_INT,
            &format!("lo ({lo}) must not be greater than hi ({hi})"),
        ));
    }
    Ok(random.int_in(lo, hi))
}

/// `ctx.random_bytes(n)` once `n` is known to be in [`RANDOM_BYTES_BOUNDS`], as lowercase hex.
pub(crate) fn random_bytes(random: &mut EventRandom, count: i64) -> String {
    let mut bytes = vec![0; usize::try_from(count).unwrap_or(0)];
    random.fill(&mut bytes);
    hex::encode(bytes)
}

/// `ctx.commit(value, salt_hex)` for the bot in `bot_slot` of `channel_id`.
pub(crate) fn commit(
    channel_id: &str,
    bot_slot: &str,
    value: &str,
    salt_hex: &str,
) -> Result<String, BotError> {
    match hex::decode(salt_hex) {
        Ok(salt) if salt.len() >= MIN_SALT_BYTES => {
            Ok(commitment(channel_id, bot_slot, value, &salt))
        }
        _ => Err(bad_argument(
            COMMIT,
            &format!(
                "salt_hex must be hex of at least {MIN_SALT_BYTES} bytes, e.g. ctx.random_bytes(16)"
            ),
        )),
    }
}

/// `ctx.sha256(text)`: lowercase hex SHA-256 of the UTF-8 text.
pub(crate) fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// `ctx.end(reason)` once the reason is known to be a string or absent. Later calls in the same
/// event replace earlier ones, so the last reason wins.
pub(crate) fn end(reason: Option<String>) -> Result<RunEnd, BotError> {
    if let Some(reason) = &reason
        && reason.len() > MAX_END_REASON_BYTES
    {
        return Err(bad_argument(
            END,
            &format!(
                "the reason is {} bytes; the limit is {MAX_END_REASON_BYTES} (post the details first)",
                reason.len()
            ),
        ));
    }
    Ok(RunEnd { reason })
}

/// Refuses a timer call once `made` calls of the event reached [`MAX_TIMER_CALLS`]. Checked
/// before reading the arguments, so a loop of calls stops at the first one over.
pub(crate) fn check_timer_room(made: usize, call: &str) -> Result<(), BotError> {
    if made >= MAX_TIMER_CALLS {
        return Err(bad_argument(
            call,
            &format!("an event may set or cancel timers at most {MAX_TIMER_CALLS} times"),
        ));
    }
    Ok(())
}

/// Checks one timer request: its delay in `1..=MAX_TIMER_MS` and its tag of 1 to
/// [`MAX_TIMER_TAG_BYTES`] bytes. The runtimes read the arguments into a request and ask this;
/// the host asks it again of every request a worker reports.
pub(crate) fn timer(request: TimerRequest) -> Result<TimerRequest, BotError> {
    let (call, tag) = match &request {
        TimerRequest::Set { tag, ms } => {
            if !(1..=MAX_TIMER_MS).contains(ms) {
                return Err(bad_integer(
                    SET_TIMER,
                    "ms",
                    TIMER_MS_BOUNDS,
                    &ms.to_string(),
                ));
            }
            (SET_TIMER, tag)
        }
        TimerRequest::Cancel { tag } => (CANCEL_TIMER, tag),
    };
    if tag.is_empty() || tag.len() > MAX_TIMER_TAG_BYTES {
        return Err(bad_argument(
            call,
            &format!(
                "tag must be 1 to {MAX_TIMER_TAG_BYTES} bytes of UTF-8, got {} bytes",
                tag.len()
            ),
        ));
    }
    Ok(request)
}

/// Refuses a fetch call once `made` calls of the event reached [`MAX_FETCH_CALLS`]. Checked
/// before reading the arguments, so a loop of calls stops at the first one over.
pub(crate) fn check_fetch_room(made: usize) -> Result<(), BotError> {
    if made >= MAX_FETCH_CALLS {
        return Err(bad_argument(
            REQUEST_FETCH,
            &format!("an event may ask for at most {MAX_FETCH_CALLS} fetches"),
        ));
    }
    Ok(())
}

/// Checks one fetch request: an `https://` URL of at most [`MAX_FETCH_URL_BYTES`] bytes with no
/// spaces or control characters, and a tag of 1 to [`MAX_TIMER_TAG_BYTES`] bytes. Whether the
/// URL's host may be fetched is the server's decision when it fetches (addresses, the
/// operator's lists), recorded in the result; this rule only keeps nonsense out of the record.
pub(crate) fn fetch(request: FetchRequest) -> Result<FetchRequest, BotError> {
    let url = &request.url;
    if !url.starts_with("https://") || url.len() <= "https://".len() {
        return Err(bad_argument(
            REQUEST_FETCH,
            "url must start with https:// and name a host (only HTTPS is fetched)",
        ));
    }
    if url.len() > MAX_FETCH_URL_BYTES {
        return Err(bad_argument(
            REQUEST_FETCH,
            &format!(
                "url must be at most {MAX_FETCH_URL_BYTES} bytes, got {}",
                url.len()
            ),
        ));
    }
    if url.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
        return Err(bad_argument(
            REQUEST_FETCH,
            "url must not contain spaces or control characters",
        ));
    }
    if request.tag.is_empty() || request.tag.len() > MAX_TIMER_TAG_BYTES {
        return Err(bad_argument(
            REQUEST_FETCH,
            &format!(
                "options.tag must be 1 to {MAX_TIMER_TAG_BYTES} bytes of UTF-8, got {} bytes",
                request.tag.len()
            ),
        ));
    }
    Ok(request)
}
