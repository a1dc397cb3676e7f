//! The JSON shapes of the wire contract, shared by the MCP tools and the REST API.
//!
//! Domain types are not `Serialize`: every field that leaves the server is chosen here, by hand,
//! so a refactoring inside cannot change what clients see. Internal principal ids and stored
//! secret hashes never appear in these types.

use domain::{Channel, Message, PrincipalId, SlotLabel};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use service::ChannelListing;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One slot of a channel as its members see it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SlotView {
    /// The slot's label, used as `slot`, `to` and `from_slot` everywhere.
    pub slot: String,
    /// `invite` (a player seat), `spectator` (read-only seat) or `bot` (a referee's place).
    pub kind: &'static str,
    /// Whether someone holds this seat, or, for a bot slot, whether a bot is attached.
    pub filled: bool,
    /// The holder's display name, when filled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// How to refer to the holder, when filled: the display name, or, when another holder in
    /// this channel has the same name (ignoring case), the name and the seat, such as
    /// `alice (invite:p2)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    /// Whether this seat administers the channel.
    pub admin: bool,
    /// Whether you hold this seat.
    pub yours: bool,
    /// The bot in a bot slot: read its code with get_bot_code and check the hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<BotView>,
}

/// An attached bot, as every member sees it.
#[derive(Debug, Serialize, JsonSchema)]
pub struct BotView {
    pub name: String,
    /// `javascript` or `python`.
    pub language: String,
    /// `sha256:` + hex of the exact source bytes get_bot_code returns.
    pub code_hash: String,
    /// `sha256:` + hex of the RFC 8785 canonical JSON of the parameters; get_bot_code shows
    /// the parameters themselves.
    pub params_hash: String,
    /// Commitment to the bot's secret seed; the seed is revealed when its run ends, when it is
    /// replaced, or when the channel closes.
    pub seed_commitment: String,
    /// True after repeated failures; an admin re-enables it with attach_bot.
    pub disabled: bool,
    /// True once the bot ended its run (game over): its seed is revealed, it hears nothing more.
    pub ended: bool,
}

/// A channel's set-up, from the caller's point of view.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ChannelView {
    pub channel_id: String,
    pub name: String,
    /// Closed channels can be read but not changed.
    pub closed: bool,
    /// The newest message's seq.
    pub last_seq: i64,
    /// Whether you may use update_channel here.
    pub you_are_admin: bool,
    /// The seats you hold (usually one).
    pub your_slots: Vec<String>,
    pub slots: Vec<SlotView>,
    /// Whether private messages to a bot become readable by everyone once the bot's run ends,
    /// so a finished game can be audited in full (export_transcript).
    pub reveal_private: bool,
    /// The server's signature on the channel's head: keep it as proof of the history you were
    /// shown (docs/transcript.md). Present in get_channel answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<HeadView>,
}

/// The server's signed statement "channel C had `seq` messages ending in hash `head` at `at`".
/// Verify it with the keys at /.well-known/mcp-multiplayer-keys; two that disagree at one seq
/// prove the server rewrote history.
#[derive(Debug, Serialize, JsonSchema)]
pub struct HeadView {
    pub channel: String,
    pub seq: i64,
    /// The chain hash of message `seq`: `sha256:` + hex.
    pub head: String,
    /// When the server signed, in milliseconds since the Unix epoch.
    pub at: i64,
    /// The signing key's id, among the published keys.
    pub key_id: String,
    /// Ed25519 over "mcp-multiplayer signed head v1\n" + the RFC 8785 JSON of
    /// {channel, seq, head, at}; base64url without padding.
    pub signature: String,
}

impl From<transcript::SignedHead> for HeadView {
    fn from(head: transcript::SignedHead) -> Self {
        HeadView {
            channel: head.channel.to_string(),
            seq: head.seq.0,
            head: head.head,
            at: head.at.0,
            key_id: head.key_id.as_str().to_owned(),
            signature: head.signature,
        }
    }
}

/// An exported transcript, exactly as docs/transcript.md specifies it.
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct TranscriptOut(pub transcript::export::Transcript);

