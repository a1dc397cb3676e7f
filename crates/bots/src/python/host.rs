//! The host's answers to a Python bot: `ctx` calls (checked here, with the rules shared with
//! JavaScript in [`ctx_rules`]), OS calls (refused, except the clock, which is the event's), and
//! the conversions between JSON and Monty's values.
//!
//! A refused `ctx` call is recorded and ends the run with an exception bot code cannot catch,
//! so the event fails with that refusal whatever the bot does around the call.

use domain::SlotLabel;
use monty_types::{
    ExcType, ExtFunctionResult, MontyDate, MontyDateTime, MontyException, MontyObject,
    MontyTimeZone, OsFunctionCall,
};
use serde_json::{Map, Value};

use super::Phase;
use crate::ctx_rules;
use crate::error::BotError;
use crate::event::{BotPost, EventContext, FetchRequest, Reaction, RunEnd, TimerRequest};
use crate::limits::Limits;
use crate::random::EventRandom;

/// The external functions the driver calls, passed to Monty as inputs.
pub(crate) const HOST_FUNCTIONS: [&str; 16] = [
    "_mm_post",
    "_mm_post_to",
    "_mm_get_state",
    "_mm_set_state",
    "_mm_players",
    "_mm_slots",
    "_mm_now",
    "_mm_random_int",
    "_mm_random_bytes",
    "_mm_sha256",
    "_mm_commit",
    "_mm_end",
    "_mm_set_timer",
    "_mm_cancel_timer",
    "_mm_request_fetch",
    "_mm_phase",
];

/// Deepest nesting a value crossing from the bot to the host may have. Monty's own recursion
/// cap stops deeper values first; this keeps the host's walk bounded whatever that cap is.
const MAX_DEPTH: usize = 1000;

/// What one event's host calls share.
pub(crate) struct PyHost<'a> {
    context: &'a EventContext,
    limits: &'a Limits,
    handler: Option<&'static str>,
    phase: Phase,
    posts: Vec<BotPost>,
    /// The state as last set this event, if `ctx.set_state` was called.
    new_state: Option<Value>,
    /// Set by `ctx.end`: the run is over once this event succeeds. The last call wins.
    end: Option<RunEnd>,
    /// `ctx.set_timer` and `ctx.cancel_timer` calls, in call order.
    timers: Vec<TimerRequest>,
    /// `ctx.request_fetch` calls, in call order.
    fetches: Vec<FetchRequest>,
    random: EventRandom,
    slot_labels: Vec<SlotLabel>,
    /// The first refused call; it fails the event.
    refusal: Option<BotError>,
}

