//! What the games cost and how punctual their clocks are: a ChessBot move checked in a worker
//! process (next to the runtime alone in this thread), a Blackjack hand played end to end over
//! HTTP, and how late bot timers fire while the server is busy with posts in other channels.
//!
//! Targets (issue 12): a chess move p50 ≤ 2 ms, a Blackjack hand p50 ≤ 10 ms, a timer at most
//! 1 s late under load.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use workers::{Account, Pool};

use crate::client::{CallError, Conn, Target};
use crate::report::Row;
use crate::stats::{Latencies, ms};
use crate::throughput::{self, LoadResult};
use crate::worker_cost::{time_in_thread, time_jobs};
use crate::{BenchError, Context};

const CHESS_MOVES: usize = 500;
/// Hands played at each Blackjack table. A hand is about five bot posts, and all bots of a
/// channel may write 240 posts a minute (`--bot-channel-messages-per-minute`), the owners' 600:
/// so each table stops well under that, and each has its own owner.
const BLACKJACK_HANDS_PER_TABLE: usize = 40;
const BLACKJACK_TABLES: usize = 5;
/// Channels whose bot keeps one timer running, re-armed each time it fires.
const TIMER_CHANNELS: usize = 20;
const TIMER_PERIOD_MS: u64 = 250;
const TIMER_BOT: &str = r#"
class Bot {
  constructor(ctx, params) { this.ctx = ctx; this.period = params.period_ms; }
  on_init() { this.ctx.set_timer(this.period, "tick"); }
  on_timer(tag) { this.ctx.set_timer(this.period, "tick"); }
}
"#;

pub async fn games(context: &Context) -> Result<Vec<Row>, BenchError> {
    let mut rows = vec![chess_move(context).await?];

    println!();
    println!(
        "== games: a Blackjack hand end to end over HTTP ({BLACKJACK_TABLES} tables of \
         {BLACKJACK_HANDS_PER_TABLE} hands, one after another) =="
    );
    let mut samples = Vec::with_capacity(BLACKJACK_TABLES * BLACKJACK_HANDS_PER_TABLE);
    for table in 0..BLACKJACK_TABLES {
        samples.extend(blackjack_hands(context.target.clone(), table).await?);
    }
    let hands =
        Latencies::of(samples).ok_or_else(|| BenchError::Setup("no Blackjack hands".into()))?;
    println!(
        "  bet → dealt → stand → the hand's result in the player's sync: {}  (target p50 ≤ 10 ms)",
        hands.brief()
    );
    rows.push(Row {
        scenario: "Blackjack hand, end to end".into(),
        rate: None,
        latencies: Some(hands),
        errors: 0,
        note: "one player: bet, stand, result; target p50 ≤ 10 ms".into(),
    });

    rows.push(timers_under_load(context).await?);
    Ok(rows)
}

async fn chess_move(context: &Context) -> Result<Row, BenchError> {
    println!();
    println!("== games: a ChessBot move checked in a worker process ({CHESS_MOVES} moves) ==");
    let pool = Pool::start(context.workers.clone())
        .await
        .map_err(|error| BenchError::Setup(format!("bot workers: {error}")))?;
    let job = bots::bench::chess_move();
    let alone = time_in_thread(job.clone(), CHESS_MOVES).await;
    let who = Account {
        principal: "bench-chess".into(),
        channel: "bench-chess".into(),
    };
    let through = time_jobs(&pool, &who, &job, CHESS_MOVES).await;
    pool.shutdown();
    let (alone, through) = (alone?, through?);
    println!("  runtime alone:  {}", alone.brief());
    println!("  via a worker:   {}  (target p50 ≤ 2 ms)", through.brief());
    Ok(Row {
        scenario: "ChessBot move via worker".into(),
        rate: None,
        latencies: Some(through),
        errors: 0,
        note: format!(
            "SAN parsed, legality, board+PGN; alone p50 {}; target p50 ≤ 2 ms",
            ms(alone.p50)
        ),
    })
}

