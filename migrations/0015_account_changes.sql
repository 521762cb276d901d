-- Which account each change touched, whichever process made it (the server, the command line,
-- anything else on this database file), so the running server forgets only that account from
-- memory rather than every one (src/auth/account_cache.rs): a sign-in, which writes its
-- account's row, no longer empties the cache for everybody. Rows are pruned by the server; one
-- that finds rows missing since it last looked forgets everything.
CREATE TABLE account_changes (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL
);

CREATE TRIGGER account_changes_account_inserted AFTER INSERT ON accounts
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.id); END;
CREATE TRIGGER account_changes_account_updated AFTER UPDATE ON accounts
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.id); END;
CREATE TRIGGER account_changes_account_deleted AFTER DELETE ON accounts
BEGIN INSERT INTO account_changes (account_id) VALUES (OLD.id); END;

CREATE TRIGGER account_changes_workspace_inserted AFTER INSERT ON account_workspaces
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.account_id); END;
CREATE TRIGGER account_changes_workspace_updated AFTER UPDATE ON account_workspaces
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.account_id); END;
CREATE TRIGGER account_changes_workspace_deleted AFTER DELETE ON account_workspaces
BEGIN INSERT INTO account_changes (account_id) VALUES (OLD.account_id); END;

CREATE TRIGGER account_changes_identity_inserted AFTER INSERT ON account_identities
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.account_id); END;
CREATE TRIGGER account_changes_identity_updated AFTER UPDATE ON account_identities
BEGIN INSERT INTO account_changes (account_id) VALUES (NEW.account_id); END;
CREATE TRIGGER account_changes_identity_deleted AFTER DELETE ON account_identities
BEGIN INSERT INTO account_changes (account_id) VALUES (OLD.account_id); END;

-- The counter of 0014 is replaced by the log above.
DROP TRIGGER accounts_version_account_inserted;
DROP TRIGGER accounts_version_account_updated;
DROP TRIGGER accounts_version_account_deleted;
DROP TRIGGER accounts_version_workspace_inserted;
DROP TRIGGER accounts_version_workspace_updated;
DROP TRIGGER accounts_version_workspace_deleted;
DROP TRIGGER accounts_version_identity_inserted;
DROP TRIGGER accounts_version_identity_updated;
DROP TRIGGER accounts_version_identity_deleted;
DROP TABLE accounts_version;
