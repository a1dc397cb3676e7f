//! The long-polling sync: the messages after a cursor that the caller's seat may see, or a wait
//! until there are some.
//!
//! A sync runs in steps. [`Service::start_sync`] checks the request and reads once; when nothing
//! is new it returns a [`PendingSync`], which holds the caller's place: the subscription to the
//! channel (taken *before* the read, so a commit in between still wakes it), the deadline and
//! the caller's waiting slot. [`PendingSync::wait`] waits for the channel to advance, and
//! [`Service::resume_sync`] reads again. [`Service::sync_messages`] runs all the steps in one
//! future. The MCP endpoint runs them itself, so that a waiting sync holds only its
//! `PendingSync` and not a protocol session (`server::mcp::parking`).

use domain::limits::{MAX_SYNC_WAIT_MS, sync_wait};
use domain::{
    Channel, ChannelId, DomainError, Message, MessageKind, PageBudget, PrincipalId, Seq, SlotLabel,
};
use store::{Advance, Audience, MessagePage, Subscription};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::admission::WaitingGuard;
use crate::caller::{Access, Caller};
use crate::error::ServiceError;
use crate::service::{Service, parse_slot};

/// Arguments of `sync_messages`, as received.
#[derive(Debug, Default, Clone)]
pub struct SyncRequest {
    pub channel_id: String,
    pub slot: Option<String>,
    pub cursor: Option<i64>,
    pub wait_ms: Option<u64>,
    pub limit: Option<usize>,
}

/// What one sync returns.
#[derive(Debug)]
pub struct SyncPage {
    pub messages: Vec<Message>,
    /// Pass this as `cursor` next time.
    pub next_cursor: Seq,
    /// More messages are ready: sync again at once.
    pub has_more: bool,
    /// The seat the messages were read for.
    pub slot: SlotLabel,
    /// The channel, when its membership or settings may have changed (or on a first sync).
    pub channel: Option<Channel>,
    /// How long the call waited before answering.
    pub waited_ms: u64,
    /// The `wait_ms` asked for, when it was above [`MAX_SYNC_WAIT_MS`] and so was cut down.
    pub wait_above_cap: Option<u64>,
    /// The server's signature on the channel's head as of this page.
    pub head: transcript::SignedHead,
}

/// Where a sync stands after one step.
#[derive(Debug)]
pub enum SyncStep {
    /// Something to return: messages, or nothing once the wait ran out.
    Ready(SyncPage),
    /// Nothing yet: wait on it, then resume it.
    Pending(PendingSync),
}

/// A sync with nothing to return yet. Dropping it abandons the sync and frees the caller's
/// waiting slot.
pub struct PendingSync {
    who: PrincipalId,
    channel: ChannelId,
    slot: Option<SlotLabel>,
    cursor: Seq,
    budget: PageBudget,
    started: Instant,
    deadline: Instant,
    wait_above_cap: Option<u64>,
    subscription: Subscription,
    /// The advance that ended the last wait; it often carries the committed state, so a woken
    /// sync need not read the database.
    latest: Option<Advance>,
    /// Taken on the first step that finds nothing, so that only syncs that really wait count
    /// against the caller's cap.
    waiting: Option<WaitingGuard>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for PendingSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSync")
            .field("channel", &self.channel)
            .field("slot", &self.slot)
            .field("cursor", &self.cursor)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// A pending sync that has waited: the only thing [`Service::resume_sync`] takes, so a sync
/// cannot be resumed without waiting first (and spin).
#[derive(Debug)]
pub struct WokenSync(PendingSync);

impl PendingSync {
    /// Waits until the channel advances, the deadline passes or the server shuts down. Then
    /// [`Service::resume_sync`] reads again.
    pub async fn wait(mut self) -> WokenSync {
        tokio::select! {
            advance = self.subscription.advanced() => self.latest = Some(advance),
            () = tokio::time::sleep_until(self.deadline) => {}
            () = self.shutdown.cancelled() => {}
        }
        WokenSync(self)
    }
}

impl Service {
    /// Returns the messages after `cursor` that the caller's seat may see. When there are
    /// none, waits up to `wait_ms` for one and answers within moments of its commit.
    pub async fn sync_messages(
        &self,
        caller: &Caller,
        request: SyncRequest,
    ) -> Result<SyncPage, ServiceError> {
        let mut step = self.start_sync(caller, request).await?;
        loop {
            match step {
                SyncStep::Ready(page) => return Ok(page),
                SyncStep::Pending(pending) => step = self.resume_sync(pending.wait().await).await?,
            }
        }
    }

