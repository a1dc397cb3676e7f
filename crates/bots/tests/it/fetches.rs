//! Fetches: `ctx.request_fetch(url, options)` in JavaScript and Python, which `fetch_attested`
//! notices are a bot's `on_fetch(result)` event and what the result holds, and WitnessBot.

use std::collections::BTreeMap;

use bots::{
    BotErrorKind, BotSource, Event, FetchRequest, Language, MAX_FETCH_CALLS, MAX_FETCH_URL_BYTES,
    Reaction,
};
use domain::attestation::{
    Attestation, BodyRecord, Certificate, FetchFailure, FetchFailureCode, TlsRecord,
    WitnessSignature,
};
use domain::{Message, MessageKind, Notice, Seq, Timestamp};
use serde_json::{Value, json};

use crate::support::{NOW_MS, assert_contained, context, relaxed_limits, run_event, slot};

fn js(on_init: &str) -> BotSource {
    BotSource::new(
        "fetcher.js",
        format!(
            "class Bot {{ constructor(ctx) {{ this.ctx = ctx; }}\n\
             on_init() {{ const ctx = this.ctx;\n{on_init}\n}}\n\
             on_fetch(r) {{ this.ctx.post({{data: {{got: r}}}}); }} }}"
        ),
    )
    .expect("small")
}

fn py(on_init: &str) -> BotSource {
    let mut code = String::from(
        "class Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n    def on_init(self):\n        ctx = self.ctx\n",
    );
    for line in on_init.lines() {
        code.push_str("        ");
        code.push_str(line);
        code.push('\n');
    }
    BotSource::with_language("fetcher", code, Language::Python).expect("small")
}

fn init(bot: &BotSource) -> Result<Reaction, bots::BotError> {
    run_event(bot, &context(), &Event::Init, &relaxed_limits())
}

fn request(url: &str, tag: &str) -> FetchRequest {
    FetchRequest {
        url: url.to_owned(),
        tag: tag.to_owned(),
    }
}

