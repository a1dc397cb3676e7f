//! Every cap the server enforces, in one place, so the README and the errors agree.

/// Longest channel name, in characters.
pub const MAX_CHANNEL_NAME_CHARS: usize = 100;
/// Longest slot label, in bytes (labels are ASCII).
pub const MAX_SLOT_LABEL_CHARS: usize = 32;
/// Most slots in one channel, bots and spectators included.
pub const MAX_SLOTS_PER_CHANNEL: usize = 32;
/// Most bot slots in one channel unless the operator sets another cap (`--max-bot-slots`).
pub const DEFAULT_MAX_BOT_SLOTS: usize = 4;
/// Most open channels one principal may own at a time.
pub const MAX_OPEN_CHANNELS_PER_OWNER: usize = 100;
/// Longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Largest message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Largest message data object, in bytes of its compact JSON encoding.
pub const MAX_DATA_BYTES: usize = 16 * 1024;
/// Deepest nesting accepted in a message data object.
pub const MAX_DATA_DEPTH: usize = 32;
/// Most messages returned by one sync.
pub const MAX_SYNC_PAGE: usize = 200;
/// Bytes of message bodies (text and data, as JSON) past which a sync page takes no more
/// messages. A page always holds at least one message, so it is at most this or one message.
pub const MAX_SYNC_PAGE_BYTES: usize = 256 * 1024;
/// Messages returned by one sync when the caller does not say.
pub const DEFAULT_SYNC_PAGE: usize = 100;
/// How long a sync waits when the caller does not say, in milliseconds.
pub const DEFAULT_SYNC_WAIT_MS: u64 = 25_000;
/// The longest a sync may wait, kept below the ~60 s after which clients drop a tool call.
pub const MAX_SYNC_WAIT_MS: u64 = 45_000;

/// How long a sync asked to wait `requested` ms will wait at most.
pub fn sync_wait(requested: Option<u64>) -> std::time::Duration {
    std::time::Duration::from_millis(
        requested
            .unwrap_or(DEFAULT_SYNC_WAIT_MS)
            .min(MAX_SYNC_WAIT_MS),
    )
}

/// Most messages a participant's transcript export holds (`export_transcript`): an export is
/// built whole in memory. The operator's `export` command has no such cap.
pub const MAX_EXPORT_MESSAGES: usize = 5_000;
/// Most bytes of message text and data a participant's export holds.
pub const MAX_EXPORT_BYTES: usize = 8 * 1024 * 1024;
