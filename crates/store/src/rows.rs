//! Reading rows back into domain types, once for every backend.
//!
//! The backends store the same columns under the same names; they differ in how a flag is
//! stored (SQLite has no boolean type). [`Columns`] hides that difference, so each decoder
//! here is written once and a row from either database goes through it.

use domain::{
    Body, BotCard, ChainHash, Channel, ChannelId, Listing, Message, MessageKind, PageBudget,
    PrincipalId, Seat, SecretHash, Seq, Slot, SlotKind, SlotLabel, Timestamp,
};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Type};

use futures::TryStreamExt;

use crate::bots::{BotRecord, PendingFetch, Timer};
use crate::{MessagePage, StoreError};

/// A row whose columns are read by name.
pub(crate) trait Columns {
    fn text(&self, column: &str) -> Result<String, StoreError>;
    fn maybe_text(&self, column: &str) -> Result<Option<String>, StoreError>;
    fn int(&self, column: &str) -> Result<i64, StoreError>;
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, StoreError>;
    fn flag(&self, column: &str) -> Result<bool, StoreError>;
}

fn get<'r, R, T>(row: &'r R, column: &str) -> Result<T, StoreError>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: sqlx::ColumnIndex<R>,
{
    Ok(row.try_get(column)?)
}

impl Columns for SqliteRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        get(self, column)
    }
    fn maybe_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        get(self, column)
    }
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        get(self, column)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        Ok(get::<_, i64>(self, column)? != 0)
    }
}

impl Columns for PgRow {
    fn text(&self, column: &str) -> Result<String, StoreError> {
        get(self, column)
    }
    fn maybe_text(&self, column: &str) -> Result<Option<String>, StoreError> {
        get(self, column)
    }
    fn int(&self, column: &str) -> Result<i64, StoreError> {
        get(self, column)
    }
    fn maybe_int(&self, column: &str) -> Result<Option<i64>, StoreError> {
        get(self, column)
    }
    fn flag(&self, column: &str) -> Result<bool, StoreError> {
        get(self, column)
    }
}

/// A channel from its header row (with `last_seq` and `head` computed by the query) and its
/// slot rows in position order (see [`slot_from_row`]).
pub(crate) fn channel_from_rows(
    id: &ChannelId,
    header: &impl Columns,
    slots: &[impl Columns],
) -> Result<Channel, StoreError> {
    let slots = slots
        .iter()
        .map(slot_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Channel::from_stored(
        id.clone(),
        header.text("name")?,
        PrincipalId::new(header.text("owner")?),
        Timestamp(header.int("created_at")?),
        header.flag("closed")?,
        Seq(header.int("last_seq")?),
        slots,
    )
    .with_transcript(
        header
            .maybe_text("head")?
            .map_or_else(ChainHash::genesis, ChainHash::from_trusted),
        Seq(header.int("faithful_from")?),
        header.flag("reveal_private")?,
    )
    .with_listing(
        header
            .maybe_text("listing")?
            .map(|stored| {
                Listing::parse(&stored)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown listing {stored:?}")))
            })
            .transpose()?,
    ))
}

/// What a change to a channel rewrites beside its new messages.
pub(crate) struct ChangedRows<'a> {
    /// The name or the closed flag changed.
    pub header_changed: bool,
    /// Each slot that changed: its position, its new state, and whether its holder changed
    /// (which resets the read mark).
    pub slots: Vec<(usize, &'a Slot, bool)>,
}

impl<'a> ChangedRows<'a> {
    pub(crate) fn between(before: &Channel, after: &'a Channel) -> Self {
        let slots = before
            .slots
            .iter()
            .zip(&after.slots)
            .enumerate()
            .filter(|(_, (old, new))| old != new)
            .map(|(position, (old, new))| {
                let holder_changed =
                    old.seat.as_ref().map(|s| &s.holder) != new.seat.as_ref().map(|s| &s.holder);
                (position, new, holder_changed)
            })
            .collect();
        ChangedRows {
            header_changed: before.name != after.name || before.closed != after.closed,
            slots,
        }
    }
}

