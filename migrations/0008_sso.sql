-- Single sign-on (OpenID Connect and trusted proxy header).

-- Identity-provider groups that grant a role; team-lead mappings carry workspaces (JSON list).
CREATE TABLE sso_group_mappings (
    id          INTEGER PRIMARY KEY,
    group_name  TEXT    NOT NULL UNIQUE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'admin', 'viewer', 'team_lead', 'auditor')),
    workspaces  TEXT    NOT NULL DEFAULT '[]',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT    NOT NULL
);

-- Which identity an account belongs to, and the groups seen at its last sign-in (JSON list),
-- so a mapping change can be applied at once instead of at the next sign-in.
CREATE TABLE account_identities (
    account_id  INTEGER NOT NULL UNIQUE REFERENCES accounts(id) ON DELETE CASCADE,
    provider    TEXT    NOT NULL CHECK (provider IN ('oidc', 'proxy')),
    subject     TEXT    NOT NULL,
    groups      TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (provider, subject)
);

-- Set when an account was disabled because no mapping grants it a role any more (not by an
-- owner), so a later sign-in with a granting group enables it again.
ALTER TABLE accounts ADD COLUMN access_lapsed INTEGER NOT NULL DEFAULT 0;
