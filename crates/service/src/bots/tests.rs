//! Running bots over a real SQLite file: what bots may write, and that a closed channel stays
//! closed to them.

use domain::bot_output::{BotOutputLimits, Output};
use domain::{ErrorCode, Message, MessageKind};

use super::*;
use crate::service::{CreateRequest, ServiceSettings};
use crate::testing::{close, person, service_with, settled};

/// Posts `params.n` messages of `params.size` bytes on every user message.
const CHATTY_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; this.n = params.n; this.size = params.size; }
  on_message(msg) {
    if (msg.kind !== "user") { return; }
    for (let i = 0; i < this.n; i++) { this.ctx.post({ text: "x".repeat(this.size) }); }
  }
}
"#;

fn chatty(n: u32, size: u32) -> BotRequest {
    BotRequest {
        code: Some(CHATTY_BOT.into()),
        params: Some(json!({"n": n, "size": size})),
        ..BotRequest::default()
    }
}

pub(super) async fn everything(service: &Service, id: &ChannelId) -> Vec<Message> {
    let channel = service.inner.store.load_channel(id).await.expect("load");
    service
        .inner
        .store
        .messages(id, Audience::Everything, Seq(0), channel.last_seq, 10_000)
        .await
        .expect("messages")
}

fn event_of(message: &Message) -> Option<&str> {
    message.body.data.as_ref()?.get("event")?.as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_slots_per_channel_are_capped_unless_the_operator_raises_it() {
    let slots = |n: usize| -> Vec<String> {
        let mut slots: Vec<String> = (0..n).map(|i| format!("bot:ref{i}")).collect();
        slots.push("invite:alice".into());
        slots
    };
    let (service, _dir) = service_with(ServiceSettings::default()).await;
    let alice = person("alice");
    let refused = service
        .create_channel(&alice, CreateRequest::new("many", &slots(5)))
        .await
        .expect_err("five bot slots");
    assert_eq!(refused.code(), ErrorCode::LimitExceeded);
    assert!(refused.to_string().contains("--max-bot-slots"), "{refused}");
    assert!(
        service
            .create_channel(&alice, CreateRequest::new("four", &slots(4)))
            .await
            .is_ok()
    );

    let (raised, _dir) = service_with(ServiceSettings {
        max_bot_slots: 8,
        ..ServiceSettings::default()
    })
    .await;
    assert!(
        raised
            .create_channel(&alice, CreateRequest::new("eight", &slots(8)))
            .await
            .is_ok()
    );
}

/// The attack: several chatty bots in one channel answer every user message. What they write
/// stays within the per-message and per-minute caps, whatever the number of bots; a reply that
/// does not fit is dropped whole and the channel is told in full once (and in a short line
/// for each later drop, which replay needs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bot_output_is_capped_per_message_and_per_minute_across_bots() {
    let limits = BotOutputLimits {
        per_trigger: Output {
            messages: 10,
            bytes: 64 * 1024,
        },
        per_channel_minute: Output {
            messages: 25,
            bytes: 1024 * 1024,
        },
        per_owner_minute: Output {
            messages: 1000,
            bytes: 1024 * 1024,
        },
    };
    let (service, _dir) = service_with(ServiceSettings {
        bot_output: limits,
        ..ServiceSettings::default()
    })
    .await;
    let alice = person("alice");
    let slots: Vec<String> = ["bot:a", "bot:b", "bot:c", "bot:d", "invite:alice"]
        .map(String::from)
        .to_vec();
    let created = service
        .create_channel(&alice, CreateRequest::new("chatty", &slots))
        .await
        .expect("create");
    let id = created.channel.id.clone();
    for slot in ["a", "b", "c", "d"] {
        service
            .attach_bot(&alice, id.as_str(), Some(slot), chatty(4, 1000))
            .await
            .expect("attach");
    }
    settled(&service, &id).await;

    let mut triggers = Vec::new();
    for n in 0..4 {
        let posted = service
            .post_message(
                &alice,
                crate::PostRequest {
                    channel_id: id.to_string(),
                    text: Some(format!("go {n}")),
                    ..crate::PostRequest::default()
                },
            )
            .await
            .expect("post");
        triggers.push(posted.seq);
        settled(&service, &id).await;
    }

    let messages = everything(&service, &id).await;
    let bot_posts: Vec<&Message> = messages
        .iter()
        .filter(|message| message.kind == MessageKind::Bot)
        .collect();
    // Four bots × four posts would be 16 per message and 64 in all.
    for (index, trigger) in triggers.iter().enumerate() {
        let next = triggers.get(index + 1).copied().unwrap_or(Seq(i64::MAX));
        let replies = bot_posts
            .iter()
            .filter(|message| message.seq > *trigger && message.seq < next)
            .count();
        assert!(replies <= 10, "{replies} bot posts in reply to one message");
        assert_eq!(replies % 4, 0, "a reply is stored whole or not at all");
    }
    assert!(
        bot_posts.len() <= 25,
        "{} bot posts in a minute",
        bot_posts.len()
    );
    assert_eq!(
        bot_posts.len(),
        24,
        "two whole replies per message, then the minute cap"
    );

    let every_drop: Vec<&Message> = messages
        .iter()
        .filter(|message| event_of(message) == Some("bot_output_capped"))
        .collect();
    assert_eq!(
        every_drop.len(),
        16 - 6,
        "every dropped reply is in the transcript, so a replay drops it too"
    );
    let notices: Vec<&&Message> = every_drop
        .iter()
        .filter(|message| {
            message
                .body
                .data
                .as_ref()
                .is_some_and(|data| !data.contains_key("repeat"))
        })
        .collect();
    let caps: Vec<(&str, i64)> = notices
        .iter()
        .map(|notice| {
            let data = notice.body.data.as_ref().expect("data");
            (
                data["cap"].as_str().expect("cap"),
                data["seq"].as_i64().expect("seq"),
            )
        })
        .collect();
    assert_eq!(
        caps,
        [
            ("per_message", triggers[0].0),
            ("per_message", triggers[1].0),
            ("per_message", triggers[2].0),
            ("per_channel_minute", triggers[3].0),
        ],
        "one notice per message, one per minute"
    );
    let text = notices[0].body.text.as_deref().expect("text");
    assert!(
        text.starts_with("BOT_OUTPUT_CAPPED in ") && text.contains("at most 10 messages"),
        "{text}"
    );
    // Capped bots are not failing bots.
    let bots = service.inner.store.bots_of(&id).await.expect("bots");
    assert!(bots.iter().all(|bot| bot.failures == 0 && !bot.disabled));
}

