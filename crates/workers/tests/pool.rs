//! The pool with real worker processes (this test binary, re-run as a worker): native loops
//! killed at their budget while other principals are served, the confinement of a worker
//! checked one forbidden act at a time, replacements, and shutdown.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use bots::sandbox::placeholder_context;
use bots::{BotErrorKind, BotSource, Event, Job, Limits, Reaction};
use workers::testing::{PROBES, WORKER_VARIABLE, serve_if_worker, worker_command};
use workers::{Account, Pool, PoolConfig, PoolError, Watchdog};

/// The server's allocator: a test binary acting as a worker should allocate as the server does.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[test]
fn bot_worker() {
    serve_if_worker();
}

async fn pool(size: usize) -> Pool {
    Pool::start(PoolConfig {
        size,
        command: worker_command("bot_worker"),
        watchdog: Watchdog::default(),
    })
    .await
    .expect("workers start")
}

fn account(principal: &str) -> Account {
    Account {
        principal: principal.to_owned(),
        channel: format!("{principal}-channel"),
    }
}

/// A job that runs `body` as the bot's `on_init`.
fn init_job(body: &str, limits: Limits) -> Job {
    let code = format!(
        "class Bot {{ constructor(ctx) {{ this.ctx = ctx; }} on_init() {{ const ctx = this.ctx; {body}\n}} }}"
    );
    let bot = BotSource::new("test.js", code).expect("small");
    Job::event(bot, placeholder_context(), &Event::Init, limits)
}

