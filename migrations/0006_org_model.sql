-- The local model of the organization (src/org): the last state read from the Admin API, so
-- that pages never wait on it and a restart starts from what was known.

-- One row per object the API listed: kind 'user', 'invite', 'workspace', 'membership'
-- ("workspace_id/user_id") or 'key'. `gone_at` is set when it stopped being listed, so a
-- removed member keeps their name on every page that mentions them.
CREATE TABLE org_objects (
    kind        TEXT NOT NULL,
    id          TEXT NOT NULL,
    body        TEXT NOT NULL,
    first_seen  TEXT NOT NULL,
    gone_at     TEXT,
    PRIMARY KEY (kind, id)
);

-- One row: the organization itself and when the model was complete.
CREATE TABLE org_sync (
    id                   INTEGER PRIMARY KEY CHECK (id = 1),
    organization         TEXT,
    default_workspace_id TEXT,
    -- The first complete sync: history before it is unknown.
    baseline_at          TEXT,
    synced_at            TEXT
);

-- When each organization role ('org_role': subject user, scope ''), workspace role
-- ('workspace_role': subject user, scope workspace) and key status ('key_status': subject
-- key, scope its workspace) held. `until` is NULL while it still holds.
CREATE TABLE org_history (
    id       INTEGER PRIMARY KEY,
    kind     TEXT NOT NULL,
    subject  TEXT NOT NULL,
    scope    TEXT NOT NULL,
    value    TEXT NOT NULL,
    since    TEXT NOT NULL,
    until    TEXT
);
CREATE INDEX org_history_open ON org_history (kind, subject, scope) WHERE until IS NULL;
CREATE INDEX org_history_scope ON org_history (scope, kind, since);
