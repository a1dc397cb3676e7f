-- People, OAuth clients, authorization codes and tokens.
-- Every secret (client secret, code, token) is stored only as the SHA-256 hex of its value.

-- A person is a principal created by the authorization server: the consent page names them,
-- and a signed cookie brings them back. Their id is the principal id channels refer to.
CREATE TABLE people (
    id            TEXT    PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

-- Clients registered through RFC 7591. Clients identified by a metadata document URL are
-- fetched on demand and never stored here.
CREATE TABLE oauth_clients (
    client_id      TEXT    PRIMARY KEY,
    secret_hash    TEXT,
    name           TEXT    NOT NULL,
    redirect_uris  TEXT    NOT NULL, -- JSON array of exact URIs
    auth_method    TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
) STRICT;

-- Authorization codes: single use. `family` names the tokens a code was exchanged for, so a
-- replayed code can revoke them.
CREATE TABLE oauth_codes (
    code_hash       TEXT    PRIMARY KEY,
    client_id       TEXT    NOT NULL,
    person_id       TEXT    NOT NULL REFERENCES people (id),
    redirect_uri    TEXT    NOT NULL,
    code_challenge  TEXT    NOT NULL,
    resource        TEXT    NOT NULL,
    scope           TEXT    NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER,
    family          TEXT
) STRICT;

-- Access, refresh and personal tokens. A family is one grant: the tokens of one authorization
-- and every refresh after it. Revoking a family revokes all of them.
CREATE TABLE tokens (
    token_hash  TEXT    PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('access', 'refresh', 'personal')),
    family      TEXT    NOT NULL,
    person_id   TEXT    NOT NULL REFERENCES people (id),
    client_id   TEXT,
    resource    TEXT    NOT NULL,
    scope       TEXT    NOT NULL,
    name        TEXT,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,
    rotated_at  INTEGER,
    revoked_at  INTEGER
) STRICT;

CREATE INDEX tokens_by_family ON tokens (family);
CREATE UNIQUE INDEX personal_token_names ON tokens (name)
    WHERE kind = 'personal' AND revoked_at IS NULL;

-- Server-wide values generated once, such as the key that signs cookies.
CREATE TABLE server_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) STRICT;
