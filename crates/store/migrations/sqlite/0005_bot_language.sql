-- The language of a bot's source, which picks its runtime. Every bot before this was JavaScript.
ALTER TABLE bots ADD COLUMN language TEXT NOT NULL DEFAULT 'javascript';
