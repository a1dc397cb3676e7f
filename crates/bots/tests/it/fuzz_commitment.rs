//! Fuzz target for the encodings under every hash users check: the bot commitment
//! (`bots::commitment`, length-prefixed fields) and the chain's message digest and link
//! (`domain::chain`, RFC 8785 JSON).
//!
//! - Injective across field splits: the same characters cut into fields at other places never
//!   give the same commitment or digest.
//! - Cross-checked against `tests/fuzz/commitment_oracle.py`, an implementation in Python's
//!   standard library written from the docs: random cases go through both, answers must match.
//!
//! `FUZZ_CASES=1000000 cargo test --release -p bots --test it fuzz_commitment` for a long run.

#[path = "../../../../tests/fuzz/config.rs"]
mod config;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use domain::chain::{canonical_message, message_digest};
use domain::{Body, ChainHash, ChannelId, Message, MessageKind, Seq, SlotLabel, Timestamp};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};

/// Characters of every UTF-8 width and UTF-16 surrogate pairs (which sort differently in
/// RFC 8785's UTF-16 key order than by code point), and characters JSON escapes.
const PALETTE: &[char] = &[
    'a',
    'b',
    'é',
    '\u{7FF}',
    '€',
    '\u{FFFF}',
    '\u{E000}',
    '😀',
    '\u{10000}',
    '"',
    '\\',
    '\n',
    '\u{1}',
    '\u{7F}',
    '\u{2028}',
    ':',
    '\0',
];

fn text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PALETTE), 0..max)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Cut `chars` into three strings and a salt (the UTF-8 of the rest) at `cuts`.
fn split(chars: &[char], cuts: [usize; 3]) -> (String, String, String, Vec<u8>) {
    let mut cuts = cuts.map(|cut| cut % (chars.len() + 1));
    cuts.sort_unstable();
    let [i, j, k] = cuts;
    let part = |range: &[char]| range.iter().collect::<String>();
    (
        part(&chars[..i]),
        part(&chars[i..j]),
        part(&chars[j..k]),
        part(&chars[k..]).into_bytes(),
    )
}

fn commit(fields: &(String, String, String, Vec<u8>)) -> String {
    bots::commitment(&fields.0, &fields.1, &fields.2, &fields.3)
}

fn label() -> impl Strategy<Value = SlotLabel> {
    "[a-z0-9][a-z0-9_-]{0,31}".prop_map(|raw| SlotLabel::parse(&raw).expect("a valid label"))
}

fn channel_id() -> impl Strategy<Value = ChannelId> {
    "ch_[0-9a-f]{24}".prop_map(ChannelId::from_trusted)
}

/// Numbers a message's data may hold: integers within ±(2^53 − 1), and any finite double.
fn number() -> impl Strategy<Value = Value> {
    const EXACT: i64 = (1 << 53) - 1;
    prop_oneof![
        (-EXACT..=EXACT).prop_map(Value::from),
        prop_oneof![Just(EXACT), Just(-EXACT), Just(0)].prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        // Where ECMAScript switches between plain and exponent notation.
        prop_oneof![
            Just(1e21),
            Just(1e-7),
            Just(1e20),
            Just(1e-6),
            Just(123e-20),
            Just(5e-324)
        ]
        .prop_map(Value::from),
    ]
}

fn data() -> impl Strategy<Value = Map<String, Value>> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        number(),
        text(6).prop_map(Value::String),
    ];
    let value = leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(text(3), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    });
    proptest::collection::btree_map(text(3), value, 1..5).prop_map(|map| map.into_iter().collect())
}