/// One player at a Blackjack table plays hand after hand: it bets when betting opens and stands
/// when it is its turn. A hand is timed from its bet until its result is in the player's sync.
/// One table, one player: the time from each bet to the hand's result in the player's sync.
async fn blackjack_hands(target: Arc<Target>, table: usize) -> Result<Vec<Duration>, BenchError> {
    let setup =
        |what: &str, error: CallError| BenchError::Setup(format!("Blackjack {what}: {error}"));
    let mut player = Conn::open(target, &format!("bench-blackjack-{table}"))
        .await
        .map_err(|error| setup("connect", error))?;
    let created = player
        .tool(
            "create_channel",
            json!({"name": "bench blackjack", "slots": ["invite:p"], "bot_preset": "blackjack",
                   "bot_params": {"hands": BLACKJACK_HANDS_PER_TABLE + 10, "chips": 1_000_000_000_000_i64,
                                  "decks": 8}}),
        )
        .await
        .map_err(|error| setup("create", error))?;
    let channel_id = created["channel"]["channel_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut feed = BotFeed::new(channel_id.clone());
    let mut samples = Vec::with_capacity(BLACKJACK_HANDS_PER_TABLE);
    let mut started: Option<Instant> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    // The last posts' types, for a report of a game that went astray.
    let mut recent: std::collections::VecDeque<String> = std::collections::VecDeque::new();
    while samples.len() < BLACKJACK_HANDS_PER_TABLE {
        if Instant::now() > deadline {
            return Err(BenchError::Setup(format!(
                "Blackjack: {} hands in 120 s",
                samples.len()
            )));
        }
        for data in feed.next(&mut player).await? {
            if recent.len() == 12 {
                recent.pop_front();
            }
            recent.push_back(match data["type"].as_str() {
                Some("violation" | "notice") => format!("{}: {}", data["code"], data["message"]),
                other => other.unwrap_or("?").to_owned(),
            });
            let say = |text: &str, to: Option<&str>| json!({"channel_id": channel_id, "text": text, "to": to});
            let post = match data["type"].as_str() {
                Some("entropy_round") => Some(say("entropy: bench", data["bot_slot"].as_str())),
                Some("betting") => {
                    started = Some(Instant::now());
                    Some(say("bet 10", None))
                }
                Some("table") if data["turn"]["slot"] == "p" => Some(say("stand", None)),
                Some("result") => {
                    if let Some(started) = started.take() {
                        samples.push(started.elapsed());
                    }
                    None
                }
                Some("final") => {
                    return Err(BenchError::Setup(format!(
                        "Blackjack ended after {} hands: {}; the last posts: {}",
                        samples.len(),
                        data["reason"],
                        Vec::from(recent).join(", ")
                    )));
                }
                _ => None,
            };
            if let Some(post) = post {
                player
                    .tool("post_message", post)
                    .await
                    .map_err(|error| setup("move", error))?;
            }
        }
    }
    Ok(samples)
}

/// The bot's posts in one channel, in order, as a player syncs them.
struct BotFeed {
    channel_id: String,
    cursor: i64,
}

impl BotFeed {
    fn new(channel_id: String) -> Self {
        Self {
            channel_id,
            cursor: 0,
        }
    }

    /// The `data` of the bot posts after the cursor, waiting up to 5 s for one. A notice that
    /// the bot failed or that its reply was dropped (a cap) ends the game, so it is an error
    /// here rather than a wait for a post that will never come.
    async fn next(&mut self, conn: &mut Conn) -> Result<Vec<Value>, BenchError> {
        let synced = conn
            .tool(
                "sync_messages",
                json!({"channel_id": self.channel_id, "cursor": self.cursor, "wait_ms": 5000}),
            )
            .await
            .map_err(|error| BenchError::Setup(format!("sync: {error}")))?;
        self.cursor = synced["next_cursor"].as_i64().unwrap_or(self.cursor);
        let messages = synced["messages"].as_array().cloned().unwrap_or_default();
        if let Some(trouble) = messages.iter().find(|message| {
            message["kind"] == "system"
                && matches!(
                    message["data"]["event"].as_str(),
                    Some("bot_error" | "bot_disabled" | "bot_output_capped")
                )
        }) {
            return Err(BenchError::Setup(format!(
                "the bot stopped: {}",
                trouble["text"].as_str().unwrap_or_default()
            )));
        }
        Ok(messages
            .into_iter()
            .filter(|message| message["kind"] == "bot")
            .map(|message| message["data"].clone())
            .collect())
    }
}

/// Bots in [`TIMER_CHANNELS`] channels keep a timer running while `post_message` load runs in
/// other channels; each `timer_fired` notice's lateness is its time minus its due time, read from
/// the exported transcripts (the times the server recorded).
async fn timers_under_load(context: &Context) -> Result<Row, BenchError> {
    println!();
    println!(
        "== games: bot timers under load ({TIMER_CHANNELS} bots re-arming a {TIMER_PERIOD_MS} ms \
         timer, post_message at c={} for {} s) ==",
        context.concurrency,
        context.duration.as_secs()
    );
    let setup = |what: &str, error: CallError| BenchError::Setup(format!("timers {what}: {error}"));
    let mut owner = Conn::open(context.target.clone(), "bench-timers")
        .await
        .map_err(|error| setup("connect", error))?;
    let mut channels = Vec::with_capacity(TIMER_CHANNELS);
    for index in 0..TIMER_CHANNELS {
        let created = owner
            .tool(
                "create_channel",
                json!({"name": format!("timers {index}"), "slots": ["invite:a"],
                       "bot_code": TIMER_BOT, "bot_params": {"period_ms": TIMER_PERIOD_MS}}),
            )
            .await
            .map_err(|error| setup("create", error))?;
        channels.push(
            created["channel"]["channel_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    let load_channels = throughput::prepare_channels(context).await?;
    let load: LoadResult = throughput::tool_load(context, &load_channels, "post_message").await?;
    println!(
        "  load meanwhile: {:.0} post_message/s  {}",
        load.rate(),
        load.latencies
            .map_or_else(|| "no successful requests".to_owned(), |l| l.brief())
    );
    let mut lateness = Vec::new();
    for channel_id in &channels {
        // Closing stops the bot, so the count below is final.
        owner
            .tool(
                "update_channel",
                json!({"channel_id": channel_id, "op": "close"}),
            )
            .await
            .map_err(|error| setup("close", error))?;
        let exported = owner
            .tool("export_transcript", json!({"channel_id": channel_id}))
            .await
            .map_err(|error| setup("export", error))?;
        lateness.extend(timer_lateness(&exported)?);
    }
    let expected =
        TIMER_CHANNELS as f64 * load.elapsed.as_secs_f64() * 1000.0 / TIMER_PERIOD_MS as f64;
    let latencies =
        Latencies::of(lateness).ok_or_else(|| BenchError::Setup("no timer fired".into()))?;
    println!(
        "  {} timers fired (about {expected:.0} expected while the load ran); late by {}  \
         (target max ≤ 1000 ms)",
        latencies.count,
        latencies.brief()
    );
    Ok(Row {
        scenario: "bot timer lateness under load".into(),
        rate: None,
        latencies: Some(latencies),
        errors: 0,
        note: format!(
            "fired at − due, {TIMER_CHANNELS} bots beside post_message at {:.0}/s; target ≤ 1 s",
            load.rate()
        ),
    })
}

/// How late each `timer_fired` notice of an exported transcript came: its time minus its due.
fn timer_lateness(exported: &Value) -> Result<Vec<Duration>, BenchError> {
    let transcript: transcript::export::Transcript = serde_json::from_value(exported.clone())
        .map_err(|error| {
            BenchError::Setup(format!("timers: an export that does not read: {error}"))
        })?;
    let mut lateness = Vec::new();
    for exported in &transcript.messages {
        let Ok(Some(message)) = exported.message() else {
            continue;
        };
        if let Some(Ok(domain::Notice::TimerFired { due, .. })) = message.notice() {
            let late = u64::try_from(message.at.0.saturating_sub(due.0)).map_err(|_| {
                BenchError::Setup(format!(
                    "a timer fired before it was due (seq {})",
                    message.seq.0
                ))
            })?;
            lateness.push(Duration::from_millis(late));
        }
    }
    Ok(lateness)
}
