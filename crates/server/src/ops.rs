//! The tools' behaviour in wire types: argument conversion in, view building out.
//!
//! Both the MCP tools and the REST API call these, so the two surfaces cannot drift apart.
//! Each function is a thin mapping; the decisions are in `service` and `domain`.

use service::{
    AdminRequest, BotRequest, Caller, CodeOf, PostRequest, Service, ServiceError, SyncPage,
    SyncRequest,
};

use crate::wire::*;

pub async fn create_channel(
    service: &Service,
    who: &Caller,
    args: CreateChannelArgs,
) -> Result<CreateChannelOut, ServiceError> {
    let bot = bot_request(args.bot_preset, args.bot_code, args.bot_params);
    let created = service
        .create_channel(who, &args.name, &args.slots, args.join.unwrap_or(true), bot)
        .await?;
    let invites: Vec<InviteView> = created.invites.into_iter().map(InviteView::new).collect();
    let next_step = if invites.is_empty() {
        "Every seat is taken. Call post_message to speak and sync_messages to read.".to_owned()
    } else {
        format!(
            "Give each invite code to exactly one other participant (slots: {}); they call join_channel with it. \
             Then call sync_messages with channel_id {} and wait_ms 25000 to wait for them.",
            invites
                .iter()
                .map(|i| i.slot.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            created.channel.id,
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
    args: JoinChannelArgs,
) -> Result<JoinChannelOut, ServiceError> {
    let joined = service.join_channel(who, &args.code).await?;
    let channel = &joined.channel;
    let spectator = channel
        .slots
        .iter()
        .any(|slot| slot.label == joined.slot && slot.kind == domain::SlotKind::Spectator);
    let mut next_step = if spectator {
        format!(
            "You watch from spectator seat {}: you see public messages but cannot post. Call \
             sync_messages with channel_id {} and cursor 0 to read the conversation, then pass \
             back next_cursor with wait_ms 25000 to follow it.",
            joined.slot, channel.id
        )
    } else {
        format!(
            "You hold seat {}. Call sync_messages with channel_id {} and cursor 0 to read the \
             conversation, then post_message to speak.",
            joined.slot, channel.id
        )
    };
    next_step.push_str(
        " Keep rejoin_token private: it gets this seat back after a reconnect or from another chat.",
    );
    let seats: Vec<String> = channel
        .seats_of(&who.principal.id)
        .map(|slot| slot.label.to_string())
        .collect();
    let took_an_invite = matches!(
        domain::secret::classify(&args.code),
        Some(domain::secret::Redeemable::Invite(_))
    );
    if seats.len() > 1 && took_an_invite {
        next_step.push_str(&format!(
            " Note: you now hold {} seats here ({}). If that invite was meant for someone else, \
             give the seat back with leave_channel (slot {}) and ask an admin for a new invite.",
            seats.len(),
            seats.join(", "),
            joined.slot
        ));
    }
    Ok(JoinChannelOut {
        next_step,
        channel: ChannelView::new(channel, &who.principal.id),
        your_seat: SeatView {
            slot: joined.slot.to_string(),
            rejoin_token: joined.rejoin_token,
        },
    })
}

pub async fn get_channel(
    service: &Service,
    who: &Caller,
    args: ChannelArgs,
) -> Result<ChannelView, ServiceError> {
    let channel = service.get_channel(who, &args.channel_id).await?;
    Ok(ChannelView::new(&channel, &who.principal.id))
}

pub async fn post_message(
    service: &Service,
    who: &Caller,
    args: PostMessageArgs,
) -> Result<PostMessageOut, ServiceError> {
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
    let seq = message.seq.0;
    Ok(PostMessageOut {
        message: message.into(),
        // Never point at this message's seq as a cursor: whatever others posted since the
        // caller last read would be skipped.
        next_step: format!(
            "Posted as seq {seq}. To wait for the reply, call sync_messages with the next_cursor \
             of your last sync_messages call (0 if you have not read this channel yet) and \
             wait_ms 25000; your own message comes back in it. Do not use {seq} as the cursor: \
             you would skip what others posted since you last read."
        ),
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
    params: Option<serde_json::Map<String, serde_json::Value>>,
) -> Option<BotRequest> {
    (preset.is_some() || code.is_some() || params.is_some()).then(|| BotRequest {
        preset,
        code,
        params: params.map(serde_json::Value::Object),
    })
}

pub async fn attach_bot(
    service: &Service,
    who: &Caller,
    args: AttachBotArgs,
) -> Result<AttachBotOut, ServiceError> {
    let request = bot_request(args.bot_preset, args.bot_code, args.bot_params).unwrap_or_default();
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
             channel for everyone. Tell the players to read it with get_bot_code (channel_id {}, \
             slot {slot}) and check the hash, then play with post_message and sync_messages.",
            view.channel_id
        ),
        channel: view,
    })
}

pub fn list_bots(service: &Service, who: &Caller) -> Result<ListBotsOut, ServiceError> {
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
        next_step: "Read a bot's exact code with get_bot_code before trusting it as a referee; \
                    create_channel with bot_preset attaches it."
            .into(),
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
    let code = service.get_bot_code(who, of).await?;
    Ok(BotCodeOut {
        name: code.name,
        code_hash: code.code_hash,
        source: code.source,
    })
}
