-- Bots attached to bot slots. The public card (name, hashes, commitment, disabled) is shown
-- in the channel view; the source, the secret seed and the state are for the runtime only.
-- `processed_seq` is the last channel message the bot has been given (or skipped): its events
-- are exactly the messages after it, so a bot's reaction and this counter move together in one
-- transaction.
CREATE TABLE bots (
    channel_id       TEXT    NOT NULL REFERENCES channels (id),
    slot             TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    source           TEXT    NOT NULL,
    code_hash        TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    params_hash      TEXT    NOT NULL,
    seed             TEXT    NOT NULL,
    seed_commitment  TEXT    NOT NULL,
    state            TEXT,
    processed_seq    INTEGER NOT NULL,
    failures         INTEGER NOT NULL DEFAULT 0,
    disabled         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (channel_id, slot)
) STRICT;
