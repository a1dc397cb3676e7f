//! How much bots may write: the caps on bot output that hold across events, and the ledger that
//! enforces them.
//!
//! Each bot event is capped on its own (posts per event, bytes per post), but a channel can
//! hold several bots and an owner several channels, so per-event caps multiply. These caps
//! count what all bots write together: per message they react to (per channel), per minute per
//! channel, and per minute per channel owner. A reaction that would go past any of them is
//! dropped whole: its posts and its state are not stored, and the channel gets a notice
//! ([`crate::Channel::bot_output_capped`]).
//!
//! The ledger is plain memory with fixed one-minute windows, fed the time by its caller. It
//! belongs to one process: a restart starts every window afresh, which can let one extra
//! minute's worth through per restart, and never blocks output for longer than a minute.

use std::collections::{HashMap, VecDeque};

use crate::ids::{ChannelId, PrincipalId, Seq, Timestamp};

/// Length of a per-minute window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;
/// How many recent triggers the ledger remembers per channel. Bots of one channel advance
/// together, so they react to the same few messages; a bot so far behind that its trigger was
/// forgotten gets that trigger's budget afresh, still under the per-minute caps.
const TRIGGERS_REMEMBERED: usize = 64;

/// A number of messages and a number of bytes, counted together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Output {
    pub messages: usize,
    /// Text bytes plus the bytes of the data's compact JSON, over all messages.
    pub bytes: usize,
}

impl Output {
    fn plus(self, other: Output) -> Output {
        Output {
            messages: self.messages.saturating_add(other.messages),
            bytes: self.bytes.saturating_add(other.bytes),
        }
    }

    fn exceeds(self, cap: Output) -> bool {
        self.messages > cap.messages || self.bytes > cap.bytes
    }
}

/// The caps on what bots write, beyond each event's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BotOutputLimits {
    /// All bots of a channel together, in reply to one message (or join, or attach notice).
    pub per_trigger: Output,
    /// All bots of a channel together, per minute.
    pub per_channel_minute: Output,
    /// All bots of all channels of one owner together, per minute.
    pub per_owner_minute: Output,
}

impl Default for BotOutputLimits {
    fn default() -> Self {
        Self {
            per_trigger: Output {
                messages: 40,
                bytes: 128 * 1024,
            },
            per_channel_minute: Output {
                messages: 240,
                bytes: 1024 * 1024,
            },
            per_owner_minute: Output {
                messages: 600,
                bytes: 4 * 1024 * 1024,
            },
        }
    }
}

/// Which cap a bot's reaction ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputCap {
    /// Everything the channel's bots write in reply to one message.
    PerTrigger,
    /// Everything the channel's bots write in one minute.
    PerChannelMinute,
    /// Everything the bots of the owner's channels write in one minute.
    PerOwnerMinute,
}

impl OutputCap {
    /// The stable name shown in the notice's `data.cap`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputCap::PerTrigger => "per_message",
            OutputCap::PerChannelMinute => "per_channel_minute",
            OutputCap::PerOwnerMinute => "per_owner_minute",
        }
    }

    /// Reads a name written by [`OutputCap::as_str`] back.
    pub fn parse(raw: &str) -> Option<Self> {
        [
            OutputCap::PerTrigger,
            OutputCap::PerChannelMinute,
            OutputCap::PerOwnerMinute,
        ]
        .into_iter()
        .find(|cap| cap.as_str() == raw)
    }
}

/// A refused reaction: which cap, its values, and whether the channel still needs to hear of it
/// (one notice per trigger, and one per channel per minute, so the notices cannot flood either).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CapHit {
    pub cap: OutputCap,
    pub limit: Output,
    /// When the cap lets output through again (per-minute caps only).
    pub until: Option<Timestamp>,
    pub notify: bool,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Timestamp,
    used: Output,
    /// Whether this channel was told of a per-minute cap in this window.
    noticed: bool,
}

impl Window {
    fn fresh(now: Timestamp) -> Self {
        Window {
            start: now,
            used: Output::default(),
            noticed: false,
        }
    }

    fn current(slot: &mut Option<Window>, now: Timestamp) -> &mut Window {
        let expired = slot
            .as_ref()
            .is_none_or(|window| now.0 - window.start.0 >= WINDOW_MS || now.0 < window.start.0);
        if expired {
            *slot = Some(Window::fresh(now));
        }
        slot.as_mut().expect("just filled")
    }

