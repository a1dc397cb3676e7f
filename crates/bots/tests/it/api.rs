//! What bots see and what the host returns, for well-behaved code.

use bots::{
    BotErrorKind, Event, MAX_END_REASON_BYTES, RunEnd, builtin, catalog, check_source, run_event,
};
use domain::{Body, Message, MessageKind, Seq, Timestamp};

use crate::support::{
    NOW_MS, assert_contained, context, init, message, on_init, player, relaxed_limits, slot,
    source, texts,
};

#[test]
fn handlers_receive_the_event_and_ctx_describes_the_channel() {
    let bot = source(
        r#"
        class Bot {
            constructor(ctx, params) { this.ctx = ctx; this.params = params; }
            on_join(p) { this.ctx.post(`join ${p.slot} ${p.name}`); }
            on_leave(p) { this.ctx.post(`leave ${p.slot}`); }
            on_message(m) {
                this.ctx.post(JSON.stringify(m));
                this.ctx.post(JSON.stringify(this.ctx.slots()));
                this.ctx.post(`${this.ctx.channel_id} ${this.ctx.bot_slot} ${this.ctx.now()} ${this.params.level} ${this.ctx.reveal_private}`);
            }
        }
        "#,
    );
    let mut ctx = context();
    ctx.params = serde_json::json!({"level": 3});
    let limits = relaxed_limits();

    let joined = run_event(&bot, &ctx, &Event::Join(player("carol")), &limits).expect("join");
    assert_eq!(texts(&joined), ["join carol Carol"]);
    let left = run_event(&bot, &ctx, &Event::Leave(player("bob")), &limits).expect("leave");
    assert_eq!(texts(&left), ["leave bob"]);

    let private = Event::Message(Message {
        seq: Seq(12),
        kind: MessageKind::User,
        sender: Some(slot("alice")),
        sender_name: "Alice".into(),
        body: Body::new(Some("hi".into()), None).expect("valid"),
        to: Some(slot("referee")),
        at: Timestamp(NOW_MS - 5),
        hash: domain::ChainHash::genesis(),
        nonce: None,
    });
    let seen = run_event(&bot, &ctx, &private, &limits).expect("message");
    let msg: serde_json::Value = serde_json::from_str(texts(&seen)[0]).expect("json");
    assert_eq!(
        msg,
        serde_json::json!({
            "seq": 12, "kind": "user", "sender": "alice", "sender_name": "Alice",
            "body": {"text": "hi", "data": null}, "private": true, "to": "referee",
            "at": NOW_MS - 5,
        })
    );
    let slots: serde_json::Value = serde_json::from_str(texts(&seen)[1]).expect("json");
    assert_eq!(
        slots[1],
        serde_json::json!({"slot": "alice", "kind": "invite", "holder": "Alice"})
    );
    assert_eq!(slots[4]["kind"], "spectator");
    assert_eq!(
        texts(&seen)[2],
        format!("{} referee {NOW_MS} 3 true", ctx.channel_id)
    );
    ctx.reveal_private = false;
    let seen = run_event(&bot, &ctx, &private, &limits).expect("message");
    assert_eq!(
        texts(&seen)[2],
        format!("{} referee {NOW_MS} 3 false", ctx.channel_id)
    );
}

#[test]
fn missing_handlers_are_fine() {
    let reaction = init("class Bot {}").expect("no handler, no work");
    assert!(reaction.posts.is_empty());
    assert_eq!(reaction.state, None);
    run_event(
        &source("class Bot {}"),
        &context(),
        &message("alice", "x"),
        &relaxed_limits(),
    )
    .expect("no on_message");
}

#[test]
fn globalthis_bot_works_too() {
    let reaction = init("globalThis.Bot = class { constructor(ctx) { ctx.post('built'); } };")
        .expect("assigned class");
    assert_eq!(texts(&reaction), ["built"]);
}

