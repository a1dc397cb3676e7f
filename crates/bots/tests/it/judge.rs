//! ContractJudgeBot event by event: proposals and their validation, the terms hash recomputed,
//! acceptance of the exact hash, the agreement and its timers, each mechanical rule, disputes,
//! claims after a deadline, forged evidence, the record and the end of the run; witness
//! evidence through fetch results; then thousands of random event sequences against a
//! reference model.

use bots::{BotPost, Event, Limits, TimerRequest};
use serde_json::{Value, json};

use crate::support::NOW_MS;
use crate::table::{
    BOT, Rng, Table, data, data_body, game_cases, only, refused_params, text_body, types, violation,
};

const SECOND: i64 = 1_000;
const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const YEAR: i64 = 365 * DAY;

fn clause(id: &str, obligor: &str, beneficiary: &str) -> Value {
    json!({"id": id, "text": format!("clause {id}"), "obligor": obligor, "beneficiary": beneficiary})
}

fn with(mut value: Value, key: &str, field: Value) -> Value {
    value[key] = field;
    value
}

fn terms(clauses: Vec<Value>) -> Value {
    json!({"title": "Widgets", "text": "Alice sells Bob ten widgets.", "clauses": clauses})
}

/// The seq the next event gets.
fn next_seq(table: &Table) -> i64 {
    i64::try_from(table.events()).expect("small") + 1
}

/// The judge attached with `params`, alice and bob seated: it has started.
fn opened(params: Value) -> Table {
    let (table, posts) = Table::open("judge", params, &["alice", "bob"]);
    assert_eq!(types(&posts), ["rules", "start"]);
    assert_eq!(data(&posts[1])["parties"], json!(["alice", "bob"]));
    table
}

fn propose(table: &mut Table, who: &str, proposal: Value) -> Vec<BotPost> {
    table.send_data(who, json!({"propose": proposal}), None)
}

fn accept(table: &mut Table, who: &str, hash: &str) -> Vec<BotPost> {
    table.send_data(who, json!({"accept": hash}), None)
}

fn act(table: &mut Table, who: &str, action: &str, value: Value) -> Vec<BotPost> {
    table.send_data(who, json!({action: value}), None)
}

/// The terms hash recomputed here: `sha256:` of the RFC 8785 form of the posted terms.
fn recomputed_hash(terms: &Value) -> String {
    domain::chain::sha256_tagged(domain::chain::canonical_json(terms).as_bytes())
}

/// An agreed contract: the seqs the judge cites for it, its hash and its `agreed` post.
struct Agreed {
    hash: String,
    proposal_seq: i64,
    /// The proposal's and the acceptances' seqs, ascending: what every ruling cites.
    cites: Vec<i64>,
    agreed: Value,
}

/// alice proposes `proposal`, alice then bob accept.
fn agree(table: &mut Table, proposal: Value) -> Agreed {
    let proposal_seq = next_seq(table);
    let posted = only(&propose(table, "alice", proposal), "proposal");
    let hash = posted["terms_hash"].as_str().expect("a hash").to_owned();
    assert_eq!(recomputed_hash(&posted["terms"]), hash);
    let first = next_seq(table);
    only(&accept(table, "alice", &hash), "accepted");
    let second = next_seq(table);
    let posts = accept(table, "bob", &hash);
    assert_eq!(types(&posts), ["accepted", "agreed"]);
    let agreed = data(&posts[1]);
    assert_eq!(agreed["terms_hash"], hash.as_str());
    assert_eq!(
        agreed["accepted"],
        json!([{"slot": "alice", "seq": first}, {"slot": "bob", "seq": second}])
    );
    assert_eq!(agreed["proposal_seq"], proposal_seq);
    assert_eq!(agreed["agreed_at"], table.now);
    let cites = vec![proposal_seq, first, second];
    assert_eq!(agreed["cites"], json!(cites));
    Agreed {
        hash,
        proposal_seq,
        cites,
        agreed,
    }
}

/// `base` plus `more`, ascending.
fn cites(base: &[i64], more: &[i64]) -> Value {
    let mut all: Vec<i64> = base.iter().chain(more).copied().collect();
    all.sort_unstable();
    all.dedup();
    json!(all)
}

/// The one public ruling in `posts` (other posts may come with it).
#[track_caller]
fn ruling(posts: &[BotPost]) -> Value {
    let rulings: Vec<&BotPost> = posts
        .iter()
        .filter(|p| data(p)["type"] == "ruling")
        .collect();
    assert_eq!(rulings.len(), 1, "{posts:#?}");
    assert_eq!(rulings[0].to, None, "rulings are public");
    data(rulings[0])
}

#[track_caller]
fn assert_unchanged(table: &mut Table, who: &str, body: Value, code: &str) {
    let before = table.state().clone();
    let step = table.post(who, data_body(body), None);
    violation(&step.posts, who, code);
    assert_eq!(step.reaction.state, None, "a violation changes nothing");
    assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
    assert_eq!(table.state(), &before);
}

// ---------------------------------------------------------------------------------------------
// Parties and proposals

#[test]
fn the_parties_are_the_first_invite_seats_and_only_they_act() {
    let (mut table, posts) = Table::open("judge", json!({"parties": 3}), &["alice"]);
    assert_eq!(types(&posts), ["rules"]);
    let rules = data(&posts[0]);
    assert_eq!(rules["parties"], 3);
    assert_eq!(rules["seated"], json!(["alice"]));
    assert_eq!(rules["scheme"], "mcp-multiplayer/contract-terms/v1");
    violation(
        &propose(
            &mut table,
            "alice",
            terms(vec![clause("a", "alice", "bob")]),
        ),
        "alice",
        "NOT_STARTED",
    );
    // A spectator never becomes a party.
    assert!(table.join("watcher").is_empty());
    violation(
        &table.send_data("watcher", json!({"accept": "x"}), None),
        "watcher",
        "NOT_A_PARTY",
    );
    assert!(table.join("bob").is_empty());
    // bob leaves before the start: his place goes to the next to sit down.
    assert!(table.leave("bob").is_empty());
    assert!(table.join("carol").is_empty());
    let start = only(&table.join("bob"), "start");
    assert_eq!(start["parties"], json!(["alice", "carol", "bob"]));
    assert_eq!(start["names"], json!(["Alice", "Carol", "Bob"]));
    // After the start, leaving changes nothing.
    assert!(table.leave("carol").is_empty());
    let posted = only(
        &propose(&mut table, "bob", terms(vec![clause("a", "carol", "bob")])),
        "proposal",
    );
    assert_eq!(posted["terms"]["parties"], json!(["alice", "carol", "bob"]));
    for (who, action) in [
        ("watcher", json!({"propose": terms(vec![])})),
        ("watcher", json!({"confirm": "a"})),
        ("watcher", json!({"claim": {"clause": "a", "text": "x"}})),
    ] {
        assert_unchanged(&mut table, who, action, "NOT_A_PARTY");
    }
}

#[test]
fn chat_and_private_messages_to_others_are_ignored() {
    let mut table = opened(json!({}));
    for text in ["hello", "I accept the idea", "please confirm", "acceptable"] {
        let step = table.post("alice", text_body(text), None);
        assert!(
            step.posts.is_empty() && step.reaction.state.is_none(),
            "{text}"
        );
    }
    let step = table.post(
        "alice",
        data_body(json!({"propose": terms(vec![clause("a", "alice", "bob")])})),
        Some("bob"),
    );
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
    // Private to the judge counts; the answer is public.
    let step = table.post(
        "alice",
        data_body(json!({"propose": terms(vec![clause("a", "alice", "bob")])})),
        Some(BOT),
    );
    assert_eq!(step.posts[0].to, None);
    only(&step.posts, "proposal");
}

#[test]
fn every_bad_proposal_is_refused_with_what_is_wrong() {
    let good = clause("a", "alice", "bob");
    let long = "x".repeat(201);
    let cases: Vec<(Value, &str)> = vec![
        (json!("widgets"), "propose takes an object"),
        (
            json!({"title": "t", "text": "", "clauses": [good], "price": 3}),
            "unknown key \"price\"",
        ),
        (
            json!({"text": "", "clauses": [good]}),
            "title must be a non-empty string",
        ),
        (
            json!({"title": "  ", "text": "", "clauses": [good]}),
            "title must be a non-empty string",
        ),
        (
            json!({"title": long, "text": "", "clauses": [good]}),
            "title is 201 bytes; at most 200",
        ),
        (
            json!({"title": "é".repeat(101), "text": "", "clauses": [good]}),
            "title is 202 bytes",
        ),
        (
            json!({"title": "t", "clauses": [good]}),
            "text must be a string",
        ),
        (
            json!({"title": "t", "text": "x".repeat(8193), "clauses": [good]}),
            "text is 8193 bytes; at most 8192",
        ),
        (
            json!({"title": "t", "text": "", "clauses": []}),
            "clauses must be a non-empty array",
        ),
        (
            json!({"title": "t", "text": "", "clauses": {"a": good}}),
            "clauses must be a non-empty array",
        ),
        (
            terms(
                (0..21)
                    .map(|i| clause(&format!("c{i}"), "alice", "bob"))
                    .collect(),
            ),
            "21 clauses; at most 20",
        ),
        (terms(vec![json!("a")]), "clauses[0] must be an object"),
        (
            terms(vec![with(good.clone(), "price", json!(3))]),
            "clauses[0]: unknown key \"price\"",
        ),
        (
            terms(vec![with(good.clone(), "id", json!("A"))]),
            "clauses[0].id must be 1 to 32",
        ),
        (
            terms(vec![with(good.clone(), "id", json!(""))]),
            "clauses[0].id must be 1 to 32",
        ),
        (
            terms(vec![with(good.clone(), "id", json!("x".repeat(33)))]),
            "clauses[0].id must be 1 to 32",
        ),
        (
            terms(vec![with(good.clone(), "id", json!(7))]),
            "clauses[0].id must be 1 to 32",
        ),
        (
            terms(vec![good.clone(), good.clone()]),
            "clauses[1].id a is not unique",
        ),
        (
            terms(vec![with(good.clone(), "text", json!(""))]),
            "clauses[0].text must be a non-empty string",
        ),
        (
            terms(vec![with(good.clone(), "text", json!("x".repeat(2049)))]),
            "clauses[0].text is 2049 bytes; at most 2048",
        ),
        (
            terms(vec![with(good.clone(), "obligor", json!("carol"))]),
            "clauses[0].obligor must be a party's slot (alice, bob)",
        ),
        (
            terms(vec![with(good.clone(), "beneficiary", json!("watcher"))]),
            "clauses[0].beneficiary must be a party's slot",
        ),
        (
            terms(vec![with(good.clone(), "beneficiary", json!("alice"))]),
            "obligor and beneficiary must be different",
        ),
        (
            terms(vec![with(good.clone(), "kind", json!("sell"))]),
            "clauses[0].kind must be",
        ),
        (
            terms(vec![with(
                with(good.clone(), "deadline_ms", json!(NOW_MS + HOUR)),
                "due_in_ms",
                json!(HOUR),
            )]),
            "not both",
        ),
        (
            terms(vec![with(good.clone(), "deadline_ms", json!(NOW_MS))]),
            "is not in the future",
        ),
        (
            terms(vec![with(good.clone(), "deadline_ms", json!(NOW_MS - 1))]),
            "is not in the future",
        ),
        (
            terms(vec![with(
                good.clone(),
                "deadline_ms",
                json!(NOW_MS + YEAR + 1),
            )]),
            "more than 365 days away",
        ),
        (
            terms(vec![with(good.clone(), "deadline_ms", json!(1.5))]),
            "deadline_ms must be an integer",
        ),
        (
            terms(vec![with(good.clone(), "deadline_ms", json!("soon"))]),
            "deadline_ms must be an integer",
        ),
        (
            terms(vec![with(good.clone(), "due_in_ms", json!(999))]),
            "due_in_ms must be an integer from 1000",
        ),
        (
            terms(vec![with(good.clone(), "due_in_ms", json!(YEAR + 1))]),
            "due_in_ms must be an integer from 1000",
        ),
        (
            terms(vec![with(good.clone(), "fulfilled_by", json!("trust"))]),
            "fulfilled_by must be",
        ),
        (
            terms(vec![with(good.clone(), "fulfilled_by", json!("witness"))]),
            "witness is required",
        ),
        (
            terms(vec![with(
                good.clone(),
                "witness",
                json!({"url": "https://example.com/"}),
            )]),
            "witness is only for",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!("https://example.com/"),
            )]),
            "witness must be an object",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "http://example.com/"}),
            )]),
            "witness.url must start with https://",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://"}),
            )]),
            "witness.url must start with https://",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://a.example/ b"}),
            )]),
            "spaces or control characters",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://a.example/\u{85}"}),
            )]),
            "spaces or control characters",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": format!("https://{}", "a".repeat(600))}),
            )]),
            "is more than 512 bytes",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://a.example/", "status": 99}),
            )]),
            "witness.status must be an integer from 100 to 599",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://a.example/", "contains": ""}),
            )]),
            "witness.contains must be a string of 1 to 500 bytes",
        ),
        (
            terms(vec![with(
                with(good.clone(), "fulfilled_by", json!("witness")),
                "witness",
                json!({"url": "https://a.example/", "signed": true}),
            )]),
            "witness: unknown key \"signed\"",
        ),
        (
            terms(
                (0..17)
                    .map(|i| {
                        with(
                            clause(&format!("c{i}"), "alice", "bob"),
                            "due_in_ms",
                            json!(HOUR),
                        )
                    })
                    .collect(),
            ),
            "17 clauses have deadlines; at most 16 may (the judge keeps one timer per deadline",
        ),
        (
            json!({"title": "t", "text": "x".repeat(8000), "clauses": (0..3).map(|i| with(clause(&format!("c{i}"), "alice", "bob"), "text", json!("y".repeat(2000)))).collect::<Vec<_>>()}),
            "the canonical terms are",
        ),
    ];
    let mut table = opened(json!({}));
    for (proposal, expected) in cases {
        let before = table.state().clone();
        let step = table.post("alice", data_body(json!({"propose": proposal})), None);
        violation(&step.posts, "alice", "BAD_TERMS");
        let refused = data(&step.posts[0]);
        let message = refused["message"].as_str().expect("a message");
        assert!(
            message.contains(expected),
            "{expected:?} not in {message:?}"
        );
        assert!(
            refused["problems"]
                .as_array()
                .is_some_and(|p| !p.is_empty())
        );
        assert_eq!(step.reaction.state, None);
        assert_eq!(table.state(), &before);
    }
    // Several problems at once are all listed.
    let step = table.post(
        "alice",
        data_body(json!({"propose": {"title": "", "text": 3, "clauses": [with(clause("B", "x", "bob"), "kind", json!(1))]}})),
        None,
    );
    let problems = data(&step.posts[0])["problems"].clone();
    assert_eq!(problems.as_array().map(Vec::len), Some(5), "{problems}");
    // 16 deadlines are fine, and so are 20 clauses.
    let mut clauses: Vec<Value> = (0..16)
        .map(|i| {
            with(
                clause(&format!("c{i}"), "alice", "bob"),
                "due_in_ms",
                json!(HOUR),
            )
        })
        .collect();
    clauses.extend((16..20).map(|i| clause(&format!("c{i}"), "bob", "alice")));
    only(&propose(&mut table, "alice", terms(clauses)), "proposal");
}

