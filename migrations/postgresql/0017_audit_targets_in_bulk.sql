-- PostgreSQL twin of ../sqlite/0017_audit_targets_in_bulk.sql.
-- The audit lines of a service are found through `audit_log_targets`, filled in bulk by the
-- writer (`ServiceStore.indexAuditTargets`) once a few thousand lines have come and at start,
-- instead of through an index every audit line went into; `audit_state.targets_through` is the
-- highest audit line id moved so far. Lines are numbered in commit order (every write takes
-- the global write lock first, `beginWrite`), so every line up to the newest one committed has
-- committed: the mark is set first, from that newest line, and the lines up to it are moved
-- after. Replicas still running the previous version while this runs (a rolling upgrade) may
-- commit lines meanwhile; their ids are above the mark, and the queries find them there.
CREATE TABLE audit_state (
    id              BIGINT PRIMARY KEY CHECK (id = 1),
    targets_through BIGINT NOT NULL
);
INSERT INTO audit_state (id, targets_through) SELECT 1, coalesce(max(id), 0) FROM audit_log;
CREATE TABLE audit_log_targets (
    namespace TEXT   COLLATE "C" NOT NULL,
    name      TEXT   COLLATE "C" NOT NULL,
    id        BIGINT NOT NULL,
    PRIMARY KEY (namespace, name, id)
);
INSERT INTO audit_log_targets (namespace, name, id)
    SELECT namespace, name, id FROM audit_log
    WHERE id <= (SELECT targets_through FROM audit_state WHERE id = 1) AND namespace IS NOT NULL AND name IS NOT NULL;
DROP INDEX audit_log_by_target;
