//! Waiting syncs: arming many `sync_messages` calls with a long `wait_ms`, one per connection,
//! and, after one post releases them, judging what each got back and when.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};

use crate::channels::delivers;
use crate::client::{CallError, Conn};

/// The longest wait the server grants.
pub const SYNC_WAIT_MS: u64 = 45_000;

/// The client's limit for a waiting sync: the server's wait plus a margin.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);

/// A waiter's answer and when it arrived.
struct Answer {
    conn: Conn,
    at: Instant,
    outcome: Result<Value, CallError>,
}

/// Syncs in flight.
pub struct Armed {
    tasks: JoinSet<Answer>,
    sent: Arc<AtomicUsize>,
    count: usize,
}

/// Starts one `sync_messages` per connection, all on `channel_id` after `cursor`.
pub fn arm(conns: Vec<Conn>, channel_id: &str, cursor: i64) -> Armed {
    let sent = Arc::new(AtomicUsize::new(0));
    let count = conns.len();
    let mut tasks = JoinSet::new();
    for mut conn in conns {
        let sent = sent.clone();
        let args = json!({"channel_id": channel_id, "cursor": cursor, "wait_ms": SYNC_WAIT_MS});
        tasks.spawn(async move {
            let outcome = conn
                .tool_with("sync_messages", args, SYNC_TIMEOUT, Some(&sent))
                .await;
            Answer {
                conn,
                at: Instant::now(),
                outcome,
            }
        });
    }
    Armed { tasks, sent, count }
}

impl Armed {
    pub fn count(&self) -> usize {
        self.count
    }

    /// Waits until every sync has been handed to its connection, or `max` has passed, printing
    /// progress every second with a `label`. Returns how many were sent.
    pub async fn all_sent(&self, max: Duration, label: Option<&str>) -> usize {
        let started = Instant::now();
        let mut next_report = started + Duration::from_secs(1);
        loop {
            let sent = self.sent.load(Ordering::Relaxed);
            if sent >= self.count || started.elapsed() >= max {
                return sent;
            }
            if let Some(label) = label
                && Instant::now() >= next_report
            {
                println!("  {label}: {sent}/{} sent", self.count);
                next_report += Duration::from_secs(1);
            }
            sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits for every answer, printing progress every second with a `label`.
    async fn answers(mut self, label: Option<&str>) -> Vec<Answer> {
        let started = Instant::now();
        let mut next_report = started + Duration::from_secs(1);
        let mut answers = Vec::with_capacity(self.count);
        let mut lost = 0;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(answer) => answers.push(answer),
                Err(_) => lost += 1,
            }
            if let Some(label) = label
                && Instant::now() >= next_report
            {
                println!("  {label}: {}/{} answered", answers.len(), self.count);
                next_report += Duration::from_secs(1);
            }
        }
        if lost > 0 {
            println!("  {lost} waiter tasks failed");
        }
        answers
    }

    /// Collects the answers to a post made at `posted_at` with this seq and text.
    pub async fn release(
        self,
        posted_at: Instant,
        seq: i64,
        text: &str,
        label: Option<&str>,
    ) -> Release {
        let count = self.count;
        let answers = self.answers(label).await;
        let mut release = Release {
            expected: count,
            received: 0,
            early: 0,
            missing: 0,
            failed: count - answers.len(),
            first_problem: None,
            latencies: Vec::with_capacity(count),
            last: None,
            conns: Vec::with_capacity(count),
        };
        for answer in answers {
            let after = answer.at.checked_duration_since(posted_at);
            if let Some(after) = after {
                release.last = Some(release.last.map_or(after, |last| last.max(after)));
            }
            match (&answer.outcome, after) {
                (Err(error), _) => {
                    release.failed += 1;
                    release
                        .first_problem
                        .get_or_insert_with(|| format!("a waiter failed: {error}"));
                }
                (Ok(output), None) => {
                    release.early += 1;
                    release.first_problem.get_or_insert_with(|| {
                        format!(
                            "a waiter answered before the post: {}",
                            crate::rpc::snippet(&output.to_string())
                        )
                    });
                }
                (Ok(output), Some(after)) if delivers(output, seq, text) => {
                    release.received += 1;
                    release.latencies.push(after);
                }
                (Ok(output), Some(_)) => {
                    release.missing += 1;
                    release.first_problem.get_or_insert_with(|| {
                        format!(
                            "a waiter's answer lacks message {seq}: {}",
                            crate::rpc::snippet(&output.to_string())
                        )
                    });
                }
            }
            release.conns.push(answer.conn);
        }
        release
    }
}

/// What the waiters got after one post.
pub struct Release {
    pub expected: usize,
    /// Answered after the post with the posted message.
    pub received: usize,
    /// Answered before the post was sent (they were not waiting).
    pub early: usize,
    /// Answered after the post without the message.
    pub missing: usize,
    /// Errors, timeouts and lost tasks.
    pub failed: usize,
    pub first_problem: Option<String>,
    /// From just before the post to each receiving waiter's answer.
    pub latencies: Vec<Duration>,
    /// From just before the post to the last answer of any kind.
    pub last: Option<Duration>,
    /// The connections, for another round.
    pub conns: Vec<Conn>,
}

impl Release {
    pub fn problems(&self) -> usize {
        self.early + self.missing + self.failed
    }
}

/// A channel for waiters: its owner's principal waits (many times at once, in seat a) while a
/// second principal, seated in b, posts.
pub struct Stage {
    pub channel_id: String,
    /// The seq to wait after.
    pub cursor: i64,
    /// The waiters' token.
    pub waiter_token: String,
    /// The poster's connection.
    pub poster: Conn,
}

/// Creates and fills a channel named `name`.
pub async fn stage(context: &crate::Context, name: &str) -> Result<Stage, crate::BenchError> {
    let setup = |step: &'static str| {
        move |error: CallError| crate::BenchError::Setup(format!("{step}: {error}"))
    };
    let waiter_token = format!("{name}-waiter");
    let mut owner = Conn::open(context.target.clone(), &waiter_token)
        .await
        .map_err(setup("connect"))?;
    let created = crate::channels::create(&mut owner, name)
        .await
        .map_err(setup("create_channel"))?;
    let code = created
        .invites
        .first()
        .ok_or_else(|| crate::BenchError::Setup("create_channel returned no invite code".into()))?;
    let mut poster = Conn::open(context.target.clone(), &format!("{name}-poster"))
        .await
        .map_err(setup("connect"))?;
    crate::channels::join(&mut poster, code)
        .await
        .map_err(setup("join_channel"))?;
    let cursor = crate::channels::last_seq(&mut owner, &created.channel_id)
        .await
        .map_err(setup("get_channel"))?;
    Ok(Stage {
        channel_id: created.channel_id,
        cursor,
        waiter_token,
        poster,
    })
}