/// A slot row joined with its bot's public card, if it has a bot.
fn slot_from_row(row: &impl Columns) -> Result<Slot, StoreError> {
    let kind = row.text("kind")?;
    let seat = match row.maybe_text("holder")? {
        Some(holder) => Some(Seat {
            holder: PrincipalId::new(holder),
            holder_name: row.maybe_text("holder_name")?.unwrap_or_default(),
            rejoin_hash: SecretHash::from_trusted(
                row.maybe_text("rejoin_hash")?
                    .ok_or_else(|| StoreError::Corrupt("held seat without rejoin hash".into()))?,
            ),
            joined_at: Timestamp(row.maybe_int("joined_at")?.unwrap_or_default()),
            since: Seq(row.int("since_seq")?),
        }),
        None => None,
    };
    Ok(Slot {
        label: SlotLabel::from_trusted(row.text("label")?),
        kind: SlotKind::from_stored(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown slot kind {kind:?}")))?,
        admin: row.flag("admin")?,
        seat,
        invite_hash: row.maybe_text("invite_hash")?.map(SecretHash::from_trusted),
        bot: match row.maybe_text("bot_name")? {
            Some(name) => Some(BotCard {
                name,
                language: row.text("language")?,
                code_hash: row.text("code_hash")?,
                params_hash: row.text("params_hash")?,
                seed_commitment: row.text("seed_commitment")?,
                disabled: row.flag("disabled")?,
                ended: row.flag("ended")?,
            }),
            None => None,
        },
    })
}

pub(crate) fn message_from_row(row: &impl Columns) -> Result<Message, StoreError> {
    let (mut message, hash) = message_from_unhashed_row(row)?;
    message.hash =
        hash.ok_or_else(|| StoreError::Corrupt("a message without its chain hash".into()))?;
    Ok(message)
}

/// A message row and its stored hash, which only rows from before the chain lack.
pub(crate) fn message_from_unhashed_row(
    row: &impl Columns,
) -> Result<(Message, Option<ChainHash>), StoreError> {
    let kind = row.text("kind")?;
    let data = match row.maybe_text("body_data")? {
        Some(raw) => match serde_json::from_str(&raw) {
            Ok(serde_json::Value::Object(map)) => Some(map),
            _ => {
                return Err(StoreError::Corrupt(
                    "message data is not a JSON object".into(),
                ));
            }
        },
        None => None,
    };
    let message = Message {
        seq: Seq(row.int("seq")?),
        kind: MessageKind::from_stored(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown message kind {kind:?}")))?,
        sender: row.maybe_text("sender")?.map(SlotLabel::from_trusted),
        sender_name: row.text("sender_name")?,
        body: Body {
            text: row.maybe_text("body_text")?,
            data,
        },
        to: row.maybe_text("recipient")?.map(SlotLabel::from_trusted),
        nonce: row.maybe_text("nonce")?,
        at: Timestamp(row.int("at")?),
        hash: ChainHash::genesis(),
    };
    Ok((
        message,
        row.maybe_text("hash")?.map(ChainHash::from_trusted),
    ))
}

/// A page of messages from `rows`, oldest first, read one row at a time and stopped at the
/// first message `budget` refuses, so that a page of large messages never loads more than it
/// returns. `has_more` says a refused (or further) message exists.
pub(crate) async fn fill_page<R: Columns>(
    mut rows: impl futures::Stream<Item = Result<R, sqlx::Error>> + Unpin,
    budget: PageBudget,
) -> Result<MessagePage, StoreError> {
    let mut page = MessagePage::default();
    let mut fill = budget.fill();
    while let Some(row) = rows.try_next().await? {
        let message = message_from_row(&row)?;
        if !fill.admit(&message) {
            page.has_more = true;
            break;
        }
        page.messages.push(message);
    }
    Ok(page)
}

/// The JSON text a message's data is stored as.
pub(crate) fn stored_data(message: &Message) -> Option<String> {
    message
        .body
        .data
        .as_ref()
        .map(|map| serde_json::Value::Object(map.clone()).to_string())
}

pub(crate) fn bot_from_row(row: &impl Columns) -> Result<BotRecord, StoreError> {
    let corrupt =
        |what: &str, error: serde_json::Error| StoreError::Corrupt(format!("{what}: {error}"));
    Ok(BotRecord {
        channel_id: ChannelId::from_trusted(row.text("channel_id")?),
        slot: SlotLabel::from_trusted(row.text("slot")?),
        name: row.text("name")?,
        source: row.text("source")?,
        language: row.text("language")?,
        code_hash: row.text("code_hash")?,
        params: serde_json::from_str(&row.text("params")?)
            .map_err(|error| corrupt("bot params", error))?,
        params_hash: row.text("params_hash")?,
        seed: row.text("seed")?,
        seed_commitment: row.text("seed_commitment")?,
        state: row
            .maybe_text("state")?
            .map(|state| serde_json::from_str(&state))
            .transpose()
            .map_err(|error| corrupt("bot state", error))?,
        processed_seq: Seq(row.int("processed_seq")?),
        failures: u32::try_from(row.int("failures")?).unwrap_or(u32::MAX),
        disabled: row.flag("disabled")?,
        ended: row.flag("ended")?,
    })
}

pub(crate) fn timer_from_row(row: &impl Columns) -> Result<Timer, StoreError> {
    Ok(Timer {
        channel_id: ChannelId::from_trusted(row.text("channel_id")?),
        slot: SlotLabel::from_trusted(row.text("slot")?),
        tag: row.text("tag")?,
        due: Timestamp(row.int("due_at")?),
        set_by: Seq(row.int("set_by")?),
    })
}

pub(crate) fn fetch_from_row(row: &impl Columns) -> Result<PendingFetch, StoreError> {
    Ok(PendingFetch {
        channel_id: ChannelId::from_trusted(row.text("channel_id")?),
        slot: SlotLabel::from_trusted(row.text("slot")?),
        requested_by: Seq(row.int("requested_by")?),
        position: u32::try_from(row.int("position")?).unwrap_or(u32::MAX),
        tag: row.text("tag")?,
        url: row.text("url")?,
        requested_at: Timestamp(row.int("requested_at")?),
    })
}
