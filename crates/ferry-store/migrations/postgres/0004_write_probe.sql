-- One row that readiness checks rewrite to learn whether the store can
-- commit (a read succeeds on a full disk; a write does not).
CREATE TABLE write_probe (
    id SMALLINT PRIMARY KEY CHECK (id = 1),
    probed_at BIGINT NOT NULL
);
