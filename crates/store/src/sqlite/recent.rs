//! The latest committed messages of each channel the writer touched, kept in memory so that a
//! sync near the head of a channel (nearly every sync) reads no table.
//!
//! Reading a page through the reader pool costs more than the rest of a sync together: sqlx runs
//! each SQLite connection on a thread of its own and hands every row across, so a page of ten
//! messages is a dozen thread switches. The writer already holds every message it commits, and
//! nothing else writes (one process per SQLite file), so after each commit it appends them here.
//!
//! A tail is exact about what it holds: the messages of one channel with consecutive seqs, as
//! committed. A page is served from it only when it covers the whole range asked for; anything
//! else (an older cursor, a tail that missed a write, a channel dropped to stay within the
//! budget) reads the database as before.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};

use domain::{ChannelId, Message, PageBudget, Seq, SlotLabel};
use hashlink::LinkedHashMap;

use crate::MessagePage;

/// Messages kept per channel: a sync at the head asks for the last few.
const PER_CHANNEL: usize = 64;
/// Bytes of memory kept per channel ([`cost`]), so a few large messages do not crowd out many.
const BYTES_PER_CHANNEL: usize = 64 * 1024;
/// Bytes kept for all channels together; past this the channels written least recently go,
/// down to three quarters of it.
const BYTES_IN_ALL: usize = 32 * 1024 * 1024;
/// What a kept message costs beyond its body: the struct, its ids and names.
const OVERHEAD_PER_MESSAGE: usize = 256;
/// What one node of a message's data costs in memory beyond its strings: the `Value` itself,
/// and for a member of an object its key's `String` and its share of the map.
const BYTES_PER_DATA_NODE: usize = 64;

/// Shared by the writer, which alone appends, and the readers. Cheap to clone.
#[derive(Clone, Default)]
pub(super) struct Recent(Arc<RwLock<Tails>>);

#[derive(Default)]
struct Tails {
    /// The tail written least recently first.
    channels: LinkedHashMap<ChannelId, Tail>,
    bytes: usize,
}

#[derive(Default)]
struct Tail {
    /// Consecutive seqs, oldest first.
    messages: VecDeque<Message>,
    bytes: usize,
}

/// What keeping `message` costs in memory, roughly. Not its encoded length: a data array of
/// small numbers is two bytes a number as JSON but a `Value` of 32 bytes each in memory, so a
/// budget in encoded bytes would hold ten times what it says.
fn cost(message: &Message) -> usize {
    let text = message.body.text.as_ref().map_or(0, String::len);
    let data = message.body.data.as_ref().map_or(0, |data| {
        // Without recursion, like the body's own checks: the depth is capped but the walk
        // need not rely on it.
        let mut bytes = 0;
        let mut stack: Vec<&serde_json::Value> = Vec::new();
        for (key, value) in data {
            bytes += BYTES_PER_DATA_NODE + key.len();
            stack.push(value);
        }
        while let Some(value) = stack.pop() {
            bytes += BYTES_PER_DATA_NODE;
            match value {
                serde_json::Value::String(string) => bytes += string.len(),
                serde_json::Value::Array(items) => stack.extend(items),
                serde_json::Value::Object(map) => {
                    for (key, value) in map {
                        bytes += key.len();
                        stack.push(value);
                    }
                }
                serde_json::Value::Null
                | serde_json::Value::Bool(_)
                | serde_json::Value::Number(_) => {}
            }
        }
        bytes
    });
    OVERHEAD_PER_MESSAGE + text + data
}

impl Recent {
    /// Appends messages that were just committed to `channel`, oldest first. A gap (a write
    /// that did not come through here) starts the channel's tail over at `added`.
    pub(super) fn extend(&self, channel: &ChannelId, added: &[Message]) {
        let Some(first) = added.first() else {
            return;
        };
        let mut tails = self.0.write().unwrap_or_else(|poison| poison.into_inner());
        let Tails { channels, bytes } = &mut *tails;
        if channels.to_back(channel).is_none() {
            channels.insert(channel.clone(), Tail::default());
        }
        let Some(tail) = channels.get_mut(channel) else {
            return;
        };
        let follows = tail
            .messages
            .back()
            .is_some_and(|last| last.seq.0 + 1 == first.seq.0);
        if !follows {
            *bytes -= tail.bytes;
            *tail = Tail::default();
        }
        for message in added {
            let size = cost(message);
            tail.messages.push_back(message.clone());
            tail.bytes += size;
            *bytes += size;
        }
        while tail.messages.len() > PER_CHANNEL || tail.bytes > BYTES_PER_CHANNEL {
            let Some(dropped) = tail.messages.pop_front() else {
                break;
            };
            let size = cost(&dropped);
            tail.bytes -= size;
            *bytes -= size;
        }
        if tail.messages.is_empty() {
            // A message larger than a tail's whole budget leaves nothing worth keeping.
            channels.remove(channel);
        }
        if *bytes > BYTES_IN_ALL {
            while *bytes > BYTES_IN_ALL / 4 * 3 {
                let Some((_, evicted)) = channels.pop_front() else {
                    break;
                };
                *bytes -= evicted.bytes;
            }
        }
    }

