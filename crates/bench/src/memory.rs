//! The memory scenario: the server's resident memory at idle, with W idle keep-alive
//! connections, and with a waiting sync on each; then one post releases them all.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::open_many;
use crate::procfs::{self, Memory, settle, settle_memory};
use crate::report::Row;
use crate::stats::{Latencies, mb, ms};
use crate::waiters::{arm, stage};
use crate::{BenchError, Context, channels};

fn reading(pid: Option<u32>) -> Option<Memory> {
    pid.and_then(procfs::memory)
}

/// `12.3 MB (peak 15.0 MB)`, or why there is no reading.
fn describe(memory: Option<Memory>) -> String {
    memory.map_or_else(
        || "n/a (no server pid; pass --server-pid with --url)".to_owned(),
        |m| format!("{} (peak so far {})", mb(m.rss_kib), mb(m.peak_kib)),
    )
}

/// KiB per item between two readings.
fn per_item(from: Option<Memory>, to: Option<Memory>, items: usize) -> Option<f64> {
    let (from, to) = (from?, to?);
    Some((to.rss_kib as f64 - from.rss_kib as f64) / items.max(1) as f64)
}

pub async fn memory(context: &Context) -> Result<Row, BenchError> {
    let waiters = context.memory_waiters;
    let pid = context.server_pid;
    println!();
    println!("== memory: {waiters} concurrent waiting syncs, one TCP connection each ==");
    let mut stage = stage(context, "bench-memory").await?;
    let idle = reading(pid);
    println!("  server RSS at idle: {}", describe(idle));

    let opened = open_many(
        &context.target,
        waiters,
        context.connect_parallelism,
        |_| stage.waiter_token.clone(),
        Some(&format!(
            "connecting {waiters} clients, {} at a time",
            context.connect_parallelism
        )),
    )
    .await;
    if let Some(error) = &opened.first_error {
        println!(
            "  {} connections failed; first error: {error}",
            opened.failures
        );
    }
    let connected = opened.conns.len();
    if connected == 0 {
        return Err(BenchError::Setup("no waiter could connect".into()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_connections = reading(pid);
    println!(
        "  {connected} connections open in {:.1} s; server RSS {}{}",
        opened.elapsed.as_secs_f64(),
        describe(with_connections),
        per_item(idle, with_connections, connected).map_or_else(String::new, |kib| format!(
            ", {kib:.1} KB per idle connection"
        ))
    );

    println!("  arming {connected} waiting syncs…");
    let armed = arm(opened.conns, &stage.channel_id, stage.cursor);
    let arming = Instant::now();
    let sent = armed
        .all_sent(Duration::from_secs(30), Some("arming"))
        .await;
    let sent_after = arming.elapsed();
    let settled = settle(pid, context.memory_settle, Duration::from_secs(30)).await;
    let arrived = reading(pid);
    println!(
        "  {sent}/{connected} syncs sent in {:.1} s, all parked {:.1} s later; server RSS then {}",
        sent_after.as_secs_f64(),
        settled.as_secs_f64(),
        describe(arrived)
    );
    let (waiting, returned) = settle_memory(pid, Duration::from_secs(60)).await;
    if pid.is_some() {
        println!(
            "  the allocator returned the arrival burst's memory over the next {:.1} s",
            returned.as_secs_f64()
        );
    }
    let per_waiter = per_item(idle, waiting, connected);
    println!(
        "  server RSS with {connected} waiting syncs: {}{}",
        describe(waiting),
        per_waiter.map_or_else(String::new, |kib| format!(
            "; {kib:.1} KB per waiter over idle ({:.1} KB for the sync on top of its connection)",
            per_item(with_connections, waiting, connected).unwrap_or(0.0)
        ))
    );

    let text = "memory release";
    let posted_at = Instant::now();
    let seq = channels::post(&mut stage.poster, &stage.channel_id, text)
        .await
        .map_err(|error| BenchError::Setup(format!("post_message: {error}")))?;
    let post_latency = posted_at.elapsed();
    let mut release = armed.release(posted_at, seq, text, Some("releasing")).await;
    let each = Latencies::of(release.latencies.clone());
    println!(
        "  released by one post: {}/{connected} received the message, last answer after {} (each: {}); post answered in {}",
        release.received,
        release.last.map_or_else(|| "-".into(), ms),
        each.map_or_else(|| "-".into(), |l| l.brief()),
        ms(post_latency)
    );
    if release.problems() > 0 {
        println!(
            "  {} answered before the post, {} without the message, {} failed",
            release.early, release.missing, release.failed
        );
    }
    if let Some(problem) = &release.first_problem {
        println!("  first problem: {problem}");
    }
    drop(std::mem::take(&mut release.conns));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = reading(pid);
    println!("  server RSS after the release: {}", describe(after));

    let note = match (idle, waiting) {
        (Some(idle), Some(waiting)) => format!(
            "RSS {} idle → {} waiting ({:.1} KB/waiter); all answered {} after the post",
            mb(idle.rss_kib),
            mb(waiting.rss_kib),
            per_waiter.unwrap_or(0.0),
            release.last.map_or_else(|| "-".into(), ms)
        ),
        _ => format!(
            "RSS n/a; all answered {} after the post",
            release.last.map_or_else(|| "-".into(), ms)
        ),
    };
    Ok(Row {
        scenario: format!("memory: {connected} waiters released"),
        rate: None,
        latencies: each,
        errors: release.problems() + opened.failures,
        note,
    })
}
