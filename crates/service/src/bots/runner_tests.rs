//! The bot runner's rules, over a real SQLite file and real workers, each held by a test that
//! fails when the rule breaks: failures in a row disable a bot and a success starts the count
//! again; bots never hear bots; a bot replaced while its event runs loses that event's outcome;
//! a refused reaction leaves its record in the transcript and nothing else.

use domain::bot_output::{BotOutputLimits, Output};
use domain::{Message, MessageKind, Notice};

use super::tests::{everything, post, queued_event};
use super::*;
use crate::service::{CreateRequest, ServiceSettings};
use crate::testing::{person, service_with, settled};

fn inline_bot(code: &str, params: Value) -> BotRequest {
    BotRequest {
        code: Some(code.into()),
        params: Some(params),
        ..BotRequest::default()
    }
}

/// A channel where alice holds a seat and `bot` holds the bot slot, its `on_init` done.
async fn channel_with_bot(service: &Service, owner: &Caller, bot: BotRequest) -> ChannelId {
    let created = service
        .create_channel(
            owner,
            CreateRequest::new("runner", &["invite:alice".into()]).with_bot(bot),
        )
        .await
        .expect("create");
    let id = created.channel.id.clone();
    settled(service, &id).await;
    id
}

/// `who` posts `text`, and the channel's bots handle it.
async fn post_and_settle(service: &Service, who: &Caller, id: &ChannelId, text: &str) -> Seq {
    let seq = post(service, who, id, text).await;
    settled(service, id).await;
    seq
}

/// The channel's one bot, as stored.
async fn the_bot(service: &Service, id: &ChannelId) -> BotRecord {
    let mut bots = service.inner.store.bots_of(id).await.expect("bots");
    assert_eq!(bots.len(), 1, "one bot in the channel");
    bots.remove(0)
}

fn bot_texts(messages: &[Message]) -> Vec<&str> {
    messages
        .iter()
        .filter(|message| message.kind == MessageKind::Bot)
        .filter_map(|message| message.body.text.as_deref())
        .collect()
}

fn notices(messages: &[Message]) -> Vec<Notice> {
    messages
        .iter()
        .filter_map(|message| message.notice()?.ok())
        .collect()
}

/// Every message after `seq`.
fn after(messages: Vec<Message>, seq: Seq) -> Vec<Message> {
    messages
        .into_iter()
        .filter(|message| message.seq > seq)
        .collect()
}

/// Throws on "fail", answers anything else.
const MOODY_BOT: &str = r#"
class Bot {
  constructor(ctx) { this.ctx = ctx; }
  on_message(msg) {
    if (msg.body.text === "fail") { throw new Error("told to fail"); }
    this.ctx.post("ok " + msg.body.text);
  }
}
"#;

/// The count is of failures in a row: fail, succeed, fail, fail leaves the bot running; the
/// third in a row disables it (the positive control), and a disabled bot hears nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_restarts_the_count_of_failures_and_three_in_a_row_disable_the_bot() {
    let (service, _dir) = service_with(ServiceSettings::default()).await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, inline_bot(MOODY_BOT, json!({}))).await;

    for text in ["fail", "fine", "fail", "fail"] {
        post_and_settle(&service, &alice, &id, text).await;
    }
    let bot = the_bot(&service, &id).await;
    assert_eq!(
        (bot.failures, bot.disabled),
        (2, false),
        "the success between the failures started the count again"
    );

    let third = post_and_settle(&service, &alice, &id, "fail").await;
    let bot = the_bot(&service, &id).await;
    assert_eq!((bot.failures, bot.disabled), (MAX_BOT_FAILURES, true));
    post_and_settle(&service, &alice, &id, "fine again").await;

    let messages = everything(&service, &id).await;
    assert_eq!(
        bot_texts(&messages),
        ["ok fine"],
        "nothing after the disable"
    );
    let failed: Vec<Seq> = notices(&messages)
        .into_iter()
        .filter_map(|notice| match notice {
            Notice::BotError { seq, .. } => Some(seq),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 4, "each failure is recorded: {failed:?}");
    let disabled: Vec<Notice> = notices(&after(messages, third))
        .into_iter()
        .filter(|notice| matches!(notice, Notice::BotDisabled { .. }))
        .collect();
    assert_eq!(
        disabled.len(),
        1,
        "one disable, with the third failure in a row"
    );
}

