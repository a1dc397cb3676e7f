//! What running bot code in worker processes costs, and what it protects: a GuessBot event
//! through a worker (IPC included) next to the runtime alone in this thread; how soon a
//! native loop is killed past its budget; and the fair share, as the latency of one principal's
//! echo bot while another principal floods the pool with busy bots, against the same echo
//! alone, in the same run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bots::sandbox::placeholder_context;
use bots::{BotErrorKind, BotSource, Event, Job, Limits};
use workers::{Account, Pool};

use crate::report::Row;
use crate::stats::{Latencies, ms};
use crate::{BenchError, Context};

const EVENTS: usize = 1000;
const KILLS: usize = 10;
const ECHOES: usize = 200;
/// The flood of the fair-share case: 31 channels of 4 busy bots, as seen in the wild.
const FLOOD_CHANNELS: usize = 31;
const FLOOD_BOTS_PER_CHANNEL: usize = 4;

fn account(principal: &str, channel: usize) -> Account {
    Account {
        principal: principal.to_owned(),
        channel: format!("{principal}-{channel}"),
    }
}

fn init_job(body: &str) -> Job {
    let code = format!(
        "class Bot {{ constructor(ctx) {{ this.ctx = ctx; }} on_init() {{ const ctx = this.ctx; {body} }} }}"
    );
    let bot = BotSource::new("bench.js", code).expect("small");
    Job::event(bot, placeholder_context(), &Event::Init, Limits::default())
}

pub(crate) async fn time_jobs(
    pool: &Pool,
    who: &Account,
    job: &Job,
    count: usize,
) -> Result<Latencies, BenchError> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let outcome = pool
            .run(who.clone(), job.clone())
            .await
            .map_err(|error| BenchError::Setup(error.to_string()))?;
        samples.push(started.elapsed());
        if let Err(error) = outcome {
            return Err(BenchError::Setup(format!("the job failed: {error}")));
        }
    }
    Latencies::of(samples).ok_or_else(|| BenchError::Setup("no samples".into()))
}

/// The same job run `count` times in a thread of this process: the runtime's own cost, to
/// compare with.
pub(crate) async fn time_in_thread(job: Job, count: usize) -> Result<Latencies, BenchError> {
    tokio::task::spawn_blocking(move || {
        let mut samples = Vec::with_capacity(count);
        for _ in 0..count {
            let started = Instant::now();
            let _ = job.run();
            samples.push(started.elapsed());
        }
        Latencies::of(samples)
    })
    .await
    .map_err(|error| BenchError::Setup(error.to_string()))?
    .ok_or_else(|| BenchError::Setup("no samples".into()))
}

fn row(scenario: &str, latencies: Latencies, note: String) -> Row {
    Row {
        scenario: scenario.into(),
        rate: None,
        latencies: Some(latencies),
        errors: 0,
        note,
    }
}

pub async fn worker_cost(context: &Context) -> Result<Vec<Row>, BenchError> {
    let pool = Pool::start(context.workers.clone())
        .await
        .map_err(|error| BenchError::Setup(format!("bot workers: {error}")))?;
    let outcome = measure(&pool).await;
    pool.shutdown();
    outcome
}

