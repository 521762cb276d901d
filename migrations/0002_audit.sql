-- The tamper-evident audit log (see src/audit/mod.rs for the hash chain).
--
-- Every record carries the hash of the one before it; `seq` is contiguous from the anchor.
-- AUTOINCREMENT is deliberate: sqlite_sequence remembers the highest seq ever written, which
-- lets `verify` notice records cut off the end of the chain.
CREATE TABLE audit_log (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- RFC 3339 UTC with microseconds, fixed width ("2025-01-02T03:04:05.123456Z"), so text
    -- order is time order and range filters compare strings.
    time                TEXT    NOT NULL,
    -- No foreign key: the record must outlive the account it names.
    actor_id            INTEGER,
    actor_name          TEXT    NOT NULL,
    actor_role          TEXT,
    source_ip           TEXT,
    user_agent          TEXT,
    action              TEXT    NOT NULL,
    target_type         TEXT,
    target_id           TEXT,
    target_label        TEXT,
    -- Canonical JSON (sorted keys, no whitespace), secrets already redacted.
    details             TEXT    NOT NULL,
    outcome             TEXT    NOT NULL CHECK (outcome IN ('pending', 'ok', 'denied', 'failed')),
    upstream_status     INTEGER,
    upstream_request_id TEXT,
    -- The outcome record of an organization action points at its intent record.
    intent_seq          INTEGER,
    prev_hash           TEXT    NOT NULL,
    hash                TEXT    NOT NULL
);

CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_actor_name ON audit_log (actor_name COLLATE NOCASE);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id);
CREATE INDEX audit_log_action ON audit_log (action);
CREATE INDEX audit_log_target_type ON audit_log (target_type, target_id);
CREATE INDEX audit_log_target_id ON audit_log (target_id);
CREATE INDEX audit_log_intent ON audit_log (intent_seq);

-- Where the chain starts after retention pruning: the seq and hash of the last pruned record.
-- The newest row (highest id) is the current anchor; without rows the anchor is seq 0 and
-- 64 zeros. Append-only, like the log.
CREATE TABLE audit_anchor (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL,
    hash        TEXT    NOT NULL,
    cutoff      TEXT    NOT NULL,
    deleted     INTEGER NOT NULL,
    created_at  TEXT    NOT NULL
);

-- One row; `active` is 1 only inside the pruning transaction, which is the only time rows
-- of audit_log may be deleted. Other connections never see the 1 (it is never committed).
CREATE TABLE audit_prune_guard (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    active  INTEGER NOT NULL DEFAULT 0 CHECK (active IN (0, 1))
);
INSERT INTO audit_prune_guard (id, active) VALUES (1, 0);

-- Append-only in the database as well as in the code. Someone with write access to the file
-- can drop these triggers; the hash chain is what catches that.
CREATE TRIGGER audit_log_no_update
BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete
BEFORE DELETE ON audit_log
WHEN (SELECT active FROM audit_prune_guard WHERE id = 1) IS NOT 1
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only; records leave only by retention pruning');
END;

CREATE TRIGGER audit_anchor_no_update
BEFORE UPDATE ON audit_anchor
BEGIN
    SELECT RAISE(ABORT, 'audit_anchor is append-only');
END;

CREATE TRIGGER audit_anchor_no_delete
BEFORE DELETE ON audit_anchor
BEGIN
    SELECT RAISE(ABORT, 'audit_anchor is append-only');
END;
