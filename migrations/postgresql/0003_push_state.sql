-- PostgreSQL twin of ../0003_push_state.sql.
-- What was last pushed where: per service and cluster, the revision, when, the outcome and the
-- objects written (JSON list of {"kind","name"}), for status, prune and cascade deletion.
CREATE TABLE push_state (
    namespace   TEXT    COLLATE "C" NOT NULL,
    name        TEXT    COLLATE "C" NOT NULL,
    cluster     TEXT    COLLATE "C" NOT NULL,
    uid         TEXT    NOT NULL,
    revision    BIGINT  NOT NULL,
    time        TEXT    COLLATE "C" NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    objects     TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, name, cluster)
);
