//! Bot timers, from the reaction that sets them to the notice that fires them.
//!
//! A bot's reaction asks for timers (`ctx.set_timer(ms, tag)`); they are stored with the
//! reaction, in its transaction ([`timer_writes`]). The timer clock, one task per service,
//! sleeps until the earliest is due, then fires it: one transaction appends the `timer_fired`
//! notice and deletes the timer's row, so a timer fires exactly once, also across a crash (a
//! row still there after a restart has not fired, and fires then). The notice is the bot's
//! `on_timer(tag)` event, handled like any other, so replay needs no clock.
//!
//! A timer of a channel that closed, or of a bot that stopped (disabled, run ended), is dropped
//! when it comes due; a replaced bot's timers go with the replacement (`BotWrite::Attach`).

use std::sync::Arc;
use std::time::Duration;

use bots::TimerRequest;
use domain::{Seq, Timestamp};
use store::bots::{BotWrite, Timer, TimerWrite};
use tokio::sync::Notify;

use crate::Service;
use crate::error::ServiceError;

/// Timers fired per round of the clock before it looks at the time again.
const FIRE_BATCH: usize = 64;

/// The longest the clock sleeps without looking, so that a clock that jumped (or a timer set by
/// another path) is noticed within this.
const MAX_NAP: Duration = Duration::from_secs(1);

/// Wakes the timer clock when a reaction sets a timer that may be due sooner.
#[derive(Default)]
pub(crate) struct TimerClock {
    changed: Arc<Notify>,
}

impl TimerClock {
    pub(crate) fn timers_changed(&self) {
        // A stored permit: a change made while the clock is busy firing is not lost.
        self.changed.notify_one();
    }
}

/// What a reaction's timer calls do to the stored timers: due times count from the event's
/// time, so a replay computes the same. Refused (as the event's failure) when the bot would be
/// left with more than [`bots::MAX_PENDING_TIMERS`] pending, by the rule replay applies too.
pub(crate) fn timer_writes(
    pending: &[Timer],
    requests: &[TimerRequest],
    event_seq: Seq,
    event_at: Timestamp,
) -> Result<Vec<TimerWrite>, bots::BotError> {
    let tags: Vec<&str> = pending.iter().map(|timer| timer.tag.as_str()).collect();
    bots::pending_timers_after(&tags, requests)?;
    Ok(requests
        .iter()
        .map(|request| match request {
            TimerRequest::Set { tag, ms } => TimerWrite::Set {
                tag: tag.clone(),
                due: Timestamp(
                    event_at
                        .0
                        .saturating_add(i64::try_from(*ms).unwrap_or(i64::MAX)),
                ),
                set_by: event_seq,
            },
            TimerRequest::Cancel { tag } => TimerWrite::Cancel { tag: tag.clone() },
        })
        .collect())
}

impl Service {
    /// Starts the timer clock; it stops with the service (or at shutdown).
    pub(crate) fn spawn_timer_clock(&self) {
        self.spawn_rounds(self.inner.timers.changed.clone(), |service| async move {
            service.fire_due_timers().await.unwrap_or_else(|error| {
                tracing::warn!(%error, "bot timers could not be fired; trying again");
                MAX_NAP
            })
        });
    }

    /// Fires every timer that is due; returns how long until the next one may be.
    pub(crate) async fn fire_due_timers(&self) -> Result<Duration, ServiceError> {
        loop {
            let next = self.inner.store.next_timers(FIRE_BATCH).await?;
            let now = self.now();
            let due: Vec<Timer> = next.iter().filter(|t| t.due <= now).cloned().collect();
            if due.is_empty() {
                let wait = next.first().map_or(MAX_NAP, |timer| {
                    Duration::from_millis(u64::try_from(timer.due.0 - now.0).unwrap_or(0))
                });
                return Ok(wait.min(MAX_NAP));
            }
            for timer in due {
                self.fire_timer(timer).await?;
            }
        }
    }

    /// Appends the timer's notice and deletes it, in one transaction; drops a timer whose
    /// channel closed or whose bot stopped.
    async fn fire_timer(&self, timer: Timer) -> Result<(), ServiceError> {
        let fire = BotWrite::FireTimer {
            slot: timer.slot.clone(),
            tag: timer.tag.clone(),
            set_by: timer.set_by,
        };
        let (slot, tag, set_by, due) = (
            timer.slot.clone(),
            timer.tag.clone(),
            timer.set_by,
            timer.due,
        );
        let clock = self.inner.clock.clone();
        let result = self
            .inner
            .store
            .update_channel_and_bots(&timer.channel_id, move |channel| {
                channel.fire_timer(&slot, tag, set_by, due, clock.now())?;
                Ok(((), vec![fire]))
            })
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(channel = %timer.channel_id, slot = %timer.slot, tag = %timer.tag, "bot timer fired");
                self.wake_bots(&timer.channel_id);
                Ok(())
            }
            // Replaced, cancelled or fired meanwhile: nothing to do.
            Err(store::StoreError::Conflict(_)) => Ok(()),
            // The channel closed or the bot stopped: the timer can never fire.
            Err(store::StoreError::Domain(_)) => {
                self.inner.store.drop_timer(&timer).await?;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests;
