//! Fuzz target for a message `Body` at its caps (`domain::limits`): text and data sizes at the
//! byte cap ±, with multi-byte UTF-8 and JSON escapes straddling it; nesting at 31, 32 and 33
//! levels; integers and doubles around ±(2^53 − 1); and arbitrary JSON. Every answer is either
//! the body, unchanged, or one stable error code, and agrees with an oracle written from the
//! documented caps (bytes of UTF-8 for text, no U+0000 in it, bytes of compact JSON for data, the data object
//! itself at depth 1), not from `Body::new`.
//!
//! `FUZZ_CASES=1000000 cargo test --release -p domain --test fuzz_body` for a long run.

#[path = "../../../tests/fuzz/config.rs"]
mod config;

use domain::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH, MAX_TEXT_BYTES};
use domain::{Body, ErrorCode};
use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Characters of every UTF-8 width, and the ones JSON writes as escapes of 2 and 6 bytes.
const PALETTE: &[char] = &[
    'a',
    '~',
    'é',
    'ß',
    '€',
    '中',
    '\u{FEFF}',
    '😀',
    '\u{10FFFF}',
    '"',
    '\\',
    '\n',
    '\t',
    '\u{0}',
    '\u{1}',
    '\u{1F}',
    '\u{7F}',
];

/// Largest integer the product promises to keep exact (README: ±(2^53 − 1)).
const EXACT: u64 = (1 << 53) - 1;

fn palette_char() -> impl Strategy<Value = char> {
    proptest::sample::select(PALETTE)
}

/// `ascii` bytes of ASCII then a few characters from the palette, so the byte length lands
/// within a few bytes of `cap` with a multi-byte character on either side of it.
fn straddling(cap: usize) -> impl Strategy<Value = String> {
    (
        cap - 12..=cap,
        proptest::collection::vec(palette_char(), 0..6),
    )
        .prop_map(|(ascii, tail)| {
            let mut text = "a".repeat(ascii);
            text.extend(tail);
            text
        })
}

/// One character repeated to about `cap` bytes: 4096 four-byte characters are 16 KiB.
fn repeated_near(cap: usize) -> impl Strategy<Value = String> {
    (palette_char(), -3i64..=3).prop_map(move |(c, delta)| {
        let count = (cap / c.len_utf8()) as i64 + delta;
        std::iter::repeat_n(c, count.max(1) as usize).collect()
    })
}

fn text_near_cap() -> impl Strategy<Value = String> {
    prop_oneof![straddling(MAX_TEXT_BYTES), repeated_near(MAX_TEXT_BYTES)]
}

/// Bytes of `text` as a JSON string literal, quotes included (RFC 8259: `"` and `\` and the
/// short escapes take 2 bytes, other controls `\u00XX`, everything else its UTF-8).
fn json_string_len(text: &str) -> usize {
    2 + text
        .chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{C}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum::<usize>()
}

/// Bytes of the compact JSON of `value`, counted from the grammar (numbers as written).
fn json_len(value: &Value) -> usize {
    match value {
        Value::Null => 4,
        Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(number) => number.to_string().len(),
        Value::String(text) => json_string_len(text),
        Value::Array(items) => {
            2 + items.len().saturating_sub(1) + items.iter().map(json_len).sum::<usize>()
        }
        Value::Object(map) => object_len(map),
    }
}

fn object_len(map: &Map<String, Value>) -> usize {
    2 + map.len().saturating_sub(1)
        + map
            .iter()
            .map(|(key, value)| json_string_len(key) + 1 + json_len(value))
            .sum::<usize>()
}

