-- Channels, their slots and their messages.
-- Secrets (invite codes, rejoin tokens) are stored only as SHA-256 hex.

CREATE TABLE channels (
    id          TEXT    PRIMARY KEY,
    name        TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    -- The last seq is not stored: it is MAX(seq) of the channel's messages, so that posting
    -- is a single INSERT.
    closed      INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE INDEX channels_by_owner ON channels (owner, closed);

CREATE TABLE slots (
    channel_id   TEXT    NOT NULL REFERENCES channels (id),
    position     INTEGER NOT NULL,
    label        TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('bot', 'invite', 'spectator')),
    admin        INTEGER NOT NULL DEFAULT 0,
    holder       TEXT,
    holder_name  TEXT,
    rejoin_hash  TEXT,
    joined_at    INTEGER,
    -- The channel's last seq when the holder took the seat with an invite: private messages
    -- up to it belong to earlier holders of the slot.
    since_seq    INTEGER NOT NULL DEFAULT 0,
    invite_hash  TEXT,
    -- The newest seq the holder has synced past; drives unread counts.
    read_seq     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, position),
    UNIQUE (channel_id, label)
) STRICT;

CREATE UNIQUE INDEX slots_by_invite ON slots (invite_hash) WHERE invite_hash IS NOT NULL;
CREATE UNIQUE INDEX slots_by_rejoin ON slots (rejoin_hash) WHERE rejoin_hash IS NOT NULL;
CREATE INDEX slots_by_holder ON slots (holder) WHERE holder IS NOT NULL;

CREATE TABLE messages (
    channel_id   TEXT    NOT NULL REFERENCES channels (id),
    seq          INTEGER NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('user', 'bot', 'system')),
    sender       TEXT,
    sender_name  TEXT    NOT NULL,
    body_text    TEXT,
    body_data    TEXT,
    recipient    TEXT,
    at           INTEGER NOT NULL,
    PRIMARY KEY (channel_id, seq)
) STRICT, WITHOUT ROWID;