#[test]
fn the_terms_are_canonical_and_their_hash_recomputes() {
    let mut table = opened(json!({}));
    let proposal = json!({
        "clauses": [
            {"beneficiary": "bob", "obligor": "alice", "text": "Ten widgets — blue", "id": "deliver-1",
             "kind": "deliver", "due_in_ms": DAY, "fulfilled_by": "confirmation_or_witness",
             "witness": {"url": "https://tracking.example/parcel/42", "contains": "Delivered"}},
            {"id": "pay_1", "text": "Pay 10 € \"now\"\n", "obligor": "bob", "beneficiary": "alice",
             "deadline_ms": NOW_MS + 2 * DAY},
        ],
        "text": "Café contract: ünïcödé and \u{1f600}",
        "title": "Widgets",
    });
    let seq = next_seq(&table);
    let posted = only(&propose(&mut table, "bob", proposal), "proposal");
    assert_eq!(posted["n"], 1);
    assert_eq!(posted["by"], "bob");
    assert_eq!(posted["seq"], seq);
    assert_eq!(posted["voided"], Value::Null);
    let expected = json!({
        "scheme": "mcp-multiplayer/contract-terms/v1",
        "channel_id": table.context.channel_id.as_str(),
        "judge": BOT,
        "parties": ["alice", "bob"],
        "title": "Widgets",
        "text": "Café contract: ünïcödé and \u{1f600}",
        "clauses": [
            {"id": "deliver-1", "text": "Ten widgets — blue", "obligor": "alice", "beneficiary": "bob",
             "kind": "deliver", "deadline_ms": null, "due_in_ms": DAY,
             "fulfilled_by": "confirmation_or_witness",
             "witness": {"url": "https://tracking.example/parcel/42", "status": null, "contains": "Delivered"}},
            {"id": "pay_1", "text": "Pay 10 € \"now\"\n", "obligor": "bob", "beneficiary": "alice",
             "kind": "other", "deadline_ms": NOW_MS + 2 * DAY, "due_in_ms": null,
             "fulfilled_by": "confirmation", "witness": null},
        ],
    });
    assert_eq!(posted["terms"], expected);
    // The hash is sha256 over the RFC 8785 form, which the bot computed in JavaScript.
    let hash = posted["terms_hash"].as_str().expect("a hash");
    assert_eq!(hash, recomputed_hash(&expected));
    assert!(hash.starts_with("sha256:") && hash.len() == 71);
    let text = table
        .log
        .last()
        .and_then(|p| p.body.text.clone())
        .unwrap_or_default();
    assert!(text.contains(hash), "{text}");
    // The same terms in the same channel hash the same; the channel is part of them.
    let mut elsewhere = expected.clone();
    elsewhere["channel_id"] = json!("another");
    assert_ne!(recomputed_hash(&elsewhere), hash);
}

// ---------------------------------------------------------------------------------------------
// Acceptance

#[test]
fn acceptance_takes_the_exact_pending_hash() {
    let mut table = opened(json!({}));
    let step = table.post("alice", data_body(json!({"accept": "sha256:00"})), None);
    violation(&step.posts, "alice", "BAD_HASH");
    assert_eq!(data(&step.posts[0])["pending_hash"], Value::Null);

    let first = only(
        &propose(
            &mut table,
            "alice",
            terms(vec![clause("a", "alice", "bob")]),
        ),
        "proposal",
    );
    let hash = first["terms_hash"].as_str().expect("hash").to_owned();
    let other = format!("sha256:{}", "0".repeat(64));
    for wrong in [
        json!(other),
        json!(hash.to_uppercase()),
        json!(7),
        json!(null),
        json!(&hash[..20]),
    ] {
        let step = table.post("bob", data_body(json!({"accept": wrong})), None);
        violation(&step.posts, "bob", "BAD_HASH");
        let refused = data(&step.posts[0]);
        assert_eq!(refused["pending_hash"], hash.as_str());
        assert!(
            refused["message"]
                .as_str()
                .is_some_and(|m| m.contains(&hash))
        );
        assert_eq!(step.reaction.state, None);
    }
    violation(&table.say("bob", "accept"), "bob", "BAD_HASH");

    // Text, and the bare hex digits, work too.
    let accepted = only(&table.say("bob", &format!("  accept {hash} ")), "accepted");
    assert_eq!(accepted["waiting_for"], json!(["alice"]));
    assert_eq!(accepted["n"], 1);
    violation(&accept(&mut table, "bob", &hash), "bob", "ALREADY_ACCEPTED");

    // A new proposal voids bob's acceptance: the old hash is refused now.
    let seq = next_seq(&table);
    let second = only(
        &propose(
            &mut table,
            "alice",
            terms(vec![
                clause("a", "alice", "bob"),
                clause("b", "bob", "alice"),
            ]),
        ),
        "proposal",
    );
    assert_eq!(second["n"], 2);
    assert_eq!(second["seq"], seq);
    assert_eq!(
        second["voided"],
        json!({"n": 1, "terms_hash": hash, "accepted": ["bob"]})
    );
    let new_hash = second["terms_hash"].as_str().expect("hash").to_owned();
    assert_ne!(new_hash, hash);
    let step = table.post("alice", data_body(json!({"accept": hash})), None);
    violation(&step.posts, "alice", "BAD_HASH");
    assert_eq!(data(&step.posts[0])["pending_hash"], new_hash.as_str());
    let accepted = only(&accept(&mut table, "alice", &new_hash[7..]), "accepted");
    assert_eq!(
        accepted["waiting_for"],
        json!(["bob"]),
        "bob must accept again"
    );
    let posts = accept(&mut table, "bob", &new_hash);
    assert_eq!(types(&posts), ["accepted", "agreed"]);
    assert!(posts.iter().all(|p| p.to.is_none()));
    assert!(table.timers.is_empty(), "no deadlines, no timers");

    // Agreed: the terms can no longer change.
    assert_unchanged(
        &mut table,
        "bob",
        json!({"propose": terms(vec![clause("a", "alice", "bob")])}),
        "ALREADY_AGREED",
    );
    assert_unchanged(
        &mut table,
        "alice",
        json!({"accept": new_hash}),
        "ALREADY_AGREED",
    );
}

#[test]
fn a_proposal_whose_deadline_passes_before_the_last_acceptance_lapses() {
    let mut table = opened(json!({}));
    let proposal = terms(vec![
        with(
            clause("a", "alice", "bob"),
            "deadline_ms",
            json!(NOW_MS + 10 * SECOND),
        ),
        clause("b", "bob", "alice"),
    ]);
    let hash = only(&propose(&mut table, "alice", proposal.clone()), "proposal")["terms_hash"]
        .as_str()
        .expect("hash")
        .to_owned();
    only(&accept(&mut table, "alice", &hash), "accepted");
    table.now += 10 * SECOND;
    let lapsed = only(&accept(&mut table, "bob", &hash), "lapsed");
    assert_eq!(
        lapsed,
        json!({"type": "lapsed", "n": 1, "terms_hash": hash, "clauses": ["a"]})
    );
    assert!(table.timers.is_empty());
    let step = table.post("alice", data_body(json!({"accept": hash})), None);
    violation(&step.posts, "alice", "BAD_HASH");
    assert_eq!(data(&step.posts[0])["pending_hash"], Value::Null);
    // The same deadline is refused now; a later one is fine.
    violation(
        &propose(&mut table, "alice", proposal),
        "alice",
        "BAD_TERMS",
    );
}

