//! The tools' behaviour in wire types: argument conversion in, view building out.
//!
//! Both the MCP tools and the REST API call these, so the two surfaces cannot drift apart.
//! Each function is a thin mapping; the decisions are in `service` and `domain`. The texts that
//! tell a caller what to do next come from [`Surface`], so each names the tools or the routes
//! of the surface the caller is using.

use service::{
    AdminRequest, BotRequest, Caller, CodeOf, CreateRequest, PostRequest, Service, ServiceError,
    SyncPage, SyncRequest,
};

use domain::SlotLabel;

use crate::wire::*;

/// The surface a caller came in through: next steps name its tools (MCP) or its routes (REST).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Mcp,
    Rest,
}

/// Where a sync should start reading.
#[derive(Debug, Clone, Copy)]
enum SyncFrom {
    /// A known cursor, e.g. 0 for the whole history.
    Cursor(i64),
    /// The `next_cursor` the caller got from its own previous sync: the only cursor that never
    /// skips what others posted meanwhile.
    YourLast,
}

impl Surface {
    /// The label metrics count calls under.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Mcp => "mcp",
            Surface::Rest => "rest",
        }
    }

    /// "call join_channel with it" / "POST it to /api/join".
    fn join_with_code(self) -> &'static str {
        match self {
            Surface::Mcp => "call join_channel with it",
            Surface::Rest => r#"POST it to /api/join as {"code": "…"}"#,
        }
    }

    /// How to wait for new messages, from `from`, with the usual 25 s wait.
    fn sync(self, channel_id: &str, from: SyncFrom) -> String {
        match (self, from) {
            (Surface::Mcp, SyncFrom::Cursor(cursor)) => format!(
                "call sync_messages with channel_id {channel_id}, cursor {cursor} and wait_ms 25000"
            ),
            (Surface::Mcp, SyncFrom::YourLast) => format!(
                "call sync_messages with channel_id {channel_id}, the next_cursor of your last sync and wait_ms 25000"
            ),
            (Surface::Rest, SyncFrom::Cursor(cursor)) => {
                format!("GET /api/channels/{channel_id}/messages?cursor={cursor}&wait_ms=25000")
            }
            (Surface::Rest, SyncFrom::YourLast) => format!(
                "GET /api/channels/{channel_id}/messages?cursor=<next_cursor of your last sync>&wait_ms=25000"
            ),
        }
    }

    /// How to speak in a channel.
    fn post(self, channel_id: &str) -> String {
        match self {
            Surface::Mcp => "call post_message".to_owned(),
            Surface::Rest => format!("POST /api/channels/{channel_id}/messages"),
        }
    }

    /// How to give a seat back.
    fn leave(self, channel_id: &str, slot: &str) -> String {
        match self {
            Surface::Mcp => {
                format!("call leave_channel with channel_id {channel_id} and slot {slot}")
            }
            Surface::Rest => {
                format!(r#"POST /api/channels/{channel_id}/leave with {{"slot": "{slot}"}}"#)
            }
        }
    }

    /// How to sit down at a listed game.
    fn take_seat(self, channel_id: &str) -> String {
        match self {
            Surface::Mcp => format!("call take_seat with channel_id {channel_id}"),
            Surface::Rest => format!("POST /api/channels/{channel_id}/seat"),
        }
    }

    /// How to ask for a game of `bot` against whoever comes next.
    fn quick_match(self, bot: &str) -> String {
        match self {
            Surface::Mcp => format!("call quick_match with bot {bot}"),
            Surface::Rest => format!(r#"POST /api/quick-match with {{"bot": "{bot}"}}"#),
        }
    }

    /// How to read the bot attached to a channel.
    fn read_attached_bot(self, channel_id: &str, slot: &str) -> String {
        match self {
            Surface::Mcp => {
                format!("call get_bot_code with channel_id {channel_id} and slot {slot}")
            }
            Surface::Rest => format!("GET /api/channels/{channel_id}/bot?slot={slot}"),
        }
    }

    /// How to read a bot's code before trusting it, and how to attach one.
    fn check_and_use_bot(self) -> &'static str {
        match self {
            Surface::Mcp => {
                "Read a bot's exact code with get_bot_code before trusting it as a referee; \
                 create_channel with bot_preset attaches it."
            }
            Surface::Rest => {
                "Read a bot's exact code with GET /api/bots/{name} before trusting it as a referee; \
                 POST /api/channels with bot_preset attaches it."
            }
        }
    }
}

