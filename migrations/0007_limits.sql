-- Requests for a higher Anthropic spend limit on one workspace, asked for by a team lead (or
-- anyone who can see the workspace) and decided by an owner or admin. Approving sets the limit
-- through the Admin API; both steps are in the audit log, this table keeps the state.
CREATE TABLE limit_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    workspace_id TEXT NOT NULL,
    workspace_name TEXT NOT NULL,
    -- The monthly limit asked for, exact decimal cents.
    amount_cents TEXT NOT NULL,
    reason TEXT NOT NULL,
    requested_by_id INTEGER NOT NULL REFERENCES accounts (id),
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'denied')),
    decided_by TEXT,
    decided_at TEXT,
    -- Why it was denied (required then), or the approver's note.
    decision_note TEXT
);

-- One open request per workspace: a second one would race the first decision.
CREATE UNIQUE INDEX limit_requests_one_pending ON limit_requests (workspace_id) WHERE state = 'pending';
CREATE INDEX limit_requests_by_requester ON limit_requests (requested_by_id, id);
