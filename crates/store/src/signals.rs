//! "Channel X advanced to seq N": the wake-up that long-polling syncs wait on.
//!
//! A backend publishes after its commit, so a woken reader always finds the new rows. A reader
//! subscribes *before* it reads, so a publish between its read and its wait is never missed.
//! Only channels with someone waiting take memory.
//!
//! A backend that knows the committed state (the in-process SQLite writer) attaches it as a
//! [`Snapshot`], so that a thousand woken readers need not each query the database for the same
//! few rows. A backend that learns of an advance from elsewhere (another instance) publishes the
//! seq alone, and readers fall back to the database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::{Channel, ChannelId, Message, Seq};
use tokio::sync::watch;

/// The newest committed state of a channel, as far as one publish knows it.
#[derive(Debug, Clone, Default)]
pub struct Advance {
    pub seq: Seq,
    pub snapshot: Option<Arc<Snapshot>>,
}

/// The channel right after a commit, and the messages that commit (or group of commits) added,
/// oldest first, ending at `channel.last_seq`.
#[derive(Debug)]
pub struct Snapshot {
    pub channel: Channel,
    pub messages: Vec<Message>,
}

impl Snapshot {
    /// Whether this snapshot holds every message after `cursor`, so a reader at that cursor
    /// needs nothing from the database.
    pub fn covers(&self, cursor: Seq) -> bool {
        cursor <= self.channel.last_seq
            && self
                .messages
                .first()
                .is_some_and(|first| first.seq.0 <= cursor.0 + 1)
    }
}

/// The registry of channels someone is waiting on. Cheap to clone.
#[derive(Clone, Default)]
pub struct Signals {
    channels: Arc<Mutex<HashMap<ChannelId, watch::Sender<Advance>>>>,
}

impl Signals {
    /// Starts listening for advances of `channel`.
    pub fn subscribe(&self, channel: &ChannelId) -> Subscription {
        // A std mutex: it is held for a map operation only, never across an await.
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let receiver = channels
            .entry(channel.clone())
            .or_insert_with(|| watch::channel(Advance::default()).0)
            .subscribe();
        Subscription {
            receiver: Some(receiver),
            channel: channel.clone(),
            signals: self.clone(),
        }
    }

    /// Whether anyone waits on `channel`, so a publisher can skip building a snapshot.
    pub fn is_watched(&self, channel: &ChannelId) -> bool {
        self.channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains_key(channel)
    }

    /// Wakes everyone waiting on `channel`. Called after the commit that stored `advance.seq`.
    pub fn publish(&self, channel: &ChannelId, advance: Advance) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(sender) = channels.get(channel) {
            // Advances may arrive twice and out of order (this instance's own commit, then the
            // database's notice of it): a waiter is woken by news only.
            sender.send_if_modified(|newest| {
                let news = advance.seq > newest.seq;
                if news {
                    *newest = advance;
                }
                news
            });
        }
    }

    /// Wakes every waiter without news, so that each reads the database for itself: for when
    /// advances may have been missed.
    pub fn wake_all(&self) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for sender in channels.values() {
            sender.send_modify(|newest| newest.snapshot = None);
        }
    }

    /// How many channels have at least one waiter (for metrics and tests).
    pub fn watched_channels(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }
}

/// A registration for one channel's advances; dropping it unregisters.
pub struct Subscription {
    receiver: Option<watch::Receiver<Advance>>,
    channel: ChannelId,
    signals: Signals,
}

impl Subscription {
    /// Resolves at the next publish after this subscription was made or last woke, with the
    /// newest advance.
    pub async fn advanced(&mut self) -> Advance {
        match &mut self.receiver {
            Some(receiver) => {
                // The sender lives in the registry for as long as this receiver does, so an
                // error (sender dropped) cannot happen; treat it as a wake-up anyway.
                let _ = receiver.changed().await;
                receiver.borrow_and_update().clone()
            }
            None => Advance::default(),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        drop(self.receiver.take());
        let mut channels = self
            .signals
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if channels
            .get(&self.channel)
            .is_some_and(|sender| sender.receiver_count() == 0)
        {
            channels.remove(&self.channel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel() -> ChannelId {
        ChannelId::from_random([5; 12])
    }

    #[tokio::test]
    async fn an_advance_that_is_not_news_wakes_nobody() {
        let signals = Signals::default();
        let mut waiting = signals.subscribe(&channel());
        signals.publish(
            &channel(),
            Advance {
                seq: Seq(3),
                snapshot: None,
            },
        );
        assert_eq!(waiting.advanced().await.seq, Seq(3));
        // The database's notice of the same commit, then an older one arriving late.
        signals.publish(
            &channel(),
            Advance {
                seq: Seq(3),
                snapshot: None,
            },
        );
        signals.publish(
            &channel(),
            Advance {
                seq: Seq(2),
                snapshot: None,
            },
        );
        let woken = tokio::time::timeout(std::time::Duration::from_millis(50), waiting.advanced());
        assert!(woken.await.is_err(), "woken without news");
        signals.publish(
            &channel(),
            Advance {
                seq: Seq(4),
                snapshot: None,
            },
        );
        assert_eq!(waiting.advanced().await.seq, Seq(4));
    }

    #[tokio::test]
    async fn wake_all_wakes_every_waiter_to_read_for_itself() {
        let signals = Signals::default();
        let mut waiting = signals.subscribe(&channel());
        signals.publish(
            &channel(),
            Advance {
                seq: Seq(7),
                snapshot: None,
            },
        );
        waiting.advanced().await;
        signals.wake_all();
        let woken = waiting.advanced().await;
        assert_eq!(woken.seq, Seq(7));
        assert!(woken.snapshot.is_none());
    }
}