    /// The first step of a sync: checks the request and the caller's seat, and reads once.
    pub async fn start_sync(
        &self,
        caller: &Caller,
        request: SyncRequest,
    ) -> Result<SyncStep, ServiceError> {
        let who = self.authorize(caller, Access::Read)?;
        let channel = ChannelId::parse(&request.channel_id)?;
        let slot = parse_slot(request.slot.as_deref())?;
        let cursor = Seq(request.cursor.unwrap_or(0));
        if cursor.0 < 0 {
            return Err(DomainError::invalid("cursor", "the cursor is a seq, 0 or more").into());
        }
        let started = Instant::now();
        let subscription = self.inner.store.signals().subscribe(&channel);
        self.sync_step(PendingSync {
            who: who.id.clone(),
            channel,
            slot,
            cursor,
            budget: PageBudget::for_sync(request.limit),
            started,
            deadline: started + sync_wait(request.wait_ms),
            wait_above_cap: request.wait_ms.filter(|&asked| asked > MAX_SYNC_WAIT_MS),
            subscription,
            latest: None,
            waiting: None,
            shutdown: self.inner.shutdown.clone(),
        })
        .await
    }

    /// The next step of a sync after [`PendingSync::wait`]: reads again, checking the seat
    /// again (the caller may have lost it meanwhile).
    pub async fn resume_sync(&self, woken: WokenSync) -> Result<SyncStep, ServiceError> {
        self.sync_step(woken.0).await
    }

    async fn sync_step(&self, mut sync: PendingSync) -> Result<SyncStep, ServiceError> {
        let store = &self.inner.store;
        let cursor = sync.cursor;
        // After a wake-up, the committed state usually travels with the signal; the database is
        // read only when it does not cover everything after the cursor.
        let snapshot = sync
            .latest
            .take()
            .and_then(|advance| advance.snapshot)
            .filter(|snapshot| snapshot.covers(cursor));
        // Borrowed from the snapshot when there is one: a thousand woken syncs need not each
        // copy the channel just to check their seat.
        let loaded;
        let channel: &Channel = match &snapshot {
            Some(snapshot) => &snapshot.channel,
            None => {
                loaded = store.load_channel(&sync.channel).await?;
                &loaded
            }
        };
        let seat = channel.acting_seat(&sync.who, sync.slot.as_ref())?;
        let slot = seat.label.clone();
        let since = seat.seat.as_ref().map_or(Seq::ZERO, |held| held.since);
        if cursor > channel.last_seq {
            return Err(DomainError::invalid(
                "cursor",
                format!(
                    "cursor {} is ahead of the channel's last seq {}",
                    cursor.0, channel.last_seq.0
                ),
            )
            .into());
        }
        // A page is bounded by bytes as well as by count; it ends at the first message it
        // refuses, and `next_cursor` stops before that one, so nothing is skipped.
        let MessagePage { messages, has_more } = match &snapshot {
            Some(snapshot) => MessagePage::filled(
                snapshot
                    .messages
                    .iter()
                    .filter(|message| message.seq > cursor && message.visible_to(&slot, since)),
                sync.budget,
            ),
            None => {
                store
                    .message_page(
                        &sync.channel,
                        Audience::Seat { slot: &slot, since },
                        cursor,
                        channel.last_seq,
                        sync.budget,
                    )
                    .await?
            }
        };
        let out_of_time = Instant::now() >= sync.deadline || sync.shutdown.is_cancelled();
        if messages.is_empty() && !out_of_time {
            if sync.waiting.is_none() {
                sync.waiting = Some(self.inner.admission.start_waiting(&sync.who)?);
            }
            return Ok(SyncStep::Pending(sync));
        }
        let next_cursor = match (has_more, messages.last()) {
            (true, Some(last)) => last.seq,
            _ => channel.last_seq,
        };
        if next_cursor > cursor {
            self.inner
                .reads
                .record(&sync.channel, &slot, &sync.who, next_cursor);
        }
        let roster_changed =
            cursor == Seq::ZERO || messages.iter().any(|m| m.kind == MessageKind::System);
        let head = self.signed_head(channel).await?;
        Ok(SyncStep::Ready(SyncPage {
            messages,
            next_cursor,
            has_more,
            slot,
            channel: roster_changed.then(|| channel.clone()),
            waited_ms: u64::try_from(sync.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            wait_above_cap: sync.wait_above_cap,
            head,
        }))
    }
}
