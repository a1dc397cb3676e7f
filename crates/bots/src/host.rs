//! The `ctx` object bots receive: host functions written in Rust, and the per-event state they
//! share ([`HostState`]).
//!
//! Host functions validate their arguments themselves instead of relying on JavaScript
//! conversions, and read bot values only through engine primitives (`JSON.stringify` in C, own
//! keys), so whatever a bot does to prototypes or globals cannot change what the host records.
//!
//! A refused call (a post over the cap, a bad body, a wrong argument type) throws a `TypeError`
//! into bot code *and* records the refusal; the event then fails with that refusal even if the
//! bot caught the exception. Catching cannot turn a broken post into a silently missing one.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use domain::{Body, SlotLabel};
use rquickjs::function::Rest;
use rquickjs::{Ctx, Exception, Function, Object, Value};

use crate::ctx_rules;
use crate::error::{BotError, BotErrorKind};
use crate::event::{BotPost, EventContext, FetchRequest, RunEnd, TimerRequest};
use crate::limits::Limits;
use crate::random::EventRandom;

/// What the host functions of one event share.
pub(crate) struct HostState {
    pub posts: Vec<BotPost>,
    /// The state as last set by `ctx.set_state` this event, if it was called.
    pub new_state: Option<serde_json::Value>,
    /// Set by `ctx.end`: the bot's run is over once this event succeeds. The last call wins.
    pub end: Option<RunEnd>,
    /// `ctx.set_timer` and `ctx.cancel_timer` calls, in call order.
    pub timers: Vec<TimerRequest>,
    /// `ctx.request_fetch` calls, in call order.
    pub fetches: Vec<FetchRequest>,
    /// The first refused call; it fails the event whatever the bot does next.
    pub refusal: Option<BotError>,
    random: EventRandom,
    /// JSON text of the current state, handed out by `ctx.get_state`.
    state_json: String,
    players_json: String,
    slots_json: String,
    slot_labels: Vec<SlotLabel>,
    channel_id: String,
    bot_slot: String,
    reveal_private: bool,
    now_ms: i64,
    max_posts: usize,
    max_state_bytes: usize,
    /// Set by the interrupt handler when the time budget ran out.
    budget_spent: Rc<Cell<bool>>,
}

/// Shared handle captured by every host function.
pub(crate) type Host = Rc<RefCell<HostState>>;

impl HostState {
    pub fn new(context: &EventContext, limits: &Limits, budget_spent: Rc<Cell<bool>>) -> Self {
        let players: Vec<serde_json::Value> = context
            .players
            .iter()
            .map(|player| serde_json::json!({"slot": player.slot.as_str(), "name": player.name}))
            .collect();
        let slots: Vec<serde_json::Value> = context
            .slots
            .iter()
            .map(|slot| {
                serde_json::json!({
                    "slot": slot.slot.as_str(),
                    "kind": slot.kind.as_str(),
                    "holder": slot.holder,
                })
            })
            .collect();
        Self {
            posts: Vec::new(),
            new_state: None,
            end: None,
            timers: Vec::new(),
            fetches: Vec::new(),
            refusal: None,
            random: EventRandom::new(&context.seed, context.event_seq.0),
            state_json: context
                .state
                .as_ref()
                .map_or_else(|| "null".to_owned(), ToString::to_string),
            players_json: serde_json::Value::Array(players).to_string(),
            slots_json: serde_json::Value::Array(slots).to_string(),
            slot_labels: context.slots.iter().map(|slot| slot.slot.clone()).collect(),
            channel_id: context.channel_id.as_str().to_owned(),
            bot_slot: context.bot_slot.as_str().to_owned(),
            reveal_private: context.reveal_private,
            now_ms: context.now.0,
            max_posts: limits.max_posts,
            max_state_bytes: limits.max_state_bytes,
            budget_spent,
        }
    }