fn message() -> impl Strategy<Value = Message> {
    let kind = prop_oneof![
        Just(MessageKind::User),
        Just(MessageKind::Bot),
        Just(MessageKind::System)
    ];
    let private = proptest::option::of((label(), "[0-9a-f]{32}"));
    (
        (
            1i64..(1 << 53),
            kind,
            proptest::option::of(label()),
            text(8),
        ),
        (
            private,
            0i64..(1 << 53),
            proptest::option::of(text(12)),
            proptest::option::of(data()),
        ),
    )
        .prop_map(
            |((seq, kind, sender, sender_name), (private, at, text, data))| {
                let (to, nonce) = private.unzip();
                Message {
                    seq: Seq(seq),
                    kind,
                    sender,
                    sender_name,
                    body: Body { text, data },
                    to,
                    nonce,
                    at: Timestamp(at),
                    hash: ChainHash::genesis(),
                }
            },
        )
}

/// The message as docs/transcript.md shows it in an export, without `hash`: written here
/// field by field, so the oracle does not take its field list from the encoder it checks.
fn export_shape(message: &Message) -> Value {
    let mut shown = json!({
        "seq": message.seq.0,
        "kind": message.kind.as_str(),
        "sender_name": message.sender_name,
        "at": message.at.0,
    });
    let optional = [
        (
            "sender",
            message.sender.as_ref().map(|s| Value::from(s.as_str())),
        ),
        ("to", message.to.as_ref().map(|s| Value::from(s.as_str()))),
        ("nonce", message.nonce.clone().map(Value::from)),
        ("text", message.body.text.clone().map(Value::from)),
        ("data", message.body.data.clone().map(Value::Object)),
    ];
    for (field, value) in optional {
        if let Some(value) = value {
            shown[field] = value;
        }
    }
    shown
}

proptest! {
    #![proptest_config(config::fuzz_config(2_000))]

    #[test]
    fn fuzz_commitment_is_injective_across_field_splits(
        chars in proptest::collection::vec(proptest::sample::select(PALETTE), 0..24),
        cuts in any::<[usize; 3]>(),
        other_cuts in any::<[usize; 3]>(),
    ) {
        let (one, two) = (split(&chars, cuts), split(&chars, other_cuts));
        // Equal cuts are the same fields: nothing to compare (not a rejection, which a
        // million-case run would exhaust).
        if one == two {
            return Ok(());
        }
        prop_assert_ne!(commit(&one), commit(&two), "{:?} and {:?}", one, two);
    }

    #[test]
    fn fuzz_commitment_digest_is_injective_across_field_splits(
        channel in channel_id(),
        message in message(),
        chars in proptest::collection::vec(proptest::sample::select(PALETTE), 0..16),
        cut in any::<usize>(),
        other_cut in any::<usize>(),
    ) {
        // The same characters shared out between the sender's name and the text.
        let shared = |cut: usize| {
            let cut = cut % (chars.len() + 1);
            let mut message = message.clone();
            message.sender_name = chars[..cut].iter().collect();
            message.body.text = Some(chars[cut..].iter().collect());
            message
        };
        let (one, two) = (shared(cut), shared(other_cut));
        if one == two {
            return Ok(());
        }
        prop_assert_ne!(message_digest(&channel, &one), message_digest(&channel, &two));
    }
}

/// One case for the oracle and the answer the Rust encoders give.
fn case(runner: &mut TestRunner) -> (Value, Value) {
    let commit_case = (
        channel_id(),
        label(),
        text(24),
        proptest::collection::vec(any::<u8>(), 0..40),
    );
    let link_case = (channel_id(), message(), any::<[u8; 32]>());
    let pick = any::<bool>().new_tree(runner).expect("a choice").current();
    if pick {
        let (channel, slot, value, salt) = commit_case.new_tree(runner).expect("a case").current();
        let case = json!({"commit": {"channel": channel.as_str(), "slot": slot.as_str(), "value": value, "salt": hex::encode(&salt)}});
        let answer =
            json!({"commitment": bots::commitment(channel.as_str(), slot.as_str(), &value, &salt)});
        (case, answer)
    } else {
        let (channel, message, prev) = link_case.new_tree(runner).expect("a case").current();
        let prev = ChainHash::parse(&format!("sha256:{}", hex::encode(prev))).expect("a hash");
        let case = json!({"link": {"channel": channel.as_str(), "prev": prev.as_str(), "message": export_shape(&message)}});
        let answer = json!({
            "canonical": canonical_message(&channel, &message),
            "digest": message_digest(&channel, &message).as_str(),
            "hash": prev.link(&channel, &message).as_str(),
        });
        (case, answer)
    }
}

