//! Read progress for unread counts, collected in memory and written in batches.
//!
//! Unread counts are advisory, so a sync answers without waiting for a disk flush, and a
//! thousand readers woken by one post cost one write instead of a thousand. A crash loses at
//! most one flush interval of read progress, never a message.

use std::collections::HashMap;
use std::sync::Mutex;

use domain::{ChannelId, PrincipalId, Seq, SlotLabel};
use store::ReadMark;

#[derive(Default)]
pub(crate) struct ReadTracker {
    pending: Mutex<HashMap<(ChannelId, SlotLabel, PrincipalId), Seq>>,
}

impl ReadTracker {
    pub(crate) fn record(
        &self,
        channel: &ChannelId,
        slot: &SlotLabel,
        holder: &PrincipalId,
        seq: Seq,
    ) {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let newest = pending
            .entry((channel.clone(), slot.clone(), holder.clone()))
            .or_insert(seq);
        *newest = (*newest).max(seq);
    }

    /// Everything recorded since the last call.
    pub(crate) fn take(&self) -> Vec<ReadMark> {
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        pending
            .drain()
            .map(|((channel, slot, holder), seq)| ReadMark {
                channel,
                slot,
                holder,
                seq,
            })
            .collect()
    }
}
