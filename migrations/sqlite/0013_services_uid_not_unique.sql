-- `services.uid` without its UNIQUE index. A uid is a random (version 4) UUID the server makes
-- for each creation, 122 random bits, and nothing looks a service up by it; the index only
-- checked it, and cost every create a random page of the index, written to the WAL and again
-- by the checkpoint (creates were 16 % faster without it: BENCHMARKS.md, twelfth session). SQLite cannot
-- drop a column's constraint, so the table is made again without it (its rows, ids and the
-- UNIQUE (namespace, name) kept), as https://sqlite.org/lang_altertable.html#otheralter does.
CREATE TABLE services_without_uid_index (
    id            INTEGER PRIMARY KEY,
    namespace     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    uid           TEXT    NOT NULL,
    revision      INTEGER NOT NULL CHECK (revision >= 1),
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL,
    labels        TEXT    NOT NULL DEFAULT '{}',
    document      BLOB    NOT NULL,
    address_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (namespace, name)
);
INSERT INTO services_without_uid_index (id, namespace, name, uid, revision, created_at, updated_at, labels, document, address_count)
    SELECT id, namespace, name, uid, revision, created_at, updated_at, labels, document, address_count FROM services;
DROP TABLE services;
ALTER TABLE services_without_uid_index RENAME TO services;
