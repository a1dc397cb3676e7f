//! `/channels/{id}`: a channel as one of its members sees it, live.
//!
//! The page is rendered with the latest messages the visitor's seat may read (the same sync an
//! app makes, so a spectator sees no private message and an outsider sees nothing), the slots
//! and their holders, each bot's code, params and hashes, and the signed head. `channel.js`
//! then long-polls `/channels/{id}/feed` (a 25 s sync) and appends what arrives. Admins get
//! forms for rename, kick, yield, reissue invite and close, posted to `/channels/{id}/admin`.

use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::session::{SignedIn, Visitor};
use super::sign_in::see_other;
use super::{PageError, Shared, check_form, layout, ok};
use crate::api::ApiError;
use crate::ops;
use crate::wire::{
    AdminOpName, BotCodeOut, ChannelArgs, ChannelView, GetBotCodeArgs, HeadView, MessageView,
    SlotView, SyncMessagesArgs, UpdateChannelArgs,
};

/// How many of the latest messages the page shows when it opens; older ones are in the replay.
const OPENING_MESSAGES: i64 = 300;
/// How long one feed request waits for news.
const FEED_WAIT_MS: u64 = 25_000;

#[derive(Debug, Default, Deserialize)]
pub(super) struct SeatQuery {
    slot: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FeedQuery {
    #[serde(default)]
    cursor: i64,
    slot: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct AdminForm {
    #[serde(default)]
    form_token: String,
    #[serde(default)]
    op: String,
    slot: Option<String>,
    name: Option<String>,
    /// The seat the page was watching from, to return to.
    watching: Option<String>,
}

/// `GET /channels/{id}`.
pub(super) async fn page(
    State(state): Shared,
    Path(channel_id): Path<String>,
    Query(seat): Query<SeatQuery>,
    visitor: Visitor,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    let service = &state.service;
    let channel = ops::get_channel(service, &person.caller, ChannelArgs { channel_id }).await?;
    let watching = seat
        .slot
        .filter(|slot| channel.your_slots.contains(slot))
        .or_else(|| channel.your_slots.first().cloned());
    let mut messages = Vec::new();
    let mut cursor = channel.last_seq;
    let mut more_before = false;
    if let Some(slot) = &watching {
        let mut from = (channel.last_seq - OPENING_MESSAGES).max(0);
        more_before = from > 0;
        loop {
            let page = ops::sync_messages(
                service,
                &person.caller,
                SyncMessagesArgs {
                    channel_id: channel.channel_id.clone(),
                    cursor: Some(from),
                    wait_ms: Some(0),
                    slot: Some(slot.clone()),
                    limit: None,
                },
            )
            .await?;
            messages.extend(page.messages);
            from = page.next_cursor;
            cursor = page.next_cursor;
            if !page.has_more {
                break;
            }
        }
    }
    let mut bots = Vec::new();
    for slot in channel.slots.iter().filter(|slot| slot.bot.is_some()) {
        let code = ops::get_bot_code(
            service,
            &person.caller,
            GetBotCodeArgs {
                preset: None,
                channel_id: Some(channel.channel_id.clone()),
                slot: Some(slot.slot.clone()),
            },
        )
        .await?;
        bots.push((slot, code));
    }
    let body = html! {
        (heading(&channel, watching.as_deref()))
        div.channel-grid {
            section.card.messages-card aria-labelledby="messages-title" {
                h2 #messages-title { "Messages" }
                @match &watching {
                    Some(slot) => {
                        @if more_before {
                            p.note { "Earlier messages are in the "
                                a href={ "/channels/" (channel.channel_id) "/replay" } { "replay" } "." }
                        }
                        ol #messages.messages data-channel=(channel.channel_id) data-slot=(slot)
                            data-cursor=(cursor) data-closed=(channel.closed) aria-live="polite" {
                            @for message in &messages { (message_item(message)) }
                        }
                        p #feed-status.note role="status" {
                            @if channel.closed { "This channel is closed." } @else { "Live: new messages appear here." }
                        }
                    }
                    None => p { "You hold no seat here, so there is no seat to read messages from. \
                        As the owner you see the set-up; the "
                        a href={ "/channels/" (channel.channel_id) "/replay" } { "replay" }
                        " shows the public history." },
                }
            }
            aside {
                (slots_card(&channel))
                @if let Some(head) = &channel.head { (head_card(head)) }
                @if channel.you_are_admin && !channel.closed { (admin_card(&channel, person, watching.as_deref())) }
            }
        }
        @for (slot, code) in &bots { (bot_card(slot, code)) }
    };
    Ok(ok(layout::page(
        &channel.name,
        &visitor,
        &["site.js", "highlight.js", "channel.js"],
        body,
    )))
}

fn heading(channel: &ChannelView, watching: Option<&str>) -> Markup {
    html! {
        p.eyebrow { "Channel" }
        h1 { (channel.name) }
        p.lead {
            @if channel.closed { span.tag.closed { "closed" } " " } @else { span.tag.open { "open" } " " }
            @if let Some(slot) = watching {
                "Watching from your seat " strong { (slot) } ". "
            }
            @if channel.your_slots.len() > 1 {
                "Your seats: "
                @for slot in &channel.your_slots {
                    a href={ "?slot=" (slot) } { (slot) } " "
                }
            }
            @if channel.reveal_private {
                "Private messages to a referee become readable to everyone once its seed is revealed. "
            }
            a href={ "/channels/" (channel.channel_id) "/replay" } { "Replay" } " · "
            a href={ "/channels/" (channel.channel_id) "/transcript.json" } download { "Download the transcript" }
        }
    }
}

/// One message; `channel.js` builds the same structure for the ones that arrive later.
fn message_item(message: &MessageView) -> Markup {
    let private = message.to.is_some();
    html! {
        li class={ "msg kind-" (message.kind) @if private { " private" } } data-seq=(message.seq) {
            div.meta {
                span.seq { "#" (message.seq) }
                span.from { (message.from_name) @if let Some(slot) = &message.from_slot { " (" (slot) ")" } }
                span class={ "kind " (message.kind) } { (message.kind) }
                @if let Some(to) = &message.to { span.private-to { "private → " (to) } }
                time datetime=(message.at) { (message.at) }
            }
            @if let Some(text) = &message.text { pre.text { (text) } }
            @if let Some(data) = &message.data {
                details.data {
                    summary { "data" }
                    pre { (serde_json::to_string_pretty(data).unwrap_or_default()) }
                }
            }
        }
    }
}

fn slots_card(channel: &ChannelView) -> Markup {
    html! {
        section.card aria-labelledby="slots-title" {
            h2 #slots-title { "Seats" }
            table.list {
                thead { tr { th { "Slot" } th { "Kind" } th { "Held by" } } }
                tbody {
                    @for slot in &channel.slots {
                        tr {
                            td { (slot.slot) @if slot.admin { " " span.tag { "admin" } } @if slot.yours { " " span.tag.yours { "you" } } }
                            td { (slot.kind) }
                            td {
                                @if let Some(bot) = &slot.bot {
                                    a href={ "#bot-" (slot.slot) } { (bot.name) } " (" (bot.language) ")"
                                    @if bot.ended { " · ended" } @if bot.disabled { " · disabled" }
                                } @else if let Some(display) = &slot.display {
                                    (display)
                                } @else {
                                    span.muted { "open" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn head_card(head: &HeadView) -> Markup {
    html! {
        section.card aria-labelledby="head-title" {
            h2 #head-title { "Signed head" }
            p.note { "The server's signed statement of this channel's history. Keep it: a \
                transcript that disagrees with it proves a rewrite." }
            dl.head #head {
                dt { "Seq" } dd #head-seq { (head.seq) }
                dt { "Head" } dd { code #head-hash { (head.head) } }
                dt { "Key" } dd { code #head-key { (head.key_id) } }
                dt { "Signature" } dd { code.wrap #head-signature { (head.signature) } }
            }
        }
    }
}

fn admin_card(channel: &ChannelView, person: &SignedIn, watching: Option<&str>) -> Markup {
    let action = format!("/channels/{}/admin", channel.channel_id);
    let form = |op: &str, slot: Option<&str>, label: &str, class: &str| {
        html! {
            form.inline method="post" action=(action) {
                (layout::token_field(person))
                input type="hidden" name="op" value=(op);
                @if let Some(slot) = slot { input type="hidden" name="slot" value=(slot); }
                @if let Some(watching) = watching { input type="hidden" name="watching" value=(watching); }
                button type="submit" class=(class) { (label) }
            }
        }
    };
    let invite_slots: Vec<&SlotView> = channel
        .slots
        .iter()
        .filter(|slot| slot.kind != "bot")
        .collect();
    html! {
        section.card aria-labelledby="admin-title" {
            h2 #admin-title { "Admin" }
            form method="post" action=(action) {
                (layout::token_field(person))
                input type="hidden" name="op" value="rename";
                @if let Some(watching) = watching { input type="hidden" name="watching" value=(watching); }
                label for="rename" { "Name" }
                div.copy-row {
                    input #rename name="name" value=(channel.name) maxlength="100" required;
                    button.secondary type="submit" { "Rename" }
                }
            }
            table.list.admin {
                tbody {
                    @for slot in &invite_slots {
                        tr {
                            td { (slot.slot) }
                            td {
                                @if slot.filled {
                                    @if slot.yours {
                                        (form("yield_slot", Some(&slot.slot), "Yield", "secondary"))
                                    } @else {
                                        (form("kick", Some(&slot.slot), "Kick", "secondary"))
                                    }
                                } @else {
                                    (form("reissue_invite", Some(&slot.slot), "New invite", "secondary"))
                                }
                            }
                        }
                    }
                }
            }
            (form("close", None, "Close the channel", "danger"))
            p.note { "Closing is for good: the channel becomes read-only and its bots' seeds are revealed." }
        }
    }
}

fn bot_card(slot: &SlotView, code: &BotCodeOut) -> Markup {
    let bot = slot.bot.as_ref();
    html! {
        section.card.bot id={ "bot-" (slot.slot) } aria-label={ "Bot " (code.name) } {
            h2 { "Referee " (code.name) " in " (slot.slot) }
            dl.facts {
                dt { "Language" } dd { (code.language) }
                dt { "Code hash" } dd { code { (code.code_hash) } }
                @if let Some(hash) = &code.params_hash { dt { "Params hash" } dd { code { (hash) } } }
                @if let Some(bot) = bot {
                    dt { "Seed commitment" } dd { code { (bot.seed_commitment) } }
                    dt { "State" } dd { @if bot.ended { "ended" } @else if bot.disabled { "disabled" } @else { "running" } }
                }
            }
            @if let Some(params) = &code.params {
                h3 { "Params" }
                pre.params { (serde_json::to_string_pretty(params).unwrap_or_default()) }
            }
            details open {
                summary { "Source (" (code.source.lines().count()) " lines)" }
                pre.source { code class={ "language-" (code.language) } { (code.source) } }
            }
        }
    }
}

/// `GET /channels/{id}/feed?cursor=N&slot=S`: one long-poll for the live page, answered with
/// the sync's JSON (errors as the REST API's).
pub(super) async fn feed(
    State(state): Shared,
    Path(channel_id): Path<String>,
    Query(query): Query<FeedQuery>,
    visitor: Visitor,
) -> Result<Response, ApiError> {
    let Some(person) = &visitor.signed_in else {
        return Err(ApiError::new(
            domain::ErrorCode::Unauthenticated,
            "not signed in",
            "Sign in at /signin, then reload the page.",
        ));
    };
    let page = ops::sync_messages(
        &state.service,
        &person.caller,
        SyncMessagesArgs {
            channel_id,
            cursor: Some(query.cursor),
            wait_ms: Some(FEED_WAIT_MS),
            slot: query.slot,
            limit: None,
        },
    )
    .await?;
    Ok(axum::Json(page).into_response())
}

/// `POST /channels/{id}/admin`: one admin operation; back to the channel, or, for a new invite,
/// a page showing it.
pub(super) async fn admin(
    State(state): Shared,
    Path(channel_id): Path<String>,
    visitor: Visitor,
    Form(form): Form<AdminForm>,
) -> Result<Response, PageError> {
    let person = visitor.require()?;
    check_form(&state, person, &form.form_token)?;
    let op = AdminOpName::parse(&form.op).ok_or_else(|| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "Unknown action",
            "Use the buttons on the channel page.",
        )
    })?;
    let out = ops::update_channel(
        &state.service,
        &person.caller,
        UpdateChannelArgs {
            channel_id: channel_id.clone(),
            op,
            name: form.name,
            slot: form.slot,
            admin: None,
        },
    )
    .await?;
    let back = match &form.watching {
        Some(slot) => format!("/channels/{channel_id}?slot={}", urlencode(slot)),
        None => format!("/channels/{channel_id}"),
    };
    let Some(invite) = out.invite else {
        return Ok(see_other(&back));
    };
    let body = html! {
        h1 { "A new invite for " (invite.slot) }
        p.lead { "Give this code to whoever should take the seat. The previous code no longer works." }
        div.copy-row {
            code #invite-code { (invite.code) }
            button.secondary type="button" data-copy="invite-code" { "Copy" }
        }
        p { a href=(back) { "Back to " (out.channel.name) } }
    };
    Ok(ok(layout::page("New invite", &visitor, &["site.js"], body)))
}

fn urlencode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}
