-- Orgkeeper's own API tokens (src/auth/tokens.rs): for scripts that speak the Admin API to
-- Orgkeeper (`api`, acting as their account) and for an identity provider's SCIM client
-- (`scim`, no account). Only a SHA-256 of the secret is kept: the secret is shown once.
CREATE TABLE tokens (
    id              INTEGER PRIMARY KEY,
    name            TEXT    NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('api', 'scim')),
    -- Whose token an `api` token is; its role and workspaces are read at each use.
    account_id      INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    hash            TEXT    NOT NULL UNIQUE,
    -- How lists show it: the prefix and the last four characters.
    hint            TEXT    NOT NULL,
    read_only       INTEGER NOT NULL DEFAULT 0,
    -- JSON list of workspace ids it is narrowed to; NULL: all its account may read.
    workspaces      TEXT,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    -- NULL: never expires (owners only).
    expires_at      TEXT,
    revoked_at      TEXT,
    revoked_by      TEXT,
    -- Set once `token.expired` is recorded, so it is recorded once.
    expiry_recorded INTEGER NOT NULL DEFAULT 0,
    last_used_at    TEXT,
    last_used_from  TEXT,
    CHECK ((kind = 'api') = (account_id IS NOT NULL))
);
-- A live token's name names it (`orgkeeper token revoke NAME`).
CREATE UNIQUE INDEX tokens_live_name ON tokens (name)
    WHERE revoked_at IS NULL AND expiry_recorded = 0;
CREATE INDEX tokens_account ON tokens (account_id);