    fn end(&self) -> Timestamp {
        Timestamp(self.start.0 + WINDOW_MS)
    }
}

#[derive(Debug, Default)]
struct ChannelUsage {
    minute: Option<Window>,
    /// Recent triggers: seq, output so far, whether a notice was written for it.
    triggers: VecDeque<(Seq, Output, bool)>,
}

/// What bots have written recently, per channel and per owner.
#[derive(Debug, Default)]
pub struct BotOutputLedger {
    channels: HashMap<ChannelId, ChannelUsage>,
    owners: HashMap<PrincipalId, Option<Window>>,
    charges: u64,
}

impl BotOutputLedger {
    /// Counts `output`, written by a bot of `channel` (owned by `owner`) in reply to message
    /// `trigger`, against every cap; all or nothing: a refused reaction counts for nothing.
    pub fn charge(
        &mut self,
        limits: &BotOutputLimits,
        channel: &ChannelId,
        owner: &PrincipalId,
        trigger: Seq,
        output: Output,
        now: Timestamp,
    ) -> Result<(), CapHit> {
        if output.messages == 0 {
            return Ok(());
        }
        self.charges = self.charges.wrapping_add(1);
        if self.charges.is_multiple_of(1024) {
            self.forget_idle(now);
        }
        let usage = self.channels.entry(channel.clone()).or_default();
        let position = match usage.triggers.iter().position(|(seq, ..)| *seq == trigger) {
            Some(position) => position,
            None => {
                if usage.triggers.len() == TRIGGERS_REMEMBERED {
                    usage.triggers.pop_front();
                }
                usage
                    .triggers
                    .push_back((trigger, Output::default(), false));
                usage.triggers.len() - 1
            }
        };
        let (_, trigger_used, trigger_noticed) = &mut usage.triggers[position];
        if trigger_used.plus(output).exceeds(limits.per_trigger) {
            let notify = !*trigger_noticed;
            *trigger_noticed = true;
            return Err(CapHit {
                cap: OutputCap::PerTrigger,
                limit: limits.per_trigger,
                until: None,
                notify,
            });
        }
        let channel_minute = Window::current(&mut usage.minute, now);
        let owner_minute = Window::current(self.owners.entry(owner.clone()).or_default(), now);
        let refused = if channel_minute
            .used
            .plus(output)
            .exceeds(limits.per_channel_minute)
        {
            Some((
                OutputCap::PerChannelMinute,
                limits.per_channel_minute,
                channel_minute.end(),
            ))
        } else if owner_minute
            .used
            .plus(output)
            .exceeds(limits.per_owner_minute)
        {
            Some((
                OutputCap::PerOwnerMinute,
                limits.per_owner_minute,
                owner_minute.end(),
            ))
        } else {
            None
        };
        if let Some((cap, limit, until)) = refused {
            let notify = !channel_minute.noticed;
            channel_minute.noticed = true;
            return Err(CapHit {
                cap,
                limit,
                until: Some(until),
                notify,
            });
        }
        channel_minute.used = channel_minute.used.plus(output);
        owner_minute.used = owner_minute.used.plus(output);
        *trigger_used = trigger_used.plus(output);
        Ok(())
    }

