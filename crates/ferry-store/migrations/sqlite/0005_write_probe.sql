-- One row that readiness checks rewrite to learn whether the store can
-- commit (a read succeeds on a full disk; a write does not).
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL
);
