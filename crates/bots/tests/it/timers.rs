//! Timers: `ctx.set_timer(ms, tag)` and `ctx.cancel_timer(tag)` in JavaScript and Python, the
//! `on_timer(tag)` event, and which `timer_fired` notices are a bot's event.
//!
//! Most bodies below are written once in the common ground of the two languages (calls and
//! literals, one statement a line, each ending in `;`, which Python allows), and run in both,
//! so the two runtimes are held to the same rules by the same cases.

use bots::{
    BotError, BotErrorKind, BotSource, Event, Language, MAX_TIMER_CALLS, MAX_TIMER_MS,
    MAX_TIMER_TAG_BYTES, Reaction, TimerRequest,
};
use domain::{Message, MessageKind, Notice, Seq, Timestamp};
use serde_json::json;

use crate::support::{NOW_MS, assert_contained, context, relaxed_limits, run_event, slot, texts};

const LANGUAGES: [Language; 2] = [Language::JavaScript, Language::Python];

/// A bot in `language` whose `on_init()` runs `on_init` and, if given, whose `on_timer(tag)`
/// runs `on_timer`; both bodies have `ctx` in scope.
fn bot(language: Language, on_init: &str, on_timer: Option<&str>) -> BotSource {
    let code = match language {
        Language::JavaScript => {
            let timer = on_timer.map_or_else(String::new, |body| {
                format!("on_timer(tag) {{ const ctx = this.ctx;\n{body}\n}}")
            });
            format!(
                "class Bot {{ constructor(ctx) {{ this.ctx = ctx; }}\n\
                 on_init() {{ const ctx = this.ctx;\n{on_init}\n}}\n{timer} }}"
            )
        }
        Language::Python => {
            let method = |signature: &str, body: &str| {
                let mut method = format!("    def {signature}:\n        ctx = self.ctx\n");
                for line in body.lines() {
                    method.push_str("        ");
                    method.push_str(line);
                    method.push('\n');
                }
                method
            };
            let mut code = String::from(
                "class Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n",
            );
            code.push_str(&method("on_init(self)", on_init));
            if let Some(body) = on_timer {
                code.push_str(&method("on_timer(self, tag)", body));
            }
            code
        }
    };
    BotSource::with_language("timers", code, language).expect("test sources are small")
}

fn init(language: Language, body: &str) -> Result<Reaction, BotError> {
    let bot = bot(language, body, None);
    run_event(&bot, &context(), &Event::Init, &relaxed_limits())
}

fn timer_event(tag: &str) -> Event {
    Event::Timer {
        tag: tag.to_owned(),
    }
}

fn set(tag: &str, ms: u64) -> TimerRequest {
    TimerRequest::Set {
        tag: tag.to_owned(),
        ms,
    }
}

fn cancel(tag: &str) -> TimerRequest {
    TimerRequest::Cancel {
        tag: tag.to_owned(),
    }
}

#[track_caller]
fn expect_ok(language: Language, result: Result<Reaction, BotError>) -> Reaction {
    result.unwrap_or_else(|error| panic!("{language:?}: expected success, got {error}"))
}

#[test]
fn timer_calls_are_reported_in_call_order_with_the_events_posts_and_state() {
    let body = "ctx.post('your move');\n\
                ctx.set_timer(30000, 'turn');\n\
                ctx.set_timer(5000, 'turn');\n\
                ctx.set_timer(60000, 'game');\n\
                ctx.cancel_timer('game');\n\
                ctx.cancel_timer('never set');\n\
                ctx.set_state({'turn': 1});";
    for language in LANGUAGES {
        let reaction = expect_ok(language, init(language, body));
        assert_eq!(
            reaction.timers,
            [
                set("turn", 30_000),
                // Both sets of one tag are reported: the service applies them in order, so
                // the second replaces the first.
                set("turn", 5_000),
                set("game", 60_000),
                cancel("game"),
                // The bot cannot know whether a timer already fired, so cancelling one that
                // is not pending is no error.
                cancel("never set"),
            ],
            "{language:?}"
        );
        assert_eq!(texts(&reaction), ["your move"], "{language:?}");
        assert_eq!(reaction.state, Some(json!({"turn": 1})), "{language:?}");
    }
}

#[test]
fn an_event_without_timer_calls_reports_none() {
    for language in LANGUAGES {
        let reaction = expect_ok(language, init(language, "ctx.post('no clock');"));
        assert!(reaction.timers.is_empty(), "{language:?}: {reaction:?}");
    }
}

