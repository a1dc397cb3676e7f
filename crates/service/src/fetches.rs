//! Bot fetches (the witness), from the reaction that asks to the notice that answers.
//!
//! A bot's reaction asks for fetches (`ctx.request_fetch(url, {tag})`); they are stored with the
//! reaction, in its transaction ([`fetch_writes`]). The fetcher, one task per service, takes the
//! pending ones, oldest first, a few at a time; for each it makes the fetch outside the sandbox
//! (`outbound::Witness`: public addresses only, caps on size and time, the operator's lists),
//! signs the record with the server's key, and in one transaction appends the `fetch_attested`
//! notice and deletes the request, so each request is answered once, also across a crash (a
//! request still pending after a restart is fetched then; the fetch itself may then run twice,
//! its record is kept once). The notice is the bot's `on_fetch(result)` event, handled like any
//! other, so a replay reads the record and never fetches.
//!
//! Fetches are capped per channel and per channel owner per minute; a request over the cap is
//! answered at once with a `RATE_LIMITED` record and no fetch. The counts live in this
//! process's memory, like the bot output caps. A request whose channel closed, or whose bot
//! stopped, is dropped unanswered.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bots::FetchRequest;
use domain::attestation::{Attestation, FetchFailure, FetchFailureCode};
use domain::{ChannelId, PrincipalId, Seq, Timestamp};
use store::bots::{BotWrite, FetchWrite, PendingFetch, lease};
use tokio::sync::Notify;
use transcript::signing::AttestationStatement;

use crate::Service;
use crate::error::ServiceError;

/// Pending fetches read per round.
const FETCH_BATCH: usize = 64;
/// How long an instance's lease on one fetch lasts: longer than the witness's timeout, so
/// that a slow fetch is not made twice; how long a fetch waits when the instance making it
/// dies.
const FETCH_LEASE_TERM: Duration = Duration::from_secs(60);

/// The longest the fetcher waits without looking, so that a request written by another path
/// (or before a restart) is noticed within this.
const MAX_NAP: Duration = Duration::from_secs(1);

/// How the server fetches for bots.
#[derive(Clone)]
pub struct FetchSettings {
    pub witness: Arc<outbound::Witness>,
    /// Fetches all bots of one channel may have made per minute.
    pub per_channel_per_minute: u32,
    /// Fetches all bots of one owner's channels may have made per minute.
    pub per_owner_per_minute: u32,
    /// Fetches in flight at once, over all channels.
    pub concurrency: usize,
}

impl FetchSettings {
    /// The caps the server starts with, around `witness`.
    pub fn with_witness(witness: outbound::Witness) -> Self {
        FetchSettings {
            witness: Arc::new(witness),
            per_channel_per_minute: 20,
            per_owner_per_minute: 60,
            concurrency: 4,
        }
    }
}

impl Default for FetchSettings {
    fn default() -> Self {
        let witness = outbound::Witness::new(
            outbound::WitnessPolicy::default(),
            Arc::new(outbound::SystemResolver),
        )
        .expect("the public roots and the default TLS settings always make a witness");
        FetchSettings::with_witness(witness)
    }
}

impl std::fmt::Debug for FetchSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchSettings")
            .field("policy", self.witness.policy())
            .field("per_channel_per_minute", &self.per_channel_per_minute)
            .field("per_owner_per_minute", &self.per_owner_per_minute)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// A pending fetch's identity.
type FetchKey = (ChannelId, domain::SlotLabel, Seq, u32);

fn key(fetch: &PendingFetch) -> FetchKey {
    (
        fetch.channel_id.clone(),
        fetch.slot.clone(),
        fetch.requested_by,
        fetch.position,
    )
}

/// The fetcher's shared state: what is in flight, the per-minute counts, and its wake-up.
#[derive(Default)]
pub(crate) struct Fetcher {
    changed: Arc<Notify>,
    in_flight: Mutex<HashSet<FetchKey>>,
    minutes: Mutex<Minutes>,
}

impl Fetcher {
    pub(crate) fn requests_changed(&self) {
        self.changed.notify_one();
    }
}

/// Fetches counted in fixed one-minute windows, per channel and per owner.
#[derive(Default)]
struct Minutes {
    window: i64,
    per_channel: HashMap<ChannelId, u32>,
    per_owner: HashMap<PrincipalId, u32>,
}

impl Minutes {
    /// Counts one fetch if both caps allow it at `now`; otherwise says which cap is full.
    fn admit(
        &mut self,
        channel: &ChannelId,
        owner: &PrincipalId,
        now: Timestamp,
        settings: &FetchSettings,
    ) -> Result<(), &'static str> {
        let window = now.0.div_euclid(60_000);
        if window != self.window {
            *self = Minutes {
                window,
                ..Minutes::default()
            };
        }
        let in_channel = self.per_channel.get(channel).copied().unwrap_or(0);
        if in_channel >= settings.per_channel_per_minute {
            return Err("this channel's fetches per minute");
        }
        let of_owner = self.per_owner.get(owner).copied().unwrap_or(0);
        if of_owner >= settings.per_owner_per_minute {
            return Err("the channel owner's fetches per minute");
        }
        self.per_channel.insert(channel.clone(), in_channel + 1);
        self.per_owner.insert(owner.clone(), of_owner + 1);
        Ok(())
    }
}

/// The fetches a reaction asks for, as stored rows; refused (as the event's failure) when the
/// bot would be left with more than [`bots::MAX_PENDING_FETCHES`] pending, by the rule replay
/// applies too.
pub(crate) fn fetch_writes(
    pending: usize,
    requests: &[FetchRequest],
    event_seq: Seq,
    now: Timestamp,
) -> Result<Vec<FetchWrite>, bots::BotError> {
    bots::pending_fetches_after(pending, requests)?;
    Ok(requests
        .iter()
        .zip(0u32..)
        .map(|(request, position)| FetchWrite {
            requested_by: event_seq,
            position,
            tag: request.tag.clone(),
            url: request.url.clone(),
            requested_at: now,
        })
        .collect())
}

