-- Delivery metrics history: per destination and time bucket (`minute`,
-- `hour`, `day`; `bucket_start` in unix microseconds, aligned to the bucket),
-- attempts by how they ended and latency histograms (JSON: bucket index →
-- count). Rows are only added, one per flush, and summed when read;
-- compaction folds old minutes into hours and old hours into days.
CREATE TABLE metric_rollups (
    org_id          TEXT    NOT NULL,
    destination_id  TEXT    NOT NULL,
    bucket          TEXT    NOT NULL CHECK (bucket IN ('minute', 'hour', 'day')),
    bucket_start    BIGINT  NOT NULL,
    attempts        BIGINT  NOT NULL,
    delivered       BIGINT  NOT NULL,
    retried         BIGINT  NOT NULL,
    dead            BIGINT  NOT NULL,
    attempt_latency TEXT    NOT NULL,
    end_to_end      TEXT    NOT NULL
);
-- Reads (an organization's range of one bucket size) and compaction (one
-- bucket size's old rows, across organizations).
CREATE INDEX metric_rollups_org ON metric_rollups (org_id, bucket, bucket_start);
CREATE INDEX metric_rollups_age ON metric_rollups (bucket, bucket_start);