    /// Records that the time budget ran out, for a check the host makes outside the engine.
    pub fn mark_budget_spent(&self) {
        self.budget_spent.set(true);
    }

    pub fn budget_is_spent(&self) -> bool {
        self.budget_spent.get()
    }

    /// The next float of the event's random stream, for `Math.random`.
    pub fn random_unit(&mut self) -> f64 {
        self.random.unit_f64()
    }
}

/// Records a refusal (the first one wins) and throws it into bot code as a `TypeError`.
fn refuse(ctx: &Ctx<'_>, host: &Host, kind: BotErrorKind, message: String) -> rquickjs::Error {
    refuse_with(ctx, host, BotError::new(kind, message))
}

/// [`refuse`] for a refusal the shared rules ([`ctx_rules`]) worded.
fn refuse_with(ctx: &Ctx<'_>, host: &Host, refusal: BotError) -> rquickjs::Error {
    let thrown = Exception::throw_type(ctx, &refusal.message);
    host.borrow_mut().refusal.get_or_insert(refusal);
    thrown
}

/// Builds the frozen `ctx` object for one event.
pub(crate) fn make_ctx_object<'js>(ctx: &Ctx<'js>, host: &Host) -> rquickjs::Result<Object<'js>> {
    let object = Object::new(ctx.clone())?;
    {
        let state = host.borrow();
        object.set("channel_id", state.channel_id.as_str())?;
        object.set("bot_slot", state.bot_slot.as_str())?;
        object.set("reveal_private", state.reveal_private)?;
    }

    object.set(
        "post",
        host_function(ctx, host, "post", |ctx, host, args| {
            post(ctx, host, None, args.first())
        })?,
    )?;
    object.set(
        "post_to",
        host_function(ctx, host, "post_to", |ctx, host, args| {
            let to = recipient(ctx, host, args.first())?;
            post(ctx, host, Some(to), args.get(1))
        })?,
    )?;
    object.set(
        "get_state",
        host_function(ctx, host, "get_state", |ctx, host, _args| {
            let json = host.borrow().state_json.clone();
            ctx.json_parse(json)
        })?,
    )?;
    object.set(
        "set_state",
        host_function(ctx, host, "set_state", set_state)?,
    )?;
    object.set(
        "players",
        host_function(ctx, host, "players", |ctx, host, _args| {
            let json = host.borrow().players_json.clone();
            ctx.json_parse(json)
        })?,
    )?;
    object.set(
        "slots",
        host_function(ctx, host, "slots", |ctx, host, _args| {
            let json = host.borrow().slots_json.clone();
            ctx.json_parse(json)
        })?,
    )?;
    object.set(
        "now",
        host_function(ctx, host, "now", |ctx, host, _args| {
            Ok(Value::new_number(ctx.clone(), host.borrow().now_ms as f64))
        })?,
    )?;
    object.set(
        "sha256",
        host_function(ctx, host, "sha256", |ctx, host, args| {
            let text = string_arg(ctx, host, args.first(), ctx_rules::SHA256, "text")?;
            string_value(ctx, &ctx_rules::sha256(&text))
        })?,
    )?;
    object.set(
        "random_int",
        host_function(ctx, host, "random_int", random_int)?,
    )?;
    object.set(
        "random_bytes",
        host_function(ctx, host, "random_bytes", random_bytes)?,
    )?;
    object.set("commit", host_function(ctx, host, "commit", commit)?)?;
    object.set("end", host_function(ctx, host, "end", end)?)?;
    object.set(
        "set_timer",
        host_function(ctx, host, "set_timer", set_timer)?,
    )?;
    object.set(
        "request_fetch",
        host_function(ctx, host, "request_fetch", request_fetch)?,
    )?;
    object.set(
        "cancel_timer",
        host_function(ctx, host, "cancel_timer", cancel_timer)?,
    )?;

    let freeze: Function = ctx.globals().get::<_, Object>("Object")?.get("freeze")?;
    freeze.call::<_, Object>((object.clone(),))
}

