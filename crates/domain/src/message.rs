//! Messages: kinds, bodies, drafts, and the rule of who may see a message.

use serde_json::{Map, Value};

use crate::chain::{ChainHash, Nonce};
use crate::error::DomainError;
use crate::ids::{Seq, SlotLabel, Timestamp};
use crate::limits::{MAX_DATA_BYTES, MAX_DATA_DEPTH, MAX_TEXT_BYTES};
use crate::notice::{Notice, NoticeError};

/// Who speaks. Only the server itself creates `Bot` and `System` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    User,
    Bot,
    System,
}

impl MessageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::User => "user",
            MessageKind::Bot => "bot",
            MessageKind::System => "system",
        }
    }

    /// Reads a kind back from storage.
    pub fn from_stored(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(MessageKind::User),
            "bot" => Some(MessageKind::Bot),
            "system" => Some(MessageKind::System),
            _ => None,
        }
    }

    /// The kind a participant asked to post as: only `user` is accepted, so nobody can pass a
    /// message off as the referee's or the server's.
    pub fn requested_by_participant(raw: Option<&str>) -> Result<Self, DomainError> {
        match raw {
            None | Some("user") => Ok(MessageKind::User),
            Some(other) => Err(DomainError::invalid(
                "kind",
                format!(
                    "participants post kind \"user\" only; {other:?} is reserved for the server and its bots"
                ),
            )),
        }
    }
}

/// What a message says: text, a JSON object, or both.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Body {
    pub text: Option<String>,
    pub data: Option<Map<String, Value>>,
}

impl Body {
    /// Validates a participant's body against the size and shape caps.
    pub fn new(
        text: Option<String>,
        data: Option<Map<String, Value>>,
    ) -> Result<Self, DomainError> {
        let text = text.filter(|text| !text.is_empty());
        let data = data.filter(|data| !data.is_empty());
        if text.is_none() && data.is_none() {
            return Err(DomainError::invalid(
                "body",
                "a message needs non-empty text, a non-empty data object, or both",
            ));
        }
        if let Some(text) = &text
            && text.len() > MAX_TEXT_BYTES
        {
            return Err(DomainError::LimitExceeded {
                what: "message text (bytes)",
                limit: MAX_TEXT_BYTES,
            });
        }
        // U+0000 ends a string in C and PostgreSQL refuses it in text: refused on every
        // backend, so a history moves between them whole.
        if text.as_ref().is_some_and(|text| text.contains('\0')) {
            return Err(DomainError::invalid(
                "text",
                "the text contains U+0000 (NUL); remove it or send binary content in data",
            ));
        }
        if let Some(data) = &data {
            let encoded_len = Value::Object(data.clone()).to_string().len();
            if encoded_len > MAX_DATA_BYTES {
                return Err(DomainError::LimitExceeded {
                    what: "message data (bytes of JSON)",
                    limit: MAX_DATA_BYTES,
                });
            }
            if depth(data) > MAX_DATA_DEPTH {
                return Err(DomainError::LimitExceeded {
                    what: "message data nesting depth",
                    limit: MAX_DATA_DEPTH,
                });
            }
            check_numbers("data", data)?;
        }
        Ok(Self { text, data })
    }
}

