//! Python bots, run by Monty: the prototype's bot shape, every `ctx` function, determinism
//! (and agreement with JavaScript on the seeded functions), a whole game, and abuse attempts,
//! each followed by a healthy event.

use bots::{
    BotError, BotErrorKind, BotSource, Event, Language, MAX_END_REASON_BYTES, Reaction, RunEnd,
    run_event,
};
use serde_json::json;

use crate::support::{assert_contained, assert_healthy, context, message, relaxed_limits, texts};

/// The EchoBot of the Python prototype's README, unchanged.
const ECHO_BOT: &str = r#"
class EchoBot:
    def __init__(self, ctx, params):
        self.ctx = ctx

    def on_init(self):
        self.ctx.post('system', {'text': 'Echo ready'})

    def on_message(self, msg):
        if msg.get('kind') == 'user':
            self.ctx.post('bot', {'echo': msg.get('body')})
"#;

fn py(code: &str) -> BotSource {
    BotSource::with_language("bot.py", code, Language::Python).expect("test sources are small")
}

/// Wraps Python statements (indented by the caller or not) as the body of `on_init`, with
/// `ctx` in scope.
fn py_init(body: &str) -> String {
    let mut code = String::from(
        "class Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n        self.params = params\n\n    def on_init(self):\n        ctx = self.ctx\n",
    );
    for line in body.lines() {
        code.push_str("        ");
        code.push_str(line);
        code.push('\n');
    }
    code
}

fn run_py(code: &str, event: &Event) -> Result<Reaction, BotError> {
    run_event(&py(code), &context(), event, &relaxed_limits())
}

fn init_py(body: &str) -> Result<Reaction, BotError> {
    run_py(&py_init(body), &Event::Init)
}

#[track_caller]
fn expect_ok(result: Result<Reaction, BotError>) -> Reaction {
    match result {
        Ok(reaction) => reaction,
        Err(error) => panic!("expected success, got {error}"),
    }
}

// --- The prototype's shape --------------------------------------------------------------------

#[test]
fn the_prototype_echo_bot_runs_unchanged() {
    let bot = BotSource::new("echo.py", ECHO_BOT).expect("small");
    assert_eq!(bot.language(), Language::Python, "the language is inferred");
    let limits = relaxed_limits();
    let ready = run_event(&bot, &context(), &Event::Init, &limits).expect("init");
    assert_eq!(texts(&ready), ["Echo ready"]);
    assert_eq!(ready.posts[0].to, None);
    let echoed = run_event(&bot, &context(), &message("alice", "ping"), &limits).expect("echo");
    assert_eq!(echoed.posts.len(), 1);
    assert_eq!(
        echoed.posts[0].body.data,
        Some(
            json!({"echo": {"text": "ping", "data": null}})
                .as_object()
                .expect("object")
                .clone()
        )
    );
    assert_eq!(echoed.posts[0].body.text, None);
    assert_eq!(echoed.state, None);
    bots::check_source(&bot, &limits).expect("the source checks");
}

#[test]
fn the_bot_class_is_bot_or_the_only_class() {
    let helper_and_bot = "class Helper:\n    def __init__(self):\n        self.n = 1\n\nclass Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n    def on_init(self):\n        self.ctx.post(str(Helper().n))\n";
    assert_eq!(
        texts(&expect_ok(run_py(helper_and_bot, &Event::Init))),
        ["1"]
    );
    let two = "class A:\n    pass\n\nclass B:\n    pass\n";
    let error = assert_contained(run_py(two, &Event::Init), BotErrorKind::BadSource);
    assert!(
        error.message.contains("2 top-level classes (A, B)"),
        "{error}"
    );
    let none = "def on_init():\n    pass\n";
    let error = assert_contained(run_py(none, &Event::Init), BotErrorKind::BadSource);
    assert!(error.message.contains("class Bot:"), "{error}");
}

#[test]
fn every_handler_is_optional_and_gets_its_argument() {
    let code = r#"
class Bot:
    def __init__(self, ctx, params):
        self.ctx = ctx
    def on_join(self, player):
        self.ctx.post('joined ' + player['slot'] + ' ' + player['name'])
    def on_leave(self, player):
        self.ctx.post('left ' + player['slot'])
    def on_message(self, msg):
        self.ctx.post(msg['sender'] + ':' + msg['body']['text'] + ':' + msg['kind'] + ':' + str(msg['private']))
"#;
    assert!(expect_ok(run_py(code, &Event::Init)).posts.is_empty());
    let joined = expect_ok(run_py(code, &Event::Join(crate::support::player("carol"))));
    assert_eq!(texts(&joined), ["joined carol Carol"]);
    let left = expect_ok(run_py(code, &Event::Leave(crate::support::player("bob"))));
    assert_eq!(texts(&left), ["left bob"]);
    let said = expect_ok(run_py(code, &message("alice", "hi")));
    assert_eq!(texts(&said), ["alice:hi:user:False"]);
}

#[test]
fn a_fresh_instance_per_event_and_params_reach_the_constructor() {
    let code = r#"
class Bot:
    count = 0
    def __init__(self, ctx, params):
        self.ctx = ctx
        self.params = params
        self.seen = []
    def on_init(self):
        self.seen.append(1)
        self.ctx.post(str(len(self.seen)) + ' ' + str(self.params.get('max')))
"#;
    let mut ctx = context();
    ctx.params = json!({"max": 7});
    let bot = py(code);
    for _ in 0..2 {
        let reaction = run_event(&bot, &ctx, &Event::Init, &relaxed_limits()).expect("init");
        assert_eq!(texts(&reaction), ["1 7"]);
    }
}

