//! The public lobby and quick match.
//!
//! A listed channel's open player seats are anyone's to take, without an invite code
//! ([`Service::take_seat`]), until it fills or closes; [`Service::lobby`] lists such channels,
//! by bot. Quick match is the lobby with the choosing done for the caller:
//! [`Service::quick_match`] seats them at the oldest quick-match table for that bot with a free
//! seat, or opens a new table, then waits like a sync until every player seat is taken.
//!
//! The tables live in the database like any channel, so several instances share them. On one
//! instance a lock per game makes "find a table or open one" atomic; two instances racing may
//! each open a table, and the next callers fill the older one first. A table has no admin:
//! whoever opened it is a player like the others.

use domain::limits::sync_wait;
use domain::{Channel, ChannelId, DomainError, Listing, SlotKind, SlotLabel};
use tokio::time::Instant;

use crate::bots::BotRequest;
use crate::caller::{Access, Caller};
use crate::error::ServiceError;
use crate::service::{CreateRequest, Joined, OsSecrets, Service, has_live_bots};

/// Most channels one lobby answer lists.
pub const LOBBY_LIMIT: usize = 50;

/// The bots quick match seats players for, and how many players each table takes.
pub const QUICK_MATCH_GAMES: &[(&str, usize)] = &[
    ("tictactoe", 2),
    ("rps", 2),
    ("chess", 2),
    ("guess", 2),
    ("blackjack", 2),
];

/// One lock per game of [`QUICK_MATCH_GAMES`], held while a quick match finds or opens a
/// table, so that two callers on this instance never open two tables for one game.
pub(crate) struct TableLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for TableLocks {
    fn default() -> Self {
        Self(
            QUICK_MATCH_GAMES
                .iter()
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        )
    }
}

impl std::ops::Index<usize> for TableLocks {
    type Output = tokio::sync::Mutex<()>;

    fn index(&self, game: usize) -> &Self::Output {
        &self.0[game]
    }
}

/// Arguments of `quick_match`, as received.
#[derive(Debug, Default, Clone)]
pub struct QuickMatchRequest {
    /// A bot of [`QUICK_MATCH_GAMES`].
    pub bot: String,
    /// How long to wait for the other players (capped like a sync's wait).
    pub wait_ms: Option<u64>,
}

/// Where a quick match stands.
#[derive(Debug)]
pub struct QuickMatch {
    pub channel: Channel,
    pub slot: SlotLabel,
    /// The seat's rejoin token, when this call took the seat; a repeated call finds the seat
    /// it took before and has none to show.
    pub rejoin_token: Option<String>,
    /// Every player seat is taken: the game is on.
    pub matched: bool,
    pub waited_ms: u64,
}

impl Service {
    /// Listed channels with an open player seat, oldest first; only those refereed by `bot`
    /// when given.
    pub async fn lobby(
        &self,
        caller: &Caller,
        bot: Option<&str>,
    ) -> Result<Vec<Channel>, ServiceError> {
        self.authorize(caller, Access::Read)?;
        self.open_games(bot).await
    }

