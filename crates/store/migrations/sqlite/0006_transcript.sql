-- The transcript (docs/transcript.md).
--
-- Each message's link of its channel's hash chain: "sha256:" + hex over the previous link and
-- the message's canonical encoding. Rows written before this migration get theirs when the
-- server opens the database (a hash needs SHA-256, which SQL here lacks), before it serves.
ALTER TABLE messages ADD COLUMN hash TEXT;
-- A private message's random nonce (32 hex digits), hashed with it so that its digest, which
-- those who may not read it are given, does not give its content away. Older rows have none.
ALTER TABLE messages ADD COLUMN nonce TEXT;

-- From which seq a bot's context (roster, slots) is a function of the transcript. Events of
-- channels created earlier saw the live channel instead, so replay checks them from here on.
ALTER TABLE channels ADD COLUMN faithful_from INTEGER NOT NULL DEFAULT 0;
UPDATE channels SET faithful_from = COALESCE((SELECT MAX(seq) FROM messages WHERE channel_id = channels.id), 0);

-- Whether private messages to a bot become readable by everyone once the bot's run ends, so a
-- finished game can be audited in full. New channels choose (default on); channels that
-- existed before were promised privacy and keep it.
ALTER TABLE channels ADD COLUMN reveal_private INTEGER NOT NULL DEFAULT 0;

-- A bot that ended its own run (ctx.end) gets no more events; its seed is revealed at once.
ALTER TABLE bots ADD COLUMN ended INTEGER NOT NULL DEFAULT 0;
