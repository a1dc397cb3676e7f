//! What bots cost: the runtime alone per GuessBot event, a GuessBot move end to end over HTTP
//! (post, then the bot's answer reaching the player's sync), and whether a bot that busy-loops
//! on every event slows `post_message` in other channels (measured against the same phase
//! without it, in the same run; target: p99 within 1.5x).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::Conn;
use crate::report::Row;
use crate::stats::Latencies;
use crate::throughput::{self, LoadResult};
use crate::{BenchError, Context};

const RUNTIME_EVENTS: usize = 2000;
const GAME_MOVES: usize = 200;
const BUSY_BOT: &str = "class Bot { on_message(msg) { while (true) {} } }";

pub async fn bot_cost(context: &Context) -> Result<Vec<Row>, BenchError> {
    let mut rows = Vec::new();
    println!();
    println!(
        "== bots: runtime per GuessBot event ({RUNTIME_EVENTS} events, fresh runtime each) =="
    );
    let (p50, p99) = tokio::task::spawn_blocking(|| bots::bench::event_cost(RUNTIME_EVENTS))
        .await
        .map_err(|error| BenchError::Setup(format!("runtime bench: {error}")))?;
    println!(
        "  runtime alone: p50 {:.2} ms  p99 {:.2} ms (target p50 ≤ 1 ms)",
        ms(p50),
        ms(p99)
    );
    rows.push(Row {
        scenario: "bot runtime, GuessBot event".into(),
        rate: None,
        latencies: Some(Latencies {
            count: RUNTIME_EVENTS,
            p50,
            p99,
            max: p99,
        }),
        errors: 0,
        note: "fresh QuickJS runtime per event; target p50 ≤ 1 ms".into(),
    });

    println!();
    println!("== bots: GuessBot move end to end over HTTP ({GAME_MOVES} moves) ==");
    let moves = guess_moves(context).await?;
    println!(
        "  post → bot answer seen by the player's sync: {}",
        moves.brief()
    );
    rows.push(Row {
        scenario: "GuessBot move, end to end".into(),
        rate: None,
        latencies: Some(moves),
        errors: 0,
        note: "post_message, then sync until the bot's answer".into(),
    });

    println!();
    println!(
        "== bots: post_message in other channels, without and with a busy-looping bot, {} s each ==",
        context.duration.as_secs()
    );
    let channels = throughput::prepare_channels(context).await?;
    let quiet = throughput::tool_load(context, &channels, "post_message").await?;
    println!("  without: {:>8.0} req/s  {}", quiet.rate(), brief(&quiet));
    let stop = Arc::new(AtomicBool::new(false));
    let busy = tokio::spawn(keep_a_bot_busy(context.target.clone(), stop.clone()));
    let loaded = throughput::tool_load(context, &channels, "post_message").await?;
    stop.store(true, Ordering::Relaxed);
    let busy_events = busy
        .await
        .map_err(|error| BenchError::Setup(format!("busy bot driver: {error}")))??;
    println!(
        "  with:    {:>8.0} req/s  {}  ({busy_events} busy-looping bot events meanwhile)",
        loaded.rate(),
        brief(&loaded)
    );
    let ratio = match (quiet.latencies, loaded.latencies) {
        (Some(quiet), Some(loaded)) if !quiet.p99.is_zero() => {
            loaded.p99.as_secs_f64() / quiet.p99.as_secs_f64()
        }
        _ => f64::NAN,
    };
    println!(
        "  = post_message p99 with the busy bot is {ratio:.2}x its value without (target ≤ 1.5x)"
    );
    rows.push(Row {
        scenario: format!("post_message beside a busy bot (c={})", context.concurrency),
        rate: Some(loaded.rate()),
        latencies: loaded.latencies,
        errors: loaded.errors,
        note: format!(
            "p99 {ratio:.2}x the run without it (target ≤ 1.5x); {busy_events} bot events"
        ),
    });
    Ok(rows)
}

