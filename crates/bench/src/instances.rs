//! Several instances on one PostgreSQL database: how soon a sync waiting on one instance wakes
//! when another commits (next to one waiting on the instance that commits), and how many
//! durable posts three instances make together next to one.
//!
//! Every figure is compared with one from the same run: the machine shares its cores between
//! the instances, PostgreSQL and this load generator, so absolute numbers mean little.

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::client::{Conn, Target};
use crate::report::Row;
use crate::server::{ServerAuth, ServerProcess};
use crate::stats::{Latencies, ms};
use crate::throughput::{LoadResult, Op, closed_loop, prepare_channels, row, workers};
use crate::waiters::{arm, stage};
use crate::{BenchError, Context, channels};

const INSTANCES: usize = 3;
/// Waiting syncs per round, on one connection each.
const WAITERS: usize = 20;
const ROUNDS: usize = 25;

pub async fn instances(context: &Context, postgres: &str) -> Result<Vec<Row>, BenchError> {
    println!();
    println!("== instances: {INSTANCES} servers on one PostgreSQL database ==");
    let database = store::testing::fresh_schema(postgres)
        .await
        .map_err(|error| BenchError::Setup(format!("a schema on {postgres}: {error}")))?;
    let mut servers = Vec::with_capacity(INSTANCES);
    for _ in 0..INSTANCES {
        servers.push(ServerProcess::start_on(ServerAuth::Dev, Some(&database)).await?);
    }
    let contexts: Vec<Context> = servers
        .iter()
        .map(|server| {
            Target::at(server.addr)
                .map(|target| context.against(target, server.pid))
                .map_err(BenchError::Server)
        })
        .collect::<Result<_, _>>()?;
    println!(
        "  servers: pids {} (a fresh schema; one CPU core each is more than this machine has)",
        servers
            .iter()
            .map(|server| server.pid.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut rows = Vec::new();
    for (label, waiting_on) in [
        ("wake, same instance", &contexts[0]),
        ("wake, across instances", &contexts[1]),
    ] {
        rows.push(wake_rounds(&contexts[0], waiting_on, label).await?);
    }
    rows.extend(posts(&contexts).await?);
    for server in servers {
        server.stop().await;
    }
    Ok(rows)
}

/// Rounds of waiters on `waiting_on` released by a post on `posting_on`; the latency of each is
/// from just before the post to its answer.
async fn wake_rounds(
    posting_on: &Context,
    waiting_on: &Context,
    label: &str,
) -> Result<Row, BenchError> {
    let mut stage = stage(posting_on, "bench-instances").await?;
    let mut conns = Vec::with_capacity(WAITERS);
    for _ in 0..WAITERS {
        conns.push(
            Conn::open(waiting_on.target.clone(), &stage.waiter_token)
                .await
                .map_err(|error| BenchError::Setup(format!("a waiter's connection: {error}")))?,
        );
    }
    let mut cursor = stage.cursor;
    let (mut latencies, mut problems) = (Vec::with_capacity(WAITERS * ROUNDS), 0);
    for round in 1..=ROUNDS {
        let armed = arm(conns, &stage.channel_id, cursor);
        armed.all_sent(Duration::from_secs(10), None).await;
        // Sent is not yet parked: give the server a moment to read the channel and subscribe.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = format!("instances round {round}");
        let posted_at = Instant::now();
        let seq = channels::post(&mut stage.poster, &stage.channel_id, &text)
            .await
            .map_err(|error| BenchError::Setup(format!("post_message: {error}")))?;
        let release = armed.release(posted_at, seq, &text, None).await;
        problems += release.problems();
        latencies.extend(release.latencies);
        conns = release.conns;
        cursor = seq;
    }
    let summary = Latencies::of(latencies);
    println!(
        "  {label:<24} {WAITERS} waiters x {ROUNDS} rounds: {}{}",
        summary.map_or_else(
            || "no waiter woke".into(),
            |l| format!("p50 {} p99 {} max {}", ms(l.p50), ms(l.p99), ms(l.max))
        ),
        if problems > 0 {
            format!("; {problems} waiters did not get the post")
        } else {
            String::new()
        }
    );
    Ok(Row {
        scenario: label.into(),
        rate: None,
        latencies: summary,
        errors: problems,
        note: "from the post's request to each waiter's answer".into(),
    })
}

/// `ping` and durable `post_message` on one instance, then `post_message` by the same clients
/// spread over every instance.
async fn posts(contexts: &[Context]) -> Result<Vec<Row>, BenchError> {
    let first = &contexts[0];
    let channels = prepare_channels(first).await?;
    let tokens: Vec<String> = channels
        .seats
        .iter()
        .map(|(token, _)| token.clone())
        .collect();
    let post = |i: usize| Op::Tool {
        name: "post_message",
        args: json!({"channel_id": channels.seats[i].1, "text": "bench message"}),
    };
    let clients = tokens.len();

    let ping = closed_loop(
        workers(first, &tokens, |_| Op::Ping).await?,
        first.duration,
        None,
    )
    .await;
    ping.print("ping, 1", clients);
    let one = closed_loop(workers(first, &tokens, post).await?, first.duration, None).await;
    one.print("post, 1", clients);

    // Client i goes to instance i mod N, on its own channel as before.
    let mut spread = Vec::with_capacity(clients);
    for (index, context) in contexts.iter().enumerate() {
        let mine: Vec<usize> = (index..clients).step_by(contexts.len()).collect();
        let their_tokens: Vec<String> = mine.iter().map(|&i| tokens[i].clone()).collect();
        spread.extend(workers(context, &their_tokens, |j| post(mine[j])).await?);
    }
    let all: LoadResult = closed_loop(spread, first.duration, None).await;
    all.print(&format!("post, {}", contexts.len()), clients);

    let ratio = |a: &LoadResult, b: &LoadResult| {
        if b.rate() > 0.0 {
            a.rate() / b.rate()
        } else {
            0.0
        }
    };
    println!(
        "  = post on one instance / ping on it: {:.2}; {} instances / one: {:.2}x",
        ratio(&one, &ping),
        contexts.len(),
        ratio(&all, &one)
    );
    Ok(vec![
        row(
            format!("ping, 1 instance (c={clients})"),
            &ping,
            String::new(),
        ),
        row(
            format!("post, 1 instance (c={clients})"),
            &one,
            format!("PostgreSQL, durable; {:.2} of ping", ratio(&one, &ping)),
        ),
        row(
            format!("post, {} instances (c={clients})", contexts.len()),
            &all,
            format!("{:.2}x one instance", ratio(&all, &one)),
        ),
    ])
}