impl Service {
    /// Starts the fetcher; it stops with the service (or at shutdown).
    pub(crate) fn spawn_fetcher(&self) {
        self.spawn_rounds(self.inner.fetcher.changed.clone(), |service| async move {
            if let Err(error) = service.start_pending_fetches().await {
                tracing::warn!(%error, "bot fetches could not be started; trying again");
            }
            MAX_NAP
        });
    }

    /// Starts pending fetches that are not in flight, up to the concurrency cap.
    async fn start_pending_fetches(&self) -> Result<(), ServiceError> {
        let pending = self.inner.store.next_fetches(FETCH_BATCH).await?;
        let settings = &self.inner.settings.fetch;
        for fetch in pending {
            {
                let mut in_flight = self
                    .inner
                    .fetcher
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner());
                if in_flight.len() >= settings.concurrency.max(1) {
                    return Ok(());
                }
                if !in_flight.insert(key(&fetch)) {
                    continue;
                }
            }
            let service = self.clone();
            tokio::spawn(async move {
                let done = key(&fetch);
                if let Err(error) = service.answer_fetch_under_lease(fetch).await {
                    tracing::warn!(%error, "a bot fetch could not be answered; trying again");
                }
                service
                    .inner
                    .fetcher
                    .in_flight
                    .lock()
                    .unwrap_or_else(|poison| poison.into_inner())
                    .remove(&done);
                service.inner.fetcher.requests_changed();
            });
        }
        Ok(())
    }

    /// [`Service::answer_fetch`], unless another instance sharing the database is making or
    /// has made the same fetch: the one that holds its lease makes it, once. (A fetch in
    /// flight when its instance stops is made again elsewhere, as after a restart.)
    async fn answer_fetch_under_lease(&self, fetch: PendingFetch) -> Result<(), ServiceError> {
        let store = &self.inner.store;
        let (lease, holder) = (lease::fetch(&fetch), self.inner.instance.as_str());
        if !store.take_lease(&lease, holder, FETCH_LEASE_TERM).await? {
            return Ok(());
        }
        // Another instance may have answered it (and let its lease go) since this one listed
        // it: the row is gone then.
        let pending = store.fetches_of(&fetch.channel_id, &fetch.slot).await?;
        if !pending.contains(&fetch) {
            store.release_lease(&lease, holder).await?;
            return Ok(());
        }
        let answered = self.answer_fetch(fetch).await;
        store.release_lease(&lease, holder).await?;
        answered
    }

    /// Makes one fetch (unless a cap refuses it), signs the record and stores it with the
    /// request's deletion; drops a request whose channel closed or whose bot stopped.
    pub(crate) async fn answer_fetch(&self, fetch: PendingFetch) -> Result<(), ServiceError> {
        let channel = self.inner.store.load_channel(&fetch.channel_id).await?;
        if !channel.bot_is_running(&fetch.slot) {
            self.inner.store.drop_fetch(&fetch).await?;
            return Ok(());
        }
        let settings = &self.inner.settings.fetch;
        let now = self.now();
        let admitted = self
            .inner
            .fetcher
            .minutes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .admit(&channel.id, &channel.owner, now, settings);
        let attestation = match admitted {
            Ok(()) => settings.witness.fetch(&fetch.url, now).await,
            Err(cap) => refused(&fetch.url, now, cap),
        };
        let keyring = self.keyring().await?;
        let witness = keyring.sign_attestation(&AttestationStatement {
            channel: &fetch.channel_id,
            slot: &fetch.slot,
            tag: &fetch.tag,
            requested_by: fetch.requested_by,
            attestation: &attestation,
        });
        let answer = BotWrite::AnswerFetch {
            slot: fetch.slot.clone(),
            requested_by: fetch.requested_by,
            position: fetch.position,
        };
        let (slot, tag, requested_by) = (fetch.slot.clone(), fetch.tag.clone(), fetch.requested_by);
        let clock = self.inner.clock.clone();
        let outcome = attestation
            .error
            .as_ref()
            .map_or("ok", |failure| failure.code.as_str());
        let result = self
            .inner
            .store
            .update_channel_and_bots(&fetch.channel_id, move |channel| {
                channel.record_fetch(
                    &slot,
                    tag,
                    requested_by,
                    attestation,
                    witness,
                    clock.now(),
                )?;
                Ok(((), vec![answer]))
            })
            .await;
        match result {
            Ok(_) => {
                tracing::info!(channel = %fetch.channel_id, slot = %fetch.slot, outcome, "bot fetch answered");
                self.wake_bots(&fetch.channel_id);
                Ok(())
            }
            // Answered meanwhile (another task, or a replaced bot's request): nothing to do.
            Err(store::StoreError::Conflict(_)) => Ok(()),
            // The channel closed or the bot stopped while the fetch ran.
            Err(store::StoreError::Domain(_)) => {
                self.inner.store.drop_fetch(&fetch).await?;
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// The record of a fetch a cap refused: nothing was fetched.
fn refused(url: &str, now: Timestamp, cap: &str) -> Attestation {
    Attestation {
        url: url.to_owned(),
        fetched_at: now,
        address: None,
        tls: None,
        status: None,
        headers: Default::default(),
        body: None,
        error: Some(FetchFailure {
            code: FetchFailureCode::RateLimited,
            message: format!("over {cap}; nothing was fetched, ask again later"),
        }),
    }
}

#[cfg(test)]
mod tests;