    /// The page of messages with `after < seq <= upto` that `viewer` (a seat held since `since`,
    /// or everyone when `None`) may see, if the tail holds that whole range.
    pub(super) fn page(
        &self,
        channel: &ChannelId,
        viewer: Option<(&SlotLabel, Seq)>,
        after: Seq,
        upto: Seq,
        budget: PageBudget,
    ) -> Option<MessagePage> {
        let tails = self.0.read().unwrap_or_else(|poison| poison.into_inner());
        let tail = tails.channels.get(channel)?;
        let (first, last) = (tail.messages.front()?, tail.messages.back()?);
        if first.seq.0 > after.0 + 1 || last.seq < upto {
            return None;
        }
        let skip = usize::try_from(after.0 + 1 - first.seq.0).unwrap_or(0);
        let range = tail
            .messages
            .iter()
            .skip(skip)
            .take_while(|message| message.seq <= upto)
            .filter(|message| viewer.is_none_or(|(slot, since)| message.visible_to(slot, since)));
        Some(MessagePage::filled(range, budget))
    }
}

#[cfg(test)]
mod tests {
    use domain::{Body, ChainHash, MessageKind, Timestamp};

    use super::*;

    fn message(seq: i64, to: Option<&str>, text: &str) -> Message {
        Message {
            seq: Seq(seq),
            kind: MessageKind::User,
            sender: Some(SlotLabel::parse("alice").expect("label")),
            sender_name: "alice".into(),
            body: Body {
                text: Some(text.into()),
                data: None,
            },
            to: to.map(|to| SlotLabel::parse(to).expect("label")),
            nonce: None,
            at: Timestamp(0),
            hash: ChainHash::genesis(),
        }
    }

    fn seqs(page: &MessagePage) -> Vec<i64> {
        page.messages.iter().map(|message| message.seq.0).collect()
    }

    fn budget(max_messages: usize) -> PageBudget {
        PageBudget {
            max_messages,
            max_bytes: 1 << 20,
        }
    }

    #[test]
    fn a_page_is_served_only_when_the_tail_covers_its_whole_range() {
        let recent = Recent::default();
        let channel = ChannelId::from_trusted("ch_a".to_owned());
        let added: Vec<Message> = (5..=9).map(|seq| message(seq, None, "hi")).collect();
        recent.extend(&channel, &added);

        let page = recent
            .page(&channel, None, Seq(4), Seq(9), budget(10))
            .expect("covered");
        assert_eq!(seqs(&page), [5, 6, 7, 8, 9]);
        assert!(!page.has_more);
        let page = recent
            .page(&channel, None, Seq(6), Seq(8), budget(1))
            .expect("covered");
        assert_eq!((seqs(&page), page.has_more), (vec![7], true));
        assert!(
            recent
                .page(&channel, None, Seq(3), Seq(9), budget(10))
                .is_none(),
            "6 is older"
        );
        assert!(
            recent
                .page(&channel, None, Seq(8), Seq(10), budget(10))
                .is_none(),
            "10 is not here"
        );
        let other = ChannelId::from_trusted("ch_b".to_owned());
        assert!(
            recent
                .page(&other, None, Seq(0), Seq(0), budget(10))
                .is_none()
        );
    }