impl<'a> PyHost<'a> {
    pub(crate) fn new(
        context: &'a EventContext,
        limits: &'a Limits,
        handler: Option<&'static str>,
    ) -> Self {
        Self {
            context,
            limits,
            handler,
            phase: Phase::Load,
            posts: Vec::new(),
            new_state: None,
            end: None,
            timers: Vec::new(),
            fetches: Vec::new(),
            random: EventRandom::new(&context.seed, context.event_seq.0),
            slot_labels: context.slots.iter().map(|slot| slot.slot.clone()).collect(),
            refusal: None,
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    pub(crate) fn refusal(&self) -> Option<&BotError> {
        self.refusal.as_ref()
    }

    pub(crate) fn take_refusal(&mut self) -> Option<BotError> {
        self.refusal.take()
    }

    /// Records a refusal; the first one wins.
    pub(crate) fn refuse(&mut self, refusal: BotError) {
        self.refusal.get_or_insert(refusal);
    }

    pub(crate) fn into_reaction(self) -> Reaction {
        Reaction {
            posts: self.posts,
            state: self.new_state,
            end: self.end,
            timers: self.timers,
            fetches: self.fetches,
        }
    }

    /// Answers a call to an external function. `Err(())` means the call was refused (the
    /// refusal is recorded) and the run must end.
    pub(crate) fn call(
        &mut self,
        name: &str,
        args: &[MontyObject],
        kwargs: &[(MontyObject, MontyObject)],
    ) -> Result<ExtFunctionResult, ()> {
        if !HOST_FUNCTIONS.contains(&name) {
            // A name neither Monty nor the host defines: `eval`, `exec`, `__import__`, ...
            return Ok(ExtFunctionResult::NotFound(name.to_owned()));
        }
        let answer = if kwargs.is_empty() {
            self.dispatch(name, args)
        } else {
            Err(ctx_rules::bad_argument(
                &format!("ctx.{}", name.trim_start_matches("_mm_")),
                "takes no keyword arguments",
            ))
        };
        match answer {
            Ok(value) => Ok(ExtFunctionResult::Return(value)),
            Err(refusal) => {
                self.refuse(refusal);
                Err(())
            }
        }
    }

    fn dispatch(&mut self, name: &str, args: &[MontyObject]) -> Result<MontyObject, BotError> {
        match name {
            "_mm_post" => {
                let (kind, body) = match args {
                    [body] => (None, Some(body)),
                    [kind, body] => (Some(kind), Some(body)),
                    [] => (None, None),
                    more => {
                        return Err(ctx_rules::bad_argument(
                            "ctx.post(kind, body)",
                            &format!(
                                "takes a body, or a kind and a body; got {} arguments",
                                more.len()
                            ),
                        ));
                    }
                };
                // A bot's messages are always of kind `bot`: any kind given is accepted and
                // ignored, as long as it is a string.
                if let Some(kind) = kind
                    && !matches!(kind, MontyObject::String(_))
                {
                    return Err(ctx_rules::bad_argument(
                        "ctx.post(kind, body)",
                        &format!("kind must be a string, got {}", type_name(kind)),
                    ));
                }
                self.post(None, body)
            }
            "_mm_post_to" => {
                if args.len() > 2 {
                    return Err(ctx_rules::bad_argument(
                        ctx_rules::POST_TO,
                        &format!("takes a slot and a body; got {} arguments", args.len()),
                    ));
                }
                let label = string_arg(args.first(), ctx_rules::POST_TO, "slot")?;
                let to = ctx_rules::recipient(&self.slot_labels, &label)?;
                self.post(Some(to), args.get(1))
            }
            "_mm_get_state" => {
                no_arguments(args, "ctx.get_state()")?;
                Ok(match (&self.new_state, &self.context.state) {
                    (Some(state), _) | (None, Some(state)) => to_python(state),
                    (None, None) => MontyObject::None,
                })
            }
            "_mm_set_state" => self.set_state(args),
            "_mm_players" => {
                no_arguments(args, "ctx.players()")?;
                Ok(MontyObject::List(
                    self.context
                        .players
                        .iter()
                        .map(|player| {
                            dict([
                                ("slot", MontyObject::String(player.slot.as_str().to_owned())),
                                ("name", MontyObject::String(player.name.clone())),
                            ])
                        })
                        .collect(),
                ))
            }
            "_mm_slots" => {
                no_arguments(args, "ctx.slots()")?;
                Ok(MontyObject::List(
                    self.context
                        .slots
                        .iter()
                        .map(|slot| {
                            dict([
                                ("slot", MontyObject::String(slot.slot.as_str().to_owned())),
                                ("kind", MontyObject::String(slot.kind.as_str().to_owned())),
                                (
                                    "holder",
                                    slot.holder
                                        .clone()
                                        .map_or(MontyObject::None, MontyObject::String),
                                ),
                            ])
                        })
                        .collect(),
                ))
            }
            "_mm_now" => {
                no_arguments(args, "ctx.now()")?;
                Ok(MontyObject::Int(self.context.now.0))
            }
            "_mm_random_int" => {
                let call = ctx_rules::RANDOM_INT;
                let bounds = ctx_rules::RANDOM_INT_BOUNDS;
                too_many_arguments(args, 2, call)?;
                let lo = integer_arg(args.first(), call, "lo", bounds)?;
                let hi = integer_arg(args.get(1), call, "hi", bounds)?;
                ctx_rules::random_int(&mut self.random, lo, hi).map(MontyObject::Int)
            }
            "_mm_random_bytes" => {
                let call = ctx_rules::RANDOM_BYTES;
                too_many_arguments(args, 1, call)?;
                let count = integer_arg(args.first(), call, "n", ctx_rules::RANDOM_BYTES_BOUNDS)?;
                Ok(MontyObject::String(ctx_rules::random_bytes(
                    &mut self.random,
                    count,
                )))
            }
            "_mm_sha256" => {
                too_many_arguments(args, 1, ctx_rules::SHA256)?;
                let text = string_arg(args.first(), ctx_rules::SHA256, "text")?;
                Ok(MontyObject::String(ctx_rules::sha256(&text)))
            }
            "_mm_commit" => {
                let call = ctx_rules::COMMIT;
                too_many_arguments(args, 2, call)?;
                let value = string_arg(args.first(), call, "value")?;
                let salt_hex = string_arg(args.get(1), call, "salt_hex")?;
                ctx_rules::commit(
                    self.context.channel_id.as_str(),
                    self.context.bot_slot.as_str(),
                    &value,
                    &salt_hex,
                )
                .map(MontyObject::String)
            }
            "_mm_end" => {
                too_many_arguments(args, 1, ctx_rules::END)?;
                let reason = match args.first() {
                    None | Some(MontyObject::None) => None,
                    Some(MontyObject::String(reason)) => Some(reason.clone()),
                    Some(other) => {
                        return Err(ctx_rules::bad_argument(
                            ctx_rules::END,
                            &format!("reason must be a string or None, got {}", type_name(other)),
                        ));
                    }
                };
                self.end = Some(ctx_rules::end(reason)?);
                Ok(MontyObject::None)
            }
            "_mm_set_timer" => {
                let call = ctx_rules::SET_TIMER;
                too_many_arguments(args, 2, call)?;
                ctx_rules::check_timer_room(self.timers.len(), call)?;
                let ms = integer_arg(args.first(), call, "ms", ctx_rules::TIMER_MS_BOUNDS)?;
                let tag = string_arg(args.get(1), call, "tag")?;
                let ms = ms.unsigned_abs();
                self.record_timer(TimerRequest::Set { tag, ms })
            }
            "_mm_cancel_timer" => {
                let call = ctx_rules::CANCEL_TIMER;
                too_many_arguments(args, 1, call)?;
                ctx_rules::check_timer_room(self.timers.len(), call)?;
                let tag = string_arg(args.first(), call, "tag")?;
                self.record_timer(TimerRequest::Cancel { tag })
            }
            "_mm_request_fetch" => {
                let call = ctx_rules::REQUEST_FETCH;
                too_many_arguments(args, 2, call)?;
                ctx_rules::check_fetch_room(self.fetches.len())?;
                let url = string_arg(args.first(), call, "url")?;
                let tag = fetch_tag(args.get(1))?;
                self.fetches
                    .push(ctx_rules::fetch(FetchRequest { url, tag })?);
                Ok(MontyObject::None)
            }
            // The driver says where it is, for error messages; a bot calling this itself only
            // changes how its own errors are worded.
            "_mm_phase" => {
                self.phase = match args.first() {
                    Some(MontyObject::String(phase)) if phase == "constructor" => Phase::Construct,
                    _ => Phase::Handler(self.handler.unwrap_or("the handler")),
                };
                Ok(MontyObject::None)
            }
            other => Ok(MontyObject::String(format!("unreachable: {other}"))),
        }
    }

    fn post(
        &mut self,
        to: Option<SlotLabel>,
        body: Option<&MontyObject>,
    ) -> Result<MontyObject, BotError> {
        let call = if to.is_some() {
            ctx_rules::POST_TO
        } else {
            ctx_rules::POST
        };
        ctx_rules::check_room(self.posts.len(), self.limits.max_posts, call)?;
        let body = read_body(body).map_err(|reason| ctx_rules::bad_post(call, &reason))?;
        self.posts.push(BotPost { to, body });
        Ok(MontyObject::None)
    }

    /// Keeps a timer request the shared rules accept; the service applies it if the event
    /// succeeds.
    fn record_timer(&mut self, request: TimerRequest) -> Result<MontyObject, BotError> {
        self.timers.push(ctx_rules::timer(request)?);
        Ok(MontyObject::None)
    }

    fn set_state(&mut self, args: &[MontyObject]) -> Result<MontyObject, BotError> {
        let state = match args {
            [state] => state,
            [] => {
                return Err(ctx_rules::bad_state(
                    "pass the new state (any JSON value; None clears it)",
                ));
            }
            more => {
                return Err(ctx_rules::bad_argument(
                    ctx_rules::SET_STATE,
                    &format!("takes one state; got {} arguments", more.len()),
                ));
            }
        };
        let json = to_json(state, 0)
            .map_err(|reason| ctx_rules::bad_state(&format!("the state is not JSON: {reason}")))?;
        ctx_rules::state_text(&json, self.limits.max_state_bytes)?;
        self.new_state = Some(json);
        Ok(MontyObject::None)
    }

    /// Answers an OS call: the clock reads the event's time; files, the environment and
    /// everything else are refused with `PermissionError` (catchable, like any failed call).
    pub(crate) fn os_call(&self, call: &OsFunctionCall) -> ExtFunctionResult {
        let now = self.context.now.0;
        let answer = match call {
            OsFunctionCall::DateTimeNow(zone) => {
                date_time(now, zone.as_ref()).map(MontyObject::DateTime)
            }
            OsFunctionCall::DateToday => date_time(now, None).map(|moment| {
                MontyObject::Date(MontyDate {
                    year: moment.year,
                    month: moment.month,
                    day: moment.day,
                })
            }),
            _ => None,
        };
        match answer {
            Some(value) => ExtFunctionResult::Return(value),
            None => ExtFunctionResult::Error(MontyException::new(
                ExcType::PermissionError,
                Some(format!(
                    "{}() is not available to bots: they have no files, environment or network",
                    call.name()
                )),
            )),
        }
    }
}

fn no_arguments(args: &[MontyObject], call: &str) -> Result<(), BotError> {
    too_many_arguments(args, 0, call)
}

fn too_many_arguments(args: &[MontyObject], most: usize, call: &str) -> Result<(), BotError> {
    if args.len() > most {
        return Err(ctx_rules::bad_argument(
            call,
            &format!("takes {most} arguments; got {}", args.len()),
        ));
    }
    Ok(())
}

fn string_arg(value: Option<&MontyObject>, call: &str, name: &str) -> Result<String, BotError> {
    match value {
        Some(MontyObject::String(text)) => Ok(text.clone()),
        other => Err(ctx_rules::bad_argument(
            call,
            &format!("{name} must be a string, got {}", describe(other)),
        )),
    }
}

/// The tag in `ctx.request_fetch`'s options: absent, `None` or `{'tag': str}`.
fn fetch_tag(options: Option<&MontyObject>) -> Result<String, BotError> {
    let call = ctx_rules::REQUEST_FETCH;
    let pairs = match options {
        None | Some(MontyObject::None) => return Ok(ctx_rules::DEFAULT_FETCH_TAG.to_owned()),
        Some(MontyObject::Dict(pairs)) => pairs,
        Some(other) => {
            return Err(ctx_rules::bad_argument(
                call,
                &format!("options must be a dict, got {}", type_name(other)),
            ));
        }
    };
    let mut tag = None;
    for (key, value) in pairs {
        match key {
            MontyObject::String(key) if key == "tag" => {
                tag = Some(string_arg(Some(value), call, "options['tag']")?);
            }
            MontyObject::String(key) => {
                return Err(ctx_rules::bad_argument(
                    call,
                    &format!("options has an unknown key {key:?} (only 'tag')"),
                ));
            }
            other => {
                return Err(ctx_rules::bad_argument(
                    call,
                    &format!("options keys must be strings, got {}", type_name(other)),
                ));
            }
        }
    }
    Ok(tag.unwrap_or_else(|| ctx_rules::DEFAULT_FETCH_TAG.to_owned()))
}

fn integer_arg(
    value: Option<&MontyObject>,
    call: &str,
    name: &str,
    bounds: (i64, i64),
) -> Result<i64, BotError> {
    match value {
        Some(MontyObject::Int(number)) if (bounds.0..=bounds.1).contains(number) => Ok(*number),
        Some(MontyObject::Int(number)) => Err(ctx_rules::bad_integer(
            call,
            name,
            bounds,
            &number.to_string(),
        )),
        Some(MontyObject::BigInt(number)) => Err(ctx_rules::bad_integer(
            call,
            name,
            bounds,
            &number.to_string(),
        )),
        other => Err(ctx_rules::bad_integer(call, name, bounds, &describe(other))),
    }
}

/// What an argument was, for a refusal: `nothing`, or its Python type.
fn describe(value: Option<&MontyObject>) -> String {
    value.map_or_else(|| "nothing".to_owned(), type_name)
}

/// The Python type name of a value, as `type(x).__name__` would say.
pub(crate) fn type_name(value: &MontyObject) -> String {
    match value {
        MontyObject::None => "NoneType".to_owned(),
        MontyObject::Bool(_) => "bool".to_owned(),
        MontyObject::Int(_) | MontyObject::BigInt(_) => "int".to_owned(),
        MontyObject::Float(_) => "float".to_owned(),
        MontyObject::String(_) => "str".to_owned(),
        MontyObject::Bytes(_) => "bytes".to_owned(),
        MontyObject::List(_) => "list".to_owned(),
        MontyObject::Tuple(_) => "tuple".to_owned(),
        MontyObject::NamedTuple { type_name, .. } => type_name.clone(),
        MontyObject::Dict(_) => "dict".to_owned(),
        MontyObject::Set(_) => "set".to_owned(),
        MontyObject::FrozenSet(_) => "frozenset".to_owned(),
        MontyObject::Date(_) => "date".to_owned(),
        MontyObject::DateTime(_) => "datetime".to_owned(),
        MontyObject::Time(_) => "time".to_owned(),
        MontyObject::TimeDelta(_) => "timedelta".to_owned(),
        MontyObject::TimeZone(_) => "timezone".to_owned(),
        MontyObject::Exception { exc_type, .. } => exc_type.to_string(),
        MontyObject::Type(_) => "type".to_owned(),
        MontyObject::Function { .. } | MontyObject::BuiltinFunction(_) => "function".to_owned(),
        MontyObject::ClassInstance(instance) => instance.class_type.name.clone(),
        MontyObject::Cycle(..) => "a value that contains itself".to_owned(),
        MontyObject::Repr(repr) if repr.starts_with("<deeply nested") => {
            "a value nested too deeply".to_owned()
        }
        MontyObject::Ellipsis => "ellipsis".to_owned(),
        MontyObject::NotImplemented => "NotImplementedType".to_owned(),
        _ => "object".to_owned(),
    }
}

/// Reads a post body: a string (the text); a dict with only `text` and/or `data` keys; or any
/// other dict, posted whole as `data`.
fn read_body(value: Option<&MontyObject>) -> Result<domain::Body, String> {
    const SHAPE: &str = "body must be a str, or a dict {'text': str, 'data': dict} (any other dict is sent as data)";
    let Some(value) = value else {
        return Err(format!("{SHAPE}, got nothing"));
    };
    let pairs = match value {
        MontyObject::String(text) => return ctx_rules::body(Some(text.clone()), None),
        MontyObject::Dict(pairs) => pairs,
        other => return Err(format!("{SHAPE}, got {}", type_name(other))),
    };
    let mut fields = Vec::new();
    for (key, field) in pairs {
        match key {
            MontyObject::String(key) => fields.push((key.as_str(), field)),
            other => {
                return Err(format!(
                    "dict keys must be strings, got {}",
                    type_name(other)
                ));
            }
        }
    }
    if !fields
        .iter()
        .all(|(key, _)| matches!(*key, "text" | "data"))
    {
        let Value::Object(data) =
            to_json(value, 0).map_err(|reason| format!("data is not JSON: {reason}"))?
        else {
            return Err("data must be a dict".to_owned());
        };
        return ctx_rules::body(None, Some(data));
    }
    let mut text = None;
    let mut data = None;
    for (key, field) in fields {
        match (key, field) {
            (_, MontyObject::None) => {}
            ("text", MontyObject::String(field)) => text = Some(field.clone()),
            ("text", other) => return Err(format!("text must be a str, got {}", type_name(other))),
            (_, MontyObject::Dict(_)) => match to_json(field, 0) {
                Ok(Value::Object(map)) => data = Some(map),
                Ok(_) => return Err("data must be a dict".to_owned()),
                Err(reason) => return Err(format!("data is not JSON: {reason}")),
            },
            (_, other) => return Err(format!("data must be a dict, got {}", type_name(other))),
        }
    }
    ctx_rules::body(text, data)
}

/// A bot value as JSON, as `json.dumps` would write it (tuples become arrays), or why it has no
/// JSON form: non-finite floats, non-string keys, sets, bytes, objects...
fn to_json(value: &MontyObject, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err("it is nested too deeply".to_owned());
    }
    Ok(match value {
        MontyObject::None => Value::Null,
        MontyObject::Bool(flag) => Value::Bool(*flag),
        MontyObject::Int(number) => Value::from(*number),
        MontyObject::BigInt(number) => match u64::try_from(number) {
            Ok(number) => Value::from(number),
            Err(_) => return Err(format!("the integer {number} is too large for JSON")),
        },
        MontyObject::Float(number) => match serde_json::Number::from_f64(*number) {
            Some(number) => Value::Number(number),
            None => return Err(format!("the float {number} has no JSON form")),
        },
        MontyObject::String(text) => Value::String(text.clone()),
        MontyObject::List(items) | MontyObject::Tuple(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        MontyObject::Dict(pairs) => {
            let mut map = Map::new();
            for (key, item) in pairs {
                let MontyObject::String(key) = key else {
                    return Err(format!("dict keys must be strings, got {}", type_name(key)));
                };
                map.insert(key.clone(), to_json(item, depth + 1)?);
            }
            Value::Object(map)
        }
        other => return Err(format!("a {} has no JSON form", type_name(other))),
    })
}

/// A JSON value as the bot sees it: dicts, lists, str, int, float, bool and None.
pub(crate) fn to_python(value: &Value) -> MontyObject {
    match value {
        Value::Null => MontyObject::None,
        Value::Bool(flag) => MontyObject::Bool(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(int) => MontyObject::Int(int),
            None => match number.as_u64() {
                Some(big) => MontyObject::BigInt(big.into()),
                None => MontyObject::Float(number.as_f64().unwrap_or(f64::NAN)),
            },
        },
        Value::String(text) => MontyObject::String(text.clone()),
        Value::Array(items) => MontyObject::List(items.iter().map(to_python).collect()),
        Value::Object(map) => MontyObject::Dict(
            map.iter()
                .map(|(key, item)| (MontyObject::String(key.clone()), to_python(item)))
                .collect(),
        ),
    }
}

fn dict<const N: usize>(pairs: [(&str, MontyObject); N]) -> MontyObject {
    MontyObject::Dict(
        pairs
            .into_iter()
            .map(|(key, value)| (MontyObject::String(key.to_owned()), value))
            .collect(),
    )
}

/// The event's time as a `datetime`: UTC and naive without a zone, else in that fixed zone.
fn date_time(now_ms: i64, zone: Option<&MontyTimeZone>) -> Option<MontyDateTime> {
    let offset = zone.map_or(0, |zone| i64::from(zone.offset_seconds));
    let seconds = now_ms.div_euclid(1000) + offset;
    let microsecond = u32::try_from(now_ms.rem_euclid(1000) * 1000).ok()?;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if !(1..=9999).contains(&year) {
        return None;
    }
    Some(MontyDateTime {
        year: i32::try_from(year).ok()?,
        month,
        day,
        hour: u8::try_from(of_day / 3600).ok()?,
        minute: u8::try_from(of_day % 3600 / 60).ok()?,
        second: u8::try_from(of_day % 60).ok()?,
        microsecond,
        offset_seconds: zone.map(|zone| zone.offset_seconds),
        timezone_name: zone.and_then(|zone| zone.name.clone()),
    })
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn json_round_trip() {
        let value = serde_json::json!({"a": [1, 2.5, "x", null, true], "b": {"c": -3}});
        assert_eq!(to_json(&to_python(&value), 0), Ok(value));
        assert!(to_json(&MontyObject::Float(f64::NAN), 0).is_err());
        assert!(to_json(&MontyObject::Set(vec![]), 0).is_err());
    }
}