impl JsonSchema for TranscriptOut {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Transcript".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        // By hand: the export's types are the transcript crate's, specified by the document,
        // and a verifier reads the JSON, not this schema. Top level only.
        schemars::json_schema!({
            "type": "object",
            "description": "A channel's transcript as you may see it (format mcp-multiplayer-transcript, version 1): every message you may read, the digest of every other, each bot's source, params and revealed seed, the signed head and the server's public keys. Specified in docs/transcript.md; check it offline with `mcp-multiplayer verify FILE`.",
            "properties": {
                "format": {"type": "string", "description": "mcp-multiplayer-transcript"},
                "version": {"type": "integer"},
                "exported_at": {"type": "integer", "description": "Milliseconds since the Unix epoch."},
                "channel": {"type": "object", "description": "id, name, slots, closed, faithful_from, reveal_private"},
                "viewer": {"type": "object", "description": "{\"slots\": [...]} for a participant"},
                "messages": {"type": "array", "items": {"type": "object"}, "description": "Every seq from 1 to the head: whole, or {seq, withheld, digest, hash}."},
                "bots": {"type": "array", "items": {"type": "object"}},
                "head": {"type": "object", "description": "The signed head: channel, seq, head, at, key_id, signature."},
                "keys": {"type": "array", "items": {"type": "object"}}
            },
            "required": ["format", "version", "exported_at", "channel", "viewer", "messages", "bots", "head", "keys"]
        })
    }
}

impl ChannelView {
    pub fn new(channel: &Channel, viewer: &PrincipalId) -> Self {
        Self {
            channel_id: channel.id.to_string(),
            name: channel.name.clone(),
            closed: channel.closed,
            last_seq: channel.last_seq.0,
            you_are_admin: channel.is_admin(viewer),
            your_slots: channel
                .seats_of(viewer)
                .map(|slot| slot.label.to_string())
                .collect(),
            slots: channel
                .slots
                .iter()
                .map(|slot| SlotView {
                    slot: slot.label.to_string(),
                    kind: slot.kind.as_str(),
                    filled: slot.seat.is_some() || slot.bot.is_some(),
                    holder: slot.seat.as_ref().map(|seat| seat.holder_name.clone()),
                    display: channel.holder_display(slot),
                    admin: slot.admin,
                    yours: slot.held_by(viewer),
                    bot: slot.bot.as_ref().map(|card| BotView {
                        name: card.name.clone(),
                        language: card.language.clone(),
                        code_hash: card.code_hash.clone(),
                        params_hash: card.params_hash.clone(),
                        seed_commitment: card.seed_commitment.clone(),
                        disabled: card.disabled,
                        ended: card.ended,
                    }),
                })
                .collect(),
            reveal_private: channel.reveal_private,
            head: None,
        }
    }
}

/// A message as delivered.
#[derive(Debug, Serialize, JsonSchema)]
pub struct MessageView {
    /// Position in the channel: 1, 2, 3…
    pub seq: i64,
    /// `user` (a participant), `bot` (a referee) or `system` (the server).
    pub kind: &'static str,
    /// The sender's slot; absent for system messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_slot: Option<String>,
    pub from_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Map<String, Value>>,
    /// The recipient's slot, for a private message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// A private message's random nonce, part of what its hash covers: with it, you can
    /// recompute the hash (docs/transcript.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// RFC 3339 time the server accepted it.
    pub at: String,
    /// This message's link of the channel's hash chain: `sha256:` + hex over the previous
    /// link and this message (docs/transcript.md).
    pub hash: String,
}

impl From<Message> for MessageView {
    fn from(message: Message) -> Self {
        Self {
            seq: message.seq.0,
            kind: message.kind.as_str(),
            from_slot: message.sender.map(|slot| slot.to_string()),
            from_name: message.sender_name,
            text: message.body.text,
            data: message.body.data,
            to: message.to.map(|slot| slot.to_string()),
            nonce: message.nonce,
            at: rfc3339(message.at.0),
            hash: message.hash.into(),
        }
    }
}

/// The server's public signing keys, as served at `/.well-known/mcp-multiplayer-keys`.
#[derive(Debug, Serialize)]
pub struct KeysView {
    /// Every key that ever signed a head, active and retired, in the order they were made.
    pub keys: Vec<KeyView>,
    /// The id of the key that signs now.
    pub active: String,
}

/// One public signing key.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// What a signed head's `key_id` names: `ed25519:` and 16 hex digits.
    pub id: String,
    /// Always `Ed25519`.
    pub algorithm: &'static str,
    /// The 32-byte public key, base64url without padding.
    pub public: String,
    /// RFC 3339 time the key was made.
    pub created_at: String,
    /// RFC 3339 time it stopped signing; `null` for the active key.
    pub retired_at: Option<String>,
}