/// Answers every message it is given, bots' posts included if it were given them: two of these
/// in one channel would answer each other without end.
const ECHO_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; this.name = params.name; }
  on_message(msg) { this.ctx.post(this.name + " heard " + msg.body.text); }
}
"#;

/// Bots hear people, never bots (themselves included): one user message gets one answer from
/// each bot, and the bots' answers are passed over, not answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_do_not_hear_bots_not_even_themselves() {
    // Small caps, so that bots answering bots would stop soon and fail the count below rather
    // than run for a minute.
    let limits = BotOutputLimits {
        per_channel_minute: Output {
            messages: 20,
            bytes: 64 * 1024,
        },
        ..BotOutputLimits::default()
    };
    let (service, _dir) = service_with(ServiceSettings {
        bot_output: limits,
        ..ServiceSettings::default()
    })
    .await;
    let alice = person("alice");
    let slots: Vec<String> = ["bot:a", "bot:b", "invite:alice"]
        .map(String::from)
        .to_vec();
    let id = service
        .create_channel(&alice, CreateRequest::new("two bots", &slots))
        .await
        .expect("create")
        .channel
        .id;
    for name in ["a", "b"] {
        service
            .attach_bot(
                &alice,
                id.as_str(),
                Some(name),
                inline_bot(ECHO_BOT, json!({ "name": name })),
            )
            .await
            .expect("attach");
    }
    settled(&service, &id).await;

    post_and_settle(&service, &alice, &id, "hello").await;

    let messages = everything(&service, &id).await;
    let mut answers = bot_texts(&messages);
    answers.sort_unstable();
    assert_eq!(answers, ["a heard hello", "b heard hello"]);
    let last = messages.last().expect("messages").seq;
    for bot in service.inner.store.bots_of(&id).await.expect("bots") {
        assert_eq!(
            (bot.processed_seq, bot.failures),
            (last, 0),
            "{} passed over the bots' posts",
            bot.slot
        );
    }
}

/// Sets its state and answers each user message as `params.name`; throws instead when
/// `params.throws`.
const NAMED_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; this.params = params; }
  on_message(msg) {
    if (msg.kind !== "user") { return; }
    if (this.params.throws) { throw new Error(this.params.name + " failed on " + msg.body.text); }
    this.ctx.set_state({ by: this.params.name, heard: msg.body.text });
    this.ctx.post(this.params.name + " heard " + msg.body.text);
  }
}
"#;

/// A bot replaced while its event runs: the event's outcome, a reaction or a failure, belongs
/// to the bot that is gone, so none of it is stored, and none of it lands on the new bot (its
/// posts, its state, its failures or its place in the channel). The new bot starts with its
/// own `on_init` and hears what follows. Driven step by step: the old bot's event is computed
/// before the replacement and stored after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_replaced_while_its_event_runs_loses_that_events_outcome() {
    for throws in [false, true] {
        let (service, _dir) = service_with(ServiceSettings::default()).await;
        let alice = person("alice");
        let old = inline_bot(NAMED_BOT, json!({ "name": "old", "throws": throws }));
        let (id, before_replacement, old_bot) = queued_event(&service, &alice, old).await;

        service
            .attach_bot(
                &alice,
                id.as_str(),
                None,
                inline_bot(NAMED_BOT, json!({ "name": "new", "throws": false })),
            )
            .await
            .expect("replace");
        let attached = the_bot(&service, &id).await;
        service
            .next_bot_event(&before_replacement, old_bot, &mut None)
            .await
            .expect("the old bot's outcome is handled");

        let bot = the_bot(&service, &id).await;
        assert_eq!(bot.params["name"], "new");
        assert_eq!(
            (bot.processed_seq, bot.state.clone(), bot.failures),
            (attached.processed_seq, None, 0),
            "the new bot is as attached (throws: {throws})"
        );
        let messages = everything(&service, &id).await;
        assert_eq!(bot_texts(&messages), Vec::<&str>::new(), "throws: {throws}");
        assert!(
            !notices(&messages)
                .iter()
                .any(|notice| matches!(notice, Notice::BotError { .. })),
            "no failure recorded for a bot that is gone (throws: {throws})"
        );

        // Let the channel's task run: the new bot gets its `on_init`, then what follows.
        service.inner.bots.busy().remove(&id);
        service.wake_bots(&id);
        settled(&service, &id).await;
        post_and_settle(&service, &alice, &id, "again").await;
        assert_eq!(
            bot_texts(&everything(&service, &id).await),
            ["new heard again"]
        );
        assert_eq!(
            the_bot(&service, &id).await.state,
            Some(json!({ "by": "new", "heard": "again" }))
        );
    }
}

