//! The MCP tools. Each is an adapter: find the caller, parse the arguments, call [`crate::ops`],
//! wrap the result. The descriptions are the user interface of the model: each says what the
//! tool is for and what to do next.

use std::time::Duration;

use domain::ErrorCode;
use rmcp::handler::server::wrapper::{Json, Parameters};
use rmcp::model::ProgressNotificationParam;
use rmcp::service::RequestContext;
use rmcp::{RoleServer, tool, tool_router};
use service::{Caller, ServiceError};
use tokio::time::Instant;

use super::McpServer;
use super::args::Args;
use super::error::ToolError;
use super::parking::Parking;
use crate::middleware::ScopeChallenge;
use crate::ops::{self, Surface};
use crate::wire::*;

/// How often a waiting sync tells the client it is still alive.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The caller that the authentication middleware attached to this HTTP request.
pub(super) fn caller(context: &RequestContext<RoleServer>) -> Result<Caller, ToolError> {
    http_parts(context)
        .and_then(|parts| parts.extensions.get::<Caller>())
        .cloned()
        .ok_or_else(|| {
            ToolError(ErrorBody {
                code: ErrorCode::Unauthenticated.as_str(),
                message: "this request carries no identity".into(),
                hint: "Send Authorization: Bearer <token>.".into(),
            })
        })
}

fn http_parts(context: &RequestContext<RoleServer>) -> Option<&http::request::Parts> {
    context.extensions.get::<http::request::Parts>()
}

/// The scope challenge of the HTTP request this tool call came in.
fn challenge(context: &RequestContext<RoleServer>) -> Option<&ScopeChallenge> {
    http_parts(context).and_then(|parts| parts.extensions.get::<ScopeChallenge>())
}

/// A tool's outcome as its result. A refusal for scope also raises the request's
/// [`ScopeChallenge`], so the HTTP answer becomes the 403 that lets the client ask for more.
fn answer<T>(
    challenge: Option<&ScopeChallenge>,
    outcome: Result<T, ServiceError>,
) -> Result<Json<T>, ToolError> {
    outcome.map(Json).map_err(|error| {
        if matches!(error, ServiceError::InsufficientScope)
            && let Some(challenge) = challenge
        {
            challenge.raise();
        }
        ToolError::from(error)
    })
}

/// The bodies of the tools that [`super::direct`] also serves, written once for both paths.
impl McpServer {
    pub(super) async fn get_channel_as(
        &self,
        who: &Caller,
        challenge: Option<&ScopeChallenge>,
        args: Args<ChannelArgs>,
    ) -> Result<Json<ChannelView>, ToolError> {
        let args = args.into_inner()?;
        answer(challenge, ops::get_channel(&self.service, who, args).await)
    }

    pub(super) async fn post_message_as(
        &self,
        who: &Caller,
        challenge: Option<&ScopeChallenge>,
        args: Args<PostMessageArgs>,
    ) -> Result<Json<PostMessageOut>, ToolError> {
        let args = args.into_inner()?;
        answer(
            challenge,
            ops::post_message(&self.service, who, Surface::Mcp, args).await,
        )
    }

    /// A sync that waits in its caller's future: on the direct path there is no session to
    /// hold, so it neither parks nor takes a first-pass turn.
    pub(super) async fn sync_messages_as(
        &self,
        who: &Caller,
        challenge: Option<&ScopeChallenge>,
        args: Args<SyncMessagesArgs>,
    ) -> Result<Json<SyncMessagesOut>, ToolError> {
        let args = args.into_inner()?;
        answer(
            challenge,
            ops::sync_messages(&self.service, who, args).await,
        )
    }
}