#[test]
fn state_round_trips_and_is_only_returned_when_set() {
    let bot = source(
        r#"class Bot {
            constructor(ctx) { this.ctx = ctx; }
            on_message(m) {
                const s = this.ctx.get_state() || {count: 0};
                s.count += 1;
                if (m.body.text === "save") this.ctx.set_state(s);
                this.ctx.post(String(s.count));
            }
        }"#,
    );
    let mut ctx = context();
    let limits = relaxed_limits();
    let first = run_event(&bot, &ctx, &message("alice", "save"), &limits).expect("runs");
    assert_eq!(first.state, Some(serde_json::json!({"count": 1})));
    ctx.state = first.state;
    let second = run_event(&bot, &ctx, &message("alice", "peek"), &limits).expect("runs");
    assert_eq!(texts(&second), ["2"]);
    assert_eq!(second.state, None, "get_state alone changes nothing");
    let cleared = init(&on_init("ctx.set_state(null);")).expect("null clears");
    assert_eq!(cleared.state, Some(serde_json::Value::Null));
}

#[test]
fn a_state_of_exactly_64_kib_is_kept_and_one_byte_more_is_refused() {
    let limit = relaxed_limits().max_state_bytes;
    assert_eq!(limit, 64 * 1024);
    // A string's JSON is its characters and two quotes.
    let set = |bytes: usize| on_init(&format!("ctx.set_state('x'.repeat({}));", bytes - 2));
    let kept = init(&set(limit)).expect("a state at the limit");
    let kept = kept.state.expect("state set");
    assert_eq!(kept.to_string().len(), limit);
    let refused = init(&set(limit + 1));
    assert_eq!(
        refused.map_err(|error| error.kind).unwrap_err(),
        bots::BotErrorKind::StateTooLarge
    );
}

#[test]
fn posts_keep_order_recipients_and_bodies() {
    let reaction = init(&on_init(
        r#"
        ctx.post("public");
        ctx.post_to("bob", {text: "psst", data: {card: 7}});
        ctx.post({data: {only: "data"}});
        "#,
    ))
    .expect("posts");
    assert_eq!(reaction.posts.len(), 3);
    assert_eq!(reaction.posts[0].to, None);
    assert_eq!(reaction.posts[1].to, Some(slot("bob")));
    assert_eq!(reaction.posts[1].body.text.as_deref(), Some("psst"));
    assert_eq!(
        reaction.posts[1]
            .body
            .data
            .as_ref()
            .and_then(|d| d.get("card")),
        Some(&serde_json::json!(7))
    );
    assert_eq!(reaction.posts[2].body.text, None);
}