fn echo_job() -> Job {
    init_job(r#"ctx.post("echo");"#, relaxed())
}

/// A budget no healthy event gets near, for jobs that must succeed on a loaded machine.
fn relaxed() -> Limits {
    Limits {
        cpu: Duration::from_secs(2),
        ..Limits::default()
    }
}

fn texts(reaction: &Reaction) -> Vec<String> {
    reaction
        .posts
        .iter()
        .filter_map(|post| post.body.text.clone())
        .collect()
}

/// Built-ins that loop in native code without ever reaching QuickJS's interrupt check.
const NATIVE_LOOPS: [(&str, &str); 6] = [
    (
        "reverse",
        "Array.prototype.reverse.call({length: 2**53 - 1});",
    ),
    ("join", "Array.prototype.join.call({length: 2**53 - 1});"),
    (
        "unshift",
        "Array.prototype.unshift.call({length: 2**53 - 2}, 1);",
    ),
    (
        "splice",
        "Array.prototype.splice.call({length: 2**53 - 1}, 0, 1);",
    ),
    (
        "copyWithin",
        "Array.prototype.copyWithin.call({length: 2**53 - 1}, 1, 0);",
    ),
    (
        "indexOf",
        "const hay = 'a'.repeat(1 << 22); hay.indexOf('a'.repeat(1 << 21) + 'b');",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_runs_in_a_worker_and_the_worker_is_reused() {
    let pool = pool(1).await;
    for _ in 0..3 {
        let reaction = pool
            .run(account("alice"), echo_job())
            .await
            .expect("the pool is open")
            .expect("the bot runs");
        assert_eq!(texts(&reaction), ["echo"]);
    }
    assert_eq!(pool.stats().started, 1, "one worker served every job");
    assert!(pool.cpu_of_principal("alice") > Duration::ZERO);
    assert_eq!(
        pool.cpu_of_principal("alice"),
        pool.cpu_of_channel("alice-channel")
    );
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_loops_end_at_the_budget_while_another_principal_is_served() {
    let pool = pool(2).await;
    let budget = Limits::default().cpu;
    for (name, code) in NATIVE_LOOPS {
        let started = Instant::now();
        let hostile = pool.run(account("mallory"), init_job(code, Limits::default()));
        let innocent = async {
            // While the loop holds one worker, the other keeps answering.
            let mut answered = 0;
            for _ in 0..3 {
                let reaction = pool
                    .run(account("alice"), echo_job())
                    .await
                    .expect("open")
                    .expect("echo runs");
                assert_eq!(texts(&reaction), ["echo"]);
                answered += 1;
            }
            answered
        };
        let (hostile, answered) = tokio::join!(hostile, innocent);
        let elapsed = started.elapsed();
        let error = hostile.expect("open").expect_err(name);
        assert_eq!(error.kind, BotErrorKind::CpuBudget, "{name}: {error}");
        assert_eq!(answered, 3);
        println!(
            "{name}: stopped after {} ms (budget {} ms)",
            elapsed.as_millis(),
            budget.as_millis()
        );
    }
    // Each kill started a replacement; the pool still runs jobs.
    let reaction = pool.run(account("alice"), echo_job()).await.expect("open");
    assert_eq!(texts(&reaction.expect("runs")), ["echo"]);
    let stats = pool.stats();
    assert!(stats.started + stats.starting as u64 >= 2 + NATIVE_LOOPS.len() as u64);
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_loop_at_the_top_level_fails_the_source_check() {
    let pool = pool(1).await;
    let bot = BotSource::new(
        "top.js",
        "Array.prototype.reverse.call({length: 2**53 - 1}); class Bot {}",
    )
    .expect("small");
    let error = pool
        .run(account("mallory"), Job::check(bot, Limits::default()))
        .await
        .expect("open")
        .expect_err("the check cannot pass");
    assert_eq!(error.kind, BotErrorKind::CpuBudget, "{error}");
    pool.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_a_running_event_at_once() {
    let pool = pool(1).await;
    let endless = Limits {
        cpu: Duration::from_secs(600),
        ..Limits::default()
    };
    let running = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.run(account("mallory"), init_job(NATIVE_LOOPS[0].1, endless))
                .await
        }
    });
    // Wait until the job is on the worker, not merely queued.
    while pool.stats().idle > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    pool.shutdown();
    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the job ends with the pool")
        .expect("no panic");
    assert_eq!(outcome, Err(PoolError::Closed));
    println!(
        "shutdown ended the event in {} ms",
        started.elapsed().as_millis()
    );
    let after = pool.run(account("alice"), echo_job()).await;
    assert_eq!(after, Err(PoolError::Closed));
}

/// Runs this binary as a probe and returns how it ended.
fn probe(value: &str) -> std::process::ExitStatus {
    let exe = std::env::current_exe().expect("path");
    std::process::Command::new(exe)
        .args([
            "bot_worker",
            "--exact",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env(WORKER_VARIABLE, value)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the probe runs")
}

#[test]
fn a_worker_can_open_no_file_socket_or_process_and_signal_no_one() {
    for name in PROBES {
        let control = probe(&format!("control:{name}"));
        assert_eq!(control.code(), Some(0), "{name} must work unconfined");
        let confined = probe(&format!("probe:{name}"));
        if ["memory", "open", "create"].contains(&name) {
            // Refused without a kill: the address-space cap fails the allocation, and paths
            // fail with EACCES.
            assert_eq!(confined.code(), Some(1), "{name}: {confined:?}");
        } else {
            assert_eq!(
                confined.signal(),
                Some(libc::SIGSYS),
                "{name} must be killed by seccomp: {confined:?}"
            );
        }
    }
}

#[test]
fn a_worker_runs_at_a_lower_priority() {
    let base = rustix::process::getpriority_process(None).expect("priority");
    let status = probe("nice");
    assert_eq!(status.code(), Some((base + 10).min(19)), "{status:?}");
}

fn python_init_job(body: &str, limits: Limits) -> Job {
    let indented: String = body
        .lines()
        .map(|line| format!("        {line}\n"))
        .collect();
    let code = format!(
        "class Bot:\n    def __init__(self, ctx, params):\n        self.ctx = ctx\n\n    def on_init(self):\n        ctx = self.ctx\n{indented}"
    );
    let bot = BotSource::with_language("test.py", code, bots::Language::Python).expect("small");
    Job::event(bot, placeholder_context(), &Event::Init, limits)
}

/// What Monty cannot stop in-process, stopped by the worker: a giant power (not interrupted),
/// a list grown without end (no allocator accounting), and each time the next Python event
/// runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_bots_run_in_workers_and_what_monty_cannot_stop_is_killed() {
    let pool = pool(2).await;
    let hello = python_init_job("ctx.post('hello from python')", relaxed());
    let reaction = pool
        .run(account("alice"), hello.clone())
        .await
        .expect("open")
        .expect("runs");
    assert_eq!(texts(&reaction), ["hello from python"]);
    let cases = [
        ("giant power", "x = 7 ** (10 ** 7)", Limits::default()),
        (
            "growing list",
            "keep = []\nwhile True:\n    keep.append('x' * 1000)",
            Limits {
                cpu: Duration::from_secs(5),
                ..Limits::default()
            },
        ),
    ];
    for (name, body, limits) in cases {
        let started = Instant::now();
        let error = pool
            .run(account("mallory"), python_init_job(body, limits))
            .await
            .expect("open")
            .expect_err(name);
        assert!(
            matches!(error.kind, BotErrorKind::CpuBudget | BotErrorKind::Memory),
            "{name}: {error}"
        );
        println!(
            "{name}: {} after {} ms",
            error.kind,
            started.elapsed().as_millis()
        );
        let reaction = pool
            .run(account("alice"), hello.clone())
            .await
            .expect("open")
            .expect("the next Python event runs");
        assert_eq!(texts(&reaction), ["hello from python"]);
    }
    pool.shutdown();
}