/// A channel whose bot has one event queued and not started: the channel's bot task is held
/// (as if busy elsewhere), so a post only queues. Returns the channel id, the channel with the
/// post, and the bot's record as the event will find it.
pub(super) async fn queued_event(
    service: &Service,
    owner: &crate::Caller,
    request: BotRequest,
) -> (ChannelId, Channel, BotRecord) {
    let created = service
        .create_channel(
            owner,
            CreateRequest::new("queued", &["invite:alice".into(), "invite:bob".into()])
                .with_bot(request),
        )
        .await
        .expect("create");
    let id = created.channel.id.clone();
    settled(service, &id).await;
    service.inner.bots.busy().insert(id.clone(), false);
    service
        .post_message(
            owner,
            crate::PostRequest {
                channel_id: id.to_string(),
                text: Some("go".into()),
                ..crate::PostRequest::default()
            },
        )
        .await
        .expect("post");
    let channel = service.inner.store.load_channel(&id).await.expect("load");
    let bot = service
        .inner
        .store
        .bots_of(&id)
        .await
        .expect("bots")
        .remove(0);
    (id, channel, bot)
}

/// A bot event in flight when the channel closes: its outcome (posts, or the error recording
/// that they were refused) must not land after the close notice. Driven step by step, so the
/// race is not left to timing: the event is computed on the channel as it was before the close
/// and stored after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_event_in_flight_at_close_appends_nothing_after_the_close() {
    const THROWING_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; }
  on_message(msg) { if (msg.kind === "user") { throw new Error("late\n\nSYSTEM: x"); } }
}
"#;
    for code in [CHATTY_BOT, THROWING_BOT] {
        let (service, _dir) = service_with(ServiceSettings::default()).await;
        let alice = person("alice");
        let request = BotRequest {
            code: Some(code.into()),
            params: Some(json!({"n": 1, "size": 10})),
            ..BotRequest::default()
        };
        let (id, before_close, bot) = queued_event(&service, &alice, request).await;

        close(&service, &alice, &id).await;
        service
            .next_bot_event(&before_close, bot, &mut None)
            .await
            .expect("the event's outcome is handled");

        let messages = everything(&service, &id).await;
        let close_at = messages
            .iter()
            .position(|message| event_of(message) == Some("closed"))
            .expect("close notice");
        let after: Vec<_> = messages[close_at + 1..].iter().map(event_of).collect();
        assert_eq!(after, [Some("bot_seed_revealed")], "after the close");
    }
}

/// Workers that shut down mid-way are no verdict on the bot: the event stays pending, with no
/// failure counted, for the next start to run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_workers_could_not_run_is_not_the_bots_failure() {
    let (service, _dir) = service_with(ServiceSettings::default()).await;
    let alice = person("alice");
    let (id, channel, bot) = queued_event(&service, &alice, chatty(1, 10)).await;
    service.inner.bots.shutdown();
    let error = service
        .next_bot_event(&channel, bot, &mut None)
        .await
        .expect_err("no worker ran it");
    assert_eq!(error.code(), ErrorCode::Internal);
    let bot = service
        .inner
        .store
        .bots_of(&id)
        .await
        .expect("bots")
        .remove(0);
    assert_eq!(bot.failures, 0);
    assert!(
        bot.processed_seq < channel.last_seq,
        "the event is still pending"
    );
}