// --- ctx --------------------------------------------------------------------------------------

#[test]
fn post_takes_a_body_or_a_kind_and_a_body_and_always_posts_as_the_bot() {
    let reaction = expect_ok(init_py(
        r#"ctx.post('plain text')
ctx.post('system', 'kind is ignored')
ctx.post('user', {'text': 't', 'data': {'a': 1}})
ctx.post({'text': 'only text'})
ctx.post({'data': {'b': [1, 2]}})
ctx.post({'move': 'guess', 'value': 5})
ctx.post({'text': None, 'data': {'c': None}})"#,
    ));
    assert_eq!(reaction.posts.len(), 7);
    assert_eq!(
        texts(&reaction)[..4],
        ["plain text", "kind is ignored", "t", "only text"]
    );
    let data: Vec<_> = reaction
        .posts
        .iter()
        .map(|post| post.body.data.clone().map(serde_json::Value::Object))
        .collect();
    assert_eq!(data[2], Some(json!({"a": 1})));
    assert_eq!(data[4], Some(json!({"b": [1, 2]})));
    assert_eq!(data[5], Some(json!({"move": "guess", "value": 5})));
    assert_eq!(reaction.posts[5].body.text, None);
    assert_eq!(data[6], Some(json!({"c": null})));
    assert!(reaction.posts.iter().all(|post| post.to.is_none()));
}

#[test]
fn post_refuses_bad_bodies_and_kinds() {
    for (body, kind, needle) in [
        ("ctx.post(42)", BotErrorKind::BadPost, "got int"),
        ("ctx.post()", BotErrorKind::BadPost, "got nothing"),
        ("ctx.post(['a'])", BotErrorKind::BadPost, "got list"),
        (
            "ctx.post({'text': 5})",
            BotErrorKind::BadPost,
            "text must be a str, got int",
        ),
        (
            "ctx.post({'data': [1]})",
            BotErrorKind::BadPost,
            "data must be a dict, got list",
        ),
        (
            "ctx.post({'text': '', 'data': None})",
            BotErrorKind::BadPost,
            "",
        ),
        ("ctx.post({})", BotErrorKind::BadPost, ""),
        (
            "ctx.post({1: 'x'})",
            BotErrorKind::BadPost,
            "keys must be strings",
        ),
        (
            "ctx.post({'x': {1, 2}})",
            BotErrorKind::BadPost,
            "set has no JSON form",
        ),
        (
            "ctx.post({'x': float('nan')})",
            BotErrorKind::BadPost,
            "no JSON form",
        ),
        ("ctx.post('x' * 20000)", BotErrorKind::BadPost, ""),
        (
            "ctx.post(1, 'text')",
            BotErrorKind::BadArgument,
            "kind must be a string, got int",
        ),
        (
            "ctx.post(None, 'text')",
            BotErrorKind::BadArgument,
            "got NoneType",
        ),
        (
            "ctx.post('bot', 'a', 'b')",
            BotErrorKind::BadArgument,
            "got 3 arguments",
        ),
    ] {
        let error = match init_py(body) {
            Ok(reaction) => panic!("{body} was accepted: {reaction:?}"),
            Err(error) => error,
        };
        assert_eq!(error.kind, kind, "{body}: {error}");
        assert!(error.message.contains(needle), "{body}: {error}");
    }
    assert_healthy();
}

#[test]
fn post_to_goes_to_known_slots_only() {
    let reaction = expect_ok(init_py(
        "ctx.post_to('alice', 'psst')\nctx.post_to('watcher', {'data': {'x': 1}})",
    ));
    assert_eq!(reaction.posts[0].to, Some(crate::support::slot("alice")));
    assert_eq!(reaction.posts[1].to, Some(crate::support::slot("watcher")));
    let error = assert_contained(
        init_py("ctx.post_to('mallory', 'hi')"),
        BotErrorKind::BadPost,
    );
    assert!(error.message.contains("no slot \"mallory\""), "{error}");
    let error = assert_contained(init_py("ctx.post_to(3, 'hi')"), BotErrorKind::BadArgument);
    assert!(
        error.message.contains("slot must be a string, got int"),
        "{error}"
    );
    assert_contained(init_py("ctx.post_to('alice')"), BotErrorKind::BadPost);
}

#[test]
fn state_round_trips_as_json() {
    let reaction = expect_ok(init_py(
        r#"assert ctx.get_state() is None
ctx.set_state({'n': 1, 'list': [1, 2.5, 'x', None, True], 'pair': (1, 2)})
s = ctx.get_state()
s['n'] = 2
ctx.post(str(ctx.get_state()['n']))"#,
    ));
    assert_eq!(texts(&reaction), ["1"], "get_state gives a fresh copy");
    assert_eq!(
        reaction.state,
        Some(json!({"n": 1, "list": [1, 2.5, "x", null, true], "pair": [1, 2]}))
    );
    let mut ctx = context();
    ctx.state = Some(json!({"turn": "bob", "n": 3}));
    let bot = py(&py_init(
        "s = ctx.get_state()\nctx.post(s['turn'] + str(s['n'] + 1))\nctx.set_state(None)",
    ));
    let reaction = run_event(&bot, &ctx, &Event::Init, &relaxed_limits()).expect("runs");
    assert_eq!(texts(&reaction), ["bob4"]);
    assert_eq!(reaction.state, Some(serde_json::Value::Null));
    let untouched = expect_ok(init_py("ctx.post('no state change')"));
    assert_eq!(untouched.state, None);
}

