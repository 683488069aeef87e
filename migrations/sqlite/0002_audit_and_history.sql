-- Who did what: every write, import and denied request. Rows for changes are written in the
-- same transaction as the change itself.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY,
    time            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    namespace       TEXT,
    name            TEXT,
    revision_before INTEGER,
    revision_after  INTEGER,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    status          INTEGER NOT NULL,
    request_id      TEXT    NOT NULL,
    detail          TEXT
);
CREATE INDEX audit_log_by_target ON audit_log (namespace, name, id);
CREATE INDEX audit_log_by_time ON audit_log (time, id);

-- Every revision of every service (document NULL marks a deletion), for its history.
CREATE TABLE service_revisions (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    uid         TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    time        TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    request_id  TEXT    NOT NULL,
    document    BLOB
);
CREATE INDEX service_revisions_by_service ON service_revisions (namespace, name, id);

-- Address count per service, kept with each write, for the metrics.
ALTER TABLE services ADD COLUMN address_count INTEGER NOT NULL DEFAULT 0;
UPDATE services SET address_count = json_array_length(document, '$.addresses');
