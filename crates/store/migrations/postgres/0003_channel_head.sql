-- A channel's last seq and chain head, kept on its row by the statement that inserts its
-- messages. Reading them back from `messages` (MAX(seq), the newest hash) walked the channel's
-- index on every change, and under a steady stream of posts PostgreSQL spent most of its time
-- there; the channel's row is locked for every change anyway, so keeping them costs nothing.
--
-- `version` counts the commits that changed what a load of the channel returns (its header,
-- slots, bots' public cards, last seq): an instance that remembers the channel as of a version
-- may skip the load while the version is the same.
ALTER TABLE channels
    ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN head     TEXT,
    ADD COLUMN version  BIGINT NOT NULL DEFAULT 0;

UPDATE channels c
SET last_seq = newest.seq, head = newest.hash
FROM (
    SELECT DISTINCT ON (channel_id) channel_id, seq, hash
    FROM messages
    ORDER BY channel_id, seq DESC
) newest
WHERE newest.channel_id = c.id;
