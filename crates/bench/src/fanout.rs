//! The fan-out scenario: N syncs wait on one channel, one post releases them all; measured per
//! waiter and for the last waiter, over several rounds on the same connections.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::open_many;
use crate::procfs::settle;
use crate::report::Row;
use crate::stats::{Latencies, ms};
use crate::waiters::{arm, stage};
use crate::{BenchError, Context, channels};

/// Runs the rounds and returns the summary rows (last waiter, every waiter).
pub async fn fanout(context: &Context) -> Result<Vec<Row>, BenchError> {
    let (waiters, rounds) = (context.fanout_waiters, context.fanout_rounds);
    println!();
    println!(
        "== fan-out: {waiters} waiting syncs on one channel (one principal, one seat, one connection each), {rounds} rounds =="
    );
    let mut stage = stage(context, "bench-fanout").await?;
    let opened = open_many(
        &context.target,
        waiters,
        context.connect_parallelism,
        |_| stage.waiter_token.clone(),
        Some("connecting waiters"),
    )
    .await;
    if let Some(error) = &opened.first_error {
        println!(
            "  {} connections failed, going on with {}; first error: {error}",
            opened.failures,
            opened.conns.len()
        );
    }
    if opened.conns.is_empty() {
        return Err(BenchError::Setup("no waiter could connect".into()));
    }

    let mut conns = opened.conns;
    let mut cursor = stage.cursor;
    let mut last_waiter = Vec::with_capacity(rounds);
    let mut every_waiter = Vec::with_capacity(rounds * waiters);
    let (mut problems, mut expected, mut first_problem) = (0, 0, None);
    for round in 1..=rounds {
        let armed = arm(conns, &stage.channel_id, cursor);
        let count = armed.count();
        let sent = armed.all_sent(Duration::from_secs(20), None).await;
        let settled = settle(
            context.server_pid,
            context.fanout_settle,
            Duration::from_secs(10),
        )
        .await;

        let text = format!("fan-out round {round}");
        let posted_at = Instant::now();
        let seq = channels::post(&mut stage.poster, &stage.channel_id, &text)
            .await
            .map_err(|error| BenchError::Setup(format!("round {round}: post_message: {error}")))?;
        let post_latency = posted_at.elapsed();
        let release = armed.release(posted_at, seq, &text, None).await;

        let round_latencies = Latencies::of(release.latencies.clone());
        println!(
            "  round {round:>2}/{rounds}: {}/{count} received, last answer {}, waiters {}; post answered in {}; {sent} sent, settled {}{}",
            release.received,
            release.last.map_or_else(|| "-".into(), ms),
            round_latencies.map_or_else(
                || "-".into(),
                |l| format!("p50 {} p99 {}", ms(l.p50), ms(l.p99))
            ),
            ms(post_latency),
            ms(settled),
            if release.problems() > 0 {
                format!(
                    "; {} early, {} without the message, {} failed",
                    release.early, release.missing, release.failed
                )
            } else {
                String::new()
            }
        );
        if let Some(last) = release.last {
            last_waiter.push(last);
        }
        expected += release.expected;
        problems += release.problems();
        if first_problem.is_none() {
            first_problem.clone_from(&release.first_problem);
        }
        every_waiter.extend(release.latencies);
        conns = release.conns;
        cursor = seq;
    }

    let received = every_waiter.len();
    let last = Latencies::of(last_waiter);
    let each = Latencies::of(every_waiter);
    println!(
        "  last waiter per round ({rounds} rounds): {}",
        last.map_or_else(|| "-".into(), |l| l.brief())
    );
    println!(
        "  every waiter ({received} answers): {}",
        each.map_or_else(|| "-".into(), |l| l.brief())
    );
    println!("  delivered {received}/{expected}; problems {problems}");
    if let Some(problem) = &first_problem {
        println!("  first problem: {problem}");
    }
    drop(conns);
    // Let the server see the connections go before the next scenario.
    tokio::time::sleep(Duration::from_millis(200)).await;

    Ok(vec![
        Row {
            scenario: format!("fan-out: last of {waiters} waiters"),
            rate: None,
            latencies: last,
            errors: problems,
            note: format!("post → last answer, over {rounds} rounds"),
        },
        Row {
            scenario: format!("fan-out: each of {waiters} waiters"),
            rate: None,
            latencies: each,
            errors: problems,
            note: format!("post → answer; delivered {received}/{expected}"),
        },
    ])
}
