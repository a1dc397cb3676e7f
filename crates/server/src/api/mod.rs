//! The REST API under `/api`: the same capabilities as the MCP tools, as JSON over HTTP, for
//! scripts and curl. Handlers are adapters over [`crate::ops`]; [`operations`] lists the routes
//! once, for the router and for the OpenAPI document served at `/api/openapi.json`.

mod error;
mod openapi;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, Uri};
use axum::routing::MethodRouter;
use axum::{Extension, Json, Router};
use service::Caller;

use schemars::JsonSchema;
use service::Service;

use error::ApiJson;
pub use error::{ApiError, method_not_allowed, not_found, status_of};
use error::{method_not_allowed_at, not_found_at};
use openapi::{Operation, Required};

use crate::metrics::Metrics;
use crate::ops::{self, Surface};
use crate::wire::*;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Where the REST API is mounted.
pub const PREFIX: &str = "/api";

/// Every REST route, described. The router and the OpenAPI document are both built from this.
fn operations() -> Vec<Operation> {
    use Method as M;
    vec![
        Operation::new::<ListChannelsOut, _>(
            M::GET,
            "/channels",
            "list_channels",
            "The channels where you hold a seat or that you created, with unread counts.",
            list_channels,
        ),
        Operation::new::<CreateChannelOut, _>(
            M::POST,
            "/channels",
            "create_channel",
            "Create a channel; you get one single-use invite code per open seat.",
            create_channel,
        )
        .body::<CreateChannelArgs>(Required::Yes)
        .created(),
        Operation::new::<ChannelView, _>(
            M::GET,
            "/channels/{channel_id}",
            "get_channel",
            "A channel's set-up: its slots, who holds them, its last seq.",
            get_channel,
        ),
        Operation::new::<SyncMessagesOut, _>(
            M::GET,
            "/channels/{channel_id}/messages",
            "sync_messages",
            "Messages after `cursor`; waits up to `wait_ms` when there are none yet.",
            sync_messages,
        )
        .query::<SyncQuery>(),
        Operation::new::<PostMessageOut, _>(
            M::POST,
            "/channels/{channel_id}/messages",
            "post_message",
            "Post a message: text, a JSON object in data, or both.",
            post_message,
        )
        .body::<PostBody>(Required::Yes)
        .created(),
        Operation::new::<UpdateChannelOut, _>(
            M::POST,
            "/channels/{channel_id}/admin",
            "update_channel",
            "Admin operations: rename, set_admin, yield_slot, kick, reissue_invite, close.",
            update_channel,
        )
        .body::<AdminBody>(Required::Yes),
        Operation::new::<LeaveChannelOut, _>(
            M::POST,
            "/channels/{channel_id}/leave",
            "leave_channel",
            "Give up your seat (an empty body leaves your only seat).",
            leave_channel,
        )
        .body::<LeaveBody>(Required::No),
        Operation::new::<TranscriptOut, _>(
            M::GET,
            "/channels/{channel_id}/transcript",
            "export_transcript",
            "The channel's transcript as you may see it, signed, for offline verification (docs/transcript.md).",
            export_transcript,
        ),
        Operation::new::<BotCodeOut, _>(
            M::GET,
            "/channels/{channel_id}/bot",
            "get_channel_bot_code",
            "The exact source of the bot attached to a channel you are in.",
            get_channel_bot_code,
        )
        .query::<BotSlotQuery>(),
        Operation::new::<AttachBotOut, _>(
            M::POST,
            "/channels/{channel_id}/bot",
            "attach_bot",
            "Attach a referee bot (a builtin, or your own JavaScript or Python) to a bot slot you administer.",
            attach_bot,
        )
        .body::<AttachBotBody>(Required::Yes),
        Operation::new::<JoinChannelOut, _>(
            M::POST,
            "/join",
            "join_channel",
            "Join with an invite code, or take your seat back with a rejoin token.",
            join_channel,
        )
        .body::<JoinChannelArgs>(Required::Yes),
        Operation::new::<ListOpenGamesOut, _>(
            M::GET,
            "/lobby",
            "list_open_games",
            "Listed channels with an open player seat, oldest first; `bot` filters by referee.",
            list_open_games,
        )
        .query::<ListOpenGamesArgs>(),
        Operation::new::<JoinChannelOut, _>(
            M::POST,
            "/channels/{channel_id}/seat",
            "take_seat",
            "Take an open player seat of a listed channel, without an invite code.",
            take_seat,
        )
        .body::<SeatBody>(Required::No),
        Operation::new::<QuickMatchOut, _>(
            M::POST,
            "/quick-match",
            "quick_match",
            "Sit at the next table for a game (tictactoe, rps, chess, guess, blackjack) and wait for the other players.",
            quick_match,
        )
        .body::<QuickMatchArgs>(Required::Yes),
        Operation::new::<ListBotsOut, _>(
            M::GET,
            "/bots",
            "list_bots",
            "The builtin referee bots, with the hash of their exact code.",
            list_bots,
        ),
        Operation::new::<BotCodeOut, _>(
            M::GET,
            "/bots/{name}",
            "get_bot_code",
            "The exact source of a builtin bot.",
            get_builtin_bot_code,
        ),
    ]
}