/// Two players play GuessBot over a range too wide to hit by chance; each move is timed from
/// the post until the bot's answer is in the mover's sync.
async fn guess_moves(context: &Context) -> Result<Latencies, BenchError> {
    let setup = |what: &str, error: crate::client::CallError| {
        BenchError::Setup(format!("GuessBot {what}: {error}"))
    };
    let mut players = [
        Conn::open(context.target.clone(), "bench-guess-a")
            .await
            .map_err(|error| setup("connect", error))?,
        Conn::open(context.target.clone(), "bench-guess-b")
            .await
            .map_err(|error| setup("connect", error))?,
    ];
    let created = players[0]
        .tool(
            "create_channel",
            json!({"name": "bench guess", "slots": ["invite:a", "invite:b"], "bot_preset": "guess",
                   "bot_params": {"min": 1, "max": 1_000_000_000}}),
        )
        .await
        .map_err(|error| setup("create", error))?;
    let channel_id = created["channel"]["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let code = created["invites"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    players[1]
        .tool("join_channel", json!({"code": code}))
        .await
        .map_err(|error| setup("join", error))?;
    let mut samples = Vec::with_capacity(GAME_MOVES);
    for turn in 0..GAME_MOVES {
        let player = &mut players[turn % 2];
        // Guesses climb through the range: far from a random target, never repeated.
        let guess = 1 + turn as u64 * 4_999_999;
        let started = Instant::now();
        let posted = player
            .tool(
                "post_message",
                json!({"channel_id": channel_id, "text": format!("guess {guess}")}),
            )
            .await
            .map_err(|error| setup("move", error))?;
        let mut cursor = posted["message"]["seq"].as_i64().unwrap_or_default();
        loop {
            let synced = player
                .tool(
                    "sync_messages",
                    json!({"channel_id": channel_id, "cursor": cursor, "wait_ms": 5000}),
                )
                .await
                .map_err(|error| setup("sync", error))?;
            if bot_answered(&synced) {
                break;
            }
            cursor = synced["next_cursor"].as_i64().unwrap_or(cursor);
            if started.elapsed() > Duration::from_secs(10) {
                return Err(BenchError::Setup(
                    "GuessBot did not answer a move within 10 s".into(),
                ));
            }
        }
        samples.push(started.elapsed());
    }
    Latencies::of(samples).ok_or_else(|| BenchError::Setup("no GuessBot moves".into()))
}

fn bot_answered(synced: &Value) -> bool {
    synced["messages"]
        .as_array()
        .is_some_and(|messages| messages.iter().any(|message| message["kind"] == "bot"))
}

/// Keeps one channel's bot busy: a bot that loops until its budget runs out on every message.
/// After three failures a bot is disabled, so the driver attaches it again and again.
async fn keep_a_bot_busy(
    target: Arc<crate::client::Target>,
    stop: Arc<AtomicBool>,
) -> Result<usize, BenchError> {
    let fail = |error: crate::client::CallError| BenchError::Setup(format!("busy bot: {error}"));
    let mut conn = Conn::open(target, "bench-busy-bot").await.map_err(fail)?;
    let created = conn
        .tool(
            "create_channel",
            json!({"name": "busy bot", "slots": ["invite:a"], "bot_code": BUSY_BOT}),
        )
        .await
        .map_err(fail)?;
    let channel_id = created["channel"]["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut events = 0;
    while !stop.load(Ordering::Relaxed) {
        for _ in 0..3 {
            conn.tool(
                "post_message",
                json!({"channel_id": channel_id, "text": "spin"}),
            )
            .await
            .map_err(fail)?;
            events += 1;
        }
        // Give the bot time to spin through them (50 ms each) before it is re-armed.
        tokio::time::sleep(Duration::from_millis(120)).await;
        conn.tool(
            "attach_bot",
            json!({"channel_id": channel_id, "bot_code": BUSY_BOT}),
        )
        .await
        .map_err(fail)?;
    }
    Ok(events)
}

fn brief(result: &LoadResult) -> String {
    result
        .latencies
        .map_or_else(|| "no successful requests".to_owned(), |l| l.brief())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
