//! SealedExchangeBot played event by event: the opening post and its params, the channel's
//! reveal_private setting, answers sealed and revealed together with every commitment
//! recomputed, double and late submissions, withdrawals on either side of the last answer,
//! leaving, the clock, sealed-bid auctions at first and second price with ties, and what a
//! revealed seed gives away; then thousands of random sequences of events against a reference
//! model.

use std::sync::atomic::{AtomicUsize, Ordering};

use bots::random::EventRandom;
use bots::{BotPost, BotSeed, Event, Limits, SlotInfo};
use domain::SlotKind;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{relaxed_limits, slot};
use crate::table::{
    BOT, Rng, Table, data, data_body, find, game_cases, only, play_many, text_body, types,
    violation,
};

const QUESTION: &str = "Which city should host the next offsite?";
const SCHEME: &str = "mcp-multiplayer/commit/v1";

/// The bot attached with `params` in a channel with reveal_private false, `seated` in their
/// seats already, and invite slots `extra` besides alice, bob and carol.
fn open_with(
    params: Value,
    seated: &[&str],
    extra: &[&str],
    limits: Limits,
) -> (Table, Vec<BotPost>) {
    let mut table = Table::new("sealed", params, seated, limits);
    table.context.reveal_private = false;
    for label in extra {
        table.context.slots.push(SlotInfo {
            slot: slot(label),
            kind: SlotKind::Invite,
            holder: None,
        });
    }
    let posts = table.step(Event::Init).posts;
    (table, posts)
}

/// An exchange (or auction) with alice and bob seated when the bot was attached; `params` adds
/// to the question.
fn opened(params: Value) -> (Table, Value) {
    let mut all = json!({"question": QUESTION});
    for (key, value) in params.as_object().expect("an object") {
        all[key] = value.clone();
    }
    let (table, posts) = open_with(all, &["alice", "bob"], &[], relaxed_limits());
    let rules = only(&posts, "rules");
    (table, rules)
}