/// The REST routes, nested under [`PREFIX`] by the caller. Unknown paths and methods under it
/// answer in the same JSON error format as every refusal.
pub fn router(service: Service, metrics: &Arc<Metrics>) -> Router {
    // Nested, these handlers see the path without the prefix, which the client did send.
    openapi::router(operations(), service, metrics)
        .fallback(|uri: Uri| async move { not_found_at(&format!("{PREFIX}{}", uri.path())) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            method_not_allowed_at(&method, &format!("{PREFIX}{}", uri.path()))
        })
}

/// `GET /api/openapi.json`: the OpenAPI 3.1 document of [`router`]'s routes. Public, like any
/// API description.
pub fn openapi_route() -> MethodRouter {
    openapi::serve_document(&openapi::document(&operations(), PREFIX))
}

async fn create_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    ApiJson(args): ApiJson<CreateChannelArgs>,
) -> Result<(StatusCode, Json<CreateChannelOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ops::create_channel(&service, &who, Surface::Rest, args).await?),
    ))
}

async fn list_channels(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
) -> ApiResult<ListChannelsOut> {
    Ok(Json(ops::list_channels(&service, &who).await?))
}

async fn get_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
) -> ApiResult<ChannelView> {
    Ok(Json(
        ops::get_channel(&service, &who, ChannelArgs { channel_id }).await?,
    ))
}

async fn export_transcript(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
) -> ApiResult<TranscriptOut> {
    Ok(Json(
        ops::export_transcript(&service, &who, ChannelArgs { channel_id }).await?,
    ))
}

async fn join_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    ApiJson(args): ApiJson<JoinChannelArgs>,
) -> ApiResult<JoinChannelOut> {
    Ok(Json(
        ops::join_channel(&service, &who, Surface::Rest, args).await?,
    ))
}

/// The message body: the tool's arguments without `channel_id`, which is in the path.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PostBody {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

async fn post_message(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<PostBody>,
) -> Result<(StatusCode, Json<PostMessageOut>), ApiError> {
    let args = PostMessageArgs {
        channel_id,
        text: body.text,
        data: body.data,
        to: body.to,
        slot: body.slot,
        kind: body.kind,
    };
    Ok((
        StatusCode::CREATED,
        Json(ops::post_message(&service, &who, Surface::Rest, args).await?),
    ))
}

#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    /// The next_cursor of your previous sync; 0 (default) for the whole history.
    cursor: Option<i64>,
    /// How long to wait when there is nothing new, in ms (default 25000, max 45000).
    wait_ms: Option<u64>,
    /// Which of your seats reads; needed only if you hold several here.
    slot: Option<String>,
    /// Most messages to return (default 100, max 200; a page also stops at 256 KiB of bodies).
    limit: Option<usize>,
}

async fn sync_messages(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    query: Result<Query<SyncQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<SyncMessagesOut> {
    let Query(query) = query?;
    let args = SyncMessagesArgs {
        channel_id,
        cursor: query.cursor,
        wait_ms: query.wait_ms,
        slot: query.slot,
        limit: query.limit,
    };
    Ok(Json(ops::sync_messages(&service, &who, args).await?))
}

#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AdminBody {
    op: AdminOpName,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    slot: Option<String>,
    #[serde(default)]
    admin: Option<bool>,
}

