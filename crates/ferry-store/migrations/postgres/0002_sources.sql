-- Inbound sources. The verification scheme with its secrets is sealed
-- (XChaCha20-Poly1305 under the master key): the database never holds them.
CREATE TABLE sources (
    seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           TEXT   NOT NULL UNIQUE,
    org_id       TEXT   NOT NULL REFERENCES orgs (id),
    name         TEXT   NOT NULL,
    verification BYTEA  NOT NULL,
    id_from      TEXT,
    type_from    TEXT   NOT NULL,
    required     TEXT   NOT NULL,  -- JSON array of JSON pointers
    destinations TEXT   NOT NULL,  -- JSON array of destination ids
    created_at   BIGINT NOT NULL
);

CREATE INDEX sources_by_org ON sources (org_id, seq);
