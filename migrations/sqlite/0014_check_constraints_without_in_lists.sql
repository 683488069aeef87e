-- The CHECK constraints of three or more allowed values written as comparisons joined by OR
-- instead of `IN (…)` lists. SQLite evaluates an IN list of more than two constants by
-- building a temporary b-tree of its values on every run of the statement (`OpenEphemeral` in
-- `EXPLAIN`: a b-tree and its pager opened, filled and closed for each row written), which
-- every create, update and delete paid twice (its audit line and its watch event) on the
-- writer's thread, and the reconciler on every state it records. Comparisons allow the same
-- values. SQLite cannot change a constraint, so each table is made again with its rows, ids
-- and indexes, as https://sqlite.org/lang_altertable.html#otheralter does.
CREATE TABLE audit_log_checked (
    id              INTEGER PRIMARY KEY,
    time            TEXT    NOT NULL,
    actor           TEXT    NOT NULL,
    action          TEXT    NOT NULL,
    namespace       TEXT,
    name            TEXT,
    revision_before INTEGER,
    revision_after  INTEGER,
    outcome         TEXT    NOT NULL CHECK (outcome = 'success' OR outcome = 'failure' OR outcome = 'denied'),
    status          INTEGER NOT NULL,
    request_id      TEXT    NOT NULL,
    detail          TEXT,
    count           INTEGER NOT NULL DEFAULT 1
);
INSERT INTO audit_log_checked (id, time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail, count)
    SELECT id, time, actor, action, namespace, name, revision_before, revision_after, outcome, status, request_id, detail, count FROM audit_log;
DROP TABLE audit_log;
ALTER TABLE audit_log_checked RENAME TO audit_log;
CREATE INDEX audit_log_by_target ON audit_log (namespace, name, id);
CREATE INDEX audit_log_by_time ON audit_log (time, id);

CREATE TABLE watch_events_checked (
    resource_version INTEGER PRIMARY KEY,
    type             TEXT    NOT NULL CHECK (type = 'ADDED' OR type = 'MODIFIED' OR type = 'DELETED'),
    namespace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    previous_labels  TEXT,
    time             TEXT    NOT NULL,
    document         BLOB    NOT NULL,
    uid              TEXT,
    revision         INTEGER
);
INSERT INTO watch_events_checked (resource_version, type, namespace, name, labels, previous_labels, time, document, uid, revision)
    SELECT resource_version, type, namespace, name, labels, previous_labels, time, document, uid, revision FROM watch_events;
DROP TABLE watch_events;
ALTER TABLE watch_events_checked RENAME TO watch_events;
CREATE INDEX watch_events_by_time ON watch_events (time);

CREATE TABLE reconcile_state_checked (
    namespace         TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    cluster           TEXT    NOT NULL,
    source            TEXT    NOT NULL DEFAULT 'binding' CHECK (source IN ('binding', 'push')),
    state             TEXT    NOT NULL
        CHECK (state = 'synced' OR state = 'pending' OR state = 'drifted' OR state = 'failing' OR state = 'deleting'),
    uid               TEXT    NOT NULL DEFAULT '',
    revision          INTEGER NOT NULL DEFAULT 0,
    last_sync_time    TEXT,
    last_error        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_time TEXT,
    updated_at        TEXT    NOT NULL,
    PRIMARY KEY (namespace, name, cluster)
);
INSERT INTO reconcile_state_checked (namespace, name, cluster, source, state, uid, revision, last_sync_time, last_error, attempts, next_attempt_time, updated_at)
    SELECT namespace, name, cluster, source, state, uid, revision, last_sync_time, last_error, attempts, next_attempt_time, updated_at
    FROM reconcile_state;
DROP TABLE reconcile_state;
ALTER TABLE reconcile_state_checked RENAME TO reconcile_state;
CREATE INDEX reconcile_state_by_cluster ON reconcile_state (cluster, state);