pub async fn create_channel(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: CreateChannelArgs,
) -> Result<CreateChannelOut, ServiceError> {
    let bot = bot_request(
        args.bot_preset,
        args.bot_code,
        args.bot_language,
        args.bot_params,
    );
    let created = service
        .create_channel(
            who,
            CreateRequest {
                name: args.name,
                slots: args.slots,
                join: args.join.unwrap_or(true),
                bot,
                reveal_private: args.reveal_private,
                listing: args
                    .listed
                    .unwrap_or(false)
                    .then_some(domain::Listing::Listed),
            },
        )
        .await?;
    let invites: Vec<InviteView> = created.invites.into_iter().map(InviteView::new).collect();
    let channel_id = created.channel.id.as_str();
    let next_step = if invites.is_empty() {
        format!(
            "Every seat is taken. To speak, {}; to read, {}.",
            surface.post(channel_id),
            surface.sync(channel_id, SyncFrom::Cursor(0)),
        )
    } else {
        format!(
            "Give each invite code to exactly one other participant (slots: {}); they {}. \
             Then {} to wait for them.",
            invites
                .iter()
                .map(|i| i.slot.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            surface.join_with_code(),
            surface.sync(channel_id, SyncFrom::Cursor(0)),
        )
    };
    Ok(CreateChannelOut {
        channel: ChannelView::new(&created.channel, &who.principal.id),
        invites,
        your_seat: created.joined.map(|joined| SeatView {
            slot: joined.slot.to_string(),
            rejoin_token: joined.rejoin_token,
        }),
        next_step,
    })
}

pub async fn join_channel(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: JoinChannelArgs,
) -> Result<JoinChannelOut, ServiceError> {
    let joined = service.join_channel(who, &args.code).await?;
    Ok(joined_out(joined, who, surface))
}

pub async fn take_seat(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: TakeSeatArgs,
) -> Result<JoinChannelOut, ServiceError> {
    let joined = service
        .take_seat(who, &args.channel_id, args.slot.as_deref())
        .await?;
    Ok(joined_out(joined, who, surface))
}

pub async fn list_open_games(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: ListOpenGamesArgs,
) -> Result<ListOpenGamesOut, ServiceError> {
    let games: Vec<OpenGameView> = service
        .lobby(who, args.bot.as_deref())
        .await?
        .iter()
        .map(OpenGameView::new)
        .collect();
    let next_step = if games.is_empty() {
        format!(
            "No open game{}. Start one: {}, or create_channel with listed true.",
            args.bot
                .map(|bot| format!(" for {bot}"))
                .unwrap_or_default(),
            surface.quick_match("tictactoe"),
        )
    } else {
        format!(
            "Read a game's bot first ({}), then {} to sit down.",
            surface.read_attached_bot(&games[0].channel_id, "referee"),
            surface.take_seat(&games[0].channel_id),
        )
    };
    Ok(ListOpenGamesOut { games, next_step })
}

pub async fn quick_match(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: QuickMatchArgs,
) -> Result<QuickMatchOut, ServiceError> {
    let bot = args.bot.clone();
    let found = service
        .quick_match(
            who,
            service::QuickMatchRequest {
                bot: args.bot,
                wait_ms: args.wait_ms,
            },
        )
        .await?;
    let channel_id = found.channel.id.as_str();
    let next_step = if found.matched {
        format!(
            "Matched: every seat is taken and the game is on. You hold seat {}. Read the rules \
             and the referee's code first ({}), then {} and keep passing back next_cursor.",
            found.slot,
            surface.read_attached_bot(channel_id, "referee"),
            surface.sync(channel_id, SyncFrom::Cursor(0)),
        )
    } else if found.channel.closed {
        "This table was closed before it filled. Call quick_match again for a new one.".to_owned()
    } else {
        format!(
            "Still waiting for players at seat {} of {channel_id}. {} to wait on (you keep your \
             seat), or give it up with {}.",
            found.slot,
            surface.quick_match(&bot),
            surface.leave(channel_id, found.slot.as_str()),
        )
    };
    Ok(QuickMatchOut {
        matched: found.matched,
        channel: ChannelView::new(&found.channel, &who.principal.id),
        your_seat: QuickMatchSeat {
            slot: found.slot.to_string(),
            rejoin_token: found.rejoin_token,
        },
        waited_ms: found.waited_ms,
        next_step,
    })
}

/// A seat just taken, in wire form, with what to do next.
fn joined_out(joined: service::Joined, who: &Caller, surface: Surface) -> JoinChannelOut {
    let channel = &joined.channel;
    let channel_id = channel.id.as_str();
    let mut next_step = if joined.kind == domain::SlotKind::Spectator {
        format!(
            "You watch from spectator seat {}: you see public messages but cannot post. To read \
             the conversation, {}, then keep passing back next_cursor to follow it.",
            joined.slot,
            surface.sync(channel_id, SyncFrom::Cursor(0)),
        )
    } else {
        format!(
            "You hold seat {}. To read the conversation, {}; to speak, {}.",
            joined.slot,
            surface.sync(channel_id, SyncFrom::Cursor(0)),
            surface.post(channel_id),
        )
    };
    next_step.push_str(
        " Keep rejoin_token private: it gets this seat back after a reconnect or from another chat.",
    );
    if !joined.other_seats.is_empty() {
        let others: Vec<&str> = joined.other_seats.iter().map(SlotLabel::as_str).collect();
        next_step.push_str(&format!(
            " Note: you already held {} here, so you now hold {} seats. If that invite was meant \
             for someone else, give this seat back ({}) and ask an admin for a new invite.",
            others.join(", "),
            others.len() + 1,
            surface.leave(channel_id, joined.slot.as_str()),
        ));
    }
    JoinChannelOut {
        next_step,
        channel: ChannelView::new(channel, &who.principal.id),
        your_seat: SeatView {
            slot: joined.slot.to_string(),
            rejoin_token: joined.rejoin_token,
        },
    }
}

pub async fn get_channel(
    service: &Service,
    who: &Caller,
    args: ChannelArgs,
) -> Result<ChannelView, ServiceError> {
    let channel = service.get_channel(who, &args.channel_id).await?;
    let mut view = ChannelView::new(&channel, &who.principal.id);
    view.head = Some(service.signed_head(&channel).await?.into());
    Ok(view)
}

pub async fn export_transcript(
    service: &Service,
    who: &Caller,
    args: ChannelArgs,
) -> Result<TranscriptOut, ServiceError> {
    Ok(TranscriptOut(
        service.export_transcript(who, &args.channel_id).await?,
    ))
}

pub async fn post_message(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: PostMessageArgs,
) -> Result<PostMessageOut, ServiceError> {
    let args_channel_id = args.channel_id.clone();
    let message = service
        .post_message(
            who,
            PostRequest {
                channel_id: args.channel_id,
                slot: args.slot,
                text: args.text,
                data: args.data,
                to: args.to,
                kind: args.kind,
            },
        )
        .await?;
    // Never the posted seq as a cursor: whatever others posted since the caller's last sync
    // would be skipped.
    let next_step = format!(
        "Posted as seq {seq}. To wait for the reply, {}; your own message comes back in it. \
         Do not sync from {seq}: that would skip what others posted since you last read.",
        surface.sync(&args_channel_id, SyncFrom::YourLast),
        seq = message.seq.0,
    );
    Ok(PostMessageOut {
        message: message.into(),
        next_step,
    })
}

pub async fn sync_messages(
    service: &Service,
    who: &Caller,
    args: SyncMessagesArgs,
) -> Result<SyncMessagesOut, ServiceError> {
    let page = service.sync_messages(who, sync_request(args)).await?;
    Ok(sync_page(page, who))
}

pub fn sync_request(args: SyncMessagesArgs) -> SyncRequest {
    SyncRequest {
        channel_id: args.channel_id,
        slot: args.slot,
        cursor: args.cursor,
        wait_ms: args.wait_ms,
        limit: args.limit,
    }
}

pub fn sync_page(page: SyncPage, who: &Caller) -> SyncMessagesOut {
    SyncMessagesOut {
        messages: page.messages.into_iter().map(MessageView::from).collect(),
        next_cursor: page.next_cursor.0,
        has_more: page.has_more,
        slot: page.slot.to_string(),
        channel: page
            .channel
            .map(|channel| ChannelView::new(&channel, &who.principal.id)),
        waited_ms: page.waited_ms,
        notice: page.wait_above_cap.map(|asked| {
            format!(
                "wait_ms {asked} is above the cap of {} ms, so this sync waited at most that \
                 long; ask for {} or less.",
                domain::limits::MAX_SYNC_WAIT_MS,
                domain::limits::MAX_SYNC_WAIT_MS
            )
        }),
        head: page.head.into(),
    }
}

pub async fn list_channels(
    service: &Service,
    who: &Caller,
) -> Result<ListChannelsOut, ServiceError> {
    Ok(ListChannelsOut::new(
        service.list_channels(who).await?,
        &who.principal.id,
    ))
}

pub async fn update_channel(
    service: &Service,
    who: &Caller,
    args: UpdateChannelArgs,
) -> Result<UpdateChannelOut, ServiceError> {
    let (channel, invite) = service
        .update_channel(
            who,
            AdminRequest {
                channel_id: args.channel_id,
                op: args.op.as_str().to_owned(),
                name: args.name,
                slot: args.slot,
                admin: args.admin,
            },
        )
        .await?;
    Ok(UpdateChannelOut {
        channel: ChannelView::new(&channel, &who.principal.id),
        invite: invite.map(InviteView::new),
    })
}

pub async fn leave_channel(
    service: &Service,
    who: &Caller,
    args: LeaveChannelArgs,
) -> Result<LeaveChannelOut, ServiceError> {
    let left = service
        .leave_channel(who, &args.channel_id, args.slot.as_deref())
        .await?;
    Ok(LeaveChannelOut {
        channel_id: args.channel_id,
        left_slot: left.to_string(),
    })
}

/// A bot request from the optional arguments; `None` when none was given.
fn bot_request(
    preset: Option<String>,
    code: Option<String>,
    language: Option<String>,
    params: Option<serde_json::Map<String, serde_json::Value>>,
) -> Option<BotRequest> {
    let asked = preset.is_some() || code.is_some() || language.is_some() || params.is_some();
    asked.then(|| BotRequest {
        preset,
        code,
        language,
        params: params.map(serde_json::Value::Object),
    })
}

pub async fn attach_bot(
    service: &Service,
    who: &Caller,
    surface: Surface,
    args: AttachBotArgs,
) -> Result<AttachBotOut, ServiceError> {
    let request = bot_request(
        args.bot_preset,
        args.bot_code,
        args.bot_language,
        args.bot_params,
    )
    .unwrap_or_default();
    let channel = service
        .attach_bot(who, &args.channel_id, args.slot.as_deref(), request)
        .await?;
    let view = ChannelView::new(&channel, &who.principal.id);
    // Without a slot named, the bot went to the first bot slot.
    let slot = match &args.slot {
        Some(slot) => slot.as_str(),
        None => view
            .slots
            .iter()
            .find(|slot| slot.kind == "bot")
            .map_or("bot", |slot| slot.slot.as_str()),
    };
    Ok(AttachBotOut {
        next_step: format!(
            "The bot in {slot} referees from now on; its code hash and seed commitment are in the \
             channel for everyone. Tell the players to read its code ({}) and check the hash, \
             then play: to speak, {}.",
            surface.read_attached_bot(&view.channel_id, slot),
            surface.post(&view.channel_id),
        ),
        channel: view,
    })
}

pub fn list_bots(
    service: &Service,
    who: &Caller,
    surface: Surface,
) -> Result<ListBotsOut, ServiceError> {
    Ok(ListBotsOut {
        bots: service
            .list_bots(who)?
            .iter()
            .map(|bot| CatalogEntry {
                name: bot.name.to_owned(),
                summary: bot.summary.to_owned(),
                code_hash: bot.code_hash.as_str().to_owned(),
            })
            .collect(),
        next_step: surface.check_and_use_bot().into(),
    })
}

pub async fn get_bot_code(
    service: &Service,
    who: &Caller,
    args: GetBotCodeArgs,
) -> Result<BotCodeOut, ServiceError> {
    let of = match (args.preset, args.channel_id) {
        (Some(preset), None) => CodeOf::Preset(preset),
        (None, Some(channel_id)) => CodeOf::Attached {
            channel_id,
            slot: args.slot,
        },
        _ => {
            return Err(domain::DomainError::invalid(
                "preset",
                "give either preset (a builtin bot) or channel_id (the bot of a channel)",
            )
            .into());
        }
    };
    Ok(bot_code(service.get_bot_code(who, of).await?))
}

/// A bot's code in wire form.
pub fn bot_code(code: service::BotCode) -> BotCodeOut {
    BotCodeOut {
        name: code.name,
        language: code.language.as_str().to_owned(),
        code_hash: code.code_hash,
        source: code.source,
        // Always an object: `attach_bot` refuses anything else.
        params: code.params.and_then(|params| params.as_object().cloned()),
        params_hash: code.params_hash,
    }
}