/// python3, or `None` (with a loud line) when it is absent outside CI; in CI its absence fails.
fn python() -> Option<&'static str> {
    let found = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if found {
        return Some("python3");
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "python3 is needed for the commitment cross-check in CI"
    );
    eprintln!("\n*** SKIPPED the Python commitment oracle: no python3 on PATH ***\n");
    None
}

/// The oracle's answer to each case, in order; `None` when python3 is absent outside CI.
fn ask_oracle(cases: Vec<Value>) -> Option<Vec<Value>> {
    let python = python()?;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fuzz/commitment_oracle.py");
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 starts");
    let mut stdin = child.stdin.take().expect("stdin");
    // Written from another thread: the oracle answers while it reads, and a full pipe each way
    // would stall both.
    let writer = std::thread::spawn(move || {
        let mut input = std::io::BufWriter::new(&mut stdin);
        for case in &cases {
            writeln!(input, "{case}").expect("write a case");
        }
        input.flush().expect("flush");
    });
    let output = child.wait_with_output().expect("the oracle runs");
    writer.join().expect("writer");
    assert!(
        output.status.success(),
        "the oracle failed: {}",
        output.status
    );
    let answers = std::str::from_utf8(&output.stdout).expect("UTF-8").lines();
    Some(
        answers
            .map(|line| serde_json::from_str(line).expect("an answer"))
            .collect(),
    )
}

#[test]
fn fuzz_commitment_matches_the_python_oracle() {
    let config = config::fuzz_config(2_000);
    let mut runner = TestRunner::new(config.clone());
    let (cases, answers): (Vec<Value>, Vec<Value>) =
        (0..config.cases).map(|_| case(&mut runner)).unzip();
    let Some(oracle) = ask_oracle(cases.clone()) else {
        return;
    };
    assert_eq!(oracle.len(), cases.len(), "one answer per case");
    for ((case, rust), python) in cases.iter().zip(&answers).zip(&oracle) {
        assert_eq!(rust, python, "Rust and the Python oracle differ on {case}");
    }
}

#[test]
fn the_oracle_knows_the_pinned_answers() {
    // The known answers of crates/bots/src/commitment.rs and crates/domain/src/chain.rs, so a
    // broken oracle cannot agree with a broken encoder by accident.
    let message = json!({
        "seq": 1, "kind": "user", "sender": "alice", "sender_name": "Alice",
        "at": 1_700_000_000_000u64, "text": "hi", "data": {"b": 1.0, "a": [1, "é"]},
    });
    let cases = vec![
        json!({"commit": {"channel": "ch_000000000000000000000000", "slot": "referee", "value": "42", "salt": "000102030405060708090a0b0c0d0e0f"}}),
        json!({"link": {"channel": "ch_000000000000000000000001", "prev": ChainHash::genesis().as_str(), "message": message}}),
    ];
    let Some(oracle) = ask_oracle(cases) else {
        return;
    };
    assert_eq!(
        oracle[0]["commitment"],
        "sha256:7ed59369cf6b2fa4c6434550f17e6f0a5109d1c36c35a688e125e4a413dd5cd9"
    );
    assert_eq!(
        oracle[1]["digest"],
        "sha256:3fe55357d9f66bdf507a86cf895d6e25c50cd8a33e330b0cb4162478c35931dd"
    );
    assert_eq!(
        oracle[1]["hash"],
        "sha256:cb5f70e8716fa2d72a07e0d2e510cb03782ea84ebd3659e3398c48f6b8e3d9c1"
    );
}