    /// [`Self::lobby`] for anyone, signed in or not: a listed channel is public by its
    /// creator's choice (its name, its bot and who sits there), as the lobby page shows it.
    pub async fn open_games(&self, bot: Option<&str>) -> Result<Vec<Channel>, ServiceError> {
        if let Some(bot) = bot {
            check_bot_name(bot)?;
        }
        let ids = self.inner.store.lobby(None, bot, LOBBY_LIMIT).await?;
        let mut channels = Vec::with_capacity(ids.len());
        for id in ids {
            // Seats go between the query and the load; a channel that filled meanwhile is not
            // shown.
            match self.inner.store.load_channel(&id).await {
                Ok(channel) if channel.in_lobby() => channels.push(channel),
                Ok(_) | Err(store::StoreError::Domain(DomainError::ChannelNotFound)) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Ok(channels)
    }

    /// Takes an open player seat of a listed channel, without an invite code.
    pub async fn take_seat(
        &self,
        caller: &Caller,
        channel_id: &str,
        slot: Option<&str>,
    ) -> Result<Joined, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let id = ChannelId::parse(channel_id)?;
        let slot = slot.map(SlotLabel::parse).transpose()?;
        self.seat_from_lobby(who, &id, slot).await
    }

    async fn seat_from_lobby(
        &self,
        who: &domain::Principal,
        id: &ChannelId,
        slot: Option<SlotLabel>,
    ) -> Result<Joined, ServiceError> {
        let (taker, clock) = (who.clone(), self.inner.clock.clone());
        let ((joined, channel), _) = self
            .inner
            .store
            .update_channel(id, move |channel| {
                let joined =
                    channel.take_open_seat(&taker, slot.as_ref(), clock.now(), &mut OsSecrets)?;
                Ok((joined, channel.clone()))
            })
            .await?;
        tracing::info!(channel = %id, slot = %joined.slot, "seat taken from the lobby");
        if has_live_bots(&channel) {
            self.wake_bots(id);
        }
        Ok(Joined {
            slot: joined.slot,
            kind: SlotKind::Invite,
            rejoin_token: joined.rejoin_token,
            other_seats: Vec::new(),
            channel,
        })
    }

    /// Seats the caller at a table for `bot` (the one they already sit at, the oldest with a
    /// free seat, or a new one) and waits until every player seat there is taken.
    pub async fn quick_match(
        &self,
        caller: &Caller,
        request: QuickMatchRequest,
    ) -> Result<QuickMatch, ServiceError> {
        let who = self.authorize(caller, Access::Write)?;
        let (game, players) = QUICK_MATCH_GAMES
            .iter()
            .position(|(name, _)| *name == request.bot)
            .map(|game| (game, QUICK_MATCH_GAMES[game].1))
            .ok_or_else(|| {
                DomainError::invalid(
                    "bot",
                    format!(
                        "quick match plays {}; {:?} is not one of them",
                        QUICK_MATCH_GAMES
                            .iter()
                            .map(|(name, _)| *name)
                            .collect::<Vec<_>>()
                            .join(", "),
                        request.bot
                    ),
                )
            })?;
        let started = Instant::now();
        let deadline = started + sync_wait(request.wait_ms);
        // Counted against the caller's waiting cap before a seat is taken, so a refusal never
        // follows a seat whose rejoin token would then be lost.
        let _waiting = self.inner.admission.start_waiting(&who.id)?;
        let (id, slot, rejoin_token) = {
            let _one_table_at_a_time = self.inner.quick_match[game].lock().await;
            self.find_or_open_table(caller, &request.bot, players)
                .await?
        };
        let mut subscription = self.inner.store.signals().subscribe(&id);
        loop {
            let channel = self.inner.store.load_channel(&id).await?;
            let matched = channel.open_invite_seats().next().is_none();
            let out_of_time = Instant::now() >= deadline || self.inner.shutdown.is_cancelled();
            if matched || channel.closed || out_of_time {
                return Ok(QuickMatch {
                    channel,
                    slot,
                    rejoin_token,
                    matched,
                    waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                });
            }
            tokio::select! {
                _ = subscription.advanced() => {}
                () = tokio::time::sleep_until(deadline) => {}
                () = self.inner.shutdown.cancelled() => {}
            }
        }
    }

    /// The caller's seat at a quick-match table for `bot`: the one they already sit at (whose
    /// game is still on), a free one at the oldest table with room, or a new table.
    async fn find_or_open_table(
        &self,
        caller: &Caller,
        bot: &str,
        players: usize,
    ) -> Result<(ChannelId, SlotLabel, Option<String>), ServiceError> {
        let who = &caller.principal;
        let store = &self.inner.store;
        if let Some(id) = store.quick_match_seat(&who.id, bot).await? {
            let channel = store.load_channel(&id).await?;
            if let Some(seat) = channel.seats_of(&who.id).next() {
                return Ok((id, seat.label.clone(), None));
            }
        }
        for id in store
            .lobby(Some(Listing::QuickMatch), Some(bot), LOBBY_LIMIT)
            .await?
        {
            match self.seat_from_lobby(who, &id, None).await {
                Ok(joined) => return Ok((id, joined.slot, Some(joined.rejoin_token))),
                // Filled or closed by someone faster: the next table.
                Err(ServiceError::Domain(
                    DomainError::InvalidArgument { .. } | DomainError::ChannelClosed,
                )) => {}
                Err(error) => return Err(error),
            }
        }
        let slots: Vec<String> = (1..=players).map(|n| format!("invite:p{n}")).collect();
        let created = self
            .create_channel(
                caller,
                CreateRequest {
                    listing: Some(Listing::QuickMatch),
                    ..CreateRequest::new(&format!("Quick match: {bot}"), &slots).with_bot(
                        BotRequest {
                            preset: Some(bot.to_owned()),
                            ..BotRequest::default()
                        },
                    )
                },
            )
            .await?;
        let joined = created
            .joined
            .ok_or_else(|| ServiceError::internal("a new quick-match table seats its creator"))?;
        Ok((created.channel.id, joined.slot, Some(joined.rejoin_token)))
    }
}

/// A bot name as the lobby filters by it: a builtin's name or a custom bot's, 1 to 64
/// characters and none of them a control character (PostgreSQL refuses NUL in text).
fn check_bot_name(bot: &str) -> Result<(), DomainError> {
    if bot.is_empty() || bot.chars().count() > 64 || bot.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "bot",
            "a bot's name is 1 to 64 characters without control characters, e.g. \"tictactoe\"",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceSettings;
    use crate::testing::{parked, person, service_with, settled};

    fn quick(bot: &str, wait_ms: u64) -> QuickMatchRequest {
        QuickMatchRequest {
            bot: bot.into(),
            wait_ms: Some(wait_ms),
        }
    }

    #[tokio::test]
    async fn two_callers_are_matched_at_one_table_and_the_game_begins() {
        let (service, _db) = service_with(ServiceSettings::default()).await;
        let (alice, bob) = (person("alice"), person("bob"));
        let first = {
            let service = service.clone();
            let alice = alice.clone();
            tokio::spawn(async move {
                service
                    .quick_match(&alice, quick("tictactoe", 20_000))
                    .await
            })
        };
        // Alice waits at her new table, which the lobby shows with one free seat.
        parked(&service, &alice, 1).await;
        let open = loop {
            let open = service.lobby(&bob, Some("tictactoe")).await.expect("lobby");
            if !open.is_empty() {
                break open;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        };
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].listing, Some(Listing::QuickMatch));
        let second = service
            .quick_match(&bob, quick("tictactoe", 20_000))
            .await
            .expect("bob is matched");
        let first = first.await.expect("task").expect("alice is matched");
        assert!(first.matched && second.matched);
        assert_eq!(first.channel.id, second.channel.id, "one table for both");
        assert_ne!(first.slot, second.slot);
        assert!(first.rejoin_token.is_some() && second.rejoin_token.is_some());
        assert!(
            service.lobby(&bob, None).await.expect("lobby").is_empty(),
            "a full table leaves the lobby"
        );
        // The referee saw both players join and started the game.
        settled(&service, &second.channel.id).await;
        let history = crate::testing::history(&service, &second.channel.id).await;
        assert!(
            history.iter().any(|message| message
                .body
                .text
                .as_deref()
                .is_some_and(|text| text.starts_with("Game on!"))),
            "the game did not start: {history:?}"
        );
        // They play it out (Alice opened the table, so she is X); a finished game is no table
        // to go back to.
        for (who, cell) in [(&alice, 1), (&bob, 4), (&alice, 2), (&bob, 5), (&alice, 3)] {
            service
                .post_message(
                    who,
                    crate::service::PostRequest {
                        channel_id: first.channel.id.to_string(),
                        data: Some(
                            serde_json::json!({"cell": cell})
                                .as_object()
                                .cloned()
                                .expect("object"),
                        ),
                        ..crate::service::PostRequest::default()
                    },
                )
                .await
                .expect("move");
            settled(&service, &first.channel.id).await;
        }
        let next = service
            .quick_match(&alice, quick("tictactoe", 0))
            .await
            .expect("seated");
        assert_ne!(
            next.channel.id, first.channel.id,
            "a new table after the game ended"
        );
        assert!(!next.matched);
        // Nobody administers a table, not even its opener.
        let kick = crate::service::AdminRequest {
            channel_id: next.channel.id.to_string(),
            op: "close".into(),
            ..crate::service::AdminRequest::default()
        };
        let refused = service
            .update_channel(&alice, kick)
            .await
            .expect_err("no admin");
        assert_eq!(refused.code(), domain::ErrorCode::NotAdmin);
    }