type HostFn = for<'js> fn(&Ctx<'js>, &Host, &[Value<'js>]) -> rquickjs::Result<Value<'js>>;

/// Wraps a host function: every argument arrives as a raw `Value`, so no JavaScript conversion
/// (`valueOf`, `toString`) runs before the function has checked the types itself.
fn host_function<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    name: &str,
    body: HostFn,
) -> rquickjs::Result<Function<'js>> {
    let host = Rc::clone(host);
    Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        body(&ctx, &host, &args.0)
    })?
    .with_name(name)
}

fn string_value<'js>(ctx: &Ctx<'js>, text: &str) -> rquickjs::Result<Value<'js>> {
    Ok(rquickjs::String::from_str(ctx.clone(), text)?.into_value())
}

fn describe(value: Option<&Value<'_>>) -> &'static str {
    value.map_or("nothing", |value| value.type_name())
}

fn string_arg(
    ctx: &Ctx<'_>,
    host: &Host,
    value: Option<&Value<'_>>,
    call: &str,
    name: &str,
) -> rquickjs::Result<String> {
    let reason = match value.and_then(|value| value.as_string()) {
        Some(text) => match rust_string(text) {
            Ok(text) => return Ok(text),
            Err(reason) => reason,
        },
        None => format!("must be a string, got {}", describe(value)),
    };
    Err(refuse(
        ctx,
        host,
        BotErrorKind::BadArgument,
        format!("{call}: {name} {reason}"),
    ))
}

/// A JavaScript string as Rust text. JavaScript strings may hold lone surrogates, which have no
/// UTF-8 form; those are refused rather than silently replaced, so a bot's text is never altered.
fn rust_string(text: &rquickjs::String<'_>) -> Result<String, String> {
    text.to_string()
        .map_err(|_| "holds a lone surrogate (invalid Unicode)".to_owned())
}

/// Reads an integral number argument within `min..=max`.
fn integer_arg(
    ctx: &Ctx<'_>,
    host: &Host,
    value: Option<&Value<'_>>,
    call: &str,
    name: &str,
    bounds: (i64, i64),
) -> rquickjs::Result<i64> {
    let (min, max) = (bounds.0 as f64, bounds.1 as f64);
    match value.and_then(|value| value.as_number()) {
        Some(number) if number.fract() == 0.0 && (min..=max).contains(&number) => Ok(number as i64),
        _ => {
            let got = value.map_or_else(
                || "nothing".to_owned(),
                |value| match value.as_number() {
                    Some(number) => number.to_string(),
                    None => value.type_name().to_owned(),
                },
            );
            Err(refuse_with(
                ctx,
                host,
                ctx_rules::bad_integer(call, name, bounds, &got),
            ))
        }
    }
}

fn random_int<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::RANDOM_INT;
    let bounds = ctx_rules::RANDOM_INT_BOUNDS;
    let lo = integer_arg(ctx, host, args.first(), call, "lo", bounds)?;
    let hi = integer_arg(ctx, host, args.get(1), call, "hi", bounds)?;
    let drawn = ctx_rules::random_int(&mut host.borrow_mut().random, lo, hi);
    match drawn {
        Ok(drawn) => Ok(Value::new_number(ctx.clone(), drawn as f64)),
        Err(refusal) => Err(refuse_with(ctx, host, refusal)),
    }
}

fn random_bytes<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let count = integer_arg(
        ctx,
        host,
        args.first(),
        ctx_rules::RANDOM_BYTES,
        "n",
        ctx_rules::RANDOM_BYTES_BOUNDS,
    )?;
    let hex = ctx_rules::random_bytes(&mut host.borrow_mut().random, count);
    string_value(ctx, &hex)
}

