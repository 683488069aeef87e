-- The health checker's state per service (issue 16), so that a new leader continues where the
-- old one stopped: a JSON object with, per probed address (ip, port), its state, since, last
-- check, last error, consecutive equal results and the last result; the `allBackendsUnhealthy`
-- condition; the last events; and a fingerprint of the health check it was measured under (a
-- changed check starts over from unknown). Written by the leader only (fenced). Numbered 0009
-- like its PostgreSQL twin (PostgreSQL's 0008 is its own `leader_lease`).
CREATE TABLE health_state (
    namespace  TEXT NOT NULL,
    name       TEXT NOT NULL,
    document   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (namespace, name)
);
