-- The evaluation service's own results: one row per run, one per
-- evaluation, and how each evaluation's export stands.

CREATE TABLE runs (
    id             TEXT PRIMARY KEY,      -- a ULID, lower case
    destination_id TEXT NOT NULL,         -- where its results are exported (dst_…)
    dataset        TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    planned        INTEGER NOT NULL,      -- evaluations the run is to score
    started_at     TEXT NOT NULL,         -- RFC 3339
    finished_at    TEXT                   -- NULL while running, or after a crash
) STRICT;

CREATE INDEX runs_unfinished ON runs (destination_id, started_at) WHERE finished_at IS NULL;

CREATE TABLE evaluations (
    run_id          TEXT NOT NULL REFERENCES runs (id),
    n               INTEGER NOT NULL,
    accuracy        REAL NOT NULL,
    precision       REAL NOT NULL,
    recall          REAL NOT NULL,
    f1              REAL NOT NULL,
    true_positives  INTEGER NOT NULL,
    false_positives INTEGER NOT NULL,
    true_negatives  INTEGER NOT NULL,
    false_negatives INTEGER NOT NULL,
    duration_us     INTEGER NOT NULL,
    completed_at    TEXT NOT NULL,
    -- The event id `send` returned; set only once `send` returned Ok.
    event_id        TEXT,
    -- How the export stood when last read through the port (NULL until sent):
    -- pending, retrying, delivered, failed, dead, unknown.
    export_state    TEXT,
    delivered_at    TEXT,
    -- Why the latest `send` failed, while the evaluation is not exported.
    export_error    TEXT,
    PRIMARY KEY (run_id, n)
) STRICT, WITHOUT ROWID;

-- Evaluations still to export (a failed `send`, or a crash between storing
-- and exporting) and exports still on their way: both small sets, read on
-- every start.
CREATE INDEX evaluations_unexported ON evaluations (run_id, n) WHERE event_id IS NULL;
CREATE INDEX evaluations_open_exports ON evaluations (run_id, n)
    WHERE event_id IS NOT NULL AND export_state IN ('pending', 'retrying', 'unknown');