    #[tokio::test]
    async fn a_wait_that_runs_out_keeps_the_seat_and_a_second_call_goes_back_to_it() {
        let (service, _db) = service_with(ServiceSettings::default()).await;
        let alice = person("alice");
        let lonely = service
            .quick_match(&alice, quick("chess", 0))
            .await
            .expect("seated");
        assert!(!lonely.matched);
        let again = service
            .quick_match(&alice, quick("chess", 0))
            .await
            .expect("seated again");
        assert_eq!(
            again.channel.id, lonely.channel.id,
            "back to the same table"
        );
        assert_eq!(again.slot, lonely.slot);
        assert!(
            again.rejoin_token.is_none(),
            "the token was shown once, on the first call"
        );
        // Another game is another table.
        let other = service
            .quick_match(&alice, quick("rps", 0))
            .await
            .expect("seated");
        assert_ne!(other.channel.id, lonely.channel.id);
        let refused = service
            .quick_match(&alice, quick("echo", 0))
            .await
            .expect_err("echo is no game");
        assert_eq!(refused.code(), domain::ErrorCode::InvalidArgument);
    }

    #[tokio::test]
    async fn a_listed_channel_gives_its_open_seats_without_a_code_and_an_unlisted_one_does_not() {
        let (service, _db) = service_with(ServiceSettings::default()).await;
        let (alice, bob, carol) = (person("alice"), person("bob"), person("carol"));
        let slots = ["invite:alice".to_owned(), "invite:bob".to_owned()];
        let listed = service
            .create_channel(
                &alice,
                CreateRequest {
                    listing: Some(Listing::Listed),
                    ..CreateRequest::new("Open table", &slots)
                },
            )
            .await
            .expect("created");
        let unlisted = service
            .create_channel(&alice, CreateRequest::new("Private table", &slots))
            .await
            .expect("created");
        let lobby = service.lobby(&carol, None).await.expect("lobby");
        assert_eq!(
            lobby.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            std::slice::from_ref(&listed.channel.id)
        );
        let refused = service
            .take_seat(&bob, unlisted.channel.id.as_str(), None)
            .await
            .expect_err("an unlisted channel needs its invite");
        assert_eq!(refused.code(), domain::ErrorCode::InvalidArgument);
        let seat = service
            .take_seat(&bob, listed.channel.id.as_str(), None)
            .await
            .expect("bob takes the open seat");
        assert_eq!(seat.slot.as_str(), "bob");
        let full = service
            .take_seat(&carol, listed.channel.id.as_str(), None)
            .await
            .expect_err("no seat is left");
        assert_eq!(full.code(), domain::ErrorCode::InvalidArgument);
        let reader = crate::Caller::new(carol.principal.clone(), crate::Access::Read);
        let scope = service
            .take_seat(&reader, listed.channel.id.as_str(), None)
            .await
            .expect_err("taking a seat writes");
        assert_eq!(scope.code(), domain::ErrorCode::InsufficientScope);
        for hostile in ["x".repeat(65), "tic\0tac".to_owned(), String::new()] {
            let refused = service
                .lobby(&carol, Some(&hostile))
                .await
                .expect_err("refused before any query");
            assert_eq!(
                refused.code(),
                domain::ErrorCode::InvalidArgument,
                "{hostile:?}"
            );
        }
    }
}