#[test]
fn every_timer_cap_is_inclusive() {
    // Counted in bytes of UTF-8: 32 two-byte characters are exactly the 64 allowed.
    let widest = "é".repeat(MAX_TIMER_TAG_BYTES / 2);
    let mut body =
        format!("ctx.set_timer(1, {widest:?});\nctx.set_timer({MAX_TIMER_MS}, 'day');\n");
    for _ in 2..MAX_TIMER_CALLS {
        body.push_str("ctx.cancel_timer('x');\n");
    }
    for language in LANGUAGES {
        let reaction = expect_ok(language, init(language, &body));
        assert_eq!(reaction.timers.len(), MAX_TIMER_CALLS, "{language:?}");
        assert_eq!(reaction.timers[0], set(&widest, 1), "{language:?}");
        assert_eq!(reaction.timers[1], set("day", MAX_TIMER_MS), "{language:?}");
    }
}

#[test]
fn every_refused_timer_argument_fails_the_event_with_bad_argument() {
    const SET: &str = "ctx.set_timer(ms, tag): ";
    const CANCEL: &str = "ctx.cancel_timer(tag): ";
    let ms_range = format!("ms must be an integer from 1 to {MAX_TIMER_MS}, got");
    let tag_size = format!("tag must be 1 to {MAX_TIMER_TAG_BYTES} bytes of UTF-8, got");
    let ascii_over = "t".repeat(MAX_TIMER_TAG_BYTES + 1);
    // 33 characters, far under 64, but 66 bytes.
    let wide_over = "é".repeat(MAX_TIMER_TAG_BYTES / 2 + 1);
    let mut one_call_too_many = String::new();
    for _ in 0..=MAX_TIMER_CALLS {
        one_call_too_many.push_str("ctx.set_timer(1000, 'turn');\n");
    }
    // (JavaScript, Python when it differs, what the refusal says)
    let cases: Vec<(String, Option<&str>, String)> = vec![
        (
            "ctx.set_timer(0, 't');".into(),
            None,
            format!("{SET}{ms_range} 0"),
        ),
        (
            format!("ctx.set_timer({}, 't');", MAX_TIMER_MS + 1),
            None,
            format!("{SET}{ms_range} {}", MAX_TIMER_MS + 1),
        ),
        (
            "ctx.set_timer(-1000, 't');".into(),
            None,
            format!("{SET}{ms_range} -1000"),
        ),
        (
            "ctx.set_timer(1.5, 't');".into(),
            None,
            format!("{SET}{ms_range} "),
        ),
        (
            "ctx.set_timer(NaN, 't');".into(),
            Some("ctx.set_timer(float('nan'), 't');"),
            format!("{SET}{ms_range} "),
        ),
        (
            "ctx.set_timer('10', 't');".into(),
            None,
            format!("{SET}{ms_range} str"),
        ),
        (
            "ctx.set_timer(1000);".into(),
            None,
            format!("{SET}tag must be a string, got nothing"),
        ),
        (
            "ctx.set_timer(1000, 7);".into(),
            None,
            format!("{SET}tag must be a string, got"),
        ),
        (
            "ctx.set_timer(1000, '');".into(),
            None,
            format!("{SET}{tag_size} 0 bytes"),
        ),
        (
            format!("ctx.set_timer(1000, {ascii_over:?});"),
            None,
            format!("{SET}{tag_size} 65 bytes"),
        ),
        (
            format!("ctx.set_timer(1000, {wide_over:?});"),
            None,
            format!("{SET}{tag_size} 66 bytes"),
        ),
        (
            "ctx.cancel_timer('');".into(),
            None,
            format!("{CANCEL}{tag_size} 0 bytes"),
        ),
        (
            format!("ctx.cancel_timer({wide_over:?});"),
            None,
            format!("{CANCEL}{tag_size} 66 bytes"),
        ),
        (
            one_call_too_many,
            None,
            format!("{SET}an event may set or cancel timers at most {MAX_TIMER_CALLS} times"),
        ),
    ];
    for (javascript, python, refusal) in &cases {
        for language in LANGUAGES {
            let body = match language {
                Language::Python => python.unwrap_or(javascript),
                Language::JavaScript => javascript,
            };
            // A post and a valid timer first: the failed event keeps neither.
            let body = format!("ctx.post('before');\nctx.set_timer(1000, 'ok');\n{body}");
            let error = assert_contained(init(language, &body), BotErrorKind::BadArgument);
            assert!(
                error.message.starts_with(refusal.as_str()),
                "{language:?} {body}: {error}"
            );
        }
    }
}

