-- Fetches a bot asked for (ctx.request_fetch), pending until the server has made them. Making
-- one deletes the row in the same transaction that appends the `fetch_attested` notice, so each
-- request is answered exactly once, also across a crash: a row still here after a restart has
-- not been answered, and is fetched then.
CREATE TABLE fetches (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    slot TEXT NOT NULL,
    -- The seq of the event whose reaction asked, and the call's place among that event's calls.
    requested_by INTEGER NOT NULL,
    position INTEGER NOT NULL,
    -- The bot's own name for the fetch, and the URL it asked for.
    tag TEXT NOT NULL,
    url TEXT NOT NULL,
    -- When it was asked for, in ms since the epoch.
    requested_at INTEGER NOT NULL,
    PRIMARY KEY (channel_id, slot, requested_by, position)
);
CREATE INDEX fetches_by_time ON fetches (requested_at);
