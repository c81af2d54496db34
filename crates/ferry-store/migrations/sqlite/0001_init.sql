-- Ferry's SQLite schema.
--
-- Conventions: ids are the prefixed text ids of ferry-core (`evt_…`);
-- timestamps are INTEGER unix microseconds (UTC), so they compare and sort
-- in SQL; JSON values are TEXT. Every table has `seq`, its rowid, which is
-- the cursor of its lists (newest first = seq DESC). Tables that rows are
-- deleted from use AUTOINCREMENT so that a seq is never reused; the
-- append-mostly hot tables (events, deliveries, attempts, audit) skip it to
-- save a write per transaction.

CREATE TABLE orgs (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    org_id       TEXT    NOT NULL REFERENCES orgs (id),
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,  -- SHA-256 of the key secret
    scopes       TEXT    NOT NULL,         -- JSON array of scope names
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER
) STRICT;
CREATE INDEX api_keys_by_org ON api_keys (org_id, seq);

CREATE TABLE destinations (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    org_id        TEXT    NOT NULL REFERENCES orgs (id),
    name          TEXT    NOT NULL,
    kind          TEXT    NOT NULL,
    config        TEXT    NOT NULL,  -- JSON
    filter        TEXT    NOT NULL,  -- JSON
    retry         TEXT    NOT NULL,  -- JSON
    is_default    INTEGER NOT NULL,
    enabled       INTEGER NOT NULL,
    max_in_flight INTEGER NOT NULL,
    secrets       BLOB    NOT NULL,  -- sealed JSON (ferry_core::crypto), never plaintext
    health        TEXT    NOT NULL,  -- JSON
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX destinations_by_org ON destinations (org_id, seq);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    org_id          TEXT    NOT NULL REFERENCES orgs (id),
    event_type      TEXT    NOT NULL,
    data            TEXT    NOT NULL,  -- JSON
    metadata        TEXT    NOT NULL,  -- JSON
    idempotency_key TEXT,
    created_at      INTEGER NOT NULL
) STRICT;

-- The deliveries table is also the delivery queue. A waiting delivery
-- (`pending`/`retrying`) always has a `next_attempt_at`; a `delivering` one
-- has a lease (`lease_owner`, `lease_expires_at`). `destination_id` has no
-- foreign key: a deleted destination's deliveries stay, as `failed`.
CREATE TABLE deliveries (
    seq              INTEGER PRIMARY KEY,
    id               TEXT    NOT NULL UNIQUE,
    org_id           TEXT    NOT NULL,
    event_id         TEXT    NOT NULL REFERENCES events (id),
    destination_id   TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN
                         ('pending', 'delivering', 'retrying', 'delivered', 'failed', 'dead')),
    attempt_count    INTEGER NOT NULL,
    failures_counted INTEGER NOT NULL,
    next_attempt_at  INTEGER,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
) STRICT;
CREATE INDEX deliveries_by_event ON deliveries (event_id);
CREATE INDEX deliveries_by_org ON deliveries (org_id, seq);
CREATE INDEX deliveries_by_org_status ON deliveries (org_id, status, seq);
-- Leasing: only waiting rows are in these two, so they stay small however
-- many deliveries are finished. The first serves "oldest due first"; the
-- second serves one destination (probes) and leasing around excluded
-- (paused or saturated) destinations without walking their backlog.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_due_by_destination ON deliveries (destination_id, next_attempt_at)
    WHERE status IN ('pending', 'retrying');
-- Lease expiry and takeover.
CREATE INDEX deliveries_leased ON deliveries (lease_expires_at)
    WHERE status = 'delivering';

-- Deliveries per status, kept by triggers so that the queue-depth metrics
-- do not count a large table.
CREATE TABLE delivery_counts (
    status TEXT    NOT NULL PRIMARY KEY,
    n      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO delivery_counts (status, n) VALUES
    ('pending', 0), ('delivering', 0), ('retrying', 0),
    ('delivered', 0), ('failed', 0), ('dead', 0);

CREATE TABLE attempts (
    seq          INTEGER PRIMARY KEY,
    delivery_id  TEXT    NOT NULL REFERENCES deliveries (id),
    org_id       TEXT    NOT NULL,
    number       INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    duration_ms  INTEGER NOT NULL,
    outcome      TEXT    NOT NULL,
    status_code  INTEGER,
    error        TEXT,
    request      TEXT,  -- JSON (Captured)
    response     TEXT   -- JSON (Captured)
) STRICT;
CREATE INDEX attempts_by_delivery ON attempts (delivery_id, number);

CREATE TABLE audit (
    seq         INTEGER PRIMARY KEY,
    id          TEXT    NOT NULL,
    org_id      TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    entity_type TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    before      TEXT,  -- JSON
    after       TEXT   -- JSON
) STRICT;
CREATE INDEX audit_by_org ON audit (org_id, seq);
CREATE INDEX audit_by_entity ON audit (org_id, entity_id, seq);