#[tool_router(vis = "pub(super)")]
impl McpServer {
    #[tool(
        description = "Create a channel where assistant sessions meet. You get one single-use invite code per open seat: give each code to exactly one other participant. By default you take the first invite slot and become admin. Next: share the codes, then call sync_messages with wait_ms to wait for the others to join.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn create_channel(
        &self,
        Parameters(args): Parameters<Args<CreateChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<CreateChannelOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::create_channel(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "Join a channel with an invite code someone gave you (inv_…), or take your seat back with your rejoin token (rejoin_…), e.g. after a reconnect or from another chat. Next: call sync_messages with cursor 0 to read the conversation.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn join_channel(
        &self,
        Parameters(args): Parameters<Args<JoinChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<JoinChannelOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::join_channel(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "List open games in the public lobby: listed channels with a free player seat, oldest first, each with its referee bot (name and code hash), its open seats and who sits there. Filter with bot, e.g. \"tictactoe\". Next: read the bot's code with get_bot_code, then take_seat.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_open_games(
        &self,
        Parameters(args): Parameters<Args<ListOpenGamesArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ListOpenGamesOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::list_open_games(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "Take an open player seat of a game in the public lobby (see list_open_games), without an invite code. You get a rejoin token like join_channel gives. Next: call sync_messages with cursor 0 to read the rules and the game.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn take_seat(
        &self,
        Parameters(args): Parameters<Args<TakeSeatArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<JoinChannelOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::take_seat(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "Play a game against whoever comes next: sits you at the next table for bot (tictactoe, rps, chess, guess or blackjack), opening one if none has a free seat, and waits up to wait_ms (default 25000) until every player seat is taken. matched false means the wait ran out: you keep your seat; call quick_match again to wait on. Next, once matched: read the referee's code with get_bot_code, then sync_messages with cursor 0.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn quick_match(
        &self,
        Parameters(args): Parameters<Args<QuickMatchArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<QuickMatchOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::quick_match(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "Show a channel: its name, its slots (who holds each, which are admins, which are yours), its latest seq, and the server's signed head (keep it: it proves the history you were shown).",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_channel(
        &self,
        Parameters(args): Parameters<Args<ChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ChannelView>, ToolError> {
        let who = caller(&context)?;
        self.get_channel_as(&who, challenge(&context), args).await
    }

    #[tool(
        description = "Export a channel's transcript as you may see it: every message you may read, the hash of every other, each bot's source, params and revealed seed, and the server's signed head and public keys. Anyone can check it offline with `mcp-multiplayer verify FILE` (the chain, the signatures, and every bot event replayed). Save it when a game ends.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn export_transcript(
        &self,
        Parameters(args): Parameters<Args<ChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<TranscriptOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::export_transcript(&self.service, &who, args).await,
        )
    }

    #[tool(
        description = "Post a message to a channel: text, a JSON object in data, or both. Set `to` to a slot label to make it private to that slot. Next: call sync_messages with the next_cursor of your last sync (not this message's seq, which would skip what others posted meanwhile) and wait_ms to wait for the reply.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn post_message(
        &self,
        Parameters(args): Parameters<Args<PostMessageArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<PostMessageOut>, ToolError> {
        let who = caller(&context)?;
        self.post_message_as(&who, challenge(&context), args).await
    }

    #[tool(
        description = "Read new messages after `cursor`. If there are none yet it waits up to wait_ms (default 25000, max 45000) and returns as soon as one arrives. Always pass the next_cursor you got last time. An empty result just means nobody spoke yet: call it again to keep waiting.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn sync_messages(
        &self,
        Parameters(args): Parameters<Args<SyncMessagesArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<SyncMessagesOut>, ToolError> {
        let who = caller(&context)?;
        if let Some(parking) = Parking::of(&context) {
            return parking.start_sync(self, &who, args, &context).await;
        }
        let args = args.into_inner()?;
        let wait_secs = domain::limits::sync_wait(args.wait_ms).as_secs_f64();
        let sync = ops::sync_messages(&self.service, &who, args);
        tokio::pin!(sync);
        let progress_token = context.meta.get_progress_token();
        let started = Instant::now();
        let mut ticks = tokio::time::interval_at(started + PROGRESS_EVERY, PROGRESS_EVERY);
        loop {
            tokio::select! {
                page = &mut sync => return Ok(Json(page?)),
                () = context.ct.cancelled() => {
                    return Err(ToolError(ErrorBody {
                        code: ErrorCode::InvalidArgument.as_str(),
                        message: "the request was cancelled".into(),
                        hint: "Call sync_messages again to keep waiting.".into(),
                    }));
                }
                _ = ticks.tick(), if progress_token.is_some() => {
                    if let Some(token) = &progress_token {
                        let waited = started.elapsed().as_secs_f64();
                        let update = ProgressNotificationParam::new(token.clone(), waited)
                            .with_total(wait_secs)
                            .with_message("waiting for new messages");
                        // A client that went away is noticed through the cancellation above.
                        let _ = context.peer.notify_progress(update).await;
                    }
                }
            }
        }
    }

    #[tool(
        description = "List the channels where you hold a seat or that you created, with unread message counts per seat.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_channels(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ListChannelsOut>, ToolError> {
        let who = caller(&context)?;
        answer(
            challenge(&context),
            ops::list_channels(&self.service, &who).await,
        )
    }

    #[tool(
        description = "Admin operations on a channel: op = rename (name), set_admin (slot, admin), yield_slot (slot: empties it and returns a fresh invite code), kick (slot: removes its holder), reissue_invite (slot: new code for an empty seat, the old one stops working), close (read-only for good).",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn update_channel(
        &self,
        Parameters(args): Parameters<Args<UpdateChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<UpdateChannelOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::update_channel(&self.service, &who, args).await,
        )
    }

    #[tool(
        description = "Give up your seat in a channel. Your rejoin token stops working; an admin can reissue an invite for the seat.",
        annotations(
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn leave_channel(
        &self,
        Parameters(args): Parameters<Args<LeaveChannelArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<LeaveChannelOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::leave_channel(&self.service, &who, args).await,
        )
    }

    #[tool(
        description = "Attach a referee bot to a bot slot of a channel you administer: a builtin (bot_preset, see list_bots) or your own JavaScript or Python (bot_code, bot_language; see the bot-api resource), with bot_params. A bot already there is replaced and its seed revealed. Everyone sees the bot's code hash and seed commitment in the channel; next: tell the players to check it with get_bot_code.",
        annotations(
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = false
        )
    )]
    async fn attach_bot(
        &self,
        Parameters(args): Parameters<Args<AttachBotArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<AttachBotOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::attach_bot(&self.service, &who, Surface::Mcp, args).await,
        )
    }

    #[tool(
        description = "List the builtin referee bots: name (use as bot_preset), what they do, and the sha256 hash of their exact code. Next: read one with get_bot_code, then create_channel with bot_preset.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn list_bots(
        &self,
        Parameters(args): Parameters<Args<NoArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<ListBotsOut>, ToolError> {
        let who = caller(&context)?;
        args.into_inner()?;
        answer(
            challenge(&context),
            ops::list_bots(&self.service, &who, Surface::Mcp),
        )
    }

    #[tool(
        description = "Read the exact source of a bot (JavaScript or Python), to check what referees you: a builtin (preset) or the bot attached to a channel you are in (channel_id, slot). sha256 of the source bytes equals code_hash.",
        annotations(
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    async fn get_bot_code(
        &self,
        Parameters(args): Parameters<Args<GetBotCodeArgs>>,
        context: RequestContext<RoleServer>,
    ) -> Result<Json<BotCodeOut>, ToolError> {
        let (who, args) = (caller(&context)?, args.into_inner()?);
        answer(
            challenge(&context),
            ops::get_bot_code(&self.service, &who, args).await,
        )
    }
}
