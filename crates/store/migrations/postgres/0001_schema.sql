-- The schema that SQLite reaches through its migrations 0001 to 0009, in one step, plus the
-- leases that let several instances share the bot work (one SQLite process needs none).
-- What each column means is said in the SQLite migrations; what differs is said here.
--
-- Integers that hold seqs and times (ms since the epoch) are BIGINT; flags are BOOLEAN.
-- Message bodies stay TEXT, not JSONB: the transcript hashes the stored JSON text, and JSONB
-- would reorder its keys.

CREATE TABLE channels (
    id              TEXT    PRIMARY KEY,
    name            TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    closed          BOOLEAN NOT NULL DEFAULT FALSE,
    faithful_from   BIGINT  NOT NULL DEFAULT 0,
    reveal_private  BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE INDEX channels_by_owner ON channels (owner, closed);

CREATE TABLE slots (
    channel_id   TEXT    NOT NULL REFERENCES channels (id),
    position     BIGINT  NOT NULL,
    label        TEXT    NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('bot', 'invite', 'spectator')),
    admin        BOOLEAN NOT NULL DEFAULT FALSE,
    holder       TEXT,
    holder_name  TEXT,
    rejoin_hash  TEXT,
    joined_at    BIGINT,
    since_seq    BIGINT  NOT NULL DEFAULT 0,
    invite_hash  TEXT,
    read_seq     BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, position),
    UNIQUE (channel_id, label)
);

CREATE UNIQUE INDEX slots_by_invite ON slots (invite_hash) WHERE invite_hash IS NOT NULL;
CREATE UNIQUE INDEX slots_by_rejoin ON slots (rejoin_hash) WHERE rejoin_hash IS NOT NULL;
CREATE INDEX slots_by_holder ON slots (holder) WHERE holder IS NOT NULL;

CREATE TABLE messages (
    channel_id   TEXT    NOT NULL REFERENCES channels (id),
    seq          BIGINT  NOT NULL,
    kind         TEXT    NOT NULL CHECK (kind IN ('user', 'bot', 'system')),
    sender       TEXT,
    sender_name  TEXT    NOT NULL,
    body_text    TEXT,
    body_data    TEXT,
    recipient    TEXT,
    at           BIGINT  NOT NULL,
    hash         TEXT    NOT NULL,
    nonce        TEXT,
    PRIMARY KEY (channel_id, seq)
);

CREATE TABLE people (
    id            TEXT    PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE oauth_clients (
    client_id        TEXT    PRIMARY KEY,
    secret_hash      TEXT,
    name             TEXT    NOT NULL,
    redirect_uris    TEXT    NOT NULL,
    auth_method      TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    token_issued_at  BIGINT
);

CREATE INDEX oauth_clients_without_tokens ON oauth_clients (created_at)
    WHERE token_issued_at IS NULL;

CREATE TABLE oauth_codes (
    code_hash       TEXT    PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    person_id       TEXT    NOT NULL REFERENCES people (id),
    redirect_uri    TEXT    NOT NULL,
    code_challenge  TEXT    NOT NULL,
    resource        TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    expires_at      BIGINT  NOT NULL,
    used_at         BIGINT,
    family          TEXT
);

CREATE INDEX oauth_codes_by_person ON oauth_codes (person_id);
CREATE INDEX oauth_codes_by_client ON oauth_codes (client_id);

CREATE TABLE tokens (
    token_hash  TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh', 'personal')),
    family      TEXT    NOT NULL,
    person_id   TEXT    NOT NULL REFERENCES people (id),
    client_id   TEXT,
    resource    TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    name        TEXT,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT,
    rotated_at  BIGINT,
    revoked_at  BIGINT
);

CREATE INDEX tokens_by_family ON tokens (family);
CREATE INDEX tokens_by_person ON tokens (person_id);
CREATE UNIQUE INDEX personal_token_names ON tokens (name)
    WHERE kind = 'personal' AND revoked_at IS NULL;

CREATE TABLE oauth_approved_clients (
    client_id    TEXT    PRIMARY KEY,
    approved_at  BIGINT  NOT NULL
);

CREATE TABLE oauth_spent_forms (
    token_hash  TEXT    PRIMARY KEY,
    expires_at  BIGINT  NOT NULL
);

CREATE TABLE server_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE bots (
    channel_id       TEXT    NOT NULL REFERENCES channels (id),
    slot             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    language         TEXT    NOT NULL DEFAULT 'javascript',
    code_hash        TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    params_hash      TEXT    NOT NULL,
    seed             TEXT    NOT NULL,
    seed_commitment  TEXT    NOT NULL,
    state            TEXT,
    processed_seq    BIGINT  NOT NULL,
    failures         BIGINT  NOT NULL DEFAULT 0,
    disabled         BOOLEAN NOT NULL DEFAULT FALSE,
    ended            BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (channel_id, slot)
);

CREATE TABLE server_keys (
    id          TEXT    PRIMARY KEY,
    secret_key  TEXT,
    public_key  TEXT    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL,
    retired_at  BIGINT,
    -- The order keys were stored in (SQLite's rowid): `keys rotate` may run on a machine whose
    -- clock disagrees, so created_at cannot order them.
    stored      BIGSERIAL NOT NULL,
    CHECK ((retired_at IS NULL) = (secret_key IS NOT NULL))
);

CREATE UNIQUE INDEX server_keys_one_active ON server_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;

CREATE TABLE timers (
    channel_id  TEXT    NOT NULL REFERENCES channels (id),
    slot        TEXT    NOT NULL,
    tag         TEXT    NOT NULL,
    due_at      BIGINT  NOT NULL,
    set_by      BIGINT  NOT NULL,
    PRIMARY KEY (channel_id, slot, tag)
);
CREATE INDEX timers_by_due ON timers (due_at);

CREATE TABLE fetches (
    channel_id    TEXT    NOT NULL REFERENCES channels (id),
    slot          TEXT    NOT NULL,
    requested_by  BIGINT  NOT NULL,
    position      BIGINT  NOT NULL,
    tag           TEXT    NOT NULL,
    url           TEXT    NOT NULL,
    requested_at  BIGINT  NOT NULL,
    PRIMARY KEY (channel_id, slot, requested_by, position)
);
CREATE INDEX fetches_by_time ON fetches (requested_at);

-- Work that one instance at a time may do, by name (a channel's bot events, one pending fetch),
-- and which instance holds it until when (ms since the epoch, by the database's clock). An
-- instance takes the lease before it starts and renews it while it works; another may take it
-- only once it has expired, so the work runs once while instances live, and the work of one
-- that died resumes elsewhere when its lease runs out.
CREATE TABLE leases (
    name        TEXT    PRIMARY KEY,
    holder      TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL
);
