-- Export jobs: one row per run, kept as the export history. `spec` is the
-- validated request (JSON); progress columns are rewritten about once a
-- second while a job runs, which also tells other processes that its runner
-- is alive (`updated_at`).
CREATE TABLE exports (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT    NOT NULL UNIQUE,
    org_id             TEXT    NOT NULL REFERENCES orgs (id),
    schedule_id        TEXT,
    status             TEXT    NOT NULL CHECK (status IN
                           ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    spec               TEXT    NOT NULL,  -- JSON
    rows_written       INTEGER NOT NULL,
    bytes_written      INTEGER NOT NULL,
    total_rows         INTEGER,
    uncompressed_bytes INTEGER,
    sha256             TEXT,
    location           TEXT,
    error              TEXT,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    finished_at        INTEGER,
    updated_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX exports_by_org ON exports (org_id, seq);
CREATE INDEX exports_active ON exports (status) WHERE status IN ('queued', 'running');