    #[test]
    fn a_gap_starts_the_tail_over_and_the_tail_stays_within_its_caps() {
        let recent = Recent::default();
        let channel = ChannelId::from_trusted("ch_a".to_owned());
        recent.extend(&channel, &[message(1, None, "a"), message(2, None, "b")]);
        recent.extend(&channel, &[message(4, None, "d")]);
        assert!(
            recent
                .page(&channel, None, Seq(1), Seq(4), budget(10))
                .is_none(),
            "3 is missing"
        );
        let page = recent
            .page(&channel, None, Seq(3), Seq(4), budget(10))
            .expect("the new tail");
        assert_eq!(seqs(&page), [4]);

        let many: Vec<Message> = (5..=200).map(|seq| message(seq, None, "x")).collect();
        recent.extend(&channel, &many);
        let tails = recent.0.read().expect("lock");
        let tail = &tails.channels[&channel];
        assert_eq!(tail.messages.len(), PER_CHANNEL);
        assert_eq!(tail.messages.back().map(|m| m.seq.0), Some(200));
        assert_eq!(tails.bytes, tail.bytes);
        drop(tails);

        let big = "y".repeat(BYTES_PER_CHANNEL * 5 / 16);
        recent.extend(
            &channel,
            &[message(201, None, &big), message(202, None, &big)],
        );
        recent.extend(
            &channel,
            &[message(203, None, &big), message(204, None, &big)],
        );
        let tails = recent.0.read().expect("lock");
        assert!(tails.channels[&channel].bytes <= BYTES_PER_CHANNEL);
        assert_eq!(tails.channels[&channel].messages.len(), 3);
        drop(tails);

        // One message over a tail's whole budget leaves no tail at all, and costs nothing.
        let huge = "z".repeat(BYTES_PER_CHANNEL + 1);
        recent.extend(&channel, &[message(205, None, &huge)]);
        let tails = recent.0.read().expect("lock");
        assert!(!tails.channels.contains_key(&channel));
        assert_eq!(tails.bytes, 0);
    }

    #[test]
    fn private_messages_reach_only_their_seats_and_only_after_they_sat_down() {
        let recent = Recent::default();
        let channel = ChannelId::from_trusted("ch_a".to_owned());
        recent.extend(
            &channel,
            &[
                message(1, None, "all"),
                message(2, Some("bob"), "for bob"),
                message(3, Some("carol"), "for carol"),
            ],
        );
        let bob = SlotLabel::parse("bob").expect("label");
        let page = |viewer| {
            seqs(
                &recent
                    .page(&channel, viewer, Seq(0), Seq(3), budget(10))
                    .expect("covered"),
            )
        };
        assert_eq!(page(Some((&bob, Seq(0)))), [1, 2]);
        assert_eq!(page(Some((&bob, Seq(2)))), [1], "bob sat down after 2");
        assert_eq!(page(None), [1, 2, 3]);
    }

    #[test]
    fn data_costs_what_it_takes_in_memory_not_its_length_as_json() {
        let mut numbers = message(1, None, "n");
        let items = vec![serde_json::Value::from(0); 400];
        numbers.body = Body::new(
            None,
            Some(serde_json::Map::from_iter([("n".to_owned(), items.into())])),
        )
        .expect("within the data cap");
        assert!(numbers.body.encoded_len() < 1_000);
        assert!(cost(&numbers) >= 400 * std::mem::size_of::<serde_json::Value>());

        // So a channel keeps fewer such messages than their JSON length would allow.
        let recent = Recent::default();
        let channel = ChannelId::from_trusted("ch_a".to_owned());
        let added: Vec<Message> = (1..=8)
            .map(|seq| Message {
                seq: Seq(seq),
                ..numbers.clone()
            })
            .collect();
        recent.extend(&channel, &added);
        let tails = recent.0.read().expect("lock");
        assert!(tails.channels[&channel].bytes <= BYTES_PER_CHANNEL);
        let kept = tails.channels[&channel].messages.len();
        assert!((1..8).contains(&kept), "{kept} kept");
    }

    #[test]
    fn past_the_budget_in_all_the_channels_written_least_recently_go() {
        let recent = Recent::default();
        let body = "x".repeat(BYTES_PER_CHANNEL / 2);
        let per_channel = cost(&message(1, None, &body));
        let channels = BYTES_IN_ALL / per_channel * 5 / 4;
        let id = |n: usize| ChannelId::from_trusted(format!("ch_{n}"));
        let hot = id(0);
        for n in 0..channels {
            recent.extend(&id(n), &[message(1, None, &body)]);
            // One channel is written all along: it stays.
            recent.extend(
                &hot,
                &[message(i64::try_from(n).expect("n") + 2, None, "hot")],
            );
        }
        let tails = recent.0.read().expect("lock");
        assert!(tails.bytes <= BYTES_IN_ALL);
        assert_eq!(
            tails.bytes,
            tails
                .channels
                .values()
                .map(|tail| tail.bytes)
                .sum::<usize>()
        );
        assert!(tails.channels.contains_key(&hot));
        assert!(tails.channels.contains_key(&id(channels - 1)), "the newest");
        assert!(!tails.channels.contains_key(&id(1)), "the oldest");
        assert!(tails.channels.len() > channels / 2, "only some went");
    }
}