/// Levels of containers, the outermost counting 1.
fn nesting(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(nesting).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether every number is one that all JSON readers hold exactly: integers within ±(2^53 − 1),
/// and doubles no larger (a double that large is a whole number nobody can tell apart).
fn numbers_exact(value: &Value) -> bool {
    match value {
        Value::Number(number) => match (number.as_u64(), number.as_i64()) {
            (Some(unsigned), _) => unsigned <= EXACT,
            (None, Some(signed)) => signed.unsigned_abs() <= EXACT,
            (None, None) => number.as_f64().is_some_and(|f| f.abs() <= EXACT as f64),
        },
        Value::Array(items) => items.iter().all(numbers_exact),
        Value::Object(map) => map.values().all(numbers_exact),
        _ => true,
    }
}

/// The documented decision, cap by cap in the order the README lists them.
fn oracle(text: &Option<String>, data: &Option<Map<String, Value>>) -> Result<(), ErrorCode> {
    let text = text.as_ref().filter(|text| !text.is_empty());
    let data = data.as_ref().filter(|data| !data.is_empty());
    if text.is_none() && data.is_none() {
        return Err(ErrorCode::InvalidArgument);
    }
    if text.is_some_and(|text| text.len() > MAX_TEXT_BYTES) {
        return Err(ErrorCode::LimitExceeded);
    }
    if text.is_some_and(|text| text.contains('\u{0}')) {
        return Err(ErrorCode::InvalidArgument);
    }
    if let Some(data) = data {
        let data = Value::Object(data.clone());
        if json_len(&data) > MAX_DATA_BYTES || nesting(&data) > MAX_DATA_DEPTH {
            return Err(ErrorCode::LimitExceeded);
        }
        if !numbers_exact(&data) {
            return Err(ErrorCode::InvalidArgument);
        }
    }
    Ok(())
}

fn check(text: Option<String>, data: Option<Map<String, Value>>) -> Result<(), TestCaseError> {
    let expected = oracle(&text, &data);
    match Body::new(text.clone(), data.clone()) {
        Ok(body) => {
            prop_assert_eq!(expected, Ok(()), "accepted a body the caps refuse");
            // Accepted means kept whole: nothing truncated or rewritten.
            prop_assert_eq!(body.text, text.filter(|t| !t.is_empty()));
            prop_assert_eq!(body.data, data.filter(|d| !d.is_empty()));
        }
        Err(error) => prop_assert_eq!(Err(error.code()), expected, "{}", error),
    }
    Ok(())
}

fn object(key: &str, value: Value) -> Map<String, Value> {
    Map::from_iter([(key.to_owned(), value)])
}

/// A key and a string value whose object encodes to within a few bytes of the data cap.
fn data_near_cap() -> impl Strategy<Value = Map<String, Value>> {
    (
        proptest::collection::vec(palette_char(), 0..4),
        straddling(MAX_DATA_BYTES - 8),
    )
        .prop_map(|(key, value)| object(&key.into_iter().collect::<String>(), Value::String(value)))
}

/// Data nested `levels` deep (the object itself is level 1), objects and arrays mixed.
fn nested(levels: usize, arrays: Vec<bool>, leaf: Value) -> Map<String, Value> {
    let mut value = leaf;
    for level in (2..=levels).rev() {
        value = if arrays.get(level).copied().unwrap_or(false) {
            Value::Array(vec![value])
        } else {
            Value::Object(object("k", value))
        };
    }
    object("d", value)
}

fn depth_near_cap() -> impl Strategy<Value = Map<String, Value>> {
    (
        prop_oneof![4 => MAX_DATA_DEPTH - 1..=MAX_DATA_DEPTH + 1, 1 => 1usize..=140],
        proptest::collection::vec(any::<bool>(), 140),
        prop_oneof![
            Just(Value::Null),
            Just(Value::from(1)),
            Just(Value::Array(vec![]))
        ],
    )
        .prop_map(|(levels, arrays, leaf)| nested(levels, arrays, leaf))
}

/// Integers and doubles at ±(2^53 − 1) and past it, the 64-bit ends, and any double.
fn boundary_number() -> impl Strategy<Value = Value> {
    let integer = prop_oneof![
        (EXACT - 2..=EXACT + 2).prop_map(Value::from),
        (EXACT - 2..=EXACT + 2).prop_map(|n| Value::from(-(n as i64))),
        Just(Value::from(u64::MAX)),
        Just(Value::from(i64::MIN)),
        any::<i64>().prop_map(Value::from),
    ];
    let double = prop_oneof![
        any::<f64>(),
        (-3.0..=3.0f64).prop_map(|d| EXACT as f64 + d),
        Just(1e300),
        Just(-0.0),
    ]
    .prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number));
    // As the wire carries them: integer literals past 64 bits arrive as doubles.
    let literal = prop_oneof![
        Just("18446744073709551616"),
        Just("-9223372036854775809"),
        Just("1e2"),
        Just("9.007199254740992e15"),
        Just("1E16"),
        Just("-0"),
    ]
    .prop_map(|raw| serde_json::from_str::<Value>(raw).expect("a JSON number"));
    prop_oneof![integer, double, literal]
}

