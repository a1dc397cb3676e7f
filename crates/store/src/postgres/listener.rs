//! Wake-ups across instances: the [`Notifier`] tells every instance of this one's commits, and
//! a connection that `LISTEN`s publishes what other instances (and this one) told to this
//! instance's [`Signals`].
//!
//! A notice is sent after its commit, so a woken reader always finds the rows; it carries no
//! messages, and readers fetch them. It is sent by a statement of its own rather than inside
//! the writing transaction: PostgreSQL holds a global lock from a notifying transaction's
//! pre-commit until its commit record is on disk, which would make every post wait for the
//! fsync of the one before it instead of sharing one. The price: a commit whose instance dies
//! before the notice goes out wakes the other instances' waiters only when their wait ends.
//! While the listening connection is down notices are lost, so after every reconnection every
//! waiter is woken to look for itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use domain::{ChannelId, Seq, Timestamp};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::signals::Advance;
use crate::{Signals, StoreError};

/// The channel of `NOTIFY`. Its payload is `<channel id> <seq> <commit time in ms>`.
pub(super) const ADVANCED: &str = "mcp_channel_advanced";

/// Most notices sent in one statement.
const NOTICE_BATCH: usize = 256;
/// Tries at sending a batch of notices before it is given up.
const NOTICE_TRIES: u32 = 3;

/// Sends the notices of this instance's commits, in batches, from a task of its own: a post
/// does not wait for its notice. Cheap to clone.
#[derive(Clone)]
pub(super) struct Notifier(mpsc::UnboundedSender<String>);

impl Notifier {
    pub(super) fn start(pool: PgPool) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(notify(pool, receiver));
        Notifier(sender)
    }

    /// Tells every instance that `channel` advanced to its last seq. Call after the commit.
    pub(super) fn announce(&self, channel: &domain::Channel) {
        let payload = format!("{} {} {}", channel.id, channel.last_seq.0, now_ms());
        // The task ends only when every sender is gone.
        let _ = self.0.send(payload);
    }
}

/// Sends what `announce` queued, as many at once as are waiting. Ends with the last handle.
async fn notify(pool: PgPool, mut queue: mpsc::UnboundedReceiver<String>) {
    let mut batch = Vec::with_capacity(NOTICE_BATCH);
    while queue.recv_many(&mut batch, NOTICE_BATCH).await > 0 {
        // A few tries: a notice sent twice wakes nobody twice (see `Signals::publish`).
        for attempt in 1..=NOTICE_TRIES {
            let sent =
                sqlx::query("SELECT pg_notify($1, payload) FROM UNNEST($2::TEXT[]) AS payload")
                    .bind(ADVANCED)
                    .bind(&batch)
                    .execute(&pool)
                    .await;
            match sent {
                Ok(_) => break,
                // The commits stand; waiters elsewhere see them when their wait ends.
                Err(error) if attempt == NOTICE_TRIES => {
                    tracing::warn!(%error, notices = batch.len(), "could not send channel notices");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await,
            }
        }
        batch.clear();
    }
}

/// The running listener; stops when dropped.
pub(super) struct Listening {
    task: JoinHandle<()>,
    pub(super) stats: Arc<NoticeStats>,
}

/// What the listener has seen, for `/metrics`.
#[derive(Debug, Default)]
pub(super) struct NoticeStats {
    pub(super) received: AtomicU64,
    /// Sum over the notices of the time from just before they were sent (right after their
    /// commit) to their arrival here, in microseconds, by the sending instance's clock and
    /// this one's (the same clock on one machine, roughly the same elsewhere).
    pub(super) lag_micros: AtomicU64,
    pub(super) reconnections: AtomicU64,
}

impl Listening {
    pub(super) async fn start(pool: &PgPool, signals: Signals) -> Result<Self, StoreError> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(ADVANCED).await?;
        let stats = Arc::new(NoticeStats::default());
        let task = tokio::spawn(listen(listener, signals, stats.clone()));
        Ok(Listening { task, stats })
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn listen(mut listener: PgListener, signals: Signals, stats: Arc<NoticeStats>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notice)) => {
                let Some((channel, seq, sent_at)) = parse(notice.payload()) else {
                    tracing::warn!(payload = notice.payload(), "an unreadable channel notice");
                    continue;
                };
                stats.received.fetch_add(1, Ordering::Relaxed);
                let lag_ms = now_ms().saturating_sub(sent_at.0).max(0);
                stats.lag_micros.fetch_add(
                    u64::try_from(lag_ms).unwrap_or_default() * 1000,
                    Ordering::Relaxed,
                );
                signals.publish(
                    &channel,
                    Advance {
                        seq,
                        snapshot: None,
                    },
                );
            }
            // The connection dropped, or failed: listen again, and once listening, wake every
            // waiter to look for itself, since whatever was sent meanwhile is lost. (Waking
            // before listening again would miss what is sent in between.)
            Ok(None) | Err(_) => {
                stats.reconnections.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("lost the database notice connection; reconnecting");
                while let Err(error) = listener.listen(ADVANCED).await {
                    tracing::warn!(%error, "could not listen for channel notices; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                signals.wake_all();
            }
        }
    }
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Reads `<channel id> <seq> <ms>`.
fn parse(payload: &str) -> Option<(ChannelId, Seq, Timestamp)> {
    let mut parts = payload.split(' ');
    let channel = ChannelId::parse(parts.next()?).ok()?;
    let seq = Seq(parts.next()?.parse().ok()?);
    let at = Timestamp(parts.next()?.parse().ok()?);
    parts.next().is_none().then_some((channel, seq, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_names_a_channel_a_seq_and_a_time() {
        let id = ChannelId::from_random([7; 12]);
        let (channel, seq, at) = parse(&format!("{id} 42 1700000000000")).unwrap();
        assert_eq!(
            (channel, seq, at),
            (id.clone(), Seq(42), Timestamp(1_700_000_000_000))
        );
        assert!(parse(&format!("{id} 42")).is_none());
        assert!(parse(&format!("{id} 42 1 extra")).is_none());
        assert!(parse("not-a-channel 1 1").is_none());
    }
}
