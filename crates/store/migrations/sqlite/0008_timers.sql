-- Bot timers (ctx.set_timer): pending until they fire. Firing deletes the row in the same
-- transaction that appends the `timer_fired` notice, so a timer fires exactly once, also across
-- a crash: a row still here after a restart has not fired.
CREATE TABLE timers (
    channel_id TEXT NOT NULL REFERENCES channels (id),
    slot TEXT NOT NULL,
    -- The bot's own name for the timer: setting a tag again replaces the timer.
    tag TEXT NOT NULL,
    -- When it is due, in ms since the epoch.
    due_at INTEGER NOT NULL,
    -- The seq of the event whose reaction set it.
    set_by INTEGER NOT NULL,
    PRIMARY KEY (channel_id, slot, tag)
);
CREATE INDEX timers_by_due ON timers (due_at);
