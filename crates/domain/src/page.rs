//! How much one sync page holds: a number of messages and a number of bytes.
//!
//! A count alone does not bound a reply: 200 messages of 32 KiB are a 6 MB page, which the MCP
//! framing doubles. So a page also stops once its bodies reach a byte budget. It always takes
//! the first message, whatever its size, so a reader always moves forward; and the caller
//! learns that more is ready from the message the page refused, so nothing is skipped.

use crate::limits::{DEFAULT_SYNC_PAGE, MAX_SYNC_PAGE, MAX_SYNC_PAGE_BYTES};
use crate::message::{Body, Message};

/// The most one page may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBudget {
    pub max_messages: usize,
    pub max_bytes: usize,
}

impl PageBudget {
    /// The budget of a sync that asked for `requested` messages: clamped to the caps, with the
    /// server's byte budget.
    pub fn for_sync(requested: Option<usize>) -> Self {
        Self {
            max_messages: requested
                .unwrap_or(DEFAULT_SYNC_PAGE)
                .clamp(1, MAX_SYNC_PAGE),
            max_bytes: MAX_SYNC_PAGE_BYTES,
        }
    }

    /// Starts filling a page.
    pub fn fill(self) -> PageFill {
        PageFill {
            budget: self,
            messages: 0,
            bytes: 0,
        }
    }
}

/// A page being filled, message by message, in channel order.
#[derive(Debug, Clone)]
pub struct PageFill {
    budget: PageBudget,
    messages: usize,
    bytes: usize,
}

impl PageFill {
    /// Whether the page takes `message` (and counts it if so). Once it refuses one, the page is
    /// full: the caller stops, and knows that at least that message is left for the next page.
    pub fn admit(&mut self, message: &Message) -> bool {
        let size = message.body.encoded_len();
        let first = self.messages == 0;
        let fits = self.messages < self.budget.max_messages
            && self.bytes.saturating_add(size) <= self.budget.max_bytes;
        if !(first || fits) {
            return false;
        }
        self.messages += 1;
        self.bytes = self.bytes.saturating_add(size);
        true
    }
}

impl Body {
    /// Bytes of the body as it is sent: its text and its data, each as JSON (escapes included).
    /// Counted without building the encoding.
    pub fn encoded_len(&self) -> usize {
        fn counted(write: impl FnOnce(&mut ByteCounter) -> serde_json::Result<()>) -> usize {
            let mut counter = ByteCounter(0);
            // Writing to a counter cannot fail, and strings and JSON objects always serialize.
            let _ = write(&mut counter);
            counter.0
        }
        let text = self.text.as_ref().map_or(0, |text| {
            counted(|counter| serde_json::to_writer(counter, text))
        });
        let data = self.data.as_ref().map_or(0, |data| {
            counted(|counter| serde_json::to_writer(counter, data))
        });
        text + data
    }
}

/// An `io::Write` that only counts what passes through it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::ids::{Seq, Timestamp};
    use crate::message::MessageKind;

    fn message(seq: i64, text_bytes: usize) -> Message {
        Message {
            seq: Seq(seq),
            kind: MessageKind::User,
            sender: None,
            sender_name: "alice".into(),
            body: Body {
                text: Some("x".repeat(text_bytes)),
                data: None,
            },
            to: None,
            nonce: None,
            at: Timestamp(0),
            hash: crate::ChainHash::genesis(),
        }
    }

    fn admitted(budget: PageBudget, messages: &[Message]) -> usize {
        let mut page = budget.fill();
        messages
            .iter()
            .take_while(|message| page.admit(message))
            .count()
    }

    #[test]
    fn a_page_stops_at_the_byte_budget() {
        let budget = PageBudget {
            max_messages: 200,
            max_bytes: 100,
        };
        // Each body is 30 bytes of text plus its two quotes.
        let messages: Vec<_> = (1..=10).map(|seq| message(seq, 30)).collect();
        assert_eq!(admitted(budget, &messages), 3);
    }

    #[test]
    fn a_page_stops_at_the_count() {
        let budget = PageBudget {
            max_messages: 2,
            max_bytes: 1_000_000,
        };
        let messages: Vec<_> = (1..=10).map(|seq| message(seq, 1)).collect();
        assert_eq!(admitted(budget, &messages), 2);
    }

    #[test]
    fn a_page_always_takes_its_first_message() {
        let budget = PageBudget {
            max_messages: 200,
            max_bytes: 10,
        };
        let messages = [message(1, 500), message(2, 1)];
        assert_eq!(admitted(budget, &messages), 1);
    }

    #[test]
    fn the_sync_budget_clamps_the_count_and_caps_the_bytes() {
        assert_eq!(PageBudget::for_sync(None).max_messages, DEFAULT_SYNC_PAGE);
        assert_eq!(PageBudget::for_sync(Some(0)).max_messages, 1);
        assert_eq!(
            PageBudget::for_sync(Some(10_000)).max_messages,
            MAX_SYNC_PAGE
        );
        assert_eq!(PageBudget::for_sync(None).max_bytes, MAX_SYNC_PAGE_BYTES);
    }

    #[test]
    fn the_encoded_length_counts_escapes_and_data() {
        let body = Body {
            text: Some("a\"b\n".into()),
            data: Some(match json!({"k": 1}) {
                serde_json::Value::Object(map) => map,
                _ => Map::new(),
            }),
        };
        // "a\"b\n" is 8 bytes as JSON; {"k":1} is 7.
        assert_eq!(body.encoded_len(), 8 + 7);
    }
}
