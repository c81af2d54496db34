-- Export jobs: one row per run, kept as the export history. `spec` is the
-- validated request (JSON); progress columns are rewritten about once a
-- second while a job runs, which also tells other processes that its runner
-- is alive (`updated_at`).
CREATE TABLE exports (
    seq                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                 TEXT   NOT NULL UNIQUE,
    org_id             TEXT   NOT NULL REFERENCES orgs (id),
    schedule_id        TEXT,
    status             TEXT   NOT NULL CHECK (status IN
                           ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    spec               TEXT   NOT NULL,  -- JSON
    rows_written       BIGINT NOT NULL,
    bytes_written      BIGINT NOT NULL,
    total_rows         BIGINT,
    uncompressed_bytes BIGINT,
    sha256             TEXT,
    location           TEXT,
    error              TEXT,
    created_at         BIGINT NOT NULL,
    started_at         BIGINT,
    finished_at        BIGINT,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX exports_by_org ON exports (org_id, seq);
CREATE INDEX exports_active ON exports (status) WHERE status IN ('queued', 'running');
