//! What the service's tests share: a fixed clock, callers named after people, bot workers
//! (this test binary, re-run as one), a service over a real SQLite file, waiting for a
//! channel's bots to settle, a channel with a bot, a post, and closing a channel.

use std::sync::Arc;
use std::time::Duration;

use domain::{ChannelId, Principal, PrincipalId, Timestamp};
use store::testing::TestDatabase;
use tokio_util::sync::CancellationToken;

use crate::service::{AdminRequest, ServiceSettings};
use crate::{Caller, Clock, Service};

/// Always the same instant, so tests read no wall clock.
pub(crate) struct FixedClock;

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        Timestamp(1_750_000_000_000)
    }
}

/// A caller with full access, whose id is derived from `name`.
pub(crate) fn person(name: &str) -> Caller {
    Caller::writer(Principal {
        id: PrincipalId::new(format!("id-{name}")),
        display_name: name.into(),
    })
}

#[test]
fn bot_worker() {
    workers::testing::serve_if_worker();
}

/// A small pool of workers for a test's service.
pub(crate) async fn workers() -> workers::Pool {
    workers::Pool::start(workers::PoolConfig {
        size: 2,
        command: workers::testing::worker_command("testing::bot_worker"),
        watchdog: workers::Watchdog::default(),
    })
    .await
    .expect("bot workers start")
}

/// A service over a fresh database (SQLite, or PostgreSQL when the suite runs there: see
/// [`TestDatabase::for_suite`]), with `settings` but no rate limit, and a small worker pool.
pub(crate) async fn service_with(settings: ServiceSettings) -> (Service, TestDatabase) {
    let database = TestDatabase::for_suite().await;
    let service = service_in(&database, settings, Arc::new(FixedClock)).await;
    (service, database)
}

/// A service over `database`, reading time from `clock`, with `settings` but no rate limit. A
/// second one over the same database is a restart.
pub(crate) async fn service_in(
    database: &TestDatabase,
    settings: ServiceSettings,
    clock: Arc<dyn Clock>,
) -> Service {
    let store = database.open().await;
    let settings = ServiceSettings {
        rate_limit_per_second: 0,
        ..settings
    };
    Service::new(
        store,
        settings,
        clock,
        CancellationToken::new(),
        workers().await,
    )
}

/// A clock the test moves by hand.
#[derive(Clone)]
pub(crate) struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    pub(crate) fn at(ms: i64) -> Self {
        Self(Arc::new(std::sync::atomic::AtomicI64::new(ms)))
    }

    pub(crate) fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
    }
}

/// Waits until the channel's bot task has nothing left to do.
pub(crate) async fn settled(service: &Service, id: &ChannelId) {
    for _ in 0..5000 {
        let channel = service.inner.store.load_channel(id).await.expect("load");
        let bots = service.inner.store.bots_of(id).await.expect("bots");
        let behind = bots
            .iter()
            .any(|bot| !bot.disabled && !bot.ended && bot.processed_seq < channel.last_seq);
        if !behind && !service.inner.bots.busy().contains_key(id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the bots of {id} did not settle");
}

/// `owner` creates a channel named `name` with one invite seat (alice's) and a bot running
/// `code` in its referee slot, and waits for the bot's init.
pub(crate) async fn channel_with_bot(
    service: &Service,
    owner: &Caller,
    name: &str,
    code: &str,
) -> ChannelId {
    let bot = crate::bots::BotRequest {
        code: Some(code.into()),
        ..crate::bots::BotRequest::default()
    };
    let created = service
        .create_channel(
            owner,
            crate::service::CreateRequest::new(name, &["invite:alice".into()]).with_bot(bot),
        )
        .await
        .expect("create");
    settled(service, &created.channel.id).await;
    created.channel.id
}

/// Alice posts `text` and the channel's bots settle.
pub(crate) async fn alice_says(service: &Service, id: &ChannelId, text: &str) {
    service
        .post_message(
            &person("alice"),
            crate::service::PostRequest {
                channel_id: id.to_string(),
                text: Some(text.into()),
                ..crate::service::PostRequest::default()
            },
        )
        .await
        .expect("post");
    settled(service, id).await;
}

/// `who` closes the channel.
pub(crate) async fn close(service: &Service, who: &Caller, id: &ChannelId) {
    service
        .update_channel(
            who,
            AdminRequest {
                channel_id: id.to_string(),
                op: "close".into(),
                ..AdminRequest::default()
            },
        )
        .await
        .expect("close");
}

/// Waits until `who` has `count` syncs parked: the observable that a sync is waiting, instead
/// of a sleep that a slow machine outlasts.
pub(crate) async fn parked(service: &Service, who: &Caller, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while service.inner.admission.waiting_of(&who.principal.id) != count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} never had {count} syncs parked",
            who.principal.id
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Every message of the channel, as the operator sees it.
pub(crate) async fn history(service: &Service, id: &ChannelId) -> Vec<domain::Message> {
    service
        .inner
        .store
        .messages(
            id,
            store::Audience::Everything,
            domain::Seq(0),
            domain::Seq(i64::MAX),
            1_000,
        )
        .await
        .expect("history")
}