async fn measure(pool: &Pool) -> Result<Vec<Row>, BenchError> {
    let mut rows = Vec::new();
    println!();
    println!("== workers: a GuessBot event through a worker process ({EVENTS} events) ==");
    let guess = bots::bench::guess_move(bots::builtin("guess").expect("builtin"));
    let alone = time_in_thread(guess.clone(), EVENTS).await?;
    let through = time_jobs(pool, &account("alice", 0), &guess, EVENTS).await?;
    println!("  JavaScript, runtime alone:  {}", alone.brief());
    println!(
        "  JavaScript, via a worker:   {}  (IPC and scheduling add {} at p50; target p50 ≤ 1 ms)",
        through.brief(),
        ms(through.p50.saturating_sub(alone.p50))
    );
    rows.push(row(
        "GuessBot event via worker (JS)",
        through,
        format!("runtime alone p50 {}; target p50 ≤ 1 ms", ms(alone.p50)),
    ));

    let python = bots::bench::guess_move(
        BotSource::with_language(
            "guess.py",
            bots::bench::PYTHON_GUESS,
            bots::Language::Python,
        )
        .expect("small"),
    );
    let python_alone = time_in_thread(python.clone(), EVENTS).await?;
    let python_through = time_jobs(pool, &account("alice", 0), &python, EVENTS).await?;
    println!("  Python, runtime alone:      {}", python_alone.brief());
    println!(
        "  Python, through a worker:   {}  (target p50 ≤ 1 ms)",
        python_through.brief()
    );
    rows.push(row(
        "GuessBot event via worker (Python)",
        python_through,
        format!(
            "runtime alone p50 {}; target p50 ≤ 1 ms",
            ms(python_alone.p50)
        ),
    ));

    println!();
    println!("== workers: a native loop killed at its budget ({KILLS} kills) ==");
    let budget = Limits::default().cpu;
    let native = init_job("Array.prototype.reverse.call({length: 2**53 - 1});");
    let mut kills = Vec::with_capacity(KILLS);
    for _ in 0..KILLS {
        let started = Instant::now();
        let outcome = pool
            .run(account("mallory", 0), native.clone())
            .await
            .map_err(|error| BenchError::Setup(error.to_string()))?;
        kills.push(started.elapsed());
        match outcome {
            Err(error) if error.kind == BotErrorKind::CpuBudget => {}
            other => {
                return Err(BenchError::Setup(format!(
                    "the native loop was not stopped at its budget: {other:?}"
                )));
            }
        }
        // Let the replacement start, so the next kill is not measured behind it.
        while pool.stats().starting > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let kills = Latencies::of(kills).ok_or_else(|| BenchError::Setup("no samples".into()))?;
    println!(
        "  ended after {} (budget {}; target: within budget + 50 ms)",
        kills.brief(),
        ms(budget)
    );
    rows.push(row(
        "native loop killed",
        kills,
        format!("budget {}; target ≤ budget + 50 ms", ms(budget)),
    ));

    println!();
    println!(
        "== workers: fair share, an echo bot beside {FLOOD_CHANNELS} channels × {FLOOD_BOTS_PER_CHANNEL} busy bots of another principal =="
    );
    let echo = init_job("ctx.post('echo');");
    let quiet = time_jobs(pool, &account("alice", 1), &echo, ECHOES).await?;
    // Busy but within budget: each event computes for most of its 50 ms and succeeds.
    let busy = init_job("let x = 0; for (let i = 0; i < 1500000; i++) { x += i; }");
    let stop = Arc::new(AtomicBool::new(false));
    let mut flood = Vec::new();
    for channel in 0..FLOOD_CHANNELS * FLOOD_BOTS_PER_CHANNEL {
        let pool = pool.clone();
        let busy = busy.clone();
        let stop = stop.clone();
        flood.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if pool
                    .run(
                        account("mallory", channel / FLOOD_BOTS_PER_CHANNEL),
                        busy.clone(),
                    )
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }));
    }
    // Let the flood fill the queues before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let crowded = time_jobs(pool, &account("alice", 1), &echo, ECHOES).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        let _ = task.await;
    }
    let crowded = crowded?;
    let ratio = crowded.p50.as_secs_f64() / quiet.p50.as_secs_f64().max(1e-9);
    println!("  echo alone:        {}", quiet.brief());
    println!("  echo beside flood: {}", crowded.brief());
    println!("  p50 ratio {ratio:.2}x (target ≤ 2x)");
    rows.push(row(
        "echo beside another's busy bots",
        crowded,
        format!(
            "alone p50 {}; ratio {ratio:.2}x, target ≤ 2x",
            ms(quiet.p50)
        ),
    ));
    Ok(rows)
}
