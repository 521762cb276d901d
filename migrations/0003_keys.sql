-- API keys: scheduled archives and member offboarding runs (src/web/keys/).
--
-- Times are RFC 3339 UTC text of fixed width ("2025-01-02T03:04:05Z"), so text order is
-- time order.

-- "Deactivate now, archive after a grace period." A schedule stays `pending` until the
-- archive succeeds (`done`) or someone cancels it (`cancelled`); a failed attempt keeps it
-- pending with the error and the next attempt time.
CREATE TABLE key_archive_schedules (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    api_key_id      TEXT    NOT NULL,
    key_name        TEXT    NOT NULL,
    run_at          TEXT    NOT NULL,
    created_at      TEXT    NOT NULL,
    created_by      TEXT    NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    last_request_id TEXT,
    finished_at     TEXT,
    cancelled_by    TEXT
);
-- One pending archive per key.
CREATE UNIQUE INDEX key_archive_schedules_one_pending
    ON key_archive_schedules (api_key_id) WHERE state = 'pending';
CREATE INDEX key_archive_schedules_due ON key_archive_schedules (state, run_at);

-- One offboarding of a member: its steps run in order and are kept so that a partial
-- failure can be resumed (only unfinished steps run again).
CREATE TABLE offboarding_runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT    NOT NULL,
    user_label  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    -- `running` while a request executes it (claimed with `updated_at`), `incomplete` after
    -- a failure, `completed` when every step is done.
    state       TEXT    NOT NULL CHECK (state IN ('running', 'incomplete', 'completed')),
    updated_at  TEXT    NOT NULL
);
CREATE INDEX offboarding_runs_user ON offboarding_runs (user_id);

CREATE TABLE offboarding_steps (
    run_id      INTEGER NOT NULL REFERENCES offboarding_runs (id),
    position    INTEGER NOT NULL,
    -- deactivate_key, archive_key, delete_invite, remove_membership, remove_member
    kind        TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    label       TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('pending', 'done', 'failed')),
    error       TEXT,
    request_id  TEXT,
    finished_at TEXT,
    PRIMARY KEY (run_id, position)
);
