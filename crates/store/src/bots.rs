//! What is stored of a bot beside its public card: its source, secret seed, parameters, state
//! and how far through the channel it has been given events. Written only together with the
//! channel change it belongs to ([`Store::update_channel_and_bots`], [`Store::insert_channel`]).

use domain::{ChannelId, Seq, SlotLabel};

use crate::{Store, StoreError};

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

/// A change to a bot's row, stored in the transaction of a channel change.
#[derive(Debug, Clone, PartialEq)]
pub enum BotWrite {
    /// Attaches a bot, replacing whatever was in its slot.
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
    },
}

impl Store {
    /// The bots of a channel, secrets included.
    pub async fn bots_of(&self, channel: &ChannelId) -> Result<Vec<BotRecord>, StoreError> {
        match self {
            Store::Sqlite(store) => store.bots_of(channel).await,
        }
    }

    /// Channels with an enabled bot that has not been given every message yet: work left over
    /// from before a restart.
    pub async fn channels_with_bots_behind(&self) -> Result<Vec<ChannelId>, StoreError> {
        match self {
            Store::Sqlite(store) => store.channels_with_bots_behind().await,
        }
    }
}
