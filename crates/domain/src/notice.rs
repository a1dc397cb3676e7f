//! Channel notices: the one vocabulary of what happens to a channel (someone joined, a bot was
//! attached, the channel closed…) and its codec.
//!
//! A notice is stored as a `system` message whose `data` is [`Notice::encode`]'s object and
//! whose text is [`Notice::text`]; clients see exactly that, and bots receive events decoded
//! from `data` by [`Notice::decode`], never from the text. The vocabulary is documented in
//! `docs/events.md`; a name or field that is there does not change meaning. Adding a variant or
//! an optional field is compatible; anything else bumps [`NOTICE_VERSION`].
//!
//! `data` carries `"v"`, the codec version. Notices written before the version existed carry
//! none and decode as version 1, whose names and fields they already used.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::attestation::{Attestation, WitnessSignature};
use crate::bot_output::{CapHit, OutputCap};
use crate::ids::{Seq, SlotLabel, Timestamp};
use crate::message::Body;
use crate::names::quote;

/// The version written in every notice's `data.v`.
pub const NOTICE_VERSION: u64 = 1;

/// Something that happened to a channel, as everyone in it is told.
///
/// Names (`name`, `by`) are display names as the person chose them: the text quotes them on one
/// escaped line ([`quote`]), `data` keeps them exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// The channel exists; `slots` lists them as `kind:label`, in order.
    Created {
        name: String,
        by: String,
        slots: Vec<String>,
        /// The channel's `reveal_private` setting; absent in channels from before it existed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reveal_private: Option<bool>,
    },
    /// Someone took a seat with its invite code.
    Joined {
        slot: SlotLabel,
        name: String,
    },
    /// Someone took over a seat with its rejoin token.
    Rejoined {
        slot: SlotLabel,
        name: String,
    },
    /// The holder gave up the seat.
    Left {
        slot: SlotLabel,
        name: String,
    },
    /// An admin removed the holder.
    Kicked {
        slot: SlotLabel,
        name: Option<String>,
        by: String,
    },
    /// An admin vacated the seat (if held) and issued a new invite for it.
    SlotYielded {
        slot: SlotLabel,
        name: Option<String>,
        by: String,
    },
    /// An admin replaced the invite code of an empty seat; the old code no longer works.
    InviteReissued {
        slot: SlotLabel,
        by: String,
    },
    Renamed {
        name: String,
        by: String,
    },
    AdminChanged {
        slot: SlotLabel,
        admin: bool,
        by: String,
    },
    /// The channel is read-only for good; only seed reveals follow.
    Closed {
        by: String,
    },
    /// A bot took the slot: the first event of its run.
    BotAttached {
        slot: SlotLabel,
        name: String,
        /// Notices from before bots could be Python name no language.
        #[serde(default = "javascript")]
        language: String,
        code_hash: String,
        params_hash: String,
        seed_commitment: String,
    },
    /// A bot's event failed; `seq` is the message whose event it was.
    BotError {
        slot: SlotLabel,
        kind: String,
        /// The bot's own text (what it threw): untrusted.
        message: String,
        line: Option<u32>,
        seq: Seq,
    },
    /// The bot failed repeatedly and gets no more events.
    BotDisabled {
        slot: SlotLabel,
    },
    /// The bot's reply to message `seq` was dropped whole, over a cap.
    BotOutputCapped {
        slot: SlotLabel,
        seq: Seq,
        cap: String,
        limit_messages: usize,
        limit_bytes: usize,
        until_ms: Option<i64>,
        /// A later drop in the same cap window: recorded (replay needs every drop) but told
        /// in a short line, since the first notice already said what to do.
        #[serde(default, skip_serializing_if = "is_false")]
        repeat: bool,
    },
    /// The bot ended its own run (game over): no more events for it.
    BotRunEnded {
        slot: SlotLabel,
        /// The bot's own words: untrusted.
        reason: Option<String>,
    },
    /// A timer the bot set came due: the bot's `on_timer(tag)` event. The notice's own time
    /// is when it fired, at or after `due`.
    TimerFired {
        slot: SlotLabel,
        /// The bot's own tag: untrusted.
        tag: String,
        /// The seq of the event whose reaction set the timer.
        set_by: Seq,
        /// When it was due, in ms since the epoch.
        due: Timestamp,
    },
    /// The server fetched the URL a bot asked for (`ctx.request_fetch`): what it saw, signed
    /// with the server's key. The bot's `on_fetch(result)` event; replay reads the record and
    /// never fetches again.
    FetchAttested {
        slot: SlotLabel,
        /// The bot's own tag: untrusted.
        tag: String,
        /// The seq of the event whose reaction asked for the fetch.
        requested_by: Seq,
        /// Boxed: the record is far larger than any other notice.
        attestation: Box<Attestation>,
        /// The server's signature over the record bound to this channel, slot, tag and event
        /// (`transcript::signing::attestation_bytes`).
        witness: WitnessSignature,
    },
    /// The bot's secret seed, published when its run ended, it was replaced, or the channel
    /// closed, so that anyone can replay it.
    BotSeedRevealed {
        slot: SlotLabel,
        seed: String,
    },
}