/// Ends its run when told "stop"; until then it answers every message.
const ENDING_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; }
  on_message(msg) {
    this.ctx.post({ text: "heard " + msg.body.text });
    if (msg.body.text === "stop") { this.ctx.end("game over"); }
  }
}
"#;

pub(super) async fn post(
    service: &Service,
    who: &crate::Caller,
    id: &ChannelId,
    text: &str,
) -> Seq {
    service
        .post_message(
            who,
            crate::PostRequest {
                channel_id: id.to_string(),
                text: Some(text.into()),
                ..crate::PostRequest::default()
            },
        )
        .await
        .expect("post")
        .seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_that_ends_its_run_reveals_its_seed_at_once_and_hears_nothing_more() {
    let (service, _dir) = service_with(ServiceSettings::default()).await;
    let alice = person("alice");
    let created = service
        .create_channel(
            &alice,
            CreateRequest::new("ending", &["invite:alice".into()]).with_bot(BotRequest {
                code: Some(ENDING_BOT.into()),
                ..BotRequest::default()
            }),
        )
        .await
        .expect("create");
    let id = created.channel.id.clone();
    for text in ["a", "stop", "b"] {
        post(&service, &alice, &id, text).await;
        settled(&service, &id).await;
    }
    let messages = everything(&service, &id).await;
    let bot_texts: Vec<&str> = messages
        .iter()
        .filter(|message| message.kind == MessageKind::Bot)
        .filter_map(|message| message.body.text.as_deref())
        .collect();
    assert_eq!(
        bot_texts,
        ["heard a", "heard stop"],
        "the reply to the end is kept, nothing after"
    );
    let events: Vec<&str> = messages.iter().filter_map(event_of).collect();
    let ended = events
        .iter()
        .position(|event| *event == "bot_run_ended")
        .expect("ended");
    assert_eq!(events[ended + 1], "bot_seed_revealed");
    let bot = service
        .inner
        .store
        .bots_of(&id)
        .await
        .expect("bots")
        .remove(0);
    assert!(bot.ended && !bot.disabled);
    let revealed = messages
        .iter()
        .find(|message| event_of(message) == Some("bot_seed_revealed"))
        .and_then(|message| message.body.data.as_ref()?.get("seed")?.as_str())
        .expect("seed");
    assert_eq!(revealed, bot.seed);
    assert_eq!(
        bots::commitment(id.as_str(), bot.slot.as_str(), revealed, b""),
        bot.seed_commitment
    );
    let card = service
        .inner
        .store
        .load_channel(&id)
        .await
        .expect("load")
        .slots
        .into_iter()
        .find_map(|slot| slot.bot)
        .expect("card");
    assert!(card.ended);

    close(&service, &alice, &id).await;
    let reveals = everything(&service, &id)
        .await
        .iter()
        .filter(|message| event_of(message) == Some("bot_seed_revealed"))
        .count();
    assert_eq!(
        reveals, 1,
        "closing does not reveal an ended bot's seed again"
    );
}

/// Posts the players it is shown, as data.
const ROSTER_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; }
  on_message(msg) {
    this.ctx.post({ data: { players: this.ctx.players().map((p) => p.slot),
                            holders: this.ctx.slots().map((s) => s.holder) } });
  }
}
"#;

/// The roster a bot sees is the transcript's at the event, not the channel's when the event
/// happens to run: here the event runs after its sender left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_sees_the_roster_as_of_its_event_whenever_the_event_runs() {
    let (service, _dir) = service_with(ServiceSettings::default()).await;
    let alice = person("alice");
    let request = BotRequest {
        code: Some(ROSTER_BOT.into()),
        ..BotRequest::default()
    };
    let (id, _, bot) = queued_event(&service, &alice, request).await;
    service
        .leave_channel(&alice, id.as_str(), None)
        .await
        .expect("alice leaves");
    let now = service.inner.store.load_channel(&id).await.expect("load");
    assert!(now.slots.iter().all(|slot| slot.seat.is_none()));
    service
        .next_bot_event(&now, bot, &mut None)
        .await
        .expect("the event runs");
    let reply = everything(&service, &id)
        .await
        .into_iter()
        .find(|message| message.kind == MessageKind::Bot)
        .expect("the bot replied");
    let data = reply.body.data.expect("data");
    assert_eq!(data["players"], json!(["alice"]));
    let holders = data["holders"].as_array().expect("holders");
    assert!(holders.contains(&json!("alice")), "{holders:?}");
}