fn commit<'js>(ctx: &Ctx<'js>, host: &Host, args: &[Value<'js>]) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::COMMIT;
    let value = string_arg(ctx, host, args.first(), call, "value")?;
    let salt_hex = string_arg(ctx, host, args.get(1), call, "salt_hex")?;
    let digest = {
        let state = host.borrow();
        ctx_rules::commit(&state.channel_id, &state.bot_slot, &value, &salt_hex)
    };
    match digest {
        Ok(digest) => string_value(ctx, &digest),
        Err(refusal) => Err(refuse_with(ctx, host, refusal)),
    }
}

/// `ctx.end(reason)`: the reason is optional (`undefined` or `null` give none), else a string.
/// The handler goes on; the end takes effect only if the event succeeds.
fn end<'js>(ctx: &Ctx<'js>, host: &Host, args: &[Value<'js>]) -> rquickjs::Result<Value<'js>> {
    let reason = match args.first() {
        None => None,
        Some(value) if value.is_undefined() || value.is_null() => None,
        Some(value) if value.is_string() => Some(string_arg(
            ctx,
            host,
            Some(value),
            ctx_rules::END,
            "reason",
        )?),
        Some(value) => {
            return Err(refuse_with(
                ctx,
                host,
                ctx_rules::bad_argument(
                    ctx_rules::END,
                    &format!("reason must be a string or null, got {}", value.type_name()),
                ),
            ));
        }
    };
    match ctx_rules::end(reason) {
        Ok(end) => {
            host.borrow_mut().end = Some(end);
            Ok(Value::new_undefined(ctx.clone()))
        }
        Err(refusal) => Err(refuse_with(ctx, host, refusal)),
    }
}

/// `ctx.set_timer(ms, tag)`: `ms` a whole number of milliseconds, `tag` a string. Like the end,
/// the request takes effect only if the event succeeds.
fn set_timer<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::SET_TIMER;
    check_timer_room(ctx, host, call)?;
    let ms = integer_arg(
        ctx,
        host,
        args.first(),
        call,
        "ms",
        ctx_rules::TIMER_MS_BOUNDS,
    )?;
    let tag = string_arg(ctx, host, args.get(1), call, "tag")?;
    let ms = ms.unsigned_abs();
    record_timer(ctx, host, TimerRequest::Set { tag, ms })
}

/// `ctx.cancel_timer(tag)`: cancelling a timer that is not pending is no error, since the bot
/// cannot know whether it already fired.
fn cancel_timer<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::CANCEL_TIMER;
    check_timer_room(ctx, host, call)?;
    let tag = string_arg(ctx, host, args.first(), call, "tag")?;
    record_timer(ctx, host, TimerRequest::Cancel { tag })
}

/// `ctx.request_fetch(url, options)`: `url` a string, `options` absent, `null` or `{tag}`. Like
/// timers, the request takes effect only if the event succeeds; the result is a later event.
fn request_fetch<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::REQUEST_FETCH;
    let made = host.borrow().fetches.len();
    ctx_rules::check_fetch_room(made).map_err(|refusal| refuse_with(ctx, host, refusal))?;
    let url = string_arg(ctx, host, args.first(), call, "url")?;
    let tag = match args.get(1) {
        None => None,
        Some(options) if options.is_undefined() || options.is_null() => None,
        Some(options) => {
            let Some(object) = options.as_object() else {
                return Err(refuse(
                    ctx,
                    host,
                    BotErrorKind::BadArgument,
                    format!(
                        "{call}: options must be an object, got {}",
                        options.type_name()
                    ),
                ));
            };
            for key in object.keys::<String>() {
                let key = key?;
                if key != "tag" {
                    return Err(refuse(
                        ctx,
                        host,
                        BotErrorKind::BadArgument,
                        format!("{call}: options has an unknown field {key:?} (only \"tag\")"),
                    ));
                }
            }
            let tag: Value<'js> = object.get("tag")?;
            if tag.is_undefined() {
                None
            } else {
                Some(string_arg(ctx, host, Some(&tag), call, "options.tag")?)
            }
        }
    };
    let request = FetchRequest {
        url,
        tag: tag.unwrap_or_else(|| ctx_rules::DEFAULT_FETCH_TAG.to_owned()),
    };
    match ctx_rules::fetch(request) {
        Ok(request) => {
            host.borrow_mut().fetches.push(request);
            Ok(Value::new_undefined(ctx.clone()))
        }
        Err(refusal) => Err(refuse_with(ctx, host, refusal)),
    }
}

