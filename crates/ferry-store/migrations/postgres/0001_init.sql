-- Ferry's PostgreSQL schema. It is created in whatever schema comes first
-- in the connection's `search_path` (one schema per Ferry installation).
--
-- Conventions, as on SQLite so that both adapters share their reasoning:
-- ids are the prefixed text ids of ferry-core (`evt_…`); timestamps are
-- BIGINT unix microseconds (UTC), compared and sorted in SQL; JSON values are
-- TEXT (kept byte for byte as serialized, never normalized). Every table has
-- `seq`, an identity column, which is the cursor of its lists (newest first =
-- seq DESC); identities are never reused.

CREATE TABLE orgs (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         TEXT   NOT NULL UNIQUE,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE api_keys (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT   NOT NULL UNIQUE,
    org_id       TEXT   NOT NULL REFERENCES orgs (id),
    name         TEXT   NOT NULL,
    prefix       TEXT   NOT NULL,
    hash         BYTEA  NOT NULL UNIQUE,  -- SHA-256 of the key secret
    scopes       TEXT   NOT NULL,         -- JSON array of scope names
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_keys_by_org ON api_keys (org_id, seq);

CREATE TABLE destinations (
    seq           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT    NOT NULL UNIQUE,
    org_id        TEXT    NOT NULL REFERENCES orgs (id),
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    config        TEXT    NOT NULL,  -- JSON
    filter        TEXT    NOT NULL,  -- JSON
    retry         TEXT    NOT NULL,  -- JSON
    is_default    BOOLEAN NOT NULL,
    enabled       BOOLEAN NOT NULL,
    max_in_flight BIGINT  NOT NULL,
    secrets       BYTEA   NOT NULL,  -- sealed JSON (ferry_core::crypto), never plaintext
    health        TEXT    NOT NULL,  -- JSON
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
CREATE INDEX destinations_by_org ON destinations (org_id, seq);

CREATE TABLE events (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT   NOT NULL UNIQUE,
    org_id          TEXT   NOT NULL REFERENCES orgs (id),
    event_type      TEXT   NOT NULL,
    data            TEXT   NOT NULL,  -- JSON
    metadata        TEXT   NOT NULL,  -- JSON
    idempotency_key TEXT,
    created_at      BIGINT NOT NULL
);

-- The deliveries table is also the delivery queue. A waiting delivery
-- (`pending`/`retrying`) always has a `next_attempt_at`; a `delivering` one
-- has a lease (`lease_owner`, `lease_expires_at`). `destination_id` has no
-- foreign key: a deleted destination's deliveries stay, as `failed`.
CREATE TABLE deliveries (
    seq              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               TEXT   NOT NULL UNIQUE,
    org_id           TEXT   NOT NULL,
    event_id         TEXT   NOT NULL REFERENCES events (id),
    destination_id   TEXT   NOT NULL,
    status           TEXT   NOT NULL CHECK (status IN
                         ('pending', 'delivering', 'retrying', 'delivered', 'failed', 'dead')),
    attempt_count    BIGINT NOT NULL,
    failures_counted BIGINT NOT NULL,
    next_attempt_at  BIGINT,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_org ON deliveries (org_id, seq);
CREATE INDEX deliveries_by_org_status ON deliveries (org_id, status, seq);
-- Leasing: only waiting rows are in these two, so they stay small however
-- many deliveries are finished. The first serves "oldest due first"; the
-- second serves one destination (probes) and leasing around excluded
-- destinations.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_due_by_destination ON deliveries (destination_id, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
-- Lease expiry and takeover.
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at)
    WHERE status = 'delivering';

CREATE TABLE attempts (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id  TEXT   NOT NULL REFERENCES deliveries (id),
    org_id       TEXT   NOT NULL,
    number       BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    outcome      TEXT   NOT NULL,
    status_code  BIGINT,
    error        TEXT,
    request      TEXT,  -- JSON (Captured)
    response     TEXT   -- JSON (Captured)
);
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, number);

CREATE TABLE audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id          TEXT   NOT NULL,
    org_id      TEXT   NOT NULL,
    actor       TEXT   NOT NULL,
    at          BIGINT NOT NULL,
    entity_type TEXT   NOT NULL,
    entity_id   TEXT   NOT NULL,
    action      TEXT   NOT NULL,
    before      TEXT,  -- JSON
    after       TEXT   -- JSON
);
CREATE INDEX audit_by_org ON audit (org_id, seq);
CREATE INDEX audit_by_entity ON audit (org_id, entity_id, seq);

-- Deliveries per status (queue-depth metrics) without counting a large
-- table. A counter row per status would be updated by every ingest, lease
-- and completion of every process, and so serialize them all on six row
-- locks (and deadlock when two transactions move statuses in opposite
-- directions). Instead each statement on `deliveries` *appends* its net
-- change per status here (statement-level triggers over transition tables:
-- one or two rows per statement, however many deliveries it touched, and
-- appends never wait on each other). Readers sum the rows; the store folds
-- them back into one row per status now and then (`deliveries::counts`).
CREATE TABLE delivery_count_deltas (
    status TEXT   NOT NULL,
    n      BIGINT NOT NULL
);

CREATE FUNCTION delivery_counts_inserted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO delivery_count_deltas (status, n)
    SELECT status, COUNT(*) FROM new_rows GROUP BY status;
    RETURN NULL;
END
$$;

CREATE FUNCTION delivery_counts_updated() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO delivery_count_deltas (status, n)
    SELECT status, SUM(n) FROM (
        SELECT status, 1 AS n FROM new_rows
        UNION ALL
        SELECT status, -1 AS n FROM old_rows
    ) AS changes
    GROUP BY status
    HAVING SUM(n) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION delivery_counts_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    INSERT INTO delivery_count_deltas (status, n)
    SELECT status, -COUNT(*) FROM old_rows GROUP BY status;
    RETURN NULL;
END
$$;

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_inserted();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_updated();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_deleted();
