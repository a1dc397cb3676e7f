//! Bot timers over a real SQLite file and real workers, with a clock the tests move: a timer
//! fires when due and not before, once, replaced by its tag, with its bot's `on_timer`; it
//! survives a restart; it dies with its channel; too many pending fail the event; and a channel
//! with timers exports a transcript whose replay agrees.

use std::sync::Arc;

use domain::{ChannelId, MessageKind, Notice};

use store::testing::TestDatabase;

use crate::Service;
use crate::service::ServiceSettings;
use crate::testing::{
    ManualClock, alice_says, channel_with_bot, close, history, person, service_in, settled,
};

const START: i64 = 1_750_000_000_000;

/// Sets the timer "turn" for 1 s at init and again on "reset"; "cancel" cancels it, "flood"
/// asks for more timers than a bot may have. Each firing posts "tick <tag> <now>".
const CLOCK_BOT: &str = r#"
class Bot {
  constructor(ctx) { this.ctx = ctx; }
  on_init() { this.ctx.set_timer(1000, "turn"); }
  on_message(msg) {
    const text = msg.body.text;
    if (text === "reset") this.ctx.set_timer(1000, "turn");
    if (text === "cancel") this.ctx.cancel_timer("turn");
    if (text === "flood") for (let i = 0; i < 17; i++) this.ctx.set_timer(5000, "t" + i);
  }
  on_timer(tag) { this.ctx.post("tick " + tag + " " + this.ctx.now()); }
}
"#;

async fn clocked() -> (Service, ManualClock, TestDatabase) {
    let database = TestDatabase::for_suite().await;
    let clock = ManualClock::at(START);
    let service = service_in(
        &database,
        ServiceSettings::default(),
        Arc::new(clock.clone()),
    )
    .await;
    (service, clock, database)
}

/// The channel's `timer_fired` notices as (tag, set_by, due, fired at).
async fn fired(service: &Service, id: &ChannelId) -> Vec<(String, i64, i64, i64)> {
    history(service, id)
        .await
        .iter()
        .filter_map(|message| match message.notice()?.ok()? {
            Notice::TimerFired {
                tag, set_by, due, ..
            } => Some((tag, set_by.0, due.0, message.at.0)),
            _ => None,
        })
        .collect()
}

async fn ticks(service: &Service, id: &ChannelId) -> Vec<String> {
    history(service, id)
        .await
        .iter()
        .filter(|message| message.kind == MessageKind::Bot)
        .filter_map(|message| message.body.text.clone())
        .filter(|text| text.starts_with("tick"))
        .collect()
}

/// Runs the timer clock's round now and lets the bots handle what fired.
async fn tick(service: &Service, id: &ChannelId) {
    service.fire_due_timers().await.expect("fire");
    settled(service, id).await;
}

#[tokio::test]
async fn a_timer_fires_when_due_once_and_wakes_its_bot() {
    let (service, clock, _dir) = clocked().await;
    let id = channel_with_bot(&service, &person("alice"), "clock", CLOCK_BOT).await;
    clock.advance(999);
    tick(&service, &id).await;
    assert!(
        fired(&service, &id).await.is_empty(),
        "not before it is due"
    );
    clock.advance(1);
    tick(&service, &id).await;
    tick(&service, &id).await;
    let fired = fired(&service, &id).await;
    assert_eq!(fired.len(), 1, "once: {fired:?}");
    let (tag, _, due, at) = &fired[0];
    assert_eq!(
        (tag.as_str(), *due, *at),
        ("turn", START + 1000, START + 1000)
    );
    assert_eq!(
        ticks(&service, &id).await,
        [format!("tick turn {}", START + 1000)],
        "on_timer ran at the notice's time"
    );
}

#[tokio::test]
async fn setting_a_tag_again_replaces_the_timer_and_a_cancel_removes_it() {
    let (service, clock, _dir) = clocked().await;
    let id = channel_with_bot(&service, &person("alice"), "clock", CLOCK_BOT).await;
    clock.advance(600);
    alice_says(&service, &id, "reset").await;
    clock.advance(600);
    tick(&service, &id).await;
    assert!(
        fired(&service, &id).await.is_empty(),
        "the first due time was replaced"
    );
    clock.advance(400);
    tick(&service, &id).await;
    assert_eq!(fired(&service, &id).await.len(), 1);
    alice_says(&service, &id, "reset").await;
    alice_says(&service, &id, "cancel").await;
    clock.advance(5_000);
    tick(&service, &id).await;
    assert_eq!(
        fired(&service, &id).await.len(),
        1,
        "the cancelled timer never fires"
    );
}

#[tokio::test]
async fn a_timer_due_while_the_server_was_down_fires_once_after_the_restart() {
    let (service, clock, database) = clocked().await;
    let id = channel_with_bot(&service, &person("alice"), "clock", CLOCK_BOT).await;
    // Down: no clock round ran, and the service goes away without a shutdown.
    drop(service);
    clock.advance(60_000);
    // The old store lets go of the file once its last handle is gone: at once, since no
    // background task may keep a dropped service alive. The deadline turns a regression into
    // a failure rather than a hang.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let restarted = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped service still holds its store"
        );
        match store::Store::open(&database.url(), store::StoreSettings::default()).await {
            Ok(probe) => {
                drop(probe);
                break service_in(
                    &database,
                    ServiceSettings::default(),
                    Arc::new(clock.clone()),
                )
                .await;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    };
    tick(&restarted, &id).await;
    tick(&restarted, &id).await;
    let fired = fired(&restarted, &id).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].3, START + 60_000, "fired late, at the restart");
    assert_eq!(ticks(&restarted, &id).await.len(), 1);
}