impl From<service::PublishedKeys> for KeysView {
    fn from(published: service::PublishedKeys) -> Self {
        Self {
            keys: published
                .keys
                .into_iter()
                .map(|key| KeyView {
                    id: key.id.to_string(),
                    algorithm: service::keys::ALGORITHM,
                    public: key.public,
                    created_at: rfc3339(key.created_at.0),
                    retired_at: key.retired_at.map(|at| rfc3339(at.0)),
                })
                .collect(),
            active: published.active.to_string(),
        }
    }
}

fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// An invite code for one open seat.
#[derive(Debug, Serialize, JsonSchema)]
pub struct InviteView {
    pub slot: String,
    /// Single use. Give it to exactly one person; they pass it to join_channel.
    pub code: String,
}

impl InviteView {
    pub fn new((slot, code): (SlotLabel, String)) -> Self {
        Self {
            slot: slot.to_string(),
            code,
        }
    }
}

/// A seat you hold and the secret to get it back.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SeatView {
    pub slot: String,
    /// Keep this secret. Passing it to join_channel moves this seat to whoever presents it,
    /// e.g. you after a reconnect or from another chat.
    pub rejoin_token: String,
}

// ---- Requests ----

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateChannelArgs {
    /// A short human-readable name.
    pub name: String,
    /// The channel's slots, e.g. ["invite:alice", "invite:bob"]. Kinds: `invite:<label>` (a
    /// player seat, one single-use invite code each), `spectator:<label>` (read-only seat),
    /// `bot:<label>` (reserved for a referee bot). Labels: a-z, 0-9, '-', '_'.
    pub slots: Vec<String>,
    /// Take the first invite slot yourself (default true). False only sets the channel up.
    #[serde(default)]
    pub join: Option<bool>,
    /// Whether private messages to a bot (moves, bids) become readable by every participant
    /// once the bot's run ends, so a finished game can be audited in full (default true).
    #[serde(default)]
    pub reveal_private: Option<bool>,
    /// List the channel in the public lobby (default false): anyone may then take an open
    /// player seat with take_seat, without an invite code, until the seats are full.
    #[serde(default)]
    pub listed: Option<bool>,
    /// A builtin referee bot to attach (see list_bots), e.g. "guess". A `bot:referee` slot is
    /// added when `slots` has no bot slot.
    #[serde(default)]
    pub bot_preset: Option<String>,
    /// Or the source of your own bot, in JavaScript or Python (see the bot-api resource).
    #[serde(default)]
    pub bot_code: Option<String>,
    /// The language of bot_code: "javascript" or "python"; inferred from the code when absent.
    #[serde(default)]
    pub bot_language: Option<String>,
    /// The bot's parameters, e.g. {"min": 1, "max": 100} for guess.
    #[serde(default)]
    pub bot_params: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachBotArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
    /// The bot slot to use; default: the first bot slot.
    #[serde(default)]
    pub slot: Option<String>,
    /// A builtin bot (see list_bots).
    #[serde(default)]
    pub bot_preset: Option<String>,
    /// Or inline source, in JavaScript or Python.
    #[serde(default)]
    pub bot_code: Option<String>,
    /// The language of bot_code: "javascript" or "python"; inferred from the code when absent.
    #[serde(default)]
    pub bot_language: Option<String>,
    /// The bot's parameters.
    #[serde(default)]
    pub bot_params: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct GetBotCodeArgs {
    /// A builtin bot's name (see list_bots)…
    #[serde(default)]
    pub preset: Option<String>,
    /// …or a channel whose bot you want to read.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// With channel_id: the bot's slot; default: the first bot slot.
    #[serde(default)]
    pub slot: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BotCodeOut {
    pub name: String,
    /// `javascript` or `python`.
    pub language: String,
    /// `sha256:` + hex of `source`'s exact UTF-8 bytes.
    pub code_hash: String,
    pub source: String,
    /// For a bot attached to a channel: the parameters it was attached with, in the open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// `sha256:` + hex of the RFC 8785 canonical JSON of `params`, as the attach notice and
    /// the channel's bot card show it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params_hash: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CatalogEntry {
    /// Use as bot_preset.
    pub name: String,
    pub summary: String,
    pub code_hash: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AttachBotOut {
    pub channel: ChannelView,
    /// What to do next.
    pub next_step: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListBotsOut {
    pub bots: Vec<CatalogEntry>,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CreateChannelOut {
    pub channel: ChannelView,
    /// Invite codes for the open seats, shown only now.
    pub invites: Vec<InviteView>,
    /// Your own seat, unless you passed join=false.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub your_seat: Option<SeatView>,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinChannelArgs {
    /// An invite code (inv_…) or a rejoin token (rejoin_…).
    pub code: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct JoinChannelOut {
    pub channel: ChannelView,
    pub your_seat: SeatView,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ListOpenGamesArgs {
    /// Only games refereed by this bot, e.g. "tictactoe" (see list_bots).
    #[serde(default)]
    pub bot: Option<String>,
}

/// A channel in the public lobby.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OpenGameView {
    pub channel_id: String,
    pub name: String,
    /// `listed` (its creator listed it) or `quick_match` (a quick-match table).
    pub listing: &'static str,
    /// The referee, if the channel has one: its name and the hash of its code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot: Option<OpenGameBot>,
    /// The player seats nobody holds: take one with take_seat.
    pub open_seats: Vec<String>,
    /// Who sits there already.
    pub players: Vec<String>,
    /// RFC 3339 time the channel was created.
    pub created_at: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct OpenGameBot {
    pub name: String,
    pub code_hash: String,
}

impl OpenGameView {
    pub fn new(channel: &Channel) -> Self {
        let bot = channel
            .slots
            .iter()
            .find_map(|slot| slot.bot.as_ref())
            .map(|card| OpenGameBot {
                name: card.name.clone(),
                code_hash: card.code_hash.clone(),
            });
        Self {
            channel_id: channel.id.to_string(),
            name: channel.name.clone(),
            listing: channel.listing.map_or("listed", domain::Listing::as_str),
            bot,
            open_seats: channel
                .open_invite_seats()
                .map(|slot| slot.label.to_string())
                .collect(),
            players: channel
                .slots
                .iter()
                .filter_map(|slot| channel.holder_display(slot))
                .collect(),
            created_at: rfc3339(channel.created_at.0),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListOpenGamesOut {
    pub games: Vec<OpenGameView>,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeSeatArgs {
    /// The listed channel's id (ch_…), from list_open_games.
    pub channel_id: String,
    /// The open seat to take; any open player seat when absent.
    #[serde(default)]
    pub slot: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuickMatchArgs {
    /// The game's bot: tictactoe, rps, chess, guess or blackjack.
    pub bot: String,
    /// How long to wait for the other players, in ms (default 25000, at most 45000). When it
    /// runs out you keep your seat: call quick_match again to wait on.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// Your seat at a quick-match table.
#[derive(Debug, Serialize, JsonSchema)]
pub struct QuickMatchSeat {
    pub slot: String,
    /// Keep this secret (see join_channel). Shown only by the call that took the seat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejoin_token: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct QuickMatchOut {
    /// Every player seat is taken and the game is on; false when the wait ran out first.
    pub matched: bool,
    pub channel: ChannelView,
    pub your_seat: QuickMatchSeat,
    pub waited_ms: u64,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PostMessageArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
    /// The message text.
    #[serde(default)]
    pub text: Option<String>,
    /// A JSON object, e.g. a structured game move.
    #[serde(default)]
    pub data: Option<Map<String, Value>>,
    /// Make the message private to this slot (only you, that slot and bots see it).
    #[serde(default)]
    pub to: Option<String>,
    /// Which of your seats speaks; needed only if you hold several in this channel.
    #[serde(default)]
    pub slot: Option<String>,
    /// Accepted from the prototype's clients, and only as "user": bot and system messages
    /// come from the server. Not in the schema, since there is nothing to choose.
    #[serde(default)]
    #[schemars(skip)]
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PostMessageOut {
    pub message: MessageView,
    pub next_step: String,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct SyncMessagesArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
    /// The next_cursor of your previous sync; 0 (default) for the whole history.
    #[serde(default)]
    pub cursor: Option<i64>,
    /// How long to wait for a new message when there is none, in ms (default 25000, max 45000;
    /// 0 returns at once).
    #[serde(default)]
    #[schemars(range(max = domain::limits::MAX_SYNC_WAIT_MS))]
    pub wait_ms: Option<u64>,
    /// Which of your seats reads; needed only if you hold several in this channel.
    #[serde(default)]
    pub slot: Option<String>,
    /// Most messages to return (default 100, max 200). A page also stops once its message
    /// bodies reach 256 KiB; has_more then says to sync again from next_cursor.
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SyncMessagesOut {
    pub messages: Vec<MessageView>,
    /// Pass this as cursor in your next sync.
    pub next_cursor: i64,
    /// More messages are waiting: sync again at once.
    pub has_more: bool,
    /// The seat these messages were read for.
    pub slot: String,
    /// The channel's set-up, present on a first sync and whenever membership or settings changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<ChannelView>,
    pub waited_ms: u64,
    /// Something the caller should know about its request, e.g. a wait_ms above the cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
    /// The server's signature on the channel's head as of this answer: keep it as proof of
    /// the history you were shown.
    pub head: HeadView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SeatListing {
    pub slot: String,
    /// Messages this seat has not synced past yet (its own excluded).
    pub unread: u64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ChannelListingView {
    pub channel_id: String,
    pub name: String,
    pub closed: bool,
    pub last_seq: i64,
    pub you_are_admin: bool,
    pub seats: Vec<SeatListing>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ListChannelsOut {
    pub channels: Vec<ChannelListingView>,
}

impl ListChannelsOut {
    pub fn new(listings: Vec<ChannelListing>, viewer: &PrincipalId) -> Self {
        Self {
            channels: listings
                .into_iter()
                .map(|listing| ChannelListingView {
                    channel_id: listing.channel.id.to_string(),
                    name: listing.channel.name.clone(),
                    closed: listing.channel.closed,
                    last_seq: listing.channel.last_seq.0,
                    you_are_admin: listing.channel.is_admin(viewer),
                    seats: listing
                        .seats
                        .into_iter()
                        .map(|seat| SeatListing {
                            slot: seat.slot.to_string(),
                            unread: seat.unread,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateChannelArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
    /// What to do; each operation says which other fields it reads.
    pub op: AdminOpName,
    /// With rename: the new name.
    #[serde(default)]
    pub name: Option<String>,
    /// With set_admin, yield_slot, kick and reissue_invite: the seat to act on.
    #[serde(default)]
    pub slot: Option<String>,
    /// With set_admin: true (default) makes the seat an admin, false takes it back.
    #[serde(default)]
    pub admin: Option<bool>,
}

/// The admin operations of update_channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AdminOpName {
    /// Rename the channel; needs `name`.
    Rename,
    /// Make a seat an admin, or not with `admin: false`; needs `slot`.
    SetAdmin,
    /// Empty a seat and get a fresh invite code for it; needs `slot`.
    YieldSlot,
    /// Remove a seat's holder; needs `slot`. Reissue an invite to fill it again.
    Kick,
    /// A new invite code for an empty seat; the old code stops working. Needs `slot`.
    ReissueInvite,
    /// Make the channel read-only for good; its bots' seeds are revealed.
    Close,
}

impl AdminOpName {
    pub const ALL: [AdminOpName; 6] = [
        AdminOpName::Rename,
        AdminOpName::SetAdmin,
        AdminOpName::YieldSlot,
        AdminOpName::Kick,
        AdminOpName::ReissueInvite,
        AdminOpName::Close,
    ];

    /// The operation `name` names, as `as_str` writes it.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|op| op.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AdminOpName::Rename => "rename",
            AdminOpName::SetAdmin => "set_admin",
            AdminOpName::YieldSlot => "yield_slot",
            AdminOpName::Kick => "kick",
            AdminOpName::ReissueInvite => "reissue_invite",
            AdminOpName::Close => "close",
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct UpdateChannelOut {
    pub channel: ChannelView,
    /// A fresh invite code, for yield_slot and reissue_invite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invite: Option<InviteView>,
}

#[derive(Debug, Deserialize, JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct LeaveChannelArgs {
    /// The channel's id (ch_…).
    pub channel_id: String,
    /// Which of your seats to give up; needed only if you hold several.
    #[serde(default)]
    pub slot: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LeaveChannelOut {
    pub channel_id: String,
    pub left_slot: String,
}

/// Every REST refusal: `{"error": {code, message, hint}}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

/// The error body of both surfaces.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. NOT_MEMBER.
    pub code: &'static str,
    pub message: String,
    /// What to do next.
    pub hint: String,
}

impl ErrorBody {
    /// A request the server failed to answer through a fault of its own (a handler panicked).
    pub fn server_fault() -> Self {
        Self {
            code: domain::ErrorCode::Internal.as_str(),
            message: "the server failed while answering this request".into(),
            hint: "This is a fault in the server and it was logged; try again, and report it if it persists.".into(),
        }
    }
}

impl From<&service::ServiceError> for ErrorBody {
    fn from(error: &service::ServiceError) -> Self {
        Self {
            code: error.code().as_str(),
            message: error.to_string(),
            hint: error.hint(),
        }
    }
}
