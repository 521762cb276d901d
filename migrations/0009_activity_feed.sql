-- The Compliance API's Activity Feed: where reading stopped and whether this admin key may read
-- it (one row). The cursor is the id of the last activity taken into account (read oldest
-- first); while the feed answers 403 it is tried again hourly, not at every sync.
CREATE TABLE activity_feed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    cursor TEXT,
    -- When the feed was last asked (answered or refused).
    checked_at TEXT,
    -- Set while the feed is refused: since when, and why in plain words (with the request id).
    unavailable_since TEXT,
    unavailable_reason TEXT
);

-- Webhook alerts for observed changes: every observed record up to this audit seq has been
-- considered (sent if it matched), so none is sent twice, after a restart either.
CREATE TABLE observed_alerts (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    through_seq INTEGER NOT NULL
);