fn javascript() -> String {
    "javascript".to_owned()
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Why a `system` message's data is not a notice this codec knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoticeError {
    #[error("notice version {0} is newer than this server's ({NOTICE_VERSION})")]
    Version(u64),
    #[error("not a notice: {0}")]
    Shape(String),
}

impl Notice {
    /// The stable error code a failure notice carries in `data.code`, for clients that match
    /// on codes rather than events.
    fn code(&self) -> Option<&'static str> {
        match self {
            Notice::BotError { .. } => Some("BOT_ERROR"),
            Notice::BotOutputCapped { .. } => Some("BOT_OUTPUT_CAPPED"),
            _ => None,
        }
    }

    /// The `data` object: `event`, the variant's fields, `v`, and `code` for failures.
    pub fn encode(&self) -> Map<String, Value> {
        let mut data = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // Every variant is a struct of strings, numbers and booleans.
            _ => unreachable!("a notice serializes to an object"),
        };
        data.insert("v".into(), NOTICE_VERSION.into());
        if let Some(code) = self.code() {
            data.insert("code".into(), code.into());
        }
        data
    }

    /// Reads a notice back from a `system` message's data.
    pub fn decode(data: &Map<String, Value>) -> Result<Notice, NoticeError> {
        match data.get("v") {
            None => {}
            Some(version) => match version.as_u64() {
                Some(NOTICE_VERSION) => {}
                Some(newer) => return Err(NoticeError::Version(newer)),
                None => return Err(NoticeError::Shape("`v` is not a version number".into())),
            },
        }
        serde_json::from_value(Value::Object(data.clone()))
            .map_err(|error| NoticeError::Shape(error.to_string()))
    }

    /// The message body that records this notice at `at`.
    pub fn body(&self, at: Timestamp) -> Body {
        Body {
            text: Some(self.text(at)),
            data: Some(self.encode()),
        }
    }

    /// The one line people read. Untrusted text (names, a bot's words) is quoted.
    pub fn text(&self, at: Timestamp) -> String {
        match self {
            Notice::Created { name, by, .. } => {
                format!("{} created the channel {}.", quote(by), quote(name))
            }
            Notice::Joined { slot, name } => format!("{} joined as {slot}.", quote(name)),
            Notice::Rejoined { slot, name } => {
                format!(
                    "{} took over seat {slot} with its rejoin token.",
                    quote(name)
                )
            }
            Notice::Left { slot, name } => format!("{} left seat {slot}.", quote(name)),
            Notice::Kicked { slot, by, .. } => {
                format!("{} removed the player in seat {slot}.", quote(by))
            }
            Notice::SlotYielded { slot, by, .. } => {
                format!("{} opened seat {slot} for a new player.", quote(by))
            }
            Notice::InviteReissued { slot, by } => format!(
                "{} issued a new invite for seat {slot}; the old code no longer works.",
                quote(by)
            ),
            Notice::Renamed { name, by } => {
                format!("{} renamed the channel to {}.", quote(by), quote(name))
            }
            Notice::AdminChanged {
                slot,
                admin: true,
                by,
            } => format!("{} made seat {slot} an admin.", quote(by)),
            Notice::AdminChanged {
                slot,
                admin: false,
                by,
            } => format!("{} removed admin rights from seat {slot}.", quote(by)),
            Notice::Closed { by } => format!("{} closed the channel.", quote(by)),
            Notice::BotAttached {
                slot,
                name,
                language,
                code_hash,
                ..
            } => format!(
                "Bot {} is now in slot {slot} ({language} code {code_hash}). Read its code with get_bot_code before playing.",
                quote(name)
            ),
            Notice::BotError {
                slot,
                kind,
                message,
                line,
                ..
            } => {
                let line = line
                    .map(|line| format!(" (line {line})"))
                    .unwrap_or_default();
                format!("BOT_ERROR in {slot}: bot {kind}: {}{line}", quote(message))
            }
            Notice::BotDisabled { slot } => format!(
                "The bot in {slot} failed repeatedly and is disabled; an admin can attach it again with attach_bot."
            ),
            Notice::BotOutputCapped {
                slot,
                seq,
                repeat: true,
                ..
            } => format!(
                "BOT_OUTPUT_CAPPED in {slot}: its reply to message {} was dropped too.",
                seq.0
            ),
            Notice::BotOutputCapped {
                slot,
                seq,
                cap,
                limit_messages,
                limit_bytes,
                until_ms,
                repeat: false,
            } => {
                let until = match until_ms {
                    Some(until) => {
                        let seconds = (until - at.0).max(0).unsigned_abs().div_ceil(1000);
                        format!("{seconds} s from now")
                    }
                    None => "the next message".to_owned(),
                };
                let (scope, recovery) = match OutputCap::parse(cap) {
                    Some(OutputCap::PerTrigger) | None => (
                        "in reply to one message, all bots of this channel together",
                        "The next message starts a new turn; if this bot always writes this much, an admin can attach one that writes less.".to_owned(),
                    ),
                    Some(OutputCap::PerChannelMinute) => (
                        "per minute, all bots of this channel together",
                        format!("Bot replies are dropped until {until}; wait, then post again."),
                    ),
                    Some(OutputCap::PerOwnerMinute) => (
                        "per minute, all bots of the channels of this channel's owner together",
                        format!(
                            "Bot replies are dropped until {until}; wait, or close channels with busy bots."
                        ),
                    ),
                };
                format!(
                    "BOT_OUTPUT_CAPPED in {slot}: its reply to message {} was dropped (nothing of it is stored): bots may write at most {limit_messages} messages and {limit_bytes} bytes {scope}. {recovery}",
                    seq.0
                )
            }
            Notice::BotRunEnded { slot, reason } => match reason {
                Some(reason) => format!("The bot in {slot} ended its run: {}", quote(reason)),
                None => format!("The bot in {slot} ended its run."),
            },
            Notice::TimerFired { slot, tag, .. } => {
                format!("A timer of the bot in {slot} fired: {}.", quote(tag))
            }
            Notice::FetchAttested {
                slot, attestation, ..
            } => {
                let outcome = match (&attestation.error, attestation.status) {
                    (Some(failure), _) => format!("failed ({})", failure.code.as_str()),
                    (None, Some(status)) => format!("answered {status}"),
                    (None, None) => "answered".to_owned(),
                };
                format!(
                    "The server fetched {} for the bot in {slot}: {outcome}. The signed record is in this message's data.",
                    quote(&attestation.url)
                )
            }
            Notice::BotSeedRevealed { slot, .. } => {
                format!("The seed of the bot in {slot} is revealed, so anyone can replay its run.")
            }
        }
    }

    /// The notice of a dropped bot reply.
    pub fn output_capped(slot: &SlotLabel, trigger: Seq, hit: &CapHit) -> Notice {
        Notice::BotOutputCapped {
            slot: slot.clone(),
            seq: trigger,
            cap: hit.cap.as_str().to_owned(),
            limit_messages: hit.limit.messages,
            limit_bytes: hit.limit.bytes,
            until_ms: hit.until.map(|until| until.0),
            repeat: !hit.notify,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slot(raw: &str) -> SlotLabel {
        SlotLabel::parse(raw).expect("valid label")
    }

    /// One of every variant, with awkward text where text is free.
    pub(crate) fn every_notice() -> Vec<Notice> {
        let odd = "Bob \"the\n builder\" \u{202e}";
        vec![
            Notice::Created {
                name: "chess night".into(),
                by: odd.into(),
                slots: vec!["invite:alice".into(), "bot:referee".into()],
                reveal_private: Some(true),
            },
            Notice::Joined {
                slot: slot("alice"),
                name: odd.into(),
            },
            Notice::Rejoined {
                slot: slot("alice"),
                name: "Alice".into(),
            },
            Notice::Left {
                slot: slot("alice"),
                name: "Alice".into(),
            },
            Notice::Kicked {
                slot: slot("bob"),
                name: None,
                by: "Alice".into(),
            },
            Notice::SlotYielded {
                slot: slot("bob"),
                name: Some("Bob".into()),
                by: "Alice".into(),
            },
            Notice::InviteReissued {
                slot: slot("bob"),
                by: "Alice".into(),
            },
            Notice::Renamed {
                name: "new".into(),
                by: "Alice".into(),
            },
            Notice::AdminChanged {
                slot: slot("bob"),
                admin: true,
                by: "Alice".into(),
            },
            Notice::AdminChanged {
                slot: slot("bob"),
                admin: false,
                by: "Alice".into(),
            },
            Notice::Closed { by: "Alice".into() },
            Notice::BotAttached {
                slot: slot("referee"),
                name: "GuessBot".into(),
                language: "python".into(),
                code_hash: "sha256:00".into(),
                params_hash: "sha256:11".into(),
                seed_commitment: "sha256:22".into(),
            },
            Notice::BotError {
                slot: slot("referee"),
                kind: "threw".into(),
                message: odd.into(),
                line: Some(3),
                seq: Seq(7),
            },
            Notice::BotDisabled {
                slot: slot("referee"),
            },
            Notice::BotOutputCapped {
                slot: slot("referee"),
                seq: Seq(9),
                cap: "per_channel_minute".into(),
                limit_messages: 240,
                limit_bytes: 1 << 20,
                until_ms: Some(61_000),
                repeat: false,
            },
            Notice::BotOutputCapped {
                slot: slot("referee"),
                seq: Seq(10),
                cap: "per_message".into(),
                limit_messages: 8,
                limit_bytes: 1 << 16,
                until_ms: None,
                repeat: true,
            },
            Notice::BotRunEnded {
                slot: slot("referee"),
                reason: Some(odd.into()),
            },
            Notice::BotRunEnded {
                slot: slot("referee"),
                reason: None,
            },
            Notice::TimerFired {
                slot: slot("referee"),
                tag: odd.into(),
                set_by: Seq(7),
                due: Timestamp(1_700_000_030_000),
            },
            Notice::FetchAttested {
                slot: slot("referee"),
                tag: odd.into(),
                requested_by: Seq(11),
                attestation: Box::new(crate::attestation::Attestation {
                    url: format!("https://example.com/{odd}"),
                    fetched_at: Timestamp(1_700_000_040_000),
                    address: None,
                    tls: None,
                    status: None,
                    headers: Default::default(),
                    body: None,
                    error: Some(crate::attestation::FetchFailure {
                        code: crate::attestation::FetchFailureCode::AddressRefused,
                        message: "not a public address".into(),
                    }),
                }),
                witness: WitnessSignature {
                    key_id: "ed25519:0123456789abcdef".into(),
                    signature: "c2ln".into(),
                },
            },
            Notice::BotSeedRevealed {
                slot: slot("referee"),
                seed: "ab".repeat(32),
            },
        ]
    }

    #[test]
    fn every_notice_round_trips_through_its_stored_form() {
        for notice in every_notice() {
            let data = notice.encode();
            assert_eq!(data["v"], json!(NOTICE_VERSION), "{notice:?}");
            // Through the bytes the store keeps, not only the in-memory map.
            let stored = Value::Object(data).to_string();
            let Value::Object(read) = serde_json::from_str(&stored).expect("json") else {
                panic!("an object")
            };
            assert_eq!(Notice::decode(&read), Ok(notice.clone()));
        }
    }

    #[test]
    fn texts_quote_untrusted_words_on_one_line() {
        for notice in every_notice() {
            let text = notice.text(Timestamp(0));
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.contains('\u{202e}'), "{text}");
        }
    }

    #[test]
    fn the_vocabulary_is_stable() {
        // The names clients and bots match on; docs/events.md documents each. Renaming one
        // is a breaking change and must fail here.
        let names: Vec<String> = every_notice()
            .iter()
            .map(|notice| notice.encode()["event"].as_str().unwrap_or("").to_owned())
            .collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique,
            [
                "admin_changed",
                "bot_attached",
                "bot_disabled",
                "bot_error",
                "bot_output_capped",
                "bot_run_ended",
                "bot_seed_revealed",
                "closed",
                "created",
                "fetch_attested",
                "invite_reissued",
                "joined",
                "kicked",
                "left",
                "rejoined",
                "renamed",
                "slot_yielded",
                "timer_fired",
            ]
        );
        let docs = include_str!("../../../docs/events.md");
        for name in unique {
            assert!(
                docs.contains(&format!("`{name}`")),
                "docs/events.md does not document `{name}`"
            );
        }
    }

    #[test]
    fn notices_from_before_the_version_decode() {
        let legacy = json!({"event": "joined", "slot": "alice", "name": "Alice"});
        let Value::Object(legacy) = legacy else {
            unreachable!()
        };
        assert_eq!(
            Notice::decode(&legacy),
            Ok(Notice::Joined {
                slot: slot("alice"),
                name: "Alice".into()
            })
        );
        let attached = json!({"event": "bot_attached", "slot": "referee", "name": "GuessBot",
            "code_hash": "sha256:00", "params_hash": "sha256:11", "seed_commitment": "c"});
        let Value::Object(attached) = attached else {
            unreachable!()
        };
        assert!(matches!(
            Notice::decode(&attached),
            Ok(Notice::BotAttached { language, .. }) if language == "javascript"
        ));
    }

    #[test]
    fn what_is_not_a_notice_is_refused() {
        for bad in [
            json!({"event": "joined", "slot": "Not A Label", "name": "x"}),
            json!({"event": "teleported", "slot": "alice"}),
            json!({"event": "joined", "slot": "alice", "name": "x", "v": 2}),
            json!({"event": "joined", "slot": "alice", "name": "x", "v": "1"}),
            json!({"slot": "alice"}),
        ] {
            let Value::Object(bad) = bad else {
                unreachable!()
            };
            assert!(Notice::decode(&bad).is_err(), "{bad:?}");
        }
    }
}