    /// Drops what no window needs any more, so idle channels and owners cost no memory.
    fn forget_idle(&mut self, now: Timestamp) {
        let live = |window: &Option<Window>| {
            window
                .as_ref()
                .is_some_and(|window| now.0 - window.start.0 < WINDOW_MS)
        };
        self.channels.retain(|_, usage| live(&usage.minute));
        self.owners.retain(|_, window| live(window));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Timestamp = Timestamp(1_700_000_000_000);

    fn limits() -> BotOutputLimits {
        BotOutputLimits {
            per_trigger: Output {
                messages: 5,
                bytes: 1000,
            },
            per_channel_minute: Output {
                messages: 12,
                bytes: 5000,
            },
            per_owner_minute: Output {
                messages: 20,
                bytes: 8000,
            },
        }
    }

    fn out(messages: usize, bytes: usize) -> Output {
        Output { messages, bytes }
    }

    fn channel(n: u8) -> ChannelId {
        ChannelId::from_random([n; 12])
    }

    #[test]
    fn one_trigger_is_shared_by_all_bots_of_the_channel() {
        let (mut ledger, limits) = (BotOutputLedger::default(), limits());
        let owner = PrincipalId::new("owner");
        let ch = channel(1);
        assert!(
            ledger
                .charge(&limits, &ch, &owner, Seq(3), out(3, 100), T0)
                .is_ok()
        );
        // A second bot replying to the same message gets what is left, all or nothing.
        let hit = ledger
            .charge(&limits, &ch, &owner, Seq(3), out(3, 100), T0)
            .unwrap_err();
        assert_eq!(
            (hit.cap, hit.notify, hit.until),
            (OutputCap::PerTrigger, true, None)
        );
        assert!(
            ledger
                .charge(&limits, &ch, &owner, Seq(3), out(2, 100), T0)
                .is_ok()
        );
        // Told once per trigger.
        let again = ledger.charge(&limits, &ch, &owner, Seq(3), out(1, 1), T0);
        assert_eq!(again.map_err(|hit| hit.notify), Err(false));
        // Bytes count as well as messages.
        let bytes = ledger.charge(&limits, &ch, &owner, Seq(4), out(1, 1001), T0);
        assert_eq!(bytes.map_err(|hit| hit.cap), Err(OutputCap::PerTrigger));
        // The next message is a new turn.
        assert!(
            ledger
                .charge(&limits, &ch, &owner, Seq(4), out(5, 1000), T0)
                .is_ok()
        );
    }

    #[test]
    fn the_channel_minute_caps_many_triggers_and_reopens_after_a_minute() {
        let (mut ledger, limits) = (BotOutputLedger::default(), limits());
        let owner = PrincipalId::new("owner");
        let ch = channel(1);
        for seq in 1..=2 {
            assert!(
                ledger
                    .charge(&limits, &ch, &owner, Seq(seq), out(5, 10), T0)
                    .is_ok()
            );
        }
        let hit = ledger
            .charge(&limits, &ch, &owner, Seq(3), out(5, 10), T0)
            .unwrap_err();
        assert_eq!(hit.cap, OutputCap::PerChannelMinute);
        assert_eq!(hit.until, Some(Timestamp(T0.0 + WINDOW_MS)));
        assert!(hit.notify);
        let quiet = ledger.charge(&limits, &ch, &owner, Seq(4), out(5, 10), T0);
        assert_eq!(quiet.map_err(|hit| hit.notify), Err(false));
        // What fits still passes.
        assert!(
            ledger
                .charge(&limits, &ch, &owner, Seq(5), out(2, 10), T0)
                .is_ok()
        );
        let later = Timestamp(T0.0 + WINDOW_MS);
        assert!(
            ledger
                .charge(&limits, &ch, &owner, Seq(6), out(5, 10), later)
                .is_ok()
        );
    }

    #[test]
    fn the_owner_minute_caps_many_channels() {
        let (mut ledger, limits) = (BotOutputLedger::default(), limits());
        let owner = PrincipalId::new("owner");
        for n in 1..=4 {
            assert!(
                ledger
                    .charge(&limits, &channel(n), &owner, Seq(1), out(5, 10), T0)
                    .is_ok()
            );
        }
        let hit = ledger
            .charge(&limits, &channel(5), &owner, Seq(1), out(1, 10), T0)
            .unwrap_err();
        assert_eq!(hit.cap, OutputCap::PerOwnerMinute);
        // Another owner's channels are not affected.
        let other = PrincipalId::new("other");
        assert!(
            ledger
                .charge(&limits, &channel(6), &other, Seq(1), out(5, 10), T0)
                .is_ok()
        );
    }

    #[test]
    fn idle_entries_are_forgotten() {
        let (mut ledger, limits) = (BotOutputLedger::default(), limits());
        let owner = PrincipalId::new("owner");
        ledger
            .charge(&limits, &channel(1), &owner, Seq(1), out(1, 1), T0)
            .unwrap();
        ledger.forget_idle(Timestamp(T0.0 + WINDOW_MS));
        assert!(ledger.channels.is_empty() && ledger.owners.is_empty());
    }
}
