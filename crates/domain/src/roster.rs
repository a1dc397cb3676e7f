//! Who sat where at a given point of a channel's history, rebuilt from its notices alone.
//!
//! A bot's `ctx.slots()` and `ctx.players()` come from here, folded over the transcript up to
//! the event's seq, so that anyone holding the transcript rebuilds exactly what the bot saw,
//! whenever the event actually ran. Slot labels and kinds never change after creation; only
//! who holds a seat does, and every such change is a notice. The channel's `reveal_private`
//! setting is read from its `created` notice, for `ctx.reveal_private`.

use crate::channel::SlotKind;
use crate::ids::SlotLabel;
use crate::notice::Notice;

/// One slot as the history says it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterSlot {
    pub label: SlotLabel,
    pub kind: SlotKind,
    /// The holder's display name; `None` for an empty seat and for bot slots.
    pub holder: Option<String>,
}

/// The slots, the order in which their holders sat down, and the channel's settings that bots
/// may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    pub slots: Vec<RosterSlot>,
    /// Held seats, earliest holder first (a rejoin counts as sitting down again).
    seated: Vec<SlotLabel>,
    /// Whether an export shows private messages to a bot once its run is over, from the
    /// `created` notice; false for channels from before the setting, which keep them private.
    pub reveal_private: bool,
}

impl Roster {
    /// The empty roster of a channel with these slots, as it was created.
    pub fn new(slots: impl IntoIterator<Item = (SlotLabel, SlotKind)>) -> Self {
        Roster {
            slots: slots
                .into_iter()
                .map(|(label, kind)| RosterSlot {
                    label,
                    kind,
                    holder: None,
                })
                .collect(),
            seated: Vec::new(),
            reveal_private: false,
        }
    }

    /// Moves the roster past one notice; notices that seat no one change nothing. A notice
    /// naming a slot the channel does not have is ignored: slots never change after creation.
    pub fn apply(&mut self, notice: &Notice) {
        match notice {
            Notice::Created { reveal_private, .. } => {
                self.reveal_private = reveal_private.unwrap_or(false);
            }
            Notice::Joined { slot, name } | Notice::Rejoined { slot, name } => {
                if let Some(entry) = self.slot_mut(slot) {
                    entry.holder = Some(name.clone());
                    self.seated.retain(|label| label != slot);
                    self.seated.push(slot.clone());
                }
            }
            Notice::Left { slot, .. }
            | Notice::Kicked { slot, .. }
            | Notice::SlotYielded { slot, .. } => {
                if let Some(entry) = self.slot_mut(slot) {
                    entry.holder = None;
                    self.seated.retain(|label| label != slot);
                }
            }
            _ => {}
        }
    }

    /// The players (holders of invite seats, not spectators), earliest first, with their names.
    pub fn players(&self) -> Vec<(SlotLabel, String)> {
        self.seated
            .iter()
            .filter_map(|label| {
                let slot = self.slots.iter().find(|slot| &slot.label == label)?;
                let name = slot.holder.clone()?;
                (slot.kind == SlotKind::Invite).then(|| (label.clone(), name))
            })
            .collect()
    }

    fn slot_mut(&mut self, label: &SlotLabel) -> Option<&mut RosterSlot> {
        self.slots
            .iter_mut()
            .find(|slot| &slot.label == label && slot.kind.is_seat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(raw: &str) -> SlotLabel {
        SlotLabel::parse(raw).expect("label")
    }

    fn roster() -> Roster {
        Roster::new([
            (label("alice"), SlotKind::Invite),
            (label("bob"), SlotKind::Invite),
            (label("referee"), SlotKind::Bot),
            (label("crowd"), SlotKind::Spectator),
        ])
    }

    fn joined(slot: &str, name: &str) -> Notice {
        Notice::Joined {
            slot: label(slot),
            name: name.into(),
        }
    }

    #[test]
    fn players_are_in_the_order_they_sat_down() {
        let mut roster = roster();
        for notice in [
            joined("bob", "Bob"),
            joined("crowd", "Carol"),
            joined("alice", "Alice"),
        ] {
            roster.apply(&notice);
        }
        assert_eq!(
            roster.players(),
            [
                (label("bob"), "Bob".into()),
                (label("alice"), "Alice".into())
            ]
        );
        assert_eq!(roster.slots[3].holder.as_deref(), Some("Carol"));
        roster.apply(&Notice::Rejoined {
            slot: label("bob"),
            name: "Bobby".into(),
        });
        assert_eq!(
            roster.players(),
            [
                (label("alice"), "Alice".into()),
                (label("bob"), "Bobby".into())
            ]
        );
    }

    #[test]
    fn every_way_out_empties_the_seat() {
        for leave in [
            Notice::Left {
                slot: label("alice"),
                name: "Alice".into(),
            },
            Notice::Kicked {
                slot: label("alice"),
                name: None,
                by: "Bob".into(),
            },
            Notice::SlotYielded {
                slot: label("alice"),
                name: None,
                by: "Bob".into(),
            },
        ] {
            let mut roster = roster();
            roster.apply(&joined("alice", "Alice"));
            roster.apply(&joined("bob", "Bob"));
            roster.apply(&leave);
            assert_eq!(
                roster.players(),
                [(label("bob"), "Bob".into())],
                "{leave:?}"
            );
            assert_eq!(roster.slots[0].holder, None);
        }
    }

    #[test]
    fn the_reveal_setting_comes_from_the_created_notice() {
        let created = |reveal_private| Notice::Created {
            name: "game".into(),
            by: "Alice".into(),
            slots: vec!["invite:alice".into()],
            reveal_private,
        };
        for (setting, expected) in [(Some(true), true), (Some(false), false), (None, false)] {
            let mut roster = roster();
            roster.apply(&created(setting));
            assert_eq!(roster.reveal_private, expected, "{setting:?}");
        }
    }

    #[test]
    fn notices_about_other_things_or_unknown_slots_change_nothing() {
        let mut roster = roster();
        let before = roster.clone();
        roster.apply(&joined("nobody", "X"));
        roster.apply(&joined("referee", "X"));
        roster.apply(&Notice::Closed { by: "Alice".into() });
        assert_eq!(roster, before);
    }
}
