-- SCIM provisioning (src/service/scim.rs): the people and groups an identity provider pushes,
-- and how groups map to organization roles and workspaces. The organization itself is changed
-- through the ordinary service functions; these tables hold only what SCIM needs to answer.
CREATE TABLE scim_users (
    -- The SCIM id Orgkeeper assigned (a UUID): stable while the person is invited, joins,
    -- is deactivated and reactivated.
    id            TEXT    PRIMARY KEY,
    user_name     TEXT    NOT NULL,
    -- The person's address, lower-cased: how they are found in the organization.
    email         TEXT    NOT NULL UNIQUE,
    external_id   TEXT,
    given_name    TEXT,
    family_name   TEXT,
    display_name  TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    -- The last refusal of a change for this person (an admin the Admin API cannot remove),
    -- shown on the SCIM page until a later change succeeds.
    problem       TEXT
);
CREATE INDEX scim_users_user_name ON scim_users (lower(user_name));
CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
    id            TEXT    PRIMARY KEY,
    display_name  TEXT    NOT NULL,
    external_id   TEXT,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);
CREATE UNIQUE INDEX scim_groups_name ON scim_groups (lower(display_name));

CREATE TABLE scim_group_members (
    group_id      TEXT    NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
    user_id       TEXT    NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_group_members_user ON scim_group_members (user_id);

-- A group (by display name, as the provider sends it) gives an organization role and/or
-- workspaces with a workspace role; the strongest of a person's groups wins.
CREATE TABLE scim_mappings (
    id            INTEGER PRIMARY KEY,
    group_name    TEXT    NOT NULL,
    -- NULL: the group gives no organization role.
    org_role      TEXT,
    -- JSON list of [workspace id, workspace role].
    workspaces    TEXT    NOT NULL DEFAULT '[]',
    created_at    TEXT    NOT NULL,
    created_by    TEXT    NOT NULL
);
CREATE UNIQUE INDEX scim_mappings_group ON scim_mappings (lower(group_name));
