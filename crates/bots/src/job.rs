//! A [`Job`]: everything one bot event (or one source check) needs, self-contained, and the wire
//! form in which it travels to a worker process and its [`Outcome`] travels back.
//!
//! The wire form is JSON. Requests come from the server, which the worker trusts. Replies come
//! from a process that ran untrusted code and may have been subverted, so [`decode_outcome`]
//! checks every field as the runtimes' own host functions would: slot labels, body caps, the end
//! reason's size, the timer requests, error kinds and message lengths. A subverted worker can
//! lie about its bot's reaction, which a replay from the transcript exposes, but it cannot hand
//! the server a value the server would never have produced itself.

use domain::{Body, ChannelId, Seq, SlotKind, SlotLabel, Timestamp};
use serde::{Deserialize, Serialize};

use crate::ctx_rules;
use crate::error::{BotError, BotErrorKind};
use crate::event::{
    BotPost, BotSeed, Call, Event, EventContext, FetchRequest, Player, Reaction, SlotInfo,
    TimerRequest,
};
use crate::limits::Limits;
use crate::sandbox::{placeholder_context, run_call};
use crate::source::{BotSource, Language};

/// One unit of bot work.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub bot: BotSource,
    pub context: EventContext,
    /// `None` only loads the bot: the check made when code is attached.
    pub call: Option<Call>,
    pub limits: Limits,
}

/// What a job produced: a reaction, or why the event failed.
pub type Outcome = Result<Reaction, BotError>;

impl Job {
    /// The check of `bot`'s source: load it, find its class, call nothing.
    pub fn check(bot: BotSource, limits: Limits) -> Self {
        Job {
            bot,
            context: placeholder_context(),
            call: None,
            limits,
        }
    }

    /// The job of one event.
    pub fn event(bot: BotSource, context: EventContext, event: &Event, limits: Limits) -> Self {
        Job {
            bot,
            context,
            call: Some(event.call()),
            limits,
        }
    }

    /// Runs the job in this thread. Only a worker process should call this.
    pub fn run(&self) -> Outcome {
        run_call(&self.bot, &self.context, self.call.as_ref(), &self.limits)
    }

    /// The job's wire form.
    pub fn encode(&self) -> Vec<u8> {
        let context = &self.context;
        let wire = WireJob {
            name: self.bot.name().to_owned(),
            source: self.bot.source().to_owned(),
            language: self.bot.language().as_str().to_owned(),
            channel_id: context.channel_id.as_str().to_owned(),
            bot_slot: context.bot_slot.as_str().to_owned(),
            event_seq: context.event_seq.0,
            now: context.now.0,
            reveal_private: context.reveal_private,
            slots: context
                .slots
                .iter()
                .map(|slot| WireSlot {
                    slot: slot.slot.as_str().to_owned(),
                    kind: slot.kind.as_str().to_owned(),
                    holder: slot.holder.clone(),
                })
                .collect(),
            players: context
                .players
                .iter()
                .map(|player| WirePlayer {
                    slot: player.slot.as_str().to_owned(),
                    name: player.name.clone(),
                })
                .collect(),
            params: context.params.clone(),
            state: context.state.clone(),
            seed: hex::encode(context.seed.0),
            call: self.call.clone(),
            limits: self.limits.clone(),
        };
        serde_json::to_vec(&wire).expect("a job always serializes")
    }

    /// Reads a job sent by the server.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let wire: WireJob =
            serde_json::from_slice(bytes).map_err(|error| format!("bad job: {error}"))?;
        let language = Language::parse(&wire.language)
            .ok_or_else(|| format!("bad job: unknown language {:?}", wire.language))?;
        let bot = BotSource::with_language(wire.name, wire.source, language)
            .map_err(|error| format!("bad job: {error}"))?;
        let label = |raw: String| SlotLabel::parse(&raw).map_err(|error| error.to_string());
        let slots = wire
            .slots
            .into_iter()
            .map(|slot| {
                Ok(SlotInfo {
                    kind: SlotKind::from_stored(&slot.kind)
                        .ok_or_else(|| format!("bad job: slot kind {:?}", slot.kind))?,
                    slot: label(slot.slot)?,
                    holder: slot.holder,
                })
            })
            .collect::<Result<_, String>>()?;
        let players = wire
            .players
            .into_iter()
            .map(|player| {
                Ok(Player {
                    slot: label(player.slot)?,
                    name: player.name,
                })
            })
            .collect::<Result<_, String>>()?;
        let seed = hex::decode(&wire.seed)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or("bad job: the seed must be 32 bytes of hex")?;
        Ok(Job {
            bot,
            context: EventContext {
                channel_id: ChannelId::parse(&wire.channel_id)
                    .map_err(|_| "bad job: channel id".to_owned())?,
                bot_slot: label(wire.bot_slot)?,
                event_seq: Seq(wire.event_seq),
                now: Timestamp(wire.now),
                slots,
                players,
                params: wire.params,
                state: wire.state,
                seed: BotSeed(seed),
                reveal_private: wire.reveal_private,
            },
            call: wire.call,
            limits: wire.limits,
        })
    }
}

