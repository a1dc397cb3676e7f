-- The public lobby: a listed channel's open invite seats are anyone's to take without a code.
-- NULL: not listed; 'listed': its creator listed it; 'quick_match': a quick-match table.
ALTER TABLE channels ADD COLUMN listing TEXT CHECK (listing IN ('listed', 'quick_match'));
CREATE INDEX channels_in_lobby ON channels (created_at) WHERE listing IS NOT NULL AND NOT closed;
