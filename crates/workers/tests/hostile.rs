//! The bots crate's hostile suite, unchanged, through confined worker processes: every abuse
//! ends the same way when its event runs in a worker, and the next event still runs.

/// The server's allocator: a test binary acting as a worker should allocate as the server does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[allow(dead_code)]
#[path = "../../bots/tests/it/support.rs"]
mod support;

#[path = "../../bots/tests/it/hostile.rs"]
mod hostile;

#[test]
fn bot_worker() {
    workers::testing::serve_if_worker();
}

/// How events run in this binary: as jobs on a pool of two workers, shared by every test.
mod runner {
    use std::sync::OnceLock;

    use bots::{BotError, BotSource, Event, EventContext, Job, Limits, Reaction};
    use workers::{Account, Pool, PoolConfig, Watchdog};

    struct Shared {
        runtime: tokio::runtime::Runtime,
        pool: Pool,
    }

    fn shared() -> &'static Shared {
        static SHARED: OnceLock<Shared> = OnceLock::new();
        SHARED.get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let pool = runtime
                .block_on(Pool::start(PoolConfig {
                    size: 2,
                    command: workers::testing::worker_command("bot_worker"),
                    watchdog: Watchdog::default(),
                }))
                .expect("workers start");
            Shared { runtime, pool }
        })
    }

    pub fn run_event(
        bot: &BotSource,
        context: &EventContext,
        event: &Event,
        limits: &Limits,
    ) -> Result<Reaction, BotError> {
        let shared = shared();
        let job = Job::event(bot.clone(), context.clone(), event, limits.clone());
        let account = Account {
            principal: "hostile".to_owned(),
            channel: context.channel_id.as_str().to_owned(),
        };
        shared
            .runtime
            .block_on(shared.pool.run(account, job))
            .expect("the pool stays open")
    }
}
