-- Inbound sources. The verification scheme with its secrets is sealed
-- (XChaCha20-Poly1305 under the master key): the file never holds them.
CREATE TABLE sources (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT    NOT NULL UNIQUE,
    org_id       TEXT    NOT NULL REFERENCES orgs (id),
    name         TEXT    NOT NULL,
    verification BLOB    NOT NULL,
    id_from      TEXT,
    type_from    TEXT    NOT NULL,
    required     TEXT    NOT NULL,  -- JSON array of JSON pointers
    destinations TEXT    NOT NULL,  -- JSON array of destination ids
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX sources_by_org ON sources (org_id, seq);
