-- Staging for the usage store's sync (src/usage_store.rs): each page of a report is written
-- here in its own small transaction as it arrives, so a sync holds about one page in memory;
-- one final transaction then replaces the range in usage_buckets / cost_buckets from here and
-- clears it. A sync that stopped half-way leaves rows here, which the next sync clears first.
-- (Not TEMP tables: those belong to one connection, and the pool has many.)
CREATE TABLE usage_staging (
    width           TEXT    NOT NULL,
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

CREATE TABLE cost_staging (
    day             TEXT    NOT NULL,
    workspace_id    TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    amount          TEXT    NOT NULL,
    PRIMARY KEY (day, workspace_id, description)
);
