//! `/lobby`: the public lobby, open games by bot, with a form to take a free seat. Anyone may
//! look (a listed channel is public by its creator's choice); taking a seat needs signing in.
//! Quick match is an MCP tool: the page says how to ask for one, and its tables show here
//! while they wait for players.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Form, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use service::QUICK_MATCH_GAMES;

use super::session::Visitor;
use super::sign_in::see_other;
use super::{PageError, Shared, check_form, layout, ok};
use crate::ops;
use crate::wire::{OpenGameView, TakeSeatArgs};

/// How long a lobby answer is shown again before the database is read anew.
const FRESH_FOR: Duration = Duration::from_secs(1);

/// The lobby's answers for the last second, by filter: anyone may load the page, signed in or
/// not, and one answer reads up to [`service::LOBBY_LIMIT`] channels. The page filters only by
/// a builtin bot's name (or not at all), so the map stays as small as the catalog and every
/// request is served from it but one a second per filter.
#[derive(Default)]
pub struct LobbyCache(Mutex<HashMap<Option<&'static str>, Answer>>);

/// When an answer was read, and the games it found.
type Answer = (Instant, Arc<Vec<OpenGameView>>);

impl LobbyCache {
    async fn games(
        &self,
        service: &service::Service,
        bot: Option<&str>,
    ) -> Result<Arc<Vec<OpenGameView>>, service::ServiceError> {
        // The page filters by a builtin's name only: any other filter would miss the cache
        // every time, for anyone.
        let key = match bot {
            None => None,
            Some(name) => match service::Service::catalog()
                .iter()
                .find(|builtin| builtin.name == name)
            {
                Some(builtin) => Some(builtin.name),
                None => return Ok(Arc::default()),
            },
        };
        if let Some((at, games)) = self.lock().get(&key)
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(games));
        }
        let games: Arc<Vec<OpenGameView>> = Arc::new(
            service
                .open_games(bot)
                .await?
                .iter()
                .map(OpenGameView::new)
                .collect(),
        );
        self.lock()
            .insert(key, (Instant::now(), Arc::clone(&games)));
        Ok(games)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<&'static str>, Answer>> {
        self.0.lock().unwrap_or_else(|poison| poison.into_inner())
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct BotFilter {
    bot: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct SeatForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    channel_id: String,
    slot: Option<String>,
}

/// `GET /lobby?bot=…`.
pub(super) async fn page(
    State(state): Shared,
    Query(filter): Query<BotFilter>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let bot = filter.bot.filter(|bot| !bot.is_empty());
    let games = state.lobby.games(&state.service, bot.as_deref()).await?;
    let mut by_bot: BTreeMap<&str, Vec<&OpenGameView>> = BTreeMap::new();
    for game in games.iter() {
        let name = game
            .bot
            .as_ref()
            .map_or("no referee", |bot| bot.name.as_str());
        by_bot.entry(name).or_default().push(game);
    }
    let body = html! {
        h1 { "Lobby" }
        p.lead { "Games waiting for players. Taking a seat needs no invite code. Ask your \
            assistant to " code { "quick_match" } " a game ("
            @for (index, (name, _)) in QUICK_MATCH_GAMES.iter().enumerate() {
                @if index > 0 { ", " } (name)
            }
            ") to be seated at the next table, or to " code { "create_channel" } " with "
            code { "listed: true" } " to open one here." }
        nav.filters aria-label="Filter by bot" {
            a href="/lobby" aria-current=[bot.is_none().then_some("page")] { "All" }
            @for (name, _) in QUICK_MATCH_GAMES {
                " · "
                a href={ "/lobby?bot=" (name) } aria-current=[(bot.as_deref() == Some(name)).then_some("page")] { (name) }
            }
        }
        @if games.is_empty() {
            section.card { p #no-games { "No open game right now." } }
        }
        @for (name, games) in &by_bot {
            section.card aria-label={ "Games of " (name) } {
                h2 { (name) }
                table.list.lobby {
                    thead { tr { th { "Game" } th { "Players" } th { "Open seats" } th {} } }
                    tbody {
                        @for game in games {
                            tr data-channel=(game.channel_id) {
                                td {
                                    (game.name)
                                    @if game.listing == "quick_match" { " " span.tag { "quick match" } }
                                    @if let Some(bot) = &game.bot {
                                        br; span.muted.small { code { (bot.code_hash) } }
                                    }
                                }
                                td { @if game.players.is_empty() { span.muted { "nobody yet" } } @else { (game.players.join(", ")) } }
                                td { (game.open_seats.join(", ")) }
                                td {
                                    @match &visitor.signed_in {
                                        Some(person) => {
                                            form method="post" action="/lobby/seat" {
                                                (layout::token_field(person))
                                                input type="hidden" name="channel_id" value=(game.channel_id);
                                                button.primary type="submit" { "Take a seat" }
                                            }
                                        }
                                        None => a href="/signin?next=/lobby" { "Sign in to play" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(ok(layout::page("Lobby", &visitor, &[], body)))
}

/// `POST /lobby/seat`: takes the seat, then opens the channel from it.
pub(super) async fn take_seat(
    State(state): Shared,
    visitor: Visitor,
    Form(form): Form<SeatForm>,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    check_form(&state, person, &form.form_token)?;
    let joined = ops::take_seat(
        &state.service,
        &person.caller,
        ops::Surface::Rest,
        TakeSeatArgs {
            channel_id: form.channel_id,
            slot: form.slot,
        },
    )
    .await?;
    Ok(see_other(&format!(
        "/channels/{}?slot={}",
        joined.channel.channel_id, joined.your_seat.slot
    )))
}
