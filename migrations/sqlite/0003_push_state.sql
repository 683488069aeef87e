-- What was last pushed where: per service and cluster, the revision, when, the outcome and the
-- objects written (JSON list of {"kind","name"}), for status, prune and cascade deletion.
CREATE TABLE push_state (
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    cluster     TEXT    NOT NULL,
    uid         TEXT    NOT NULL,
    revision    INTEGER NOT NULL,
    time        TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    objects     TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, name, cluster)
);