#[test]
fn state_that_is_not_json_or_too_large_is_refused() {
    for (body, kind) in [
        ("ctx.set_state({1, 2})", BotErrorKind::BadState),
        ("ctx.set_state(float('nan'))", BotErrorKind::BadState),
        ("ctx.set_state(float('inf'))", BotErrorKind::BadState),
        ("ctx.set_state({'x': self})", BotErrorKind::BadState),
        (
            "ctx.set_state({(1, 2): 'tuple key'})",
            BotErrorKind::BadState,
        ),
        ("ctx.set_state(b'bytes')", BotErrorKind::BadState),
        ("ctx.set_state(10 ** 30)", BotErrorKind::BadState),
        ("ctx.set_state(len)", BotErrorKind::BadState),
        ("ctx.set_state()", BotErrorKind::BadState),
        (
            "a = []\na.append(a)\nctx.set_state(a)",
            BotErrorKind::BadState,
        ),
        ("ctx.set_state('x' * 70000)", BotErrorKind::StateTooLarge),
        ("ctx.set_state(1, 2)", BotErrorKind::BadArgument),
    ] {
        let error = match init_py(body) {
            Ok(reaction) => panic!("{body} was accepted: {reaction:?}"),
            Err(error) => error,
        };
        assert_eq!(error.kind, kind, "{body}: {error}");
    }
    assert_healthy();
}

#[test]
fn players_slots_now_and_identity() {
    let reaction = expect_ok(init_py(
        r#"ctx.post(','.join(p['slot'] + '=' + p['name'] for p in ctx.players()))
ctx.post(','.join(s['slot'] + ':' + s['kind'] + ':' + str(s['holder']) for s in ctx.slots()))
ctx.post(str(ctx.now()))
ctx.post(ctx.channel_id + ' ' + ctx.bot_slot + ' ' + str(ctx.reveal_private))"#,
    ));
    assert_eq!(
        texts(&reaction),
        [
            "alice=Alice,bob=Bob",
            "referee:bot:None,alice:invite:Alice,bob:invite:Bob,carol:invite:None,watcher:spectator:None",
            &crate::support::NOW_MS.to_string(),
            &format!("{} referee True", context().channel_id.as_str()),
        ]
    );
}

