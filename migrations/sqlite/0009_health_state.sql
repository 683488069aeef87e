-- The liveness state per service (issue 16), so that a new leader continues where the old one
-- stopped and the other replicas show the leader's view: a JSON object {"dns": "…", "health": "…"}
-- whose members are the JSON texts of the DNS refresher's answers (per host name: addresses,
-- last good answer, failures) and of the health checker's state (per probed address (ip, port)
-- its state, since, last check, last error, consecutive equal results and the last result; the
-- `allBackendsUnhealthy` condition; the last events; and a fingerprint of the health check it was
-- measured under: a changed check starts over from unknown). Written by the leader only (fenced).
-- `version`: the write that stored the row, from `watch_state.health_version` (one more per
-- write transaction; writes are serialized, so versions commit in order and never go back, even
-- after rows are deleted): the other replicas read the rows newer than the last they saw.
-- Numbered 0009 like its PostgreSQL twin (PostgreSQL's 0008 is its own `leader_lease`).
CREATE TABLE health_state (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    document   TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE INDEX health_state_by_version ON health_state (version);
ALTER TABLE watch_state ADD COLUMN health_version INTEGER NOT NULL DEFAULT 0;
