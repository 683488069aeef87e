-- PostgreSQL twin of ../sqlite/0009_health_state.sql.
-- The health checker's state per service (issue 16), so that a new leader continues where the
-- old one stopped: a JSON object with, per probed address (ip, port), its state, since, last
-- check, last error, consecutive equal results and the last result; the `allBackendsUnhealthy`
-- condition; the last events; and a fingerprint of the health check it was measured under (a
-- changed check starts over from unknown). Written by the leader only (fenced).
CREATE TABLE health_state (
    namespace  TEXT COLLATE "C" NOT NULL,
    name       TEXT COLLATE "C" NOT NULL,
    document   TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (namespace, name)
);