fn check_timer_room(ctx: &Ctx<'_>, host: &Host, call: &str) -> rquickjs::Result<()> {
    let made = host.borrow().timers.len();
    ctx_rules::check_timer_room(made, call).map_err(|refusal| refuse_with(ctx, host, refusal))
}

fn record_timer<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    request: TimerRequest,
) -> rquickjs::Result<Value<'js>> {
    match ctx_rules::timer(request) {
        Ok(request) => {
            host.borrow_mut().timers.push(request);
            Ok(Value::new_undefined(ctx.clone()))
        }
        Err(refusal) => Err(refuse_with(ctx, host, refusal)),
    }
}

/// Serializes a bot value to JSON with the engine's own `JSON.stringify` (the C function, which
/// a bot cannot replace; `toJSON` methods still apply, as they would for any JSON).
///
/// `Ok(None)` means the value has no JSON form (`undefined`, a function, a symbol). A failure
/// caused by the bot's value (a cycle, a BigInt, a throwing `toJSON`) is returned as `Err(Ok(message))`;
/// a failure that must propagate unchanged (the time budget, out of memory) as `Err(Err(error))`.
fn to_json<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    value: &Value<'js>,
) -> Result<Option<serde_json::Value>, Result<String, rquickjs::Error>> {
    let text = match ctx.json_stringify(value.clone()) {
        Ok(Some(text)) => text.to_string().map_err(Err)?,
        Ok(None) => return Ok(None),
        Err(rquickjs::Error::Exception) => {
            let thrown = ctx.catch();
            let message = thrown
                .as_object()
                .and_then(|object| object.get::<_, Option<String>>("message").ok().flatten())
                .unwrap_or_else(|| "the value threw while being serialized".to_owned());
            if host.borrow().budget_spent.get() || message == "out of memory" {
                return Err(Err(ctx.throw(thrown)));
            }
            return Err(Ok(message));
        }
        Err(other) => return Err(Err(other)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|error| Ok(error.to_string()))
}

fn set_state<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    args: &[Value<'js>],
) -> rquickjs::Result<Value<'js>> {
    let call = ctx_rules::SET_STATE;
    let Some(value) = args.first() else {
        return Err(refuse(
            ctx,
            host,
            BotErrorKind::BadState,
            format!("{call}: pass the new state (any JSON value; null clears it)"),
        ));
    };
    let json = match to_json(ctx, host, value) {
        Ok(Some(json)) => json,
        Ok(None) => {
            return Err(refuse(
                ctx,
                host,
                BotErrorKind::BadState,
                format!(
                    "{call}: a {} has no JSON form; use null to clear the state",
                    value.type_name()
                ),
            ));
        }
        Err(Ok(reason)) => {
            return Err(refuse(
                ctx,
                host,
                BotErrorKind::BadState,
                format!("{call}: the state is not JSON: {reason}"),
            ));
        }
        Err(Err(propagate)) => return Err(propagate),
    };
    let max_state_bytes = host.borrow().max_state_bytes;
    let text = match ctx_rules::state_text(&json, max_state_bytes) {
        Ok(text) => text,
        Err(refusal) => return Err(refuse_with(ctx, host, refusal)),
    };
    let mut state = host.borrow_mut();
    state.state_json = text;
    state.new_state = Some(json);
    Ok(Value::new_undefined(ctx.clone()))
}