async fn update_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<AdminBody>,
) -> ApiResult<UpdateChannelOut> {
    let args = UpdateChannelArgs {
        channel_id,
        op: body.op,
        name: body.name,
        slot: body.slot,
        admin: body.admin,
    };
    Ok(Json(ops::update_channel(&service, &who, args).await?))
}

#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct LeaveBody {
    #[serde(default)]
    slot: Option<String>,
}

async fn leave_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<LeaveChannelOut> {
    // The body is optional: an empty POST leaves your only seat.
    let LeaveBody { slot } = optional_slot_body(&body)?;
    Ok(Json(
        ops::leave_channel(&service, &who, LeaveChannelArgs { channel_id, slot }).await?,
    ))
}

/// A body that may be empty (its default) or `{"slot": "<label>"}`.
fn optional_slot_body<T: serde::de::DeserializeOwned + Default>(
    body: &[u8],
) -> Result<T, ApiError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::new(
            domain::ErrorCode::InvalidArgument,
            error.to_string(),
            "Send {} or {\"slot\": \"<label>\"}.",
        )
    })
}

async fn list_open_games(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    query: Result<Query<ListOpenGamesArgs>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<ListOpenGamesOut> {
    let Query(args) = query?;
    Ok(Json(
        ops::list_open_games(&service, &who, Surface::Rest, args).await?,
    ))
}

#[derive(Debug, Default, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SeatBody {
    /// The open seat to take; any open player seat when absent.
    #[serde(default)]
    slot: Option<String>,
}

async fn take_seat(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<JoinChannelOut> {
    let SeatBody { slot } = optional_slot_body(&body)?;
    Ok(Json(
        ops::take_seat(
            &service,
            &who,
            Surface::Rest,
            TakeSeatArgs { channel_id, slot },
        )
        .await?,
    ))
}

async fn quick_match(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    ApiJson(args): ApiJson<QuickMatchArgs>,
) -> ApiResult<QuickMatchOut> {
    Ok(Json(
        ops::quick_match(&service, &who, Surface::Rest, args).await?,
    ))
}

async fn list_bots(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
) -> ApiResult<ListBotsOut> {
    Ok(Json(ops::list_bots(&service, &who, Surface::Rest)?))
}

async fn get_builtin_bot_code(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<BotCodeOut> {
    let args = GetBotCodeArgs {
        preset: Some(name),
        ..GetBotCodeArgs::default()
    };
    Ok(Json(ops::get_bot_code(&service, &who, args).await?))
}

#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BotSlotQuery {
    /// The bot's slot; default: the channel's first bot slot.
    slot: Option<String>,
}

async fn get_channel_bot_code(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    query: Result<Query<BotSlotQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<BotCodeOut> {
    let Query(query) = query?;
    let args = GetBotCodeArgs {
        preset: None,
        channel_id: Some(channel_id),
        slot: query.slot,
    };
    Ok(Json(ops::get_bot_code(&service, &who, args).await?))
}

/// The bot to attach: the tool's arguments without `channel_id`, which is in the path.
#[derive(Debug, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct AttachBotBody {
    /// The bot slot to use; default: the first bot slot.
    #[serde(default)]
    slot: Option<String>,
    /// A builtin bot (see GET /api/bots).
    #[serde(default)]
    bot_preset: Option<String>,
    /// Or inline source, in JavaScript or Python.
    #[serde(default)]
    bot_code: Option<String>,
    /// The language of bot_code: "javascript" or "python"; inferred when absent.
    #[serde(default)]
    bot_language: Option<String>,
    /// The bot's parameters.
    #[serde(default)]
    bot_params: Option<serde_json::Map<String, serde_json::Value>>,
}

async fn attach_bot(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    Path(channel_id): Path<String>,
    ApiJson(body): ApiJson<AttachBotBody>,
) -> ApiResult<AttachBotOut> {
    let args = AttachBotArgs {
        channel_id,
        slot: body.slot,
        bot_preset: body.bot_preset,
        bot_code: body.bot_code,
        bot_language: body.bot_language,
        bot_params: body.bot_params,
    };
    Ok(Json(
        ops::attach_bot(&service, &who, Surface::Rest, args).await?,
    ))
}
