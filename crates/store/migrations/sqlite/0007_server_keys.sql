-- The server's signing keys (Ed25519), which sign transcript heads. The store keeps bytes only;
-- the `transcript` crate knows what they mean.
--
-- One key is active (retired_at IS NULL) and signs. Rotation retires it and inserts the next one
-- in one transaction, and erases the retired key's secret then: nothing signs with it again, so
-- a later copy of this file cannot leak it. Rows are never deleted: the public halves of retired
-- keys verify what they signed, forever.
CREATE TABLE server_keys (
    id          TEXT    PRIMARY KEY,       -- 'ed25519:' + 16 hex digits of SHA-256(public key)
    secret_key  TEXT,                      -- hex of the 32-byte secret; NULL once retired
    public_key  TEXT    NOT NULL UNIQUE,   -- hex of the 32-byte public key
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    CHECK ((retired_at IS NULL) = (secret_key IS NOT NULL))
) STRICT;

-- At most one active key, whoever writes: two processes creating the first key at once, or a
-- rotation racing a start, cannot leave two. (A plain unique index on retired_at would not do:
-- NULLs never collide.)
CREATE UNIQUE INDEX server_keys_one_active ON server_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;