#[test]
fn sha256_and_commit_match_the_rust_side() {
    let reaction = init(&on_init(
        r#"ctx.post(ctx.sha256("abc")); ctx.post(ctx.commit("42", "000102030405060708090a0b0c0d0e0f"));"#,
    ))
    .expect("hashing");
    assert_eq!(
        texts(&reaction)[0],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let salt: Vec<u8> = (0..16).collect();
    assert_eq!(
        texts(&reaction)[1],
        bots::commitment(context().channel_id.as_str(), "referee", "42", &salt)
    );
}

#[test]
fn end_ends_the_run_with_or_without_a_reason() {
    let end = |body: &str| init(&on_init(body)).expect("runs").end;
    let no_reason = Some(RunEnd { reason: None });
    assert_eq!(end("ctx.post('still playing');"), None);
    assert_eq!(end("ctx.end();"), no_reason);
    assert_eq!(end("ctx.end(undefined);"), no_reason);
    assert_eq!(end("ctx.end(null);"), no_reason);
    assert_eq!(
        end("ctx.end('alice wins');"),
        Some(RunEnd {
            reason: Some("alice wins".to_owned())
        })
    );
    let at_cap = "é".repeat(MAX_END_REASON_BYTES / 2);
    assert_eq!(
        end(&format!("ctx.end({at_cap:?});")),
        Some(RunEnd {
            reason: Some(at_cap)
        }),
        "the cap is in bytes, and inclusive"
    );
    assert_eq!(
        end("ctx.end('draw'); ctx.end('bob wins');"),
        Some(RunEnd {
            reason: Some("bob wins".to_owned())
        }),
        "the last call wins"
    );
    assert_eq!(end("ctx.end('draw'); ctx.end();"), no_reason);
}

#[test]
fn end_keeps_the_events_posts_and_state() {
    let reaction = init(&on_init(
        r#"
        ctx.post("alice found it");
        ctx.set_state({done: true});
        ctx.end("alice wins");
        ctx.post_to("bob", "better luck next time");
        "#,
    ))
    .expect("runs");
    assert_eq!(
        texts(&reaction),
        ["alice found it", "better luck next time"]
    );
    assert_eq!(reaction.posts[1].to, Some(slot("bob")));
    assert_eq!(reaction.state, Some(serde_json::json!({"done": true})));
    assert_eq!(
        reaction.end,
        Some(RunEnd {
            reason: Some("alice wins".to_owned())
        })
    );
    // From an async handler, after a promise job, too.
    let reaction = init(
        "class Bot { constructor(ctx) { this.ctx = ctx; } \
         async on_init() { await null; this.ctx.post('late'); this.ctx.end(); } }",
    )
    .expect("runs");
    assert_eq!(texts(&reaction), ["late"]);
    assert_eq!(reaction.end, Some(RunEnd { reason: None }));
}

#[test]
fn end_refuses_a_long_or_odd_reason_even_when_caught() {
    let long = "x".repeat(MAX_END_REASON_BYTES + 1);
    let wide = "é".repeat(MAX_END_REASON_BYTES / 2 + 1);
    for (body, bytes) in [
        (format!("ctx.end({long:?});"), long.len()),
        (format!("ctx.end({wide:?});"), wide.len()),
        (
            format!("try {{ ctx.end({wide:?}); }} catch (e) {{}} ctx.end('fine');"),
            wide.len(),
        ),
    ] {
        let error = assert_contained(init(&on_init(&body)), BotErrorKind::BadArgument);
        let expected = format!(
            "ctx.end(reason): the reason is {bytes} bytes; the limit is {MAX_END_REASON_BYTES}"
        );
        assert!(error.message.starts_with(&expected), "{body}: {error}");
    }
    for (body, got) in [
        ("ctx.end(42);", "got int"),
        ("ctx.end({reason: 'x'});", "got object"),
        ("ctx.end('\\uD800');", "lone surrogate"),
    ] {
        let error = assert_contained(init(&on_init(body)), BotErrorKind::BadArgument);
        assert!(
            error.message.starts_with("ctx.end(reason): reason"),
            "{body}: {error}"
        );
        assert!(error.message.contains(got), "{body}: {error}");
    }
}

#[test]
fn a_failed_event_does_not_end_the_run() {
    for (body, kind) in [
        (
            "ctx.end('alice wins'); throw new Error('oops');",
            BotErrorKind::Threw,
        ),
        (
            "ctx.end('alice wins'); ctx.post_to('mallory', 'x');",
            BotErrorKind::BadPost,
        ),
        (
            "ctx.end('alice wins'); for (let i = 0; i < 21; i++) ctx.post(String(i));",
            BotErrorKind::TooManyPosts,
        ),
    ] {
        // A failed event has only its error: no posts, no state, and no end.
        assert_contained(init(&on_init(body)), kind);
    }
    assert_contained(
        init(
            "class Bot { constructor(ctx) { this.ctx = ctx; } \
             async on_init() { this.ctx.end(); await null; throw new Error('late'); } }",
        ),
        BotErrorKind::Threw,
    );
}

#[test]
fn check_source_loads_without_running_handlers() {
    check_source(
        &source("class Bot { on_init() { for (;;) {} } }"),
        &relaxed_limits(),
    )
    .expect("handlers are not called");
    let error = check_source(&source("class Nope {}"), &relaxed_limits()).unwrap_err();
    assert_eq!(error.kind, BotErrorKind::BadSource);
    for entry in catalog() {
        let bot = builtin(entry.name).expect("catalog entries exist");
        assert_eq!(bot.code_hash(), &entry.code_hash);
        assert!(bot.code_hash().as_str().starts_with("sha256:"));
        check_source(&bot, &relaxed_limits()).expect("builtins load");
    }
    assert!(builtin("nope").is_none());
}

#[test]
fn builtins_answer_to_any_case_and_to_the_prototype_names() {
    let guess = builtin("guess").expect("guess");
    for asked in ["GUESS", "Guess", "GuessBot", "guessbot"] {
        let bot = builtin(asked).unwrap_or_else(|| panic!("{asked} names GuessBot"));
        assert_eq!(bot.code_hash(), guess.code_hash(), "{asked}");
        assert_eq!(
            bot.name(),
            "guess",
            "the canonical name is what channels show"
        );
    }
    assert_eq!(
        builtin("EchoBot").map(|bot| bot.name().to_owned()),
        Some("echo".to_owned())
    );
    assert!(builtin("guessbotx").is_none() && builtin("bot").is_none());
}

#[test]
fn echo_bot_repeats_and_counts() {
    let bot = builtin("echo").expect("echo is builtin");
    let mut ctx = context();
    let limits = relaxed_limits();
    let init = run_event(&bot, &ctx, &Event::Init, &limits).expect("init");
    ctx.state = init.state;
    let echoed = run_event(&bot, &ctx, &message("alice", "ping"), &limits).expect("echo");
    assert_eq!(texts(&echoed), ["ping"]);
    assert_eq!(echoed.state, Some(serde_json::json!({"echoed": 1})));
    let private = Event::Message(Message {
        to: Some(slot("referee")),
        ..match message("bob", "secret") {
            Event::Message(m) => m,
            _ => unreachable!("message() builds a message"),
        }
    });
    let echoed = run_event(&bot, &ctx, &private, &limits).expect("echo");
    assert_eq!(echoed.posts[0].to, Some(slot("bob")));
}

#[test]
fn constructor_errors_are_reported_as_such() {
    let error = assert_contained(
        init("class Bot { constructor() { throw new RangeError('no'); } }"),
        BotErrorKind::Threw,
    );
    assert!(
        error
            .message
            .contains("the Bot constructor threw RangeError: no"),
        "{error}"
    );
}

/// The example in the bot-writing guide runs as documented.
#[test]
fn the_guide_example_plays_a_round() {
    let guide = include_str!("../../../../docs/bot-api.md");
    let example = guide
        .split("## A complete example")
        .nth(1)
        .and_then(|section| section.split("```js\n").nth(1))
        .and_then(|block| block.split("```").next())
        .expect("the guide has a js example");
    let bot = bots::BotSource::new("coin.js", example).expect("small");
    let limits = relaxed_limits();
    let mut ctx = context();
    let init = run_event(&bot, &ctx, &Event::Init, &limits).expect("init");
    let commitment = init.posts[0].body.data.clone().expect("data")["commitment"].clone();
    ctx.state = init.state;
    assert_eq!(init.end, None);
    let first = run_event(&bot, &ctx, &message("alice", "heads"), &limits).expect("call");
    assert!(first.posts.is_empty());
    assert_eq!(first.end, None);
    ctx.state = first.state;
    let again = run_event(&bot, &ctx, &message("alice", "tails"), &limits).expect("call");
    assert_eq!(again.posts[0].to, Some(slot("alice")));
    let last = run_event(&bot, &ctx, &message("bob", "tails"), &limits).expect("call");
    let reveal = last.posts[0].body.data.clone().expect("data");
    assert_eq!(reveal["commitment"], commitment);
    let flip = reveal["value"].as_str().expect("string");
    assert_eq!(
        last.end,
        Some(RunEnd {
            reason: Some(format!("{flip}: 1 of 2 called it"))
        }),
        "the reveal ends the run"
    );
    assert!(
        guide.contains(&format!("at most {MAX_END_REASON_BYTES} bytes")),
        "the guide states the reason's cap"
    );
    let salt = hex::decode(reveal["salt"].as_str().expect("hex")).expect("hex");
    assert_eq!(
        bots::commitment(
            ctx.channel_id.as_str(),
            "referee",
            reveal["value"].as_str().expect("string"),
            &salt
        ),
        commitment.as_str().expect("string")
    );
}
