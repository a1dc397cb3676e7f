-- What lets the authorization server forget strangers, and refuse to redirect for them.

-- When the client first exchanged a code for tokens. A client that never did is deleted a day
-- after it registered. Clients that already hold tokens count as having obtained them.
ALTER TABLE oauth_clients ADD COLUMN token_issued_at INTEGER;
UPDATE oauth_clients SET token_issued_at = created_at
    WHERE client_id IN (SELECT client_id FROM tokens WHERE client_id IS NOT NULL)
       OR client_id IN (SELECT client_id FROM oauth_codes WHERE used_at IS NOT NULL);
CREATE INDEX oauth_clients_without_tokens ON oauth_clients (created_at)
    WHERE token_issued_at IS NULL;

-- Clients a person approved at least once (registered ones and metadata-document URLs alike).
-- Until then, errors of the authorization endpoint are shown on our own page rather than sent
-- to the client's redirect URI, which would make us an open redirector (RFC 9700 §4.11).
CREATE TABLE oauth_approved_clients (
    client_id    TEXT    PRIMARY KEY,
    approved_at  INTEGER NOT NULL
) STRICT;
INSERT INTO oauth_approved_clients (client_id, approved_at)
    SELECT client_id, MIN(created_at) FROM tokens WHERE client_id IS NOT NULL GROUP BY client_id;
INSERT OR IGNORE INTO oauth_approved_clients (client_id, approved_at)
    SELECT client_id, MIN(expires_at) FROM oauth_codes GROUP BY client_id;

-- Consent form tokens already submitted, kept until they would have expired anyway, so that
-- a form is answered once.
CREATE TABLE oauth_spent_forms (
    token_hash  TEXT    PRIMARY KEY,
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX tokens_by_person ON tokens (person_id);
CREATE INDEX oauth_codes_by_person ON oauth_codes (person_id);
CREATE INDEX oauth_codes_by_client ON oauth_codes (client_id);
