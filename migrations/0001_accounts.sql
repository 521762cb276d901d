-- Local dashboard accounts. Passwords are argon2id PHC strings; nothing else secret is stored.
CREATE TABLE accounts (
    id              INTEGER PRIMARY KEY,
    username        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    role            TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'viewer', 'team_lead', 'auditor')),
    password_hash   TEXT    NOT NULL,
    disabled        INTEGER NOT NULL DEFAULT 0,
    -- Bumped to end every session of the account (password change, disable, "end sessions").
    session_epoch   INTEGER NOT NULL DEFAULT 0,
    failed_logins   INTEGER NOT NULL DEFAULT 0,
    locked_until    TEXT,
    created_at      TEXT    NOT NULL,
    last_login_at   TEXT
);

-- Workspaces a team lead may read. Workspace ids are upstream ids (wrkspc_...).
CREATE TABLE account_workspaces (
    account_id   INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    workspace_id TEXT    NOT NULL,
    PRIMARY KEY (account_id, workspace_id)
);
