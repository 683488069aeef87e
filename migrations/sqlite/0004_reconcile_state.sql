-- What the reconciler saw per service and cluster: the state (synced, pending, drifted, failing,
-- deleting), the revision last applied there, when the live objects were last seen equal to the
-- rendering, the last error (a problem+json object with the Kubernetes reason and message), the
-- attempts since the last success and when the next one is due. `source` is 'binding' for a
-- cluster named in the service's `clusters`, 'push' for one reached only by an explicit push.
-- Rows outlive their service while its objects are being deleted (state 'deleting'), so that a
-- restart resumes the deletion.
CREATE TABLE reconcile_state (
    namespace         TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    cluster           TEXT    NOT NULL,
    source            TEXT    NOT NULL DEFAULT 'binding' CHECK (source IN ('binding', 'push')),
    state             TEXT    NOT NULL CHECK (state IN ('synced', 'pending', 'drifted', 'failing', 'deleting')),
    uid               TEXT    NOT NULL DEFAULT '',
    revision          INTEGER NOT NULL DEFAULT 0,
    last_sync_time    TEXT,
    last_error        TEXT,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_time TEXT,
    updated_at        TEXT    NOT NULL,
    PRIMARY KEY (namespace, name, cluster)
);
CREATE INDEX reconcile_state_by_cluster ON reconcile_state (cluster, state);