/// Keeps a round in its state and ends its run on every message, after one answer; what else
/// it writes depends on the message: a private post to a slot that does not exist
/// ("whisper"), a body past the message caps ("shout"), or one answer too many for the
/// service's cap of one per message ("flood").
const OVERREACHING_BOT: &str = r#"
class Bot {
  constructor(ctx) { this.ctx = ctx; }
  on_init() { this.ctx.set_state({ round: 1 }); }
  on_message(msg) {
    const text = msg.body.text;
    this.ctx.set_state({ round: 2, after: text });
    this.ctx.post("answer to " + text);
    if (text === "whisper") { this.ctx.post_to("mallory", "psst"); }
    if (text === "shout") { this.ctx.post("x".repeat(20000)); }
    if (text === "flood") { this.ctx.post("one too many"); }
    this.ctx.end("done after " + text);
  }
}
"#;

/// A reaction refused, by the runtime's checks (a post to no such slot, a body past the caps)
/// or by the service's output cap, is dropped whole: its posts, its state and its end. The
/// transcript records the refusal and nothing else; a refusal by the runtime is the bot's
/// failure, the cap is not. The last message, whose reaction fits, is the positive control.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_reaction_leaves_only_its_record() {
    let limits = BotOutputLimits {
        per_trigger: Output {
            messages: 1,
            bytes: 64 * 1024,
        },
        ..BotOutputLimits::default()
    };
    let (service, _dir) = service_with(ServiceSettings {
        bot_output: limits,
        ..ServiceSettings::default()
    })
    .await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, inline_bot(OVERREACHING_BOT, json!({}))).await;
    let slot = the_bot(&service, &id).await.slot;

    for (text, failures) in [("whisper", 1), ("shout", 2)] {
        let trigger = post_and_settle(&service, &alice, &id, text).await;
        let recorded = notices(&after(everything(&service, &id).await, trigger));
        assert!(
            matches!(
                recorded.as_slice(),
                [Notice::BotError { slot: failed, kind, seq, .. }]
                    if *failed == slot && kind == "bad_post" && *seq == trigger
            ),
            "{text}: {recorded:?}"
        );
        let bot = the_bot(&service, &id).await;
        assert_eq!(
            (bot.state, bot.ended, bot.failures),
            (Some(json!({ "round": 1 })), false, failures),
            "{text}"
        );
    }

    let trigger = post_and_settle(&service, &alice, &id, "flood").await;
    let recorded = after(everything(&service, &id).await, trigger);
    assert!(
        matches!(
            notices(&recorded).as_slice(),
            [Notice::BotOutputCapped { seq, cap, .. }] if *seq == trigger && cap == "per_message"
        ),
        "flood: {recorded:?}"
    );
    assert_eq!(recorded.len(), 1, "flood: nothing but the notice");
    let bot = the_bot(&service, &id).await;
    assert_eq!(
        (bot.state, bot.ended, bot.failures),
        (Some(json!({ "round": 1 })), false, 2),
        "flood: over the cap is not the bot's failure"
    );

    let trigger = post_and_settle(&service, &alice, &id, "calm").await;
    let recorded = after(everything(&service, &id).await, trigger);
    assert_eq!(bot_texts(&recorded), ["answer to calm"]);
    assert!(
        notices(&recorded)
            .iter()
            .any(|notice| matches!(notice, Notice::BotRunEnded { .. })),
        "calm: {recorded:?}"
    );
    let bot = the_bot(&service, &id).await;
    assert_eq!(
        (bot.state, bot.ended, bot.failures),
        (Some(json!({ "round": 2, "after": "calm" })), true, 0)
    );
    assert_eq!(
        bot_texts(&everything(&service, &id).await),
        ["answer to calm"],
        "no refused reaction left a post"
    );
}
