//! Helpers shared by the tests: a channel with three slots, events, and the health check every
//! hostile test ends with. Events run through the test binary's `runner`: in this thread here,
//! in a worker process in `crates/workers/tests/hostile.rs`.

use bots::{
    BotError, BotErrorKind, BotSeed, BotSource, Event, EventContext, Limits, Player, Reaction,
    SlotInfo,
};
use domain::{Body, ChannelId, Message, MessageKind, Seq, SlotKind, SlotLabel, Timestamp};

pub use crate::runner::run_event;

pub const NOW_MS: i64 = 1_700_000_000_000;

pub fn slot(label: &str) -> SlotLabel {
    SlotLabel::parse(label).expect("test labels are valid")
}

pub fn player(label: &str) -> Player {
    let mut name = label.to_owned();
    name[..1].make_ascii_uppercase();
    Player {
        slot: slot(label),
        name,
    }
}

/// A channel with a bot slot `referee`, player slots `alice`, `bob`, `carol` and a spectator
/// slot `watcher`; alice and bob are seated.
pub fn context() -> EventContext {
    let slot_info = |label: &str, kind, holder: Option<&str>| SlotInfo {
        slot: slot(label),
        kind,
        holder: holder.map(str::to_owned),
    };
    EventContext {
        channel_id: ChannelId::from_random([0xab; 12]),
        bot_slot: slot("referee"),
        event_seq: Seq(7),
        now: Timestamp(NOW_MS),
        slots: vec![
            slot_info("referee", SlotKind::Bot, None),
            slot_info("alice", SlotKind::Invite, Some("Alice")),
            slot_info("bob", SlotKind::Invite, Some("Bob")),
            slot_info("carol", SlotKind::Invite, None),
            slot_info("watcher", SlotKind::Spectator, None),
        ],
        players: vec![player("alice"), player("bob")],
        params: serde_json::json!({}),
        state: None,
        seed: BotSeed([5; 32]),
        reveal_private: true,
    }
}

pub fn source(code: &str) -> BotSource {
    BotSource::new("test.js", code).expect("test sources are small")
}

pub fn message(sender: &str, text: &str) -> Event {
    Event::Message(Message {
        seq: Seq(8),
        kind: MessageKind::User,
        sender: Some(slot(sender)),
        sender_name: player(sender).name,
        body: Body::new(Some(text.to_owned()), None).expect("test text is valid"),
        to: None,
        at: Timestamp(NOW_MS),
        hash: domain::ChainHash::genesis(),
        nonce: None,
    })
}

/// Default limits with a generous time budget, for tests of well-behaved code: a loaded test
/// machine must not turn a 2 ms event into a budget failure.
pub fn relaxed_limits() -> Limits {
    Limits {
        cpu: std::time::Duration::from_secs(2),
        ..Limits::default()
    }
}

/// Runs `code`'s `on_init` with relaxed limits: for every test whose expected outcome is not
/// the time budget, so that a slow or descheduled event cannot turn a success or an expected
/// `memory` into `cpu_budget`.
pub fn init(code: &str) -> Result<Reaction, BotError> {
    run_event(&source(code), &context(), &Event::Init, &relaxed_limits())
}

/// Runs `code`'s `on_init` under the default 50 ms budget: for tests of the budget itself
/// (an outcome of `cpu_budget`), which would otherwise spend 2 s of CPU each.
pub fn init_on_the_clock(code: &str) -> Result<Reaction, BotError> {
    run_event(&source(code), &context(), &Event::Init, &Limits::default())
}

/// Wraps a body of JavaScript as the `on_init` handler of a bot whose ctx is `ctx`.
pub fn on_init(body: &str) -> String {
    format!(
        "class Bot {{ constructor(ctx) {{ this.ctx = ctx; }} on_init() {{ const ctx = this.ctx; {body}\n}} }}"
    )
}

/// Asserts the event failed with `kind`, then that the process still runs bots normally.
#[track_caller]
pub fn assert_contained(result: Result<Reaction, BotError>, kind: BotErrorKind) -> BotError {
    let error = match result {
        Ok(reaction) => panic!("expected a {kind} error, got success: {reaction:?}"),
        Err(error) => error,
    };
    assert_eq!(error.kind, kind, "unexpected error: {error}");
    assert_healthy();
    error
}

/// A normal event right after an abusive one: the runtime is fresh and works.
#[track_caller]
pub fn assert_healthy() {
    let bot = source(&on_init(
        r#"ctx.post("still here"); ctx.set_state({ok: true});"#,
    ));
    let reaction =
        run_event(&bot, &context(), &Event::Init, &relaxed_limits()).expect("a plain bot runs");
    assert_eq!(reaction.posts.len(), 1);
    assert_eq!(reaction.posts[0].body.text.as_deref(), Some("still here"));
    assert_eq!(reaction.state, Some(serde_json::json!({"ok": true})));
}

pub fn texts(reaction: &Reaction) -> Vec<&str> {
    reaction
        .posts
        .iter()
        .map(|post| post.body.text.as_deref().unwrap_or(""))
        .collect()
}