#[test]
fn the_agreement_sets_one_timer_per_deadline() {
    let mut table = opened(json!({}));
    table.now += 5 * SECOND;
    let agreed_at = table.now + 2;
    let proposal = terms(vec![
        with(
            clause("soon", "alice", "bob"),
            "due_in_ms",
            json!(2 * SECOND),
        ),
        with(
            clause("fixed", "bob", "alice"),
            "deadline_ms",
            json!(NOW_MS + HOUR),
        ),
        clause("open", "alice", "bob"),
        with(
            clause("far", "bob", "alice"),
            "deadline_ms",
            json!(NOW_MS + 3 * DAY + 5),
        ),
    ]);
    let seq = next_seq(&table);
    only(&propose(&mut table, "alice", proposal), "proposal");
    table.now += 1;
    let hash = data(table.log.last().expect("posts"))["terms_hash"].clone();
    let hash = hash.as_str().expect("hash").to_owned();
    accept(&mut table, "alice", &hash);
    table.now += 1;
    let step = table.post("bob", data_body(json!({"accept": hash})), None);
    let agreed = data(&step.posts[1]);
    assert_eq!(agreed["agreed_at"], agreed_at);
    assert_eq!(agreed["proposal_seq"], seq);
    assert_eq!(
        agreed["deadlines"],
        json!([
            {"clause": "soon", "due": agreed_at + 2 * SECOND, "tag": "clause:soon"},
            {"clause": "fixed", "due": NOW_MS + HOUR, "tag": "clause:fixed"},
            {"clause": "far", "due": NOW_MS + 3 * DAY + 5, "tag": "clause:far"},
        ])
    );
    assert_eq!(
        step.reaction.timers,
        vec![
            TimerRequest::Set {
                tag: "clause:soon".into(),
                ms: 2_000
            },
            TimerRequest::Set {
                tag: "clause:fixed".into(),
                ms: u64::try_from(NOW_MS + HOUR - agreed_at).expect("positive")
            },
            TimerRequest::Set {
                tag: "clause:far".into(),
                ms: 86_400_000
            },
        ],
        "a deadline over 24 h away is reached in legs of 24 h"
    );
    // The far clause's legs fire without a ruling until its deadline.
    let mut legs = 0;
    while table
        .timers
        .get("clause:far")
        .is_some_and(|due| *due < NOW_MS + 3 * DAY + 5)
    {
        let step = table.fire("clause:far");
        legs += 1;
        let fired = step.posts.iter().map(data).find(|d| d["clause"] == "far");
        assert!(fired.is_none(), "no ruling on a leg: {:?}", step.posts);
    }
    assert_eq!(legs, 2, "two legs of 24 h, then the rest");
    assert_eq!(
        table.timers.get("clause:far"),
        Some(&(NOW_MS + 3 * DAY + 5))
    );
    let breached = ruling(&table.fire("clause:far").posts);
    assert_eq!(breached["clause"], "far");
    assert_eq!(breached["outcome"], "breached");
}

// ---------------------------------------------------------------------------------------------
// The mechanical rules

fn two_clauses() -> Value {
    terms(vec![
        with(clause("deliver", "alice", "bob"), "due_in_ms", json!(HOUR)),
        with(clause("pay", "bob", "alice"), "due_in_ms", json!(2 * HOUR)),
    ])
}

#[test]
fn the_beneficiarys_confirmation_before_the_deadline_fulfils() {
    let mut table = opened(json!({}));
    let contract = agree(&mut table, two_clauses());
    table.now += 10 * SECOND;
    assert_unchanged(
        &mut table,
        "alice",
        json!({"confirm": "deliver"}),
        "NOT_BENEFICIARY",
    );
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "ship"}),
        "UNKNOWN_CLAUSE",
    );
    assert_unchanged(&mut table, "bob", json!({"confirm": 3}), "BAD_REQUEST");
    let seq = next_seq(&table);
    let step = table.post("bob", text_body("confirm deliver"), None);
    let fulfilled = ruling(&step.posts);
    assert_eq!(step.posts.len(), 1);
    assert_eq!(fulfilled["clause"], "deliver");
    assert_eq!(fulfilled["outcome"], "fulfilled");
    assert_eq!(fulfilled["rule"]["code"], "CONFIRMED_BY_BENEFICIARY");
    assert!(
        fulfilled["rule"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("beneficiary confirmed"))
    );
    assert_eq!(fulfilled["cites"], cites(&contract.cites, &[seq]));
    assert_eq!(fulfilled["confirmation"], json!({"by": "bob", "seq": seq}));
    assert_eq!(fulfilled["at"], table.now);
    assert_eq!(fulfilled["obligor"], "alice");
    assert_eq!(fulfilled["beneficiary"], "bob");
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Cancel {
            tag: "clause:deliver".into()
        }],
        "its clock stops"
    );
    assert!(!table.timers.contains_key("clause:deliver"));
    assert!(table.ended.is_none(), "the other clause is open");
    // Ruled once: no second confirmation, and a stale timer does nothing.
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "deliver"}),
        "CLAUSE_CLOSED",
    );
    let step = table.step(Event::Timer {
        tag: "clause:deliver".into(),
    });
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
    for tag in ["clause:nope", "turn", "clause:"] {
        let step = table.step(Event::Timer { tag: tag.into() });
        assert!(
            step.posts.is_empty() && step.reaction.state.is_none(),
            "{tag}"
        );
    }
}

#[test]
fn a_deadline_that_passes_unconfirmed_is_a_breach() {
    let mut table = opened(json!({}));
    let contract = agree(&mut table, two_clauses());
    let due = table.now + HOUR;
    // A claim before the deadline decides nothing.
    let seq = next_seq(&table);
    let recorded = only(
        &act(
            &mut table,
            "alice",
            "claim",
            json!({"clause": "deliver", "text": "Shipped by courier."}),
        ),
        "recorded",
    );
    assert_eq!(
        recorded,
        json!({"type": "recorded", "kind": "claim", "clause": "deliver", "by": "alice", "seq": seq,
               "at": table.now, "text": "Shipped by courier.", "late": false, "ruling": null})
    );
    // At the deadline itself a confirmation is too late, though the timer has not fired yet.
    table.now = due;
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "deliver"}),
        "CLAUSE_CLOSED",
    );
    let step = table.fire("clause:deliver");
    let breached = ruling(&step.posts);
    assert_eq!(breached["outcome"], "breached");
    assert_eq!(breached["rule"]["code"], "DEADLINE_PASSED");
    assert_eq!(
        breached["cites"],
        json!(contract.cites),
        "the agreement; no seq for a timer"
    );
    assert_eq!(
        breached["timer"],
        json!({"tag": "clause:deliver", "due": due, "fired_at": due, "held_until": null})
    );
    assert_eq!(breached["due"], due);
    assert!(
        step.reaction.timers.is_empty(),
        "the timer fired: nothing to cancel"
    );
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "deliver"}),
        "CLAUSE_CLOSED",
    );
    // The contract's other clause decides the end.
    assert!(table.ended.is_none());
    assert_eq!(contract.agreed["deadlines"][0]["due"], due);
}

#[test]
fn a_dispute_marks_the_clause_disputed_for_good() {
    let mut table = opened(json!({}));
    let contract = agree(&mut table, two_clauses());
    let claim = next_seq(&table);
    act(
        &mut table,
        "alice",
        "claim",
        json!({"clause": "deliver", "text": "Delivered at noon."}),
    );
    act(
        &mut table,
        "bob",
        "claim",
        json!({"clause": "pay", "text": "Paid."}),
    );
    let dispute = next_seq(&table);
    let step = table.post(
        "bob",
        data_body(json!({"dispute": {"clause": "deliver", "text": "Nothing arrived."}})),
        None,
    );
    let disputed = ruling(&step.posts);
    assert_eq!(disputed["outcome"], "disputed");
    assert_eq!(disputed["rule"]["code"], "DISPUTED");
    assert_eq!(
        disputed["dispute"],
        json!({"by": "bob", "seq": dispute, "text": "Nothing arrived."})
    );
    assert_eq!(
        disputed["cites"],
        cites(&contract.cites, &[claim, dispute]),
        "the claims on the clause and the dispute, not the claim on another clause"
    );
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Cancel {
            tag: "clause:deliver".into()
        }]
    );
    // Never ruled again: not by a confirmation, nor a deadline, nor another dispute.
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "deliver"}),
        "CLAUSE_CLOSED",
    );
    table.now += HOUR;
    let step = table.step(Event::Timer {
        tag: "clause:deliver".into(),
    });
    assert!(step.posts.is_empty());
    let again = only(
        &act(
            &mut table,
            "alice",
            "dispute",
            json!({"clause": "deliver", "text": "It did arrive."}),
        ),
        "recorded",
    );
    assert_eq!(again["kind"], "dispute");
    assert_eq!(
        again["ruling"],
        json!({"outcome": "disputed", "code": "DISPUTED"})
    );
}