#[test]
fn a_refused_timer_call_fails_the_event_even_when_caught_and_a_failed_event_sets_no_timer() {
    let caught = [
        (
            Language::JavaScript,
            "try { ctx.set_timer(0, 'turn'); } catch (e) {}\nctx.set_timer(1000, 'turn');",
        ),
        (
            Language::Python,
            "try:\n    ctx.set_timer(0, 'turn')\nexcept BaseException:\n    pass\nctx.set_timer(1000, 'turn')",
        ),
    ];
    for (language, body) in caught {
        let error = assert_contained(init(language, body), BotErrorKind::BadArgument);
        assert!(error.message.contains("got 0"), "{language:?}: {error}");
    }
    // An event that fails after valid timer calls yields only its error: a `Reaction`, the one
    // carrier of timer requests, exists only for an event that succeeded.
    let failing = [
        (
            Language::JavaScript,
            "ctx.set_timer(1000, 'turn');\nthrow new Error('oops');",
        ),
        (
            Language::Python,
            "ctx.set_timer(1000, 'turn')\nraise ValueError('oops')",
        ),
    ];
    for (language, body) in failing {
        assert_contained(init(language, body), BotErrorKind::Threw);
    }
}

#[test]
fn on_timer_gets_its_tag_and_the_time_of_the_event() {
    let fired_at = NOW_MS + 30_000;
    let mut context = context();
    context.now = Timestamp(fired_at);
    // A turn clock re-arms itself from its own handler.
    let on_timer = "ctx.post(tag);\n\
                    ctx.set_state({'tag': tag, 'now': ctx.now()});\n\
                    ctx.set_timer(30000, tag);";
    for language in LANGUAGES {
        let bot = bot(language, "", Some(on_timer));
        let reaction = expect_ok(
            language,
            run_event(&bot, &context, &timer_event("turn 3"), &relaxed_limits()),
        );
        assert_eq!(texts(&reaction), ["turn 3"], "{language:?}");
        assert_eq!(
            reaction.state,
            Some(json!({"tag": "turn 3", "now": fired_at})),
            "{language:?}"
        );
        assert_eq!(reaction.timers, [set("turn 3", 30_000)], "{language:?}");
    }
}

#[test]
fn a_bot_without_on_timer_ignores_a_timer_event() {
    for language in LANGUAGES {
        let bot = bot(language, "ctx.set_timer(1000, 'turn');", None);
        let reaction = expect_ok(
            language,
            run_event(&bot, &context(), &timer_event("turn"), &relaxed_limits()),
        );
        assert_eq!(reaction, Reaction::default(), "{language:?}");
    }
}

#[test]
fn a_timer_events_random_stream_is_keyed_on_its_seq_like_any_other() {
    let draw = "ctx.post(ctx.random_bytes(16));";
    let at_seq = |language: Language, event: &Event, seq: i64| {
        let mut context = context();
        context.event_seq = Seq(seq);
        let bot = bot(language, draw, Some(draw));
        let reaction = run_event(&bot, &context, event, &relaxed_limits()).expect("draws");
        texts(&reaction)[0].to_owned()
    };
    let on_init_at_9 = at_seq(Language::JavaScript, &Event::Init, 9);
    for language in LANGUAGES {
        // Same seed and seq, whatever the handler or the language: the same bytes.
        assert_eq!(
            at_seq(language, &timer_event("t"), 9),
            on_init_at_9,
            "{language:?}"
        );
        assert_ne!(
            at_seq(language, &timer_event("t"), 10),
            on_init_at_9,
            "{language:?}"
        );
    }
}

/// The `timer_fired` notice of the bot in `fired_for`, as the service records it.
fn timer_fired(fired_for: &str, tag: &str) -> Message {
    let at = Timestamp(NOW_MS + 30_000);
    let notice = Notice::TimerFired {
        slot: slot(fired_for),
        tag: tag.to_owned(),
        set_by: Seq(7),
        due: at,
    };
    Message {
        seq: Seq(12),
        kind: MessageKind::System,
        sender: None,
        sender_name: String::new(),
        body: notice.body(at),
        to: None,
        nonce: None,
        at,
        hash: domain::ChainHash::genesis(),
    }
}

#[test]
fn a_timer_fired_notice_is_an_event_for_its_own_bot_only() {
    let notice = timer_fired("referee", "turn 3");
    let event = Event::for_bot(&slot("referee"), &notice);
    assert_eq!(event, Some(timer_event("turn 3")));
    let call = timer_event("turn 3").call();
    assert_eq!(call.handler, "on_timer");
    assert_eq!(
        call.argument,
        Some(json!("turn 3")),
        "the tag is the one argument"
    );

    assert_eq!(
        Event::for_bot(&slot("judge"), &notice),
        None,
        "another bot's timer is no event"
    );
}
