//! What is stored of a bot beside its public card: its source, secret seed, parameters, state
//! and how far through the channel it has been given events. Written only together with the
//! channel change it belongs to ([`crate::Store::update_channel_and_bots`], [`crate::ChannelBackend::insert_channel`]).

use domain::{ChannelId, Seq, SlotLabel, Timestamp};

use crate::StoreError;

/// A bot attached to a channel slot, secrets included. Never shown as a whole.
#[derive(Clone, PartialEq)]
pub struct BotRecord {
    pub channel_id: ChannelId,
    pub slot: SlotLabel,
    pub name: String,
    pub source: String,
    /// `javascript` or `python`.
    pub language: String,
    pub code_hash: String,
    pub params: serde_json::Value,
    pub params_hash: String,
    /// Hex of the 32-byte secret seed.
    pub seed: String,
    pub seed_commitment: String,
    pub state: Option<serde_json::Value>,
    /// The last channel message this bot was given or skipped.
    pub processed_seq: Seq,
    /// Failed events in a row.
    pub failures: u32,
    pub disabled: bool,
    /// The bot ended its own run; its seed has been revealed.
    pub ended: bool,
}

impl std::fmt::Debug for BotRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BotRecord")
            .field("channel_id", &self.channel_id)
            .field("slot", &self.slot)
            .field("name", &self.name)
            .field("code_hash", &self.code_hash)
            .field("processed_seq", &self.processed_seq)
            .field("failures", &self.failures)
            .field("disabled", &self.disabled)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// A bot's pending timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timer {
    pub channel_id: ChannelId,
    pub slot: SlotLabel,
    pub tag: String,
    pub due: Timestamp,
    /// The seq of the event whose reaction set it.
    pub set_by: Seq,
}

/// A change to a bot's timers, in the order its event made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimerWrite {
    /// Sets (or replaces) the timer `tag`.
    Set {
        tag: String,
        due: Timestamp,
        set_by: Seq,
    },
    /// Cancels the timer `tag`, if it is pending.
    Cancel { tag: String },
}

/// A fetch a bot asked for that the server has not answered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingFetch {
    pub channel_id: ChannelId,
    pub slot: SlotLabel,
    /// The seq of the event whose reaction asked.
    pub requested_by: Seq,
    /// The call's place among that event's `ctx.request_fetch` calls.
    pub position: u32,
    pub tag: String,
    pub url: String,
    pub requested_at: Timestamp,
}

/// A fetch a reaction asks for, stored with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchWrite {
    pub requested_by: Seq,
    pub position: u32,
    pub tag: String,
    pub url: String,
    pub requested_at: Timestamp,
}

/// A change to a bot's row, stored in the transaction of a channel change.
#[derive(Debug, Clone, PartialEq)]
pub enum BotWrite {
    /// Attaches a bot, replacing whatever was in its slot (and dropping that bot's timers and
    /// fetches).
    Attach(Box<BotRecord>),
    /// The bot got (or skipped) the messages up to `to`. Refused unless its row still says
    /// `from`, so no event is ever handled twice.
    Progress {
        slot: SlotLabel,
        from: Seq,
        to: Seq,
        /// `Some` replaces the stored state.
        state: Option<serde_json::Value>,
        failures: u32,
        disabled: bool,
        /// The bot ended its run with this event.
        ended: bool,
        /// What the event did to the bot's timers. A bot that is disabled or ended keeps none.
        timers: Vec<TimerWrite>,
        /// The fetches the event asked for. A bot that is disabled or ended keeps none.
        fetches: Vec<FetchWrite>,
    },
    /// The timer fired: its row goes. Refused unless it is still pending as `set_by` set it,
    /// so a timer fires once even when two firings race.
    FireTimer {
        slot: SlotLabel,
        tag: String,
        set_by: Seq,
    },
    /// The fetch was made and its record appended: its row goes. Refused unless it is still
    /// pending, so a fetch is answered once even when two answers race.
    AnswerFetch {
        slot: SlotLabel,
        requested_by: Seq,
        position: u32,
    },
}

/// Bots' rows, timers and fetches, as every backend stores them (see [`crate::Backend`]).
#[async_trait::async_trait]
pub trait BotBackend: Send + Sync {
    /// The bots of a channel, secrets included.
    async fn bots_of(&self, channel: &ChannelId) -> Result<Vec<BotRecord>, StoreError>;

    /// The pending timers of the bot in `slot`.
    async fn timers_of(
        &self,
        channel: &ChannelId,
        slot: &SlotLabel,
    ) -> Result<Vec<Timer>, StoreError>;

    /// Up to `limit` pending timers, earliest due first.
    async fn next_timers(&self, limit: usize) -> Result<Vec<Timer>, StoreError>;

    /// Forgets a timer that can no longer fire (its channel closed, its bot stopped).
    async fn drop_timer(&self, timer: &Timer) -> Result<(), StoreError>;

    /// The fetches the bot in `slot` asked for that are not answered yet.
    async fn fetches_of(
        &self,
        channel: &ChannelId,
        slot: &SlotLabel,
    ) -> Result<Vec<PendingFetch>, StoreError>;

    /// Up to `limit` pending fetches, oldest request first.
    async fn next_fetches(&self, limit: usize) -> Result<Vec<PendingFetch>, StoreError>;

    /// Forgets a fetch that can no longer be answered (its channel closed, its bot stopped).
    async fn drop_fetch(&self, fetch: &PendingFetch) -> Result<(), StoreError>;

    /// Open channels with an enabled bot that has not been given every message yet: work left
    /// over from before a restart, or from an instance that died.
    async fn channels_with_bots_behind(&self) -> Result<Vec<ChannelId>, StoreError>;

    /// Takes (or renews) the lease `name` for `holder`, for `term` by the database's clock,
    /// unless another holder's lease on it is still live. Answers whether `holder` holds it
    /// now. Instances sharing a database take turns at a piece of work this way (see
    /// [`lease`] for the names), and the work of one that died resumes elsewhere once its
    /// lease runs out. A backend that only one process can serve grants every lease.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        term: std::time::Duration,
    ) -> Result<bool, StoreError>;

    /// Gives the lease `name` back, if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Gives back every lease `holder` holds: an instance shutting down hands its work over at
    /// once rather than when its leases run out.
    async fn release_leases_of(&self, holder: &str) -> Result<(), StoreError>;
}

/// The names of leases ([`BotBackend::take_lease`]).
pub mod lease {
    use domain::ChannelId;

    use super::PendingFetch;

    /// Running the bot events of `channel`.
    pub fn bot_events(channel: &ChannelId) -> String {
        format!("bots:{channel}")
    }

    /// Making one pending fetch.
    pub fn fetch(fetch: &PendingFetch) -> String {
        format!(
            "fetch:{}/{}/{}/{}",
            fetch.channel_id, fetch.slot, fetch.requested_by.0, fetch.position
        )
    }
}
