//! "Channel X advanced to seq N": the wake-up that long-polling syncs wait on.
//!
//! A backend publishes after its commit, so a woken reader always finds the new rows. A reader
//! subscribes *before* it reads, so a publish between its read and its wait is never missed.
//! Only channels with someone waiting take memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::{ChannelId, Seq};
use tokio::sync::watch;

/// The registry of channels someone is waiting on. Cheap to clone.
#[derive(Clone, Default)]
pub struct Signals {
    channels: Arc<Mutex<HashMap<ChannelId, watch::Sender<Seq>>>>,
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
            .or_insert_with(|| watch::channel(Seq::ZERO).0)
            .subscribe();
        Subscription {
            receiver: Some(receiver),
            channel: channel.clone(),
            signals: self.clone(),
        }
    }

    /// Wakes everyone waiting on `channel`. Called after the commit that stored `seq`.
    pub fn publish(&self, channel: &ChannelId, seq: Seq) {
        let channels = self
            .channels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(sender) = channels.get(channel) {
            sender.send_replace(seq);
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
    receiver: Option<watch::Receiver<Seq>>,
    channel: ChannelId,
    signals: Signals,
}

impl Subscription {
    /// Resolves at the next publish after this subscription was made or last woke.
    pub async fn advanced(&mut self) {
        if let Some(receiver) = &mut self.receiver {
            // The sender lives in the registry for as long as this receiver does, so an error
            // (sender dropped) cannot happen; treat it as a wake-up anyway.
            let _ = receiver.changed().await;
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