/// Checks `ctx.post_to`'s first argument against the channel's slots.
fn recipient(ctx: &Ctx<'_>, host: &Host, value: Option<&Value<'_>>) -> rquickjs::Result<SlotLabel> {
    let label = string_arg(ctx, host, value, ctx_rules::POST_TO, "slot")?;
    let known = ctx_rules::recipient(&host.borrow().slot_labels, &label);
    known.map_err(|refusal| refuse_with(ctx, host, refusal))
}

fn post<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    to: Option<SlotLabel>,
    body: Option<&Value<'js>>,
) -> rquickjs::Result<Value<'js>> {
    let call = if to.is_some() {
        ctx_rules::POST_TO
    } else {
        ctx_rules::POST
    };
    let room = || {
        let state = host.borrow();
        ctx_rules::check_room(state.posts.len(), state.max_posts, call)
    };
    // Checked before reading the body so that a flood stops cheaply, and again after, because
    // reading the body may run bot code (getters) that posts too.
    room().map_err(|refusal| refuse_with(ctx, host, refusal))?;
    let body = match read_body(ctx, host, body) {
        Ok(body) => body,
        Err(Ok(reason)) => return Err(refuse_with(ctx, host, ctx_rules::bad_post(call, &reason))),
        Err(Err(propagate)) => return Err(propagate),
    };
    room().map_err(|refusal| refuse_with(ctx, host, refusal))?;
    host.borrow_mut().posts.push(BotPost { to, body });
    Ok(Value::new_undefined(ctx.clone()))
}

/// Reads a post body: a string (the text) or an object with `text` and/or `data`.
fn read_body<'js>(
    ctx: &Ctx<'js>,
    host: &Host,
    value: Option<&Value<'js>>,
) -> Result<Body, Result<String, rquickjs::Error>> {
    const SHAPE: &str = "body must be a string or an object {text?: string, data?: object}";
    let Some(value) = value else {
        return Err(Ok(format!("{SHAPE}, got nothing")));
    };
    if let Some(text) = value.as_string() {
        let text = rust_string(text).map_err(|reason| Ok(format!("the text {reason}")))?;
        return ctx_rules::body(Some(text), None).map_err(Ok);
    }
    let Some(object) = value
        .as_object()
        .filter(|_| !value.is_array() && !value.is_function())
    else {
        return Err(Ok(format!("{SHAPE}, got {}", value.type_name())));
    };
    let mut text = None;
    let mut data = None;
    for key in object.keys::<String>() {
        let key = key.map_err(Err)?;
        match key.as_str() {
            "text" | "data" => {}
            other => {
                return Err(Ok(format!(
                    "{SHAPE}; unknown field {other:?} (put structured content under data)"
                )));
            }
        }
    }
    let text_value: Value = object.get("text").map_err(Err)?;
    if !text_value.is_undefined() && !text_value.is_null() {
        match text_value.as_string() {
            Some(js_text) => {
                text = Some(rust_string(js_text).map_err(|reason| Ok(format!("text {reason}")))?)
            }
            None => {
                return Err(Ok(format!(
                    "text must be a string, got {}",
                    text_value.type_name()
                )));
            }
        }
    }
    let data_value: Value = object.get("data").map_err(Err)?;
    if !data_value.is_undefined() && !data_value.is_null() {
        if !data_value.is_object() || data_value.is_array() || data_value.is_function() {
            return Err(Ok(format!(
                "data must be a plain object, got {}",
                data_value.type_name()
            )));
        }
        match to_json(ctx, host, &data_value) {
            Ok(Some(serde_json::Value::Object(map))) => data = Some(map),
            Ok(_) => return Err(Ok("data must serialize to a JSON object".to_owned())),
            Err(Ok(reason)) => return Err(Ok(format!("data is not JSON: {reason}"))),
            Err(Err(propagate)) => return Err(Err(propagate)),
        }
    }
    ctx_rules::body(text, data).map_err(Ok)
}
