-- The values each dimension takes in the daily usage buckets (src/usage_store.rs): the usage
-- page's filters. Added to as buckets are stored, so listing them is not a sort of every
-- stored day (215,000 rows, 300 ms on the `xlarge` demo, once per store version). `dim` is
-- the dimension's column in usage_buckets.
CREATE TABLE usage_values (
    dim   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (dim, value)
) WITHOUT ROWID;

INSERT OR IGNORE INTO usage_values SELECT DISTINCT 'model', model FROM usage_buckets WHERE width = '1d';
INSERT OR IGNORE INTO usage_values SELECT DISTINCT 'workspace_id', workspace_id FROM usage_buckets WHERE width = '1d';
INSERT OR IGNORE INTO usage_values SELECT DISTINCT 'api_key_id', api_key_id FROM usage_buckets WHERE width = '1d';
INSERT OR IGNORE INTO usage_values SELECT DISTINCT 'service_tier', service_tier FROM usage_buckets WHERE width = '1d';
INSERT OR IGNORE INTO usage_values SELECT DISTINCT 'context_window', context_window FROM usage_buckets WHERE width = '1d';
