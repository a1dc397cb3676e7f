//! The REST API under `/api`: the same capabilities as the MCP tools, as JSON over HTTP, for
//! scripts and curl. Handlers are adapters over [`crate::ops`].

mod error;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use service::Caller;
use service::Service;

use error::ApiJson;
pub use error::{ApiError, status_of};

use crate::ops;
use crate::wire::*;

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn router(service: Service) -> Router {
    Router::new()
        .route("/channels", get(list_channels).post(create_channel))
        .route("/channels/{channel_id}", get(get_channel))
        .route(
            "/channels/{channel_id}/messages",
            get(sync_messages).post(post_message),
        )
        .route("/channels/{channel_id}/admin", post(update_channel))
        .route("/channels/{channel_id}/leave", post(leave_channel))
        .route("/join", post(join_channel))
        .with_state(service)
}

async fn create_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    ApiJson(args): ApiJson<CreateChannelArgs>,
) -> Result<(StatusCode, Json<CreateChannelOut>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(ops::create_channel(&service, &who, args).await?),
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

async fn join_channel(
    State(service): State<Service>,
    Extension(who): Extension<Caller>,
    ApiJson(args): ApiJson<JoinChannelArgs>,
) -> ApiResult<JoinChannelOut> {
    Ok(Json(ops::join_channel(&service, &who, args).await?))
}

/// The message body: the tool's arguments without `channel_id`, which is in the path.
#[derive(Debug, serde::Deserialize)]
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
        Json(ops::post_message(&service, &who, args).await?),
    ))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncQuery {
    cursor: Option<i64>,
    wait_ms: Option<u64>,
    slot: Option<String>,
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

#[derive(Debug, serde::Deserialize)]
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

#[derive(Debug, Default, serde::Deserialize)]
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
    let slot = if body.is_empty() {
        None
    } else {
        serde_json::from_slice::<LeaveBody>(&body)
            .map_err(|error| {
                ApiError::new(
                    domain::ErrorCode::InvalidArgument,
                    error.to_string(),
                    "Send {} or {\"slot\": \"<label>\"}.",
                )
            })?
            .slot
    };
    Ok(Json(
        ops::leave_channel(&service, &who, LeaveChannelArgs { channel_id, slot }).await?,
    ))
}
