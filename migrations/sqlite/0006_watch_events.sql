-- Watch (issue 15): a global resource version that every change of a service takes the next
-- value of, in the transaction of the change, and the change log watchers replay from.
-- `compacted`: the events up to and including this version are gone (pruned, or from before
-- this table existed); a watch may resume from it or any later version.
CREATE TABLE watch_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    resource_version INTEGER NOT NULL,
    compacted        INTEGER NOT NULL
);
INSERT INTO watch_state (id, resource_version, compacted) VALUES (1, 1, 1);
-- One row per change: ADDED, MODIFIED or DELETED, the service's labels after the change (and,
-- for MODIFIED, before it, so that a selector watch sees a service enter or leave its set), and
-- the service's document after the change (for DELETED, its last one).
CREATE TABLE watch_events (
    resource_version INTEGER PRIMARY KEY,
    type             TEXT    NOT NULL CHECK (type IN ('ADDED', 'MODIFIED', 'DELETED')),
    namespace        TEXT    NOT NULL,
    name             TEXT    NOT NULL,
    labels           TEXT    NOT NULL,
    previous_labels  TEXT,
    time             TEXT    NOT NULL,
    document         BLOB    NOT NULL
);
CREATE INDEX watch_events_by_time ON watch_events (time);