fn sha256_tagged(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

/// The keys of a JSON object, sorted.
fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

#[track_caller]
fn assert_keys(value: &Value, expected: &[&str]) {
    let mut expected: Vec<String> = expected.iter().map(|k| (*k).to_owned()).collect();
    expected.sort();
    assert_eq!(keys(value), expected, "{value}");
}

/// Every commitment of a reveal recomputed from its answer and salt (docs/bot-api.md).
#[track_caller]
fn assert_reveal_opens(reveal: &Value, table: &Table) {
    assert_eq!(reveal["scheme"], SCHEME);
    assert_eq!(reveal["channel_id"], table.context.channel_id.as_str());
    assert_eq!(reveal["bot_slot"], BOT);
    assert_eq!(reveal["question_hash"], sha256_tagged(QUESTION));
    for entry in reveal["answers"].as_array().expect("answers") {
        assert_keys(entry, &["slot", "answer", "salt", "commitment"]);
        let salt = hex::decode(entry["salt"].as_str().expect("a salt")).expect("hex");
        assert_eq!(salt.len(), 16, "128 bits of salt");
        let answer = entry["answer"].as_str().expect("an answer");
        let recomputed = bots::commitment(table.context.channel_id.as_str(), BOT, answer, &salt);
        assert_eq!(entry["commitment"], recomputed, "{entry}");
    }
}

/// No post of `posts` shows any of `secrets` (answers, salts), except to its owner: a secret
/// `(owner, text)` may appear only in a post private to `owner`.
#[track_caller]
fn assert_nothing_shown(posts: &[BotPost], secrets: &[(String, String)]) {
    for post in posts {
        let text = post.body.text.as_deref().unwrap_or("");
        let json = post
            .body
            .data
            .as_ref()
            .map(|d| Value::Object(d.clone()).to_string())
            .unwrap_or_default();
        for (owner, secret) in secrets {
            if post.to.as_ref().is_some_and(|to| to.as_str() == owner) {
                continue;
            }
            assert!(
                !text.contains(secret.as_str()) && !json.contains(secret.as_str()),
                "{secret} (of {owner}) is shown in {post:#?}"
            );
        }
    }
}

/// The state holds none of `secrets`.
#[track_caller]
fn assert_state_forgets(table: &Table, secrets: &[(String, String)]) {
    let state = table.state().to_string();
    for (owner, secret) in secrets {
        assert!(
            !state.contains(secret.as_str()),
            "{owner}'s {secret} is kept in {state}"
        );
    }
}

/// The receipt and the sealed post of one answer; returns (answer, salt, commitment).
#[track_caller]
fn sealed(posts: &[BotPost], who: &str, order: u64) -> (String, String, String) {
    assert!(posts.len() >= 2, "{posts:#?}");
    assert_eq!(posts[0].to, Some(slot(who)), "the receipt is private");
    let receipt = data(&posts[0]);
    assert_keys(&receipt, &["type", "answer", "salt", "commitment", "order"]);
    assert_eq!(receipt["type"], "your_answer");
    assert_eq!(receipt["order"], order);
    assert_eq!(posts[1].to, None, "the commitment is public");
    let public = data(&posts[1]);
    assert_eq!(public["type"], "sealed");
    assert_keys(
        &public,
        &[
            "type",
            "slot",
            "commitment",
            "order",
            "seated",
            "waiting",
            "open_seats",
            "deadline",
        ],
    );
    assert_eq!(public["slot"], who);
    assert_eq!(public["order"], order);
    assert_eq!(public["commitment"], receipt["commitment"]);
    (
        receipt["answer"].as_str().expect("answer").to_owned(),
        receipt["salt"].as_str().expect("salt").to_owned(),
        receipt["commitment"]
            .as_str()
            .expect("commitment")
            .to_owned(),
    )
}

/// The one called_off post of `posts`, checked for shape and for the end of the run.
#[track_caller]
fn called_off(table: &Table, posts: &[BotPost], reason: &str, by: Value) -> Value {
    let off = only(posts, "called_off");
    assert_eq!(posts[0].to, None);
    assert_keys(
        &off,
        &["type", "reason", "by", "answered", "missing", "open_seats"],
    );
    assert_eq!(off["reason"], reason);
    assert_eq!(off["by"], by);
    let text = posts[0].body.text.as_deref().unwrap_or("");
    assert!(text.contains("No answer is revealed"), "{text}");
    let reason = table.ended.clone().expect("ended").expect("a reason");
    assert!(reason.starts_with("called off"), "{reason}");
    assert!(table.timers.is_empty(), "no clock after the end");
    off
}

// ---------------------------------------------------------------------------------------------
// The opening post and the params.

#[test]
fn the_opening_post_shows_the_question_its_hash_and_the_rules() {
    let (table, rules) = opened(json!({}));
    assert_eq!(
        rules,
        json!({
            "type": "rules",
            "question": QUESTION,
            "question_hash": sha256_tagged(QUESTION),
            "mode": "exchange",
            "participants": 2,
            "seated": ["alice", "bob"],
            "waiting": ["alice", "bob"],
            "open_seats": 0,
            "max_answer_bytes": 4000,
            "answer_timeout_ms": null,
            "deadline": null,
            "reveal_private": false,
            "scheme": SCHEME,
        })
    );
    let text = table.log[0].body.text.clone().expect("text");
    for needle in [
        QUESTION,
        sha256_tagged(QUESTION).as_str(),
        "PRIVATELY",
        "to: referee",
        "withdraw",
        "nonce",
        "2 of 2 seated",
    ] {
        assert!(text.contains(needle), "{needle} not in {text}");
    }
    assert!(!text.contains("WARNING"), "{text}");
    assert!(table.timers.is_empty(), "no clock unless asked for");
    assert!(table.ended.is_none());

    // An auction with a clock, and nobody seated yet.
    let params = json!({"question": QUESTION, "mode": "auction", "participants": 3,
        "min_bid": 5, "max_bid": 500, "price": "second", "answer_timeout_ms": 90_000});
    let (table, posts) = open_with(params, &[], &[], relaxed_limits());
    let rules = only(&posts, "rules");
    assert_eq!(
        rules,
        json!({
            "type": "rules",
            "question": QUESTION,
            "question_hash": sha256_tagged(QUESTION),
            "mode": "auction",
            "participants": 3,
            "seated": [],
            "waiting": [],
            "open_seats": 3,
            "min_bid": 5,
            "max_bid": 500,
            "price": "second",
            "answer_timeout_ms": 90_000,
            "deadline": table.now + 90_000,
            "reveal_private": false,
            "scheme": SCHEME,
        })
    );
    assert_eq!(table.timers.get("answers"), Some(&(table.now + 90_000)));
    let text = posts[0].body.text.as_deref().unwrap_or("");
    assert!(
        text.contains("second price") && text.contains("from 5 to 500"),
        "{text}"
    );
    assert!(text.contains("90 s"), "{text}");
}

/// `on_init` with `params` in a channel with reveal_private `reveal`; the error's message.
#[track_caller]
fn refused(params: Value, reveal: bool) -> String {
    let mut context = crate::support::context();
    context.params = params.clone();
    context.reveal_private = reveal;
    let error = bots::run_event(
        &bots::builtin("sealed").expect("builtin"),
        &context,
        &Event::Init,
        &relaxed_limits(),
    )
    .expect_err(&format!("{params} is refused"));
    assert_eq!(error.kind, bots::BotErrorKind::Threw, "{error}");
    assert!(error.line.is_some(), "{error}");
    error.message
}

#[test]
fn params_are_refused_with_clear_errors() {
    let q = QUESTION;
    for (params, expected) in [
        (json!({}), "params.question is required"),
        (json!({"question": ""}), "params.question is required"),
        (json!({"question": "  \n "}), "params.question is required"),
        (json!({"question": 42}), "params.question is required"),
        (
            json!({"question": "é".repeat(1001)}),
            "at most 2000 bytes of UTF-8",
        ),
        (json!([1]), "params must be an object"),
        (json!({"question": q, "participants": 1}), "from 2 to 10"),
        (json!({"question": q, "participants": 11}), "from 2 to 10"),
        (json!({"question": q, "participants": 2.5}), "from 2 to 10"),
        (json!({"question": q, "participants": "2"}), "from 2 to 10"),
        (
            json!({"question": q, "participants": 4}),
            "only 3 player (invite) slots",
        ),
        (
            json!({"question": q, "mode": "poll"}),
            r#"params.mode must be "exchange" or "auction""#,
        ),
        (
            json!({"question": q, "price": "second"}),
            r#"params.price applies to mode "auction" only"#,
        ),
        (
            json!({"question": q, "max_bid": 10}),
            r#"params.max_bid applies to mode "auction" only"#,
        ),
        (
            json!({"question": q, "mode": "auction", "price": "third"}),
            r#"params.price must be "first" or "second""#,
        ),
        (
            json!({"question": q, "mode": "auction", "min_bid": 10, "max_bid": 9}),
            "must not be above params.max_bid",
        ),
        (
            json!({"question": q, "mode": "auction", "min_bid": -1}),
            "params.min_bid must be an integer from 0",
        ),
        (
            json!({"question": q, "mode": "auction", "max_bid": 1.5}),
            "params.max_bid must be an integer",
        ),
        (
            json!({"question": q, "answer_timeout_ms": 999}),
            "params.answer_timeout_ms must be an integer from 1000 to 86400000",
        ),
        (
            json!({"question": q, "answer_timeout_ms": 86_400_001}),
            "params.answer_timeout_ms must be an integer from 1000 to 86400000",
        ),
        (
            json!({"question": q, "allow_reveal_after_end": "yes"}),
            "must be true or false",
        ),
        (
            json!({"question": q, "best_of": 3}),
            "unknown param best_of; the params are question, participants",
        ),
    ] {
        let message = refused(params.clone(), false);
        assert!(message.contains(expected), "{params}: {message}");
    }
    // The longest question fits: 2000 bytes, of the worst kind for JSON.
    let longest = "\u{1}".repeat(2000);
    let (_, posts) = open_with(
        json!({"question": longest}),
        &["alice", "bob"],
        &[],
        relaxed_limits(),
    );
    assert_eq!(only(&posts, "rules")["question"], longest.as_str());
}

#[test]
fn a_channel_that_reveals_private_messages_is_refused_unless_allowed() {
    let message = refused(json!({"question": QUESTION}), true);
    for needle in [
        "reveal_private true",
        "called off",
        "Create the channel with reveal_private false",
        "allow_reveal_after_end",
    ] {
        assert!(message.contains(needle), "{needle} not in {message}");
    }
    // Allowed: the bot opens, and says plainly what the channel will show.
    let params = json!({"question": QUESTION, "allow_reveal_after_end": true});
    let mut table = Table::new("sealed", params, &["alice", "bob"], relaxed_limits());
    assert!(table.context.reveal_private, "the support channel reveals");
    let posts = table.step(Event::Init).posts;
    let rules = only(&posts, "rules");
    assert_eq!(rules["reveal_private"], true);
    let text = posts[0].body.text.as_deref().unwrap_or("");
    assert!(
        text.contains("WARNING") && text.contains("even if the exchange is called off"),
        "{text}"
    );
    // And it runs as usual.
    sealed(&table.whisper("alice", "Lisbon"), "alice", 1);
    let posts = table.whisper("bob", "Oslo");
    assert_reveal_opens(&find(&posts, "reveal"), &table);
    // Allowing it in a channel that keeps them private is harmless: no warning.
    let (_, posts) = open_with(
        json!({"question": QUESTION, "allow_reveal_after_end": true}),
        &[],
        &[],
        relaxed_limits(),
    );
    assert!(
        !posts[0]
            .body
            .text
            .as_deref()
            .unwrap_or("")
            .contains("WARNING")
    );
}

// ---------------------------------------------------------------------------------------------
// Exchanges.

#[test]
fn an_exchange_reveals_every_answer_at_once_and_the_commitments_open() {
    let params = json!({"question": QUESTION, "participants": 3});
    let (mut table, posts) = open_with(params, &["alice"], &[], relaxed_limits());
    assert_eq!(only(&posts, "rules")["open_seats"], 2);

    // Alice answers before the others are seated: taken.
    let posts = table.whisper("alice", "  Lisbon, by the sea \n");
    assert_eq!(types(&posts), ["your_answer", "sealed"]);
    let (answer, alice_salt, alice_commitment) = sealed(&posts, "alice", 1);
    assert_eq!(answer, "Lisbon, by the sea", "trimmed");
    let public = data(&posts[1]);
    assert_eq!(public["seated"], json!(["alice"]));
    assert_eq!(public["waiting"], json!([]));
    assert_eq!(public["open_seats"], 2);
    let text = posts[1].body.text.as_deref().unwrap_or("");
    assert!(text.contains("2 participants not yet seated"), "{text}");

    let joined = only(&table.join("bob"), "participant");
    assert_eq!(
        joined,
        json!({"type": "participant", "slot": "bob", "seated": ["alice", "bob"],
               "waiting": ["bob"], "open_seats": 1})
    );
    let posts = table.send_data("bob", json!({"answer": "Oslo"}), Some(BOT));
    let (_, bob_salt, bob_commitment) = sealed(&posts, "bob", 2);
    assert_eq!(data(&posts[1])["waiting"], json!([]));
    let joined = only(&table.join("carol"), "participant");
    assert_eq!(joined["waiting"], json!(["carol"]));
    assert_eq!(joined["open_seats"], 0);
    let text = table.log.last().unwrap().body.text.clone().unwrap();
    assert!(text.contains("Everyone is seated"), "{text}");
    // A fourth player watches.
    assert!(table.join("watcher").is_empty());

    let posts = table.whisper("carol", "Lisbon, by the sea");
    assert_eq!(types(&posts), ["your_answer", "sealed", "reveal"]);
    let (_, carol_salt, _) = sealed(&posts, "carol", 3);
    let reveal = data(&posts[2]);
    assert_eq!(posts[2].to, None);
    assert_keys(
        &reveal,
        &[
            "type",
            "question_hash",
            "mode",
            "scheme",
            "channel_id",
            "bot_slot",
            "answers",
        ],
    );
    assert_reveal_opens(&reveal, &table);
    let answers = &reveal["answers"];
    assert_eq!(answers[0]["slot"], "alice");
    assert_eq!(answers[0]["answer"], "Lisbon, by the sea");
    assert_eq!(answers[0]["salt"], alice_salt.as_str());
    assert_eq!(answers[0]["commitment"], alice_commitment.as_str());
    assert_eq!(answers[1]["answer"], "Oslo");
    assert_eq!(answers[1]["salt"], bob_salt.as_str());
    assert_eq!(answers[1]["commitment"], bob_commitment.as_str());
    assert_eq!(answers[2]["slot"], "carol");
    assert_eq!(answers[2]["salt"], carol_salt.as_str());
    assert_ne!(alice_salt, carol_salt, "the same answer, another salt");
    let text = posts[2].body.text.as_deref().unwrap_or("");
    assert!(
        text.contains(r#"alice: "Lisbon, by the sea""#) && text.contains(r#"bob: "Oslo""#),
        "{text}"
    );
    assert_eq!(table.ended, Some(Some("all 3 answers revealed".to_owned())));

    // Before the reveal, no answer and no salt was shown to anyone but its owner.
    let before: Vec<BotPost> = table.log[..table.log.len() - 1].to_vec();
    let secrets = [
        ("alice", "Lisbon"),
        ("bob", "Oslo"),
        ("alice", alice_salt.as_str()),
        ("bob", bob_salt.as_str()),
        ("carol", carol_salt.as_str()),
    ]
    .map(|(o, s)| (o.to_owned(), s.to_owned()));
    // carol answered Lisbon too: her receipt shows it, so alice's answer is checked in public
    // posts only.
    let public: Vec<BotPost> = before.iter().filter(|p| p.to.is_none()).cloned().collect();
    assert_nothing_shown(&public, &secrets);
    assert_nothing_shown(&before, &secrets[1..]);
}

#[test]
fn a_double_submission_is_refused_and_the_first_answer_stands() {
    let (mut table, _) = opened(json!({}));
    let (_, _, commitment) = sealed(&table.whisper("alice", "first"), "alice", 1);
    let before = table.state().clone();
    for body in [
        text_body("second"),
        data_body(json!({"answer": "third"})),
        text_body("   "),
        data_body(json!({"answer": 7})),
    ] {
        let step = table.post("alice", body, Some(BOT));
        violation(&step.posts, "alice", "ALREADY_ANSWERED");
        let message = data(&step.posts[0])["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(&commitment) && message.contains("first answer stands"),
            "{message}"
        );
        assert_eq!(step.reaction.state, None, "nothing changes");
        assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
    }
    assert_eq!(table.state(), &before);
    let reveal = find(&table.whisper("bob", "other"), "reveal");
    assert_eq!(reveal["answers"][0]["answer"], "first");
    assert_eq!(reveal["answers"][0]["commitment"], commitment.as_str());
    assert_reveal_opens(&reveal, &table);
    assert_eq!(reveal["answers"].as_array().unwrap().len(), 2);
}

#[test]
fn a_submission_after_the_reveal_is_game_over() {
    let (mut table, _) = opened(json!({}));
    table.whisper("alice", "a");
    table.whisper("bob", "b");
    assert!(table.ended.is_some());
    let state = table.state().clone();
    violation(&table.whisper("alice", "again"), "alice", "GAME_OVER");
    violation(&table.whisper("bob", "b2"), "bob", "GAME_OVER");
    violation(&table.say("bob", "withdraw"), "bob", "GAME_OVER");
    violation(
        &table.send_data("watcher", json!({"answer": "x"}), None),
        "watcher",
        "GAME_OVER",
    );
    assert!(table.say("alice", "well played").is_empty(), "chat");
    assert!(table.leave("bob").is_empty());
    assert_eq!(table.state(), &state);
    assert_eq!(
        types(&table.log)
            .iter()
            .filter(|t| *t == "reveal" || *t == "called_off")
            .count(),
        1
    );
}

#[test]
fn public_answers_do_not_count() {
    let (mut table, _) = opened(json!({}));
    let before = table.state().clone();
    let step = table.post("alice", data_body(json!({"answer": "Lisbon"})), None);
    violation(&step.posts, "alice", "BAD_MOVE");
    let message = data(&step.posts[0])["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("privately") && message.contains("everyone has seen it"),
        "{message}"
    );
    assert_eq!(step.reaction.state, None);
    // Public text in an exchange is chat.
    assert!(table.say("alice", "Lisbon is lovely").is_empty());
    // To someone else: not the bot's business.
    assert!(
        table
            .post("alice", text_body("Lisbon"), Some("bob"))
            .posts
            .is_empty()
    );
    assert_eq!(table.state(), &before);
    sealed(&table.whisper("alice", "Lisbon"), "alice", 1);
    // Once answered, a public answer is still refused, and the sealed one stands.
    let step = table.post("alice", data_body(json!({"answer": "Rome"})), None);
    violation(&step.posts, "alice", "BAD_MOVE");
    assert!(
        data(&step.posts[0])["message"]
            .as_str()
            .unwrap()
            .contains("Your sealed answer stands")
    );
}

#[test]
fn bad_answers_and_outsiders_are_refused_privately() {
    let params = json!({"question": QUESTION, "participants": 2});
    let (mut table, _) = open_with(params, &["alice", "bob", "carol"], &[], relaxed_limits());
    let before = table.state().clone();
    for (who, body, to, code, hint) in [
        (
            "carol",
            text_body("Rome"),
            Some(BOT),
            "BAD_TURN",
            "not one of the 2",
        ),
        (
            "watcher",
            text_body("Rome"),
            Some(BOT),
            "BAD_TURN",
            "alice, bob",
        ),
        (
            "carol",
            text_body("withdraw"),
            None,
            "BAD_TURN",
            "participants",
        ),
        ("alice", text_body(" \t "), Some(BOT), "BAD_MOVE", "empty"),
        (
            "alice",
            data_body(json!({"answer": 12})),
            Some(BOT),
            "BAD_MOVE",
            "An answer is text",
        ),
        (
            "alice",
            data_body(json!({"note": "hi"})),
            Some(BOT),
            "BAD_MOVE",
            "An answer is text",
        ),
        (
            "alice",
            data_body(json!({"action": "resign"})),
            None,
            "BAD_MOVE",
            "withdraw",
        ),
        (
            "alice",
            data_body(json!({"answer": "ok", "nonce": ""})),
            Some(BOT),
            "BAD_MOVE",
            "nonce",
        ),
        (
            "alice",
            data_body(json!({"answer": "ok", "nonce": "n".repeat(257)})),
            Some(BOT),
            "BAD_MOVE",
            "nonce",
        ),
        (
            "alice",
            text_body(&"x".repeat(4001)),
            Some(BOT),
            "BAD_MOVE",
            "at most 4000",
        ),
        (
            "alice",
            text_body(&"\"".repeat(2001)),
            Some(BOT),
            "BAD_MOVE",
            "too long: 4002 bytes",
        ),
    ] {
        let step = table.post(who, body, to);
        violation(&step.posts, who, code);
        let message = data(&step.posts[0])["message"].as_str().unwrap().to_owned();
        assert!(message.contains(hint), "{code}: {hint} not in {message}");
        assert_eq!(step.reaction.state, None);
    }
    assert_eq!(table.state(), &before);
    // The longest answers are taken: 4000 bytes, or 2000 quotes.
    sealed(&table.whisper("alice", &"é".repeat(2000)), "alice", 1);
    let posts = table.whisper("bob", &"\"".repeat(2000));
    assert_reveal_opens(&find(&posts, "reveal"), &table);
}

#[test]
fn ten_participants_with_the_longest_answers_fit_the_reveal() {
    let labels: Vec<String> = (1..=10).map(|i| format!("p{i:02}")).collect();
    let extra: Vec<&str> = labels.iter().map(String::as_str).collect();
    let params = json!({"question": QUESTION, "participants": 10});
    let (mut table, posts) = open_with(params, &[], &extra, relaxed_limits());
    assert_eq!(only(&posts, "rules")["max_answer_bytes"], 1200);
    for label in &extra {
        assert_eq!(types(&table.join(label)), ["participant"]);
    }
    violation(&table.whisper("p01", &"a".repeat(1201)), "p01", "BAD_MOVE");
    let mut reveal = Value::Null;
    for (i, label) in extra.iter().enumerate() {
        // The worst answers for the reveal's size: control characters that JSON escapes in 6
        // bytes, quotes in 2, and plain text.
        let answer = match i % 3 {
            0 => "\u{1}".repeat(200),
            1 => "\"".repeat(600),
            _ => "z".repeat(1200),
        };
        violation(
            &table.whisper(label, &format!("{answer}x")),
            label,
            "BAD_MOVE",
        );
        let posts = table.whisper(label, &answer);
        sealed(&posts, label, i as u64 + 1);
        if i == 9 {
            reveal = find(&posts, "reveal");
        }
    }
    assert_reveal_opens(&reveal, &table);
    assert_eq!(reveal["answers"].as_array().unwrap().len(), 10);
}

// ---------------------------------------------------------------------------------------------
// Withdrawals, leaving, the clock.

#[test]
fn a_withdrawal_before_the_last_answer_reveals_nothing() {
    // Every way to withdraw, by someone who answered or not, before or after others answered.
    let bodies: [(&str, (domain::Body, Option<&str>)); 5] = [
        ("bob", (text_body("withdraw"), None)),
        ("bob", (text_body("  Withdraw! "), Some(BOT))),
        ("alice", (data_body(json!({"action": "withdraw"})), None)),
        (
            "alice",
            (data_body(json!({"action": "WITHDRAW"})), Some(BOT)),
        ),
        ("bob", (text_body("withdraw."), Some(BOT))),
    ];
    for (case, (who, (body, to))) in bodies.into_iter().enumerate() {
        let params = json!({"question": QUESTION, "participants": 3, "answer_timeout_ms": 60_000});
        let (mut table, _) = open_with(params, &["alice", "bob", "carol"], &[], relaxed_limits());
        let mut secrets = Vec::new();
        if case > 0 {
            let (answer, salt, _) = sealed(&table.whisper("alice", "ans-alice"), "alice", 1);
            secrets.push(("alice".to_owned(), answer));
            secrets.push(("alice".to_owned(), salt));
        }
        if case > 2 {
            let posts = table.send_data(
                "bob",
                json!({"answer": "ans-bob", "nonce": "bob's own secret"}),
                Some(BOT),
            );
            let (answer, salt, _) = sealed(&posts, "bob", 2);
            secrets.push(("bob".to_owned(), answer));
            secrets.push(("bob".to_owned(), salt));
        }
        let step = table.post(who, body, to);
        let off = called_off(&table, &step.posts, "withdrawn", json!(who));
        let answered: Vec<&str> = ["alice", "bob"][..secrets.len() / 2].to_vec();
        assert_eq!(off["answered"], json!(answered));
        let missing: Vec<&str> = ["alice", "bob", "carol"][answered.len()..].to_vec();
        assert_eq!(off["missing"], json!(missing));
        assert_eq!(off["open_seats"], 0);
        assert!(!types(&table.log).contains(&"reveal".to_owned()));
        // Nothing of an answer anywhere public, ever, nor in the state that outlives the run.
        let public: Vec<BotPost> = table
            .log
            .iter()
            .filter(|p| p.to.is_none())
            .cloned()
            .collect();
        assert_nothing_shown(&public, &secrets);
        assert_nothing_shown(&table.log, &secrets);
        assert_state_forgets(&table, &secrets);
        // Too late for carol now.
        violation(&table.whisper("carol", "ans-carol"), "carol", "GAME_OVER");
    }
}

#[test]
fn a_withdrawal_after_the_last_answer_is_too_late() {
    let (mut table, _) = opened(json!({}));
    table.whisper("alice", "yes");
    let posts = table.whisper("bob", "no");
    let reveal = find(&posts, "reveal");
    // The race, in channel order: bob's withdrawal comes after alice's last answer.
    for (who, body, to) in [
        ("bob", text_body("withdraw"), None),
        ("alice", data_body(json!({"action": "withdraw"})), Some(BOT)),
    ] {
        let step = table.post(who, body, to);
        violation(&step.posts, who, "GAME_OVER");
        assert!(step.reaction.end.is_none() && step.reaction.state.is_none());
    }
    assert!(table.leave("alice").is_empty(), "leaving changes nothing");
    assert_reveal_opens(&reveal, &table);
    assert!(!types(&table.log).contains(&"called_off".to_owned()));

    // And the other way round: a withdrawal just before the last answer wins.
    let (mut table, _) = opened(json!({}));
    table.whisper("alice", "yes");
    let posts = table.say("bob", "withdraw");
    called_off(&table, &posts, "withdrawn", json!("bob"));
    violation(&table.whisper("bob", "no"), "bob", "GAME_OVER");
    assert!(!types(&table.log).contains(&"reveal".to_owned()));
}

#[test]
fn a_participant_who_leaves_calls_it_off() {
    let params = json!({"question": QUESTION, "participants": 2});
    let (mut table, _) = open_with(params, &["alice", "bob", "carol"], &[], relaxed_limits());
    let (answer, salt, _) = sealed(&table.whisper("bob", "ans-bob"), "bob", 1);
    // Someone who is not a participant comes and goes: nothing.
    assert!(table.leave("carol").is_empty());
    assert!(table.join("watcher").is_empty());
    assert!(table.leave("watcher").is_empty());
    assert!(table.join("carol").is_empty(), "the two places are taken");
    let posts = table.leave("alice");
    let off = called_off(&table, &posts, "left", json!("alice"));
    assert_eq!(off["answered"], json!(["bob"]));
    assert_eq!(off["missing"], json!(["alice"]));
    assert!(
        posts[0]
            .body
            .text
            .as_deref()
            .unwrap()
            .contains("Alice left")
    );
    let secrets = [("bob".to_owned(), answer), ("bob".to_owned(), salt)];
    let public: Vec<BotPost> = table
        .log
        .iter()
        .filter(|p| p.to.is_none())
        .cloned()
        .collect();
    assert_nothing_shown(&public, &secrets);
    assert_state_forgets(&table, &secrets);
    // A participant who left before the others were seated calls it off too.
    let params = json!({"question": QUESTION, "participants": 3});
    let (mut table, _) = open_with(params, &["alice"], &[], relaxed_limits());
    let posts = table.leave("alice");
    let off = called_off(&table, &posts, "left", json!("alice"));
    assert_eq!(off["open_seats"], 2);
}

#[test]
fn the_clock_calls_it_off_when_an_answer_is_missing() {
    let (mut table, rules) = opened(json!({"answer_timeout_ms": 5_000}));
    let deadline = table.now + 5_000;
    assert_eq!(rules["deadline"], deadline);
    table.now += 4_000;
    let posts = table.whisper("bob", "ans-bob");
    let (answer, salt, _) = sealed(&posts, "bob", 1);
    assert_eq!(data(&posts[1])["deadline"], deadline);
    // A timer event before the deadline, or another tag, changes nothing.
    for tag in ["answers", "stray"] {
        let step = table.step(Event::Timer { tag: tag.into() });
        assert!(step.posts.is_empty() && step.reaction.state.is_none());
    }
    assert!(table.advance(999).is_empty(), "one clock from the attach");
    let posts = table.advance(1);
    let off = called_off(&table, &posts, "timeout", Value::Null);
    assert_eq!(off["answered"], json!(["bob"]));
    assert_eq!(off["missing"], json!(["alice"]));
    let secrets = [("bob".to_owned(), answer), ("bob".to_owned(), salt)];
    assert_nothing_shown(&table.log, &secrets);
    assert_state_forgets(&table, &secrets);

    // Every answer in before the deadline: the reveal cancels the clock.
    let (mut table, _) = opened(json!({"answer_timeout_ms": 5_000}));
    table.whisper("alice", "a");
    table.whisper("bob", "b");
    assert!(table.timers.is_empty());
    assert_eq!(table.ended, Some(Some("all 2 answers revealed".to_owned())));
}

// ---------------------------------------------------------------------------------------------
// Auctions.

fn auction(price: &str, participants: u64) -> Table {
    let params = json!({"question": "What do you bid for the lamp?", "mode": "auction",
        "price": price, "participants": participants, "min_bid": 1, "max_bid": 1000});
    let (table, posts) = open_with(params, &["alice", "bob", "carol"], &[], relaxed_limits());
    assert_eq!(only(&posts, "rules")["price"], price);
    table
}

#[track_caller]
fn auction_reveal(posts: &[BotPost], table: &Table) -> Value {
    let reveal = find(posts, "reveal");
    assert_keys(
        &reveal,
        &[
            "type",
            "question_hash",
            "mode",
            "scheme",
            "channel_id",
            "bot_slot",
            "answers",
            "winner",
            "price",
            "price_rule",
            "bids",
        ],
    );
    assert_eq!(reveal["mode"], "auction");
    assert_eq!(
        reveal["question_hash"],
        sha256_tagged("What do you bid for the lamp?")
    );
    let mut opened = reveal.clone();
    opened["question_hash"] = json!(sha256_tagged(QUESTION));
    assert_reveal_opens(&opened, table);
    reveal
}

#[test]
fn a_first_price_auction_ranks_ties_by_who_sealed_first() {
    let mut table = auction("first", 3);
    sealed(&table.whisper("alice", "bid 50"), "alice", 1);
    sealed(
        &table.send_data("carol", json!({"bid": 70}), Some(BOT)),
        "carol",
        2,
    );
    let posts = table.send_data("bob", json!({"answer": "070"}), Some(BOT));
    let (answer, _, _) = sealed(&posts, "bob", 3);
    assert_eq!(answer, "70", "a bid is sealed in plain digits");
    let reveal = auction_reveal(&posts, &table);
    assert_eq!(reveal["winner"], "carol", "carol sealed 70 before bob");
    assert_eq!(reveal["price"], 70);
    assert_eq!(reveal["price_rule"], "first");
    assert_eq!(
        reveal["bids"],
        json!([{"slot": "carol", "bid": 70}, {"slot": "bob", "bid": 70},
               {"slot": "alice", "bid": 50}])
    );
    let answers: Vec<&str> = reveal["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["answer"].as_str().unwrap())
        .collect();
    assert_eq!(answers, ["50", "70", "70"], "in the order sealed");
    let reason = table.ended.clone().unwrap().unwrap();
    assert_eq!(reason, "Carol wins at 70 (first price)");
    let text = posts[2].body.text.as_deref().unwrap();
    assert!(text.contains("Carol wins and pays 70"), "{text}");
}

#[test]
fn a_second_price_auction_charges_the_second_highest_bid() {
    let mut table = auction("second", 3);
    table.whisper("alice", "10");
    table.send_data("bob", json!({"bid": "400"}), Some(BOT));
    let posts = table.whisper("carol", "Bid: 250");
    let reveal = auction_reveal(&posts, &table);
    assert_eq!(reveal["winner"], "bob");
    assert_eq!(reveal["price"], 250);
    assert_eq!(reveal["price_rule"], "second");
    assert_eq!(
        reveal["bids"],
        json!([{"slot": "bob", "bid": 400}, {"slot": "carol", "bid": 250},
               {"slot": "alice", "bid": 10}])
    );

    // A tie at the top: the first sealed wins and pays the same amount.
    let mut table = auction("second", 2);
    table.whisper("bob", "300");
    let posts = table.whisper("alice", "300");
    let reveal = auction_reveal(&posts, &table);
    assert_eq!(reveal["winner"], "bob");
    assert_eq!(reveal["price"], 300);
}

#[test]
fn bad_bids_are_refused_and_public_bids_do_not_count() {
    let mut table = auction("first", 2);
    let before = table.state().clone();
    for body in [
        text_body("0"),
        text_body("1001"),
        text_body("1.5"),
        text_body("ten"),
        text_body("-5"),
        text_body("bid 1e3"),
        text_body("hello, what is the lamp like?"),
        data_body(json!({"bid": 2.5})),
        data_body(json!({"bid": -1})),
        data_body(json!({"bid": "12 coins"})),
        data_body(json!({"bid": "10000000000000000"})),
        data_body(json!({"bid": null})),
    ] {
        let step = table.post("alice", body.clone(), Some(BOT));
        violation(&step.posts, "alice", "BAD_MOVE");
        let message = data(&step.posts[0])["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("whole number from 1 to 1000"),
            "{body:?}: {message}"
        );
    }
    for body in [
        text_body("bid 20"),
        text_body("20"),
        data_body(json!({"bid": 20})),
    ] {
        let step = table.post("alice", body, None);
        violation(&step.posts, "alice", "BAD_MOVE");
        assert!(
            data(&step.posts[0])["message"]
                .as_str()
                .unwrap()
                .contains("privately")
        );
    }
    assert!(table.say("alice", "nice lamp").is_empty(), "chat");
    assert_eq!(table.state(), &before);
    sealed(&table.whisper("alice", "bid 1000"), "alice", 1);
}

// ---------------------------------------------------------------------------------------------
// What the seed gives away once the run ends.

/// The 16 random bytes an answer's event drew, from the seed (revealed when the run ends) and
/// the event's seq (public).
fn salt_from_seed(seed: &BotSeed, seq: i64) -> Vec<u8> {
    let mut salt = vec![0; 16];
    EventRandom::new(seed, seq).fill(&mut salt);
    salt
}

#[test]
fn a_short_answer_is_guessable_from_the_seed_unless_it_came_with_a_nonce() {
    let (mut table, _) = opened(json!({"participants": 3}));
    let channel = table.context.channel_id.as_str().to_owned();
    let seed = table.context.seed.clone();
    let alice_seq = table.events() as i64 + 1;
    let alice = data(&table.whisper("alice", "yes")[1])["commitment"].clone();
    let bob_seq = table.events() as i64 + 1;
    let bob = data(
        &table.send_data(
            "bob",
            json!({"answer": "no", "nonce": "k7#Qp!x2-bob-only"}),
            Some(BOT),
        )[1],
    )["commitment"]
        .clone();
    let posts = table.leave("bob");
    called_off(&table, &posts, "left", json!("bob"));
    // Anyone holding the revealed seed and the public commitments tries every candidate.
    let guess = |seq: i64, commitment: &Value| {
        let salt = salt_from_seed(&seed, seq);
        ["yes", "no"]
            .into_iter()
            .find(|candidate| bots::commitment(&channel, BOT, candidate, &salt) == *commitment)
    };
    assert_eq!(
        guess(alice_seq, &alice),
        Some("yes"),
        "what the header warns of"
    );
    assert_eq!(
        guess(bob_seq, &bob),
        None,
        "the nonce keeps bob's answer sealed"
    );
    // The nonce's salt, as the header defines it.
    let plain = hex::encode(salt_from_seed(&seed, bob_seq));
    let mixed = hex::encode(Sha256::digest(format!("{plain}:k7#Qp!x2-bob-only")));
    let salt = hex::decode(&mixed[..32]).unwrap();
    assert_eq!(bots::commitment(&channel, BOT, "no", &salt), bob);
}

// ---------------------------------------------------------------------------------------------
// Random sequences of events against a reference model.

const INVITES: [&str; 5] = ["alice", "bob", "carol", "dave", "erin"];
const SEATS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "watcher"];

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Open,
    Over,
}

struct Sealed {
    slot: String,
    answer: String,
    salt: String,
    commitment: String,
}

struct Model {
    phase: Phase,
    n: usize,
    auction: bool,
    second_price: bool,
    min_bid: i64,
    max_bid: i64,
    max_answer_bytes: usize,
    deadline: Option<i64>,
    participants: Vec<String>,
    answers: Vec<Sealed>,
    /// Every answer and salt sealed, with its owner, for the checks that nothing leaks.
    secrets: Vec<(String, String)>,
}

/// What a random message is meant to be, so the model knows what the bot must do.
enum Intent {
    Chat,
    Withdraw,
    BadAction,
    /// An answer attempt: `Some(sealed form)` when valid, `None` when not.
    Answer(Option<String>, Option<String>),
}

impl Model {
    fn seated(&self) -> Value {
        json!(self.participants)
    }

    fn waiting(&self) -> Value {
        json!(
            self.participants
                .iter()
                .filter(|p| !self.answers.iter().any(|a| &a.slot == *p))
                .collect::<Vec<_>>()
        )
    }

    fn open_seats(&self) -> usize {
        self.n - self.participants.len()
    }

    fn answered(&self, slot: &str) -> bool {
        self.answers.iter().any(|a| a.slot == slot)
    }

    /// The bot's seal of `answer` from `who` in the event just run (`seq`).
    #[track_caller]
    fn expect_sealed(
        &mut self,
        table: &Table,
        posts: &[BotPost],
        who: &str,
        answer: &str,
        nonce: Option<&str>,
        seq: i64,
    ) {
        let order = self.answers.len() as u64 + 1;
        let (got, salt, commitment) = sealed(posts, who, order);
        assert_eq!(got, answer);
        // The salt is the event's random bytes, mixed with the nonce when there is one.
        let plain = hex::encode(salt_from_seed(&table.context.seed, seq));
        let expected = match nonce {
            Some(nonce) => hex::encode(Sha256::digest(format!("{plain}:{nonce}")))[..32].to_owned(),
            None => plain,
        };
        assert_eq!(salt, expected);
        let recomputed = bots::commitment(
            table.context.channel_id.as_str(),
            BOT,
            answer,
            &hex::decode(&salt).expect("hex"),
        );
        assert_eq!(commitment, recomputed);
        self.answers.push(Sealed {
            slot: who.to_owned(),
            answer: answer.to_owned(),
            salt: salt.clone(),
            commitment,
        });
        if !self.auction {
            self.secrets.push((who.to_owned(), answer.to_owned()));
        }
        self.secrets.push((who.to_owned(), salt));
        let public = data(&posts[1]);
        assert_eq!(public["seated"], self.seated());
        assert_eq!(public["waiting"], self.waiting());
        assert_eq!(public["open_seats"], self.open_seats());
        assert_eq!(public["deadline"], json!(self.deadline));
        if self.answers.len() == self.n {
            assert_eq!(posts.len(), 3, "{posts:#?}");
            self.expect_reveal(table, &posts[2]);
        } else {
            assert_eq!(posts.len(), 2, "{posts:#?}");
            assert!(table.ended.is_none());
        }
    }

    #[track_caller]
    fn expect_reveal(&mut self, table: &Table, post: &BotPost) {
        assert_eq!(post.to, None);
        let reveal = data(post);
        assert_eq!(reveal["type"], "reveal");
        assert_eq!(reveal["scheme"], SCHEME);
        assert_eq!(reveal["channel_id"], table.context.channel_id.as_str());
        assert_eq!(reveal["bot_slot"], BOT);
        assert_eq!(reveal["question_hash"], sha256_tagged(QUESTION));
        let expected: Vec<Value> = self
            .answers
            .iter()
            .map(|a| json!({"slot": a.slot, "answer": a.answer, "salt": a.salt, "commitment": a.commitment}))
            .collect();
        assert_eq!(reveal["answers"], json!(expected));
        assert_reveal_opens(&reveal, table);
        if self.auction {
            let mut bids: Vec<(i64, usize, &str)> = self
                .answers
                .iter()
                .enumerate()
                .map(|(order, a)| (a.answer.parse().expect("a bid"), order, a.slot.as_str()))
                .collect();
            bids.sort_by_key(|&(bid, order, _)| (-bid, order));
            let price = if self.second_price && bids.len() > 1 {
                bids[1].0
            } else {
                bids[0].0
            };
            assert_eq!(reveal["winner"], bids[0].2);
            assert_eq!(reveal["price"], price);
            assert_eq!(
                reveal["price_rule"],
                if self.second_price { "second" } else { "first" }
            );
            let listed: Vec<Value> = bids
                .iter()
                .map(|(bid, _, slot)| json!({"slot": slot, "bid": bid}))
                .collect();
            assert_eq!(reveal["bids"], json!(listed));
        } else {
            assert!(reveal.get("winner").is_none());
        }
        assert!(table.ended.is_some(), "the run ends with the reveal");
        assert!(table.timers.is_empty());
        self.phase = Phase::Over;
        REVEALED.fetch_add(1, Ordering::Relaxed);
    }

    #[track_caller]
    fn expect_called_off(&mut self, table: &Table, posts: &[BotPost], reason: &str, by: Value) {
        let off = called_off(table, posts, reason, by);
        let answered: Vec<&str> = self.answers.iter().map(|a| a.slot.as_str()).collect();
        assert_eq!(off["answered"], json!(answered));
        assert_eq!(off["missing"], self.waiting());
        assert_eq!(off["open_seats"], self.open_seats());
        assert_nothing_shown(posts, &self.secrets);
        assert_state_forgets(table, &self.secrets);
        self.phase = Phase::Over;
        match reason {
            "withdrawn" => &WITHDRAWN,
            "left" => &LEFT,
            _ => &TIMED_OUT,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

static REVEALED: AtomicUsize = AtomicUsize::new(0);
static WITHDRAWN: AtomicUsize = AtomicUsize::new(0);
static LEFT: AtomicUsize = AtomicUsize::new(0);
static TIMED_OUT: AtomicUsize = AtomicUsize::new(0);
static UNFINISHED: AtomicUsize = AtomicUsize::new(0);

/// A random message and what it means: (text, data, intent). `to_bot` says whether it goes to
/// the bot privately.
fn random_message(
    rng: &mut Rng,
    model: &Model,
    to_bot: bool,
) -> (Option<String>, Option<Value>, Intent) {
    let token = || format!("ans-{:016x}", rng_token());
    match rng.below(40) {
        0 => {
            let text = *rng.pick(&["withdraw", "Withdraw!", " WITHDRAW ", "withdraw."]);
            (Some(text.into()), None, Intent::Withdraw)
        }
        1 => (None, Some(json!({"action": "withdraw"})), Intent::Withdraw),
        2 | 3 => (None, Some(json!({"action": "resign"})), Intent::BadAction),
        4..=9 if !to_bot => {
            let text = *rng.pick(&["hello there", "good luck", "what a question"]);
            (Some(text.into()), None, Intent::Chat)
        }
        _ if model.auction => {
            let valid = rng.chance(80);
            let bid = if valid {
                // A narrow band of bids, for ties.
                model.min_bid + rng.below(4) as i64
            } else {
                *rng.pick(&[model.min_bid - 1, model.max_bid + 1])
            };
            let sealed = (valid && bid >= 0).then(|| bid.to_string());
            let nonce = rng.chance(30).then(|| format!("n{}", rng.next_u64()));
            let (text, data) = match rng.below(if bid < 0 { 2 } else { 6 }) {
                0 => (None, json!({"bid": bid})),
                1 => (None, json!({"answer": bid})),
                2 => (Some(bid.to_string()), json!({})),
                3 => (Some(format!("bid {bid}")), json!({})),
                4 => (None, json!({"bid": format!("{bid}")})),
                _ => (Some(format!("Bid: {bid}")), json!({})),
            };
            let bad = rng.chance(10);
            if bad {
                let text = *rng.pick(&["bid 1.5", "ten", "bid x"]);
                return (Some(text.into()), None, Intent::Answer(None, None));
            }
            let data = with_nonce(data, nonce.as_deref());
            (text, data, Intent::Answer(sealed, nonce))
        }
        _ => {
            let nonce = rng.chance(30).then(|| format!("n{}", rng.next_u64()));
            match rng.below(10) {
                0 => (Some("   ".into()), None, Intent::Answer(None, None)),
                1 => (None, Some(json!({"answer": 5})), Intent::Answer(None, None)),
                2 => (
                    Some("y".repeat(model.max_answer_bytes + 1)),
                    None,
                    Intent::Answer(None, None),
                ),
                3 | 4 => {
                    let answer = token();
                    let data = with_nonce(json!({"answer": answer}), nonce.as_deref());
                    (None, data, Intent::Answer(Some(answer), nonce))
                }
                _ => {
                    let answer = token();
                    let data = with_nonce(json!({}), nonce.as_deref());
                    (
                        Some(format!(" {answer}\n")),
                        data,
                        Intent::Answer(Some(answer), nonce),
                    )
                }
            }
        }
    }
}

/// Whether the bot reads a public message as an answer attempt: data with an answer key, or
/// in an auction text shaped like a bid ("250", "bid 9", "bid x").
fn public_attempt(model: &Model, text: Option<&str>, data: Option<&Value>) -> bool {
    let keys: &[&str] = if model.auction {
        &["bid", "answer"]
    } else {
        &["answer"]
    };
    if data.is_some_and(|d| keys.iter().any(|k| d.get(*k).is_some())) {
        return true;
    }
    let Some(text) = text.filter(|_| model.auction) else {
        return false;
    };
    let text = text.trim().to_lowercase();
    if let Some(rest) = text.strip_prefix("bid") {
        return rest
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(&text);
    digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || ".,_".contains(c))
}

/// A distinct token for each answer of a run, so that a leak is a plain substring.
fn rng_token() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) as u64;
    n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed
}

fn with_nonce(mut data: Value, nonce: Option<&str>) -> Option<Value> {
    if let Some(nonce) = nonce {
        data["nonce"] = json!(nonce);
    }
    (!data.as_object().expect("an object").is_empty()).then_some(data)
}

fn random_sequence(seed: u64, limits: Limits) -> Table {
    let mut rng = Rng::new(seed);
    let n = *rng.pick(&[2, 2, 3, 3, 4, 5]);
    let auction = rng.chance(40);
    let second_price = rng.chance(50);
    let min_bid = *rng.pick(&[0, 1, 10]);
    let max_bid = min_bid + 3 + rng.below(3) as i64;
    let timeout = *rng.pick(&[None, None, Some(1_000), Some(5_000), Some(60_000)]);
    let mut params = json!({"question": QUESTION, "participants": n});
    if auction {
        params["mode"] = json!("auction");
        params["min_bid"] = json!(min_bid);
        params["max_bid"] = json!(max_bid);
        params["price"] = json!(if second_price { "second" } else { "first" });
    }
    if let Some(ms) = timeout {
        params["answer_timeout_ms"] = json!(ms);
    }
    let mut seated = Vec::new();
    for seat in SEATS {
        if rng.chance(30) {
            seated.push(seat);
        }
    }
    let (mut table, posts) = open_with(params, &seated, &["dave", "erin"], limits);
    let mut model = Model {
        phase: Phase::Open,
        n,
        auction,
        second_price,
        min_bid,
        max_bid,
        max_answer_bytes: 4000.min(12000 / n),
        deadline: timeout.map(|ms| table.now + ms),
        participants: seated
            .iter()
            .filter(|s| INVITES.contains(s))
            .take(n)
            .map(|s| (*s).to_owned())
            .collect(),
        answers: Vec::new(),
        secrets: Vec::new(),
    };
    let rules = only(&posts, "rules");
    assert_eq!(rules["seated"], model.seated());
    assert_eq!(rules["open_seats"], model.open_seats());
    assert_eq!(rules["deadline"], json!(model.deadline));

    let mut steps = 0;
    let mut after_end = 0;
    while steps < 80 && after_end < 4 {
        steps += 1;
        if model.phase == Phase::Over {
            after_end += 1;
        }
        let seated: Vec<String> = table
            .context
            .players
            .iter()
            .map(|p| p.slot.to_string())
            .collect();
        let action = if model.participants.len() < n && rng.chance(40) {
            0
        } else {
            rng.below(24)
        };
        match action {
            0 | 1 => {
                let seat = *rng.pick(&SEATS);
                if seated.iter().any(|s| s == seat) {
                    continue;
                }
                let posts = table.join(seat);
                let joins = model.phase == Phase::Open
                    && model.participants.len() < n
                    && INVITES.contains(&seat)
                    && !model.participants.iter().any(|p| p == seat);
                if joins {
                    model.participants.push(seat.to_owned());
                    let joined = only(&posts, "participant");
                    assert_eq!(joined["slot"], seat);
                    assert_eq!(joined["seated"], model.seated());
                    assert_eq!(joined["waiting"], model.waiting());
                    assert_eq!(joined["open_seats"], model.open_seats());
                } else {
                    assert!(posts.is_empty(), "{posts:#?}");
                }
            }
            2 if rng.chance(25) => {
                let Some(seat) = seated.get(rng.below(seated.len().max(1))).cloned() else {
                    continue;
                };
                let posts = table.leave(&seat);
                if model.phase == Phase::Open && model.participants.contains(&seat) {
                    model.expect_called_off(&table, &posts, "left", json!(seat));
                } else {
                    assert!(posts.is_empty(), "{posts:#?}");
                }
            }
            3 if let Some(clock) = timeout => {
                let ms = if rng.chance(30) {
                    clock
                } else {
                    rng.below(clock as usize / 2) as i64
                };
                let due = table.timers.get("answers").copied();
                let posts = table.advance(ms);
                match due {
                    Some(due) if due <= table.now => {
                        assert_eq!(model.phase, Phase::Open);
                        assert_eq!(Some(due), model.deadline);
                        model.expect_called_off(&table, &posts, "timeout", Value::Null);
                    }
                    _ => assert!(posts.is_empty(), "{posts:#?}"),
                }
            }
            4 => {
                // A stray timer: another tag, or the answers' tag before its deadline.
                let tag = if rng.chance(50) { "answers" } else { "stray" };
                if model.deadline.is_some_and(|d| table.now >= d) {
                    continue;
                }
                let step = table.step(Event::Timer { tag: tag.into() });
                assert!(step.posts.is_empty() && step.reaction.state.is_none());
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
            _ => {
                let sender = if !model.participants.is_empty() && rng.chance(80) {
                    model.participants[rng.below(model.participants.len())].clone()
                } else {
                    (*rng.pick(&SEATS)).to_owned()
                };
                let to = match rng.below(10) {
                    0 => Some("carol"),
                    1 | 2 => None,
                    _ => Some(BOT),
                };
                let (text, data_value, intent) = random_message(&mut rng, &model, to == Some(BOT));
                // A public message the bot reads as chat, whatever the generator meant.
                let intent = match (&intent, to) {
                    (Intent::Answer(..), None)
                        if !public_attempt(&model, text.as_deref(), data_value.as_ref()) =>
                    {
                        Intent::Chat
                    }
                    _ => intent,
                };
                let body = domain::Body::new(
                    text.clone(),
                    data_value.clone().map(|value| match value {
                        Value::Object(map) => map,
                        _ => unreachable!(),
                    }),
                )
                .expect("valid body");
                let before = table.context.state.clone();
                table.now += rng.below(2_000) as i64;
                if let Some(due) = table.timers.get("answers").copied()
                    && due <= table.now
                {
                    table.now = due - 1;
                }
                let step = table.post(&sender, body, to);
                let seq = table.events() as i64;
                let posts = &step.posts;
                let ignored = matches!(intent, Intent::Chat) || (to.is_some() && to != Some(BOT));
                let participant = model.participants.contains(&sender);
                let code = if ignored {
                    None
                } else if model.phase == Phase::Over {
                    Some("GAME_OVER")
                } else if !participant {
                    Some("BAD_TURN")
                } else {
                    match intent {
                        Intent::Withdraw => {
                            model.expect_called_off(&table, posts, "withdrawn", json!(sender));
                            continue;
                        }
                        Intent::BadAction => Some("BAD_MOVE"),
                        Intent::Answer(..) if to.is_none() => Some("BAD_MOVE"),
                        Intent::Answer(..) if model.answered(&sender) => Some("ALREADY_ANSWERED"),
                        Intent::Answer(Some(answer), nonce) => {
                            model.expect_sealed(
                                &table,
                                posts,
                                &sender,
                                &answer,
                                nonce.as_deref(),
                                seq,
                            );
                            continue;
                        }
                        Intent::Answer(None, _) => Some("BAD_MOVE"),
                        Intent::Chat => unreachable!(),
                    }
                };
                match code {
                    None => assert!(posts.is_empty(), "ignored: {posts:#?}"),
                    Some(code) => violation(posts, &sender, code),
                }
                assert_eq!(step.reaction.state, None, "nothing changes");
                assert_eq!(table.context.state, before);
                assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
            }
        }
    }
    if model.phase == Phase::Open {
        UNFINISHED.fetch_add(1, Ordering::Relaxed);
    }
    assert_eq!(table.ended.is_some(), model.phase == Phase::Over);

    // Over the whole run: before the reveal (or ever, when there was none), no answer or salt
    // reached anyone but its owner, and every public post about an answer has the shape that
    // holds nothing of it.
    let reveal_at = table
        .log
        .iter()
        .position(|post| data(post)["type"] == "reveal")
        .unwrap_or(table.log.len());
    assert_nothing_shown(&table.log[..reveal_at], &model.secrets);
    for post in &table.log[..reveal_at] {
        let data = data(post);
        match data["type"].as_str().expect("a type") {
            "rules" => assert!(post.to.is_none()),
            "participant" => {
                assert_keys(&data, &["type", "slot", "seated", "waiting", "open_seats"])
            }
            "sealed" | "called_off" => assert!(post.to.is_none()),
            "your_answer" | "violation" => assert!(post.to.is_some()),
            other => panic!("unexpected post {other}"),
        }
    }
    if reveal_at == table.log.len() && model.phase == Phase::Over {
        assert_state_forgets(&table, &model.secrets);
    }
    table
}

#[test]
fn random_sequences_never_break_a_rule() {
    let cases = game_cases(2_000);
    let started = std::time::Instant::now();
    let summary = play_many(cases, 0x5ea1_0000, random_sequence);
    let endings = [
        ("revealed", REVEALED.load(Ordering::Relaxed)),
        ("withdrawn", WITHDRAWN.load(Ordering::Relaxed)),
        ("left", LEFT.load(Ordering::Relaxed)),
        ("timeout", TIMED_OUT.load(Ordering::Relaxed)),
        ("unfinished", UNFINISHED.load(Ordering::Relaxed)),
    ];
    eprintln!(
        "sealed: {} sequences, {} events in {:?}, slowest event (wall clock) {:?}, endings {:?}",
        summary.games,
        summary.events,
        started.elapsed(),
        summary.slowest,
        endings
    );
    assert_eq!(summary.games, cases);
    assert_eq!(endings.iter().map(|(_, n)| n).sum::<usize>(), cases);
    if cases >= 500 {
        for (ending, count) in &endings[..4] {
            assert!(*count > 0, "no sequence ended {ending}: {endings:?}");
        }
    }
}
