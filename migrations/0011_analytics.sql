-- Usage and cost per person, service account and API key (issue 24), from the Usage and Cost
-- Analytics API (admin-api.md §8.6.1), kept like the other reports (src/analytics_store.rs):
-- settled days are fetched once; the sync's progress is the 'analytics_1d' row of usage_sync.
-- One row per UTC day, actor, workspace and key. Times are RFC 3339 UTC, as in 0004.
CREATE TABLE analytics_days (
    day             TEXT    NOT NULL,
    -- user_actor, service_account_actor, federated_actor, api_actor; '' = not attributed.
    actor_type      TEXT    NOT NULL,
    -- user_…, svac_… or apikey_… id; a federated identity's subject; '' = not attributed.
    actor_id        TEXT    NOT NULL,
    -- The real workspace id, the default workspace's included ('' when none is given).
    workspace_id    TEXT    NOT NULL,
    -- '' = usage no API key authenticated (the Console).
    api_key_id      TEXT    NOT NULL,
    uncached        INTEGER NOT NULL,
    cache_read      INTEGER NOT NULL,
    cache_write     INTEGER NOT NULL,
    output          INTEGER NOT NULL,
    web_search      INTEGER NOT NULL,
    requests        INTEGER NOT NULL,
    -- Exact decimal string of cents: never summed in SQL (that would be floating point).
    amount          TEXT    NOT NULL,
    PRIMARY KEY (day, actor_type, actor_id, workspace_id, api_key_id)
);
CREATE INDEX analytics_days_actor ON analytics_days (actor_id, day);

-- Each page of the two endpoints as it arrives (no key: the same group can come twice, and
-- amounts are added up exactly in Rust when a day is moved into analytics_days).
CREATE TABLE analytics_staging (
    report          TEXT    NOT NULL CHECK (report IN ('usage', 'cost')),
    day             TEXT    NOT NULL,
    actor_type      TEXT    NOT NULL,
    actor_id        TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    api_key_id      TEXT    NOT NULL,
    uncached        INTEGER NOT NULL,
    cache_read      INTEGER NOT NULL,
    cache_write     INTEGER NOT NULL,
    output          INTEGER NOT NULL,
    web_search      INTEGER NOT NULL,
    requests        INTEGER NOT NULL,
    amount          TEXT    NOT NULL
);
CREATE INDEX analytics_staging_day ON analytics_staging (day);

-- How the API last named each actor (members who left keep their name here).
CREATE TABLE analytics_actors (
    actor_type      TEXT    NOT NULL,
    actor_id        TEXT    NOT NULL,
    name            TEXT,
    email           TEXT,
    deleted         INTEGER NOT NULL DEFAULT 0,
    seen_at         TEXT    NOT NULL,
    PRIMARY KEY (actor_type, actor_id)
);

-- Whether the organization may read the analytics API: one row, rewritten by every sync.
CREATE TABLE analytics_access (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    available       INTEGER NOT NULL,
    message         TEXT    NOT NULL,
    checked_at      TEXT    NOT NULL
);

-- Cost centers for chargeback (src/service/cost_centers.rs). A cost line goes to the center
-- of its API key, else of its workspace, else of the person it is attributed to, else it is
-- unallocated.
CREATE TABLE cost_centers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    created_at      TEXT    NOT NULL
);

CREATE TABLE cost_center_rules (
    kind            TEXT    NOT NULL CHECK (kind IN ('key', 'workspace', 'person')),
    -- apikey_…, wrkspc_… (real id) or user_… id.
    target_id       TEXT    NOT NULL,
    center_id       INTEGER NOT NULL REFERENCES cost_centers (id) ON DELETE CASCADE,
    created_at      TEXT    NOT NULL,
    PRIMARY KEY (kind, target_id)
);
CREATE INDEX cost_center_rules_center ON cost_center_rules (center_id);