#[test]
fn random_sha256_and_commit_check_their_arguments() {
    let reaction = expect_ok(init_py(
        r#"n = ctx.random_int(1, 6)
assert 1 <= n <= 6
assert ctx.random_int(5, 5) == 5
b = ctx.random_bytes(16)
assert len(b) == 32
ctx.post(ctx.sha256('abc'))
ctx.post(ctx.commit('42', '000102030405060708090a0b0c0d0e0f'))"#,
    ));
    assert_eq!(
        texts(&reaction)[0],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let salt = hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex");
    assert_eq!(
        texts(&reaction)[1],
        bots::commitment(context().channel_id.as_str(), "referee", "42", &salt)
    );
    for (body, needle) in [
        (
            "ctx.random_int(6, 1)",
            "lo (6) must not be greater than hi (1)",
        ),
        (
            "ctx.random_int(1.0, 6)",
            "lo must be an integer from -9007199254740991 to 9007199254740991, got float",
        ),
        ("ctx.random_int(1, 2 ** 60)", "got 1152921504606846976"),
        (
            "ctx.random_int(1, 10 ** 30)",
            "got 1000000000000000000000000000000",
        ),
        ("ctx.random_int(1)", "hi must be an integer"),
        ("ctx.random_int('1', 2)", "got str"),
        (
            "ctx.random_bytes(0)",
            "n must be an integer from 1 to 1024, got 0",
        ),
        ("ctx.random_bytes(1025)", "got 1025"),
        ("ctx.sha256(5)", "text must be a string, got int"),
        ("ctx.commit('x', 'abcd')", "at least 16 bytes"),
        ("ctx.commit('x', 'zz' * 16)", "at least 16 bytes"),
        (
            "ctx.commit(1, '00' * 16)",
            "value must be a string, got int",
        ),
        ("ctx.now(1)", "takes 0 arguments"),
    ] {
        let error = match init_py(body) {
            Ok(reaction) => panic!("{body} was accepted: {reaction:?}"),
            Err(error) => error,
        };
        assert_eq!(error.kind, BotErrorKind::BadArgument, "{body}: {error}");
        assert!(error.message.contains(needle), "{body}: {error}");
    }
    assert_healthy();
}

#[test]
fn too_many_posts_fail_the_event() {
    let error = assert_contained(
        init_py("for i in range(21):\n    ctx.post(str(i))"),
        BotErrorKind::TooManyPosts,
    );
    assert!(error.message.contains("at most 20 messages"), "{error}");
    let twenty = expect_ok(init_py("for i in range(20):\n    ctx.post(str(i))"));
    assert_eq!(twenty.posts.len(), 20);
}

#[test]
fn end_ends_the_run_with_or_without_a_reason() {
    let end = |body: &str| expect_ok(init_py(body)).end;
    let no_reason = Some(RunEnd { reason: None });
    let reason = |text: &str| {
        Some(RunEnd {
            reason: Some(text.to_owned()),
        })
    };
    assert_eq!(end("ctx.post('still playing')"), None);
    assert_eq!(end("ctx.end()"), no_reason);
    assert_eq!(end("ctx.end(None)"), no_reason);
    assert_eq!(
        end("assert ctx.end('alice wins') is None"),
        reason("alice wins")
    );
    let at_cap = "é".repeat(MAX_END_REASON_BYTES / 2);
    assert_eq!(
        end(&format!("ctx.end('{at_cap}')")),
        reason(&at_cap),
        "the cap is in bytes, and inclusive"
    );
    assert_eq!(
        end("ctx.end('draw')\nctx.end('bob wins')"),
        reason("bob wins"),
        "the last call wins"
    );
    assert_eq!(end("ctx.end('draw')\nctx.end()"), no_reason);
}

#[test]
fn end_keeps_the_events_posts_and_state() {
    let reaction = expect_ok(init_py(
        "ctx.post('alice found it')\nctx.set_state({'done': True})\nctx.end('alice wins')\nctx.post_to('bob', 'better luck next time')",
    ));
    assert_eq!(
        texts(&reaction),
        ["alice found it", "better luck next time"]
    );
    assert_eq!(reaction.posts[1].to, Some(crate::support::slot("bob")));
    assert_eq!(reaction.state, Some(json!({"done": true})));
    assert_eq!(
        reaction.end,
        Some(RunEnd {
            reason: Some("alice wins".to_owned())
        })
    );
}

#[test]
fn end_refuses_a_long_or_odd_reason_even_when_caught() {
    let long = "x".repeat(MAX_END_REASON_BYTES + 1);
    let wide = "é".repeat(MAX_END_REASON_BYTES / 2 + 1);
    for (body, bytes) in [
        (format!("ctx.end('{long}')"), long.len()),
        (format!("ctx.end('{wide}')"), wide.len()),
        (
            format!(
                "try:\n    ctx.end('{wide}')\nexcept BaseException:\n    pass\nctx.end('fine')"
            ),
            wide.len(),
        ),
    ] {
        let error = contained(&body, BotErrorKind::BadArgument);
        let expected = format!(
            "ctx.end(reason): the reason is {bytes} bytes; the limit is {MAX_END_REASON_BYTES}"
        );
        assert!(error.message.starts_with(&expected), "{body}: {error}");
    }
    for (body, needle) in [
        ("ctx.end(42)", "reason must be a string or None, got int"),
        (
            "ctx.end({'reason': 'x'})",
            "reason must be a string or None, got dict",
        ),
        ("ctx.end('a', 'b')", "takes 1 arguments; got 2"),
    ] {
        let error = contained(body, BotErrorKind::BadArgument);
        assert!(
            error.message.starts_with("ctx.end(reason): "),
            "{body}: {error}"
        );
        assert!(error.message.contains(needle), "{body}: {error}");
    }
}

#[test]
fn a_failed_event_does_not_end_the_run() {
    for (body, kind) in [
        (
            "ctx.end('alice wins')\nraise ValueError('oops')",
            BotErrorKind::Threw,
        ),
        (
            "ctx.end('alice wins')\nctx.post_to('mallory', 'x')",
            BotErrorKind::BadPost,
        ),
        (
            "ctx.end('alice wins')\nfor i in range(21):\n    ctx.post(str(i))",
            BotErrorKind::TooManyPosts,
        ),
    ] {
        // A failed event has only its error: no posts, no state, and no end.
        contained(body, kind);
    }
}

// --- Determinism ------------------------------------------------------------------------------

const PY_PROBE: &str = r#"import datetime
ctx.post(str(ctx.random_int(1, 1000000)) + ' ' + ctx.random_bytes(8))
ctx.post(ctx.commit('7', ctx.random_bytes(16)))
ctx.post(str(ctx.random_int(-9007199254740991, 9007199254740991)))
ctx.post(str(datetime.datetime.now()) + ' ' + str(datetime.date.today()))
ctx.post(str(datetime.datetime.now(datetime.timezone.utc)))
ctx.post(str(list({'b', 'a', 'zz', 'c', 'q'})) + ' ' + str(hash('abc')) + ' ' + str(hash((1, 2))))
ctx.post(str([k for k in {'y': 1, 'x': 2}]) + ' ' + str(id(ctx) == id(ctx)))"#;

fn py_probe(seed: u8, event_seq: i64) -> Vec<String> {
    let mut ctx = context();
    ctx.seed = bots::BotSeed([seed; 32]);
    ctx.event_seq = domain::Seq(event_seq);
    let reaction = run_event(
        &py(&py_init(PY_PROBE)),
        &ctx,
        &Event::Init,
        &relaxed_limits(),
    )
    .expect("probe runs");
    texts(&reaction).into_iter().map(str::to_owned).collect()
}

#[test]
fn python_runs_replay_and_the_clock_is_the_event_time() {
    let first = py_probe(1, 1);
    assert_eq!(first, py_probe(1, 1));
    assert_ne!(first[0], py_probe(2, 1)[0], "another seed, other numbers");
    assert_ne!(first[0], py_probe(1, 2)[0], "another event, other numbers");
    // NOW_MS is 2023-11-14T22:13:20Z.
    assert_eq!(first[3], "2023-11-14 22:13:20 2023-11-14");
    assert_eq!(first[4], "2023-11-14 22:13:20+00:00");
    // Sets iterate in insertion order and str hashes are not salted per process in Monty.
    assert!(
        first[5].starts_with("['b', 'a', 'zz', 'c', 'q'] "),
        "{}",
        first[5]
    );
    assert_eq!(first[6], "['y', 'x'] True");
}

#[test]
fn python_and_javascript_draw_the_same_values() {
    let python = "ctx.post(str(ctx.random_int(1, 1000000)))\nctx.post(ctx.random_bytes(8))\nctx.post(str(ctx.random_int(-5, 5)))\nctx.post(ctx.commit('x', ctx.random_bytes(16)))";
    let javascript = crate::support::on_init(
        "ctx.post(String(ctx.random_int(1, 1000000))); ctx.post(ctx.random_bytes(8)); ctx.post(String(ctx.random_int(-5, 5))); ctx.post(ctx.commit('x', ctx.random_bytes(16)));",
    );
    for seq in [1, 2, 99] {
        let mut ctx = context();
        ctx.event_seq = domain::Seq(seq);
        let limits = relaxed_limits();
        let py_reaction =
            run_event(&py(&py_init(python)), &ctx, &Event::Init, &limits).expect("py");
        let js_reaction = run_event(
            &crate::support::source(&javascript),
            &ctx,
            &Event::Init,
            &limits,
        )
        .expect("js");
        assert_eq!(texts(&py_reaction), texts(&js_reaction));
    }
}

// --- A whole game -----------------------------------------------------------------------------

const GUESS: &str = include_str!("../fixtures/guess.py");

struct PyGame {
    bot: BotSource,
    context: bots::EventContext,
    next_seq: i64,
}

impl PyGame {
    fn new(params: serde_json::Value) -> (Self, Reaction) {
        let mut context = context();
        context.players.clear();
        context.params = params;
        let mut game = Self {
            bot: BotSource::new("guess.py", GUESS).expect("small"),
            context,
            next_seq: 1,
        };
        let init = game.event(Event::Init);
        (game, init)
    }

    fn event(&mut self, event: Event) -> Reaction {
        self.context.event_seq = domain::Seq(self.next_seq);
        self.next_seq += 1;
        let reaction = run_event(&self.bot, &self.context, &event, &relaxed_limits())
            .expect("GuessBot events succeed");
        if let Some(state) = &reaction.state {
            self.context.state = Some(state.clone());
        }
        reaction
    }

    fn join(&mut self, label: &str) -> Reaction {
        let player = crate::support::player(label);
        self.context.players.push(player.clone());
        self.event(Event::Join(player))
    }

    fn say(&mut self, label: &str, text: &str) -> Reaction {
        self.event(message(label, text))
    }

    fn state(&self) -> &serde_json::Value {
        self.context.state.as_ref().expect("state")
    }
}

fn data(reaction: &Reaction, index: usize) -> serde_json::Value {
    serde_json::Value::Object(reaction.posts[index].body.data.clone().expect("data"))
}

#[test]
fn the_python_guess_bot_plays_to_the_end() {
    let (mut game, init) = PyGame::new(json!({"min": 1, "max": 50}));
    assert_eq!(game.bot.language(), Language::Python);
    let commitment = data(&init, 0);
    assert_eq!(commitment["type"], "commitment");
    assert_eq!(commitment["max"], 50);
    let secret = game.state()["secret"].as_i64().expect("secret");
    assert!((1..=50).contains(&secret));

    assert_eq!(game.join("alice").posts.len(), 1);
    assert_eq!(game.join("bob").posts.len(), 1);

    // Out of turn, and not a number: private answers, the turn does not move.
    let early = game.say("bob", "10");
    assert_eq!(early.posts[0].to, Some(crate::support::slot("bob")));
    let nonsense = game.say("alice", "fifty");
    assert_eq!(nonsense.posts[0].to, Some(crate::support::slot("alice")));
    assert_eq!(game.state()["turn"], 0);

    // Binary search, alternating players, until somebody hits it.
    let (mut low, mut high) = (1, 50);
    let mut players = ["alice", "bob"].iter().cycle();
    let reveal = loop {
        let guess = (low + high) / 2;
        let player = players.next().expect("cycle");
        let reaction = game.say(player, &guess.to_string());
        let post = data(&reaction, 0);
        match post["type"].as_str() {
            Some("hint") if post["hint"] == "higher" => low = guess + 1,
            Some("hint") => high = guess - 1,
            Some("reveal") => break (post, *player),
            other => panic!("unexpected post {other:?}"),
        }
    };
    let (reveal, winner) = reveal;
    assert_eq!(reveal["winner"], winner);
    assert_eq!(reveal["value"], secret.to_string());
    assert_eq!(reveal["commitment"], commitment["commitment"]);
    let salt = hex::decode(reveal["salt"].as_str().expect("hex")).expect("hex");
    assert_eq!(
        bots::commitment(
            reveal["channel_id"].as_str().expect("str"),
            reveal["bot_slot"].as_str().expect("str"),
            reveal["value"].as_str().expect("str"),
            &salt
        ),
        commitment["commitment"].as_str().expect("str")
    );
    // The game is over: more guesses are ignored.
    assert!(game.say("alice", "1").posts.is_empty());
}

#[test]
fn the_python_guess_bot_refuses_bad_params() {
    let bot = BotSource::new("guess.py", GUESS).expect("small");
    let mut ctx = context();
    ctx.params = json!({"min": 10, "max": 1});
    let error = run_event(&bot, &ctx, &Event::Init, &relaxed_limits()).expect_err("refused");
    assert_eq!(error.kind, BotErrorKind::Threw);
    assert!(
        error
            .message
            .starts_with("on_init threw ValueError: params min and max"),
        "{error}"
    );
    assert!(error.line.is_some(), "{error}");
}

// --- Hostile code -----------------------------------------------------------------------------
// Each attempt ends with a clear kind (or is harmless), then a JavaScript and a Python event run
// normally in the same process.

/// A normal Python event, after an abusive one.
#[track_caller]
fn assert_python_healthy() {
    let reaction = expect_ok(init_py(
        "ctx.post('still here')\nctx.set_state({'ok': True})",
    ));
    assert_eq!(texts(&reaction), ["still here"]);
    assert_eq!(reaction.state, Some(json!({"ok": true})));
}

/// Runs `body` as `on_init` under `limits`, expects `kind`, then checks both runtimes work.
#[track_caller]
fn contained_with(body: &str, limits: &bots::Limits, kind: BotErrorKind) -> BotError {
    let result = run_event(&py(&py_init(body)), &context(), &Event::Init, limits);
    let error = assert_contained(result, kind);
    assert_python_healthy();
    error
}

#[track_caller]
fn contained(body: &str, kind: BotErrorKind) -> BotError {
    contained_with(body, &relaxed_limits(), kind)
}

#[test]
fn hostile_imports_of_os_socket_and_subprocess() {
    let error = contained(
        "import os\nctx.post(os.getenv('HOME'))",
        BotErrorKind::Threw,
    );
    assert!(
        error
            .message
            .contains("PermissionError: os.getenv() is not available"),
        "{error}"
    );
    let error = contained("import os\nctx.post(str(os.environ))", BotErrorKind::Threw);
    assert!(error.message.contains("PermissionError"), "{error}");
    for module in ["socket", "subprocess", "time", "random", "sys; sys.exit()"] {
        let error = contained(&format!("import {module}"), BotErrorKind::Threw);
        assert!(
            error.message.contains("ModuleNotFoundError")
                || error.message.contains("NameError")
                || error.message.contains("AttributeError"),
            "{module}: {error}"
        );
    }
}

#[test]
fn hostile_open_reads_no_file() {
    let error = contained("ctx.post(open('/etc/passwd').read())", BotErrorKind::Threw);
    assert_eq!(
        error.message,
        "on_init threw PermissionError: open() is not available to bots: they have no files, environment or network"
    );
    assert_eq!(error.line, Some(8));
    let error = contained(
        "from pathlib import Path\nctx.post(Path('/etc/passwd').read_text())",
        BotErrorKind::Threw,
    );
    assert!(error.message.contains("PermissionError"), "{error}");
}

#[test]
fn hostile_eval_exec_import_and_globals_are_not_defined() {
    for call in [
        "eval('1 + 1')",
        "exec('x = 1')",
        "__import__('os')",
        "globals()",
        "compile('1', 'f', 'eval')",
        "breakpoint()",
        "input()",
    ] {
        let error = contained(&format!("ctx.post(str({call}))"), BotErrorKind::Threw);
        assert!(error.message.contains("NameError"), "{call}: {error}");
    }
    // Caught, the NameError is an ordinary exception: nothing was reached.
    let reaction = expect_ok(init_py(
        "try:\n    eval('1')\nexcept NameError as e:\n    ctx.post(str(e))",
    ));
    assert_eq!(texts(&reaction), ["name 'eval' is not defined"]);
}

#[test]
fn hostile_subclasses_and_dunder_walks_find_nothing() {
    let error = contained(
        "ctx.post(str(object.__subclasses__()))",
        BotErrorKind::Threw,
    );
    assert!(error.message.contains("AttributeError"), "{error}");
    let error = contained("ctx.post(str(().__class__.__bases__))", BotErrorKind::Threw);
    assert!(error.message.contains("AttributeError"), "{error}");
    let error = contained("ctx.post(str(ctx.post.__globals__))", BotErrorKind::Threw);
    assert!(error.message.contains("AttributeError"), "{error}");
}

#[test]
fn hostile_infinite_loop_cannot_be_caught() {
    let error = contained_with(
        "try:\n    while True:\n        pass\nexcept BaseException:\n    ctx.post('caught')\nfinally:\n    ctx.post('finally')",
        &bots::Limits::default(),
        BotErrorKind::CpuBudget,
    );
    assert_eq!(error.message, "the event ran past its CPU budget of 50 ms");
}

#[test]
fn hostile_loop_around_ctx_hits_the_budget() {
    contained_with(
        "while True:\n    try:\n        ctx.now()\n    except BaseException:\n        pass",
        &bots::Limits::default(),
        BotErrorKind::CpuBudget,
    );
}

#[test]
fn hostile_post_flood_fails_even_when_caught() {
    let error = contained(
        "for i in range(1000):\n    try:\n        ctx.post('spam')\n    except BaseException:\n        pass",
        BotErrorKind::TooManyPosts,
    );
    assert!(error.message.contains("at most 20"), "{error}");
}

#[test]
fn hostile_huge_state_is_refused() {
    contained(
        "ctx.set_state({'blob': 'x' * 60000, 'more': 'y' * 10000})",
        BotErrorKind::StateTooLarge,
    );
}

#[test]
fn hostile_state_that_is_not_json() {
    for body in [
        "ctx.set_state({'s': {1, 2}})",
        "ctx.set_state(self)",
        "ctx.set_state([float('nan')])",
        "ctx.set_state(frozenset())",
        "import datetime\nctx.set_state(datetime.date(2020, 1, 1))",
        "ctx.set_state(lambda: 1)",
    ] {
        let error = contained(body, BotErrorKind::BadState);
        assert!(
            error
                .message
                .starts_with("ctx.set_state(state): the state is not JSON"),
            "{body}: {error}"
        );
    }
}

#[test]
fn hostile_deeply_nested_values_are_refused() {
    contained(
        "a = []\nfor i in range(5000):\n    a = [a]\nctx.set_state(a)",
        BotErrorKind::BadState,
    );
    contained(
        "a = {}\nfor i in range(5000):\n    a = {'k': a}\nctx.post({'data': a})",
        BotErrorKind::BadPost,
    );
    let error = contained(
        "import json\na = []\nfor i in range(5000):\n    a = [a]\njson.dumps(a)",
        BotErrorKind::StackOverflow,
    );
    assert!(error.message.contains("recursion too deep"), "{error}");
}

#[test]
fn hostile_recursion_is_a_stack_overflow() {
    let code = "class Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n    def on_init(self):\n        self.dive(0)\n    def dive(self, n):\n        return self.dive(n + 1) + 1\n";
    let error = assert_contained(run_py(code, &Event::Init), BotErrorKind::StackOverflow);
    assert_eq!(
        error.message,
        "on_init overflowed the stack (recursion too deep)"
    );
    assert_eq!(error.line, Some(7));
    assert_python_healthy();
    // Caught, a RecursionError is an ordinary exception, as in CPython.
    let reaction = expect_ok(init_py(
        "def f(n):\n    return f(n + 1)\ntry:\n    f(0)\nexcept RecursionError:\n    ctx.post('caught')",
    ));
    assert_eq!(texts(&reaction), ["caught"]);
}

#[test]
fn hostile_refused_ctx_calls_fail_the_event_even_when_caught() {
    let error = contained(
        "try:\n    ctx.post_to('mallory', 'x')\nexcept BaseException:\n    pass\nctx.post('fine')\nctx.set_state({'ok': True})",
        BotErrorKind::BadPost,
    );
    assert!(error.message.contains("mallory"), "{error}");
    contained(
        "try:\n    ctx.random_int(5, 1)\nfinally:\n    ctx.post('finally never runs')",
        BotErrorKind::BadArgument,
    );
}

#[test]
fn hostile_kinds_that_are_not_strings() {
    for kind in ["b'bot'", "None", "0", "['bot']", "ctx"] {
        let error = contained(
            &format!("ctx.post({kind}, 'hi')"),
            BotErrorKind::BadArgument,
        );
        assert!(
            error.message.contains("kind must be a string"),
            "{kind}: {error}"
        );
    }
}

#[test]
fn hostile_getattr_tricks_on_ctx_change_only_the_bots_own_view() {
    let reaction = expect_ok(init_py(
        r#"ctx.channel_id = 'ch_forged'
ctx.bot_slot = 'alice'
setattr(ctx, 'now', lambda: 0)
ctx.post(str(getattr(ctx, 'now')()) + ' ' + type(ctx).__name__)
ctx.post(ctx.commit('v', '00' * 16))"#,
    ));
    let salt = [0u8; 16];
    assert_eq!(texts(&reaction)[0], "0 _mm_Ctx");
    assert_eq!(
        texts(&reaction)[1],
        bots::commitment(context().channel_id.as_str(), "referee", "v", &salt),
        "the host commits for the real channel and slot"
    );
    // The host functions behind ctx apply the same checks when called directly.
    contained("_mm_post({'data': [1]})", BotErrorKind::BadPost);
    contained("_mm_post_to('alice', 'x', 'y')", BotErrorKind::BadArgument);
    contained("_mm_set_state(state={'a': 1})", BotErrorKind::BadArgument);
    assert_python_healthy();
}

#[test]
fn hostile_huge_results_are_refused_before_allocating() {
    let error = contained("x = 'a' * 10 ** 10", BotErrorKind::Memory);
    assert!(error.message.contains("memory limit exceeded"), "{error}");
    contained("x = [0] * 10 ** 9", BotErrorKind::Memory);
    contained("x = 2 ** (10 ** 10)", BotErrorKind::Memory);
    contained("x = 1 << (10 ** 10)", BotErrorKind::Memory);
    contained("x = 'ab'.replace('', 'x' * 10 ** 8)", BotErrorKind::Memory);
}

#[test]
fn hostile_fake_resource_errors_are_only_exceptions() {
    let error = contained(
        "raise TimeoutError('time limit exceeded: 1s > 0s')",
        BotErrorKind::Threw,
    );
    assert!(
        error.message.starts_with("on_init threw TimeoutError"),
        "{error}"
    );
    // A MemoryError raised by hand is still reported as memory: it is the bot's own failure.
    contained("raise MemoryError('fake')", BotErrorKind::Memory);
}

#[test]
fn hostile_long_exception_messages_are_cut() {
    let error = contained("raise ValueError('x' * 100000)", BotErrorKind::Threw);
    assert!(
        error.message.chars().count() <= bots::error::MAX_MESSAGE_CHARS + 1,
        "{}",
        error.message.len()
    );
}

#[test]
fn hostile_print_goes_nowhere() {
    let reaction = expect_ok(init_py(
        "for i in range(1000):\n    print('x' * 1000)\nctx.post('ok')",
    ));
    assert_eq!(texts(&reaction), ["ok"]);
}

// --- What Monty does not support, and bad sources ----------------------------------------------

#[test]
fn unsupported_python_is_a_bad_source_with_its_line() {
    for (code, line, needle) in [
        (
            "class Base:\n    pass\n\nclass Bot(Base):\n    pass\n",
            4,
            "class inheritance",
        ),
        (
            "class MyError(Exception):\n    pass\n\nclass Bot:\n    pass\n",
            1,
            "class inheritance",
        ),
        (
            "class Bot:\n    @property\n    def x(self):\n        return 1\n",
            2,
            "method decorators",
        ),
        (
            "class Bot:\n    @staticmethod\n    def x():\n        return 1\n",
            2,
            "method decorators",
        ),
        (
            "class Bot:\n    def on_init(self)\n        pass\n",
            2,
            "SyntaxError",
        ),
    ] {
        let error = assert_contained(run_py(code, &Event::Init), BotErrorKind::BadSource);
        assert!(error.message.contains(needle), "{code}: {error}");
        assert_eq!(error.line, Some(line), "{code}: {error}");
        let checked = bots::check_source(&py(code), &relaxed_limits()).expect_err("refused");
        assert_eq!(checked, error);
    }
}

#[test]
fn errors_name_where_they_happened() {
    let error = assert_contained(
        run_py("x = 1 / 0\nclass Bot:\n    pass\n", &Event::Init),
        BotErrorKind::Threw,
    );
    assert_eq!(
        error.message,
        "the top-level code threw ZeroDivisionError: division by zero"
    );
    assert_eq!(error.line, Some(1));
    let code =
        "class Echo:\n    def __init__(self, ctx, params):\n        raise KeyError('boom')\n";
    let error = assert_contained(run_py(code, &Event::Init), BotErrorKind::Threw);
    assert!(
        error.message.starts_with("Echo.__init__ threw KeyError"),
        "{error}"
    );
    assert_eq!(error.line, Some(3));
    let error = assert_contained(
        run_py(
            ECHO_BOT.replace("msg.get('kind')", "msg.kind").as_str(),
            &message("alice", "x"),
        ),
        BotErrorKind::Threw,
    );
    assert!(
        error.message.starts_with("on_message threw AttributeError"),
        "{error}"
    );
    assert_eq!(error.line, Some(10));
    let no_init = "class Bot:\n    def on_init(self):\n        pass\n";
    let error = assert_contained(run_py(no_init, &Event::Init), BotErrorKind::Threw);
    assert!(
        error.message.contains("Bot.__init__ threw TypeError"),
        "{error}"
    );
}

/// What one Python GuessBot move costs in-process, fresh interpreter and thread included, next
/// to the JavaScript GuessBot: `cargo test -p bots --release --test it python_event_cost --
/// --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check"]
fn python_event_cost() {
    let (mut game, _) = PyGame::new(json!({"min": 1, "max": 100}));
    game.join("alice");
    game.join("bob");
    let secret = game.state()["secret"].as_i64().expect("secret");
    let wrong = if secret == 1 { 2 } else { 1 };
    let guess = message("alice", &wrong.to_string());
    let limits = relaxed_limits();
    let mut samples: Vec<_> = (0..205)
        .map(|_| {
            let started = std::time::Instant::now();
            let reaction = run_event(&game.bot, &game.context, &guess, &limits).expect("a guess");
            assert_eq!(data(&reaction, 0)["type"], "hint");
            started.elapsed()
        })
        .skip(5)
        .collect();
    samples.sort();
    let (js_p50, js_p99) = bots::bench::event_cost(200);
    println!(
        "Python GuessBot move, 200 events: p50 {:.3} ms, p99 {:.3} ms; JavaScript GuessBot: p50 {:.3} ms, p99 {:.3} ms",
        samples[100].as_secs_f64() * 1e3,
        samples[198].as_secs_f64() * 1e3,
        js_p50.as_secs_f64() * 1e3,
        js_p99.as_secs_f64() * 1e3,
    );
}

/// The modules the guide lists as available work in a bot.
#[test]
fn the_documented_modules_import() {
    let reaction = expect_ok(init_py(
        r#"import json, math, re, itertools, functools, base64, typing, unicodedata
from collections import Counter, defaultdict, deque, namedtuple
from dataclasses import dataclass
import datetime
ctx.post(json.dumps({'a': [1, 2]}) + ' ' + str(math.floor(2.5)) + ' ' + str(re.findall(r'\d+', 'a1b22')))
ctx.post(str(Counter('abca').most_common(1)) + ' ' + str(functools.reduce(lambda a, b: a + b, [1, 2, 3])))
ctx.post(base64.b64encode(b'hi').decode() + ' ' + str(datetime.timedelta(days=1)))"#,
    ));
    assert_eq!(
        texts(&reaction),
        [
            "{\"a\": [1, 2]} 2 ['1', '22']",
            "[('a', 2)] 6",
            "aGk= 1 day, 0:00:00"
        ]
    );
}

/// The guide's Python section: its EchoBot is the prototype's, verbatim, and the errors it
/// quotes for what Monty lacks are the real ones.
#[test]
fn the_guide_python_section_is_accurate() {
    let guide = include_str!("../../../../docs/bot-api.md");
    let section = guide
        .split("## Python bots")
        .nth(1)
        .expect("a Python section");
    let example = section
        .split("The prototype's example runs unchanged:\n\n```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the EchoBot example");
    assert_eq!(example, ECHO_BOT.trim_start());
    for code in [
        "class Base:\n    pass\n\nclass Bot(Base):\n    pass\n",
        "class Bot:\n    @property\n    def x(self):\n        return 1\n",
    ] {
        let error = run_py(code, &Event::Init).expect_err("unsupported");
        assert!(
            section.contains(&format!("`{error}`")),
            "the guide does not quote {error}"
        );
    }
}

#[test]
fn a_state_of_exactly_64_kib_is_kept_and_one_byte_more_is_refused() {
    let limit = relaxed_limits().max_state_bytes;
    let set = |bytes: usize| init_py(&format!("ctx.set_state('x' * {})", bytes - 2));
    let kept = expect_ok(set(limit)).state.expect("state set");
    assert_eq!(kept.to_string().len(), limit);
    assert_contained(set(limit + 1), bots::BotErrorKind::StateTooLarge);
}
