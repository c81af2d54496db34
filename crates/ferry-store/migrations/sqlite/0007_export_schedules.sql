-- Export schedules: a cron expression in a time zone that starts export
-- jobs. Each write of a schedule names the revision it read (`revision`),
-- so that of several processes claiming one tick only one writes. `due_at`
-- is when the schedule next has a run to start (the earlier of its next
-- tick and a pending retry; NULL while disabled), kept by the store on
-- every write so that the scheduler's poll reads one index range.
CREATE TABLE export_schedules (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    id                  TEXT    NOT NULL UNIQUE,
    org_id              TEXT    NOT NULL REFERENCES orgs (id),
    name                TEXT    NOT NULL,
    cron                TEXT    NOT NULL,
    timezone            TEXT    NOT NULL,
    enabled             INTEGER NOT NULL,
    spec                TEXT    NOT NULL,  -- JSON, as in exports
    keep_last           INTEGER,
    max_age_days        INTEGER,
    next_run_at         INTEGER NOT NULL,
    retry_at            INTEGER,
    retry_scheduled_for INTEGER,
    retry_attempt       INTEGER,
    due_at              INTEGER,
    revision            INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    UNIQUE (org_id, name),
    -- A pending retry is all three columns or none.
    CHECK ((retry_at IS NULL) = (retry_scheduled_for IS NULL)
       AND (retry_at IS NULL) = (retry_attempt IS NULL))
) STRICT;
CREATE INDEX export_schedules_by_org ON export_schedules (org_id, seq);
CREATE INDEX export_schedules_due ON export_schedules (due_at) WHERE due_at IS NOT NULL;

-- A scheduled job names the tick it runs for and which attempt; one job
-- per run, whoever inserts it. `output_removed_at` is when the schedule's
-- retention deleted the job's output.
ALTER TABLE exports ADD COLUMN scheduled_for INTEGER;
ALTER TABLE exports ADD COLUMN attempt INTEGER;
ALTER TABLE exports ADD COLUMN output_removed_at INTEGER;
CREATE UNIQUE INDEX exports_one_per_run ON exports (schedule_id, scheduled_for, attempt)
    WHERE schedule_id IS NOT NULL;
CREATE INDEX exports_by_schedule ON exports (schedule_id, seq) WHERE schedule_id IS NOT NULL;

-- An incremental export's key (its schedule, or a digest of the request):
-- the next run starts where the key's last successful run ended.
ALTER TABLE exports ADD COLUMN incremental_key TEXT;
CREATE INDEX exports_by_incremental_key ON exports (org_id, incremental_key, seq)
    WHERE incremental_key IS NOT NULL;
