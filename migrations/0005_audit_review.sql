-- Acknowledgements of a broken audit chain: the banner shown to owners, admins and auditors
-- stays until someone acknowledges that break (the acknowledgement is itself audited).
CREATE TABLE audit_chain_acknowledgements (
    id              INTEGER PRIMARY KEY,
    broken_seq      INTEGER NOT NULL,
    reason          TEXT    NOT NULL,
    account_id      INTEGER NOT NULL,
    acknowledged_at TEXT    NOT NULL
);
CREATE INDEX audit_chain_acknowledgements_seq ON audit_chain_acknowledgements (broken_seq, reason);