/// The wire form of an outcome, as a worker sends it.
pub fn encode_outcome(outcome: &Outcome) -> Vec<u8> {
    let wire = match outcome {
        Ok(reaction) => WireOutcome::Ok {
            posts: reaction
                .posts
                .iter()
                .map(|post| WirePost {
                    to: post.to.as_ref().map(|slot| slot.as_str().to_owned()),
                    text: post.body.text.clone(),
                    data: post.body.data.clone(),
                })
                .collect(),
            state: reaction.state.clone(),
            end: reaction.end.as_ref().map(|end| WireEnd {
                reason: end.reason.clone(),
            }),
            timers: reaction.timers.iter().map(WireTimer::from).collect(),
            fetches: reaction
                .fetches
                .iter()
                .map(|fetch| WireFetch {
                    url: fetch.url.clone(),
                    tag: fetch.tag.clone(),
                })
                .collect(),
        },
        Err(error) => WireOutcome::Err {
            kind: error.kind.as_str().to_owned(),
            message: error.message.clone(),
            line: error.line,
        },
    };
    serde_json::to_vec(&wire).expect("an outcome always serializes")
}

/// Reads an outcome sent by a worker, checking it as if the worker were hostile. `limits` are
/// the job's: a reply with more posts or a larger state than they allow is refused.
pub fn decode_outcome(bytes: &[u8], limits: &Limits) -> Result<Outcome, String> {
    let wire: WireOutcome =
        serde_json::from_slice(bytes).map_err(|error| format!("bad reply: {error}"))?;
    match wire {
        WireOutcome::Err {
            kind,
            message,
            line,
        } => {
            let kind = BotErrorKind::parse(&kind)
                .ok_or_else(|| format!("bad reply: unknown error kind {kind:?}"))?;
            Ok(Err(BotError::new(kind, message).at_line(line)))
        }
        WireOutcome::Ok {
            posts,
            state,
            end,
            timers,
            fetches,
        } => {
            if posts.len() > limits.max_posts {
                return Err(format!("bad reply: {} posts", posts.len()));
            }
            if timers.len() > ctx_rules::MAX_TIMER_CALLS {
                return Err(format!("bad reply: {} timer calls", timers.len()));
            }
            if fetches.len() > ctx_rules::MAX_FETCH_CALLS {
                return Err(format!("bad reply: {} fetch calls", fetches.len()));
            }
            if let Some(state) = &state
                && state.to_string().len() > limits.max_state_bytes
            {
                return Err("bad reply: the state is over its cap".to_owned());
            }
            let posts = posts
                .into_iter()
                .map(|post| {
                    let to = post
                        .to
                        .map(|raw| SlotLabel::parse(&raw))
                        .transpose()
                        .map_err(|error| format!("bad reply: {error}"))?;
                    let body = Body::new(post.text, post.data)
                        .map_err(|error| format!("bad reply: {error}"))?;
                    Ok(BotPost { to, body })
                })
                .collect::<Result<_, String>>()?;
            // The same rule as `ctx.end` itself, so a reason over the cap is refused here too.
            let end = end
                .map(|end| ctx_rules::end(end.reason))
                .transpose()
                .map_err(|error| format!("bad reply: {}", error.message))?;
            // Each request through the same rule as `ctx.set_timer` and `ctx.cancel_timer`.
            let timers = timers
                .into_iter()
                .map(|timer| ctx_rules::timer(timer.into()))
                .collect::<Result<_, _>>()
                .map_err(|error| format!("bad reply: {}", error.message))?;
            // Each request through the same rule as `ctx.request_fetch`.
            let fetches = fetches
                .into_iter()
                .map(|fetch| {
                    ctx_rules::fetch(FetchRequest {
                        url: fetch.url,
                        tag: fetch.tag,
                    })
                })
                .collect::<Result<_, _>>()
                .map_err(|error| format!("bad reply: {}", error.message))?;
            Ok(Ok(Reaction {
                posts,
                state,
                end,
                timers,
                fetches,
            }))
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireJob {
    name: String,
    source: String,
    language: String,
    channel_id: String,
    bot_slot: String,
    event_seq: i64,
    now: i64,
    reveal_private: bool,
    slots: Vec<WireSlot>,
    players: Vec<WirePlayer>,
    params: serde_json::Value,
    state: Option<serde_json::Value>,
    seed: String,
    call: Option<Call>,
    limits: Limits,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireSlot {
    slot: String,
    kind: String,
    holder: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePlayer {
    slot: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum WireOutcome {
    Ok {
        posts: Vec<WirePost>,
        state: Option<serde_json::Value>,
        /// Present when the bot ended its run; a failed event has none.
        end: Option<WireEnd>,
        /// Required, even when empty, so that a reply cut short is not read as "no timers".
        timers: Vec<WireTimer>,
        /// Required too, for the same reason.
        fetches: Vec<WireFetch>,
    },
    Err {
        kind: String,
        message: String,
        line: Option<u32>,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireFetch {
    url: String,
    tag: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnd {
    reason: Option<String>,
}

/// A [`TimerRequest`] on the wire. Its own type, like the other wire types, so that the reply
/// refuses unknown fields whatever serde attributes the public type carries.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
enum WireTimer {
    Set { tag: String, ms: u64 },
    Cancel { tag: String },
}

impl From<&TimerRequest> for WireTimer {
    fn from(request: &TimerRequest) -> Self {
        match request.clone() {
            TimerRequest::Set { tag, ms } => WireTimer::Set { tag, ms },
            TimerRequest::Cancel { tag } => WireTimer::Cancel { tag },
        }
    }
}

impl From<WireTimer> for TimerRequest {
    fn from(wire: WireTimer) -> Self {
        match wire {
            WireTimer::Set { tag, ms } => TimerRequest::Set { tag, ms },
            WireTimer::Cancel { tag } => TimerRequest::Cancel { tag },
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePost {
    to: Option<String>,
    text: Option<String>,
    data: Option<serde_json::Map<String, serde_json::Value>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctx_rules::{
        MAX_END_REASON_BYTES, MAX_FETCH_CALLS, MAX_FETCH_URL_BYTES, MAX_TIMER_CALLS, MAX_TIMER_MS,
        MAX_TIMER_TAG_BYTES,
    };
    use crate::event::RunEnd;

    fn job() -> Job {
        let bot = BotSource::new("echo.js", "class Bot { on_init() { } }").expect("small");
        let mut context = placeholder_context();
        context.players = vec![Player {
            slot: SlotLabel::parse("alice").expect("valid"),
            name: "Alice".to_owned(),
        }];
        context.state = Some(serde_json::json!({"round": 2}));
        context.seed = BotSeed([7; 32]);
        Job {
            bot,
            context,
            call: Some(Event::Init.call()),
            limits: Limits::default(),
        }
    }

    #[test]
    fn jobs_cross_the_wire_unchanged() {
        let job = job();
        let decoded = Job::decode(&job.encode()).expect("decodes");
        assert_eq!(decoded, job);
    }

    #[test]
    fn outcomes_cross_the_wire_unchanged() {
        let reaction = Reaction {
            posts: vec![BotPost {
                to: Some(SlotLabel::parse("alice").expect("valid")),
                body: Body::new(Some("hi".to_owned()), None).expect("valid"),
            }],
            state: Some(serde_json::json!([1, 2])),
            end: None,
            timers: vec![
                TimerRequest::Set {
                    tag: "turn".to_owned(),
                    ms: 30_000,
                },
                TimerRequest::Set {
                    tag: "turn".to_owned(),
                    ms: 1,
                },
                TimerRequest::Cancel {
                    tag: "é".repeat(MAX_TIMER_TAG_BYTES / 2),
                },
            ],
            fetches: vec![FetchRequest {
                url: "https://example.com/a?b=c".to_owned(),
                tag: "evidence".to_owned(),
            }],
        };
        let limits = Limits::default();
        let back = decode_outcome(&encode_outcome(&Ok(reaction.clone())), &limits);
        assert_eq!(back, Ok(Ok(reaction)));
        let error = BotError::new(BotErrorKind::Threw, "boom").at_line(Some(3));
        let back = decode_outcome(&encode_outcome(&Err(error.clone())), &limits);
        assert_eq!(back, Ok(Err(error)));
    }

    #[test]
    fn an_end_crosses_the_wire_with_or_without_its_reason() {
        let limits = Limits::default();
        let longest = "é".repeat(MAX_END_REASON_BYTES / 2);
        for reason in [None, Some("alice wins".to_owned()), Some(longest)] {
            let reaction = Reaction {
                posts: vec![BotPost {
                    to: None,
                    body: Body::new(Some("game over".to_owned()), None).expect("valid"),
                }],
                state: Some(serde_json::json!({"done": true})),
                end: Some(RunEnd { reason }),
                timers: Vec::new(),
                fetches: Vec::new(),
            };
            let bytes = encode_outcome(&Ok(reaction.clone()));
            assert_eq!(decode_outcome(&bytes, &limits), Ok(Ok(reaction)));
        }
        let error = BotError::new(BotErrorKind::BadArgument, "ctx.end(reason): too long");
        let bytes = encode_outcome(&Err(error.clone()));
        assert_eq!(decode_outcome(&bytes, &limits), Ok(Err(error)));
    }

    #[test]
    fn a_subverted_worker_cannot_end_a_run_with_what_ctx_end_would_refuse() {
        let limits = Limits::default();
        let reply = |end: serde_json::Value| {
            let reply = serde_json::json!({"ok": {"posts": [], "state": null, "end": end, "timers": [], "fetches": []}});
            decode_outcome(&serde_json::to_vec(&reply).expect("json"), &limits)
        };
        let at_cap = "r".repeat(MAX_END_REASON_BYTES);
        assert_eq!(
            reply(serde_json::json!({"reason": at_cap})).map(|outcome| outcome.map(|r| r.end)),
            Ok(Ok(Some(RunEnd {
                reason: Some(at_cap)
            })))
        );
        // Counted in bytes: 101 two-byte characters are 202 bytes.
        for over in ["r".repeat(MAX_END_REASON_BYTES + 1), "é".repeat(101)] {
            let refused = reply(serde_json::json!({"reason": over}));
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|error| error.contains("the reason is")),
                "accepted a reason of {} bytes: {refused:?}",
                over.len()
            );
        }
        for malformed in [
            serde_json::json!({"reason": 7}),
            serde_json::json!({"reason": null, "winner": "mallory"}),
            serde_json::json!(true),
            serde_json::json!("alice wins"),
        ] {
            assert!(
                reply(malformed.clone()).is_err(),
                "accepted end {malformed}"
            );
        }
        let errored = serde_json::json!({"err": {"kind": "threw", "message": "x", "line": null, "end": {"reason": null}}});
        assert!(
            decode_outcome(&serde_json::to_vec(&errored).expect("json"), &limits).is_err(),
            "a failed event carried an end"
        );
    }

    #[test]
    fn a_subverted_worker_cannot_smuggle_what_a_runtime_would_refuse() {
        let limits = Limits::default();
        let big_text = "x".repeat(domain::limits::MAX_TEXT_BYTES + 1);
        let too_many: Vec<_> = (0..=limits.max_posts)
            .map(|_| serde_json::json!({"to": null, "text": "spam", "data": null}))
            .collect();
        let replies = [
            serde_json::json!({"ok": {"posts": [{"to": "../alice", "text": "x", "data": null}], "state": null, "timers": [], "fetches": []}}),
            serde_json::json!({"ok": {"posts": [{"to": null, "text": big_text, "data": null}], "state": null, "timers": [], "fetches": []}}),
            serde_json::json!({"ok": {"posts": too_many, "state": null, "timers": [], "fetches": []}}),
            serde_json::json!({"ok": {"posts": [], "state": "s".repeat(limits.max_state_bytes), "timers": [], "fetches": []}}),
            serde_json::json!({"ok": {"posts": [], "state": null, "timers": [], "kind": "system"}}),
            serde_json::json!({"err": {"kind": "root", "message": "x", "line": null}}),
            serde_json::json!("ok"),
        ];
        for reply in replies {
            let bytes = serde_json::to_vec(&reply).expect("json");
            assert!(decode_outcome(&bytes, &limits).is_err(), "accepted {reply}");
        }
        let long =
            serde_json::json!({"err": {"kind": "threw", "message": "m".repeat(10_000), "line": 1}});
        let error = decode_outcome(&serde_json::to_vec(&long).expect("json"), &limits)
            .expect("well formed")
            .expect_err("an error");
        assert!(error.message.chars().count() <= crate::error::MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn a_subverted_worker_cannot_report_timers_ctx_would_refuse() {
        let limits = Limits::default();
        let reply = |timers: serde_json::Value| {
            let reply = serde_json::json!({"ok": {"posts": [], "state": null, "timers": timers, "fetches": []}});
            decode_outcome(&serde_json::to_vec(&reply).expect("json"), &limits)
        };
        let widest_tag = "t".repeat(MAX_TIMER_TAG_BYTES);
        let at_caps: Vec<_> = (0..MAX_TIMER_CALLS)
            .map(|_| serde_json::json!({"op": "set", "tag": widest_tag, "ms": MAX_TIMER_MS}))
            .collect();
        let accepted = reply(serde_json::json!(at_caps)).map(|outcome| outcome.map(|r| r.timers));
        let expected = vec![
            TimerRequest::Set {
                tag: widest_tag.clone(),
                ms: MAX_TIMER_MS,
            };
            MAX_TIMER_CALLS
        ];
        assert_eq!(accepted, Ok(Ok(expected)), "every cap is inclusive");

        let one_call_too_many: Vec<_> = (0..=MAX_TIMER_CALLS)
            .map(|_| serde_json::json!({"op": "cancel", "tag": "t"}))
            .collect();
        // Counted in bytes: 33 two-byte characters are 66 bytes.
        let wide_tag = "é".repeat(MAX_TIMER_TAG_BYTES / 2 + 1);
        for refused in [
            serde_json::json!(one_call_too_many),
            serde_json::json!([{"op": "set", "tag": "t", "ms": 0}]),
            serde_json::json!([{"op": "set", "tag": "t", "ms": MAX_TIMER_MS + 1}]),
            serde_json::json!([{"op": "set", "tag": "t", "ms": -5}]),
            serde_json::json!([{"op": "set", "tag": "t", "ms": 1.5}]),
            serde_json::json!([{"op": "set", "tag": "", "ms": 10}]),
            serde_json::json!([{"op": "cancel", "tag": ""}]),
            serde_json::json!([{"op": "cancel", "tag": wide_tag}]),
            serde_json::json!([{"op": "set", "tag": "t"}]),
            serde_json::json!([{"op": "set", "tag": "t", "ms": 10, "at": 0}]),
            serde_json::json!([{"op": "fire", "tag": "t"}]),
            serde_json::json!([{"tag": "t"}]),
            serde_json::json!(null),
        ] {
            let outcome = reply(refused.clone());
            assert!(outcome.is_err(), "accepted timers {refused}: {outcome:?}");
        }
        let no_timers = serde_json::json!({"ok": {"posts": [], "state": null}});
        assert!(
            decode_outcome(&serde_json::to_vec(&no_timers).expect("json"), &limits).is_err(),
            "a reply without its timers was read as having none"
        );
    }

    #[test]
    fn a_subverted_worker_cannot_report_fetches_ctx_would_refuse() {
        let limits = Limits::default();
        let reply = |fetches: serde_json::Value| {
            let reply = serde_json::json!({"ok": {"posts": [], "state": null, "timers": [], "fetches": fetches}});
            decode_outcome(&serde_json::to_vec(&reply).expect("json"), &limits)
        };
        let longest = format!("https://e.com/{}", "a".repeat(MAX_FETCH_URL_BYTES - 14));
        let at_caps: Vec<_> = (0..MAX_FETCH_CALLS)
            .map(|_| serde_json::json!({"url": longest, "tag": "t"}))
            .collect();
        let accepted = reply(serde_json::json!(at_caps)).map(|outcome| outcome.map(|r| r.fetches));
        let expected = vec![
            FetchRequest {
                url: longest.clone(),
                tag: "t".to_owned()
            };
            MAX_FETCH_CALLS
        ];
        assert_eq!(accepted, Ok(Ok(expected)));
        let one_too_many: Vec<_> = (0..=MAX_FETCH_CALLS)
            .map(|_| serde_json::json!({"url": "https://e.com/", "tag": "t"}))
            .collect();
        for refused in [
            serde_json::json!(one_too_many),
            serde_json::json!([{"url": format!("{longest}a"), "tag": "t"}]),
            serde_json::json!([{"url": "http://e.com/", "tag": "t"}]),
            serde_json::json!([{"url": "https://", "tag": "t"}]),
            serde_json::json!([{"url": "https://e.com/a b", "tag": "t"}]),
            serde_json::json!([{"url": "https://e.com/\n", "tag": "t"}]),
            serde_json::json!([{"url": "https://e.com/", "tag": ""}]),
            serde_json::json!([{"url": "https://e.com/", "tag": "t".repeat(MAX_TIMER_TAG_BYTES + 1)}]),
            serde_json::json!([{"url": "https://e.com/", "tag": "t", "method": "POST"}]),
            serde_json::json!(null),
        ] {
            let outcome = reply(refused.clone());
            assert!(outcome.is_err(), "accepted fetches {refused}: {outcome:?}");
        }
        let no_fetches = serde_json::json!({"ok": {"posts": [], "state": null, "timers": []}});
        assert!(
            decode_outcome(&serde_json::to_vec(&no_fetches).expect("json"), &limits).is_err(),
            "a reply without its fetches was read as having none"
        );
    }
}
