-- A counter bumped in the same transaction as every change to an account (its row, its
-- workspaces, its identity), whichever process makes it: the server, the command line
-- (`orgkeeper user disable`), or anything else on this database file. The running server keeps
-- the accounts its sessions name in memory and drops them when this counter moves
-- (src/auth/account_cache.rs). Triggers, so no writer can forget it.
CREATE TABLE accounts_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO accounts_version (id, version) VALUES (1, 0);

CREATE TRIGGER accounts_version_account_inserted AFTER INSERT ON accounts
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_account_updated AFTER UPDATE ON accounts
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_account_deleted AFTER DELETE ON accounts
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER accounts_version_workspace_inserted AFTER INSERT ON account_workspaces
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_workspace_updated AFTER UPDATE ON account_workspaces
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_workspace_deleted AFTER DELETE ON account_workspaces
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER accounts_version_identity_inserted AFTER INSERT ON account_identities
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_identity_updated AFTER UPDATE ON account_identities
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER accounts_version_identity_deleted AFTER DELETE ON account_identities
BEGIN UPDATE accounts_version SET version = version + 1 WHERE id = 1; END;