/// Largest integer every JSON reader holds exactly (2^53 - 1, I-JSON, RFC 7493).
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// Refuses integers beyond ±(2^53 - 1) in `value`: RFC 8785 hashes numbers as doubles, so two
/// larger integers could share a hash, and JavaScript bots and clients would read them
/// rounded. Without recursion, like [`depth`].
pub fn check_numbers(field: &'static str, root: &Map<String, Value>) -> Result<(), DomainError> {
    let mut stack: Vec<&Value> = root.values().collect();
    while let Some(value) = stack.pop() {
        match value {
            Value::Number(number) => {
                let exact = match (number.as_i64(), number.as_u64(), number.as_f64()) {
                    (Some(signed), _, _) => signed.unsigned_abs() <= MAX_EXACT_INTEGER,
                    (None, Some(unsigned), _) => unsigned <= MAX_EXACT_INTEGER,
                    // Beyond 64 bits the parser already rounded an integer to a double; a
                    // whole double that large is refused too, since nobody can tell which.
                    (None, None, Some(float)) => {
                        float.fract() != 0.0 || float.abs() <= MAX_EXACT_INTEGER as f64
                    }
                    (None, None, None) => false,
                };
                if !exact {
                    return Err(DomainError::invalid(
                        field,
                        format!(
                            "the integer {number} is too large: integers must be within ±{MAX_EXACT_INTEGER} (2^53 - 1) to be exact everywhere; send larger ones as strings"
                        ),
                    ));
                }
            }
            Value::Object(map) => stack.extend(map.values()),
            Value::Array(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// Nesting depth of a JSON object, computed without recursion so hostile input cannot overflow
/// the stack.
fn depth(root: &Map<String, Value>) -> usize {
    let mut deepest = 1;
    let mut stack: Vec<(&Value, usize)> = root.values().map(|v| (v, 2)).collect();
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Object(map) => {
                deepest = deepest.max(level);
                stack.extend(map.values().map(|v| (v, level + 1)));
            }
            Value::Array(items) => {
                deepest = deepest.max(level);
                stack.extend(items.iter().map(|v| (v, level + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// A participant's message before the channel accepts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub body: Body,
    /// Set for a private message: only the sender, this slot and bots see it.
    pub to: Option<SlotLabel>,
    /// Fresh random bytes for a private message's digest ([`crate::chain`]); unused when
    /// the message is public.
    pub nonce: Nonce,
}

/// A message as stored and delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub seq: Seq,
    pub kind: MessageKind,
    /// The slot that spoke; `None` for the server's own system messages.
    pub sender: Option<SlotLabel>,
    pub sender_name: String,
    pub body: Body,
    pub to: Option<SlotLabel>,
    /// A private message's random nonce, 32 hex digits ([`crate::chain`]).
    pub nonce: Option<String>,
    pub at: Timestamp,
    /// This message's link of the channel's hash chain ([`crate::chain`]).
    pub hash: ChainHash,
}

impl Message {
    /// The notice a `system` message records; `None` for other kinds. A system message whose
    /// data is not a notice this server knows is an error, not silence.
    pub fn notice(&self) -> Option<Result<Notice, NoticeError>> {
        if self.kind != MessageKind::System {
            return None;
        }
        Some(match &self.body.data {
            Some(data) => Notice::decode(data),
            None => Err(NoticeError::Shape("a system message without data".into())),
        })
    }

    /// Whether the seat `viewer`, held since `since` (see `Seat::since`), may read this
    /// message. Bots, which referee, see everything; that is handled by their caller.
    pub fn visible_to(&self, viewer: &SlotLabel, since: Seq) -> bool {
        match &self.to {
            None => true,
            Some(recipient) => {
                (recipient == viewer || self.sender.as_ref() == Some(viewer)) && self.seq > since
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => unreachable!("test input is an object"),
        }
    }

    #[test]
    fn participants_cannot_spoof_kinds() {
        assert_eq!(
            MessageKind::requested_by_participant(None),
            Ok(MessageKind::User)
        );
        assert_eq!(
            MessageKind::requested_by_participant(Some("user")),
            Ok(MessageKind::User)
        );
        for spoof in ["bot", "system", "SYSTEM", ""] {
            let err = MessageKind::requested_by_participant(Some(spoof)).unwrap_err();
            assert_eq!(err.code().as_str(), "INVALID_ARGUMENT");
        }
    }

    #[test]
    fn bodies_are_checked() {
        assert!(Body::new(Some("hi".into()), None).is_ok());
        assert!(Body::new(None, Some(object(json!({"move": 42})))).is_ok());
        assert!(Body::new(None, None).is_err());
        assert!(Body::new(Some(String::new()), Some(Map::new())).is_err());
        let too_long = "x".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(
            Body::new(Some(too_long), None),
            Err(DomainError::LimitExceeded { .. })
        ));
        let big = object(json!({"blob": "y".repeat(MAX_DATA_BYTES)}));
        assert!(matches!(
            Body::new(None, Some(big)),
            Err(DomainError::LimitExceeded { .. })
        ));
        for (number, fits) in [
            (json!(9_007_199_254_740_991_u64), true),
            (json!(-9_007_199_254_740_991_i64), true),
            (json!(9_007_199_254_740_992_u64), false),
            (json!(-9_007_199_254_740_992_i64), false),
            (json!(u64::MAX), false),
            (json!(1.5), true),
            (json!(-0.25), true),
            (json!(1.5e300), false),
            (json!(18_446_744_073_709_551_617.0_f64), false),
        ] {
            let body = Body::new(None, Some(object(json!({"n": [{"deep": number}]}))));
            assert_eq!(body.is_ok(), fits, "{number}");
        }
        let mut deep = json!(1);
        for _ in 0..MAX_DATA_DEPTH + 1 {
            deep = json!([deep]);
        }
        let deep = object(json!({ "deep": deep }));
        assert!(matches!(
            Body::new(None, Some(deep)),
            Err(DomainError::LimitExceeded { .. })
        ));
    }

    /// `{"deep": [[…[1]…]]}` whose depth, counting the outer object as 1, is `depth`.
    fn nested(depth: usize) -> Map<String, Value> {
        let mut deep = json!(1);
        for _ in 0..depth - 1 {
            deep = json!([deep]);
        }
        object(json!({ "deep": deep }))
    }

    fn code_of(body: Result<Body, DomainError>) -> Option<crate::ErrorCode> {
        body.err().map(|error| error.code())
    }

    #[test]
    fn caps_accept_exactly_their_limit_and_refuse_one_more() {
        use crate::ErrorCode::LimitExceeded;
        // Text is capped in bytes: two-byte characters reach the cap at half as many.
        let text = |bytes: usize| "é".repeat(bytes / 2) + &"x".repeat(bytes % 2);
        assert_eq!(code_of(Body::new(Some(text(MAX_TEXT_BYTES)), None)), None);
        assert_eq!(
            code_of(Body::new(Some(text(MAX_TEXT_BYTES + 1)), None)),
            Some(LimitExceeded)
        );
        // Data is capped in bytes of its JSON: `{"blob":"…"}` is 11 bytes around the string.
        let data = |bytes: usize| object(json!({"blob": text(bytes - 11)}));
        assert_eq!(
            Value::Object(data(MAX_DATA_BYTES)).to_string().len(),
            MAX_DATA_BYTES
        );
        assert_eq!(code_of(Body::new(None, Some(data(MAX_DATA_BYTES)))), None);
        assert_eq!(
            code_of(Body::new(None, Some(data(MAX_DATA_BYTES + 1)))),
            Some(LimitExceeded)
        );
        assert_eq!(code_of(Body::new(None, Some(nested(MAX_DATA_DEPTH)))), None);
        assert_eq!(
            code_of(Body::new(None, Some(nested(MAX_DATA_DEPTH + 1)))),
            Some(LimitExceeded)
        );
    }

    #[test]
    fn private_messages_are_seen_by_sender_and_recipient_only() {
        let alice = SlotLabel::parse("alice").unwrap();
        let bob = SlotLabel::parse("bob").unwrap();
        let carol = SlotLabel::parse("carol").unwrap();
        let message = Message {
            seq: Seq(1),
            kind: MessageKind::User,
            sender: Some(alice.clone()),
            sender_name: "Alice".into(),
            body: Body {
                text: Some("psst".into()),
                data: None,
            },
            to: Some(bob.clone()),
            nonce: None,
            at: Timestamp(0),
            hash: ChainHash::genesis(),
        };
        assert!(message.visible_to(&alice, Seq::ZERO));
        assert!(message.visible_to(&bob, Seq::ZERO));
        assert!(!message.visible_to(&carol, Seq::ZERO));
        assert!(
            !message.visible_to(&bob, Seq(1)),
            "a later holder of bob's slot does not inherit its private messages"
        );
        let public = Message {
            to: None,
            ..message
        };
        assert!(public.visible_to(&carol, Seq(1)));
    }
}
