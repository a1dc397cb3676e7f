//! Why a rule refused: [`DomainError`], and the stable [`ErrorCode`] every surface shows.

use std::fmt;

/// The stable, machine-readable codes of the wire contract. Renaming one is a breaking change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    InvalidArgument,
    ChannelNotFound,
    ChannelClosed,
    NotMember,
    NotAdmin,
    SlotNotFound,
    SlotRequired,
    ReadOnlySeat,
    InviteInvalid,
    LimitExceeded,
    RateLimited,
    Unauthenticated,
    InsufficientScope,
    /// No route at this path (REST); not a channel or slot, which have their own codes.
    NotFound,
    /// The path exists but not with this HTTP method (REST).
    MethodNotAllowed,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "INVALID_ARGUMENT",
            ErrorCode::ChannelNotFound => "CHANNEL_NOT_FOUND",
            ErrorCode::ChannelClosed => "CHANNEL_CLOSED",
            ErrorCode::NotMember => "NOT_MEMBER",
            ErrorCode::NotAdmin => "NOT_ADMIN",
            ErrorCode::SlotNotFound => "SLOT_NOT_FOUND",
            ErrorCode::SlotRequired => "SLOT_REQUIRED",
            ErrorCode::ReadOnlySeat => "READ_ONLY_SEAT",
            ErrorCode::InviteInvalid => "INVITE_INVALID",
            ErrorCode::LimitExceeded => "LIMIT_EXCEEDED",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::InsufficientScope => "INSUFFICIENT_SCOPE",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::Internal => "INTERNAL",
        }
    }

    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::InvalidArgument,
        ErrorCode::ChannelNotFound,
        ErrorCode::ChannelClosed,
        ErrorCode::NotMember,
        ErrorCode::NotAdmin,
        ErrorCode::SlotNotFound,
        ErrorCode::SlotRequired,
        ErrorCode::ReadOnlySeat,
        ErrorCode::InviteInvalid,
        ErrorCode::LimitExceeded,
        ErrorCode::RateLimited,
        ErrorCode::Unauthenticated,
        ErrorCode::InsufficientScope,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Internal,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal by a channel rule. Each variant maps to exactly one [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// An argument has the wrong shape or size.
    #[error("invalid {field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// No channel has this id, or the caller may not know it exists.
    #[error("no channel with this id")]
    ChannelNotFound,
    /// The channel was closed by an admin: it can be read but not changed.
    #[error("the channel is closed")]
    ChannelClosed,
    /// The caller holds no seat in the channel (or not the seat it named).
    #[error("you hold no seat in this channel")]
    NotMember,
    /// The operation needs an admin of the channel.
    #[error("only a channel admin may do this")]
    NotAdmin,
    /// The channel has no slot with this label.
    #[error("the channel has no slot {slot:?}")]
    SlotNotFound { slot: String },
    /// The caller holds several seats in the channel and must say which one acts.
    #[error("you hold several seats in this channel ({}); say which one with `slot`", .held.join(", "))]
    SlotRequired { held: Vec<String> },
    /// Spectator seats read but never post.
    #[error("spectator seats are read-only")]
    ReadOnlySeat,
    /// The invite code or rejoin token is unknown, already used, or revoked.
    #[error("this invite code or rejoin token is not valid")]
    InviteInvalid,
    /// A size or count cap was reached.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded { what: &'static str, limit: usize },
}

impl DomainError {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        DomainError::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            DomainError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            DomainError::ChannelNotFound => ErrorCode::ChannelNotFound,
            DomainError::ChannelClosed => ErrorCode::ChannelClosed,
            DomainError::NotMember => ErrorCode::NotMember,
            DomainError::NotAdmin => ErrorCode::NotAdmin,
            DomainError::SlotNotFound { .. } => ErrorCode::SlotNotFound,
            DomainError::SlotRequired { .. } => ErrorCode::SlotRequired,
            DomainError::ReadOnlySeat => ErrorCode::ReadOnlySeat,
            DomainError::InviteInvalid => ErrorCode::InviteInvalid,
            DomainError::LimitExceeded { .. } => ErrorCode::LimitExceeded,
        }
    }

    /// What the caller can do about it, phrased for an assistant choosing its next tool call.
    pub fn hint(&self) -> String {
        match self {
            DomainError::InvalidArgument { .. } => {
                "Fix the argument named in the message and call again.".into()
            }
            DomainError::ChannelNotFound => {
                "Check the channel_id (it looks like ch_ followed by 24 hex digits); list_channels shows yours.".into()
            }
            DomainError::ChannelClosed => {
                "The channel is read-only now; create_channel starts a new one.".into()
            }
            DomainError::NotMember => {
                "Use join_channel with an invite code, or with your rejoin token if you held a seat before.".into()
            }
            DomainError::NotAdmin => "Ask an admin of the channel (get_channel shows them).".into(),
            DomainError::SlotNotFound { .. } => {
                "get_channel lists the channel's slots and their labels.".into()
            }
            DomainError::SlotRequired { held } => {
                format!("Call again with slot set to one of: {}.", held.join(", "))
            }
            DomainError::ReadOnlySeat => {
                "Spectators can only read; ask an admin for an invite to a player slot.".into()
            }
            DomainError::InviteInvalid => {
                "Invite codes work once; ask the channel admin for a fresh one (update_channel with op reissue_invite), or use your rejoin token.".into()
            }
            DomainError::LimitExceeded { .. } => {
                "Make the input smaller, or close channels you no longer need.".into()
            }
        }
    }
}