fn numbers() -> impl Strategy<Value = Map<String, Value>> {
    (
        boundary_number(),
        1usize..6,
        proptest::collection::vec(any::<bool>(), 6),
    )
        .prop_map(|(number, levels, arrays)| nested(levels, arrays, number))
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        boundary_number(),
        proptest::collection::vec(palette_char(), 0..8)
            .prop_map(|chars| Value::String(chars.into_iter().collect())),
    ];
    leaf.prop_recursive(40, 256, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z\u{e9}\"]{0,3}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn any_data() -> impl Strategy<Value = Option<Map<String, Value>>> {
    proptest::option::of(prop_oneof![
        data_near_cap(),
        depth_near_cap(),
        numbers(),
        any_json().prop_map(|value| object("v", value)),
        Just(Map::new()),
    ])
}

fn any_text() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(prop_oneof![
        text_near_cap(),
        Just(String::new()),
        "\\PC{0,32}",
    ])
}

proptest! {
    #![proptest_config(config::fuzz_config(2_000))]

    #[test]
    fn fuzz_body_caps(text in any_text(), data in any_data()) {
        check(text, data)?;
    }
}

#[test]
fn the_caps_count_bytes_not_characters() {
    // 4096 four-byte characters are exactly 16 KiB: accepted; one more is refused, though it is
    // far fewer than 16384 characters.
    let at_cap = "😀".repeat(MAX_TEXT_BYTES / 4);
    assert!(Body::new(Some(at_cap.clone()), None).is_ok());
    let over = format!("{at_cap}😀");
    assert_eq!(
        Body::new(Some(over), None).map_err(|e| e.code()),
        Err(ErrorCode::LimitExceeded)
    );
    // One byte short of the cap, then a two-byte character: 16385 bytes.
    let straddle = format!("{}é", "a".repeat(MAX_TEXT_BYTES - 1));
    assert_eq!(
        Body::new(Some(straddle), None).map_err(|e| e.code()),
        Err(ErrorCode::LimitExceeded)
    );
}

#[test]
fn nesting_is_counted_from_the_data_object() {
    for (levels, expected) in [
        (31, Ok(())),
        (32, Ok(())),
        (33, Err(ErrorCode::LimitExceeded)),
    ] {
        let data = nested(levels, vec![], Value::Null);
        assert_eq!(nesting(&Value::Object(data.clone())), levels);
        assert_eq!(
            Body::new(None, Some(data))
                .map(|_| ())
                .map_err(|e| e.code()),
            expected,
            "{levels} levels"
        );
    }
}

#[test]
fn the_length_oracle_counts_like_the_encoder() {
    let tricky = Value::Object(object(
        "é\"",
        serde_json::json!(["\u{1}\n\\", 1.5, -0.0, 1e300, u64::MAX, null, {"": false}]),
    ));
    assert_eq!(json_len(&tricky), tricky.to_string().len());
}
