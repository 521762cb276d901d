-- The local usage store (src/usage_store.rs). Buckets older than the settling time never change
-- upstream, so they are kept here and fetched once; newer ones are replaced on every refresh.
-- Times are RFC 3339 UTC ("2025-01-02T03:00:00Z"), so text order is time order.
-- Null dimensions are stored as '' (default workspace, Console/Workbench usage).
CREATE TABLE usage_buckets (
    width           TEXT    NOT NULL CHECK (width IN ('1d', '1h')),
    start           TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    api_key_id      TEXT    NOT NULL,
    service_tier    TEXT    NOT NULL,
    context_window  TEXT    NOT NULL,
    uncached        INTEGER NOT NULL,
    cache_read      INTEGER NOT NULL,
    cache_write_5m  INTEGER NOT NULL,
    cache_write_1h  INTEGER NOT NULL,
    output          INTEGER NOT NULL,
    web_search      INTEGER NOT NULL,
    PRIMARY KEY (width, start, model, workspace_id, api_key_id, service_tier, context_window)
);
CREATE INDEX usage_buckets_key ON usage_buckets (api_key_id, width, start);

-- Daily cost by workspace and description. `amount` is an exact decimal string of cents:
-- never summed in SQL (that would be floating point).
CREATE TABLE cost_buckets (
    day             TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    amount          TEXT    NOT NULL,
    PRIMARY KEY (day, workspace_id, description)
);

-- Sync progress per report: everything before `settled_until` is final and never fetched
-- again; `refreshed_at` limits refreshes to about one a minute.
CREATE TABLE usage_sync (
    kind            TEXT    PRIMARY KEY,
    settled_until   TEXT    NOT NULL,
    refreshed_at    TEXT    NOT NULL
);

-- Claude Code records of one settled UTC day (the report serves one day per request).
CREATE TABLE claude_code_days (
    day             TEXT    PRIMARY KEY,
    records         TEXT    NOT NULL,
    fetched_at      TEXT    NOT NULL
);

-- Monthly budgets: scope 'org' or a workspace id ('' = the default workspace).
CREATE TABLE budgets (
    scope           TEXT    PRIMARY KEY,
    amount_cents    TEXT    NOT NULL,
    thresholds      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);

-- One row per budget, month and threshold crossed: the unique key is what keeps an alert
-- from ever being raised twice.
CREATE TABLE budget_alerts (
    scope           TEXT    NOT NULL,
    month           TEXT    NOT NULL,
    threshold       INTEGER NOT NULL,
    crossed_at      TEXT    NOT NULL,
    spend_cents     TEXT    NOT NULL,
    PRIMARY KEY (scope, month, threshold)
);