#[test]
fn a_claim_after_a_deadline_is_recorded_and_changes_no_ruling() {
    let mut table = opened(json!({}));
    let contract = agree(&mut table, two_clauses());
    let due = table.now + HOUR;
    // After the deadline, before the timer fires: a late claim and a late dispute are recorded;
    // the dispute does not make the clause disputed.
    table.now = due + 300;
    let late_claim = only(
        &act(
            &mut table,
            "alice",
            "claim",
            json!({"clause": "deliver", "text": "I delivered on time!"}),
        ),
        "recorded",
    );
    assert_eq!(late_claim["late"], true);
    assert_eq!(late_claim["ruling"], Value::Null);
    let late_dispute = only(
        &act(
            &mut table,
            "alice",
            "dispute",
            json!({"clause": "deliver", "text": "The clock is wrong."}),
        ),
        "recorded",
    );
    assert_eq!(late_dispute["kind"], "dispute");
    assert_eq!(late_dispute["late"], true);
    let breached = ruling(&table.fire("clause:deliver").posts);
    assert_eq!(breached["outcome"], "breached");
    assert_eq!(breached["cites"], json!(contract.cites));
    // After the ruling: recorded as a challenge; the ruling stands.
    let seq = next_seq(&table);
    let step = table.post(
        "alice",
        data_body(json!({"claim": {"clause": "deliver", "text": "Breach denied."}})),
        None,
    );
    let challenge = only(&step.posts, "recorded");
    assert_eq!(challenge["seq"], seq);
    assert_eq!(challenge["late"], true);
    assert_eq!(
        challenge["ruling"],
        json!({"outcome": "breached", "code": "DEADLINE_PASSED"})
    );
    assert!(step.reaction.timers.is_empty());
    // The record, at the end, has the ruling unchanged and every late statement.
    let seq_confirm = next_seq(&table);
    let posts = act(&mut table, "alice", "confirm", json!("pay"));
    assert_eq!(types(&posts), ["ruling", "record"]);
    let record = data(&posts[1]);
    assert_eq!(
        record["rulings"][0],
        breached
            .as_object()
            .map(|r| {
                let mut r = r.clone();
                r.remove("type");
                Value::Object(r)
            })
            .expect("an object")
    );
    assert_eq!(record["rulings"][1]["confirmation"]["seq"], seq_confirm);
    let kinds: Vec<(&str, bool)> = record["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| (e["kind"].as_str().unwrap_or(""), e["late"] == true))
        .collect();
    assert_eq!(kinds, [("claim", true), ("dispute", true), ("claim", true)]);
    assert_eq!(
        record["summary"],
        json!({"fulfilled": 1, "breached": 1, "disputed": 0})
    );
}

// ---------------------------------------------------------------------------------------------
// Forged evidence and other refusals

#[test]
fn evidence_in_a_participants_message_is_never_trusted() {
    let mut table = opened(json!({}));
    let proposal = terms(vec![
        with(
            with(
                with(clause("deliver", "alice", "bob"), "due_in_ms", json!(HOUR)),
                "fulfilled_by",
                json!("witness"),
            ),
            "witness",
            json!({"url": "https://tracking.example/42", "status": 200, "contains": "Delivered"}),
        ),
        clause("pay", "bob", "alice"),
    ]);
    let contract = agree(&mut table, proposal);
    let forged_result = json!({
        "seq": 2, "tag": "evidence:2", "url": "https://tracking.example/42", "requested_by": 2,
        "ok": true, "error": null, "fetched_at": table.now, "address": "93.184.216.34:443",
        "tls": null, "status": 200, "headers": {}, "body": {"sha256": "0", "bytes": 9, "truncated": false, "text": "Delivered"},
    });
    // Evidence carrying an attestation, a status or a body is refused whole.
    for forged in [
        json!({"clause": "deliver", "attestation": forged_result.clone()}),
        json!({"clause": "deliver", "url": "https://tracking.example/42", "status": 200, "body": "Delivered"}),
        json!({"clause": "deliver", "fetch_attested": forged_result.clone()}),
        json!({"clause": "deliver", "result": forged_result.clone()}),
    ] {
        let before = table.state().clone();
        let step = table.post("alice", data_body(json!({"evidence": forged})), None);
        violation(&step.posts, "alice", "BAD_EVIDENCE");
        let message = data(&step.posts[0])["message"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        assert!(message.contains("never trusts"), "{message}");
        assert_eq!(table.state(), &before);
    }
    // Data shaped like a fetch result or a fetch_attested notice is chat to the judge.
    for forged in [
        forged_result.clone(),
        json!({"event": "fetch_attested", "v": 1, "slot": BOT, "result": forged_result}),
        json!({"type": "attestation", "clause": "deliver", "matched": true, "seq": 2}),
        json!({"type": "ruling", "clause": "deliver", "outcome": "fulfilled"}),
    ] {
        let step = table.post("alice", data_body(forged), Some(BOT));
        assert!(step.posts.is_empty() && step.reaction.state.is_none());
    }
    // A witness-only clause is not fulfilled by anyone's word, even the beneficiary's.
    assert_unchanged(
        &mut table,
        "bob",
        json!({"confirm": "deliver"}),
        "WITNESS_ONLY",
    );
    // So the deadline passes and the clause is breached.
    table.now += HOUR;
    let breached = ruling(&table.fire("clause:deliver").posts);
    assert_eq!(breached["outcome"], "breached");
    assert_eq!(breached["cites"], json!(contract.cites));
    // Malformed evidence.
    table.now -= 1;
    for (evidence, code) in [
        (json!("https://tracking.example/42"), "BAD_EVIDENCE"),
        (
            json!({"url": "https://tracking.example/42"}),
            "BAD_EVIDENCE",
        ),
        (json!({"clause": "nope"}), "UNKNOWN_CLAUSE"),
        (json!({"clause": "pay"}), "BAD_EVIDENCE"),
        (
            json!({"clause": "pay", "url": "http://bank.example/"}),
            "BAD_EVIDENCE",
        ),
        (json!({"clause": "pay", "url": 7}), "BAD_EVIDENCE"),
        (
            json!({"clause": "pay", "url": "https://bank.example/\u{85}x"}),
            "BAD_EVIDENCE",
        ),
        (
            json!({"clause": "pay", "url": "https://bank.example/\u{a0}x"}),
            "BAD_EVIDENCE",
        ),
        (json!({"clause": "deliver"}), "CLAUSE_CLOSED"),
    ] {
        assert_unchanged(&mut table, "alice", json!({"evidence": evidence}), code);
    }
}

#[test]
fn each_refusal_is_private_and_changes_nothing() {
    let mut table = opened(json!({}));
    for action in [
        json!({"confirm": "a"}),
        json!({"claim": {"clause": "a", "text": "x"}}),
        json!({"dispute": {"clause": "a", "text": "x"}}),
        json!({"evidence": {"clause": "a"}}),
    ] {
        assert_unchanged(&mut table, "alice", action, "NOT_AGREED");
    }
    assert_unchanged(
        &mut table,
        "alice",
        json!({"confirm": "a", "claim": {}}),
        "BAD_REQUEST",
    );
    agree(&mut table, two_clauses());
    for (action, code) in [
        (json!({"claim": "it is done"}), "BAD_REQUEST"),
        (json!({"claim": {"clause": "deliver"}}), "BAD_REQUEST"),
        (
            json!({"claim": {"clause": "deliver", "text": " "}}),
            "BAD_REQUEST",
        ),
        (
            json!({"claim": {"clause": "deliver", "text": "x", "proof": "y"}}),
            "BAD_REQUEST",
        ),
        (
            json!({"claim": {"clause": "deliver", "text": "x".repeat(501)}}),
            "BAD_REQUEST",
        ),
        (
            json!({"claim": {"clause": "deliver", "text": "\"".repeat(251)}}),
            "BAD_REQUEST",
        ),
        (
            json!({"dispute": {"clause": 1, "text": "x"}}),
            "BAD_REQUEST",
        ),
        (
            json!({"dispute": {"clause": "ship", "text": "x"}}),
            "UNKNOWN_CLAUSE",
        ),
        (json!({"confirm": ""}), "BAD_REQUEST"),
    ] {
        assert_unchanged(&mut table, "bob", action, code);
    }
    // 500 bytes is fine.
    only(
        &act(
            &mut table,
            "bob",
            "claim",
            json!({"clause": "deliver", "text": "x".repeat(500)}),
        ),
        "recorded",
    );
    // The record holds 24 claims and disputes.
    for i in 1..24 {
        let clause = if i % 2 == 0 { "deliver" } else { "pay" };
        only(
            &act(
                &mut table,
                "alice",
                "claim",
                json!({"clause": clause, "text": format!("claim {i}")}),
            ),
            "recorded",
        );
    }
    assert_unchanged(
        &mut table,
        "alice",
        json!({"dispute": {"clause": "pay", "text": "one more"}}),
        "RECORD_FULL",
    );
    // A confirmation is still taken.
    assert_eq!(
        ruling(&act(&mut table, "alice", "confirm", json!("pay")))["outcome"],
        "fulfilled"
    );
}

#[test]
fn bad_params_are_refused() {
    for (params, expected) in [
        (
            json!({"parties": 1}),
            "params.parties must be an integer from 2 to 5",
        ),
        (json!({"parties": 6}), "params.parties"),
        (json!({"parties": "2"}), "params.parties"),
        (json!({"deadline": 3}), "unknown param deadline"),
        (json!([2]), "params must be an object"),
    ] {
        let message = refused_params("judge", params);
        assert!(message.contains(expected), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// The record and the end of the run

#[test]
fn when_every_clause_is_ruled_the_record_is_posted_and_the_run_ends() {
    let mut table = opened(json!({}));
    let contract = agree(
        &mut table,
        terms(vec![
            with(clause("deliver", "alice", "bob"), "due_in_ms", json!(HOUR)),
            with(clause("pay", "bob", "alice"), "due_in_ms", json!(2 * HOUR)),
            clause("support", "alice", "bob"),
        ]),
    );
    let agreed_at = table.now;
    let confirm = next_seq(&table);
    ruling(&act(&mut table, "bob", "confirm", json!("deliver")));
    let dispute = next_seq(&table);
    ruling(&act(
        &mut table,
        "alice",
        "dispute",
        json!({"clause": "support", "text": "Never asked."}),
    ));
    assert!(table.ended.is_none());
    let posts = table.advance(2 * HOUR);
    assert_eq!(types(&posts), ["ruling", "record"]);
    let record = data(&posts[1]);
    assert_eq!(record["type"], "record");
    assert_eq!(record["scheme"], "mcp-multiplayer/contract-terms/v1");
    assert_eq!(record["terms_hash"], contract.hash.as_str());
    assert_eq!(
        (record["part"].clone(), record["parts"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(record["parties"], json!(["alice", "bob"]));
    assert_eq!(
        record["proposal"],
        json!({"n": 1, "by": "alice", "seq": contract.proposal_seq})
    );
    assert_eq!(record["accepted"], contract.agreed["accepted"]);
    assert_eq!(record["agreed_at"], agreed_at);
    assert_eq!(recomputed_hash(&record["terms"]), contract.hash);
    assert_eq!(
        record["summary"],
        json!({"fulfilled": 1, "breached": 1, "disputed": 1})
    );
    let rulings = record["rulings"].as_array().expect("rulings");
    let summary: Vec<(&str, &str)> = rulings
        .iter()
        .map(|r| {
            (
                r["clause"].as_str().unwrap_or(""),
                r["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("deliver", "fulfilled"),
            ("support", "disputed"),
            ("pay", "breached")
        ]
    );
    assert_eq!(rulings[0]["cites"], cites(&contract.cites, &[confirm]));
    assert_eq!(rulings[1]["dispute"]["text"], "Never asked.");
    assert_eq!(rulings[1]["cites"], cites(&contract.cites, &[dispute]));
    assert_eq!(record["entries"].as_array().map(Vec::len), Some(1));
    let reason = table.ended.clone().expect("ended").expect("a reason");
    assert_eq!(
        reason,
        "Contract judged: 1 fulfilled, 1 breached, 1 disputed"
    );
    assert_unchanged(&mut table, "bob", json!({"confirm": "pay"}), "GAME_OVER");
    let step = table.step(Event::Timer {
        tag: "clause:pay".into(),
    });
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
}

#[test]
fn a_record_at_the_caps_comes_in_parts_and_the_state_fits() {
    let mut table = opened(json!({}));
    let text = "Ünïcödé ".repeat(500);
    let clauses: Vec<Value> = (0..4)
        .map(|i| {
            with(
                clause(&format!("c{i}"), "alice", "bob"),
                "text",
                json!("z".repeat(1200)),
            )
        })
        .collect();
    let contract = agree(
        &mut table,
        json!({"title": "Big", "text": text, "clauses": clauses}),
    );
    for i in 0..24 {
        let clause = format!("c{}", i % 4);
        only(
            &act(
                &mut table,
                "alice",
                "claim",
                json!({"clause": clause, "text": "x\"".repeat(166)}),
            ),
            "recorded",
        );
    }
    // And every evidence request allowed, with the longest urls, each with its result.
    for round in 0..2 {
        let mut asked = Vec::new();
        for i in 0..(if round == 0 { 8 } else { 4 }) {
            let url = format!(
                "https://evidence.example/{round}/{i:02}/{}",
                "p".repeat(475)
            );
            assert!(url.len() <= 512);
            asked.push((ask(&mut table, "bob", "c0", Some(&url), false), url));
        }
        for ((request, tag), url) in asked {
            let seq = next_seq(&table);
            let now = table.now;
            let result = fetched(seq, &tag, request, &url, now, Some(200), Some("ok"), None);
            assert_eq!(
                only(&deliver(&mut table, result).posts, "attestation")["matched"],
                Value::Null
            );
        }
    }
    let state = serde_json::to_string(table.state()).expect("json").len();
    assert!(
        state < 60_000,
        "the state at its caps is {state} bytes, the cap 65536"
    );
    for i in 0..3 {
        ruling(&act(&mut table, "bob", "confirm", json!(format!("c{i}"))));
    }
    let step = table.post("bob", data_body(json!({"confirm": "c3"})), None);
    let posts = step.posts;
    assert!(posts.len() >= 3, "{}", posts.len());
    assert_eq!(data(&posts[0])["type"], "ruling");
    let parts = posts.len() - 1;
    let mut rulings = Vec::new();
    let mut entries = Vec::new();
    for (k, post) in posts[1..].iter().enumerate() {
        let part = data(post);
        assert_eq!(part["type"], if k == 0 { "record" } else { "record_part" });
        assert_eq!(part["part"], k + 1);
        assert_eq!(part["parts"], parts);
        assert_eq!(part["terms_hash"], contract.hash.as_str());
        let size = serde_json::to_string(&part).expect("json").len();
        assert!(size <= 15_000, "part {k} is {size} bytes");
        rulings.extend(part["rulings"].as_array().expect("rulings").iter().cloned());
        entries.extend(part["entries"].as_array().expect("entries").iter().cloned());
    }
    assert_eq!(rulings.len(), 4);
    assert_eq!(
        entries.len(),
        24 + 12 + 12,
        "claims, evidence requests, attestations"
    );
    assert!(entries[..24].iter().all(|e| e["text"] == "x\"".repeat(166)));
    assert!(table.ended.is_some());
}

// ---------------------------------------------------------------------------------------------
// Witness evidence: fetch results delivered to the judge's on_fetch

const TRACKING: &str = "https://tracking.example/parcel/42";

/// A contract whose `deliver` clause (alice owes bob, due in an hour) is fulfilled by `by`
/// ("witness" or "confirmation_or_witness"): the tracking page answers 200 with "Delivered";
/// and a `pay` clause with no deadline, fulfilled by confirmation.
fn witnessed(table: &mut Table, by: &str) -> Agreed {
    agree(
        table,
        terms(vec![
            json!({"id": "deliver", "text": "Ship the parcel.", "obligor": "alice", "beneficiary": "bob",
                   "kind": "deliver", "due_in_ms": HOUR, "fulfilled_by": by,
                   "witness": {"url": TRACKING, "status": 200, "contains": "Delivered"}}),
            clause("pay", "bob", "alice"),
        ]),
    )
}

/// What the server saw, as `on_fetch` gets it: the attestation of a fetch of `url` at
/// `fetched_at` (`status` and `text`, or the failure `error`), recorded at `seq`, for the
/// request made at `requested_by` with `tag`.
#[allow(clippy::too_many_arguments)]
fn fetched(
    seq: i64,
    tag: &str,
    requested_by: i64,
    url: &str,
    fetched_at: i64,
    status: Option<u16>,
    text: Option<&str>,
    error: Option<domain::attestation::FetchFailureCode>,
) -> Value {
    use domain::attestation::{Attestation, BodyRecord, FetchFailure, WitnessSignature};
    let attestation = Attestation {
        url: url.into(),
        fetched_at: domain::Timestamp(fetched_at),
        address: status.map(|_| "93.184.216.34:443".into()),
        tls: None,
        status,
        headers: std::collections::BTreeMap::new(),
        body: text.map(|text| BodyRecord {
            sha256: "cd".repeat(32),
            bytes: text.len() as u64,
            truncated: false,
            text: Some(text.into()),
            base64: None,
        }),
        error: error.map(|code| FetchFailure {
            code,
            message: "as the server says".into(),
        }),
    };
    let witness = WitnessSignature {
        key_id: "ed25519:0123456789abcdef".into(),
        signature: "sig".into(),
    };
    bots::fetch_result(
        domain::Seq(seq),
        tag,
        domain::Seq(requested_by),
        &attestation,
        &witness,
    )
}

/// `who` asks for evidence on `clause` (at the clause's witness url when `url` is None):
/// checks the request and returns its seq and tag.
#[track_caller]
fn ask(
    table: &mut Table,
    who: &str,
    clause: &str,
    url: Option<&str>,
    qualifying: bool,
) -> (i64, String) {
    let seq = next_seq(table);
    let mut evidence = json!({"clause": clause});
    if let Some(url) = url {
        evidence["url"] = json!(url);
    }
    let step = table.post(who, data_body(json!({"evidence": evidence})), None);
    let requested = only(&step.posts, "evidence_requested");
    let tag = format!("evidence:{seq}");
    let url = url.unwrap_or(TRACKING);
    assert_eq!(
        requested,
        json!({"type": "evidence_requested", "clause": clause, "by": who, "seq": seq, "url": url,
               "tag": tag, "qualifying": qualifying})
    );
    assert_eq!(
        step.reaction.fetches,
        vec![bots::FetchRequest {
            url: url.into(),
            tag: tag.clone()
        }]
    );
    (seq, tag)
}

/// Delivers `result` (whose seq must be the next event's) to the judge.
fn deliver(table: &mut Table, result: Value) -> crate::table::Step {
    assert_eq!(result["seq"], next_seq(table), "the notice is the event");
    table.step(Event::Fetch(result))
}

#[test]
fn witness_evidence_that_shows_the_clause_fulfils_it() {
    let mut table = opened(json!({}));
    let contract = witnessed(&mut table, "witness");
    table.now += 5 * SECOND;
    let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
    let asked_at = table.now;
    table.now += 700;
    let seq = next_seq(&table);
    let page = "<html>Parcel 42: Delivered to Bob</html>";
    let result = fetched(
        seq,
        &tag,
        request,
        TRACKING,
        asked_at + 200,
        Some(200),
        Some(page),
        None,
    );
    let step = deliver(&mut table, result);
    assert_eq!(types(&step.posts), ["attestation", "ruling"]);
    let attestation = data(&step.posts[0]);
    assert_eq!(attestation["seq"], seq);
    assert_eq!(attestation["requested_by"], request);
    assert_eq!(attestation["matched"], true);
    assert_eq!(attestation["ok"], true);
    assert_eq!(attestation["status"], 200);
    assert_eq!(attestation["fetched_at"], asked_at + 200);
    assert_eq!(attestation["body_sha256"], "cd".repeat(32));
    let fulfilled = ruling(&step.posts);
    assert_eq!(fulfilled["outcome"], "fulfilled");
    assert_eq!(fulfilled["rule"]["code"], "WITNESS_SHOWED");
    assert_eq!(fulfilled["cites"], cites(&contract.cites, &[request, seq]));
    assert_eq!(
        fulfilled["attestation"],
        json!({"seq": seq, "requested_by": request, "url": TRACKING, "status": 200,
               "fetched_at": asked_at + 200, "body_sha256": "cd".repeat(32)})
    );
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Cancel {
            tag: "clause:deliver".into()
        }]
    );
    assert_unchanged(
        &mut table,
        "alice",
        json!({"evidence": {"clause": "deliver"}}),
        "CLAUSE_CLOSED",
    );
    // A result the judge did not ask for (another tag or request) changes nothing.
    let seq = next_seq(&table);
    let stray = fetched(
        seq,
        "evidence:1",
        1,
        TRACKING,
        asked_at,
        Some(200),
        Some(page),
        None,
    );
    let step = deliver(&mut table, stray);
    assert!(step.posts.is_empty() && step.reaction.state.is_none());
    // Cut at the size cap, the status and the text still show it (a later contract).
    let mut table = opened(json!({}));
    witnessed(&mut table, "witness");
    let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
    let seq = next_seq(&table);
    let now = table.now;
    let cut = fetched(
        seq,
        &tag,
        request,
        TRACKING,
        now,
        Some(200),
        Some("Delivered, and more"),
        Some(domain::attestation::FetchFailureCode::TooLarge),
    );
    let step = deliver(&mut table, cut);
    let attestation = data(&step.posts[0]);
    assert_eq!(
        (attestation["ok"].clone(), attestation["error"].clone()),
        (json!(false), json!("TOO_LARGE"))
    );
    assert_eq!(ruling(&step.posts)["rule"]["code"], "WITNESS_SHOWED");
}

/// A fetch's status, body text and failure, and why it does not show the witness.
type FetchCase = (
    Option<u16>,
    Option<&'static str>,
    Option<domain::attestation::FetchFailureCode>,
    &'static str,
);

#[test]
fn a_fetch_that_fails_or_shows_something_else_fulfils_nothing() {
    use domain::attestation::FetchFailureCode;
    let mut table = opened(json!({}));
    let contract = witnessed(&mut table, "confirmation_or_witness");
    let due = table.now + HOUR;
    let mut failed = Vec::new();
    let cases: Vec<FetchCase> = vec![
        (
            None,
            None,
            Some(FetchFailureCode::Timeout),
            "status 200; the answer was none",
        ),
        (
            None,
            None,
            Some(FetchFailureCode::AddressRefused),
            "status 200",
        ),
        (None, None, Some(FetchFailureCode::Cancelled), "status 200"),
        (
            Some(404),
            Some("Delivered? No: not found"),
            None,
            "status 200; the answer was 404",
        ),
        (
            Some(200),
            Some("In transit"),
            None,
            "does not contain \"Delivered\"",
        ),
        (Some(200), None, None, "does not contain"),
    ];
    for (status, text, error, why) in cases {
        table.now += SECOND;
        let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
        let seq = next_seq(&table);
        let now = table.now;
        let step = deliver(
            &mut table,
            fetched(seq, &tag, request, TRACKING, now, status, text, error),
        );
        let attestation = only(&step.posts, "attestation");
        assert_eq!(attestation["matched"], false, "{attestation}");
        assert_eq!(attestation["ok"], error.is_none());
        assert!(
            attestation["why"].as_str().is_some_and(|w| w.contains(why)),
            "{why}: {attestation}"
        );
        failed.push(seq);
    }
    // A fetch of another url is recorded and rules nothing, nor is it cited.
    let (request, tag) = ask(
        &mut table,
        "alice",
        "deliver",
        Some("https://elsewhere.example/ok"),
        false,
    );
    let seq = next_seq(&table);
    let now = table.now;
    let other = fetched(
        seq,
        &tag,
        request,
        "https://elsewhere.example/ok",
        now,
        Some(200),
        Some("Delivered"),
        None,
    );
    let attestation = only(&deliver(&mut table, other).posts, "attestation");
    assert_eq!(attestation["matched"], false);
    assert!(
        attestation["why"]
            .as_str()
            .is_some_and(|w| w.contains("not the clause's witness url"))
    );
    // Evidence on a confirmation clause: recorded, and it cannot rule.
    let (request, tag) = ask(
        &mut table,
        "bob",
        "pay",
        Some("https://bank.example/receipt"),
        false,
    );
    let seq = next_seq(&table);
    let now = table.now;
    let receipt = fetched(
        seq,
        &tag,
        request,
        "https://bank.example/receipt",
        now,
        Some(200),
        Some("paid"),
        None,
    );
    assert_eq!(
        only(&deliver(&mut table, receipt).posts, "attestation")["matched"],
        Value::Null
    );
    // A matching page fetched after the deadline: asked for before it, the timer late.
    let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
    table.now = due + 100;
    let seq = next_seq(&table);
    let late = fetched(
        seq,
        &tag,
        request,
        TRACKING,
        due + 1,
        Some(200),
        Some("Delivered"),
        None,
    );
    let late = only(&deliver(&mut table, late).posts, "attestation");
    assert_eq!(late["matched"], false);
    assert!(
        late["why"]
            .as_str()
            .is_some_and(|w| w.contains("after the deadline"))
    );
    failed.push(seq);
    // The deadline rules: breached, citing every witness fetch that did not show it.
    let breached = ruling(&table.fire("clause:deliver").posts);
    assert_eq!(breached["outcome"], "breached");
    assert_eq!(breached["cites"], cites(&contract.cites, &failed));
}

#[test]
fn a_deadline_waits_for_witness_evidence_asked_for_before_it() {
    let mut table = opened(json!({}));
    let contract = witnessed(&mut table, "witness");
    let due = table.now + HOUR;
    table.now = due - 10;
    let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
    // The deadline comes before the result: the ruling is held.
    let step = table.fire("clause:deliver");
    let held = only(&step.posts, "held");
    assert_eq!(
        held,
        json!({"type": "held", "clause": "deliver", "due": due, "until": due + 60_000, "waiting_for": [request]})
    );
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Set {
            tag: "clause:deliver".into(),
            ms: 60_000
        }]
    );
    // Evidence asked for now is too late, and so are confirmations.
    assert_unchanged(
        &mut table,
        "bob",
        json!({"evidence": {"clause": "deliver"}}),
        "CLAUSE_CLOSED",
    );
    // The page, fetched before the deadline, showed it: fulfilled.
    table.now += 2 * SECOND;
    let seq = next_seq(&table);
    let step = deliver(
        &mut table,
        fetched(
            seq,
            &tag,
            request,
            TRACKING,
            due - 5,
            Some(200),
            Some("Delivered"),
            None,
        ),
    );
    let fulfilled = ruling(&step.posts);
    assert_eq!(fulfilled["rule"]["code"], "WITNESS_SHOWED");
    assert_eq!(fulfilled["cites"], cites(&contract.cites, &[request, seq]));
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Cancel {
            tag: "clause:deliver".into()
        }]
    );

    // Held again, and the result fails: breached at once, citing it.
    let mut table = opened(json!({}));
    let contract = witnessed(&mut table, "witness");
    let due = table.now + HOUR;
    table.now = due - 10;
    let (request, tag) = ask(&mut table, "alice", "deliver", None, true);
    only(&table.fire("clause:deliver").posts, "held");
    let seq = next_seq(&table);
    let failure = fetched(
        seq,
        &tag,
        request,
        TRACKING,
        due - 9,
        None,
        None,
        Some(domain::attestation::FetchFailureCode::Connect),
    );
    let step = deliver(&mut table, failure);
    assert_eq!(types(&step.posts), ["attestation", "ruling"]);
    let breached = ruling(&step.posts);
    assert_eq!(breached["rule"]["code"], "DEADLINE_PASSED");
    assert_eq!(breached["cites"], cites(&contract.cites, &[seq]));
    assert_eq!(breached["timer"]["held_until"], due + 60_000);
    assert_eq!(
        step.reaction.timers,
        vec![TimerRequest::Cancel {
            tag: "clause:deliver".into()
        }]
    );

    // Held, and nothing comes back within the grace: breached when it runs out.
    let mut table = opened(json!({}));
    witnessed(&mut table, "witness");
    table.now += HOUR - 10;
    ask(&mut table, "alice", "deliver", None, true);
    let until = data(&table.fire("clause:deliver").posts[0])["until"]
        .as_i64()
        .expect("until");
    let step = table.fire("clause:deliver");
    assert_eq!(table.now, until);
    let breached = ruling(&step.posts);
    assert_eq!(breached["outcome"], "breached");
    assert_eq!(breached["timer"]["held_until"], until);
    assert!(step.reaction.timers.is_empty());
}

#[test]
fn evidence_requests_are_capped() {
    let mut table = opened(json!({}));
    witnessed(&mut table, "confirmation_or_witness");
    let mut pending = Vec::new();
    for _ in 0..8 {
        pending.push(ask(&mut table, "alice", "deliver", None, true));
    }
    assert_unchanged(
        &mut table,
        "alice",
        json!({"evidence": {"clause": "deliver"}}),
        "BAD_EVIDENCE",
    );
    // Results free their places; the total stays capped at 12.
    for (request, tag) in pending.drain(..4) {
        let seq = next_seq(&table);
        let now = table.now;
        let step = deliver(
            &mut table,
            fetched(seq, &tag, request, TRACKING, now, Some(500), None, None),
        );
        only(&step.posts, "attestation");
    }
    for _ in 0..4 {
        ask(&mut table, "bob", "deliver", None, true);
    }
    let step = table.post(
        "bob",
        data_body(json!({"evidence": {"clause": "deliver"}})),
        None,
    );
    violation(&step.posts, "bob", "BAD_EVIDENCE");
    assert!(
        data(&step.posts[0])["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 12"))
    );
}

// ---------------------------------------------------------------------------------------------
// Random event sequences against a reference model

const SEATS: [&str; 4] = ["alice", "bob", "carol", "watcher"];
const IDS: [&str; 4] = ["a", "b", "c", "d"];

/// How often each outcome was seen across the random sequences, to show they were reached.
static SEEN: [std::sync::atomic::AtomicUsize; 10] =
    [const { std::sync::atomic::AtomicUsize::new(0) }; 10];
const SEEN_NAMES: [&str; 10] = [
    "fulfilled",
    "witness",
    "held",
    "breached",
    "disputed",
    "record",
    "lapsed",
    "agreed",
    "voided",
    "late statement",
];

fn seen(what: &str) {
    let index = SEEN_NAMES
        .iter()
        .position(|n| *n == what)
        .expect("a known name");
    SEEN[index].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Phase {
    Waiting,
    Negotiating,
    Agreed,
    Over,
}

#[derive(Clone, Debug)]
struct MClause {
    id: String,
    obligor: String,
    beneficiary: String,
    deadline_ms: Option<i64>,
    due_in_ms: Option<i64>,
    fulfilled_by: &'static str,
}

impl MClause {
    /// The clause in the judge's canonical terms.
    fn canonical(&self) -> Value {
        let witness = (self.fulfilled_by != "confirmation").then(|| {
            json!({"url": format!("https://witness.example/{}", self.id), "status": 200, "contains": "done"})
        });
        json!({
            "id": self.id, "text": format!("clause {}", self.id), "obligor": self.obligor,
            "beneficiary": self.beneficiary, "kind": "other", "deadline_ms": self.deadline_ms,
            "due_in_ms": self.due_in_ms, "fulfilled_by": self.fulfilled_by, "witness": witness,
        })
    }

    /// The clause as a party proposes it (defaults left out).
    fn proposed(&self) -> Value {
        let mut c = self.canonical();
        let object = c.as_object_mut().expect("an object");
        object.retain(|_, v| !v.is_null());
        object.remove("kind");
        if self.fulfilled_by == "confirmation" {
            object.remove("fulfilled_by");
        }
        c
    }
}

struct Pending {
    n: u32,
    hash: String,
    clauses: Vec<MClause>,
    accepted: Vec<(String, i64)>,
}

struct Ruled {
    outcome: &'static str,
    code: &'static str,
}

struct Open {
    clause: MClause,
    due: Option<i64>,
    ruled: Option<Ruled>,
    /// Until when a deadline ruling waits for witness fetches asked for before it.
    hold_until: Option<i64>,
}

/// An evidence request whose result has not come back.
struct MFetch {
    tag: String,
    clause: usize,
    url: String,
    seq: i64,
    at: i64,
    qualifying: bool,
}

/// A fetch result the judge recorded.
struct MAttestation {
    clause: usize,
    seq: i64,
    qualifying: bool,
    matched: Option<bool>,
}

struct Model {
    phase: Phase,
    n_parties: usize,
    parties: Vec<String>,
    proposals: u32,
    pending: Option<Pending>,
    /// Hashes of earlier proposals, which no acceptance may take any more.
    old_hashes: Vec<String>,
    cites: Vec<i64>,
    clauses: Vec<Open>,
    statements: usize,
    /// (clause, seq) of every claim so far.
    claims: Vec<(String, i64)>,
    /// Seqs of the user messages so far: the only seqs a ruling may cite.
    seqs: std::collections::BTreeSet<i64>,
    /// Every ruling the judge posted, in order.
    rulings: Vec<Value>,
    fetches: Vec<MFetch>,
    evidence: usize,
    attestations: Vec<MAttestation>,
}

enum Action {
    Propose(Value, Option<Vec<MClause>>),
    Accept(Value),
    Confirm(Value),
    Statement(&'static str, Value),
    ForgedEvidence(Value),
    /// Evidence on a clause, at the clause's witness url (None) or another.
    Evidence(Value, Option<String>),
    Double,
    Chat,
}

impl Model {
    fn party(&self, rng: &mut Rng) -> String {
        if self.parties.len() >= 2 {
            rng.pick(&self.parties).clone()
        } else {
            (*rng.pick(&["alice", "bob"])).to_owned()
        }
    }

    fn random_proposal(&self, rng: &mut Rng, now: i64) -> (Value, Option<Vec<MClause>>) {
        let count = 1 + rng.below(4);
        let mut ids: Vec<&str> = IDS.to_vec();
        let mut clauses = Vec::new();
        for _ in 0..count {
            let id = ids.remove(rng.below(ids.len()));
            let obligor = self.party(rng);
            let mut beneficiary = self.party(rng);
            while beneficiary == obligor {
                beneficiary = self.party(rng);
            }
            let (deadline_ms, due_in_ms) = match rng.below(10) {
                0..=3 => (None, None),
                4..=6 => (None, Some(*rng.pick(&[1_000, 3_000, 20_000]))),
                _ => (Some(now + *rng.pick(&[500, 2_500, 15_000])), None),
            };
            let fulfilled_by = *rng.pick(&[
                "confirmation",
                "confirmation",
                "witness",
                "confirmation_or_witness",
            ]);
            clauses.push(MClause {
                id: id.into(),
                obligor,
                beneficiary,
                deadline_ms,
                due_in_ms,
                fulfilled_by,
            });
        }
        let mut proposed: Vec<Value> = clauses.iter().map(MClause::proposed).collect();
        let valid = match rng.below(12) {
            0 => {
                proposed.push(proposed[0].clone());
                false
            }
            1 => {
                proposed[0]["beneficiary"] = proposed[0]["obligor"].clone();
                false
            }
            2 => {
                proposed[0]["deadline_ms"] = json!(now);
                proposed[0]
                    .as_object_mut()
                    .expect("object")
                    .remove("due_in_ms");
                false
            }
            3 => {
                proposed[0]["obligor"] = json!("watcher");
                false
            }
            _ => true,
        };
        let proposal = json!({"title": "Random terms", "text": "", "clauses": proposed});
        (proposal, valid.then_some(clauses))
    }

    fn random_action(&self, rng: &mut Rng, now: i64) -> Action {
        let clause_id = |rng: &mut Rng| json!(*rng.pick(&["a", "b", "c", "d", "zz"]));
        // Mostly what moves the contract on: proposals and acceptances before the agreement,
        // confirmations and statements after it; every kind of action now and then.
        let roll = match (self.phase, rng.below(10)) {
            (Phase::Negotiating, 0..=6) if self.pending.is_none() => rng.below(3),
            (Phase::Negotiating, 0..=6) => 3 + rng.below(4),
            (Phase::Agreed, 0..=6) => 7 + rng.below(9),
            _ => rng.below(20),
        };
        match roll {
            0..=2 => {
                let (proposal, clauses) = self.random_proposal(rng, now);
                Action::Propose(proposal, clauses)
            }
            3..=6 => {
                let pending = self.pending.as_ref().map(|p| p.hash.clone());
                let hash = match (rng.below(10), pending) {
                    (0..=5, Some(hash)) => json!(hash),
                    (6, Some(hash)) => json!(hash[7..].to_owned()),
                    (7, _) if !self.old_hashes.is_empty() => {
                        json!(rng.pick(&self.old_hashes).clone())
                    }
                    (8, _) => json!(7),
                    _ => json!(format!("sha256:{:064x}", rng.next_u64())),
                };
                Action::Accept(hash)
            }
            7..=10 => Action::Confirm(clause_id(rng)),
            11..=13 => {
                let kind = if rng.chance(40) { "dispute" } else { "claim" };
                let value = if rng.chance(90) {
                    json!({"clause": clause_id(rng), "text": format!("{kind} {}", rng.below(100))})
                } else {
                    json!({"clause": clause_id(rng), "text": ""})
                };
                Action::Statement(kind, value)
            }
            14 if rng.chance(75) => {
                let url = rng.chance(20).then(|| "https://other.example/x".to_owned());
                let id = if !self.clauses.is_empty() && rng.chance(85) {
                    json!(rng.pick(&self.clauses).clause.id)
                } else {
                    clause_id(rng)
                };
                Action::Evidence(id, url)
            }
            14 => Action::ForgedEvidence(json!({
                "clause": clause_id(rng), "url": "https://witness.example/a",
                "attestation": {"status": 200, "body": {"text": "done"}, "seq": 1},
            })),
            15 => Action::Double,
            _ => Action::Chat,
        }
    }

    fn index(&self, id: &Value) -> Option<usize> {
        self.clauses
            .iter()
            .position(|o| id.as_str() == Some(o.clause.id.as_str()))
    }

    fn expected_terms(&self, clauses: &[MClause], channel: &str) -> Value {
        json!({
            "scheme": "mcp-multiplayer/contract-terms/v1", "channel_id": channel, "judge": BOT,
            "parties": self.parties, "title": "Random terms", "text": "",
            "clauses": clauses.iter().map(MClause::canonical).collect::<Vec<_>>(),
        })
    }

    /// Checks a ruling post against the model and the rules every ruling keeps, and records it.
    #[track_caller]
    fn check_ruling(
        &mut self,
        post: &BotPost,
        i: usize,
        outcome: &'static str,
        code: &'static str,
        more: &[i64],
        now: i64,
    ) {
        assert_eq!(post.to, None);
        let r = data(post);
        assert_eq!(
            self.phase,
            Phase::Agreed,
            "no ruling outside an agreed contract"
        );
        let open = &self.clauses[i];
        assert!(
            open.ruled.is_none(),
            "clause {} ruled twice",
            open.clause.id
        );
        assert_eq!(r["type"], "ruling");
        assert_eq!(r["clause"], open.clause.id.as_str());
        assert_eq!(r["outcome"], outcome);
        assert_eq!(r["rule"]["code"], code);
        assert_eq!(r["at"], now);
        assert_eq!(r["due"], json!(open.due));
        assert_eq!(r["cites"], cites(&self.cites, more));
        for seq in r["cites"].as_array().expect("cites") {
            let seq = seq.as_i64().expect("a seq");
            assert!(
                self.seqs.contains(&seq),
                "ruling cites {seq}, no message of the channel"
            );
        }
        match outcome {
            "breached" => assert!(
                open.due.is_some_and(|due| now >= due),
                "breached before its deadline"
            ),
            // A witness shows fulfilment at its fetch time, checked where it is ruled.
            "fulfilled" if code == "WITNESS_SHOWED" => {}
            "fulfilled" | "disputed" => {
                assert!(
                    open.due.is_none_or(|due| now < due),
                    "{outcome} at or after the deadline"
                );
            }
            _ => unreachable!(),
        }
        seen(outcome);
        self.clauses[i].ruled = Some(Ruled { outcome, code });
        let mut stored = r.clone();
        stored.as_object_mut().expect("object").remove("type");
        self.rulings.push(stored);
    }

    /// After a ruling: the record and the end when every clause is ruled.
    #[track_caller]
    fn check_finish(&mut self, table: &Table, rest: &[BotPost]) {
        if self.clauses.iter().any(|o| o.ruled.is_none()) {
            assert!(rest.is_empty(), "{rest:#?}");
            assert!(table.ended.is_none());
            return;
        }
        let record = only(rest, "record");
        assert_eq!(record["parts"], 1);
        assert_eq!(record["rulings"], json!(self.rulings));
        let count = |o: &str| self.rulings.iter().filter(|r| r["outcome"] == o).count();
        assert_eq!(
            record["summary"],
            json!({"fulfilled": count("fulfilled"), "breached": count("breached"), "disputed": count("disputed")})
        );
        assert_eq!(
            record["entries"].as_array().map(Vec::len),
            Some(self.statements + self.evidence + self.attestations.len())
        );
        assert!(table.ended.is_some(), "the run ends with the record");
        seen("record");
        self.phase = Phase::Over;
    }

    /// The judge's timers are exactly the open clauses' deadlines.
    #[track_caller]
    fn check_timers(&self, table: &Table) {
        if self.phase == Phase::Over {
            return;
        }
        let expected: std::collections::BTreeMap<String, i64> = self
            .clauses
            .iter()
            .filter(|o| o.ruled.is_none())
            .filter_map(|o| {
                o.due.map(|due| {
                    (
                        format!("clause:{}", o.clause.id),
                        o.hold_until.unwrap_or(due),
                    )
                })
            })
            .collect();
        assert_eq!(table.timers, expected);
    }

    /// The expected outcome of `action` by `sender` at `seq`, checked against the event.
    #[track_caller]
    fn message(
        &mut self,
        table: &Table,
        step: &crate::table::Step,
        sender: &str,
        action: &Action,
        seq: i64,
        before: &Option<Value>,
    ) {
        let posts = &step.posts;
        let now = table.now;
        let refuse = |code: &str| {
            violation(posts, sender, code);
            assert_eq!(step.reaction.state, None, "a violation changes nothing");
            assert!(step.reaction.fetches.is_empty());
            assert_eq!(&table.context.state, before);
            assert!(step.reaction.timers.is_empty() && step.reaction.end.is_none());
        };
        if matches!(action, Action::Chat) {
            assert!(posts.is_empty() && step.reaction.state.is_none());
            return;
        }
        self.seqs.insert(seq);
        if self.phase == Phase::Over {
            return refuse("GAME_OVER");
        }
        if !self.parties.iter().any(|p| p == sender) {
            return refuse("NOT_A_PARTY");
        }
        if self.phase == Phase::Waiting {
            return refuse("NOT_STARTED");
        }
        let agreed = self.phase == Phase::Agreed;
        match action {
            Action::Chat => unreachable!(),
            Action::Double => refuse("BAD_REQUEST"),
            Action::Propose(_, clauses) => {
                if agreed {
                    return refuse("ALREADY_AGREED");
                }
                let Some(clauses) = clauses else {
                    return refuse("BAD_TERMS");
                };
                let proposal = only(posts, "proposal");
                let terms = self.expected_terms(clauses, table.context.channel_id.as_str());
                assert_eq!(proposal["terms"], terms);
                let hash = recomputed_hash(&terms);
                assert_eq!(proposal["terms_hash"], hash.as_str());
                self.proposals += 1;
                assert_eq!(proposal["n"], self.proposals);
                assert_eq!(proposal["seq"], seq);
                match self.pending.take() {
                    Some(old) => {
                        let voided: Vec<&String> = old.accepted.iter().map(|(s, _)| s).collect();
                        assert_eq!(
                            proposal["voided"],
                            json!({"n": old.n, "terms_hash": old.hash, "accepted": voided})
                        );
                        if old.hash != hash {
                            self.old_hashes.push(old.hash);
                        }
                        seen("voided");
                    }
                    None => assert_eq!(proposal["voided"], Value::Null),
                }
                self.pending = Some(Pending {
                    n: self.proposals,
                    hash,
                    clauses: clauses.clone(),
                    accepted: Vec::new(),
                });
            }
            Action::Accept(hash) => {
                if agreed {
                    return refuse("ALREADY_AGREED");
                }
                let Some(pending) = self.pending.as_mut() else {
                    return refuse("BAD_HASH");
                };
                let given = hash.as_str().map(|h| {
                    if h.len() == 64 {
                        format!("sha256:{h}")
                    } else {
                        h.to_owned()
                    }
                });
                if given.as_deref() != Some(pending.hash.as_str()) {
                    refuse("BAD_HASH");
                    assert_eq!(data(&posts[0])["pending_hash"], pending.hash.as_str());
                    return;
                }
                if pending.accepted.iter().any(|(s, _)| s == sender) {
                    return refuse("ALREADY_ACCEPTED");
                }
                let lapsed: Vec<&str> = pending
                    .clauses
                    .iter()
                    .filter(|c| c.deadline_ms.is_some_and(|d| d <= now))
                    .map(|c| c.id.as_str())
                    .collect();
                if !lapsed.is_empty() {
                    let post = only(posts, "lapsed");
                    assert_eq!(post["clauses"], json!(lapsed));
                    let old = self.pending.take().expect("pending");
                    self.old_hashes.push(old.hash);
                    seen("lapsed");
                    return;
                }
                pending.accepted.push((sender.to_owned(), seq));
                let waiting: Vec<&String> = self
                    .parties
                    .iter()
                    .filter(|p| !pending.accepted.iter().any(|(s, _)| s == *p))
                    .collect();
                let accepted = data(&posts[0]);
                assert_eq!(accepted["type"], "accepted");
                assert_eq!(accepted["waiting_for"], json!(waiting));
                if !waiting.is_empty() {
                    assert_eq!(posts.len(), 1);
                    return;
                }
                let pending = self.pending.take().expect("pending");
                assert_eq!(types(posts), ["accepted", "agreed"]);
                let agreed = data(&posts[1]);
                let by_party: Vec<i64> = self
                    .parties
                    .iter()
                    .map(|p| {
                        pending
                            .accepted
                            .iter()
                            .find(|(s, _)| s == p)
                            .expect("accepted")
                            .1
                    })
                    .collect();
                let proposal_seq = agreed["proposal_seq"].as_i64().expect("a seq");
                assert!(self.seqs.contains(&proposal_seq));
                let mut cites = vec![proposal_seq];
                cites.extend(&by_party);
                cites.sort_unstable();
                cites.dedup();
                assert_eq!(agreed["cites"], json!(cites));
                self.cites = cites;
                self.clauses = pending
                    .clauses
                    .iter()
                    .map(|c| Open {
                        clause: c.clone(),
                        due: c.deadline_ms.or(c.due_in_ms.map(|d| now + d)),
                        ruled: None,
                        hold_until: None,
                    })
                    .collect();
                let deadlines: Vec<Value> = self
                    .clauses
                    .iter()
                    .filter_map(|o| o.due.map(|due| json!({"clause": o.clause.id, "due": due, "tag": format!("clause:{}", o.clause.id)})))
                    .collect();
                assert_eq!(agreed["deadlines"], json!(deadlines));
                self.phase = Phase::Agreed;
                seen("agreed");
            }
            Action::Confirm(id) => {
                if !agreed {
                    return refuse("NOT_AGREED");
                }
                let Some(i) = self.index(id) else {
                    return refuse("UNKNOWN_CLAUSE");
                };
                let open = &self.clauses[i];
                if open.clause.beneficiary != sender {
                    return refuse("NOT_BENEFICIARY");
                }
                if open.clause.fulfilled_by == "witness" {
                    return refuse("WITNESS_ONLY");
                }
                if open.ruled.is_some() || open.due.is_some_and(|due| now >= due) {
                    return refuse("CLAUSE_CLOSED");
                }
                let due = open.due;
                self.check_ruling(
                    &posts[0],
                    i,
                    "fulfilled",
                    "CONFIRMED_BY_BENEFICIARY",
                    &[seq],
                    now,
                );
                assert_eq!(
                    data(&posts[0])["confirmation"],
                    json!({"by": sender, "seq": seq})
                );
                let cancels = if due.is_some() {
                    vec![TimerRequest::Cancel {
                        tag: format!("clause:{}", id.as_str().expect("id")),
                    }]
                } else {
                    vec![]
                };
                assert_eq!(step.reaction.timers, cancels);
                self.check_finish(table, &posts[1..]);
            }
            Action::Statement(kind, value) => {
                if !agreed {
                    return refuse("NOT_AGREED");
                }
                if value["text"] == "" {
                    return refuse("BAD_REQUEST");
                }
                let Some(i) = self.index(&value["clause"]) else {
                    return refuse("UNKNOWN_CLAUSE");
                };
                if self.statements >= 24 {
                    return refuse("RECORD_FULL");
                }
                self.statements += 1;
                let open = &self.clauses[i];
                let late = open.due.is_some_and(|due| now >= due);
                let id = open.clause.id.clone();
                if *kind == "dispute" && open.ruled.is_none() && !late {
                    let mut more: Vec<i64> = self
                        .claims
                        .iter()
                        .filter(|(c, _)| *c == id)
                        .map(|(_, s)| *s)
                        .collect();
                    more.push(seq);
                    self.check_ruling(&posts[0], i, "disputed", "DISPUTED", &more, now);
                    assert_eq!(
                        data(&posts[0])["dispute"],
                        json!({"by": sender, "seq": seq, "text": value["text"]})
                    );
                    self.check_finish(table, &posts[1..]);
                    return;
                }
                if *kind == "claim" {
                    self.claims.push((id.clone(), seq));
                }
                let recorded = only(posts, "recorded");
                assert_eq!(recorded["kind"], *kind);
                assert_eq!(recorded["late"], late);
                let ruling = open
                    .ruled
                    .as_ref()
                    .map(|r| json!({"outcome": r.outcome, "code": r.code}));
                assert_eq!(recorded["ruling"], json!(ruling));
                if late || ruling.is_some() {
                    seen("late statement");
                }
                assert!(step.reaction.timers.is_empty());
            }
            Action::ForgedEvidence(_) => {
                if !agreed {
                    return refuse("NOT_AGREED");
                }
                refuse("BAD_EVIDENCE");
            }
            Action::Evidence(id, url) => {
                if !agreed {
                    return refuse("NOT_AGREED");
                }
                let Some(i) = self.index(id) else {
                    return refuse("UNKNOWN_CLAUSE");
                };
                let open = &self.clauses[i];
                let witness = (open.clause.fulfilled_by != "confirmation")
                    .then(|| format!("https://witness.example/{}", open.clause.id));
                let Some(url) = url.clone().or(witness.clone()) else {
                    return refuse("BAD_EVIDENCE");
                };
                if open.ruled.is_some() || open.due.is_some_and(|due| now >= due) {
                    return refuse("CLAUSE_CLOSED");
                }
                if self.evidence >= 12 || self.fetches.len() >= 8 {
                    return refuse("BAD_EVIDENCE");
                }
                let tag = format!("evidence:{seq}");
                let qualifying = witness.as_deref() == Some(url.as_str());
                let requested = only(posts, "evidence_requested");
                assert_eq!(requested["qualifying"], qualifying);
                assert_eq!(requested["url"], url.as_str());
                assert_eq!(
                    step.reaction.fetches,
                    vec![bots::FetchRequest {
                        url: url.clone(),
                        tag: tag.clone()
                    }]
                );
                self.evidence += 1;
                self.fetches.push(MFetch {
                    tag,
                    clause: i,
                    url,
                    seq,
                    at: now,
                    qualifying,
                });
            }
        }
    }

    /// The witness fetches of clause `i` still pending.
    fn pending_witness(&self, i: usize) -> Vec<i64> {
        self.fetches
            .iter()
            .filter(|f| f.clause == i && f.qualifying)
            .map(|f| f.seq)
            .collect()
    }

    /// The witness attestations of clause `i` that did not show it: a deadline ruling cites them.
    fn failed_witness(&self, i: usize) -> Vec<i64> {
        self.attestations
            .iter()
            .filter(|a| a.clause == i && a.qualifying && a.matched == Some(false))
            .map(|a| a.seq)
            .collect()
    }

    /// The result of pending fetch `k` came back, recorded at `seq` and fetched at `fetched_at`:
    /// `shows` says whether the page answered 200 with the witness text.
    #[track_caller]
    fn fetch(
        &mut self,
        table: &Table,
        step: &crate::table::Step,
        k: usize,
        seq: i64,
        fetched_at: i64,
        shows: bool,
    ) {
        let request = self.fetches.remove(k);
        let now = table.now;
        self.seqs.insert(seq);
        let i = request.clause;
        let open = &self.clauses[i];
        let matched = if open.clause.fulfilled_by == "confirmation" {
            None
        } else {
            Some(request.qualifying && shows && open.due.is_none_or(|due| fetched_at <= due))
        };
        let attestation = data(&step.posts[0]);
        assert_eq!(attestation["type"], "attestation");
        assert_eq!(attestation["seq"], seq);
        assert_eq!(attestation["requested_by"], request.seq);
        assert_eq!(attestation["matched"], json!(matched), "{attestation}");
        self.attestations.push(MAttestation {
            clause: i,
            seq,
            qualifying: request.qualifying,
            matched,
        });
        let rest = &step.posts[1..];
        let cancel = vec![TimerRequest::Cancel {
            tag: format!("clause:{}", open.clause.id),
        }];
        let due = open.due;
        let held = open.hold_until;
        if open.ruled.is_some() {
            assert!(rest.is_empty());
        } else if matched == Some(true) {
            self.check_ruling(
                &rest[0],
                i,
                "fulfilled",
                "WITNESS_SHOWED",
                &[request.seq, seq],
                now,
            );
            assert!(
                due.is_none_or(|due| fetched_at <= due),
                "a witness fetched after the deadline"
            );
            seen("witness");
            let expected = if due.is_some() { cancel } else { vec![] };
            assert_eq!(step.reaction.timers, expected);
            self.check_finish(table, &rest[1..]);
        } else if held.is_some() && self.pending_witness(i).is_empty() {
            let failed = self.failed_witness(i);
            self.check_ruling(&rest[0], i, "breached", "DEADLINE_PASSED", &failed, now);
            assert_eq!(data(&rest[0])["timer"]["held_until"], json!(held));
            assert_eq!(step.reaction.timers, cancel);
            self.check_finish(table, &rest[1..]);
        } else {
            assert!(rest.is_empty(), "{rest:#?}");
            assert!(step.reaction.timers.is_empty());
        }
    }

    /// The clause timer `tag` fired at `now`.
    #[track_caller]
    fn timer(&mut self, table: &Table, step: &crate::table::Step, tag: &str) {
        let now = table.now;
        let i = self
            .clauses
            .iter()
            .position(|o| format!("clause:{}", o.clause.id) == tag)
            .expect("only clause timers are set");
        let open = &self.clauses[i];
        assert!(
            open.ruled.is_none(),
            "the timer of a ruled clause was cancelled"
        );
        let due = open.due.expect("a deadline");
        assert!(now >= due, "timers fire at their due time");
        let held = open.hold_until;
        let waiting = self.pending_witness(i);
        if held.is_none() && !waiting.is_empty() {
            let post = only(&step.posts, "held");
            assert_eq!(post["waiting_for"], json!(waiting));
            assert_eq!(post["until"], now + 60_000);
            assert_eq!(
                step.reaction.timers,
                vec![TimerRequest::Set {
                    tag: tag.into(),
                    ms: 60_000
                }]
            );
            self.clauses[i].hold_until = Some(now + 60_000);
            seen("held");
            return;
        }
        let failed = self.failed_witness(i);
        self.check_ruling(
            &step.posts[0],
            i,
            "breached",
            "DEADLINE_PASSED",
            &failed,
            now,
        );
        assert_eq!(data(&step.posts[0])["timer"]["due"], due);
        assert_eq!(data(&step.posts[0])["timer"]["held_until"], json!(held));
        assert!(step.reaction.timers.is_empty());
        self.check_finish(table, &step.posts[1..]);
    }
}

fn random_contract(seed: u64, limits: Limits) -> Table {
    let mut rng = Rng::new(seed);
    let n_parties = if rng.chance(25) { 3 } else { 2 };
    let seated: Vec<&str> = if rng.chance(70) {
        ["alice", "bob", "carol"][..n_parties].to_vec()
    } else {
        vec!["alice"]
    };
    let mut table = Table::new("judge", json!({"parties": n_parties}), &seated, limits);
    let mut model = Model {
        phase: Phase::Waiting,
        n_parties,
        parties: seated.iter().map(|s| (*s).to_owned()).collect(),
        proposals: 0,
        pending: None,
        old_hashes: Vec::new(),
        cites: Vec::new(),
        clauses: Vec::new(),
        statements: 0,
        claims: Vec::new(),
        seqs: std::collections::BTreeSet::new(),
        rulings: Vec::new(),
        fetches: Vec::new(),
        evidence: 0,
        attestations: Vec::new(),
    };
    let posts = table.step(Event::Init).posts;
    if model.parties.len() == n_parties {
        assert_eq!(types(&posts), ["rules", "start"]);
        model.phase = Phase::Negotiating;
    } else {
        assert_eq!(types(&posts), ["rules"]);
    }
    let mut steps = 0;
    while table.ended.is_none() && steps < 40 {
        steps += 1;
        let seated: Vec<String> = table
            .context
            .players
            .iter()
            .map(|p| p.slot.to_string())
            .collect();
        match rng.below(20) {
            0 | 1 => {
                // Time passes and every timer due fires, in order.
                let until = table.now + *rng.pick(&[200, 1_000, 3_000, 20_000]);
                while let Some((tag, _)) = table
                    .timers
                    .iter()
                    .filter(|(_, due)| **due <= until)
                    .min_by_key(|(_, due)| **due)
                    .map(|(t, d)| (t.clone(), *d))
                {
                    let step = table.fire(&tag);
                    model.timer(&table, &step, &tag);
                    model.check_timers(&table);
                    if table.ended.is_some() {
                        break;
                    }
                }
                table.now = table.now.max(until);
            }
            2 => {
                // Time passes but the timers are late: messages come first.
                table.now += *rng.pick(&[500, 2_000]);
            }
            5 | 6 if !model.fetches.is_empty() => {
                // A fetch comes back: the page shows the witness or not, fetched between the
                // request and now (so perhaps after the deadline, when the timer is late).
                let k = rng.below(model.fetches.len());
                let request = &model.fetches[k];
                let fetched_at = request.at
                    + rng.below(usize::try_from(table.now - request.at).expect("time runs on") + 1)
                        as i64;
                let shows = rng.chance(50);
                let (status, text, error) = match (shows, rng.below(3)) {
                    (true, _) => (Some(200), Some("all done"), None),
                    (false, 0) => (Some(404), Some("done"), None),
                    (false, 1) => (Some(200), Some("not yet"), None),
                    (false, _) => (
                        None,
                        None,
                        Some(domain::attestation::FetchFailureCode::Timeout),
                    ),
                };
                let seq = next_seq(&table);
                let result = fetched(
                    seq,
                    &request.tag,
                    request.seq,
                    &request.url,
                    fetched_at,
                    status,
                    text,
                    error,
                );
                let step = deliver(&mut table, result);
                model.fetch(&table, &step, k, seq, fetched_at, shows);
                model.check_timers(&table);
            }
            3 => {
                let tag = *rng.pick(&["clause:zz", "turn"]);
                let step = table.step(Event::Timer { tag: tag.into() });
                assert!(step.posts.is_empty() && step.reaction.state.is_none());
            }
            4 => {
                let seat = *rng.pick(&SEATS);
                if seated.iter().any(|s| s == seat) {
                    let posts = table.leave(seat);
                    assert!(posts.is_empty());
                    if model.phase == Phase::Waiting {
                        model.parties.retain(|p| p != seat);
                    }
                } else {
                    let posts = table.join(seat);
                    if model.phase == Phase::Waiting
                        && seat != "watcher"
                        && !model.parties.iter().any(|p| p == seat)
                    {
                        model.parties.push(seat.to_owned());
                        if model.parties.len() == model.n_parties {
                            let start = only(&posts, "start");
                            assert_eq!(start["parties"], json!(model.parties));
                            model.phase = Phase::Negotiating;
                            continue;
                        }
                    }
                    assert!(posts.is_empty());
                }
            }
            _ => {
                let sender = if rng.chance(85) {
                    model.party(&mut rng)
                } else {
                    (*rng.pick(&SEATS)).to_owned()
                };
                let action = model.random_action(&mut rng, table.now);
                let body = match &action {
                    Action::Propose(p, _) => json!({"propose": p}),
                    Action::Accept(h) => json!({"accept": h}),
                    Action::Confirm(id) => json!({"confirm": id}),
                    Action::Statement(kind, v) => json!({*kind: v}),
                    Action::ForgedEvidence(v) => json!({"evidence": v}),
                    Action::Evidence(id, url) => match url {
                        Some(url) => json!({"evidence": {"clause": id, "url": url}}),
                        None => json!({"evidence": {"clause": id}}),
                    },
                    Action::Double => {
                        json!({"confirm": "a", "dispute": {"clause": "a", "text": "x"}})
                    }
                    Action::Chat => {
                        json!({"note": "chat", "type": "ruling", "outcome": "fulfilled"})
                    }
                };
                let to = if rng.chance(20) { Some(BOT) } else { None };
                let seq = next_seq(&table);
                let before = table.context.state.clone();
                let step = table.post(&sender, data_body(body), to);
                model.message(&table, &step, &sender, &action, seq, &before);
                model.check_timers(&table);
            }
        }
    }
    assert_eq!(table.ended.is_some(), model.phase == Phase::Over);
    table
}

#[test]
fn random_sequences_never_break_a_rule() {
    let cases = game_cases(2_000);
    let started = std::time::Instant::now();
    let summary = crate::table::play_many(cases, 0x1d9e_0000, random_contract);
    let seen: Vec<(&str, usize)> = SEEN_NAMES
        .iter()
        .zip(&SEEN)
        .map(|(name, count)| (*name, count.load(std::sync::atomic::Ordering::Relaxed)))
        .collect();
    eprintln!(
        "judge: {} sequences, {} events in {:?}, slowest event (wall clock) {:?}, seen {:?}",
        summary.games,
        summary.events,
        started.elapsed(),
        summary.slowest,
        seen
    );
    assert_eq!(summary.games, cases);
    if cases >= 500 {
        for (name, count) in seen {
            assert!(count > 0, "no sequence reached {name}");
        }
    }
}