#[test]
fn requests_are_kept_in_call_order_with_their_tags_in_both_languages() {
    let javascript = js(r#"ctx.request_fetch("https://example.com/a");
        ctx.request_fetch("https://example.com/b", {tag: "second"});
        ctx.request_fetch("https://example.com/c", null);"#);
    let python = py(r#"ctx.request_fetch("https://example.com/a")
ctx.request_fetch("https://example.com/b", {"tag": "second"})
ctx.request_fetch("https://example.com/c", None)"#);
    for bot in [javascript, python] {
        let reaction = init(&bot).expect("runs");
        assert_eq!(
            reaction.fetches,
            [
                request("https://example.com/a", "fetch"),
                request("https://example.com/b", "second"),
                request("https://example.com/c", "fetch"),
            ],
            "{:?}",
            bot.language()
        );
    }
}

#[test]
fn bad_requests_fail_the_event_even_when_caught() {
    let longest = format!("https://e.com/{}", "a".repeat(MAX_FETCH_URL_BYTES - 14));
    let js_cases = [
        format!(r#"ctx.request_fetch("{longest}a");"#),
        r#"ctx.request_fetch("http://example.com/");"#.to_owned(),
        r#"ctx.request_fetch("https://");"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/a b");"#.to_owned(),
        r#"ctx.request_fetch(42);"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", "tag");"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", {tag: ""});"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", {tag: 7});"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", {method: "POST"});"#.to_owned(),
        format!(
            "for (let i = 0; i <= {MAX_FETCH_CALLS}; i++) {{ ctx.request_fetch(\"https://e.com/\"); }}"
        ),
    ];
    for case in js_cases {
        let bot = js(&format!("try {{ {case} }} catch (e) {{}}"));
        let error = assert_contained(init(&bot), BotErrorKind::BadArgument);
        assert!(
            error.message.contains("ctx.request_fetch"),
            "{case}: {error:?}"
        );
    }
    let py_cases = [
        r#"ctx.request_fetch("http://example.com/")"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", {"method": "POST"})"#.to_owned(),
        r#"ctx.request_fetch("https://example.com/", "tag")"#.to_owned(),
        r#"ctx.request_fetch(42)"#.to_owned(),
        format!(
            "for i in range({}):\n    ctx.request_fetch(\"https://e.com/\")",
            MAX_FETCH_CALLS + 1
        ),
    ];
    for case in py_cases {
        let bot = py(&format!(
            "try:\n{}\nexcept Exception:\n    pass",
            indent(&case)
        ));
        let error = assert_contained(init(&bot), BotErrorKind::BadArgument);
        assert!(
            error.message.contains("ctx.request_fetch"),
            "{case}: {error:?}"
        );
    }
    let at_cap = js(&format!("ctx.request_fetch(\"{longest}\");"));
    assert_eq!(
        init(&at_cap).expect("at the cap").fetches,
        [request(&longest, "fetch")]
    );
}

fn indent(code: &str) -> String {
    code.lines().map(|line| format!("    {line}\n")).collect()
}

#[test]
fn a_failed_event_asks_for_no_fetch() {
    let bot = js(r#"ctx.request_fetch("https://example.com/"); throw new Error("no");"#);
    assert_contained(init(&bot), BotErrorKind::Threw);
}

fn attestation() -> Attestation {
    Attestation {
        url: "https://example.com/page".into(),
        fetched_at: Timestamp(NOW_MS - 40),
        address: Some("93.184.215.14:443".into()),
        tls: Some(TlsRecord {
            version: "TLSv1_3".into(),
            cipher: "TLS13_AES_128_GCM_SHA256".into(),
            server_name: "example.com".into(),
            chain: vec![Certificate {
                sha256: "ab".repeat(32),
                der: "MIIB".into(),
            }],
        }),
        status: Some(200),
        headers: BTreeMap::from([("content-type".to_owned(), "text/plain".to_owned())]),
        body: Some(BodyRecord {
            sha256: "cd".repeat(32),
            bytes: 5,
            truncated: false,
            text: Some("hello".into()),
            base64: None,
        }),
        error: None,
    }
}

fn attested(seq: i64, for_slot: &str, attestation: Attestation) -> Message {
    let notice = Notice::FetchAttested {
        slot: slot(for_slot),
        tag: "req-7".into(),
        requested_by: Seq(7),
        attestation: Box::new(attestation),
        witness: WitnessSignature {
            key_id: "ed25519:0123456789abcdef".into(),
            signature: "sig".into(),
        },
    };
    Message {
        seq: Seq(seq),
        kind: MessageKind::System,
        sender: None,
        sender_name: "system".into(),
        body: notice.body(Timestamp(NOW_MS)),
        to: None,
        at: Timestamp(NOW_MS),
        hash: domain::ChainHash::genesis(),
        nonce: None,
    }
}

#[test]
fn a_fetch_notice_is_the_event_of_the_bot_that_asked_only() {
    let message = attested(12, "referee", attestation());
    assert_eq!(Event::for_bot(&slot("other"), &message), None);
    let Some(Event::Fetch(result)) = Event::for_bot(&slot("referee"), &message) else {
        panic!("the asking bot's event");
    };
    assert_eq!(result["seq"], 12);
    assert_eq!(result["tag"], "req-7");
    assert_eq!(result["requested_by"], 7);
    assert_eq!(result["ok"], true);
    assert_eq!(result["status"], 200);
    assert_eq!(result["body"]["text"], "hello");
    assert_eq!(result["tls"]["chain"][0]["sha256"], "ab".repeat(32));
    assert_eq!(result["witness"]["key_id"], "ed25519:0123456789abcdef");
    assert_eq!(Event::Fetch(result.clone()).handler_name(), "on_fetch");

    // The bot receives exactly that object.
    let bot = js("");
    let reaction = run_event(
        &bot,
        &context(),
        &Event::Fetch(result.clone()),
        &relaxed_limits(),
    )
    .expect("runs");
    let got = reaction.posts[0].body.data.as_ref().expect("data")["got"].clone();
    assert_eq!(got, result);
}

fn witness() -> BotSource {
    bots::builtin("WitnessBot").expect("a builtin")
}

fn say(sender: &str, seq: i64, text: Option<&str>, data: Option<Value>) -> Event {
    Event::Message(Message {
        seq: Seq(seq),
        kind: MessageKind::User,
        sender: Some(slot(sender)),
        sender_name: "Alice".into(),
        body: domain::Body::new(
            text.map(str::to_owned),
            data.map(|data| match data {
                Value::Object(map) => map,
                _ => panic!("data is an object"),
            }),
        )
        .expect("valid"),
        to: None,
        at: Timestamp(NOW_MS),
        hash: domain::ChainHash::genesis(),
        nonce: None,
    })
}

fn data(reaction: &Reaction, index: usize) -> Value {
    Value::Object(reaction.posts[index].body.data.clone().expect("data"))
}

#[test]
fn witness_bot_passes_requests_on_and_posts_what_the_server_saw() {
    let bot = witness();
    let mut ctx = context();
    let limits = relaxed_limits();
    let opened = run_event(&bot, &ctx, &Event::Init, &limits).expect("init");
    assert_eq!(data(&opened, 0)["type"], "rules");
    ctx.state = opened.state.clone();

    let asked = run_event(
        &bot,
        &ctx,
        &say("alice", 7, Some("fetch https://example.com/page"), None),
        &limits,
    )
    .expect("a request");
    assert_eq!(
        asked.fetches,
        [request("https://example.com/page", "req-7")]
    );
    assert_eq!(data(&asked, 0)["type"], "requested");
    ctx.state = asked.state.clone();

    let by_data = run_event(
        &bot,
        &ctx,
        &say(
            "bob",
            9,
            None,
            Some(json!({"fetch": "https://example.org/"})),
        ),
        &limits,
    )
    .expect("a request in data");
    assert_eq!(by_data.fetches, [request("https://example.org/", "req-9")]);

    for (text, data_body) in [
        (Some("fetch http://example.com/"), None),
        (Some("fetch ftp://x"), None),
        (None, Some(json!({"fetch": 42}))),
    ] {
        let refused = run_event(&bot, &ctx, &say("alice", 10, text, data_body), &limits)
            .expect("a violation, not a failure");
        assert!(refused.fetches.is_empty());
        assert_eq!(refused.posts[0].to, Some(slot("alice")));
        assert_eq!(data(&refused, 0)["code"], "BAD_URL");
    }
    let chat = run_event(
        &bot,
        &ctx,
        &say("alice", 11, Some("hello there"), None),
        &limits,
    )
    .expect("chat");
    assert!(chat.posts.is_empty() && chat.fetches.is_empty());

    let Some(Event::Fetch(result)) =
        Event::for_bot(&slot("referee"), &attested(12, "referee", attestation()))
    else {
        panic!("an event");
    };
    let answered = run_event(&bot, &ctx, &Event::Fetch(result), &limits).expect("on_fetch");
    let post = data(&answered, 0);
    assert_eq!(post["type"], "attested");
    assert_eq!(post["seq"], 12);
    assert_eq!(post["by"], "alice");
    assert_eq!(post["status"], 200);
    assert_eq!(post["body_sha256"], "cd".repeat(32));
    assert_eq!(post["excerpt"], "hello");
    assert_eq!(post["tls"]["leaf_sha256"], "ab".repeat(32));
    assert!(answered.posts[0].to.is_none(), "everyone sees it");

    let mut failed = attestation();
    failed.tls = None;
    failed.status = None;
    failed.body = None;
    failed.address = None;
    failed.error = Some(FetchFailure {
        code: FetchFailureCode::AddressRefused,
        message: "127.0.0.1 is not a public address".into(),
    });
    let Some(Event::Fetch(result)) =
        Event::for_bot(&slot("referee"), &attested(13, "referee", failed))
    else {
        panic!("an event");
    };
    let answered = run_event(&bot, &ctx, &Event::Fetch(result), &limits).expect("on_fetch");
    let post = data(&answered, 0);
    assert_eq!(post["ok"], false);
    assert_eq!(post["error"]["code"], "ADDRESS_REFUSED");
}

#[test]
fn witness_bot_says_busy_past_its_pending_cap() {
    let bot = witness();
    let mut ctx = context();
    let limits = relaxed_limits();
    ctx.state = run_event(&bot, &ctx, &Event::Init, &limits)
        .expect("init")
        .state;
    for seq in 0..bots::MAX_PENDING_FETCHES {
        let seq = i64::try_from(seq).expect("small") + 20;
        let asked = run_event(
            &bot,
            &ctx,
            &say("alice", seq, Some("fetch https://e.com/"), None),
            &limits,
        )
        .expect("a request");
        assert_eq!(asked.fetches.len(), 1);
        ctx.state = asked.state;
    }
    let busy = run_event(
        &bot,
        &ctx,
        &say("alice", 99, Some("fetch https://e.com/"), None),
        &limits,
    )
    .expect("a violation");
    assert!(busy.fetches.is_empty());
    assert_eq!(data(&busy, 0)["code"], "BUSY");
}