#[tokio::test]
async fn a_timer_dies_with_its_channel() {
    let (service, clock, _dir) = clocked().await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "clock", CLOCK_BOT).await;
    close(&service, &alice, &id).await;
    clock.advance(5_000);
    // A closed channel's bots take no events, so there is nothing to settle.
    service.fire_due_timers().await.expect("fire");
    assert!(fired(&service, &id).await.is_empty());
    assert!(
        service
            .inner
            .store
            .next_timers(10)
            .await
            .expect("timers")
            .is_empty(),
        "a timer that can never fire is forgotten"
    );
}

#[tokio::test]
async fn an_event_that_would_leave_too_many_timers_fails_whole() {
    let (service, _clock, _dir) = clocked().await;
    let id = channel_with_bot(&service, &person("alice"), "clock", CLOCK_BOT).await;
    alice_says(&service, &id, "flood").await;
    let failure =
        history(&service, &id)
            .await
            .iter()
            .find_map(|message| match message.notice()?.ok()? {
                Notice::BotError { kind, .. } => Some(kind),
                _ => None,
            });
    assert_eq!(failure.as_deref(), Some("bad_argument"));
    let slot = domain::SlotLabel::parse("referee").expect("label");
    let pending = service
        .inner
        .store
        .timers_of(&id, &slot)
        .await
        .expect("timers");
    assert_eq!(
        pending.len(),
        1,
        "only the init's timer: the failed event set none"
    );
}

#[tokio::test]
async fn a_channel_with_timers_exports_a_transcript_that_verifies() {
    let (service, clock, _dir) = clocked().await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "clock", CLOCK_BOT).await;
    clock.advance(1_500);
    tick(&service, &id).await;
    alice_says(&service, &id, "reset").await;
    clock.advance(2_000);
    tick(&service, &id).await;
    close(&service, &alice, &id).await;
    assert_eq!(ticks(&service, &id).await.len(), 2);
    let export = crate::export_everything(service.store(), id.as_str(), service.now())
        .await
        .expect("export");
    let replays = crate::export::tests::verified(&service, &export)
        .await
        .expect("the transcript verifies");
    assert_eq!(replays.len(), 1);
    assert_eq!(
        replays[0].end,
        transcript::ReplayEnd::Complete,
        "{replays:?}"
    );
    assert!(
        replays[0].events >= 4,
        "init, two timers and a message: {replays:?}"
    );
}

/// A server that signs its own history can still not fake the clock: a timer fired before it
/// was due, fired with other terms than the bot set, or fired without being set is refused at
/// the notice, by the replay.
#[tokio::test]
async fn a_timer_the_server_fakes_is_caught_by_the_replay() {
    let (service, clock, _dir) = clocked().await;
    let alice = person("alice");
    let id = channel_with_bot(&service, &alice, "clock", CLOCK_BOT).await;
    clock.advance(1_500);
    tick(&service, &id).await;
    close(&service, &alice, &id).await;
    let honest = crate::export_everything(service.store(), id.as_str(), service.now())
        .await
        .expect("export");
    let fired_at = honest
        .messages
        .iter()
        .position(|message| {
            message
                .message()
                .ok()
                .flatten()
                .and_then(|message| message.notice()?.ok())
                .is_some_and(|notice| matches!(notice, Notice::TimerFired { .. }))
        })
        .expect("a timer_fired notice");

    type Lie = fn(&mut Notice, &mut domain::Timestamp);
    let lies: [(&str, Lie); 4] = [
        ("early", |_, at| at.0 = START + 999),
        ("another due time", |notice, _| {
            if let Notice::TimerFired { due, .. } = notice {
                due.0 = START + 1_400;
            }
        }),
        ("set by another event", |notice, _| {
            if let Notice::TimerFired { set_by, .. } = notice {
                set_by.0 += 1;
            }
        }),
        ("never set", |notice, _| {
            if let Notice::TimerFired { tag, .. } = notice {
                *tag = "bonus".into();
            }
        }),
    ];
    for (lie, change) in lies {
        let mut forged = honest.clone();
        let mut message = forged.messages[fired_at]
            .message()
            .expect("decodes")
            .expect("readable");
        let mut notice = message.notice().expect("a notice").expect("decodes");
        change(&mut notice, &mut message.at);
        message.body = notice.body(message.at);
        forged.messages[fired_at] = transcript::export::ExportedMessage::readable(&message);
        crate::export::tests::resign(&service, &mut forged).await;
        transcript::check(&forged, &[]).expect("the forger's chain and signature hold");
        let divergence = crate::export::tests::verified(&service, &forged)
            .await
            .expect_err(lie);
        assert_eq!(divergence.seq, Some(message.seq.0), "{lie}: {divergence}");
        assert!(divergence.what.contains("timer"), "{lie}: {divergence}");
    }
}
